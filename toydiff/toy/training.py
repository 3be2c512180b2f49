"""The toy track's trainer: the shared engine (:class:`toydiff.training.Trainer`) with the toy pieces.

Those pieces: shuffled batches of the (normalised) training points, fresh points every epoch
(:class:`~toydiff.training.TensorBatches`); the held-out loss on fixed (t, ε) draws, split by t bucket, next
to the Bayes-optimal floor of the data's exact mixture on the very same draws; one record per epoch
(``epoch`` counted from 1) in a :class:`~toydiff.training.History`. The process is the engine's objective
(:mod:`toydiff.processes`): a NoiseSchedule trains DDPM's ε-predictor, a
:class:`~toydiff.processes.FlowObjective` a flow-matching (or ε / x_0 / v under an interpolant) network,
whose floor is the exact oracle's prediction of the same type on the same held-out draws.
"""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from toydiff.training.checkpoint import CheckpointError
from toydiff.checks import check_tensor
from toydiff.exact.mixture import GaussianMixture
from toydiff.training.hooks import Callback, EpochStats, HeldOutLoss, Hook, ProgressBar
from toydiff.options import flag_of
from toydiff.processes.schedules import NoiseSchedule
from toydiff.processes import FlowObjective, VPObjective
from toydiff.training.engine import TensorBatches, TrainConfig, Trainer, make_objective

__all__ = ["ToyTrainer", "KIND"]

KIND = "toydiff.toy"


class _ToyRecords(Hook):
    """One toy record per epoch; on resume, the checkpoint's TrainConfig must match (``epochs`` may grow)."""

    def on_fit_start(self, trainer: "ToyTrainer") -> None:
        self.t0 = time.perf_counter()

    def on_epoch_end(self, trainer: "ToyTrainer", stats: EpochStats) -> None:
        r = stats.record
        trainer.history.records.append({
            "epoch": stats.epoch + 1, "step": stats.step, "train_loss": r["train_loss"], "val_loss": r["val_loss"],
            "val_by_bucket": r["val_by_bucket"], "lr": trainer.lr_at(trainer.step),
            "seconds": time.perf_counter() - self.t0})

    def after_epoch(self, trainer: "ToyTrainer", stats: EpochStats) -> None:
        self.t0 = time.perf_counter()

    def on_load(self, trainer: "ToyTrainer", meta: dict, path) -> None:
        def comparable(d: dict) -> dict:  # keys added since a checkpoint was written take their defaults
            return {k: v for k, v in (TrainConfig().to_dict() | d).items() if k not in ("epochs", "max_steps")}

        there, here = comparable(meta["config"]), comparable(trainer.config.to_dict())
        changed = [k for k in sorted(set(there) | set(here)) if there.get(k) != here.get(k)]
        if changed:
            flags = {f.name: flag_of(f) for f in fields(TrainConfig)}
            diff = "; ".join(f"{flags.get(k, k)} {there.get(k)!r} there, {here.get(k)!r} here" for k in changed)
            raise CheckpointError(f"{path} was trained with another TrainConfig ({diff}); --resume continues a "
                                  "run with its own settings (only --epochs / --max-steps may change)")


class ToyTrainer(Trainer):
    """Trains ``model(x_t, t) -> prediction`` on ``train_data [N, *event]`` with the DDPM or a flow loss.

    Args:
        model: the network (an ``nn.Module``).
        schedule: the noise schedule (DDPM), or an objective (:mod:`toydiff.processes`).
        train_data, val_data: tensors ``[N, *event]`` (already normalised, if normalising).
        config: :class:`~toydiff.training.TrainConfig`.
        oracle: the exact law of the (normalised) data, if known: gives the loss floors.
        metadata: extra JSON stored in checkpoints (model config, normalisation, data set name...).
        fresh_data: ``fresh_data(n, generator) -> [n, *event]``: a new training set every epoch after the
            first (from the trainer's generator, so a resumed run draws the same points).
        data: the batches, instead of shuffled ``train_data`` (reflow's (x_0, noise) pairs).
    """

    def __init__(self, model: nn.Module, schedule: NoiseSchedule | VPObjective | FlowObjective,
                 train_data: torch.Tensor, val_data: torch.Tensor, config: TrainConfig = TrainConfig(), *,
                 oracle: GaussianMixture | None = None, metadata: dict | None = None,
                 fresh_data: Callable[[int, torch.Generator], torch.Tensor] | None = None, data=None):
        check_tensor(train_data, "train_data", min_ndim=2)
        check_tensor(val_data, "val_data", min_ndim=2)
        if val_data.shape[1:] != train_data.shape[1:]:
            raise ValueError(f"val_data points {tuple(val_data.shape[1:])} differ from train_data's "
                             f"{tuple(train_data.shape[1:])}")
        objective = make_objective(schedule, config)
        t, noise = objective.held_out_draws(val_data.shape, seed=config.seed + 1)  # noise in float64: any dtype
        self.held_out = HeldOutLoss(val_data, t, noise.to(val_data.dtype), n_buckets=config.n_buckets)
        data = data if data is not None else TensorBatches(train_data, config.batch_size, fresh_data)
        super().__init__(model, objective, data, config, hooks=[self.held_out, _ToyRecords()], kind=KIND,
                         metadata=metadata)
        self.train_data, self.val_data = train_data, val_data
        if oracle is not None:
            # the oracle's loss on the very (x0, t, eps) draws the model is scored on: the same estimate of the
            # Bayes floor E||eps - eps*||^2, free of the held-out set's own sampling noise
            exact = objective.process.exact_fn(oracle)
            self.history.floor, self.history.floor_by_bucket = self.held_out.evaluate(exact, objective)

    def fit(self, *, progress: bool = True, checkpoint: str | Path | None = None,
            on_epoch: Callable[[dict], None] | None = None):
        """Train until ``config.epochs`` (continuing from where a resumed trainer stopped).

        Args:
            progress: tqdm bar over steps.
            checkpoint: path written atomically after every epoch.
            on_epoch: called with each epoch's record once its checkpoint is written (live figures...).
        """
        self.checkpoint_path = checkpoint
        extra: list[Hook] = []
        if progress:
            extra.append(ProgressBar(desc="training", leave=False, epoch_postfix=lambda r: {
                "train": f"{r['train_loss']:.4f}", "val": f"{r['val_loss']:.4f}"}))
        if on_epoch is not None:
            extra.append(Callback(after_epoch=lambda trainer, stats: on_epoch(trainer.history.records[-1])))
        self.hooks.extend(extra)
        try:
            return super().fit()
        finally:
            del self.hooks[len(self.hooks) - len(extra):]
