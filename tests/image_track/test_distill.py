"""``toydiff mnist distill`` / image_track.training.distill: a round's checkpoint is an ordinary model that says
it was distilled; one-line errors."""

import pytest
import torch

from image_track.cli import main
from image_track.loaded import default_checkpoint, load_model
from image_track.sampling import generate
from image_track.training.distill import DistillSettings, distill_mnist, sampler_keywords
from toydiff.training.distill import file_sha256


def test_one_round_of_the_committed_model_is_a_loadable_student(tmp_path):
    paths = distill_mnist(out=tmp_path, rounds=1, start_steps=2, subset=16,
                          settings=DistillSettings(steps=1, batch_size=4, warmup=0, amp=False))
    assert [p.name for p in paths] == ["round1_1steps.safetensors"]
    m = load_model(paths[0])
    d = m.metadata["distilled"]
    assert d["teacher_sha256"] == file_sha256(default_checkpoint(conditional=False))
    assert (d["round"], d["steps"], d["teacher_steps"]) == (1, 1, 2)
    assert d["sampler"] == {"method": "ddim", "steps": 1, "spacing": "trailing"}
    x = generate(m.model, m.process, 2, **sampler_keywords(m.process, 1))
    assert x.shape == (2, 1, 28, 28) and torch.isfinite(x).all()


@pytest.mark.parametrize("argv, message", [
    (["distill", "--rounds", "2", "--start-steps", "6"], "divisible"),
    (["distill", "--eval-n", "2"], "--eval-n"),
    (["distill", "--resume", "--overwrite"], "exclude"),
    (["distill", "--checkpoint", "CKPT_COND"], "class-conditional"),
])
def test_distill_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    argv = [str(default_checkpoint(conditional=True)) if a == "CKPT_COND" else a for a in argv]
    assert main([*argv, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
