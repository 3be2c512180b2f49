"""Hooks: how a track adds its pieces to the training engine (:class:`toydiff.training.Trainer`).

A hook is an object with any of the methods of :class:`Hook`; the engine calls them in this order::

    on_fit_start
    per step:   on_step(out)                    after the optimiser and EMA step (out: StepOutput)
                on_losses(first_step, losses)   every few steps, the unweighted step losses as floats
                on_non_finite(step, value)      a NaN / inf loss among them (True: handled, stop the run)
    per epoch:  on_eval(stats)                  held-out losses and the like, into ``stats.record``
                on_epoch_end(stats)             records, sample grids, printed lines
                on_save(meta) / on_checkpoint(path)   around every checkpoint write (main process only)
                after_epoch(stats)              once the epoch's checkpoint is on disk
    on_fit_end
    on_load(meta, path)                         before a resume loads the weights (raise CheckpointError)

A hook stops the run cleanly with ``trainer.request_stop(reason)``; the engine then checkpoints and returns.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Protocol

import torch

from toydiff.training.losses import NonFiniteLossError, held_out_loss

__all__ = ["Trainer", "Hook", "StepOutput", "EpochStats", "NonFiniteLossError", "HeldOutLoss", "Callback", "ProgressBar"]


@dataclass
class StepOutput:
    """One optimiser step: the step count after it, the unweighted loss (a 0-d tensor, not synced to the
    host), ``per_sample [B]`` losses at steps ``t [B]``, and the batch size."""

    step: int
    loss: torch.Tensor
    per_sample: torch.Tensor
    t: torch.Tensor
    batch: int


@dataclass
class EpochStats:
    """An epoch (or the part of it run before a stop): ``epoch`` is its 0-based index, ``complete`` whether
    every batch ran. ``record`` holds the training loss (overall and by t bucket), learning rate, seconds and
    images per second (summed over processes); ``on_eval`` hooks add to it."""

    epoch: int
    step: int
    complete: bool
    seconds: float
    images: int
    record: dict[str, Any] = field(default_factory=dict)


class Trainer(Protocol):
    """What a hook may read of the engine's :class:`toydiff.training.engine.Trainer` (structural, so that this
    module, which the engine imports, imports nothing of it back): the step counts, whether this is the main
    process, the objective and the model to evaluate (the EMA one where kept), the optimiser, and
    ``request_stop(reason)``."""

    step: int
    total_steps: int
    is_main: bool
    objective: Any
    eval_model: torch.nn.Module
    optimizer: torch.optim.Optimizer

    def request_stop(self, reason: str) -> None: ...


class Hook:
    """The hook points, all no-ops; subclass and override the ones you need."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_step(self, trainer: "Trainer", out: StepOutput) -> None: ...
    def on_losses(self, trainer: "Trainer", first_step: int, losses: list[float]) -> None: ...
    def on_non_finite(self, trainer: "Trainer", step: int, value: float) -> bool: return False
    def on_eval(self, trainer: "Trainer", stats: EpochStats) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", stats: EpochStats) -> None: ...
    def on_save(self, trainer: "Trainer", meta: dict) -> None: ...
    def on_checkpoint(self, trainer: "Trainer", path: Any) -> None: ...
    def after_epoch(self, trainer: "Trainer", stats: EpochStats) -> None: ...
    def on_load(self, trainer: "Trainer", meta: dict, path: Any) -> None: ...
    def on_fit_end(self, trainer: "Trainer") -> None: ...


class Callback(Hook):
    """A hook from plain functions: ``Callback(after_epoch=lambda trainer, stats: ...)``."""

    def __init__(self, **fns: Callable):
        unknown = set(fns) - {n for n in vars(Hook) if n.startswith(("on_", "after_"))}
        if unknown:
            raise ValueError(f"unknown hook point(s) {sorted(unknown)}")
        for name, fn in fns.items():
            setattr(self, name, fn)


class HeldOutLoss(Hook):
    """At every epoch end, the objective's loss (the ε-loss for VP) of the EMA model on fixed held-out draws, overall and by t bucket
    (:func:`toydiff.training.losses.held_out_loss`), into ``stats.record[keys[0]]`` and ``stats.record[keys[1]]``.

    Args:
        x0: held-out data ``[N, *event]``; ``t [N]`` / ``noise [N, *event]``: its fixed draws.
        model_kwargs: per-sample tensors for the model (``y`` labels for a conditional net).
        context: a zero-argument callable giving the context each forward runs in (bf16 autocast).
        main_only: evaluate on the main process only (the others skip).
    """

    def __init__(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, *, n_buckets: int = 10,
                 batch_size: int = 65_536, model_kwargs: dict | None = None,
                 context: Callable[[], ContextManager] = nullcontext, keys: tuple[str, str] = ("val_loss", "val_by_bucket"),
                 main_only: bool = True):
        self.x0, self.t, self.noise = x0, t, noise
        self.n_buckets, self.batch_size, self.model_kwargs = n_buckets, batch_size, model_kwargs
        self.context, self.keys, self.main_only = context, keys, main_only

    def evaluate(self, fn: Callable, objective) -> tuple[float, list[float]]:
        """The loss of ``fn`` (the sampler's view of a network: ``objective.network_fn(model)``, or an exact
        oracle) under ``objective`` (:mod:`toydiff.processes`; a NoiseSchedule means the VP ε-loss)."""
        if not hasattr(objective, "held_out_loss"):
            return held_out_loss(fn, objective, self.x0, t=self.t, noise=self.noise, n_buckets=self.n_buckets,
                                 batch_size=self.batch_size, model_kwargs=self.model_kwargs, context=self.context)
        return objective.held_out_loss(fn, self.x0, self.t, self.noise, n_buckets=self.n_buckets,
                                       batch_size=self.batch_size, model_kwargs=self.model_kwargs, context=self.context)

    def on_eval(self, trainer: "Trainer", stats: EpochStats) -> None:
        if self.main_only and not trainer.is_main:
            return
        trainer.eval_model.eval()
        fn = trainer.objective.network_fn(trainer.eval_model)
        try:
            stats.record[self.keys[0]], stats.record[self.keys[1]] = self.evaluate(fn, trainer.objective)
        except NonFiniteLossError as e:  # finite weights whose output overflows: as a non-finite training loss
            raise NonFiniteLossError(f"{e} at step {trainer.step}; the weights are no longer usable (lower lr, or "
                                     f"set grad_clip); {trainer._kept()}", step=trainer.step) from None


class ProgressBar(Hook):
    """A tqdm bar over the steps on the main process.

    Args:
        every: every this many steps, show the step's loss and learning rate (``None``: never; each costs
            one host sync).
        epoch_postfix: ``record -> dict`` shown at every epoch end.
        epoch_line: ``record -> str`` printed above the bar at every epoch end.
        tqdm_kwargs: passed on (``desc``, ``leave``, ``file``, ``unit`` ...).
    """

    def __init__(self, *, every: int | None = None, epoch_postfix: Callable[[dict], dict] | None = None,
                 epoch_line: Callable[[dict], str] | None = None, **tqdm_kwargs):
        self.every, self.epoch_postfix, self.epoch_line, self.kwargs = every, epoch_postfix, epoch_line, tqdm_kwargs
        self.bar = None

    def on_fit_start(self, trainer: "Trainer") -> None:
        if trainer.is_main:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=trainer.total_steps, initial=trainer.step, **self.kwargs)

    def on_step(self, trainer: "Trainer", out: StepOutput) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if self.every and out.step % self.every == 0:
            self.bar.set_postfix(loss=f"{float(out.loss):.4f}", lr=f"{trainer.optimizer.param_groups[0]['lr']:.2e}")

    def on_epoch_end(self, trainer: "Trainer", stats: EpochStats) -> None:
        if self.bar is None:
            return
        if self.epoch_postfix is not None:
            self.bar.set_postfix(**self.epoch_postfix(stats.record))
        if self.epoch_line is not None:
            self.bar.write(self.epoch_line(stats.record))

    def on_fit_end(self, trainer: "Trainer") -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
