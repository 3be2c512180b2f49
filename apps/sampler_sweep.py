"""The Sampler lab's numerics, apart from its widgets: one sampler run on a denoiser, its distance to the truth,
and the mean ± spread over seeds that the page plots with error bars.

A *line* is one curve of the lab: a VP sampler (``toydiff.sample(eps_fn, x_T, schedule, method, spacing)``) or
a flow-matching sampler on a Gaussian interpolant (``toydiff.sample(fn, x_1, interp, method, shift)``, the
exact velocity of the same mixture, :func:`toydiff.exact.flow.denoiser`). Points are ``[n, dim]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

import toydiff as td
from toydiff.checks import check_choice, check_int
from toydiff.toy import metrics

__all__ = ["Line", "FLOW_SHIFTS", "line_label", "nfe", "run_line", "distance", "mean_spread", "ddim_euler_gap"]

#: the flow samplers' time grids: uniform in t, or SD3's shift (Esser et al. 2024) towards the noise
FLOW_SHIFTS = {"uniform": None, "shift 3 (SD3)": 3.0}


@dataclass(frozen=True)
class Line:
    """One curve: ``family`` "vp" (``spacing`` one of ``td.schedules.SPACINGS``) or "flow" (``spacing`` a key of
    ``FLOW_SHIFTS``, ``interp`` "linear" or "cosine")."""

    family: str
    method: str
    spacing: str
    interp: str = "linear"

    def __post_init__(self):
        check_choice(self.family, "family", ("vp", "flow"))
        if self.family == "vp":
            check_choice(self.method, "method", td.METHODS)
            check_choice(self.spacing, "spacing", td.schedules.SPACINGS)
        else:
            check_choice(self.method, "method", td.sampling.FLOW_METHODS)
            check_choice(self.spacing, "spacing", tuple(FLOW_SHIFTS))
            check_choice(self.interp, "interp", tuple(td.interpolants.BUILDERS))


def line_label(line: Line) -> str:
    """``ddim (linspace)`` or ``flow heun (linear, uniform)``."""
    if line.family == "vp":
        return f"{line.method} ({line.spacing})"
    return f"flow {line.method} ({line.interp}, {line.spacing})"


def nfe(line: Line, steps: int) -> int:
    """Network evaluations of ``steps`` steps of this line."""
    if line.family == "vp":
        return td.function_evaluations(line.method, steps)
    interp = td.interpolants.BUILDERS[line.interp]()
    return td.sampling.flow_evaluations(line.method, steps, interp)


def run_line(line: Line, steps: int, n: int, seed: int, *, eps_fn: Callable | None, schedule: td.NoiseSchedule | None,
             mixture: td.GaussianMixture | None, dim: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``n`` samples ``[n, dim]`` of one line at ``steps`` steps; the start noise is drawn from ``seed`` (the same
    for every line), DDPM's step noise from ``seed + 1``. Flow lines need ``mixture`` (the exact velocity)."""
    steps, n = check_int(steps, "steps", min=1), check_int(n, "n", min=2)
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    if line.family == "vp":
        if eps_fn is None or schedule is None:
            raise ValueError("a VP line needs eps_fn and schedule")
        return td.sample(eps_fn, x, schedule, method=line.method, steps=steps, spacing=line.spacing,
                         generator=torch.Generator().manual_seed(seed + 1))
    if mixture is None:
        raise ValueError("a flow line needs the exact mixture (flow samplers run on the oracle only)")
    interp = td.interpolants.BUILDERS[line.interp]()
    fn = td.exact.flow.denoiser(mixture, interp, "velocity")
    return td.sample(fn, x, interp, method=line.method, steps=steps, shift=FLOW_SHIFTS[line.spacing])


def distance(a: torch.Tensor, b: torch.Tensor) -> tuple[str, float]:
    """Wasserstein-1 in 1-D, sliced Wasserstein in 2-D (``toydiff.toy.metrics``) between ``[n, d]`` sets."""
    if a.shape[1] == 1:
        return "Wasserstein-1", metrics.wasserstein1(a, b)
    return "sliced Wasserstein", metrics.sliced_wasserstein(a, b)


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) of a distance over seeds."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        raise ValueError("values is empty")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def ddim_euler_gap(eps_fn: Callable, schedule: td.NoiseSchedule, x_T: torch.Tensor, steps: int,
                   spacing: str = "linspace") -> float:
    """max |DDIM(η = 0) − Euler| over ``x_T`` ``[B, *event]``: 0 up to rounding, since DDIM's update
    x_{t'} = √ᾱ_{t'} x̂_0 + √(1 − ᾱ_{t'}) ε̂ is, in Karras' x̃ = x/√ᾱ and σ = √((1 − ᾱ)/ᾱ), the Euler step
    x̃_{t'} = x̃_t + (σ_{t'} − σ_t) ε̂ of the probability-flow ODE dx̃/dσ = ε (Song et al. 2021; Karras et al. 2022)."""
    a = td.sample(eps_fn, x_T, schedule, method="ddim", steps=steps, spacing=spacing)
    b = td.sample(eps_fn, x_T, schedule, method="euler", steps=steps, spacing=spacing)
    gap = float((a - b).abs().max())
    return gap if math.isfinite(gap) else float("inf")
