"""``toydiff toy distill``: rounds written as ordinary runs that say they were distilled; one-line errors."""

from pathlib import Path

import pytest

import toydiff.toy
from toydiff.cli import main as toydiff_main
from toydiff.toy.run import load_toy


@pytest.fixture(scope="module")
def teacher_run():
    """The committed two_gaussians run (DDPM) as the teacher: no training here."""
    return Path(toydiff.toy.__file__).parent / "weights" / "two_gaussians"


def test_distill_writes_student_runs_with_their_teacher(teacher_run, tmp_path, capsys):
    out = tmp_path / "pd"
    argv = ["toy", "distill", str(teacher_run), "--rounds", "2", "--steps-per-round", "3", "--n", "100", "--quiet",
            "--out", str(out)]
    assert toydiff_main(argv) == 0
    text = capsys.readouterr().out
    assert "| 2 | 1 |" in text and "teacher @ 2N" in text, text
    student = load_toy(out / "round2_1steps.safetensors")  # an ordinary DDPM run
    d = student.metadata["distilled"]
    assert (d["round"], d["steps"], d["teacher_steps"]) == (2, 1, 2)
    assert d["sampler"] == {"method": "ddim", "steps": 1, "spacing": "trailing"}
    first = load_toy(out / "round1_2steps.safetensors").metadata["distilled"]
    assert len(first["teacher_sha256"]) == 64 and first["teacher_sha256"] != d["teacher_sha256"]
    assert student.sample(5, **student.process.step_options(1)).shape == (5, 1)
    assert toydiff_main(argv) == 2  # rounds already there, neither --resume nor --overwrite
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--rounds", "2", "--start-steps", "6"], "divisible"),
    (["--rounds", "0"], "--rounds"),
    (["--resume", "--overwrite"], "exclude"),
])
def test_distill_bad_input_is_one_line_and_exit_2(teacher_run, tmp_path, capsys, extra, message):
    assert toydiff_main(["toy", "distill", str(teacher_run), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
