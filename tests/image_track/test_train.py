"""image_track.train: the loss falls, checkpoints round-trip, resume is bit-exact, errors are clear."""

from __future__ import annotations

import math

import pytest
import torch

from image_track.sampling import load_model
from image_track.train import TrainConfig, bf16_autocast, export_weights, lr_factor, snapshot_path, train
from toydiff.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

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
    # same data, t and noise: the first logged loss is the same unweighted ε-loss, the updates then differ
    assert weighted.step_losses[0] == pytest.approx(plain.step_losses[0], rel=1e-6)
    assert weighted.step_losses[-1] != plain.step_losses[-1]


def test_bf16_autocast_only_where_it_is_fast():
    with bf16_autocast("cpu", enabled=False):
        assert not torch.is_autocast_enabled("cpu")
    with bf16_autocast("cpu"):
        assert torch.is_autocast_enabled("cpu") == torch.cpu._is_amx_tile_supported()


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
    with pytest.raises(CheckpointError, match="trained with model"):
        train(TrainConfig(subset=32, batch_size=32, max_steps=2, num_classes=10, resume=str(ckpt), **FAST))


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


def test_lr_schedule_shape():
    c = TrainConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, 100, c) == pytest.approx(0.1) and lr_factor(9, 100, c) == pytest.approx(1.0)
    assert lr_factor(10, 100, c) == pytest.approx(1.0)
    assert lr_factor(55, 100, c) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(100, 100, c) == pytest.approx(0.1)
    e = TrainConfig(warmup_steps=0, lr_decay="exponential", lr_gamma=0.9)
    assert lr_factor(3, 100, e) == pytest.approx(0.9 ** 3)
    vals = [lr_factor(s, 100, c) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(vals, vals[1:])) and not any(math.isnan(v) for v in vals)
