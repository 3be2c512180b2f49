"""What the ``toydiff discrete`` subcommands share: the run folder's file names, the denoiser flags (a trained
``--run`` or the ``--exact`` denoiser of a data set) and the sampler flags."""

from __future__ import annotations

from pathlib import Path

import torch

from toydiff.cli import fail
from toydiff.discrete.data import DATASETS
from toydiff.discrete.processes import DISCRETE_PROCESSES
from toydiff.discrete.samplers import DISCRETE_METHODS
from toydiff.discrete.schedules import SCHEDULES
from toydiff.options import positive, seed_arg

__all__ = ["PROG", "CHECKPOINT_NAME", "add_denoiser_flags", "add_sampling_flags", "run_for"]

PROG = "toydiff discrete"
CHECKPOINT_NAME = "checkpoint.safetensors"


def add_denoiser_flags(p) -> None:
    """``--run FOLDER`` or ``--exact`` (with ``--dataset``, ``--process``, ``--T``, ``--schedule``)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--run", help="a run folder of toydiff discrete train (default: runs/discrete)")
    g.add_argument("--exact", action="store_true", help="the exact denoiser of --dataset (no training)")
    p.add_argument("--dataset", choices=tuple(DATASETS), default=None, help="with --exact (default shapes)")
    p.add_argument("--process", choices=tuple(DISCRETE_PROCESSES), default=None, help="with --exact (default masked)")
    p.add_argument("--T", type=positive(int), default=None, help="with --exact: discrete steps (default: continuous)")
    p.add_argument("--schedule", choices=tuple(SCHEDULES), default=None, help="with --exact (default linear)")


def add_sampling_flags(p) -> None:
    p.add_argument("--method", choices=tuple(DISCRETE_METHODS), default="ancestral", help="the sampler")
    p.add_argument("--steps", type=positive(int), default=None, help="sampler steps (default: T, or 64)")
    p.add_argument("--n", type=positive(int), default=4000, help="sequences drawn")
    p.add_argument("--seed", type=seed_arg, default=0, help="seeds the sampler")


def run_for(a):
    """The :class:`~toydiff.discrete.training.DiscreteRun` the flags name (exit 2 on a missing or wrong file)."""
    from toydiff.discrete.training import DEFAULT_RECIPE, DiscreteRun, load_run, with_overrides

    if a.exact:
        recipe = with_overrides(DEFAULT_RECIPE, dataset=a.dataset, process=a.process, T=a.T, schedule=a.schedule)
        from toydiff.discrete.model import DenoiserMLP

        _, _, _, net = recipe.build()
        return DiscreteRun(recipe, DenoiserMLP(net), None, {"exact": True})
    given = [f for f in ("dataset", "process", "T", "schedule") if getattr(a, f) is not None]
    if given:
        fail(f"{PROG}: error: --{given[0]} goes with --exact (a --run carries its own)")
    folder = Path(a.run or "runs/discrete")
    path = folder / CHECKPOINT_NAME if folder.is_dir() or not folder.suffix else folder
    if not path.exists():
        fail(f"{PROG}: error: --run {folder}: no {CHECKPOINT_NAME} there (train one with "
             f"'toydiff discrete train --out {folder}', or pass --exact)")
    return load_run(path)


def draw(run, a, *, exact: bool, callback=None) -> torch.Tensor:
    """``a.n`` sequences of ``run`` by ``a.method`` over ``a.steps`` (the model, or the exact denoiser)."""
    return run.sample(a.n, method=a.method, steps=a.steps, exact=exact, callback=callback,
                      generator=torch.Generator().manual_seed(a.seed))
