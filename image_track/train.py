"""Train a UNet preset on MNIST with the shared ε-prediction loss (Ho et al. 2020, Algorithm 1).

    from image_track.train import TrainConfig, train
    history = train(TrainConfig(preset="tiny", num_classes=10, max_steps=3000, out_dir="runs/tiny"))

One loop serves a laptop CPU and a multi-GPU node:

* AdamW, linear warm-up then cosine (or exponential) decay, gradient clipping, an EMA of the weights
  (the EMA is what is sampled from, validated and saved for use);
* label dropout ``p_uncond`` (labels replaced by the null class) so one network is both conditional and
  unconditional, as classifier-free guidance needs (Ho & Salimans 2022);
* bf16 autocast on CUDA and on CPUs with AMX (:func:`bf16_autocast`), TF32 on CUDA, channels_last
  everywhere; optional ``torch.compile``; optional Min-SNR-γ loss weights (Hang et al. 2023);
* DistributedDataParallel when launched by ``torchrun --nproc_per_node=N`` (NCCL on GPUs, gloo on CPU);
  rank 0 logs, validates, samples and checkpoints;
* every random draw (data order, t, noise, label dropout, flips) comes from generators seeded by
  ``config.seed``; a checkpoint holds their states, so ``resume=`` reproduces an uninterrupted run
  bit for bit (on the same device and world size);
* ``minutes=`` stops cleanly at a time budget and checkpoints.

The diffusion maths (schedule, q_sample, loss, samplers) all comes from :mod:`toydiff`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import nn

from toydiff import schedules
from toydiff.checkpoint import (CheckpointError, join_state, load_checkpoint, rng_state, save_checkpoint,
                                set_rng_state, split_state)
from toydiff.losses import LOSS_WEIGHTINGS, bucket_of, eps_prediction_loss, loss_weights

__all__ = ["TrainConfig", "History", "train", "lr_factor", "EMA", "build_schedule", "bf16_autocast", "export_weights",
           "snapshot_path", "main"]

SCHEDULES = ("linear", "cosine", "sigmoid")
LR_DECAYS = ("cosine", "exponential", "constant")


@dataclass
class TrainConfig:
    """Everything one training run depends on; stored in every checkpoint.

    ``batch_size`` is the global batch (split evenly over DDP processes). ``max_steps`` (if set) overrides
    ``epochs`` as the length of the run and of the learning-rate schedule; ``minutes`` only stops early.
    """

    preset: str = "tiny"
    num_classes: int | None = None
    model_overrides: dict = field(default_factory=dict)
    schedule: str = "linear"
    T: int = 1000
    # data
    dataset: str = "mnist"
    data_dir: str | None = None
    train_split: str = "train55k"
    val_split: str | None = "val5k"
    subset: int | None = None          # use only the first `subset` training images
    val_size: int | None = 2000        # validation images (None: the whole split)
    pad_to_32: bool = False
    hflip: bool = False                # random horizontal flips (FashionMNIST; they change digits)
    # optimisation
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 200
    lr_decay: str = "cosine"
    min_lr_ratio: float = 0.05         # cosine floor, as a fraction of lr
    lr_gamma: float = 0.9995           # exponential decay per step after warm-up
    grad_clip: float | None = 1.0
    ema_decay: float = 0.999
    loss_weighting: str = "uniform"    # or "min-snr" (Hang et al. 2023), with min_snr_gamma
    min_snr_gamma: float = 5.0
    p_uncond: float = 0.1
    seed: int = 0
    # hardware
    device: str = "auto"               # "auto": CUDA (the local rank's GPU) when available, else CPU
    amp: bool = True                   # bf16 autocast where it is fast: CUDA, or a CPU with AMX (see bf16_autocast)
    channels_last: bool = True         # also ~1.2x faster for the small presets on CPU
    compile: bool = False
    # outputs
    out_dir: str | None = None
    checkpoint_every: int | None = None  # steps; a checkpoint is also written at every epoch end and at the end
    snapshot_steps: tuple[int, ...] = ()  # also write the EMA weights alone at these steps (ema_step{N}.safetensors)
    sample_every_epoch: bool = True
    sample_method: str = "ddim"
    sample_steps: int = 50
    sample_w: float = 3.0
    grid_rows: int = 10
    n_buckets: int = 10
    minutes: float | None = None
    resume: str | None = None
    progress: bool = True

    def __post_init__(self):
        self.betas = tuple(self.betas)
        self.snapshot_steps = tuple(self.snapshot_steps)
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in self.snapshot_steps):
            raise ValueError(f"snapshot_steps must be positive ints, got {self.snapshot_steps!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {self.lr_decay!r}")
        for name in ("batch_size", "epochs", "T", "n_buckets", "grid_rows"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("max_steps", "subset", "val_size", "checkpoint_every"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be None or a positive int, got {v!r}")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting must be one of {LOSS_WEIGHTINGS}, got {self.loss_weighting!r}")
        if not self.min_snr_gamma > 0:
            raise ValueError(f"min_snr_gamma must be positive, got {self.min_snr_gamma!r}")
        if not 0.0 <= self.p_uncond < 1.0:
            raise ValueError(f"p_uncond must lie in [0, 1), got {self.p_uncond!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be positive, got {self.minutes!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be None or positive, got {self.grad_clip!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["snapshot_steps"] = list(self.snapshot_steps)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class History:
    """What a run produced. ``epochs``: one dict per finished (or interrupted) epoch with train/val loss,
    loss by t bucket, learning rate and throughput; ``step_losses``: the training loss at every step."""

    config: dict
    epochs: list[dict] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    step: int = 0
    epoch: int = 0
    train_seconds: float = 0.0
    images_seen: int = 0
    stopped: str = "finished"
    checkpoint: str | None = None
    device: str = "cpu"
    world_size: int = 1

    model: Any = field(default=None, repr=False, compare=False)
    ema_model: Any = field(default=None, repr=False, compare=False)

    @property
    def images_per_s(self) -> float:
        return self.images_seen / self.train_seconds if self.train_seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("model", "ema_model")}
        d = copy.deepcopy(d)
        d["images_per_s"] = self.images_per_s
        return d


def build_schedule(name: str, T: int) -> "schedules.NoiseSchedule":
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")
    return getattr(schedules, name)(T=T)


def lr_factor(step: int, total_steps: int, config: TrainConfig) -> float:
    """Multiplier of ``config.lr`` at ``step``: linear warm-up to 1, then cosine / exponential / constant."""
    if config.warmup_steps > 0 and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    after = step - config.warmup_steps
    if config.lr_decay == "constant":
        return 1.0
    if config.lr_decay == "exponential":
        return config.lr_gamma ** after
    span = max(total_steps - config.warmup_steps, 1)
    progress = min(after / span, 1.0)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class EMA:
    """Exponential moving average of a module's weights, ``ema ← d·ema + (1 − d)·θ``, with the usual
    warm-up ``d_k = min(decay, (1 + k) / (10 + k))`` so early averages are not dominated by the init."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        ema_p = [p for p in self.module.parameters()]
        cur_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, cur_p, 1.0 - d)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)


# --------------------------------------------------------------------------------------------- helpers


def _dist_info() -> tuple[int, int, int]:
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


def _pick_device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(config.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def _load_split(config: TrainConfig, split: str):
    from .data import load_mnist

    return load_mnist(split, pad_to_32=config.pad_to_32, data_dir=config.data_dir, dataset=config.dataset)


def _model_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def _strip(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{what} does not fit the model: {' '.join(first[:3])}") from None


def _save(path: Path, *, raw: nn.Module, ema: EMA, opt: torch.optim.Optimizer, config: TrainConfig,
          schedule, step: int, epoch: int, batch_in_epoch: int, rng_states: list, history: History) -> None:
    opt_tensors, opt_skeleton = split_state(opt.state_dict(), "optim")
    tensors = {**_model_tensors("model", raw), **_model_tensors("ema", ema.module), **opt_tensors}
    meta = {
        "format": "image_track.train/1",
        "config": config.to_dict(),
        "model_config": raw.config,
        "schedule": schedule.to_dict(),
        "step": step,
        "epoch": epoch,
        "batch_in_epoch": batch_in_epoch,
        "optimizer": opt_skeleton,
        "rng_states": rng_states,
        "history": history.to_dict(),
    }
    save_checkpoint(path, tensors, meta)


def export_weights(checkpoint: str | os.PathLike, path: str | os.PathLike, *, dtype: torch.dtype = torch.float16) -> Path:
    """Write the EMA weights of a training checkpoint alone (no optimizer state), cast to ``dtype``, with
    the metadata needed to sample (model config, schedule, step, train config): the file to ship."""
    tensors, meta = load_checkpoint(checkpoint)
    ema = {k: v for k, v in tensors.items() if k.startswith("ema.")}
    if not ema:
        raise CheckpointError(f"{checkpoint} holds no EMA weights")
    return _write_weights(path, ema, meta, dtype)


def snapshot_path(out_dir: str | os.PathLike, step: int) -> Path:
    """Where ``TrainConfig.snapshot_steps`` puts the EMA weights of ``step`` (the shipped-weights format)."""
    return Path(out_dir) / f"ema_step{step}.safetensors"


def _write_weights(path: str | os.PathLike, ema: dict[str, torch.Tensor], meta: dict, dtype: torch.dtype) -> Path:
    ema = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in ema.items()}
    keep = {k: meta[k] for k in ("config", "model_config", "schedule", "step", "epoch") if k in meta}
    keep["format"] = "image_track.weights/1"
    hist = meta.get("history", {})
    keep["train_summary"] = {k: hist.get(k) for k in ("train_seconds", "images_seen", "images_per_s", "stopped",
                                                      "device", "world_size")}
    return save_checkpoint(path, ema, keep)


# --------------------------------------------------------------------------------------------- the loop


def train(config: TrainConfig) -> History:
    """Train ``config.preset`` on MNIST; return the :class:`History` (on every rank under DDP).

    Raises:
        ValueError: bad settings (e.g. a batch size that does not split over the processes).
        CheckpointError: ``config.resume`` is missing, corrupt or does not fit the model.
        FileNotFoundError: the MNIST data are missing (the message says what to install).
    """
    from .models import build_model

    rank, world, local_rank = _dist_info()
    device = _pick_device(config, local_rank)
    distributed = world > 1
    own_group = False
    if distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        own_group = True
    try:
        return _train(config, build_model, rank, world, device)
    finally:
        if own_group:
            dist.destroy_process_group()


def _train(config: TrainConfig, build_model, rank: int, world: int, device: torch.device) -> History:
    is_main = rank == 0
    cuda = device.type == "cuda"
    if config.batch_size % world:
        raise ValueError(f"batch_size={config.batch_size} must be divisible by the number of processes ({world})")
    local_batch = config.batch_size // world
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

    # ---- data (whole split on the device; batches are index gathers) ----
    x_train, y_train = _load_split(config, config.train_split)
    if config.subset is not None:
        x_train, y_train = x_train[: config.subset], y_train[: config.subset]
    image_size = x_train.shape[-1]
    x_train, y_train = x_train.to(device), y_train.to(device)
    if config.num_classes is not None and int(y_train.max()) >= config.num_classes:
        raise ValueError(f"num_classes={config.num_classes} but the data hold label {int(y_train.max())}")
    sampler = torch.utils.data.DistributedSampler(range(len(x_train)), num_replicas=world, rank=rank,
                                                  shuffle=True, seed=config.seed, drop_last=False)
    steps_per_epoch = math.ceil(len(sampler) / local_batch)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    n_epochs = math.ceil(total_steps / steps_per_epoch)

    # ---- model, EMA, optimizer ----
    schedule = build_schedule(config.schedule, config.T)
    torch.manual_seed(config.seed)  # initial weights (the only draw from the global RNG)
    raw = build_model(config.preset, num_classes=config.num_classes, T=config.T,
                      in_channels=x_train.shape[1], image_size=image_size, **config.model_overrides).to(device)
    if config.channels_last:
        raw = raw.to(memory_format=torch.channels_last)
    ema = EMA(raw, config.ema_decay)
    opt = torch.optim.AdamW(raw.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    gen = torch.Generator(device=device).manual_seed(config.seed * 1000 + 17 + rank)

    history = History(config=config.to_dict(), device=torch.cuda.get_device_name(device) if cuda else "cpu",
                      world_size=world)
    step, start_epoch, start_batch = 0, 0, 0
    if config.resume:
        tensors, meta = load_checkpoint(config.resume)
        if meta.get("format") != "image_track.train/1":
            raise CheckpointError(f"{config.resume} is not a training checkpoint (no optimizer state to resume)")
        if meta["model_config"] != raw.config:
            raise CheckpointError(f"{config.resume} was trained with model {meta['model_config']}, "
                                  f"not {raw.config}")
        if len(meta["rng_states"]) != world:
            raise CheckpointError(f"{config.resume} was written by {len(meta['rng_states'])} processes; "
                                  f"resume with the same number (now {world})")
        _load_into(raw, _strip("model", tensors), config.resume)
        _load_into(ema.module, _strip("ema", tensors), config.resume)
        opt.load_state_dict(join_state(meta["optimizer"], tensors))
        set_rng_state(meta["rng_states"][rank], gen)
        step, start_epoch, start_batch = meta["step"], meta["epoch"], meta["batch_in_epoch"]
        h = meta.get("history", {})
        history.epochs, history.step_losses = h.get("epochs", []), h.get("step_losses", [])
        history.train_seconds, history.images_seen = h.get("train_seconds", 0.0), h.get("images_seen", 0)

    train_model: nn.Module = raw
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(raw, device_ids=[device.index] if cuda else None)
    if config.compile:
        train_model = torch.compile(train_model)

    out_dir = Path(config.out_dir) if config.out_dir else None
    ckpt_path = out_dir / "checkpoint.safetensors" if out_dir else None
    if out_dir and is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    val = _validation_set(config, device, image_size) if is_main and config.val_split else None
    autocast = bf16_autocast(device, config.amp)
    # per-step loss weights [T], looked up by t in the loop (None: the plain loss)
    weight_of_t = loss_weights(schedule, torch.arange(config.T, device=device), config.loss_weighting,
                               gamma=config.min_snr_gamma)

    def all_rng_states() -> list:
        state = rng_state(gen)
        if world == 1:
            return [state]
        gathered: list = [None] * world
        dist.all_gather_object(gathered, state)
        return gathered

    loss_buf: list[torch.Tensor] = []  # step losses not yet copied to the host

    def flush_losses() -> None:
        if loss_buf:
            history.step_losses.extend(torch.stack(loss_buf).float().tolist())
            loss_buf.clear()

    def checkpoint(epoch: int, batch_in_epoch: int) -> None:
        flush_losses()
        states = all_rng_states()  # collective: every rank takes part
        if is_main and ckpt_path is not None:
            history.step, history.epoch = step, epoch
            _save(ckpt_path, raw=raw, ema=ema, opt=opt, config=config, schedule=schedule, step=step, epoch=epoch,
                  batch_in_epoch=batch_in_epoch, rng_states=states, history=history)
            history.checkpoint = str(ckpt_path)

    bar = None
    if is_main and config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"train {config.preset}", unit="step",
                   dynamic_ncols=True, file=sys.stderr)
    t_start = time.perf_counter()
    stop_reason = "finished"
    epoch = start_epoch
    while step < total_steps and epoch < n_epochs:
        sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(sampler)), dtype=torch.long)  # this rank's indices, [N / world]
        first_batch = start_batch if epoch == start_epoch else 0
        bucket_sum = torch.zeros(config.n_buckets, dtype=torch.float64, device=device)
        bucket_cnt = torch.zeros(config.n_buckets, dtype=torch.float64, device=device)
        loss_sum, loss_n = torch.zeros((), dtype=torch.float64, device=device), 0
        epoch_t0 = time.perf_counter()
        epoch_images = 0
        train_model.train()
        b = first_batch
        for b in range(first_batch, steps_per_epoch):
            if step >= total_steps:
                break
            idx = order[b * local_batch: (b + 1) * local_batch].to(device)
            x0, y = x_train[idx], y_train[idx]
            if config.hflip:
                from .data import random_hflip

                x0 = random_hflip(x0, gen)
            if config.channels_last:
                x0 = x0.contiguous(memory_format=torch.channels_last)
            kwargs = {}
            if config.num_classes is not None:
                drop = torch.rand(y.shape, generator=gen, device=device) < config.p_uncond
                kwargs["y"] = torch.where(drop, torch.full_like(y, config.num_classes), y)
            for g in opt.param_groups:
                g["lr"] = config.lr * lr_factor(step, total_steps, config)
            with autocast:
                terms = eps_prediction_loss(train_model, schedule, x0, generator=gen, **kwargs)
            loss = terms.loss if weight_of_t is None else (terms.per_sample * weight_of_t[terms.t]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(raw.parameters(), config.grad_clip)
            opt.step()
            ema.update(raw, step)
            step += 1
            if is_main and out_dir is not None and step in config.snapshot_steps:
                _write_weights(snapshot_path(out_dir, step), _model_tensors("ema", ema.module),
                               {"config": config.to_dict(), "model_config": raw.config,
                                "schedule": schedule.to_dict(), "step": step, "epoch": epoch}, torch.float16)
            with torch.no_grad():
                per = terms.per_sample.detach().double()
                bk = bucket_of(terms.t, config.T, config.n_buckets)
                bucket_sum.index_add_(0, bk, per)
                bucket_cnt.index_add_(0, bk, torch.ones_like(per))
                loss_sum += per.sum()
                loss_n += per.numel()
            epoch_images += x0.shape[0] * world
            if is_main:
                loss_buf.append(terms.loss.detach())  # unweighted, comparable across weightings
                if bar is not None:
                    bar.update(1)
                    if step % 10 == 0:  # the only per-step host sync, every 10 steps
                        bar.set_postfix(loss=f"{float(loss_buf[-1]):.4f}", lr=f"{opt.param_groups[0]['lr']:.2e}")
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < total_steps:
                checkpoint(epoch, b + 1)
            if config.minutes is not None and _time_up(t_start, config.minutes, world, device):
                stop_reason = "time budget"
                b += 1
                break
        else:
            b = steps_per_epoch
        elapsed = time.perf_counter() - epoch_t0
        history.train_seconds += elapsed
        history.images_seen += epoch_images
        finished_epoch = b >= steps_per_epoch
        if world > 1:
            for t_ in (bucket_sum, bucket_cnt, loss_sum):
                dist.all_reduce(t_)
            loss_n *= world
        if is_main:
            flush_losses()
            rec = {"epoch": epoch, "step": step, "complete": finished_epoch,
                   "train_loss": float(loss_sum) / max(loss_n, 1),
                   "train_loss_by_bucket": (bucket_sum / bucket_cnt.clamp(min=1)).tolist(),
                   "lr": opt.param_groups[0]["lr"], "seconds": elapsed,
                   "images_per_s": epoch_images / elapsed if elapsed > 0 else float("nan")}
            if val is not None:
                rec.update(_validate(ema.module, schedule, val, config, autocast))
            if out_dir is not None and config.sample_every_epoch:
                rec["grid"] = str(_sample_grid(ema.module, schedule, config, device, out_dir / f"samples_epoch{epoch:03d}.png"))
            history.epochs.append(rec)
            if bar is not None:
                bar.write(_epoch_line(rec))
        if finished_epoch:
            epoch += 1
            checkpoint(epoch, 0)
        else:
            checkpoint(epoch, b)
        if stop_reason != "finished":
            break
    if bar is not None:
        bar.close()
    history.step, history.epoch, history.stopped = step, epoch, stop_reason
    history.model, history.ema_model = raw, ema.module  # the trained modules (not serialised)
    if is_main and out_dir is not None:
        (out_dir / "history.json").write_text(json.dumps(history.to_dict(), indent=1))
    return history


def _time_up(t_start: float, minutes: float, world: int, device: torch.device) -> bool:
    """Whether the time budget is spent; under DDP rank 0's clock decides for everyone."""
    up = time.perf_counter() - t_start >= 60.0 * minutes
    if world == 1:
        return up
    flag = torch.tensor([1.0 if up else 0.0], device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def _epoch_line(rec: dict) -> str:
    parts = [f"epoch {rec['epoch']}", f"step {rec['step']}", f"train {rec['train_loss']:.4f}"]
    if "val_loss" in rec:
        parts.append(f"val {rec['val_loss']:.4f}")
    parts.append(f"{rec['images_per_s']:.0f} img/s")
    return " | ".join(parts)


def _validation_set(config: TrainConfig, device: torch.device, image_size: int):
    """Fixed validation images with fixed t and noise, so epochs are compared on the same draws."""
    x, y = _load_split(config, config.val_split)
    n = len(x) if config.val_size is None else min(config.val_size, len(x))
    g = torch.Generator().manual_seed(config.seed + 99991)
    x, y = x[:n], y[:n]
    t = torch.randint(0, config.T, (n,), generator=g)
    noise = torch.randn(x.shape, generator=g)
    return [v.to(device) for v in (x, y, t, noise)]


@torch.no_grad()
def _validate(model: nn.Module, schedule, val, config: TrainConfig, autocast, batch: int = 500) -> dict:
    """Validation loss of ``model`` (the EMA), overall and by t bucket; conditional models see true labels."""
    x, y, t, noise = val
    per = []
    for i in range(0, len(x), batch):
        kw = {"y": y[i:i + batch]} if config.num_classes is not None else {}
        with autocast:
            per.append(eps_prediction_loss(model, schedule, x[i:i + batch], t=t[i:i + batch],
                                           noise=noise[i:i + batch], **kw).per_sample.double())
    per_all = torch.cat(per)
    bk = bucket_of(t, config.T, config.n_buckets)
    s = torch.zeros(config.n_buckets, dtype=torch.float64, device=per_all.device).index_add_(0, bk, per_all)
    c = torch.zeros_like(s).index_add_(0, bk, torch.ones_like(per_all))
    return {"val_loss": float(per_all.mean()), "val_loss_by_bucket": (s / c.clamp(min=1)).tolist()}


def _sample_grid(model: nn.Module, schedule, config: TrainConfig, device: torch.device, path: Path) -> Path:
    from .sampling import generate, grid_image

    rows = config.grid_rows
    labels = None
    if config.num_classes is not None:
        labels = torch.arange(rows).remainder(config.num_classes).repeat_interleave(rows)  # row r: digit r
    images = generate(model, schedule, rows * rows, labels=labels, w=config.sample_w if labels is not None else None,
                      method=config.sample_method, steps=config.sample_steps, seed=config.seed, device=device)
    grid_image(images, nrow=rows).save(path)
    return path


# --------------------------------------------------------------------------------------------- command line


def add_train_arguments(p) -> None:
    """The ``toydiff mnist train`` options (shared with ``python -m image_track.train``)."""
    from toydiff.cli import int_list

    d = TrainConfig()
    p.add_argument("--preset", default=d.preset, help="UNet preset (simple, efficient, attention, tiny, fcblock)")
    p.add_argument("--num-classes", type=int, default=None, help="class-conditional with this many classes (10)")
    p.add_argument("--conditional", action="store_true", help="shorthand for --num-classes 10")
    p.add_argument("--schedule", default=d.schedule, choices=SCHEDULES)
    p.add_argument("--T", type=int, default=d.T)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--lr-decay", default=d.lr_decay, choices=LR_DECAYS)
    p.add_argument("--lr-gamma", type=float, default=d.lr_gamma)
    p.add_argument("--grad-clip", type=float, default=d.grad_clip, help="0 disables clipping")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay)
    p.add_argument("--loss-weighting", default=d.loss_weighting, choices=LOSS_WEIGHTINGS,
                   help="min-snr: Min-SNR-γ weights (Hang et al. 2023; default %(default)s)")
    p.add_argument("--min-snr-gamma", type=float, default=d.min_snr_gamma)
    p.add_argument("--p-uncond", type=float, default=d.p_uncond)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--subset", type=int, default=None, help="train on the first N images only")
    p.add_argument("--val-size", type=int, default=d.val_size)
    p.add_argument("--no-val", action="store_true")
    p.add_argument("--pad-to-32", action="store_true")
    p.add_argument("--dataset", default=d.dataset, choices=("mnist", "fashion_mnist"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--hflip", action="store_true")
    p.add_argument("--device", default=d.device)
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--out", required=True, help="output folder (checkpoint.safetensors, history.json, grids)")
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--snapshot-steps", type=int_list, default=[],
                   help="also write the EMA weights alone at these steps, e.g. a weak model for autoguidance")
    p.add_argument("--no-samples", action="store_true", help="no sample grid per epoch")
    p.add_argument("--sample-method", default=d.sample_method)
    p.add_argument("--sample-steps", type=int, default=d.sample_steps)
    p.add_argument("--minutes", type=float, default=None, help="stop cleanly (and checkpoint) after this long")
    p.add_argument("--resume", default=None, help="training checkpoint to continue from")
    p.add_argument("--no-progress", action="store_true")


def config_from_args(a) -> TrainConfig:
    num_classes = 10 if a.conditional and a.num_classes is None else a.num_classes
    return TrainConfig(
        preset=a.preset, num_classes=num_classes, schedule=a.schedule, T=a.T, epochs=a.epochs,
        max_steps=a.max_steps, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
        warmup_steps=a.warmup_steps, lr_decay=a.lr_decay, lr_gamma=a.lr_gamma,
        grad_clip=a.grad_clip or None, ema_decay=a.ema_decay, loss_weighting=a.loss_weighting,
        min_snr_gamma=a.min_snr_gamma, snapshot_steps=tuple(a.snapshot_steps), p_uncond=a.p_uncond, seed=a.seed, subset=a.subset,
        val_split=None if a.no_val else "val5k", val_size=a.val_size, pad_to_32=a.pad_to_32, dataset=a.dataset,
        data_dir=a.data_dir, hflip=a.hflip, device=a.device, amp=not a.no_amp, compile=a.compile, out_dir=a.out,
        checkpoint_every=a.checkpoint_every, sample_every_epoch=not a.no_samples, sample_method=a.sample_method,
        sample_steps=a.sample_steps, minutes=a.minutes, resume=a.resume, progress=not a.no_progress)


def run_from_args(a) -> int:
    history = train(config_from_args(a))
    if _dist_info()[0] == 0:
        last = history.epochs[-1] if history.epochs else {}
        print(f"{history.stopped}: {history.step} steps, {history.train_seconds / 60:.1f} min, "
              f"{history.images_per_s:.0f} img/s, train loss {last.get('train_loss', float('nan')):.4f}"
              + (f", val loss {last['val_loss']:.4f}" if "val_loss" in last else "")
              + (f"; checkpoint {history.checkpoint}" if history.checkpoint else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m image_track.train ...`` (what ``torchrun`` launches); same options as ``toydiff mnist train``."""
    from toydiff.cli import OneLineParser, run_guarded

    p = OneLineParser(prog="image_track.train", description="Train a UNet preset on MNIST.")
    add_train_arguments(p)
    return run_guarded(lambda: run_from_args(p.parse_args(argv)), "image_track.train")


if __name__ == "__main__":
    sys.exit(main())
