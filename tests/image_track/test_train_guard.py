"""``toydiff mnist train`` keeps runs apart: an existing run is not overwritten unasked, a resume keeps the run's
settings, a diverged run exits 3 with its last finite checkpoint kept."""

from __future__ import annotations

import pytest

from toydiff.training.checkpoint import load_checkpoint
from toydiff.cli import main

TINY = ["--preset", "tiny", "--subset", "64", "--batch-size", "32", "--no-val", "--no-samples", "--no-progress",
        "--warmup-steps", "0", "--no-amp"]


def _err_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_an_existing_run_is_neither_overwritten_nor_resumed_with_other_settings(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["mnist", "train", "--out", str(run), "--max-steps", "2", *TINY]) == 0
    ckpt = run / "checkpoint.safetensors"
    before = ckpt.read_bytes()
    capsys.readouterr()

    assert main(["mnist", "train", "--out", str(run), "--max-steps", "4", *TINY]) == 2
    assert "--overwrite" in _err_line(capsys) and ckpt.read_bytes() == before

    assert main(["mnist", "train", "--out", str(run), "--resume", str(ckpt), "--max-steps", "4", *TINY,
                 "--lr", "0.01", "--seed", "5"]) == 2
    line = _err_line(capsys)
    assert "--lr 0.002 there, 0.01 here" in line and "--seed 0 there, 5 here" in line and "--batch-size" not in line
    assert ckpt.read_bytes() == before

    assert main(["mnist", "train", "--out", str(run), "--resume", str(ckpt), "--max-steps", "4", *TINY]) == 0
    assert load_checkpoint(ckpt)[1]["step"] == 4  # same settings, longer: resumed
    assert main(["mnist", "train", "--out", str(run), "--overwrite", "--max-steps", "2", *TINY]) == 0
    assert load_checkpoint(ckpt)[1]["step"] == 2  # asked for: replaced


def test_a_diverging_mnist_run_exits_3_and_keeps_the_last_finite_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["mnist", "train", "--out", str(run), "--max-steps", "8", *TINY, "--lr", "1e30",
                 "--grad-clip", "0"]) == 3
    line = _err_line(capsys)
    assert "diverged" in line and " at step " in line
    bad = int(line.split(" at step ")[1].split(";")[0])
    ckpt = run / "checkpoint.safetensors"
    if ckpt.exists():
        assert load_checkpoint(ckpt)[1]["step"] < bad  # loads: finite weights are checked on load
    else:
        assert "no checkpoint was written" in line
    assert not (run / "history.json").exists()


def test_resume_refuses_non_finite_weights(tmp_path, capsys):
    import torch

    from toydiff.training.checkpoint import save_checkpoint

    run = tmp_path / "run"
    assert main(["mnist", "train", "--out", str(run), "--max-steps", "2", *TINY]) == 0
    ckpt = run / "checkpoint.safetensors"
    tensors, meta = load_checkpoint(ckpt)
    key = next(k for k, v in tensors.items() if k.startswith("model.") and v.is_floating_point())
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_checkpoint(ckpt, tensors, meta)
    capsys.readouterr()
    assert main(["mnist", "train", "--out", str(run), "--resume", str(ckpt), "--max-steps", "4", *TINY]) == 2
    assert "non-finite" in _err_line(capsys)


@pytest.mark.parametrize("flag, value", [("--lr", "nan"), ("--sample-steps", "5000"), ("--ema-decay", "1.5")])
def test_bad_values_name_the_flag(tmp_path, capsys, flag, value):
    assert main(["mnist", "train", "--out", str(tmp_path / "r"), flag, value]) == 2
    assert _err_line(capsys).split("error: ")[1].startswith(flag) and not (tmp_path / "r").exists()
