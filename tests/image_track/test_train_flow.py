"""``toydiff mnist train --process flow``: the loss falls, checkpoints record the process, samplers read it."""

from __future__ import annotations

import pytest
import torch

from image_track.sampling import generate, load_model
from image_track.training import TrainConfig, export_weights, train
from toydiff.training.checkpoint import load_checkpoint
from toydiff.cli import main as toydiff_main
from toydiff.processes import InterpolantProcess

FAST = dict(preset="tiny", val_split=None, sample_every_epoch=False, progress=False, warmup_steps=2, process="flow")


@pytest.fixture(scope="module")
def flow_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("mnist_flow")
    h = train(TrainConfig(subset=96, batch_size=32, max_steps=12, lr=2e-3, out_dir=str(out), **FAST))
    return out / "checkpoint.safetensors", h


def test_flow_training_lowers_the_loss_and_records_the_process(flow_ckpt):
    ckpt, h = flow_ckpt
    first, last = sum(h.step_losses[:3]) / 3, sum(h.step_losses[-3:]) / 3
    assert last < 0.8 * first
    _, meta = load_checkpoint(ckpt)
    assert (meta["process"], meta["interpolant"]["name"], meta["prediction"]) == ("flow", "linear", "velocity")
    m = load_model(export_weights(ckpt, ckpt.parent / "w.safetensors", dtype=torch.float32))
    assert isinstance(m.process, InterpolantProcess) and m.process.name == "flow" and m.schedule is None
    x = generate(m.model, m.process, 3, method="euler", steps=2, seed=0)
    assert x.shape == (3, 1, 28, 28) and bool(torch.isfinite(x).all())
    # per-sample seeds: image i does not depend on the batch it was drawn in
    assert torch.allclose(x[1:], generate(m.model, m.process, 3, method="euler", steps=2, seed=0, batch_size=1)[1:],
                          atol=1e-4)
    with pytest.raises(ValueError, match="not a sampler of flow matching"):
        generate(m.model, m.process, 2, method="ddim", steps=2)
    with pytest.raises(ValueError, match="eta"):
        generate(m.model, m.process, 2, method="euler", steps=2, eta=0.5)
    with pytest.raises(ValueError, match="DDPM model"):
        m.require_schedule("SDEdit")


def test_a_flow_run_resumes_bit_for_bit(tmp_path):
    cfg = dict(subset=64, batch_size=32, max_steps=5, **FAST)
    train(TrainConfig(out_dir=str(tmp_path / "full"), **cfg))
    train(TrainConfig(out_dir=str(tmp_path / "cut"), minutes=1e-9, **cfg))
    train(TrainConfig(out_dir=str(tmp_path / "cut"), resume=str(tmp_path / "cut" / "checkpoint.safetensors"), **cfg))
    a, _ = load_checkpoint(tmp_path / "full" / "checkpoint.safetensors")
    b, _ = load_checkpoint(tmp_path / "cut" / "checkpoint.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_mnist_commands_refuse_ddpm_only_operations_of_a_flow_model(flow_ckpt, tmp_path, capsys):
    ckpt, _ = flow_ckpt
    code = toydiff_main(["mnist", "sample", "--checkpoint", str(ckpt), "--method", "ddim", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "not a sampler of flow matching" in err and len(err.strip().splitlines()) == 1
    code = toydiff_main(["mnist", "sample", "--checkpoint", str(ckpt), "--figures", "fixed-init", "--out",
                         str(tmp_path)])
    assert code == 2 and "fixed-init" in capsys.readouterr().err
    code = toydiff_main(["mnist", "train", "--process", "flow", "--loss-weighting", "min-snr", "--out",
                         str(tmp_path / "r")])
    assert code == 2 and "loss-weighting" in capsys.readouterr().err
    code = toydiff_main(["mnist", "train", "--process", "rectified", "--out", str(tmp_path / "r")])
    assert code == 2 and "--process" in capsys.readouterr().err


@pytest.mark.parametrize("process", ["flow", "vp"])
def test_the_stable_target_reaches_the_objective_and_the_checkpoint(tmp_path, process):
    from image_track.training.loop import objective_of

    cfg = TrainConfig(**(FAST | {"process": process}), target="stf", subset=64, batch_size=32, max_steps=2,
                      out_dir=str(tmp_path))
    assert objective_of(cfg).target == "stf" and objective_of(TrainConfig(**FAST)).target == "conditional"
    train(cfg)
    _, meta = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert meta["target"] == "stf" and meta.get("process", "vp") == process
    with pytest.raises(ValueError, match="unconditional"):
        TrainConfig(**FAST, target="stf", num_classes=10)


@pytest.mark.parametrize("flags, named", [
    (["--interpolant", "cosine"], "--interpolant"),
    (["--prediction", "eps"], "--prediction"),
    (["--process", "flow", "--T", "100"], "--T"),
    (["--process", "flow", "--schedule", "cosine"], "--schedule"),
    (["--process", "flow", "--min-snr-gamma", "3"], "--min-snr-gamma"),
    (["--process", "flow", "--sample-method", "ddim"], "--sample-method ddim"),
    (["--process", "flow", "--sample-meth", "ddpm"], "--sample-method ddpm"),  # an abbreviated flag too
    (["--sample-method", "midpoint"], "--sample-method midpoint"),
])
def test_train_refuses_a_flag_the_process_ignores(tmp_path, capsys, flags, named):
    # --max-steps 1 --subset 8: were the flag taken, the run would be short
    code = toydiff_main(["mnist", "train", "--out", str(tmp_path / "r"), "--max-steps", "1", "--subset", "8",
                         "--batch-size", "8", "--no-val", "--no-samples", "--no-progress", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and named in err[0] and "ignores" in err[0], err
    assert not (tmp_path / "r").exists()


def test_the_flags_a_process_reads_are_taken():
    from image_track.cli import build_parser
    from image_track.training import config_from_args

    def parse(*flags):
        return config_from_args(build_parser().parse_args(["train", "--out", "o", *flags]))

    c = parse("--process", "flow", "--interpolant", "cosine", "--prediction", "eps", "--sample-method", "euler")
    assert (c.interpolant, c.prediction, c.sample_method) == ("cosine", "eps", "euler")
    c = parse("--T", "500", "--schedule", "cosine", "--min-snr-gamma", "3", "--sample-method", "ddpm")
    assert (c.T, c.schedule, c.min_snr_gamma, c.sample_method) == (500, "cosine", 3.0, "ddpm")
    assert parse("--process", "flow").sample_method == "ddim"  # the default, not typed: the grids use heun
