"""image_track.training: the loss falls, checkpoints round-trip, resume is bit-exact, errors are clear."""

from __future__ import annotations

import warnings

import pytest
import torch

from dataclasses import fields

from image_track.sampling import load_model
from image_track.training import TrainConfig, bf16_autocast, export_weights, snapshot_path, train
from image_track.training.config import engine_config
from image_track.training.loop import TRAIN_KIND
from toydiff.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from toydiff.cli import OneLineParser

FAST = dict(preset="tiny", val_split=None, sample_every_epoch=False, progress=False, warmup_steps=2)


def test_a_few_steps_lower_the_loss():
    h = train(TrainConfig(subset=128, batch_size=32, max_steps=24, lr=2e-3, **FAST))
    first, last = sum(h.step_losses[:5]) / 5, sum(h.step_losses[-5:]) / 5
    assert h.step == 24 and len(h.step_losses) == 24
    assert last < 0.7 * first
    assert len(h.epochs) == 6 and all(len(e["train_loss_by_bucket"]) == 10 for e in h.epochs)


@pytest.mark.parametrize("amp", [False, True])
def test_min_snr_weighting_trains_and_logs_the_plain_loss(amp):
    cfg = dict(subset=128, batch_size=32, max_steps=24, lr=2e-3, amp=amp, **FAST)
    plain = train(TrainConfig(**cfg))
    weighted = train(TrainConfig(loss_weighting="min-snr", min_snr_gamma=5.0, **cfg))
    first, last = sum(weighted.step_losses[:5]) / 5, sum(weighted.step_losses[-5:]) / 5
    assert last < 0.8 * first
    # same data, t and noise: the first logged loss is the same unweighted ε-loss (the weights' effect on the
    # gradient, min(SNR, γ)/SNR per sample, is checked exactly in tests/toydiff/test_training.py)
    assert weighted.step_losses[0] == pytest.approx(plain.step_losses[0], rel=1e-6)


@pytest.mark.parametrize("amx", [False, True])
def test_bf16_autocast_only_where_it_is_fast(monkeypatch, amx):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    with bf16_autocast("cpu", enabled=False):
        assert not torch.is_autocast_enabled("cpu")
    with bf16_autocast("cpu"):
        assert torch.is_autocast_enabled("cpu") is amx
        y = torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3))
        assert y.dtype == (torch.bfloat16 if amx else torch.float32)
    with warnings.catch_warnings():  # "CUDA is not available": the context is made, not entered
        warnings.simplefilter("ignore")
        cuda = bf16_autocast("cuda")
    assert isinstance(cuda, torch.autocast) and cuda.device == "cuda" and cuda.fast_dtype == torch.bfloat16


def test_snapshots_hold_the_ema_weights_of_their_step(tmp_path):
    h = train(TrainConfig(subset=96, batch_size=32, max_steps=6, snapshot_steps=(2, 6), out_dir=str(tmp_path),
                          **FAST))
    early, last = load_model(snapshot_path(tmp_path, 2)), load_model(snapshot_path(tmp_path, 6))
    assert early.metadata["step"] == 2 and last.metadata["step"] == 6
    final = h.ema_model.state_dict()
    for k, v in last.model.state_dict().items():  # float16 on disk
        torch.testing.assert_close(v, final[k], atol=2e-3, rtol=2e-3)
    assert any(not torch.allclose(v, final[k]) for k, v in early.model.state_dict().items())
    assert TrainConfig.from_dict(TrainConfig(snapshot_steps=(2,)).to_dict()).snapshot_steps == (2,)


def _weights(path):
    tensors, meta = load_checkpoint(path)
    return tensors, meta


@pytest.mark.parametrize("conditional", [False, True])
def test_resume_reproduces_the_uninterrupted_run(tmp_path, conditional):
    cfg = dict(subset=96, batch_size=32, max_steps=7, num_classes=10 if conditional else None, **FAST)
    full = train(TrainConfig(out_dir=str(tmp_path / "full"), **cfg))
    # a time budget that runs out after the first step: the run stops cleanly and checkpoints mid-epoch
    cut = train(TrainConfig(out_dir=str(tmp_path / "cut"), minutes=1e-9, **cfg))
    assert cut.stopped == "time budget" and cut.step == 1
    resumed = train(TrainConfig(out_dir=str(tmp_path / "cut"), resume=str(tmp_path / "cut" / "checkpoint.safetensors"),
                                **cfg))
    assert resumed.step == full.step == 7 and resumed.stopped == "finished"
    a, meta_a = _weights(tmp_path / "full" / "checkpoint.safetensors")
    b, meta_b = _weights(tmp_path / "cut" / "checkpoint.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert meta_a["rng_states"] == meta_b["rng_states"]
    assert resumed.step_losses == full.step_losses


def test_checkpoint_round_trip_and_export(tmp_path):
    h = train(TrainConfig(subset=64, batch_size=32, max_steps=2, num_classes=10, out_dir=str(tmp_path), **FAST))
    ckpt = tmp_path / "checkpoint.safetensors"
    tensors, meta = load_checkpoint(ckpt)
    assert meta["step"] == 2 and meta["model_config"] == h.model.config
    assert meta["schedule"]["name"] and TrainConfig.from_dict(meta["config"]).num_classes == 10
    m = load_model(ckpt)
    for k, v in h.ema_model.state_dict().items():
        assert torch.equal(m.model.state_dict()[k], v)
    out = export_weights(ckpt, tmp_path / "w.safetensors", dtype=torch.float32)
    t2, meta2 = load_checkpoint(out)
    assert not any(k.startswith(("optim.", "model.")) for k in t2)
    m2 = load_model(out)
    x, t, y = torch.randn(3, 1, 28, 28), torch.tensor([1, 500, 999]), torch.tensor([0, 5, 10])
    assert torch.equal(m.model(x, t, y), m2.model(x, t, y))


def test_truncated_and_mismatched_checkpoints_raise(tmp_path):
    train(TrainConfig(subset=32, batch_size=32, max_steps=1, out_dir=str(tmp_path), **FAST))
    ckpt = tmp_path / "checkpoint.safetensors"
    data = ckpt.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(tmp_path / "cut.safetensors")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        train(TrainConfig(subset=32, batch_size=32, max_steps=2, resume=str(tmp_path / "cut.safetensors"), **FAST))
    tensors, meta = load_checkpoint(ckpt)
    meta["model_config"]["widths"] = [8, 16, 32]  # weights no longer fit the preset's shapes
    save_checkpoint(tmp_path / "bad.safetensors", tensors, meta)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model(tmp_path / "bad.safetensors")
    # issue 11: a resume with other settings names the flags that differ (before: "trained with model ...")
    with pytest.raises(CheckpointError, match=r"another configuration \(--num-classes None there, 10 here\)"):
        train(TrainConfig(subset=32, batch_size=32, max_steps=2, num_classes=10, resume=str(ckpt), **FAST))
    with pytest.raises(CheckpointError, match="trained with model"):  # same settings, another network recorded
        train(TrainConfig(subset=32, batch_size=32, max_steps=2, resume=str(tmp_path / "bad.safetensors"), **FAST))


def test_missing_data_and_bad_settings(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        train(TrainConfig(data_dir=str(tmp_path), max_steps=1, **FAST))
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="p_uncond"):
        TrainConfig(p_uncond=1.0)
    with pytest.raises(ValueError, match="lr_decay"):
        TrainConfig(lr_decay="step")
    with pytest.raises(ValueError, match="loss_weighting"):
        TrainConfig(loss_weighting="snr")
    with pytest.raises(ValueError, match="min_snr_gamma"):
        TrainConfig(min_snr_gamma=0.0)
    with pytest.raises(ValueError, match="snapshot_steps"):
        TrainConfig(snapshot_steps=(0,))
    with pytest.raises(ValueError, match="num_classes"):  # labels 0..9 do not fit 5 classes
        train(TrainConfig(subset=8, batch_size=8, max_steps=1, num_classes=5, **FAST))


def test_python_m_image_track_training_is_the_train_command():
    import image_track.training.__main__ as entry
    from image_track.training import main

    assert entry.main is main
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0


def test_the_engine_gets_the_image_recipe():
    e = engine_config(TrainConfig(lr_decay="exponential", lr_gamma=0.9, min_lr_ratio=0.2, grad_clip=None))
    assert (e.lr_schedule, e.lr_gamma, e.min_lr_ratio, e.grad_clip) == ("exponential", 0.9, 0.2, None)
    assert e.ema_warmup and e.ema_decay == TrainConfig().ema_decay


def _parser():
    from image_track.training import add_train_arguments

    p = OneLineParser(prog="t")
    add_train_arguments(p)
    return p


def test_every_config_field_has_a_generated_flag_with_its_default():
    from image_track.training import config_from_args

    p = _parser()
    dests = {a.dest for a in p._actions}
    assert {f.name for f in fields(TrainConfig)} <= dests
    assert config_from_args(p.parse_args(["--out", "runs/x"])) == TrainConfig(out_dir="runs/x")
    a = p.parse_args(["--out", "o", "--conditional", "--no-val", "--no-amp", "--grad-clip", "0", "--T", "50",
                      "--snapshot-steps", "2,6", "--lr-decay", "exponential", "--model-overrides", '{"widths": [4, 8, 8]}',
                      "--no-samples", "--no-channels-last", "--betas", "0.8,0.99", "--min-lr-ratio", "0.2"])
    c = config_from_args(a)
    assert (c.num_classes, c.val_split, c.amp, c.grad_clip, c.T, c.snapshot_steps) == (10, None, False, None, 50, (2, 6))
    assert c.lr_decay == "exponential" and c.model_overrides == {"widths": [4, 8, 8]}
    assert (c.sample_every_epoch, c.channels_last, c.betas, c.min_lr_ratio) == (False, False, (0.8, 0.99), 0.2)
    with pytest.raises(Exception, match="--lr-decay"):
        p.parse_args(["--out", "o", "--lr-decay", "step"])


def test_a_checkpoint_tagged_the_old_way_still_resumes(tmp_path):
    cfg = dict(subset=32, batch_size=16, **FAST)
    train(TrainConfig(max_steps=1, out_dir=str(tmp_path), **cfg))
    tensors, meta = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert meta["kind"] == TRAIN_KIND and "format" not in meta
    meta["format"] = meta.pop("kind")  # files written before the engine was shared
    save_checkpoint(tmp_path / "old.safetensors", tensors, meta)
    h = train(TrainConfig(max_steps=2, resume=str(tmp_path / "old.safetensors"), **cfg))
    assert h.step == 2 and len(h.step_losses) == 2
