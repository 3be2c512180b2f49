"""Train a UNet preset on MNIST with the shared engine (:class:`toydiff.training.Trainer`).

This module sets a run up — processes, device, data, network, DDP wrapping, hooks — and hands it to the
engine; the loop itself (Ho et al. 2020, Algorithm 1) is the one the toy track uses too.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from toydiff.cli import check_writable
from toydiff.outputs import atomic_write_text
from toydiff.threads import thread_scope
from toydiff.training.checkpoint import CheckpointError, load_checkpoint, require_kind, run_lock
from toydiff.training.hooks import HeldOutLoss, ProgressBar
from toydiff.training.engine import Trainer

from image_track.training.config import History, TrainConfig, config_changes, engine_config
from image_track.training.hooks import ImageBatches, RunRecord, SampleGrids, Snapshots, TimeBudget, epoch_line

__all__ = ["train", "bf16_autocast", "objective_of", "TRAIN_KIND", "CHECKPOINT_NAME"]

TRAIN_KIND = "image_track.train/1"
CHECKPOINT_NAME = "checkpoint.safetensors"


def dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment (1 process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def bf16_autocast(device: torch.device | str, enabled: bool = True):
    """A bf16 ``torch.autocast`` context where bf16 is fast, else a no-op context.

    Fast means CUDA, or a CPU with AMX tiles (Intel Sapphire Rapids and later), where oneDNN runs bf16
    convolutions on the matrix units: the ``tiny`` preset trains 2.0-2.4x faster there
    (``python bench/cpu_amp.py``). Elsewhere bf16 on a CPU is emulated and slower than float32, so it stays off.
    """
    device = torch.device(device)
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if enabled and device.type == "cpu" and torch.cpu._is_amx_tile_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def pick_device(config: TrainConfig, local_rank: int) -> torch.device:
    """``config.device``, with ``"auto"`` the local rank's GPU when CUDA is there, else the CPU."""
    if config.device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(config.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {config.device}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def train(config: TrainConfig, *, overwrite: bool = True, threads: int | None = None) -> History:
    """Train ``config.preset`` on MNIST; return the :class:`History` (on every rank under DDP).

    The output folder is locked while the run writes it (:func:`toydiff.training.checkpoint.run_lock`). With
    ``overwrite=False`` (the command line without ``--overwrite``) an ``out_dir`` that already holds a
    checkpoint is refused unless ``config.resume`` is given. ``threads``: torch CPU threads while training
    (default: the policy of :mod:`toydiff.threads`, 1); the caller's count is restored on return.

    Raises:
        ValueError: bad settings (e.g. a batch size that does not split over the processes), or an existing
            run in ``out_dir`` with ``overwrite=False``.
        CheckpointError: ``config.resume`` is missing, corrupt, non-finite, of another configuration or does
            not fit the model; ``RunLockedError``: another process writes ``out_dir``.
        FileNotFoundError: the MNIST data are missing (the message says what to install).
        NonFiniteLossError: the run diverged; the checkpoint on disk is the last finite one.
    """
    rank, world, local_rank = dist_info()
    device = pick_device(config, local_rank)
    if config.out_dir and rank == 0:
        check_writable(config.out_dir, "--out", folder=True)
    existing = Path(config.out_dir) / CHECKPOINT_NAME if config.out_dir else None
    if existing is not None and existing.exists() and not overwrite and not config.resume:
        raise ValueError(f"--out {config.out_dir} already holds a run ({existing}); pass --resume {existing} to "
                         "continue it, --overwrite to replace it, or choose another --out")
    if config.resume and rank == 0:  # the other processes load it once the group is in step (DDP's first sync)
        _check_resume(config)
    own_group = world > 1 and not dist.is_initialized()
    if own_group:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        with thread_scope(threads):  # toydiff.threads' policy (default 1); the caller's count back after
            history = _train(config, rank, world, device)
        if world > 1:  # rank 0 may still be writing the run's files: every process leaves train() after it
            dist.barrier()
        return history
    finally:
        if own_group:
            dist.destroy_process_group()


def _check_resume(config: TrainConfig) -> None:
    """Refuse a ``--resume`` checkpoint before any work: missing, corrupt, non-finite, of another kind or of
    another configuration (the engine's ``load`` checks it again, with the network)."""
    _, meta = load_checkpoint(config.resume)
    require_kind(meta, (TRAIN_KIND,), config.resume, "--resume needs an image_track training checkpoint "
                 "(checkpoint.safetensors of toydiff mnist train)")
    changed = config_changes(meta.get("config") or {}, config)
    if changed:
        raise CheckpointError(f"{config.resume} was trained with another configuration ({'; '.join(changed)}); "
                              "--resume continues a run with its own settings")


def objective_of(config: TrainConfig, device=None):
    """The run's objective: its process (``--process``, built through the registry by
    :func:`~image_track.training.config.build_process`) asked for ``process.objective(...)`` with the t sampling,
    the loss weights (Min-SNR-γ, Hang et al. 2023, where the process has a schedule) and ``--target`` (each pair's
    own target, or the stable target field over the batch, Xu et al. 2023)."""
    return config.objective(device)


def _load_split(config: TrainConfig, split: str):
    from image_track.data import load_mnist

    return load_mnist(split, pad_to_32=config.pad_to_32, data_dir=config.data_dir, dataset=config.dataset)


def _training_data(config: TrainConfig, device: torch.device):
    """The training split on the device (batches are index gathers), ``x [N, C, H, W]``, ``y [N]``."""
    x, y = _load_split(config, config.train_split)
    if config.subset is not None:
        x, y = x[: config.subset], y[: config.subset]
    if config.num_classes is not None and int(y.max()) >= config.num_classes:
        raise ValueError(f"num_classes={config.num_classes} but the data hold label {int(y.max())}")
    return x.to(device), y.to(device)


def _validation(config: TrainConfig, device: torch.device, autocast) -> HeldOutLoss:
    """Fixed validation images with fixed t and noise, so epochs are compared on the same draws."""
    x, y = _load_split(config, config.val_split)
    n = len(x) if config.val_size is None else min(config.val_size, len(x))
    x, y = x[:n], y[:n]
    t, noise = objective_of(config).held_out_draws(x.shape, seed=config.seed + 99991, noise_dtype=torch.float32)
    kwargs = {"y": y.to(device)} if config.num_classes is not None else None  # conditional: the true labels
    return HeldOutLoss(x.to(device), t.to(device), noise.to(device), n_buckets=config.n_buckets, batch_size=500,
                       model_kwargs=kwargs, context=autocast, keys=("val_loss", "val_loss_by_bucket"))


def _network(config: TrainConfig, x: torch.Tensor, device: torch.device) -> nn.Module:
    from image_track.models import build_model

    torch.manual_seed(config.seed)  # initial weights (the only draw from the global RNG)
    raw = build_model(config.preset, num_classes=config.num_classes, T=config.T, in_channels=x.shape[1],
                      image_size=x.shape[-1], **config.model_overrides).to(device)
    return raw.to(memory_format=torch.channels_last) if config.channels_last else raw


def _hooks(config: TrainConfig, raw: nn.Module, device: torch.device, out_dir: Path | None, autocast,
           rank: int) -> list:
    hooks: list = [RunRecord(raw.config, config)]
    if config.val_split and rank == 0:
        hooks.append(_validation(config, device, autocast))
    if out_dir is not None and config.snapshot_steps:
        hooks.append(Snapshots(out_dir, config.snapshot_steps, {"config": config.to_dict(), "model_config": raw.config}))
    if out_dir is not None and config.sample_every_epoch:
        hooks.append(SampleGrids(out_dir, config, device))
    if config.minutes is not None:
        hooks.append(TimeBudget(config.minutes, device))
    if config.progress:
        hooks.append(ProgressBar(every=10, epoch_line=epoch_line, desc=f"train {config.preset}", unit="step",
                                 dynamic_ncols=True, file=sys.stderr))
    return hooks


def _train(config: TrainConfig, rank: int, world: int, device: torch.device) -> History:
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    x, y = _training_data(config, device)
    data = ImageBatches(x, y, config, rank=rank, world=world)
    raw = _network(config, x, device)
    train_model: nn.Module = raw
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(raw, device_ids=[device.index] if cuda else None)
    if config.compile:
        train_model = torch.compile(train_model)
    out_dir = Path(config.out_dir) if config.out_dir else None

    def autocast():
        return bf16_autocast(device, config.amp)

    history = History(config=config.to_dict(), device=torch.cuda.get_device_name(device) if cuda else "cpu",
                      world_size=world)
    trainer = Trainer(raw, objective_of(config, device), data, engine_config(config),
                      hooks=_hooks(config, raw, device, out_dir, autocast, rank), kind=TRAIN_KIND,
                      metadata={"config": config.to_dict(), "model_config": raw.config}, history=history,
                      train_model=train_model, autocast=autocast,
                      generator=torch.Generator(device=device).manual_seed(config.seed * 1000 + 17 + rank),
                      checkpoint=out_dir / CHECKPOINT_NAME if out_dir is not None else None)
    if config.resume:
        trainer.load(config.resume)  # checked (kind, hash, finite, configuration) before anything is written
    with run_lock(out_dir) if rank == 0 and out_dir is not None else nullcontext():
        trainer.fit()
        history.step, history.epoch = trainer.step, trainer.epoch
        history.stopped = trainer.stop_reason or "finished"
        history.model, history.ema_model = raw, trainer.eval_model  # the trained modules (not serialised)
        if rank == 0 and out_dir is not None:
            atomic_write_text(out_dir / "history.json", json.dumps(history.to_dict(), indent=1))
    return history
