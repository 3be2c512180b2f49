"""The image track's pieces for the shared engine (:class:`toydiff.training.Trainer`).

:class:`ImageBatches` (MNIST held on the device, a ``DistributedSampler`` order, flips and label dropout
from the engine's generator), and hooks: :class:`RunRecord` (the run's :class:`History`),
:class:`SampleGrids` (a grid per epoch), :class:`Snapshots` (EMA-only weights at chosen steps) and
:class:`TimeBudget` (``minutes=``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Iterator

import torch
import torch.distributed as dist

from toydiff.outputs import save_image
from toydiff.training.checkpoint import CheckpointError
from toydiff.training.hooks import EpochStats, Hook, StepOutput

from image_track.training.config import History, TrainConfig, config_changes
from image_track.training.export import snapshot_path, write_weights

__all__ = ["ImageBatches", "RunRecord", "SampleGrids", "Snapshots", "TimeBudget", "epoch_line"]


class ImageBatches:
    """Batches ``(x0 [b, C, H, W], {"y": labels [b]})`` of this process's share of the global batch.

    The order is ``DistributedSampler``'s for the epoch (seeded by ``config.seed``, so a resume can start
    at any batch); flips (``hflip``) and label dropout (``p_uncond``: a label becomes the null class
    ``num_classes``, Ho & Salimans 2022) are drawn from the engine's generator.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, *, rank: int = 0, world: int = 1):
        if config.batch_size % world:
            raise ValueError(f"batch_size={config.batch_size} must be divisible by the number of processes ({world})")
        self.x, self.y, self.config = x, y, config
        self.sampler = torch.utils.data.DistributedSampler(range(len(x)), num_replicas=world, rank=rank, shuffle=True,
                                                           seed=config.seed, drop_last=False)
        self.local_batch = config.batch_size // world
        self.steps_per_epoch = math.ceil(len(self.sampler) / self.local_batch)

    def epoch(self, epoch: int, start: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, dict]]:
        from image_track.data import random_hflip

        c, n = self.config, self.local_batch
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.long)  # this process's indices, [N / world]
        for b in range(start, self.steps_per_epoch):
            idx = order[b * n: (b + 1) * n].to(self.x.device)
            x0, y = self.x[idx], self.y[idx]
            if c.hflip:
                x0 = random_hflip(x0, generator)
            if c.channels_last:
                x0 = x0.contiguous(memory_format=torch.channels_last)
            kwargs = {}
            if c.num_classes is not None:
                drop = torch.rand(y.shape, generator=generator, device=y.device) < c.p_uncond
                kwargs["y"] = torch.where(drop, torch.full_like(y, c.num_classes), y)
            yield x0, kwargs


def epoch_line(rec: dict) -> str:
    """The line printed at every epoch end: ``epoch 0 | step 430 | train 0.0712 | val 0.0698 | 1520 img/s``."""
    parts = [f"epoch {rec['epoch']}", f"step {rec['step']}", f"train {rec['train_loss']:.4f}"]
    if "val_loss" in rec:
        parts.append(f"val {rec['val_loss']:.4f}")
    parts.append(f"{rec['images_per_s']:.0f} img/s")
    return " | ".join(parts)


class RunRecord(Hook):
    """Keeps ``trainer.history`` (an image :class:`History`): step losses, epoch records, time and images;
    on resume, refuses a checkpoint of another network or of another configuration (:data:`RESUME_FIXED`)."""

    def __init__(self, model_config: dict, config: TrainConfig | None = None):
        self.model_config, self.config = model_config, config

    def on_losses(self, trainer, first_step: int, losses: list[float]) -> None:
        if trainer.is_main:
            trainer.history.step_losses.extend(losses)  # unweighted, comparable across weightings

    def on_epoch_end(self, trainer, stats: EpochStats) -> None:
        h: History = trainer.history
        h.train_seconds += stats.seconds
        h.images_seen += stats.images
        if trainer.is_main:
            h.epochs.append(stats.record)

    def on_save(self, trainer, meta: dict) -> None:
        trainer.history.step, trainer.history.epoch = trainer.step, trainer.epoch

    def on_checkpoint(self, trainer, path) -> None:
        trainer.history.checkpoint = str(path)

    def on_load(self, trainer, meta: dict, path) -> None:
        changed = config_changes(meta.get("config") or {}, self.config) if self.config is not None else []
        if changed:
            raise CheckpointError(f"{path} was trained with another configuration ({'; '.join(changed)}); --resume "
                                  "continues a run with its own settings (change only its length, time budget, "
                                  "outputs or hardware)")
        if meta.get("model_config") != self.model_config:
            raise CheckpointError(f"{path} was trained with model {meta.get('model_config')}, not {self.model_config}")


class SampleGrids(Hook):
    """A ``grid_rows`` × ``grid_rows`` grid of EMA samples per epoch (row r: digit r when conditional),
    saved as ``out_dir/samples_epoch{NNN}.png`` and named in the epoch's record under ``"grid"``."""

    def __init__(self, out_dir: Path, config: TrainConfig, device: torch.device):
        self.out_dir, self.config, self.device = Path(out_dir), config, device

    def on_epoch_end(self, trainer, stats: EpochStats) -> None:
        if not trainer.is_main:
            return
        from image_track.sampling import DEFAULT_SAMPLER, default_sampler, generate, grid_image

        c, rows = self.config, self.config.grid_rows
        labels = None
        if c.num_classes is not None:
            labels = torch.arange(rows).remainder(c.num_classes).repeat_interleave(rows)
        process = trainer.objective.process
        own_method, own_steps = default_sampler(process)
        method = c.sample_method if c.sample_method in process.methods else own_method  # the default DDIM
        # a process without the track's DDIM (a flow model) draws its grids in at most FLOW_STEPS steps
        steps = c.sample_steps if own_method == DEFAULT_SAMPLER["method"] else min(c.sample_steps, own_steps)
        images = generate(trainer.eval_model, process, rows * rows, labels=labels,
                          w=c.sample_w if labels is not None else None, method=method, steps=steps, seed=c.seed,
                          device=self.device)
        path = self.out_dir / f"samples_epoch{stats.epoch:03d}.png"
        save_image(grid_image(images, nrow=rows), path)  # atomically (toydiff.outputs)
        stats.record["grid"] = str(path)


class Snapshots(Hook):
    """The EMA weights alone (float16, the shipped-weights format) at the steps ``steps``, e.g. an early
    snapshot as the weak model of autoguidance (Karras et al. 2024); never non-finite weights."""

    def __init__(self, out_dir: Path, steps: tuple[int, ...], meta: dict):
        self.out_dir, self.steps, self.meta = Path(out_dir), set(steps), meta

    def on_step(self, trainer, out: StepOutput) -> None:
        if trainer.is_main and out.step in self.steps:
            tensors = {f"ema.{k}": v for k, v in trainer.eval_model.state_dict().items()}
            if not all(bool(torch.isfinite(v).all()) for v in tensors.values() if v.is_floating_point()):
                return  # a diverging run: no NaN file (the engine stops the run at its next loss check)
            write_weights(snapshot_path(self.out_dir, out.step), tensors,
                          {**self.meta, **trainer.objective.metadata(), "step": out.step,
                           "epoch": trainer.epoch}, torch.float16)


class TimeBudget(Hook):
    """Stops the run cleanly once ``minutes`` have passed; under DDP process 0's clock decides for all."""

    def __init__(self, minutes: float, device: torch.device):
        self.seconds, self.device = 60.0 * minutes, device

    def on_fit_start(self, trainer) -> None:
        self.t0 = time.perf_counter()

    def on_step(self, trainer, out: StepOutput) -> None:
        up = time.perf_counter() - self.t0 >= self.seconds
        if trainer.world > 1:
            flag = torch.tensor([1.0 if up else 0.0], device=self.device)
            dist.broadcast(flag, src=0)
            up = bool(flag.item())
        if up:
            trainer.request_stop("time budget")
