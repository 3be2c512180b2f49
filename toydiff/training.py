"""Training a noise predictor: Algorithm 1 of Ho et al. 2020, generic over model and data rank.

``Trainer(model, schedule, train_data, val_data, config).fit()`` runs epochs over a fixed training set
(shuffled from the config's seed), logs the train loss, a held-out loss on *fixed* (t, ε) draws so that
epochs compare exactly, and that held-out loss split by t bucket — next to the Bayes-optimal floor per
bucket when the data's exact mixture is known. Weights are averaged by EMA (``torch.optim.swa_utils``);
checkpoints hold everything needed to resume to the very same weights as an uninterrupted run.
No plotting here (see :mod:`toydiff.toy.plots`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from . import checkpoint as ck
from .exact import GaussianMixture
from .losses import T_SAMPLINGS, bucket_of, eps_prediction_loss
from .schedules import NoiseSchedule

__all__ = ["TrainConfig", "History", "Trainer", "held_out_loss"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. The defaults are a fast recipe for the 1-D / 2-D toys.

    Attributes:
        epochs: passes over the training set.
        batch_size: points per step.
        lr: peak learning rate (AdamW), reached after ``warmup_steps`` and decayed by ``lr_schedule``.
        lr_schedule: ``"cosine"`` (to 0 at the last step) or ``"constant"``.
        ema_decay: EMA decay of the weights, or ``None`` for no EMA.
        grad_clip: max gradient norm, or ``None``.
        n_buckets: equal-width t buckets for the loss split.
        t_sampling: how training steps are drawn: ``"uniform"`` (Ho et al. 2020) or ``"low-noise"``
            (more of the last steps; see :func:`toydiff.losses.sample_timesteps`). The held-out loss is
            always the uniform-t one, so it stays comparable with the Bayes floor; the training loss is not.
        seed: seeds data order, t and ε draws (the held-out draws use ``seed + 1``).
    """

    epochs: int = 60
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup_steps: int = 50
    lr_schedule: str = "cosine"
    ema_decay: float | None = 0.995
    grad_clip: float | None = 1.0
    n_buckets: int = 10
    t_sampling: str = "uniform"
    seed: int = 0

    def __post_init__(self):
        if self.t_sampling not in T_SAMPLINGS:
            raise ValueError(f"t_sampling must be one of {T_SAMPLINGS}, got {self.t_sampling!r}")
        for name in ("epochs", "batch_size", "n_buckets"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}")


@dataclass
class History:
    """Per-epoch records: ``epoch, step, train_loss, val_loss, val_by_bucket, lr, seconds``; plus the floors."""

    records: list[dict] = field(default_factory=list)
    n_buckets: int = 10
    floor: float | None = None
    floor_by_bucket: list[float] | None = None

    def column(self, key: str) -> list:
        return [r[key] for r in self.records]

    @property
    def train_loss(self) -> list[float]:
        return self.column("train_loss")

    @property
    def val_loss(self) -> list[float]:
        return self.column("val_loss")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)


def held_out_loss(model: Callable, schedule: NoiseSchedule, x0: torch.Tensor, *, seed: int = 1,
                  n_buckets: int = 10, batch_size: int = 65_536) -> tuple[float, list[float]]:
    """The ε-prediction loss of ``model`` on ``x0 [N, *event]`` at fixed (t, ε) drawn from ``seed``.

    Returns ``(mean loss, mean loss per t bucket)``. Fixed draws make numbers comparable across epochs and
    between models. With the exact ε* as ``model`` this is the Bayes-optimal floor on the same draws — the
    paired comparison the :class:`Trainer` reports, whose ratio is not blurred by which held-out points
    happened to be drawn (on 2 000 points that noise alone is several percent of the loss).
    """
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, schedule.T, (x0.shape[0],), generator=g)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64).to(x0.dtype)  # same draws at any dtype
    per = []
    with torch.no_grad():
        for sl in torch.arange(x0.shape[0]).split(batch_size):
            per.append(eps_prediction_loss(model, schedule, x0[sl], t=t[sl], noise=noise[sl]).per_sample)
    per_sample = torch.cat(per)
    b = bucket_of(t, schedule.T, n_buckets)
    by_bucket = [per_sample[b == k].mean().item() if (b == k).any() else float("nan") for k in range(n_buckets)]
    return per_sample.mean().item(), by_bucket


class Trainer:
    """Trains ``model(x_t, t) -> eps_hat`` on ``train_data [N, *event]`` with the DDPM loss.

    Args:
        model: the noise predictor (an ``nn.Module``).
        schedule: the noise schedule.
        train_data, val_data: tensors ``[N, *event]`` (already normalised, if normalising).
        config: :class:`TrainConfig`.
        oracle: the exact law of the (normalised) data, if known: gives the loss floors.
        metadata: extra JSON stored in checkpoints (model config, normalisation, data set name...).
        fresh_data: ``fresh_data(n, generator) -> [n, *event]`` draws a new training set of
            ``len(train_data)`` points for every epoch after the first (from the trainer's generator, so a
            resumed run draws the same points). For toy distributions one can sample without end; fresh
            points remove the training set's own sampling error (e.g. its mode weights being off by
            ~1/√N), which a model otherwise learns faithfully.
    """

    def __init__(self, model: nn.Module, schedule: NoiseSchedule, train_data: torch.Tensor, val_data: torch.Tensor,
                 config: TrainConfig = TrainConfig(), *, oracle: GaussianMixture | None = None,
                 metadata: dict | None = None,
                 fresh_data: Callable[[int, torch.Generator], torch.Tensor] | None = None):
        if train_data.ndim < 2 or train_data.shape[0] < 1:
            raise ValueError(f"train_data must have shape [N, *event], got {tuple(train_data.shape)}")
        if val_data.shape[1:] != train_data.shape[1:]:
            raise ValueError(f"val_data points {tuple(val_data.shape[1:])} differ from train_data's {tuple(train_data.shape[1:])}")
        self.model, self.schedule, self.config = model, schedule, config
        self.train_data, self.val_data = train_data, val_data
        self.fresh_data = fresh_data
        self.metadata = dict(metadata or {})
        self.generator = torch.Generator().manual_seed(config.seed)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.steps_per_epoch = math.ceil(train_data.shape[0] / config.batch_size)
        total = config.epochs * self.steps_per_epoch
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factory(total))
        self.ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
                    if config.ema_decay is not None else None)
        self.step = 0
        self.epoch = 0
        self.history = History(n_buckets=config.n_buckets)
        if oracle is not None:
            # the oracle's loss on the very (x0, t, eps) draws the model is scored on: the same estimate of
            # the Bayes floor E||eps - eps*||^2, and free of the held-out set's own sampling noise
            floor, floor_by_bucket = held_out_loss(oracle.eps_fn(schedule), schedule, val_data,
                                                   seed=config.seed + 1, n_buckets=config.n_buckets)
            self.history.floor, self.history.floor_by_bucket = floor, floor_by_bucket

    def _lr_factory(self, total: int) -> Callable[[int], float]:
        warm, cosine = self.config.warmup_steps, self.config.lr_schedule == "cosine"

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            if not cosine:
                return 1.0
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

        return factor

    @property
    def eval_model(self) -> nn.Module:
        """The weights to sample with: the EMA average if there is one."""
        return self.ema.module if self.ema is not None else self.model

    def _train_epoch(self, bar: tqdm | None) -> float:
        self.model.train()
        data = self.train_data
        if self.fresh_data is not None and self.epoch > 0:
            data = self.fresh_data(data.shape[0], self.generator).to(data)
            if data.shape != self.train_data.shape:
                raise ValueError(f"fresh_data returned shape {tuple(data.shape)}, expected {tuple(self.train_data.shape)}")
        perm = torch.randperm(data.shape[0], generator=self.generator)
        total, count = 0.0, 0
        for idx in perm.split(self.config.batch_size):
            x0 = data[idx]
            loss = eps_prediction_loss(self.model, self.schedule, x0, generator=self.generator,
                                       t_sampling=self.config.t_sampling).loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.lr_scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            self.step += 1
            total += loss.item() * x0.shape[0]
            count += x0.shape[0]
            if bar is not None:
                bar.update(1)
        return total / count

    def fit(self, *, progress: bool = True, checkpoint: str | Path | None = None,
            on_epoch: Callable[[dict], None] | None = None) -> History:
        """Train until ``config.epochs`` (continuing from where a resumed trainer stopped).

        Args:
            progress: tqdm bar over steps.
            checkpoint: path written atomically after every epoch.
            on_epoch: called with each epoch's record (live figures, Streamlit progress...).
        """
        remaining = self.config.epochs - self.epoch
        bar = tqdm(total=remaining * self.steps_per_epoch, desc="training", disable=not progress, leave=False)
        try:
            while self.epoch < self.config.epochs:
                t0 = time.perf_counter()
                train_loss = self._train_epoch(bar)
                self.eval_model.eval()
                val, by_bucket = held_out_loss(self.eval_model, self.schedule, self.val_data,
                                               seed=self.config.seed + 1, n_buckets=self.config.n_buckets)
                self.epoch += 1
                record = {"epoch": self.epoch, "step": self.step, "train_loss": train_loss, "val_loss": val,
                          "val_by_bucket": by_bucket, "lr": self.lr_scheduler.get_last_lr()[0],
                          "seconds": time.perf_counter() - t0}
                self.history.records.append(record)
                bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val:.4f}")
                if checkpoint is not None:
                    self.save(checkpoint)
                if on_epoch is not None:
                    on_epoch(record)
        finally:
            bar.close()
        return self.history

    # --- checkpoints ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write weights, EMA, optimiser, LR schedule, RNG state and history atomically to ``path``."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        opt_tensors, opt_skeleton = ck.split_state(self.optimizer.state_dict(), "optim")
        tensors.update(opt_tensors)
        meta = {
            "kind": "toydiff.toy",
            "config": asdict(self.config),
            "schedule": self.schedule.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "rng": ck.rng_state(self.generator),
            "optim": opt_skeleton,
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "history": self.history.to_dict(),
            **self.metadata,
        }
        return ck.save_checkpoint(path, tensors, meta)

    def load(self, path: str | Path) -> "Trainer":
        """Restore the state saved by :meth:`save` into this trainer (same model and config)."""
        tensors, meta = ck.load_checkpoint(path)
        if meta.get("kind") != "toydiff.toy":
            raise ck.CheckpointError(f"{path} is not a toy-track training checkpoint")
        if NoiseSchedule.from_dict(meta["schedule"]) != self.schedule:
            raise ck.CheckpointError(f"{path} was trained with a different noise schedule ({meta['schedule']['name']})")
        if {k: v for k, v in meta["config"].items() if k != "epochs"} != \
                {k: v for k, v in asdict(self.config).items() if k != "epochs"}:
            raise ck.CheckpointError(f"{path} was trained with a different TrainConfig: {meta['config']}")
        load_weights(self.model, tensors, "model.", path)
        if self.ema is not None:
            load_weights(self.ema, tensors, "ema.", path)
        self.optimizer.load_state_dict(ck.join_state(meta["optim"], tensors))
        self.lr_scheduler.load_state_dict(meta["lr_scheduler"])
        ck.set_rng_state(meta["rng"], self.generator)
        self.step, self.epoch = meta["step"], meta["epoch"]
        self.history = History.from_dict(meta["history"])
        return self


def load_weights(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, source: Any = "checkpoint") -> None:
    """Load ``prefix``-ed tensors into ``module``; a missing key or a shape mismatch is a CheckpointError."""
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) or first[0]
        raise ck.CheckpointError(f"{source}: weights do not fit the model ({detail})") from None
