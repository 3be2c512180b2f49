"""The Sampler lab's numerics, apart from its widgets: one sampler run on a denoiser, its distance to the truth,
and the mean ± spread over seeds that the page plots with error bars.

A *line* is one curve of the lab: a VP sampler (``toydiff.sample(eps_fn, x_T, schedule, method, spacing)``) or
a flow-matching sampler on a Gaussian interpolant (``toydiff.sample(fn, x_1, interp, method, shift)``, the
exact velocity of the same mixture, :func:`toydiff.exact.flow.denoiser`). Points are ``[n, dim]``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

import toydiff as td
from toydiff.checks import check_choice, check_int
from toydiff.processes.flow import InterpolantProcess
from toydiff.processes.registry import PROCESSES
from toydiff.processes.vp import VPProcess
from toydiff.toy import metrics

__all__ = ["Line", "FLOW_SHIFTS", "GRIDS", "TOY_PROCESS", "process_for", "line_label", "nfe", "run_line", "distance",
           "mean_spread", "ddim_euler_gap", "converged", "verdict"]

#: the flow samplers' time grids: uniform in t, or SD3's shift (Esser et al. 2024) towards the noise
FLOW_SHIFTS = {"uniform": None, "shift 3 (SD3)": 3.0}

#: per process (a name of :data:`toydiff.processes.registry.PROCESSES`): its time grids by name, as the
#: ``sample`` options each sets
GRIDS = {"vp": {s: {"spacing": s} for s in td.schedules.SPACINGS},
         "flow": {name: {"shift": shift} for name, shift in FLOW_SHIFTS.items()}}

#: per process: the time grid a method uses unless told (VP: the method's own spacing)
_DEFAULT_GRID = {"vp": lambda method: td.sampling.REGISTRY[method].default_spacing,
                 "flow": lambda method: "uniform"}

#: how a line builds its process: VP over the source's schedule, flow matching (exact velocity) on its interpolant
_BUILD = {"vp": lambda schedule, interp: VPProcess(schedule),
          "flow": lambda schedule, interp: InterpolantProcess(td.interpolants.BUILDERS[interp](), "velocity")}

#: how a line is labelled: ``ddim (linspace)``, ``flow heun (linear, uniform)``
_LABELS = {"vp": "{method} ({grid})", "flow": "flow {method} ({interp}, {grid})"}

#: the process of the toy track's trained networks (ε over a schedule): lines of another process need the mixture
TOY_PROCESS = "vp"


@dataclass(frozen=True)
class Line:
    """One curve: sampler ``method`` of ``process`` (a key of :data:`GRIDS`) on its time grid ``spacing`` (a key
    of ``GRIDS[process]``); ``interp`` "linear" or "cosine" is the path of a process that has one (flow)."""

    process: str
    method: str
    spacing: str
    interp: str = "linear"

    def __post_init__(self):
        check_choice(self.process, "process", tuple(GRIDS))
        check_choice(self.method, "method", PROCESSES[self.process].methods)
        check_choice(self.spacing, "spacing", tuple(GRIDS[self.process]))
        check_choice(self.interp, "interp", tuple(td.interpolants.BUILDERS))

    @classmethod
    def default(cls, process: str, method: str, interp: str = "linear") -> "Line":
        """``method`` of ``process`` on the time grid it uses unless told."""
        check_choice(process, "process", tuple(GRIDS))
        return cls(process, method, _DEFAULT_GRID[process](method), interp)


def process_for(line: Line, schedule: td.NoiseSchedule | None):
    """The process object of ``line`` (``schedule``: the source's, read by VP lines)."""
    return _BUILD[line.process](schedule, line.interp)


def line_label(line: Line) -> str:
    """``ddim (linspace)`` or ``flow heun (linear, uniform)``."""
    return _LABELS[line.process].format(method=line.method, grid=line.spacing, interp=line.interp)


def nfe(line: Line, steps: int, schedule: td.NoiseSchedule | None = None) -> int:
    """Network evaluations of ``steps`` steps of this line (its process's count)."""
    return process_for(line, schedule if schedule is not None else _count_schedule()).nfe(line.method, steps)


@functools.cache
def _count_schedule() -> td.NoiseSchedule:
    """Any schedule: a VP method's count of network evaluations does not depend on it."""
    return td.schedules.linear(T=1000)


def run_line(line: Line, steps: int, n: int, seed: int, *, eps_fn: Callable | None, schedule: td.NoiseSchedule | None,
             mixture: td.GaussianMixture | None, dim: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``n`` samples ``[n, dim]`` of one line at ``steps`` steps; the start noise is drawn from ``seed`` (the same
    for every line), DDPM's step noise from ``seed + 1``. With ``mixture`` the line samples its process's exact
    prediction; without, the network ``eps_fn`` (a :data:`TOY_PROCESS` ε network over ``schedule``)."""
    steps, n = check_int(steps, "steps", min=1), check_int(n, "n", min=2)
    if mixture is None and (eps_fn is None or line.process != TOY_PROCESS):
        raise ValueError(f"a {line.process} line needs the exact mixture, or a network eps_fn of its process "
                         f"({TOY_PROCESS})")
    process = process_for(line, schedule)
    fn = process.exact_fn(mixture) if mixture is not None else eps_fn
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return process.sample(fn, x, method=line.method, steps=steps, generator=torch.Generator().manual_seed(seed + 1),
                          **GRIDS[line.process][line.spacing])


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


def converged(curve: dict, rel_tol: float = 1e-3) -> bool:
    """Whether a line has stopped changing: its mean distance at its two largest step counts differs by no more
    than their larger error bar (one sd over seeds; at least ``rel_tol`` of the mean, so one seed can count).
    ``curve``: ``{"steps": [...], "mean": [...], "std": [...]}`` sorted by steps."""
    if len(curve["steps"]) < 2:
        return False
    (m0, m1), (s0, s1) = curve["mean"][-2:], curve["std"][-2:]
    return abs(m1 - m0) <= max(s0, s1, rel_tol * max(abs(m0), abs(m1)))


def verdict(curves: dict, floor: tuple[float, float]) -> str:
    """What the sweep shows, computed from its lines: which reach the floor band (mean within one floor sd of
    the floor, or below it), which have converged above it (their distance stops changing across their two
    largest step counts, so what is left is not discretisation error) and which are still moving."""
    band = floor[0] + floor[1]
    reach, flat, moving = [], [], []
    for lab, c in curves.items():
        i = next((j for j, m in enumerate(c["mean"]) if m <= band), None)
        if i is not None:
            reach.append(f"{lab} from {c['steps'][i]} steps")
        elif converged(c):
            flat.append(f"{lab} ({c['mean'][-2]:.3g} at {c['steps'][-2]}, {c['mean'][-1]:.3g} at {c['steps'][-1]} steps)")
        else:
            moving.append(lab)
    parts = []
    if reach:
        parts.append("Within the floor band (indistinguishable from perfect samples at this size; a single run can "
                     "land below the floor by chance): " + "; ".join(reach) + ".")
    if flat:
        parts.append("Converged above the floor band — more steps no longer change the distance, so the remaining "
                     "gap is not discretisation error but the draw of x_T and of the true points at this size (or, "
                     "for a trained model, its error): " + "; ".join(flat) + ".")
    if moving:
        parts.append("Still changing at the largest step counts, so part of the gap is discretisation error: "
                     + ", ".join(moving) + ".")
    return " ".join(parts) or "No lines to judge."
