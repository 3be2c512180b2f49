"""Train a :class:`~toydiff.discrete.model.DenoiserMLP` on a table's data through the one engine
(:class:`toydiff.training.Trainer`), and load it back.

    run = train_discrete(Recipe(dataset="shapes", process="masked"), checkpoint="runs/d/checkpoint.safetensors")
    run.history.val_loss[-1], run.history.floor          # the held-out loss next to the Bayes floor (same draws)
    x = run.sample(2000, method="ancestral", steps=64, generator=g)
    run = load_run("runs/d/checkpoint.safetensors")       # the EMA weights, the process, the data set

Every epoch draws fresh sequences from the table (the data are unlimited; no memorisation); the held-out loss is
the objective's (:mod:`toydiff.discrete.objectives`) on fixed draws, and ``history.floor`` is the exact
denoiser's loss on the very same draws (the Bayes floor, up to nothing: same x₀, t and noise). Checkpoints are
the engine's (atomic, content-hashed, kind ``toydiff.discrete.train``); a resumed run is bit-identical to an
uninterrupted one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from toydiff.checks import check_choice, check_int, check_number
from toydiff.discrete.data import DATASETS, dataset
from toydiff.discrete.model import DenoiserConfig, DenoiserMLP
from toydiff.discrete.objectives import objective_for
from toydiff.discrete.processes import DISCRETE_PROCESSES, process_from_dict
from toydiff.discrete.schedules import SCHEDULES
from toydiff.training import checkpoint as ck
from toydiff.training.config import History, TrainConfig
from toydiff.training.engine import Trainer
from toydiff.training.hooks import HeldOutLoss, Hook, ProgressBar

__all__ = ["Recipe", "DEFAULT_RECIPE", "DiscreteRun", "train_discrete", "load_run", "KIND"]

#: the checkpoint kind tag of a discrete run
KIND = "toydiff.discrete.train"
ck.register_kind(KIND, "a discrete-diffusion checkpoint (toydiff discrete train)")


@dataclass(frozen=True)
class Recipe:
    """Everything a discrete run is: data, process, network, optimisation (the CLI's flags, one each).

    ``T`` None is continuous time; ``hybrid`` is D3PM's λ (the uniform process's loss); ``n_train`` sequences are
    drawn fresh every epoch; ``steps`` is the run's length in optimiser steps."""

    dataset: str = "shapes"
    process: str = "masked"
    T: int | None = None
    schedule: str = "linear"
    width: int = 128
    depth: int = 3
    steps: int = 1500
    batch_size: int = 256
    lr: float = 2e-3
    warmup_steps: int = 50
    ema_decay: float | None = 0.99
    n_train: int = 8192
    n_val: int = 4000
    hybrid: float = 0.01
    seed: int = 0

    def __post_init__(self):
        check_choice(self.dataset, "dataset", tuple(DATASETS))
        check_choice(self.process, "process", tuple(DISCRETE_PROCESSES))
        check_choice(self.schedule, "schedule", tuple(SCHEDULES))
        if self.T is not None:
            check_int(self.T, "T", min=1)
        for name in ("width", "depth", "steps", "batch_size", "n_train", "n_val"):
            check_int(getattr(self, name), name, min=0 if name == "depth" else 1)
        check_number(self.hybrid, "hybrid", min=0.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def build(self):
        """(the data set, the process, the objective, the network config) this recipe describes."""
        dist = dataset(self.dataset)
        proc = process_from_dict({"process": self.process, "T": self.T, "V": dist.V, "schedule": self.schedule})
        obj = objective_for(proc, **({} if proc.has_mask else {"hybrid": self.hybrid}))
        net = DenoiserConfig(L=dist.L, V=dist.V, K=proc.n_states(), width=self.width, depth=self.depth)
        return dist, proc, obj, net

    def train_config(self) -> TrainConfig:
        return TrainConfig(batch_size=self.batch_size, lr=self.lr, warmup_steps=self.warmup_steps,
                           ema_decay=self.ema_decay, max_steps=self.steps, seed=self.seed, epochs=1)


#: the default recipe (chosen by bench/discrete_recipe.py; docs/discrete.md has its table)
DEFAULT_RECIPE = Recipe()


class DiscreteRun:
    """A trained (or loaded) discrete model with its data set, process and objective."""

    def __init__(self, recipe: Recipe, model: DenoiserMLP, history: History | None = None, meta: dict | None = None):
        self.recipe, self.model, self.history, self.meta = recipe, model.eval(), history, meta or {}
        self.dist, self.process, self.objective, _ = recipe.build()

    def denoiser(self):
        """The model as ``fn(x_t [B, L], t [B]) -> p(x₀ⁱ | x_t) [B, L, V]`` (no gradients)."""
        return torch.no_grad()(self.objective.network_fn(self.model))

    def exact(self):
        """The exact denoiser of the same data under the same process."""
        return self.dist.denoiser(self.process)

    def sample(self, n: int, *, method: str | None = None, steps: int | None = None, exact: bool = False,
               generator: torch.Generator | None = None, callback=None) -> torch.Tensor:
        """``n`` sequences ``[n, L]`` from the model (or the exact denoiser) by the process's sampler."""
        fn = self.exact() if exact else self.denoiser()
        return self.process.sample(fn, self.process.prior(n, self.dist.L, generator=generator), method=method,
                                   steps=steps, generator=generator, callback=callback)


class _Floor(Hook):
    """Puts the exact denoiser's held-out loss (the Bayes floor on the same draws) into the history once."""

    def __init__(self, held: HeldOutLoss, fn):
        self.held, self.fn = held, fn

    def on_fit_start(self, trainer) -> None:
        if trainer.history.floor is None:
            trainer.history.floor, trainer.history.floor_by_bucket = self.held.evaluate(self.fn, trainer.objective)


class _Record(Hook):
    """Appends each epoch's record (train and held-out loss, lr, seconds) to the history."""

    def on_epoch_end(self, trainer, stats) -> None:
        r = stats.record
        trainer.history.records.append({k: r[k] for k in ("epoch", "step", "train_loss", "val_loss", "val_by_bucket",
                                                          "lr", "seconds") if k in r})


class TableBatches:
    """Fresh sequences every epoch: ``n`` draws from the table and their order, both from a generator seeded by
    ``(seed, epoch)`` alone, so that a run resumes at any batch (the engine's generator is left to the loss)."""

    def __init__(self, dist, n: int, batch_size: int, seed: int):
        self.dist, self.n, self.batch_size, self.seed = dist, n, batch_size, seed
        self.steps_per_epoch = -(-n // batch_size)

    def epoch(self, epoch: int, start: int, generator: torch.Generator):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        data = self.dist.sample(self.n, g)
        for idx in torch.randperm(self.n, generator=g).split(self.batch_size)[start:]:
            yield data[idx], {}


def make_trainer(recipe: Recipe, *, checkpoint: str | Path | None = None, progress: bool = False,
                 hooks: tuple = ()) -> Trainer:
    """The engine set up for ``recipe``: fresh data every epoch, the held-out loss and its floor every epoch."""
    dist, proc, obj, net = recipe.build()
    torch.manual_seed(recipe.seed)  # the network's initial weights
    model = DenoiserMLP(net)
    g = torch.Generator().manual_seed(recipe.seed)
    data = TableBatches(dist, recipe.n_train, recipe.batch_size, recipe.seed)
    x_val = dist.sample(recipe.n_val, torch.Generator().manual_seed(recipe.seed + 1_000_003))
    t_val, noise_val = obj.held_out_draws(x_val.shape, seed=recipe.seed + 2)
    held = HeldOutLoss(x_val, t_val, noise_val, batch_size=4096)
    extra = [ProgressBar(desc="train", unit="step", epoch_postfix=lambda r: {"val": f"{r['val_loss']:.4f}"})] \
        if progress else []
    meta = {"discrete": {"recipe": recipe.to_dict(), "model": net.to_dict(), "dataset": recipe.dataset}}
    return Trainer(model, obj, data, recipe.train_config(), hooks=[_Floor(held, dist.denoiser(proc)), held, _Record(),
                                                                   *extra, *hooks],
                   kind=KIND, metadata=meta, generator=g, checkpoint=checkpoint)


def train_discrete(recipe: Recipe = DEFAULT_RECIPE, *, checkpoint: str | Path | None = None, resume: bool = False,
                   progress: bool = False, hooks: tuple = ()) -> DiscreteRun:
    """Train ``recipe`` (continuing the run in ``checkpoint`` with ``resume``); the EMA model as a :class:`DiscreteRun`."""
    trainer = make_trainer(recipe, checkpoint=checkpoint, progress=progress, hooks=hooks)
    if resume:
        trainer.load(checkpoint)
    history = trainer.fit()
    return DiscreteRun(recipe, trainer.eval_model, history, {"step": trainer.step})


def read_recipe(path: str | Path) -> Recipe:
    """The recipe a discrete checkpoint was trained with (a CheckpointError if the file is not one)."""
    _, meta = ck.load_checkpoint(path)
    ck.require_kind(meta, (KIND,), path, "a discrete model needs a checkpoint of toydiff discrete train")
    return Recipe.from_dict(meta["discrete"]["recipe"])


def load_run(path: str | Path) -> DiscreteRun:
    """The run a discrete checkpoint holds (its EMA weights if it has them), verified (content hash, kind)."""
    tensors, meta = ck.load_checkpoint(path)
    ck.require_kind(meta, (KIND,), path, "a discrete model needs a checkpoint of toydiff discrete train")
    recipe = Recipe.from_dict(meta["discrete"]["recipe"])
    model = DenoiserMLP(DenoiserConfig(**meta["discrete"]["model"]))
    prefix = "ema." if any(k.startswith("ema.") for k in tensors) else "model."
    ck.load_weights(model, tensors, prefix, source=path)
    history = History(**meta["history"]) if "history" in meta else None
    return DiscreteRun(recipe, model, history, meta)


def with_overrides(recipe: Recipe, **values) -> Recipe:
    """``recipe`` with the given non-None fields replaced."""
    return replace(recipe, **{k: v for k, v in values.items() if v is not None})


def summary(run: DiscreteRun) -> dict:
    """The run's last held-out loss, its floor and their ratio (JSON-ready)."""
    h = run.history
    last = h.val_loss[-1] if h is not None and h.records else None
    ratio = last / h.floor if last is not None and h.floor else None
    return json.loads(json.dumps({"val_loss": last, "floor": None if h is None else h.floor, "ratio": ratio,
                                  "exact_floor": run.objective.exact_floor(run.dist)}))
