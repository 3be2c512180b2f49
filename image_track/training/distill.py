"""Progressive distillation of an MNIST model (Salimans & Ho 2022) on the one engine.

    paths = distill_mnist(out="runs/pd", rounds=2, start_steps=8)     # the committed tiny_uncond: 8 → 4 → 2 steps
    m = load_model(paths[-1])                                           # an ordinary model of its process
    x = generate(m.model, m.process, 100, **sampler_keywords(m.process, 2))

The objective is :class:`toydiff.training.distill.ProgressiveDistillation` (two teacher DDIM steps per student
step, the x-target, truncated-SNR weights); the rounds are :func:`toydiff.training.distill.distil`. Each round
writes ``round{r}_{N}steps.safetensors`` into ``out`` (kind ``image_track.distill/1``: weights, EMA, optimiser,
generator state, so ``resume=True`` continues it; :func:`image_track.loaded.load_model` reads it like any
checkpoint) whose metadata's ``distilled`` record holds the teacher's SHA-256, the round and the student's
sampler keywords. Training images: the 55k training split, unconditional models only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

from toydiff.checks import check_int, check_number
from toydiff.training.checkpoint import run_lock
from toydiff.training.distill import distil, file_sha256, halving_rounds
from toydiff.training.engine import TensorBatches, TrainConfig, Trainer
from toydiff.training.hooks import ProgressBar

__all__ = ["DISTILL_KIND", "DistillSettings", "distill_mnist", "sampler_keywords"]

DISTILL_KIND = "image_track.distill/1"


def sampler_keywords(process, steps: int) -> dict:
    """:func:`image_track.sampling.generate`'s keywords for the deterministic ``steps``-step sampler a student of
    ``process`` was distilled for (``process.step_options``)."""
    opts = dict(process.step_options(steps))
    return {"method": opts.pop("method"), "steps": opts.pop("steps"), "options": opts}


class DistillSettings:
    """Per-round training settings: ``steps`` optimiser steps of batch ``batch_size``, AdamW ``lr`` with ``warmup``
    steps and cosine decay, gradient clipping 1, EMA ``ema_decay`` with warm-up (a short round's EMA is not left
    mostly the teacher's), ``seed``, bf16 autocast where fast."""

    def __init__(self, steps: int = 2000, batch_size: int = 64, lr: float = 1e-3, warmup: int = 50,
                 ema_decay: float | None = 0.999, seed: int = 0, amp: bool = True):
        self.steps, self.batch_size = check_int(steps, "steps", min=1), check_int(batch_size, "batch_size", min=1)
        self.lr, self.warmup = check_number(lr, "lr", min=1e-12), check_int(warmup, "warmup", min=0)
        self.ema_decay = None if ema_decay is None else check_number(ema_decay, "ema_decay", min=0.0, max=1.0)
        self.seed, self.amp = check_int(seed, "seed", min=0), bool(amp)

    def config(self) -> TrainConfig:
        return TrainConfig(max_steps=self.steps, epochs=10 ** 6, batch_size=self.batch_size, lr=self.lr,
                           warmup_steps=self.warmup, lr_schedule="cosine", grad_clip=1.0, ema_decay=self.ema_decay,
                           ema_warmup=True, seed=self.seed)


def distill_mnist(checkpoint: str | Path | None = None, *, out: str | Path, rounds: int = 2, start_steps: int = 8,
                  settings: DistillSettings | None = None, weighting: str = "truncated-snr", resume: bool = False,
                  progress: bool = False, subset: int | None = None,
                  on_round: Callable | None = None) -> list[Path]:
    """Distil ``checkpoint`` (default the committed ``tiny_uncond``) over ``rounds`` halving rounds from
    ``start_steps``; return the rounds' checkpoint paths. ``on_round(round, steps, student, trainer)`` after
    each round; ``subset``: the first training images only (tests)."""
    from image_track.data import load_mnist
    from image_track.loaded import default_checkpoint, load_model
    from image_track.training.loop import bf16_autocast

    settings = settings or DistillSettings()
    halving_rounds(start_steps, rounds)
    source = Path(checkpoint) if checkpoint is not None else default_checkpoint(conditional=False)
    m = load_model(source)
    if m.conditional:
        raise ValueError(f"checkpoint {source} is class-conditional; distillation here takes unconditional models")
    m.process.step_options(1)  # refuses a process without a DDIM-equivalent step
    x, _ = load_mnist("train", pad_to_32=m.image_size == 32)
    x = x[: check_int(subset, "subset", min=1)] if subset is not None else x
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def make(student, objective, path):
        hooks = [ProgressBar(every=10, desc=f"distil → {objective.steps} steps", unit="step", file=sys.stderr)] \
            if progress else []
        return Trainer(student, objective, TensorBatches(x, settings.batch_size), settings.config(), hooks=hooks,
                       kind=DISTILL_KIND, metadata={"model_config": m.model.config, "teacher_file": str(source)},
                       autocast=lambda: bf16_autocast("cpu", settings.amp), checkpoint=path)

    paths: list[Path] = []

    def keep(r, steps, student, trainer):
        paths.append(Path(trainer.checkpoint_path))
        if on_round is not None:
            on_round(r, steps, student, trainer)

    with run_lock(out):
        distil(m.model, m.process, make, start_steps=start_steps, rounds=rounds, teacher_sha256=file_sha256(source),
               weighting=weighting, out=out, resume=resume, on_round=keep)
    return paths
