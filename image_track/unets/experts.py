"""A UNet made of noise-level experts: one network per band of steps (Balaji et al. 2022, eDiff-I's "ensemble of
expert denoisers").

A few-step student only ever runs at its grid's N start steps, and one small time-conditioned UNet serving all N
jumps shares its capacity between N different maps (the tiny preset feeds t as one scalar). ``experts`` gives each
jump its own copy of the network instead: expert k answers for the steps in ``(starts[k + 1], starts[k]]`` (the
last one for everything at or below ``starts[-1]``), so on the student's own grid expert k sees exactly its jump's
start. It is an ordinary ε-predictor for any sampler, with N times the parameters and the same cost per call::

    m = build_model("experts", expert=build_model("tiny").config, starts=(999, 749, 499, 249))
    m = TimeExperts.from_network(teacher, starts=(999, 749, 499, 249))      # every expert a copy of the teacher

An expert may predict x_0 instead of ε (``predictions``, with the ``schedule`` that converts it, ε̂ = (x_t −
√ᾱ_t x̂_0)/√(1 − ᾱ_t)), as EDM's preconditioning keeps the network's parameterisation inside the network (Karras et
al. 2022). At the noisy end this matters: at t = 999 of the linear schedule √ᾱ = 0.006, so an ε-network's x̂_0
carries 160× its ε error, and a DDIM jump from there carries about 40× (to t = 499); an x_0-network's jump carries
0.3× its own (measured on the tiny preset: the 2-step student's first jump missed by 0.163 as an ε expert, 0.022 as
an x_0 expert, RMS over held-out teacher paths).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from toydiff.checks import check_choice
from toydiff.processes.forward import x0_to_eps
from toydiff.processes.schedules import NoiseSchedule

from image_track.unets.common import EpsUNet, UNetConfig

__all__ = ["ExpertsConfig", "TimeExperts", "PREDICTIONS"]

#: what an expert's network may predict
PREDICTIONS = ("eps", "x0")


@dataclass(frozen=True)
class ExpertsConfig(UNetConfig):
    """``expert``: the config of every expert (a preset's ``model.config``; the shared fields ``num_classes``,
    ``T``, ``in_channels``, ``image_size`` are the model's); ``starts``: the steps where the experts' bands begin,
    strictly descending (a student's grid starts; default two bands, ``(T − 1, T/2 − 1)``); ``predictions``: each
    expert's :data:`PREDICTIONS` (default all ε); ``schedule``: the process's ``NoiseSchedule.to_dict()``, needed
    by an x_0 expert."""

    expert: dict = field(default_factory=lambda: {"name": "tiny"})
    starts: tuple[int, ...] = ()
    predictions: tuple[str, ...] = ()
    schedule: dict | None = None

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.expert, dict) or self.expert.get("name") in (None, "experts"):
            raise ValueError(f"expert must be another preset's config dict (its model.config), got {self.expert!r}")
        shared = {key: getattr(self, key) for key in ("num_classes", "T", "in_channels", "image_size")}
        for key, value in shared.items():
            if self.expert.get(key, value) != value:
                raise ValueError(f"expert's {key} {self.expert[key]!r} differs from the model's {value!r}")
        object.__setattr__(self, "expert", dict(self.expert) | shared)
        starts = self.starts or ((self.T - 1, self.T // 2 - 1) if self.T >= 2 else (0,))
        if any(not isinstance(s, int) or not 0 <= s < self.T for s in starts) \
                or any(a <= b for a, b in zip(starts, starts[1:])):
            raise ValueError(f"starts must be strictly descending steps in [0, T = {self.T}), got {starts!r}")
        object.__setattr__(self, "starts", tuple(starts))
        predictions = tuple(check_choice(p, "predictions", PREDICTIONS) for p in self.predictions or ("eps",) * len(starts))
        if len(predictions) != len(starts):
            raise ValueError(f"predictions must give one of {PREDICTIONS} per start {starts}, got {predictions}")
        object.__setattr__(self, "predictions", predictions)
        if "x0" in predictions and (self.schedule is None or NoiseSchedule.from_dict(self.schedule).T != self.T):
            raise ValueError(f"schedule must be the process's schedule dict (T = {self.T}) when an expert predicts x0")


class TimeExperts(EpsUNet):
    """``forward(x [B, C, H, W], t [B], y [B] | None) -> eps_hat``: each sample answered by the expert whose band
    holds its step (see the module docstring)."""

    def __init__(self, config: ExpertsConfig, build: Callable[..., EpsUNet]):
        super().__init__(config)
        self.experts = nn.ModuleList(build(**config.expert) for _ in config.starts)  # build: models.build_model
        self.register_buffer("starts", torch.tensor(config.starts), persistent=False)
        self.predictions = config.predictions
        self.schedule = NoiseSchedule.from_dict(config.schedule) if config.schedule is not None else None

    @classmethod
    def from_network(cls, network: EpsUNet, starts, *, predictions=(), schedule: NoiseSchedule | None = None
                     ) -> "TimeExperts":
        """Experts at ``starts`` that each begin as a copy of ``network`` (a distillation student's start), with
        ``predictions`` per expert (default ε; an x_0 expert needs ``schedule``)."""
        c = network.config
        config = ExpertsConfig(name="experts", num_classes=c["num_classes"], T=c["T"], in_channels=c["in_channels"],
                               image_size=c["image_size"], expert=dict(c), starts=tuple(int(s) for s in starts),
                               predictions=tuple(predictions),
                               schedule=None if schedule is None else schedule.to_dict())
        return cls(config, build=lambda **_: copy.deepcopy(network))

    def expert_of(self, t: torch.Tensor) -> torch.Tensor:
        """The expert index ``[B]`` of steps ``t [B]``: the last k with t ≤ starts[k]."""
        return ((t[:, None] <= self.starts.to(t.device)[None, :]).sum(1) - 1).clamp(min=0)

    def _answer(self, i: int, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Expert ``i``'s ε̂ for ``x [b, C, H, W]`` at steps ``t [b]`` (its x_0 turned into ε̂)."""
        out = self.experts[i](x, t, y)
        return x0_to_eps(self.schedule, x, t, out.to(x.dtype)) if self.predictions[i] == "x0" else out

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t, y = self._check(x, t, y)
        k = self.expert_of(t)
        if bool((k == k[0]).all()):  # a sampler's batch: one step, one expert
            return self._answer(int(k[0]), x, t, y)
        out = None
        for i in k.unique().tolist():
            rows = (k == i).nonzero().squeeze(1)
            part = self._answer(i, x[rows], t[rows], None if y is None else y[rows])
            out = x.new_zeros((x.shape[0], *part.shape[1:]), dtype=part.dtype) if out is None else out
            out = out.index_copy(0, rows, part)
        return out
