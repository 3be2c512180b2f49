"""A class-conditional toy MLP trained with label dropout, for classifier-free guidance on 2-D points.

``ConditionalMLP(config)(x [B, D], t LongTensor [B], y LongTensor [B]) -> eps_hat [B, D]``: the toy MLP
(:mod:`toydiff.toy.models`) on ``concat(x, embed(t), embed(y))`` with a learned class embedding of
``n_classes + 1`` rows; the last one (``y = n_classes``, :attr:`ConditionalMLP.null_label`) is the *null
class*. Training replaces each label by the null class with probability ``p_uncond`` (label dropout, Ho &
Salimans 2022), so one network gives both ε_c and ε_u. Training runs through the shared engine
(:class:`toydiff.training.Trainer`) with :class:`LabelledBatches`; the unconditional toy path is untouched.

    run = train_conditional("8gaussians_4class", epochs=40)
    eps_c = run.eps_fn(1)                      # ε̂(x_t, t | y = 1) in model units
    guided = td.classifier_free_guidance(run.eps_fn(1), run.eps_fn(None), w=3.0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from toydiff.checks import check_int, check_number
from toydiff.exact.guidance import labelled_eps_fn
from toydiff.training.hooks import HeldOutLoss
from toydiff.training.losses import held_out_draws
from toydiff.processes.schedules import NoiseSchedule
from toydiff.training.engine import TrainConfig, Trainer
from toydiff.toy.datasets import Normalizer
from toydiff.toy.labelled import LabelledDataset, get_labelled
from toydiff.toy.models import MLPConfig, embed_time, mlp_net
from toydiff.toy.recipes import RECIPE_2D
from toydiff.toy.training import KIND, _ToyRecords

__all__ = ["ConditionalMLPConfig", "ConditionalMLP", "LabelledBatches", "ConditionalRun", "conditional_trainer",
           "train_conditional"]


@dataclass(frozen=True)
class ConditionalMLPConfig(MLPConfig):
    """:class:`~toydiff.toy.models.MLPConfig` plus ``n_classes`` (C) and ``class_dim`` (the class embedding's width)."""

    n_classes: int = 2
    class_dim: int = 16

    def __post_init__(self):
        super().__post_init__()
        check_int(self.n_classes, "n_classes", min=1)
        check_int(self.class_dim, "class_dim", min=1)


class ConditionalMLP(nn.Module):
    """ε̂(x_t, t, y): an MLP on ``concat(x_t, embed(t), embed(y))``; ``[B, D], [B], [B] -> [B, D]``."""

    def __init__(self, config: ConditionalMLPConfig):
        super().__init__()
        self.config = config
        self.class_embed = nn.Embedding(config.n_classes + 1, config.class_dim)
        self.net = mlp_net(config, extra_in=config.class_dim)

    def embed_time(self, t: torch.Tensor) -> torch.Tensor:
        return embed_time(self.config, t)

    @property
    def null_label(self) -> int:
        """The null class (C): the label that asks for the unconditional ε̂."""
        return self.config.n_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.config.dim:
            raise ValueError(f"x must have shape [B, {self.config.dim}], got {tuple(x.shape)}")
        if t.shape != (x.shape[0],) or y.shape != (x.shape[0],):
            raise ValueError(f"t and y must have shape [B={x.shape[0]}], got {tuple(t.shape)} and {tuple(y.shape)}")
        if int(y.min()) < 0 or int(y.max()) > self.null_label:
            raise ValueError(f"y must be class ids in [0, {self.null_label}] ({self.null_label}: the null class)")
        h = torch.cat([x.to(torch.float32), self.embed_time(t).to(x.device), self.class_embed(y.long())], dim=1)
        return self.net(h).to(x.dtype)


class LabelledBatches:
    """Shuffled batches ``(x [B, D], {"y": y [B]})`` of labelled points, each label replaced by ``null_label``
    with probability ``p_uncond`` (label dropout), a new draw every epoch. ``fresh(n, generator) -> (x, y)``
    gives a new training set for every epoch after the first."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, p_uncond: float, null_label: int,
                 fresh: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None = None):
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise ValueError(f"x must be [N, D] and y [N], got {tuple(x.shape)} and {tuple(y.shape)}")
        self.x, self.y, self.fresh = x, y.long(), fresh
        self.batch_size = check_int(batch_size, "batch_size", min=1)
        self.p_uncond = check_number(p_uncond, "p_uncond", min=0.0, max=1.0)
        self.null_label = check_int(null_label, "null_label", min=0)
        self.steps_per_epoch = math.ceil(x.shape[0] / batch_size)

    def epoch(self, epoch: int, start: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, dict]]:
        if start:
            raise ValueError("LabelledBatches cannot resume in the middle of an epoch")
        x, y = self.x, self.y
        if self.fresh is not None and epoch > 0:
            x, y = self.fresh(x.shape[0], generator)
            x, y = x.to(self.x), y.long()
        drop = torch.rand(y.shape, generator=generator) < self.p_uncond
        y = torch.where(drop, self.null_label, y)
        for idx in torch.randperm(x.shape[0], generator=generator).split(self.batch_size):
            yield x[idx], {"y": y[idx]}


@dataclass
class ConditionalRun:
    """A trained conditional toy denoiser: ``model`` (EMA weights, model units), data set, schedule, normalisation."""

    dataset: LabelledDataset
    schedule: NoiseSchedule
    normalizer: Normalizer
    model: ConditionalMLP
    history: object = None

    @property
    def oracle(self):
        """The labelled exact law of the normalised data, or ``None``."""
        return self.normalizer.oracle(self.dataset.mixture) if self.dataset.has_oracle else None

    def eps_fn(self, y: int | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``eps_fn(x_t, t)`` for class ``y`` (``None``: the null class, i.e. unconditional), model units."""
        label = self.model.null_label if y is None else check_int(y, "y", min=0, max=self.model.null_label - 1)
        model = self.model.eval()

        def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return model(x.float(), t, torch.full((x.shape[0],), label, dtype=torch.long)).to(x.dtype)

        return eps


def conditional_trainer(dataset: LabelledDataset, schedule: NoiseSchedule, model_config: ConditionalMLPConfig,
                        config: TrainConfig, *, n_train: int, n_val: int = 2000, p_uncond: float = 0.1,
                        fresh: bool = True) -> tuple[Trainer, Normalizer]:
    """The engine set up for a conditional toy run: ``n_train + n_val`` labelled points drawn with ``config.seed``,
    normalised by the training part; the held-out loss uses the true labels and, with an oracle, sits next to the
    exact conditional ε*'s loss on the same draws (the floor)."""
    g = torch.Generator().manual_seed(config.seed)
    x, y = dataset.sample(n_train + n_val, g)
    normalizer = Normalizer.fit(x[:n_train])
    xn = normalizer.forward(x)
    torch.manual_seed(config.seed)  # the MLP's initial weights
    model = ConditionalMLP(model_config)
    fresh_fn = (lambda n, gen: (lambda p: (normalizer.forward(p[0]), p[1]))(dataset.sample(n, gen))) if fresh else None
    batches = LabelledBatches(xn[:n_train], y[:n_train], config.batch_size, p_uncond=p_uncond,
                              null_label=model.null_label, fresh=fresh_fn)
    t, noise = held_out_draws(schedule, xn[n_train:].shape, seed=config.seed + 1)
    held = HeldOutLoss(xn[n_train:], t, noise.to(xn.dtype), n_buckets=config.n_buckets,
                       model_kwargs={"y": y[n_train:]})
    meta = {"dataset": dataset.name, "model_config": asdict(model_config), "normalizer": normalizer.to_dict(),
            "p_uncond": p_uncond, "n_train": n_train}
    trainer = Trainer(model, schedule, batches, config, hooks=[held, _ToyRecords()], kind=KIND + ".conditional",
                      metadata=meta)
    if dataset.has_oracle:
        oracle = normalizer.oracle(dataset.mixture)
        trainer.history.floor, trainer.history.floor_by_bucket = held.evaluate(labelled_eps_fn(oracle, schedule),
                                                                               schedule)
    return trainer, normalizer


def train_conditional(dataset: str | LabelledDataset = "8gaussians_4class", *, epochs: int = 40, seed: int = 0,
                      p_uncond: float = 0.1, n_train: int = RECIPE_2D.n_train, width: int = RECIPE_2D.width,
                      depth: int = RECIPE_2D.depth, **train_overrides) -> ConditionalRun:
    """Train a conditional MLP on a labelled 2-D data set with the 2-D recipe (schedule, optimiser), in memory."""
    ds = get_labelled(dataset) if isinstance(dataset, str) else dataset
    schedule = RECIPE_2D.schedule()
    mc = ConditionalMLPConfig(dim=ds.dim, width=width, depth=depth, activation=RECIPE_2D.activation,
                              time_input=RECIPE_2D.time_input, n_classes=ds.n_classes)
    config = RECIPE_2D.train_config(epochs=check_int(epochs, "epochs", min=1), seed=seed, **train_overrides)
    trainer, normalizer = conditional_trainer(ds, schedule, mc, config, n_train=n_train, p_uncond=p_uncond)
    history = trainer.fit()
    return ConditionalRun(ds, schedule, normalizer, trainer.eval_model, history)
