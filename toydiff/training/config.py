"""The training engine's settings (:class:`TrainConfig`) and per-epoch record (:class:`History`).

Re-exported by :mod:`toydiff.training`, which holds the loop (:class:`~toydiff.training.Trainer`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from toydiff.checks import check_choice, check_int, check_number
from toydiff.training.losses import LOSS_WEIGHTINGS, T_SAMPLINGS
from toydiff.training.lr import LR_SCHEDULES
from toydiff.options import MAX_SEED, float_list, option, seed_arg

__all__ = ["TrainConfig", "History"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of the engine. The defaults are a fast recipe for the 1-D / 2-D toys.

    Attributes:
        epochs: passes over the training set (the run's length unless ``max_steps`` is given).
        batch_size: points per step (the global batch under DDP).
        lr, weight_decay, betas: AdamW; ``lr`` is the peak, reached after ``warmup_steps``.
        lr_schedule, min_lr_ratio, lr_gamma: the decay after warm-up (:func:`toydiff.training.lr.lr_factor`).
        ema_decay, ema_warmup: the EMA of the weights (:class:`toydiff.training.ema.EMA`), or ``None`` for none.
        grad_clip: max gradient norm, or ``None``.
        n_buckets: equal-width t buckets for the loss split.
        t_sampling: how training steps are drawn (:func:`toydiff.training.losses.sample_timesteps`); held-out
            losses always use uniform t, so they stay comparable with the Bayes floor.
        loss_weighting, min_snr_gamma: per-step loss weights (:func:`toydiff.training.losses.loss_weights`).
        max_steps: the run's length in steps (overrides ``epochs``).
        checkpoint_every: also checkpoint every this many steps (one is always written at every epoch end).
        seed: seeds data order, t and ε draws.
    """

    epochs: int = option(60, "passes over the training set")
    batch_size: int = option(256, "points per step")
    lr: float = option(3e-3, "peak learning rate (AdamW)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup_steps: int = option(50, "linear warm-up steps")
    lr_schedule: str = option("cosine", "decay after warm-up", choices=LR_SCHEDULES)
    ema_decay: float | None = option(0.995, "EMA decay of the weights; 0: no EMA", zero_is_none=True)
    grad_clip: float | None = option(1.0, "max gradient norm; 0: no clipping", zero_is_none=True)
    n_buckets: int = option(10, "equal-width t buckets of the loss split")
    t_sampling: str = option("uniform", "how training steps are drawn; low-noise: more of the last steps "
                             "(sharper modes; the toy recipes' default)", choices=T_SAMPLINGS)
    seed: int = option(0, "seeds the random draws of the run", type=seed_arg)
    betas: tuple[float, float] = option((0.9, 0.999), "AdamW betas, e.g. 0.9,0.999", type=float_list)
    min_lr_ratio: float = option(0.0, "cosine floor, as a fraction of the peak")
    lr_gamma: float = option(0.9995, "exponential decay per step after warm-up")
    ema_warmup: bool = option(False, "EMA decay warm-up min(d, (1+k)/(10+k))")
    loss_weighting: str = option("uniform", "min-snr: Min-SNR-γ weights (Hang et al. 2023)", choices=LOSS_WEIGHTINGS)
    min_snr_gamma: float = option(5.0, "γ of the Min-SNR weights")
    max_steps: int | None = option(None, "run length in steps (overrides the epochs)", type=int)
    checkpoint_every: int | None = option(None, "also checkpoint every N steps", type=int)

    def __post_init__(self):
        check_choice(self.t_sampling, "t_sampling", T_SAMPLINGS)
        check_choice(self.lr_schedule, "lr_schedule", LR_SCHEDULES)
        check_choice(self.loss_weighting, "loss_weighting", LOSS_WEIGHTINGS)
        for name in ("epochs", "batch_size", "n_buckets"):
            check_int(getattr(self, name), name, min=1)
        for name in ("max_steps", "checkpoint_every"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, min=1)
        check_int(self.warmup_steps, "warmup_steps", min=0)
        check_int(self.seed, "seed", min=0, max=MAX_SEED)
        if not check_number(self.lr, "lr") > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not check_number(self.min_snr_gamma, "min_snr_gamma") > 0:
            raise ValueError(f"min_snr_gamma must be positive, got {self.min_snr_gamma!r}")
        if self.ema_decay is not None and not 0 <= check_number(self.ema_decay, "ema_decay") < 1:
            raise ValueError(f"ema_decay must lie in [0, 1) or be None, got {self.ema_decay!r}")
        if self.grad_clip is not None and not check_number(self.grad_clip, "grad_clip") > 0:
            raise ValueError(f"grad_clip must be None or positive, got {self.grad_clip!r}")
        check_number(self.weight_decay, "weight_decay", min=0.0)
        check_number(self.min_lr_ratio, "min_lr_ratio", min=0.0, max=1.0)
        check_number(self.lr_gamma, "lr_gamma", min=0.0, max=1.0)
        object.__setattr__(self, "betas", tuple(self.betas))
        if len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers, got {self.betas!r}")

    def to_dict(self) -> dict:
        """JSON-ready (``betas`` as a list)."""
        return json.loads(json.dumps(asdict(self)))


@dataclass
class History:
    """Per-epoch records (the toy track: ``epoch, step, train_loss, val_loss, val_by_bucket, lr, seconds``)
    and the Bayes floors."""

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

    def load_dict(self, d: dict) -> None:
        """Take over the state of a checkpoint's history (on resume)."""
        self.__dict__.update(self.from_dict(d).__dict__)
