"""The training engine: Algorithm 1 of Ho et al. 2020 for any network, data rank and track.

    trainer = Trainer(model, schedule, TensorBatches(x_train, 256), TrainConfig(epochs=60), hooks=[...])
    history = trainer.fit()

:class:`Trainer` holds the whole training state (network, :class:`~toydiff.training.ema.EMA`, AdamW, step / epoch /
batch-in-epoch, the generator every draw comes from) and runs one loop: a batch ``(x0 [B, *event],
model_kwargs)`` from the track's data source, one :meth:`Trainer.train_step` (the objective's loss,
:mod:`toydiff.processes`: DDPM's ε-prediction loss with t drawn by :func:`~toydiff.training.losses.sample_timesteps`
and optional Min-SNR-γ weights, or a flow-matching / interpolant loss over t ∈ [0, 1]; optional autocast,
gradient clipping, :func:`~toydiff.training.lr.lr_factor` learning rate, EMA update), and the track's
:mod:`~toydiff.training.hooks` at step, evaluation, epoch and checkpoint time. Checkpoints (:mod:`toydiff.training.checkpoint`,
atomic) hold everything needed to resume to the very same weights as an uninterrupted run. Under
``torch.distributed`` the engine sums epoch statistics over processes, gathers every process's generator
state into the checkpoint, and lets only process 0 write. No plotting here (see :mod:`toydiff.toy.figures`).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, ContextManager, Sequence

import torch
import torch.distributed as dist
from torch import nn

from toydiff.training import checkpoint as ck
from toydiff.training.batches import Batches, TensorBatches
from toydiff.training.checkpoint import load_weights
from toydiff.checks import check_int
from toydiff.training.ema import EMA
from toydiff.training.hooks import EpochStats, Hook, NonFiniteLossError, StepOutput
from toydiff.training.losses import held_out_loss
from toydiff.training.lr import lr_factor
from toydiff.processes.base import CheckpointMismatch, Process
from toydiff.processes.vp import VPProcess
from toydiff.processes.schedules import NoiseSchedule
from toydiff.training.config import History, TrainConfig

__all__ = ["TrainConfig", "History", "Batches", "TensorBatches", "Trainer", "held_out_loss", "load_weights",
           "make_objective"]


def make_objective(process, config: TrainConfig, device=None):
    """The engine's objective: a :class:`~toydiff.processes.schedules.NoiseSchedule` or a process
    (:mod:`toydiff.processes`) gives that process's objective with the config's t sampling and loss weights; an
    objective (anything with ``loss`` and ``process``) is taken as it is."""
    if isinstance(process, NoiseSchedule):
        process = VPProcess(process)
    if hasattr(process, "loss") and hasattr(process, "process"):
        return process
    if not isinstance(process, Process):
        raise TypeError(f"schedule must be a NoiseSchedule, a process or an objective (toydiff.processes), got "
                        f"{type(process).__name__}")
    return process.objective(t_sampling=config.t_sampling, loss_weighting=config.loss_weighting,
                             min_snr_gamma=config.min_snr_gamma, device=device)


class Trainer:
    """The training state and loop; see the module docstring.

    Args:
        model: the noise predictor ``model(x_t, t, **model_kwargs) -> eps_hat`` (its weights are trained).
        schedule: the noise schedule (DDPM's ε-loss, :class:`~toydiff.processes.VPObjective`), or an
            objective (:class:`~toydiff.processes.FlowObjective`: flow matching and the interpolant losses).
        data: the track's :class:`Batches`.
        config: :class:`TrainConfig`.
        hooks: :class:`~toydiff.training.hooks.Hook` objects, called in order.
        kind: the checkpoint's ``kind`` tag (a resume refuses another kind).
        metadata: extra JSON for every checkpoint (overrides the engine's keys, e.g. a track's ``config``).
        history: the object the hooks record into (``to_dict()`` / ``load_dict(d)``; default :class:`History`).
        train_model: what the forward pass runs (a DDP or compiled wrapper of ``model``; default ``model``).
        generator: the source of every draw (default: a CPU generator seeded with ``config.seed``).
        autocast: a zero-argument callable giving the forward pass's context (e.g. bf16 autocast).
        checkpoint: where checkpoints go (``None``: none).
        loss_sync_every: the step losses are copied to the host (and checked for NaN) this often.
    """

    def __init__(self, model: nn.Module, schedule, data: Batches, config: TrainConfig = TrainConfig(),
                 *, hooks: Sequence[Hook] = (), kind: str = "toydiff.train", metadata: dict | None = None,
                 history=None, train_model: nn.Module | None = None, generator: torch.Generator | None = None,
                 autocast: Callable[[], ContextManager] = nullcontext, checkpoint: str | Path | None = None,
                 loss_sync_every: int = 10):
        self.model, self.data, self.config = model, data, config
        self.train_model = train_model if train_model is not None else model
        self.hooks, self.kind, self.metadata = list(hooks), kind, dict(metadata or {})
        self.history = history if history is not None else History(n_buckets=config.n_buckets)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(config.seed)
        self.autocast, self.checkpoint_path = autocast, checkpoint
        self.loss_sync_every = check_int(loss_sync_every, "loss_sync_every", min=1)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas,
                                           weight_decay=config.weight_decay)
        self.ema = EMA(model, config.ema_decay, warmup=config.ema_warmup) if config.ema_decay is not None else None
        self.steps_per_epoch = data.steps_per_epoch
        self.total_steps = config.max_steps or config.epochs * self.steps_per_epoch
        self.n_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.stop_reason: str | None = None
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        self._pending: list[torch.Tensor] = []
        self.objective = make_objective(schedule, config, self.generator.device)
        self.schedule = self.objective.schedule  # the VP schedule (None for a flow objective)

    @property
    def is_main(self) -> bool:
        """Whether this is process 0 (the one that logs, evaluates and writes)."""
        return self.rank == 0

    @property
    def eval_model(self) -> nn.Module:
        """The weights to sample and evaluate with: the EMA average if there is one."""
        return self.ema.module if self.ema is not None else self.model

    def lr_at(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based)."""
        c = self.config
        return c.lr * lr_factor(step, self.total_steps, warmup_steps=c.warmup_steps, schedule=c.lr_schedule,
                                min_lr_ratio=c.min_lr_ratio, gamma=c.lr_gamma)

    def request_stop(self, reason: str) -> None:
        """Stop after the current step; the engine checkpoints and :meth:`fit` returns (``stop_reason``)."""
        self.stop_reason = reason

    def _call(self, point: str, *args) -> list:
        return [getattr(h, point)(self, *args) for h in self.hooks if hasattr(h, point)]

    # --- one step -----------------------------------------------------------------------------------
    def train_step(self, x0: torch.Tensor, **model_kwargs) -> StepOutput:
        """One optimiser step on ``x0 [B, *event]``: the objective's loss (VP: Ho et al. 2020, Algorithm 1, t ~
        the configured distribution, ε ~ N(0, I) from the generator, ``‖ε − ε_θ(x_t, t)‖²``, weighted per t when
        configured; flow: :class:`~toydiff.processes.FlowObjective`), AdamW at :meth:`lr_at`, gradient
        clipping, EMA update."""
        for g in self.optimizer.param_groups:
            g["lr"] = self.lr_at(self.step)
        with self.autocast():
            loss, terms = self.objective.loss(self.train_model, x0, generator=self.generator, **model_kwargs)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model, self.step)
        self.step += 1
        return StepOutput(self.step, terms.loss.detach(), terms.per_sample.detach(), terms.t, x0.shape[0])

    def _first_bad(self, local: int | None) -> int | None:
        """The first non-finite step over every process (an all-reduce under DDP, so all stop together)."""
        if self.world == 1:
            return local
        never = self.total_steps + 1  # "no bad step here"
        flag = torch.tensor([local or never], dtype=torch.int64, device=self.generator.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return None if int(flag) == never else int(flag)

    def _sync_losses(self) -> None:
        """Copy pending step losses to the host; a non-finite one (on any process) goes to the ``on_non_finite``
        hooks, or stops the run with :class:`NonFiniteLossError` naming the step."""
        if not self._pending:
            return
        losses = torch.stack(self._pending).float().tolist()
        self._pending.clear()
        first = self.step - len(losses) + 1
        bad = next((first + i for i, v in enumerate(losses) if not math.isfinite(v)), None)
        bad = self._first_bad(bad)
        if bad is not None and self.stop_reason != "non-finite loss":
            value = losses[bad - first] if first <= bad < first + len(losses) else math.nan
            value = math.nan if math.isfinite(value) else value  # another process's bad step
            if not any(self._call("on_non_finite", bad, value)):
                raise NonFiniteLossError(f"training diverged: the loss is {value} at step {bad}; the weights are "
                                         f"no longer usable (lower lr, or set grad_clip); {self._kept()}", step=bad)
            self.stop_reason = "non-finite loss"
        self._call("on_losses", first, losses)

    def _kept(self) -> str:
        p = self.checkpoint_path
        return ("no checkpoint is written by this run" if p is None else f"the last checkpoint, {p}, is the last "
                "finite state" if Path(p).exists() else f"no checkpoint was written before it (none at {p})")

    def _check_weights(self) -> None:
        """Raise :class:`NonFiniteLossError` if the weights (or their EMA) hold NaN / inf on any process."""
        mods = [self.model] + ([self.ema.module] if self.ema is not None else [])
        ok = all(bool(torch.isfinite(p).all()) for m in mods for p in m.parameters() if p.is_floating_point())
        bad = self._first_bad(None if ok else self.step)
        if bad is not None:
            raise NonFiniteLossError(f"training diverged: the weights hold NaN or infinite values at step {bad}; "
                                     f"{self._kept()}", step=bad)

    # --- the loop -----------------------------------------------------------------------------------
    def fit(self):
        """Train until ``total_steps`` (continuing where a resumed trainer stopped) or a hook's stop."""
        self.stop_reason = None
        self._call("on_fit_start")
        try:
            while self.step < self.total_steps and self.epoch < self.n_epochs and self.stop_reason is None:
                self._run_epoch()
        finally:
            self._call("on_fit_end")
        return self.history

    def _run_epoch(self) -> None:
        n = self.config.n_buckets
        dev = self.generator.device
        b_sum, b_cnt = torch.zeros(n, dtype=torch.float64, device=dev), torch.zeros(n, dtype=torch.float64, device=dev)
        loss_sum, images, t0 = torch.zeros((), dtype=torch.float64, device=dev), 0, time.perf_counter()
        self.train_model.train()
        batches = self.data.epoch(self.epoch, self.batch_in_epoch, self.generator)
        while self.batch_in_epoch < self.steps_per_epoch and self.step < self.total_steps and self.stop_reason is None:
            try:
                x0, kwargs = next(batches)
            except StopIteration:
                break
            out = self.train_step(x0, **kwargs)
            self.batch_in_epoch += 1
            with torch.no_grad():
                s, c = self.objective.bucket_sums(out.per_sample, out.t, n)
                b_sum += s
                b_cnt += c
                loss_sum += out.per_sample.double().sum()
            images += out.batch * self.world
            self._pending.append(out.loss)
            if len(self._pending) >= self.loss_sync_every:
                self._sync_losses()
            self._call("on_step", out)
            every = self.config.checkpoint_every
            if every and self.step % every == 0 and self.step < self.total_steps:
                self.save()
        self._finish_epoch(b_sum, b_cnt, loss_sum, images, time.perf_counter() - t0)

    def _finish_epoch(self, b_sum, b_cnt, loss_sum, images: int, seconds: float) -> None:
        self._sync_losses()
        if self.world > 1:
            for x in (b_sum, b_cnt, loss_sum):
                dist.all_reduce(x)
        stats = EpochStats(self.epoch, self.step, self.batch_in_epoch >= self.steps_per_epoch, seconds, images)
        stats.record = {"epoch": self.epoch, "step": self.step, "complete": stats.complete,
                        "train_loss": float(loss_sum) / max(float(b_cnt.sum()), 1.0),
                        "train_loss_by_bucket": (b_sum / b_cnt.clamp(min=1)).tolist(),
                        "lr": self.optimizer.param_groups[0]["lr"], "seconds": seconds,
                        "images_per_s": images / seconds if seconds > 0 else float("nan")}
        self._call("on_eval", stats)
        self._call("on_epoch_end", stats)
        if stats.complete:
            self.epoch += 1
            self.batch_in_epoch = 0
        self.save()
        self._call("after_epoch", stats)

    # --- checkpoints --------------------------------------------------------------------------------
    def _rng_states(self) -> list:
        state = ck.rng_state(self.generator)
        if self.world == 1:
            return [state]
        gathered: list = [None] * self.world
        dist.all_gather_object(gathered, state)  # collective: every process takes part
        return gathered

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write the whole state (weights, EMA, optimiser, counters, every process's generator state,
        history) atomically to ``path`` (default: the trainer's checkpoint path); process 0 writes.
        Never after a non-finite loss, nor with non-finite weights (:class:`NonFiniteLossError`): the last
        checkpoint stays the last good one."""
        path = path if path is not None else self.checkpoint_path
        if path is None or self.stop_reason == "non-finite loss":
            return None
        self._sync_losses()  # raises on a bad loss, or a hook handles it (then the last good file stays)
        if self.stop_reason == "non-finite loss" or self._check_weights():
            return None
        states = self._rng_states()
        if not self.is_main:
            return None
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.module.state_dict().items()})
        opt_tensors, opt_skeleton = ck.split_state(self.optimizer.state_dict(), "optim")
        tensors.update(opt_tensors)
        meta = {"kind": self.kind, "config": self.config.to_dict(), **self.objective.metadata(),
                "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "optimizer": opt_skeleton, "rng_states": states, **self.metadata}
        self._call("on_save", meta)
        meta["history"] = self.history.to_dict()
        written = ck.save_checkpoint(path, tensors, meta)
        self._call("on_checkpoint", written)
        return written

    def load(self, path: str | Path) -> "Trainer":
        """Restore the state :meth:`save` wrote (same model; the ``on_load`` hooks check the rest)."""
        tensors, meta = ck.load_checkpoint(path)  # verified: content hash, finite weights
        ck.require_kind(meta, (self.kind,), path, f"--resume needs {ck.describe_kind(self.kind)}, with the "
                        "optimizer state to continue from")
        try:
            self.objective.check_resume(meta)
        except CheckpointMismatch as e:
            raise ck.CheckpointError(f"{path} {e}") from None
        states = meta["rng_states"] if "rng_states" in meta else [meta["rng"]]  # "rng": toy checkpoints before 0.2
        if len(states) != self.world:
            raise ck.CheckpointError(f"{path} was written by {len(states)} processes; resume with the same number "
                                     f"(now {self.world})")
        self._call("on_load", meta, path)
        legacy_ema = any(k.startswith("ema.module.") for k in tensors)  # torch AveragedModel layout
        load_weights(self.model, tensors, "model.", source=path)
        if self.ema is not None:
            load_weights(self.ema.module, tensors, "ema.module." if legacy_ema else "ema.", source=path)
        self.optimizer.load_state_dict(ck.join_state(meta.get("optimizer", meta.get("optim")), tensors))
        ck.set_rng_state(states[self.rank], self.generator)
        self.step, self.epoch, self.batch_in_epoch = meta["step"], meta["epoch"], meta.get("batch_in_epoch", 0)
        self.history.load_dict(meta.get("history", {}))
        return self
