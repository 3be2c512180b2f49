"""ODE samplers over a Gaussian interpolant: ``sample(fn, x_1, interp, method=..., steps=N)`` from t = 1 to t = 0.

:func:`toydiff.sample` dispatches here when its third argument is an :class:`~toydiff.processes.interpolants.Interpolant`
(its ``method`` then defaults to ``"euler"``; ``spacing`` / ``eta`` / ``variance`` / ``project`` are refused).
The network ``fn(x_t [B, *event], t float tensor [B]) -> [B, *event]`` predicts ``prediction`` (default the
velocity u; ``"eps"``, ``"x0"``, ``"v"`` are converted by :meth:`Interpolant.x0_eps`); the samplers integrate
the probability-flow ODE dx/dt = E[u | x_t] (Lipman et al. 2023; Liu et al. 2023) over a descending time grid.

Methods (``FLOW_METHODS``; one step function each, ``step(ctx, x, t, t_prev) -> (x_prev, eps, x0_hat, u)``):

- ``"euler"``: x' = x + (t' − t) u(x, t); first order, 1 evaluation per step.
- ``"heun"``: Euler, then the trapezoidal correction with u(x', t') (Karras et al. 2022 Algorithm 1 in t);
  second order, 2 evaluations per step. On a last step to t = 0 the correction is made where the field is
  finite there (``linear``, ``cosine`` with a velocity, ε or v prediction) and skipped, as Karras et al. skip
  it at σ = 0, where it is not (``vp``, whose σ̇ is infinite at 0, an x_0 prediction, whose ε is 0/0, or a
  ``fn`` marked ``fn.singular_at_zero = True``, as the empirical distribution's, whose ε̂ ~ 1/t does not vanish):
  there the last step is an Euler step ending at x̂_0-like shrinkage (see bench/flow_vs_diffusion.py).
- ``"midpoint"``: the explicit midpoint rule (Runge's RK2); second order, 2 evaluations per step.
- ``"dpm++2m"``: DPM-Solver++(2M) (Lu et al. 2022) on the x_0 prediction in λ = log(α/σ); exact for any
  α, σ since x/σ obeys d(x/σ) = x̂_0 d(α/σ); the last step to σ = 0 returns x̂_0.

Time grids (:func:`time_grid`): ``steps=N`` uniform from 1 to 0, optionally warped by ``shift=s`` (SD3's
t' = s t / (1 + (s − 1) t), Esser et al. 2024: s > 1 spends the steps nearer the noise); or ``times=`` an
explicit strictly descending sequence in [0, 1] (a start below 1 continues a partly noised input).
Nothing non-finite passes silently: every output of ``fn`` is probed as the VP samplers' ε̂ is
(:class:`~toydiff.sampling.context.FiniteProbe`) and the result scanned once; a NaN or ±inf is a ``ValueError``
naming the method, the step and t. Grids hold at most ``toydiff.bounds.SIZE_LIMITS["steps"]`` steps.
Deterministic: ``generator`` (one ``torch.Generator`` or a list of ``B``) is checked as for the VP samplers
and unused by these methods. The callback dict has the VP samplers' keys (``t`` and ``t_prev`` are floats)
plus ``velocity``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Sequence

import torch

from toydiff.bounds import check_size
from toydiff.checks import check_choice, check_int, check_number, check_tensor
from toydiff.processes.interpolants import PREDICTIONS, Interpolant, _from_pair, _to_pair
from toydiff.sampling.context import FiniteProbe, check_generator, dpmpp_2m_update, progress_bar
from toydiff.processes.schedules import _warn_terminal

__all__ = ["FLOW_METHODS", "FLOW_REGISTRY", "FlowContext", "time_grid", "sample_interpolant", "flow_evaluations"]

FlowStep = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # (x_prev, eps, x0_hat, u), [B, *event]


class FlowContext(FiniteProbe):
    """What the steps of one :func:`sample_interpolant` run share.

    ``coefs(t)`` gives (α, σ, α̇, σ̇) at a float time as Python floats (cached); ``denoise(x, t)`` is the one
    place ``fn`` is called and returns (u, x̂_0, ε̂), each ``[B, *event]``; ``memory`` keeps multistep history.
    Every output of ``fn`` is probed for NaN / inf as the VP samplers' (:class:`~toydiff.sampling.context.FiniteProbe`):
    a ``ValueError`` names the method, the step and t.
    """

    __slots__ = ("fn", "interp", "prediction", "clip_x0", "memory", "finite_at_zero", "_shape", "_t", "_coefs")
    what = "fn"

    def __init__(self, fn, interp: Interpolant, x_1: torch.Tensor, prediction: str, clip_x0: float | None,
                 method: str = "?"):
        self.fn, self.interp, self.prediction, self.clip_x0 = fn, interp, prediction, clip_x0
        self.memory, self._coefs = {}, {}
        self.method, self.step, self._calls = method, 0, 0
        self._shape = x_1.shape
        self._t = torch.empty(x_1.shape[0], dtype=x_1.dtype, device=x_1.device)  # [B], refilled per call
        # a field that says it is singular at t = 0 (the empirical distribution's) gets no evaluation there
        self.finite_at_zero = _finite_at_zero(interp, prediction) and not getattr(fn, "singular_at_zero", False)

    def coefs(self, t: float) -> tuple[float, float, float, float]:
        if t not in self._coefs:
            self._coefs[t] = tuple(float(c) for c in self.interp.coefs(torch.tensor(t, dtype=torch.float64)))
        return self._coefs[t]

    def denoise(self, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(u, x̂_0, ε̂) at ``x`` ``[B, *event]``, time ``t``; with ``clip_x0``, x̂_0 is clamped and u, ε̂ follow it."""
        out = self.fn(x, self._t.fill_(t))
        if not isinstance(out, torch.Tensor) or out.shape != self._shape:
            got = getattr(out, "shape", type(out).__name__)
            raise ValueError(f"fn returned {got}; expected shape {tuple(self._shape)}")
        out = out.to(x.dtype)
        if self.check_finite and not self._finite(out):
            self._refuse_non_finite(x, out, t)
        c = self.coefs(t)
        x0, eps = _to_pair(out, self.prediction, x, c)
        if self.clip_x0 is not None:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            if c[1] > 0:  # at σ = 0 (t = 0) ε is not determined by (x, x̂_0): keep the network's
                eps = _to_pair(x0, "x0", x, c)[1]
        elif self.prediction == "velocity":
            return out, x0, eps
        return _from_pair(x0, eps, "velocity", c), x0, eps


# --- the methods ------------------------------------------------------------------------------------
def euler_step(ctx: FlowContext, x: torch.Tensor, t: float, t_prev: float) -> FlowStep:
    """Euler's method on dx/dt = u(x, t): x_{t'} = x_t + (t' − t) u(x_t, t)."""
    u, x0, eps = ctx.denoise(x, t)
    return x + (t_prev - t) * u, eps, x0, u


def heun_step(ctx: FlowContext, x: torch.Tensor, t: float, t_prev: float) -> FlowStep:
    """Heun's method (Karras et al. 2022, Algorithm 1, in t): the Euler step, then
    x_{t'} = x_t + (t' − t)(u(x_t, t) + u(x̃_{t'}, t'))/2; on a step to t = 0 only where
    ``ctx.finite_at_zero``."""
    u, x0, eps = ctx.denoise(x, t)
    x_prev = x + (t_prev - t) * u
    if t_prev > 0 or ctx.finite_at_zero:
        u_p, _, _ = ctx.denoise(x_prev, t_prev)
        x_prev = x + (t_prev - t) * 0.5 * (u + u_p)
    return x_prev, eps, x0, u


def midpoint_step(ctx: FlowContext, x: torch.Tensor, t: float, t_prev: float) -> FlowStep:
    """The explicit midpoint rule (RK2): x_{t'} = x_t + h u(x_t + (h/2) u(x_t, t), t + h/2), h = t' − t."""
    u, x0, eps = ctx.denoise(x, t)
    h = t_prev - t
    u_mid, _, _ = ctx.denoise(x + 0.5 * h * u, t + 0.5 * h)
    return x + h * u_mid, eps, x0, u


def _half_log_snr(a: float, s: float) -> float:
    """λ = log(α/σ), ±inf at the ends."""
    return math.inf if s == 0 else -math.inf if a == 0 else math.log(a / s)


def dpmpp_2m_step(ctx: FlowContext, x: torch.Tensor, t: float, t_prev: float) -> FlowStep:
    """DPM-Solver++(2M), Lu et al. 2022 ("DPM-Solver++: Fast Solver for Guided Sampling ...") Algorithm 2,
    for any Gaussian path: with λ = log(α/σ) and h = λ_{t'} − λ_t,
    x_{t'} = (σ_{t'}/σ_t) x_t − α_{t'} (e^{−h} − 1) D, D = (1 + 1/(2r)) x̂_0 − x̂_0^{prev}/(2r), r = h_prev/h;
    first order (D = x̂_0) on the first step; a step to σ = 0 returns x̂_0. From α_t = 0 (pure noise)
    the step is x_{t'} = σ_{t'} x_t + α_{t'} x̂_0."""
    u, x0, eps = ctx.denoise(x, t)
    a_t, s_t, _, _ = ctx.coefs(t)
    a_p, s_p, _, _ = ctx.coefs(t_prev)
    lam_t = _half_log_snr(a_t, s_t)
    if s_p == 0:
        x_prev = x0
    else:
        prev = ctx.memory.get("dpm++2m")
        prev = prev if prev is not None and math.isfinite(lam_t - prev[1]) else None  # first order from α = 0
        x_prev = dpmpp_2m_update(x, x0, prev, lam_t, _half_log_snr(a_p, s_p), s_p / s_t, a_p)
    ctx.memory["dpm++2m"] = (x0, lam_t)
    return x_prev, eps, x0, u


def _finite_at_zero(interp: Interpolant, prediction: str) -> bool:
    """Whether the field can be evaluated at t = 0: σ̇(0) finite, and not an x_0 prediction (ε = 0/0 at σ = 0)."""
    return math.isfinite(float(interp.d_sigma(0.0))) and prediction != "x0"


@dataclass(frozen=True)
class FlowMethod:
    """A registry entry: the step function, its cost ``nfe(n_steps, finite_at_zero)`` over a grid ending at 0, and
    its convergence ``order`` in the step size (``None``: none claimed)."""

    step: Callable[..., FlowStep]
    nfe: Callable[[int, bool], int] = lambda n, finite_at_zero: n
    order: float | None = None


FLOW_REGISTRY: MappingProxyType[str, FlowMethod] = MappingProxyType({
    "euler": FlowMethod(euler_step, order=1.0),
    "heun": FlowMethod(heun_step, nfe=lambda n, finite_at_zero: 2 * n - (not finite_at_zero), order=2.0),
    "midpoint": FlowMethod(midpoint_step, nfe=lambda n, finite_at_zero: 2 * n, order=2.0),
    "dpm++2m": FlowMethod(dpmpp_2m_step, order=2.0),
})
FLOW_METHODS = tuple(FLOW_REGISTRY)


def flow_evaluations(method: str, n_steps: int, interp: Interpolant, prediction: str = "velocity") -> int:
    """How many calls of ``fn`` a flow method makes over ``n_steps`` steps ending at t = 0 of ``interp``."""
    check_choice(prediction, "prediction", PREDICTIONS)
    if not isinstance(interp, Interpolant):
        raise TypeError(f"interp must be an Interpolant, got {type(interp).__name__}")
    method = FLOW_REGISTRY[check_choice(method, "method", FLOW_METHODS)]
    return method.nfe(check_int(n_steps, "n_steps", min=1), _finite_at_zero(interp, prediction))


# --- time grids and the entry point ------------------------------------------------------------------
def time_grid(steps: int | None = None, times: Sequence[float] | None = None, shift: float | None = None
              ) -> tuple[float, ...]:
    """The descending times ``(t_0 = 1, …, t_N = 0)`` of ``steps`` uniform steps, warped by ``shift``
    (t ↦ s t / (1 + (s − 1) t), Esser et al. 2024), or the explicit ``times`` (strictly descending in [0, 1])."""
    if (steps is None) == (times is None):
        raise ValueError("give exactly one of steps (a number of uniform steps) and times (an explicit grid)")
    if times is not None:
        if shift is not None:
            raise ValueError("shift applies to a uniform grid (steps=N); warp explicit times yourself")
        if isinstance(times, torch.Tensor):
            times = times.tolist()
        if hasattr(times, "__len__"):
            check_size(len(times) - 1, "len(times) - 1 (steps)", key="steps")
        grid = tuple(check_number(v, "times", min=0.0, max=1.0) for v in times)
        if len(grid) < 2 or any(a <= b for a, b in zip(grid, grid[1:])):
            raise ValueError(f"times must be a strictly descending sequence of at least 2 times in [0, 1], got {grid}")
        return grid
    n = check_size(steps, "steps")
    s = 1.0 if shift is None else check_number(shift, "shift", min=1e-6)
    grid = [(n - i) / n for i in range(n + 1)]
    return tuple(s * t / (1.0 + (s - 1.0) * t) for t in grid)


def _check_call(fn, x_1, interp, method, prediction, clip_x0, callback) -> None:
    check_choice(method, "method", FLOW_METHODS)
    check_choice(prediction, "prediction", PREDICTIONS)
    check_tensor(x_1, "x_1")
    if not isinstance(interp, Interpolant):
        raise TypeError(f"interp must be an Interpolant, got {type(interp).__name__}")
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(x_t, t), got {type(fn).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    if clip_x0 is not None and not check_number(clip_x0, "clip_x0") > 0:
        raise ValueError(f"clip_x0 must be positive or None, got {clip_x0!r}")


@torch.no_grad()
def sample_interpolant(fn, x_1: torch.Tensor, interp: Interpolant, *, method: str = "euler", steps: int | None = None,
                       times: Sequence[float] | None = None, shift: float | None = None, prediction: str = "velocity",
                       generator=None, callback: Callable[[dict], None] | None = None, clip_x0: float | None = None,
                       progress: bool = False) -> torch.Tensor:
    """Integrate the probability-flow ODE of ``interp`` from ``x_1`` ``[B, *event]`` at ``times[0]`` to ``times[-1]``.

    Args:
        fn: the network ``fn(x_t [B, *event], t float tensor [B] of x_1's dtype) -> [B, *event]``.
        x_1: N(0, I) noise (or a partly noised input at ``times[0] < 1``).
        interp: the Gaussian path ``fn`` was trained on.
        method: one of ``FLOW_METHODS``.
        steps, times, shift: the time grid, see :func:`time_grid`.
        prediction: what ``fn`` predicts, one of ``PREDICTIONS``.
        generator: checked like the VP samplers' (unused: every method here is deterministic).
        callback: called after every step with ``step, n_steps, t, t_prev, x_t, x0_hat, eps, x_prev, method,
            velocity`` (live tensors: clone what you keep).
        clip_x0: clamp x̂_0 to ``[-clip_x0, clip_x0]`` and recompute ε̂ and u from it.

    Returns:
        x at ``times[-1]`` (x_0 for a grid ending at 0), ``[B, *event]``, dtype and device of ``x_1``.
    """
    _check_call(fn, x_1, interp, method, prediction, clip_x0, callback)
    check_generator(generator, x_1.shape[0])
    grid = time_grid(steps, times, shift)
    ctx = FlowContext(fn, interp, x_1, prediction, clip_x0, method)
    if prediction == "eps" and ctx.coefs(grid[0])[0] == 0:
        raise ValueError(f"prediction='eps' cannot give x0 at t={grid[0]}, where alpha = 0: start the grid below it")
    if interp.schedule is not None and grid[0] == 1.0:
        _warn_terminal(ctx.coefs(1.0)[0] ** 2, f"sample(interp={interp.name})")
    pairs = list(zip(grid, grid[1:]))
    step = FLOW_REGISTRY[method].step
    x = x_1
    for ctx.step, (t, tp) in enumerate(progress_bar(pairs, method, progress)):
        x_prev, eps, x0, u = step(ctx, x, t, tp)
        if callback is not None:
            callback({"step": ctx.step, "n_steps": len(pairs), "t": t, "t_prev": tp, "x_t": x, "x0_hat": x0, "eps": eps,
                      "x_prev": x_prev, "method": method, "velocity": u})
        x = x_prev
    return ctx.check_result(x, pairs[-1][0])
