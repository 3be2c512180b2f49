"""Progressive distillation of a toy run (Salimans & Ho 2022; the objective: :mod:`toydiff.training.distill`).

    runs = distill_toy(load_toy("runs/8g-fm"), rounds=3, out="runs/8g-pd")   # 8 → 4 → 2 → 1 steps
    runs[-1].sample(10_000, **runs[-1].process.step_options(1))              # the 1-step student

Each round trains a copy of its teacher (the run, then the previous round's student) with the shared engine
(:class:`~toydiff.toy.training.ToyTrainer`: fresh data points every epoch, the held-out distillation loss on
fixed draws) and writes ``round{r}_{N}steps.safetensors`` into ``out``: an ordinary toy run of the same process
(``toydiff toy sample --run FILE``) whose metadata's ``distilled`` record names the teacher's hash, the round,
the steps and the sampler keywords (DDIM with trailing spacing for VP, Euler for a linear-path flow).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from toydiff.checks import check_int
from toydiff.training.distill import distil, file_sha256, halving_rounds
from toydiff.toy.recipes import default_recipe
from toydiff.toy.training import ToyTrainer

__all__ = ["distill_toy", "few_step_distances"]


def distill_toy(run, *, rounds: int, start_steps: int | None = None, steps_per_round: int = 1500, seed: int = 0,
                out: str | Path | None = None, resume: bool = False, progress: bool = False,
                weighting: str = "truncated-snr", source: str | Path | None = None) -> list:
    """Distil ``run`` (a trained :class:`~toydiff.toy.run.ToyRun`) over ``rounds`` halving rounds from
    ``start_steps`` (default ``2 ** rounds``: the last student takes one step); return one run per round.

    Each round: ``steps_per_round`` optimiser steps of the data set's recipe (batch, lr, EMA), seed ``seed``.
    ``source``: the teacher's checkpoint file (its SHA-256 goes into the students' metadata).
    """
    from toydiff.toy.run import ToyRun

    if run.model is None:
        raise ValueError("run has no trained model (an oracle run): distillation needs a trained teacher")
    rounds = check_int(rounds, "rounds", min=1)
    start_steps = 2 ** rounds if start_steps is None else start_steps
    halving_rounds(start_steps, rounds)  # checks start_steps before any work
    recipe = default_recipe(run.dataset)
    config = recipe.train_config(max_steps=check_int(steps_per_round, "steps_per_round", min=1), seed=seed,
                                 warmup_steps=10, epochs=10 ** 6)
    g = torch.Generator().manual_seed(seed)
    n_train, n_val = min(recipe.n_train, 20_000), 2_000
    x = run.normalizer.forward(run.dataset.sample(n_train + n_val, g)).float()
    meta = {k: v for k, v in run.metadata.items() if k in ("dataset", "model_config", "normalizer")}
    meta |= {"n_train": n_train, "n_val": n_val, "data_seed": seed, "fresh_data": True}
    fresh = (lambda n, gen: run.normalizer.forward(run.dataset.sample(n, gen)).float())
    runs: list = []

    def make(student, objective, path):
        trainer = ToyTrainer(student, objective, x[:n_train], x[n_train:], config, metadata=meta, fresh_data=fresh)
        trainer.checkpoint_path = path
        return _Fitting(trainer, progress)

    def keep(r, steps, student, trainer):
        runs.append(ToyRun(run.dataset, run.process, run.normalizer, student.eval(), trainer.history,
                           dict(trainer.metadata) | trainer.objective.metadata(), trainer.objective))

    sha = file_sha256(source) if source is not None else "unknown (no teacher file)"
    distil(run.model, run.process, make, start_steps=start_steps, rounds=rounds, teacher_sha256=sha,
           weighting=weighting, out=out, resume=resume, on_round=keep)
    return runs


class _Fitting:
    """A :class:`ToyTrainer` whose ``fit()`` takes the toy options (progress bar, checkpoint path)."""

    def __init__(self, trainer: ToyTrainer, progress: bool):
        self.trainer, self.progress = trainer, progress

    def __getattr__(self, name):
        return getattr(self.trainer, name)

    def fit(self):
        return self.trainer.fit(progress=self.progress, checkpoint=self.trainer.checkpoint_path)


def few_step_distances(run, steps: int, *, n: int = 5_000, seed: int = 0) -> float:
    """The distance of ``run``'s samples at ``steps`` deterministic steps (``process.step_options``) to fresh data
    (1-D: Wasserstein-1; 2-D: sliced Wasserstein), in data units."""
    from toydiff.toy import metrics

    ref = run.dataset.sample(n, torch.Generator().manual_seed(seed + 10_000))
    dist = metrics.wasserstein1 if run.dataset.dim == 1 else metrics.sliced_wasserstein
    return float(dist(run.sample(n, seed=seed, **run.process.step_options(steps)), ref))
