"""The exact probability-flow map of a Gaussian mixture, its consistency function and its average velocity.

The probability-flow ODE (Song et al. 2021, "Score-Based Generative Modeling through SDEs") moves x_t to x_s
deterministically, keeping every marginal; its solution operator Φ_{t→s} is the *flow map*. For data x_0 ~ mixture
and any Gaussian path x_t = α_t x_0 + σ_t ε (a VP schedule's steps or an interpolant's t ∈ [0, 1]), the path only
enters through σ̃ = σ/α: in Karras et al. 2022's scaled variable y = x/α, y = x_0 + σ̃ ε and

    dy/dσ̃ = E[ε | y]                        (data side, σ̃ ≤ 1; the DDIM / Karras ODE)
    dz/dτ = E[x_0 | z],  z = x/σ, τ = α/σ    (noise side, σ̃ ≥ 1; data prediction, Lu et al. 2022 DPM-Solver++)

with y = z at σ̃ = τ = 1, where the two halves meet. Both fields are finite at their ends, so the map starts or stops
at the singular end α = 0 (t = 1 of linear and cosine: σ̃ = ∞, τ = 0, z = x_1) with no approximation. Each half is
solved by :func:`scipy.integrate.solve_ivp` to tolerance with the closed-form posterior means
(:func:`toydiff.exact.flow.posterior_at`), and mapped back x_s = α_s y_s (or σ_s z_s).

From the map: the consistency function f*(x_t, t) = Φ_{t→0}(x_t) (Song et al. 2023, "Consistency Models") and the
average velocity u*(x_t, r, t) = (x_t − Φ_{t→r}(x_t)) / (t − r) (Geng et al. 2025, "Mean Flows"). Maths in float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from toydiff.exact.flow import MixtureLike, posterior_at, predict
from toydiff.processes.interpolants import Interpolant, time_tensor
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["resolve", "flow_map", "consistency_fn", "average_velocity"]


def resolve(process) -> NoiseSchedule | Interpolant:
    """The schedule (discrete VP steps) or interpolant (t ∈ [0, 1]) that ``process`` stands for: a
    :class:`NoiseSchedule`, an :class:`Interpolant`, or a process object of :mod:`toydiff.processes` (read by its
    ``schedule`` / ``interp``, so this module need not import the registry, which imports the samplers)."""
    if isinstance(process, (NoiseSchedule, Interpolant)):
        return process
    if isinstance(getattr(type(process), "name", None), str):
        schedule, interp = getattr(process, "schedule", None), getattr(process, "interp", None)
        if isinstance(schedule, NoiseSchedule):
            return schedule
        if schedule is None and isinstance(interp, Interpolant):
            return interp
    raise TypeError("process must be a NoiseSchedule (td.schedules), an Interpolant (td.interpolants) or a process "
                    f"object (toydiff.processes: VPProcess, InterpolantProcess), got {type(process).__name__}")


def _vp_steps(t, n: int, T: int, name: str) -> torch.Tensor:
    """Integer steps in [−1, T − 1] (−1: the clean end, ᾱ = 1) as a LongTensor ``[n]``."""
    if isinstance(t, bool) or isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()
                                                                or t.dtype == torch.bool):
        raise TypeError(f"{name} must be an int or an integer tensor [B] of steps, got {getattr(t, 'dtype', t)!r}")
    if isinstance(t, torch.Tensor):
        tt = t.detach().cpu().long()
    elif isinstance(t, (int, np.integer)):
        tt = torch.tensor(int(t))
    else:
        raise TypeError(f"{name} must be an int or an integer tensor [B] of steps, got {type(t).__name__}")
    tt = _broadcast(tt, n, name)
    if int(tt.min()) < -1 or int(tt.max()) > T - 1:
        raise ValueError(f"{name} must be steps in [-1, {T - 1}] (-1: the clean end), got values in "
                         f"[{int(tt.min())}, {int(tt.max())}]")
    return tt


def _broadcast(tt: torch.Tensor, n: int, name: str) -> torch.Tensor:
    if tt.ndim == 0:
        return tt.expand(n)
    if tt.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape [B={n}], got {tuple(tt.shape)}")
    return tt


def _times(process, t, n: int, name: str) -> torch.Tensor:
    """Times ``[n]``: float64 in [0, 1] for an interpolant, int64 steps for a schedule."""
    if isinstance(process, NoiseSchedule):
        return _vp_steps(t, n, process.T, name)
    if isinstance(t, torch.Tensor) and not t.is_floating_point() and t.dtype != torch.bool:
        t = t.double()  # integer 0 / 1 as times of a continuous path
    return _broadcast(time_tensor(t, name), n, name)


def _coefs(process, t) -> tuple[float, float]:
    """(α, σ) at one time of ``process``."""
    if isinstance(process, NoiseSchedule):
        if int(t) == -1:
            return 1.0, 0.0
        ab = float(process.alpha_bars[int(t)])
        return math.sqrt(ab), math.sqrt(1.0 - ab)
    a, s, _, _ = process.coefs(torch.tensor([float(t)], dtype=torch.float64))
    return float(a), float(s)


def _segment(gm: MixtureLike, v: torch.Tensor, c0: torch.Tensor, c1: torch.Tensor, data_side: bool,
             solver: dict) -> torch.Tensor:
    """Carry each row of ``v [N, D]`` from its clock ``c0[i]`` to ``c1[i]`` (``[N]``) on one side of σ̃ = 1, all rows in
    ONE solve: the clock of row i is c0_i + u (c1_i − c0_i) for u ∈ [0, 1], so dv_i/du = (c1_i − c0_i) f(v_i, clock_i).
    The data side's clock is σ̃ (dy/dσ̃ = E[ε | y], y = x_0 + σ̃ ε); the noise side's is τ (dz/dτ = E[x_0 | z],
    z = τ x_0 + ε). Rows with c0 = c1 are returned unchanged."""
    from scipy.integrate import solve_ivp

    moving = c0 != c1
    if not bool(moving.any()):
        return v
    w0, a, span = v[moving], c0[moving], (c1 - c0)[moving]
    n, d = w0.shape
    one = torch.ones(n, dtype=torch.float64)

    def rhs(u: float, w: np.ndarray) -> np.ndarray:
        vt, clock = torch.from_numpy(w).reshape(n, d), a + u * span
        pair = posterior_at(gm, vt, one, clock)[1] if data_side else posterior_at(gm, vt, clock, one)[0]
        return (span[:, None] * pair).numpy().ravel()

    sol = solve_ivp(rhs, (0.0, 1.0), w0.numpy().ravel(), t_eval=[1.0], **solver)
    if not sol.success:
        side = "data side (sigma~ <= 1)" if data_side else "noise side (sigma~ >= 1)"
        raise RuntimeError(f"the probability-flow solve on the {side} failed: {sol.message}")
    out = v.clone()
    out[moving] = torch.from_numpy(sol.y[:, -1].copy()).reshape(n, d)
    return out


def _solve(gm: MixtureLike, v: torch.Tensor, a: torch.Tensor, b: torch.Tensor, solver: dict) -> torch.Tensor:
    """Carry row i of ``v [N, D]`` from σ̃ = ``a[i]`` to ``b[i]`` (``[N]``; either may be 0 or inf): y = x/α where
    σ̃ ≤ 1, z = x/σ where σ̃ ≥ 1 (equal at σ̃ = 1). Rows moving toward the data cross the noise side, then the data
    side; rows moving away, the reverse: at most four solves however many distinct (a, b) there are."""
    out = v.clone()
    for down in (True, False):
        rows = ((a >= b) if down else (a < b)).nonzero().flatten()
        if not len(rows):
            continue
        w, ar, br = v[rows], a[rows], b[rows]
        for data_side in ((False, True) if down else (True, False)):
            if data_side:  # the part of [a, b] with σ̃ ≤ 1, clock σ̃
                w = _segment(gm, w, ar.clamp(max=1.0), br.clamp(max=1.0), True, solver)
            else:  # the part with σ̃ ≥ 1, clock τ = 1/σ̃ (1/inf = 0)
                w = _segment(gm, w, 1.0 / ar.clamp(min=1.0), 1.0 / br.clamp(min=1.0), False, solver)
        out[rows] = w
    return out


def flow_map(gm: MixtureLike, x: torch.Tensor, t, s, process, *, rtol: float = 1e-10, atol: float = 1e-10,
             method: str = "DOP853") -> torch.Tensor:
    """Φ_{t→s}(x): the exact probability-flow map of ``gm`` from time ``t`` to ``s`` (either direction).

    Args:
        x: ``[B, *event]`` with prod(event) = D, finite, floating point.
        t, s: times of ``process``: integer steps in [−1, T − 1] for a schedule (−1 is the clean end, ᾱ = 1), floats
            in [0, 1] for an interpolant; each a scalar or a tensor ``[B]`` (per-sample times: every sample is
            carried in one ODE system, each on its own clock, so many pairs (t, s) cost about as much as one).
        process: a :class:`NoiseSchedule`, an :class:`Interpolant`, or a process object (:func:`resolve`).
        rtol, atol, method: passed to :func:`scipy.integrate.solve_ivp`.

    Returns:
        x_s ``[B, *event]`` float64 on ``x``'s device; ``t == s`` returns ``x`` unchanged (as float64).
    """
    proc = resolve(process)
    xf = gm._flat(x, "x").detach().cpu()  # [B, D] float64, checked finite
    n = xf.shape[0]
    tt, ss = _times(proc, t, n, "t"), _times(proc, s, n, "s")
    coef = torch.empty(n, 4, dtype=torch.float64)  # α_t, σ_t, α_s, σ_s per sample
    pairs, inv = torch.unique(torch.stack([tt.double(), ss.double()], 1), dim=0, return_inverse=True)
    cast = int if isinstance(proc, NoiseSchedule) else float
    for g, (tg, sg) in enumerate(pairs.tolist()):
        coef[inv == g] = torch.tensor([*_coefs(proc, cast(tg)), *_coefs(proc, cast(sg))], dtype=torch.float64)
    at, st, as_, ss_ = coef.unbind(1)
    inf = torch.tensor(math.inf, dtype=torch.float64)
    sig_t = torch.where(at > 0, st / at, inf)
    sig_s = torch.where(as_ > 0, ss_ / as_, inf)
    v = xf / torch.where(sig_t <= 1.0, at, st)[:, None]
    v = _solve(gm, v, sig_t, sig_s, {"rtol": rtol, "atol": atol, "method": method})
    out = v * torch.where(sig_s <= 1.0, as_, ss_)[:, None]
    out[tt == ss] = xf[tt == ss]
    return out.reshape(x.shape).to(device=x.device)


def consistency_fn(gm: MixtureLike, process, **solver):
    """f*(x_t, t) = Φ_{t→clean}(x_t), the exact consistency function (Song et al. 2023): clean end s = 0 of an
    interpolant, s = −1 (ᾱ = 1) of a schedule, so f*(x, clean) = x. ``f(x_t [B, *event], t)`` → ``[B, *event]``."""
    proc = resolve(process)
    clean = -1 if isinstance(proc, NoiseSchedule) else 0.0

    def f(x_t: torch.Tensor, t) -> torch.Tensor:
        return flow_map(gm, x_t, t, clean, proc, **solver)

    return f


def average_velocity(gm: MixtureLike, x_t: torch.Tensor, r, t, process, **solver) -> torch.Tensor:
    """u*(x_t, r, t) = (x_t − Φ_{t→r}(x_t)) / (t − r), MeanFlow's average velocity (Geng et al. 2025), so that
    x_r = x_t − (t − r) u* on the exact path; where r = t, the instantaneous exact velocity (``gm.velocity``).

    Interpolants only (continuous t ∈ [0, 1]); ``r``, ``t`` scalars or ``[B]``. Returns ``[B, *event]`` float64.
    """
    proc = resolve(process)
    if not isinstance(proc, Interpolant):
        raise TypeError("process must be an interpolant (or an InterpolantProcess): the average velocity is per unit "
                        f"of continuous time t in [0, 1], got {type(process).__name__}")
    xf = gm._flat(x_t, "x_t").detach().cpu()
    n = xf.shape[0]
    rr, tt = _times(proc, r, n, "r"), _times(proc, t, n, "t")
    x_r = flow_map(gm, xf, tt, rr, proc, **solver)
    u = torch.empty_like(xf)
    same = rr == tt
    if bool(same.any()):
        u[same] = predict(gm, xf[same], tt[same], proc, "velocity")
    gap = ~same
    u[gap] = (xf[gap] - x_r[gap]) / (tt[gap] - rr[gap])[:, None]
    return u.reshape(x_t.shape).to(device=x_t.device)
