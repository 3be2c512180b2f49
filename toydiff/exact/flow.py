"""The exact oracle under any Gaussian interpolant: E[x_0 | x_t], E[ε | x_t] and the velocity, in closed form.

If x_0 ~ Σ_k w_k N(μ_k, Σ_k) and x_t = α x_0 + σ ε (:mod:`toydiff.processes.interpolants`), then given component k,
(x_0, x_t) is jointly Gaussian with x_t ~ N(α μ_k, C_k), C_k = α² Σ_k + σ² I, so

    E[x_0 | x_t, k] = μ_k + α Σ_k C_k⁻¹ (x_t − α μ_k),    E[ε | x_t, k] = σ C_k⁻¹ (x_t − α μ_k),

and the posterior means are these weighted by the responsibilities p(k | x_t). The optimal velocity of flow
matching (Lipman et al. 2023) is E[u | x_t] = α̇ E[x_0 | x_t] + σ̇ E[ε | x_t] (= E[ε − x_0 | x_t] on the
linear path, Liu et al. 2023), and every other prediction type follows. Both formulas stay finite at the
ends of a path (σ = 0: x̂_0 = x_t/α, ε̂ = 0; α = 0: x̂_0 = E[x_0], ε̂ = x_t), so the oracle works at t = 0
and t = 1 of :func:`~toydiff.processes.interpolants.linear` (but the velocity is not defined at t = 0 of
:func:`~toydiff.processes.interpolants.vp`, where σ̇ is infinite). The VP case is :class:`GaussianMixture`'s ε*: the
same whitening (``GaussianMixture._whiten``) with α² = ᾱ, σ² = 1 − ᾱ. Maths in float64.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol, Sequence

import numpy as np
import torch

from toydiff.checks import check_choice, check_tensor
from toydiff.processes.interpolants import PREDICTIONS, Interpolant, _from_pair, time_tensor

__all__ = ["MixtureLike", "posterior_means", "posterior_at", "predict", "denoiser", "probability_flow"]


class MixtureLike(Protocol):
    """What these functions read of a :class:`toydiff.exact.mixture.GaussianMixture` (K components in D
    dimensions; typed structurally so that this module, which the mixture calls, need not import it back):
    the eigenbasis ``_U [K, D, D]``, eigenvalues ``_lam [K, D]`` and means ``_mu [K, D]`` of the components,
    the whitening of residuals at a noise level and the components' log-probabilities, and ε*."""

    _U: torch.Tensor
    _lam: torch.Tensor
    _mu: torch.Tensor

    def _flat(self, x: torch.Tensor, name: str = "x") -> torch.Tensor: ...

    def _whiten(self, xf: torch.Tensor, a: torch.Tensor, s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def _component_log_probs(self, u: torch.Tensor, lam: torch.Tensor) -> torch.Tensor: ...

    def eps_star(self, x_t: torch.Tensor, alpha_bar: float | torch.Tensor) -> torch.Tensor: ...


def _times(t, n: int) -> torch.Tensor:
    tt = time_tensor(t)
    if tt.ndim == 0:
        return tt.expand(n)
    if tt.shape != (n,):
        raise ValueError(f"t must be a scalar or have shape [B={n}], got {tuple(tt.shape)}")
    return tt


def _check_interp(interp) -> Interpolant:
    if not isinstance(interp, Interpolant):
        raise TypeError(f"interp must be an Interpolant (toydiff.processes.interpolants), got {type(interp).__name__}")
    return interp


def posterior_means(gm: MixtureLike, x_t: torch.Tensor, t, interp: Interpolant):
    """E[x_0 | x_t] and E[ε | x_t], each ``[N, D]`` float64, and the coefficients (α, σ, α̇, σ̇), each ``[N, 1]``.

    ``x_t`` is ``[N, *event]`` with prod(event) = D; ``t`` a float or a float tensor ``[N]`` in [0, 1].
    """
    _check_interp(interp)
    xf = gm._flat(x_t, "x_t").cpu()
    a, s, da, ds = interp.coefs(_times(t, xf.shape[0]))  # each [N]
    x0, eps = posterior_at(gm, xf, a, s)
    return x0, eps, tuple(v[:, None] for v in (a, s, da, ds))


def posterior_at(gm: MixtureLike, xf: torch.Tensor, a: torch.Tensor, s: torch.Tensor):
    """E[x_0 | x] and E[ε | x], each ``[N, D]`` float64, for x = a x_0 + s ε: ``xf [N, D]`` float64 (CPU), the
    coefficients ``a``, ``s`` ``[N]`` (any a ≥ 0, s ≥ 0, not both 0). The closed form of the module docstring."""
    u, c = gm._whiten(xf, a, s**2)  # [N, K, D]: whitened residuals, eigenvalues of C_k
    r = torch.softmax(gm._component_log_probs(u, c), dim=-1)  # [N, K]
    w = u / c  # C_k⁻¹ (x_t − α μ_k) in the eigenbasis of Σ_k
    eps = s[:, None] * torch.einsum("nk,nke,kde->nd", r, w, gm._U)
    x0 = r @ gm._mu + a[:, None] * torch.einsum("nk,nke,kde->nd", r, w * gm._lam[None], gm._U)
    return x0, eps


def predict(gm: MixtureLike, x_t: torch.Tensor, t, interp: Interpolant, kind: str = "velocity") -> torch.Tensor:
    """The optimal prediction of type ``kind`` (``eps``, ``x0``, ``v`` or ``velocity``) at ``(x_t, t)``.

    Same shape, dtype and device as ``x_t`` ``[N, *event]``.
    """
    check_choice(kind, "kind", PREDICTIONS)
    x0, eps, c = posterior_means(gm, x_t, t, interp)
    if kind == "velocity" and not all(bool(torch.isfinite(v).all()) for v in c[2:]):
        bad = _times(t, x0.shape[0])[~(torch.isfinite(c[2]) & torch.isfinite(c[3])).reshape(-1)]
        raise ValueError(f"t = {float(bad[0])}: the velocity of interp={interp.name!r} is infinite there (d sigma/dt "
                         "is infinite at t = 0 on a vp path); evaluate it at t > 0 or ask for kind='x0' or 'eps'")
    out = _from_pair(x0, eps, kind, c)
    return out.reshape(x_t.shape).to(dtype=x_t.dtype, device=x_t.device)


def denoiser(gm: MixtureLike, interp: Interpolant, kind: str = "velocity") -> Callable:
    """``fn(x_t [B, *event], t float tensor [B]) -> prediction [B, *event]``, the exact one of type ``kind``.

    Drops into ``toydiff.sample(fn, x_1, interp, prediction=kind, ...)``.
    """
    _check_interp(interp)
    check_choice(kind, "kind", PREDICTIONS)

    def fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return predict(gm, x_t, t, interp, kind)

    return fn


def probability_flow(mixture: MixtureLike, x_start: torch.Tensor, sigmas: Sequence[float], *, rtol: float = 1e-10,
                     atol: float = 1e-10, method: str = "DOP853") -> torch.Tensor:
    """The exact probability-flow ODE (Song et al. 2021) of ``mixture``'s VP diffusion from ``x_start`` ``[B, *event]``
    at ``sigmas[0]`` to each of ``sigmas`` ``[F]`` (strictly monotone, σ = √((1 − ᾱ) / ᾱ) ≥ 0; σ = 0 is the data).

    Solved in Karras et al. 2022's scaled variable x̃ = x √(1 + σ²) with σ as time, dx̃/dσ = ε*(x̃ / √(1 + σ²),
    ᾱ = 1 / (1 + σ²)), by :func:`scipy.integrate.solve_ivp` (``method``, ``rtol``, ``atol``) over the whole
    batch at once. Returns the VP states x̃ / √(1 + σ²) ``[F, B, *event]`` float64 (entry 0: ``x_start``).
    The reference of :mod:`toydiff.testing` and the toy track's motion figures both integrate this.
    """
    from scipy.integrate import solve_ivp

    check_tensor(x_start, "x_start")
    sig = np.asarray(sigmas, dtype=np.float64)
    d = np.diff(sig)
    if sig.ndim != 1 or len(sig) < 2 or not np.all(np.isfinite(sig)) or sig.min() < 0 or not (
            np.all(d > 0) or np.all(d < 0)):
        raise ValueError("sigmas must be a strictly monotone sequence of at least 2 finite σ ≥ 0")
    shape, flat = x_start.shape, x_start.detach().cpu().to(torch.float64).reshape(x_start.shape[0], -1)

    def rhs(s: float, y: np.ndarray) -> np.ndarray:
        ab = 1.0 / (1.0 + s * s)
        return mixture.eps_star(torch.from_numpy(y).reshape(flat.shape) * math.sqrt(ab), torch.tensor(ab)).numpy().ravel()

    y0 = (flat * math.sqrt(1 + sig[0] ** 2)).numpy().ravel()
    sol = solve_ivp(rhs, (sig[0], sig[-1]), y0, method=method, t_eval=sig, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"the probability-flow ODE solve failed: {sol.message}")
    y = torch.from_numpy(sol.y.T.copy()).reshape(len(sig), *shape)
    return y / torch.from_numpy(np.sqrt(1 + sig ** 2)).reshape(-1, *([1] * len(shape)))
