"""Exact log-likelihoods log p_θ(x) through the probability-flow ODE (Song et al. 2021, "Score-Based Generative
Modeling through SDEs", Sec. 4.3 and App. D.2), with the instantaneous change of variables (Chen et al. 2018,
"Neural ODEs"; Grathwohl et al. 2019, "FFJORD"):

    dx/dt = u(x, t),   d log p_t(x_t)/dt = −∇·u(x_t, t)   ⇒   log p_0(x) = log p_1(x_1) + ∫_0^1 ∇·u(x_t, t) dt.

    lp = log_likelihood(gm.eps_fn(s), x0, s)              # nats per sample, [N]; ≈ gm.log_prob(x0)
    lp = log_likelihood(gm.velocity_fn(fm), x0, fm)       # an interpolant (toydiff.processes.interpolants) and its velocity

**Processes.** ``process`` is a process object: a :class:`~toydiff.processes.vp.VPProcess` with an ε-predictor
``fn(x_t [B, *event], t LongTensor [B])``, or an :class:`~toydiff.processes.flow.InterpolantProcess` with a
predictor ``fn(x_t, t float [B])`` of its ``prediction``; a bare :class:`~toydiff.processes.schedules.NoiseSchedule`
or :class:`~toydiff.processes.interpolants.Interpolant` (with ``prediction``, default ``"velocity"``) stands for
its process. The process supplies the ODE's field, start time and prior scale (``pf_ode_field``,
``pf_ode_t_min``, ``prior_sigma``).

**Continuous time for a discrete schedule.** The ε-predictor only knows the steps k = 0 … T−1. The ODE runs on
:func:`toydiff.processes.interpolants.vp` (step k at t_k = (k + 1)/T, log ᾱ linear in t between knots, t = 0 the data):
between knots k and k + 1 the score is the interpolation ŝ = (1 − w) s_k + w s_{k+1} of the knots' scores
s_k = −ε(x, k)/σ_k, linear in σ² (w = (σ(t)² − σ_k²)/(σ_{k+1}² − σ_k²); the score is smooth in the noise level,
ε = −σ s is not near σ = 0); on the first piece (0 ≤ t < 1/T) it is held at step 0's. The PF-ODE field is then
u = (α̇/α)(x + ŝ) (for log ᾱ linear in t, α̇/α = ½ d log ᾱ/dt and σ̇ − α̇σ/α = −(α̇/α)/σ, so
u = α̇ x̂_0 + σ̇ ε̂ with ε̂ = −σ ŝ). The prior is N(0, I) at t = 1 (as the VP samplers assume; ᾱ_{T−1} is not exactly 0).

**Divergence.** ``"exact"``: D reverse-mode passes (one row of the Jacobian each; fine for D ≲ 32);
``"hutchinson"``: E[zᵀ (∂u/∂x) z] with ``n_probes`` Rademacher probes z drawn once from ``generator`` and held
fixed through the solve (Hutchinson 1989; FFJORD). ``fn`` must be differentiable in x (no ``torch.no_grad``).

The ODE is solved by :func:`scipy.integrate.solve_ivp` in float64 over the whole batch at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from toydiff.bounds import check_size
from toydiff.checks import check_choice, check_int, check_number, check_tensor
from toydiff.processes.registry import as_process

__all__ = ["LikelihoodResult", "log_likelihood", "pf_ode_likelihood", "bits_per_dim", "DIVERGENCES", "ode_field"]

DIVERGENCES = ("auto", "exact", "hutchinson")
SOLVERS = ("RK45", "RK23", "DOP853")
_LOG_2PI = math.log(2 * math.pi)
#: ``divergence="auto"`` uses the exact divergence up to this many dimensions, Hutchinson's estimator above
EXACT_MAX_DIM = 32
#: the most evaluations of fn one solve may take (a stiff or broken field would otherwise run for minutes)
MAX_NFE = 20_000


@dataclass(frozen=True)
class LikelihoodResult:
    """The PF-ODE likelihood of a batch: ``log_prob = prior_log_prob + delta``, each ``[N]`` float64 nats.

    ``x_end`` ``[N, *event]`` is where each point lands at t = 1; ``nfe`` counts field evaluations.
    """

    log_prob: torch.Tensor
    prior_log_prob: torch.Tensor
    delta: torch.Tensor
    x_end: torch.Tensor
    nfe: int


def ode_field(fn: Callable, process, prediction: str | None = None) -> Callable:
    """The probability-flow field ``u(x [B, *event], t float in [0, 1]) -> [B, *event]`` of ``fn`` on ``process``
    (a process object, a NoiseSchedule or an Interpolant: :func:`~toydiff.processes.registry.as_process`)."""
    return as_process(process, prediction).pf_ode_field(fn)


def _divergence(u: torch.Tensor, x: torch.Tensor, probes: torch.Tensor | None) -> torch.Tensor:
    """∇·u per sample ``[B]``: exact (one backward pass per dimension) or Hutchinson with ``probes [P, B, *event]``."""
    if not u.requires_grad:
        raise ValueError("fn must be differentiable in x_t (no torch.no_grad inside) for the divergence")
    B = x.shape[0]
    if probes is None:
        uf, div = u.reshape(B, -1), torch.zeros(B, dtype=torch.float64)
        for i in range(uf.shape[1]):
            (g,) = torch.autograd.grad(uf[:, i].sum(), x, retain_graph=True)
            div = div + g.reshape(B, -1)[:, i].double()
        return div
    total = torch.zeros(B, dtype=torch.float64)
    for j, z in enumerate(probes):
        (g,) = torch.autograd.grad((u * z).sum(), x, retain_graph=j < len(probes) - 1)
        total = total + (g * z).reshape(B, -1).sum(1).double()
    return total / len(probes)


def _probes(x: torch.Tensor, divergence: str, n_probes: int, generator) -> torch.Tensor | None:
    D = math.prod(x.shape[1:])
    if divergence == "exact" or (divergence == "auto" and D <= EXACT_MAX_DIM):
        return None
    z = torch.randint(0, 2, (n_probes, *x.shape), generator=generator, dtype=torch.int64)
    return (2 * z - 1).to(x.dtype)


def _shape_checked(fn: Callable) -> Callable:
    """``fn`` whose output must be a tensor of its input's shape (a ValueError naming ``fn`` otherwise)."""
    def checked(x: torch.Tensor, t, *args, **kwargs) -> torch.Tensor:
        out = fn(x, t, *args, **kwargs)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"fn returned {got}; expected the shape of its input x_t, {tuple(x.shape)}")
        return out

    return checked


def _check_field(u, shape, t: float, what: str = "fn") -> torch.Tensor:
    """``u`` if it is a tensor of ``shape`` without NaN / inf; else a ValueError naming ``what`` and t (a NaN would
    make the adaptive solver shrink its step forever)."""
    if not isinstance(u, torch.Tensor) or u.shape != tuple(shape):
        got = tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__
        raise ValueError(f"{what} returned {got} at t = {t:.4g}; expected the shape {tuple(shape)}")
    if not bool(torch.isfinite(u).all()):
        bad = int((~torch.isfinite(u)).sum())
        raise ValueError(f"{what} returned {bad} NaN or infinite value(s) out of {u.numel()} at t = {t:.4g}")
    return u


def _check_args(fn, x, divergence, n_probes, rtol, atol, t_min, solver, prior, generator):
    for name, f in (("fn", fn), ("prior", prior)):
        if not callable(f) and not (name == "prior" and f is None):
            raise TypeError(f"{name} must be callable, got {type(f).__name__}")
    check_tensor(x, "x", min_ndim=2)
    check_size(x.shape[0], "x.shape[0] (points)", key="n_likelihood")
    check_choice(divergence, "divergence", DIVERGENCES)
    check_choice(solver, "solver", SOLVERS)
    check_int(n_probes, "n_probes", min=1)
    check_number(rtol, "rtol", min=1e-13, max=1.0)
    check_number(atol, "atol", min=1e-13, max=1.0)
    if t_min is not None:
        check_number(t_min, "t_min", min=0.0, max=0.5)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__} {generator!r}")


def pf_ode_likelihood(fn: Callable, x: torch.Tensor, process, *, prediction: str | None = None,
                      divergence: str = "auto", n_probes: int = 1, generator: torch.Generator | None = None,
                      rtol: float = 1e-5, atol: float = 1e-5, t_min: float | None = None,
                      solver: str = "RK45", dtype: torch.dtype = torch.float64,
                      prior: Callable[[torch.Tensor], torch.Tensor] | None = None) -> LikelihoodResult:
    """log p_θ(x) by the probability-flow ODE from t = ``t_min`` (default 0) to t = 1, with its parts.

    Args:
        fn: the predictor (see the module docstring); x: data ``[N, *event]`` (model units).
        process: a process object (VPProcess: ``fn`` predicts ε over integer steps; InterpolantProcess), or a
            NoiseSchedule / Interpolant standing for one.
        prediction: a bare interpolant's prediction type (default ``"velocity"``); ``None``/``"eps"`` for a
            schedule; ``None`` or the process's own for a process object.
        divergence: ``"exact"``, ``"hutchinson"`` or ``"auto"`` (exact up to ``EXACT_MAX_DIM`` dimensions).
        n_probes, generator: Hutchinson's probes (drawn once, from ``generator``).
        rtol, atol, solver: :func:`scipy.integrate.solve_ivp` settings.
        t_min: start time (0 = the data; a VP interpolant's velocity is infinite there: default the process's
            ``pf_ode_t_min``, 1/T for it).
        dtype: the dtype x is handed to ``fn`` in (float64; a float32 network casts inside).
        prior: ``log p_1(x_1 [N, *event]) -> [N]``; default N(0, σ(1)² I) (σ(1) = 1 but for :func:`vp`). A
            schedule whose ᾱ_{T−1} is not ~0 leaves x_1 off N(0, I): the exact terminal marginal (e.g.
            ``gm.noised(alpha_bars[-1]).log_prob``) isolates the ODE's own error.
    """
    _check_args(fn, x, divergence, n_probes, rtol, atol, t_min, solver, prior, generator)
    proc = as_process(process, prediction)
    field = proc.pf_ode_field(_shape_checked(fn))
    if t_min is None:
        t_min = proc.pf_ode_t_min
    shape, N = x.shape, x.shape[0]
    D = math.prod(shape[1:])
    probes = _probes(x.to(dtype), divergence, n_probes, generator)
    nfe = 0

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        nonlocal nfe
        nfe += 1
        if nfe > MAX_NFE:
            raise ValueError(f"the PF-ODE solve needed more than {MAX_NFE} evaluations of fn (at t = {t:.4g}): the "
                             "field is too stiff for rtol/atol (loosen them, or raise t_min)")
        with torch.enable_grad():
            xt = torch.from_numpy(y[: N * D]).reshape(shape).to(dtype).requires_grad_(True)
            u = field(xt, float(t))
            _check_field(u, shape, t)
            div = _check_field(_divergence(u, xt, probes), (N,), t, "the divergence of fn")
        return np.concatenate([u.detach().double().reshape(-1).numpy(), div.numpy()])

    y0 = np.concatenate([x.detach().double().cpu().reshape(-1).numpy(), np.zeros(N)])
    from scipy.integrate import solve_ivp  # here: scipy.integrate costs 0.3 s of every toydiff import

    sol = solve_ivp(rhs, (t_min, 1.0), y0, method=solver, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"the PF-ODE solve failed: {sol.message}")
    y1 = torch.from_numpy(sol.y[:, -1])
    x1, delta = y1[: N * D].reshape(N, D), y1[N * D:]
    if prior is None:
        s1 = proc.prior_sigma
        lp1 = -0.5 * ((x1 / s1) ** 2).sum(1) - D * (math.log(s1) + 0.5 * _LOG_2PI)
    else:
        lp1 = torch.as_tensor(prior(x1.reshape(shape)), dtype=torch.float64).reshape(N)
    return LikelihoodResult(lp1 + delta, lp1, delta, x1.reshape(shape), nfe)


def log_likelihood(fn: Callable, x: torch.Tensor, process, **kwargs) -> torch.Tensor:
    """log p_θ(x) in nats per sample, ``[N]`` float64: :func:`pf_ode_likelihood`'s ``log_prob``."""
    return pf_ode_likelihood(fn, x, process, **kwargs).log_prob


def bits_per_dim(log_prob: torch.Tensor, dim: int, *, bins: int = 256, data_range: float = 2.0) -> torch.Tensor:
    """Bits per dimension of uniformly dequantised discrete data (Theis et al. 2016; Ho et al. 2020, Sec. 4).

    Pixels k ∈ {0 … bins − 1} are dequantised to y = (k + u)/bins, u ~ U[0, 1), and mapped linearly onto a
    range of width ``data_range`` ([−1, 1]: 2). A continuous density on that range gives the discrete bound
    −log P(k) ≤ −log p(x) − D log(data_range / bins), so bpd = (−log p(x) − D log(data_range/bins)) / (D ln 2).
    ``log_prob`` ``[N]`` nats of x in the model's units; ``dim`` = D.
    """
    check_tensor(log_prob, "log_prob", min_ndim=1)
    D = check_int(dim, "dim", min=1)
    check_int(bins, "bins", min=2)
    check_number(data_range, "data_range", min=1e-12)
    return (-log_prob.double() - D * math.log(data_range / bins)) / (D * math.log(2))
