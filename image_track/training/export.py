"""The file to ship: a training checkpoint's EMA weights alone, with what sampling needs.

``export_weights(checkpoint, path)`` and the per-step snapshots (:func:`snapshot_path`) write the same
format: tensors ``ema.*`` (float16 by default), metadata ``kind = "image_track.weights/1"``, the model
config, schedule, step, epoch, training config and a summary of the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from toydiff.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["WEIGHTS_KIND", "export_weights", "snapshot_path", "write_weights"]

WEIGHTS_KIND = "image_track.weights/1"


def export_weights(checkpoint: str | os.PathLike, path: str | os.PathLike, *, dtype: torch.dtype = torch.float16) -> Path:
    """Write the EMA weights of a training checkpoint alone (no optimizer state), cast to ``dtype``, with
    the metadata needed to sample (model config, schedule, step, train config): the file to ship."""
    tensors, meta = load_checkpoint(checkpoint)
    ema = {k: v for k, v in tensors.items() if k.startswith("ema.")}
    if not ema:
        raise CheckpointError(f"{checkpoint} holds no EMA weights")
    return write_weights(path, ema, meta, dtype)


def snapshot_path(out_dir: str | os.PathLike, step: int) -> Path:
    """Where ``TrainConfig.snapshot_steps`` puts the EMA weights of ``step`` (the shipped-weights format)."""
    return Path(out_dir) / f"ema_step{step}.safetensors"


def write_weights(path: str | os.PathLike, ema: dict[str, torch.Tensor], meta: dict, dtype: torch.dtype) -> Path:
    """Save ``ema.*`` tensors cast to ``dtype`` with the sampling metadata kept from ``meta``."""
    ema = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in ema.items()}
    bad = [k for k, v in ema.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{path}: the weights {bad[:3]} are not finite in {dtype} (NaN, or beyond its range); "
                              "nothing written")
    keep = {k: meta[k] for k in ("config", "model_config", "schedule", "step", "epoch", "process", "interpolant",
                                 "prediction", "time_scale") if k in meta}
    keep["kind"] = WEIGHTS_KIND
    hist = meta.get("history", {})
    keep["train_summary"] = {k: hist.get(k) for k in ("train_seconds", "images_seen", "images_per_s", "stopped",
                                                      "device", "world_size")}
    return save_checkpoint(path, ema, keep)
