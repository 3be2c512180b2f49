"""Flow matching against diffusion on the exact oracle: the same x_1 through the linear-path flow ODE and the
VP probability-flow ODE, the paths they take and how straight those are.

No learning error: the flow follows the exact velocity E[ε − x_0 | x_t] of the linear interpolant
x_t = (1 − t) x_0 + t ε (rectified flow, Liu et al. 2023; flow matching, Lipman et al. 2023), the VP process the
exact ε* of a discrete schedule (Ho et al. 2020) through DDIM (Song et al. 2021) or any VP sampler. Both start at
the same x_1 = x_T ~ N(0, I) ``[n, D]``, so the two maps from noise to data can be compared particle by particle.

    paths = ode_paths(gm, x_1, "flow", method="heun", steps=64)          # [S + 1, n, D]
    straightness(paths)                                                  # mean ‖x_1 − x_0‖ / path length, 1 = straight
"""

from __future__ import annotations

import torch

from toydiff.checks import check_int
from toydiff.exact.mixture import GaussianMixture
from toydiff.processes import InterpolantProcess, VPProcess
from toydiff.processes.base import Process
from toydiff.processes.interpolants import linear
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["PROCESSES", "ode_paths", "path_lengths", "straightness"]

#: the two processes compared by name: "flow" (linear interpolant, exact velocity) and "vp" (a VP schedule, exact ε*)
PROCESSES = ("flow", "vp")


def _vp(schedule) -> VPProcess:
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule for process 'vp', got {type(schedule).__name__}")
    return VPProcess(schedule)


#: the processes by the names :data:`PROCESSES` gives them here, built from the ``schedule`` argument
_BY_NAME = {"flow": lambda schedule: InterpolantProcess(linear(), "velocity"), "vp": _vp}


def _process(process: str | Process, schedule: NoiseSchedule | None) -> Process:
    """A process object: ``process`` itself, or the one its name stands for here (``"vp"`` needs ``schedule``)."""
    if isinstance(process, Process):
        return process
    if process not in _BY_NAME:
        raise ValueError(f"process must be a Process or one of {PROCESSES}, got {process!r}")
    return _BY_NAME[process](schedule)


def ode_paths(mixture: GaussianMixture, x_1: torch.Tensor, process: str | Process, *, method: str,
              steps: int | None, schedule: NoiseSchedule | None = None, spacing: str | None = None) -> torch.Tensor:
    """Every state of one sampler run from ``x_1 [n, D]`` on the exact field of ``mixture``: ``[S + 1, n, D]``,
    row 0 = x_1, row S = the sample.

    ``process``: a process object (its :meth:`~toydiff.processes.base.Process.exact_fn` and ``sample``), or by
    name ``"flow"`` (the linear interpolant's exact velocity, a flow method over ``steps`` uniform steps) or
    ``"vp"`` (``schedule`` with a VP method; ``steps=None``: every step; ``spacing`` as :func:`toydiff.sample`).
    Deterministic methods give the ODE's paths.
    """
    proc = _process(process, schedule)
    if not isinstance(x_1, torch.Tensor) or x_1.ndim != 2 or x_1.shape[1] != mixture.D:
        raise ValueError(f"x_1 must be a [n, {mixture.D}] tensor, got {getattr(x_1, 'shape', type(x_1).__name__)}")
    if steps is not None:
        check_int(steps, "steps", min=1)
    states = [x_1.clone()]

    def record(info: dict) -> None:
        states.append(info["x_prev"].clone())

    kw = {} if spacing is None else {"spacing": spacing}
    proc.sample(proc.exact_fn(mixture), x_1, method=method, steps=steps, callback=record, **kw)
    return torch.stack(states)


def path_lengths(paths: torch.Tensor) -> torch.Tensor:
    """``[n]``: the length of each polyline ``paths [S + 1, n, D]`` (sum of its segment lengths)."""
    if not isinstance(paths, torch.Tensor) or paths.ndim != 3 or paths.shape[0] < 2:
        raise ValueError(f"paths must be a [S + 1, n, D] tensor with S >= 1, got {getattr(paths, 'shape', paths)}")
    return (paths[1:] - paths[:-1]).norm(dim=2).sum(0)


def straightness(paths: torch.Tensor) -> float:
    """Mean over particles of ‖x_end − x_start‖ / path length (Liu et al. 2023): 1 for straight paths, smaller
    the more they bend. ``paths``: ``[S + 1, n, D]`` as :func:`ode_paths` returns."""
    length = path_lengths(paths)
    chord = (paths[-1] - paths[0]).norm(dim=1)
    keep = length > 0
    if not bool(keep.any()):
        raise ValueError("every path has zero length")
    return float((chord[keep] / length[keep]).mean())
