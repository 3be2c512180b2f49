"""The one handle on a trained MNIST network: network, process, metadata, and its prediction builder.

    m = load_model(default_checkpoint(conditional=True))        # EMA weights, eval mode
    eps = m.eps_fn(torch.tensor([3, 7]), w=3.0)                 # eps(x_t [2, 1, 28, 28], t [2]) -> [2, 1, 28, 28]
    x0 = m.process.sample(m.process.network_fn(eps), x_T, method="ddim", steps=50)

``m.process`` is the :class:`~toydiff.processes.base.Process` the checkpoint's metadata describes
(:func:`toydiff.processes.registry.process_from_dict`): whatever depends on the process (samplers, defaults,
schedule or path) is asked of it, so nothing here knows the process by name.

:class:`LoadedModel` serves sampling, evaluation, the lab and the app alike; :meth:`LoadedModel.eps_fn` is the
only place a label, the null label, a classifier-free guidance scale or an autoguidance model turns into an
``eps_fn(x_t, t)`` (the maths itself is :func:`toydiff.conditional_eps_fn` and :func:`toydiff.autoguidance`).
"""

from __future__ import annotations

import importlib.resources
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

import toydiff
from toydiff.training.checkpoint import CheckpointError, load_checkpoint, load_weights, register_kind, require_kind
from toydiff.checks import check_int, check_number
from toydiff.processes.base import Process
from toydiff.processes.registry import process_from_dict
from toydiff.processes.schedules import NoiseSchedule
from toydiff.processes.vp import VPProcess

__all__ = ["LoadedModel", "as_process", "load_model", "default_checkpoint", "default_guide", "default_sampler",
           "generate_keywords", "AUTOGUIDANCE_T_MAX", "DEFAULT_SAMPLER", "FLOW_STEPS", "MODEL_KINDS"]

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: the guidance interval the committed unconditional tiny model is autoguided over (steps t < this): measured
#: best of t < 500 / 600 / 800 / every step (``bench/mnist_cpu_tiny.py``); above it guidance skews the digit mix
AUTOGUIDANCE_T_MAX = 600

#: the kind tags of files :func:`load_model` reads: training checkpoints and exported / committed weights (and
#: untagged files that describe an image_track model)
MODEL_KINDS = ("image_track.train/1", "image_track.weights/1", "image_track.distill/1")
register_kind("image_track.train/1", "an image_track training checkpoint (toydiff mnist train)")
register_kind("image_track.weights/1", "image_track weights (an exported or committed MNIST model)")
register_kind("mnist_classifier", "the MNIST classifier's weights")
register_kind("image_track.distill/1", "a distilled few-step student (toydiff mnist distill)")
register_kind("image_track.teacher_paths/1", "a teacher's sampling paths kept for flow-map distillation (toydiff mnist distill)")


def as_process(process) -> Process:
    """``process`` as a :class:`~toydiff.processes.base.Process`: a process itself, a training objective's
    ``.process``, or (callers written before processes) a bare :class:`NoiseSchedule`, wrapped in :class:`VPProcess`."""
    if isinstance(process, NoiseSchedule):
        return VPProcess(process)
    if isinstance(process, Process):
        return process
    if isinstance(getattr(process, "process", None), Process):
        return process.process
    raise TypeError(f"process must be a Process (toydiff.processes), its objective or a noise schedule "
                    f"(NoiseSchedule), got {type(process).__name__}")


#: how the committed checkpoints are sampled by default (wherever the model's process offers this method)
DEFAULT_SAMPLER = {"method": "ddim", "steps": 50, "eta": 0.0}
#: steps of a process without DDIM (a flow model) when none are given: its default method (Heun: 20 evaluations)
FLOW_STEPS = 10


def default_sampler(process) -> tuple[str, int]:
    """The track's ``(method, steps)`` for ``process`` (as :func:`as_process` reads it): :data:`DEFAULT_SAMPLER`
    where the process offers its method, else the process's own default method in :data:`FLOW_STEPS` steps."""
    process = as_process(process)
    if DEFAULT_SAMPLER["method"] in process.methods:
        return DEFAULT_SAMPLER["method"], DEFAULT_SAMPLER["steps"]
    return process.default_method, FLOW_STEPS


def generate_keywords(sampler: dict) -> dict:
    """A process's sample keywords (``process.step_options``: method, steps, spacing, …) as
    :func:`image_track.sampling.generate` takes them: ``method``, ``steps`` and the rest as ``options``."""
    opts = dict(sampler)
    return {"method": opts.pop("method"), "steps": opts.pop("steps"), "options": opts}


@dataclass
class LoadedModel:
    """A network (EMA weights, eval mode when loaded), the process it was trained under, and metadata.

    Attributes:
        model: ``model(x [B, C, H, W], t [B][, y LongTensor [B]]) -> prediction [B, C, H, W]`` (ε for DDPM, the
            process's ``prediction`` otherwise; ``t`` as the network is fed it, see ``process.network_fn``); a
            class-conditional one takes labels ``0 .. num_classes - 1`` and the null label ``num_classes``.
        process: its :class:`~toydiff.processes.base.Process` (a NoiseSchedule or objective given here is turned
            into one by :func:`as_process`); :func:`image_track.sampling.generate` samples with it.
        metadata: the checkpoint's JSON metadata; its ``model_config`` describes a network without a
            ``config`` of its own (see :meth:`from_net`).
    """

    model: nn.Module
    process: Process
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.process = as_process(self.process)

    @property
    def schedule(self) -> NoiseSchedule | None:
        """The process's discrete noise schedule (``None`` for a continuous-time process)."""
        return self.process.schedule

    def require_schedule(self, what: str) -> NoiseSchedule:
        """The noise schedule, or a ValueError naming ``what`` (an operation on a discrete noise schedule)."""
        if self.process.schedule is None:
            raise ValueError(f"{what} needs a DDPM model (a noise schedule); this checkpoint is "
                             f"{self.process.describe()}")
        return self.process.schedule

    @classmethod
    def from_net(cls, net: Callable[..., torch.Tensor], process, *, num_classes: int | None = 10,
                 image_size: int = 28, in_channels: int = 1) -> "LoadedModel":
        """Wrap any network (e.g. a test's tiny net) that has no ``config``: conditional on ``num_classes``;
        ``process`` as :func:`as_process` reads it (a NoiseSchedule: DDPM)."""
        config = {"num_classes": None if num_classes is None else check_int(num_classes, "num_classes", min=1),
                  "image_size": check_int(image_size, "image_size", min=1),
                  "in_channels": check_int(in_channels, "in_channels", min=1)}
        return cls(net, process, {"model_config": config})

    @property
    def config(self) -> dict:
        """The network's config (UNet presets carry one), else the metadata's ``model_config``."""
        own = getattr(self.model, "config", None)
        return own if isinstance(own, dict) else self.metadata.get("model_config", {})

    @property
    def sampler(self) -> dict:
        """:func:`image_track.sampling.generate`'s ``method``, ``steps`` and ``options`` for this checkpoint: a
        distilled student's own few-step sampler (its ``distilled`` record's, e.g. DDIM on the grid (999, 374)),
        else the track's default (:func:`default_sampler`)."""
        record = self.metadata.get("distilled")
        if isinstance(record, dict) and isinstance(record.get("sampler"), dict):
            return generate_keywords(record["sampler"])
        method, steps = default_sampler(self.process)
        return {"method": method, "steps": steps, "options": {}}

    @property
    def net(self) -> nn.Module:
        """The network (the lab's former name for :attr:`model`)."""
        return self.model

    @property
    def num_classes(self) -> int | None:
        return self.config.get("num_classes")

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    @property
    def null_label(self) -> int | None:
        """The "no class" label of classifier-free guidance (``num_classes``), or None if unconditional."""
        return self.num_classes

    @property
    def image_size(self) -> int:
        return self.config.get("image_size", 28)

    @property
    def in_channels(self) -> int:
        return self.config.get("in_channels", 1)

    def labels(self, labels: int | torch.Tensor | None, n: int | None = None) -> torch.Tensor | None:
        """Labels as a LongTensor ``[n]``: an int is repeated ``n`` times; ``None`` stays None (no class)."""
        if labels is None:
            return None
        if not self.conditional:
            raise ValueError("labels were given but the model is unconditional")
        nc = self.num_classes
        if isinstance(labels, numbers.Integral) and not isinstance(labels, bool):
            if n is None:
                raise ValueError("n (the batch size) is needed with a single int label")
            c = check_int(labels, "label", min=0, max=nc - 1)
            return torch.full((check_int(n, "n", min=1),), c, dtype=torch.long)
        try:
            y = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"labels must be an int or integer labels [n], got {type(labels).__name__}") from None
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(f"labels must be integers, got {y.dtype} (a float label would be truncated)")
        y = y.long()
        if y.ndim != 1 or (n is not None and y.shape != (n,)):
            raise ValueError(f"labels must have shape [n]{'' if n is None else f' = [{n}]'}, got {tuple(y.shape)}")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= nc):
            raise ValueError(f"labels must lie in 0..{nc - 1}, got {y.tolist()[:10]}")
        return y

    def eps_fn(self, labels: int | torch.Tensor | None = None, n: int | None = None, *, w: float | None = None,
               guide: "LoadedModel | nn.Module | None" = None, guide_t_max: int | None = None) -> EpsFn:
        """``eps_fn(x_t [B, C, H, W], t [B]) -> [B, C, H, W]`` for :func:`toydiff.sample`.

        Args:
            labels: ``None`` (unconditional model: the model; conditional: the null label, i.e. its unconditional
                denoiser), one class for a batch of ``n``, or labels ``[B]``.
            w: without ``guide``, the classifier-free guidance scale ε_u + w (ε_c − ε_u) (Ho & Salimans 2022;
                ``None`` or 1: the plain conditional denoiser; meaningless without labels). With ``guide``, the
                autoguidance scale ε_guide + w (ε_model − ε_guide) (Karras et al. 2024), both given ``labels``.
            guide: a weaker model of the same kind (e.g. an early snapshot of the same run).
            guide_t_max: guide only at steps ``t < guide_t_max`` (a limited guidance interval).
        """
        if w is not None:
            w = check_number(w, "w")
        if guide is not None:
            guide = guide if isinstance(guide, LoadedModel) else LoadedModel(guide, self.process)
            if guide.conditional != self.conditional:
                raise ValueError("guide must be conditional exactly when the model is")
            return toydiff.autoguidance(self.eps_fn(labels, n), guide.eps_fn(labels, n), 1.0 if w is None else w,
                                        t_max=guide_t_max)
        net, y = self.model, self.labels(labels, n)
        if not self.conditional:
            if w is not None:
                raise ValueError("w (classifier-free guidance) needs a class-conditional model")
            return lambda x, t: net(x, t)
        if y is None:
            null = self.null_label
            return lambda x, t: net(x, t, torch.full((x.shape[0],), null, dtype=torch.long, device=x.device))
        return toydiff.conditional_eps_fn(net, y, w=w, null_label=self.null_label)


def default_checkpoint(conditional: bool) -> Path:
    """The committed ``tiny`` weights: class-conditional (``tiny_cond``) or unconditional (``tiny_uncond``)."""
    name = "tiny_cond.safetensors" if conditional else "tiny_uncond.safetensors"
    return Path(str(importlib.resources.files("image_track") / "weights" / name))


def default_guide() -> Path:
    """The committed weak ``tiny`` model for autoguidance of ``tiny_uncond``: an early EMA snapshot of the
    same training run (see ``bench/mnist_cpu_tiny.py``)."""
    return Path(str(importlib.resources.files("image_track") / "weights" / "tiny_uncond_guide.safetensors"))


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", *, use_ema: bool = True) -> LoadedModel:
    """Load a checkpoint written by :mod:`image_track.training` (or its exported weights).

    Raises:
        CheckpointError: missing, truncated or corrupt file; metadata without a model config; weights that
            do not fit the model the metadata describes.
    """
    from image_track.models import build_model

    tensors, meta = load_checkpoint(path)  # verified: content hash (when written with one), finite weights
    require_kind(meta, MODEL_KINDS + (None,), path, "an MNIST command needs an image_track checkpoint (toydiff mnist train, "
                 "or its exported weights)")
    if "model_config" not in meta:
        raise CheckpointError(f"{path} is a toydiff checkpoint but not an image_track model (no model_config)")
    try:
        process = process_from_dict(meta)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} is a toydiff checkpoint but not an image_track model (incomplete process "
                              f"metadata: {e})") from None
    try:
        model = build_model(**meta["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path} describes a model that cannot be built: {e}") from None
    prefix = "ema." if use_ema and any(k.startswith("ema.") for k in tensors) else "model."
    load_weights(model, tensors, prefix, source=path, what=f"the {meta['model_config'].get('name')!r} model")
    schedule = process.schedule
    if schedule is not None and schedule.T != model.config["T"]:
        raise CheckpointError(f"{path}: schedule has T={schedule.T} but the model was built with T={model.config['T']}")
    if getattr(model, "schedule", None) is not None and model.schedule != schedule:  # an x_0 expert's conversion
        raise CheckpointError(f"{path}: the model converts x_0 with another schedule than its process's")
    return LoadedModel(model.to(device).eval().requires_grad_(False), process, meta)
