"""The exact oracle under any Gaussian interpolant: E[x_0 | x_t], E[ε | x_t] and the velocity, in closed form.

If x_0 ~ Σ_k w_k N(μ_k, Σ_k) and x_t = α x_0 + σ ε (:mod:`toydiff.interpolants`), then given component k,
(x_0, x_t) is jointly Gaussian with x_t ~ N(α μ_k, C_k), C_k = α² Σ_k + σ² I, so

    E[x_0 | x_t, k] = μ_k + α Σ_k C_k⁻¹ (x_t − α μ_k),    E[ε | x_t, k] = σ C_k⁻¹ (x_t − α μ_k),

and the posterior means are these weighted by the responsibilities p(k | x_t). The optimal velocity of flow
matching (Lipman et al. 2023) is E[u | x_t] = α̇ E[x_0 | x_t] + σ̇ E[ε | x_t] (= E[ε − x_0 | x_t] on the
linear path, Liu et al. 2023), and every other prediction type follows. Both formulas stay finite at the
ends of a path (σ = 0: x̂_0 = x_t/α, ε̂ = 0; α = 0: x̂_0 = E[x_0], ε̂ = x_t), so the oracle works at t = 0
and t = 1 of :func:`~toydiff.interpolants.linear` (but the velocity is not defined at t = 0 of
:func:`~toydiff.interpolants.vp`, where σ̇ is infinite). The VP case is :class:`GaussianMixture`'s ε*: the
same whitening (``GaussianMixture._whiten``) with α² = ᾱ, σ² = 1 − ᾱ. Maths in float64.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch

from .checks import check_choice
from .interpolants import PREDICTIONS, Interpolant, _from_pair, time_tensor

if TYPE_CHECKING:
    from .exact import GaussianMixture

__all__ = ["posterior_means", "predict", "denoiser"]


def _times(t, n: int) -> torch.Tensor:
    tt = time_tensor(t)
    if tt.ndim == 0:
        return tt.expand(n)
    if tt.shape != (n,):
        raise ValueError(f"t must be a scalar or have shape [B={n}], got {tuple(tt.shape)}")
    return tt


def _check_interp(interp) -> Interpolant:
    if not isinstance(interp, Interpolant):
        raise TypeError(f"interp must be an Interpolant (toydiff.interpolants), got {type(interp).__name__}")
    return interp


def posterior_means(gm: GaussianMixture, x_t: torch.Tensor, t, interp: Interpolant):
    """E[x_0 | x_t] and E[ε | x_t], each ``[N, D]`` float64, and the coefficients (α, σ, α̇, σ̇), each ``[N, 1]``.

    ``x_t`` is ``[N, *event]`` with prod(event) = D; ``t`` a float or a float tensor ``[N]`` in [0, 1].
    """
    _check_interp(interp)
    xf = gm._flat(x_t, "x_t").cpu()
    a, s, da, ds = interp.coefs(_times(t, xf.shape[0]))  # each [N]
    u, c = gm._whiten(xf, a, s**2)  # [N, K, D]: whitened residuals, eigenvalues of C_k
    r = torch.softmax(gm._component_log_probs(u, c), dim=-1)  # [N, K]
    w = u / c  # C_k⁻¹ (x_t − α μ_k) in the eigenbasis of Σ_k
    eps = s[:, None] * torch.einsum("nk,nke,kde->nd", r, w, gm._U)
    x0 = r @ gm._mu + a[:, None] * torch.einsum("nk,nke,kde->nd", r, w * gm._lam[None], gm._U)
    return x0, eps, tuple(v[:, None] for v in (a, s, da, ds))


def predict(gm: GaussianMixture, x_t: torch.Tensor, t, interp: Interpolant, kind: str = "velocity") -> torch.Tensor:
    """The optimal prediction of type ``kind`` (``eps``, ``x0``, ``v`` or ``velocity``) at ``(x_t, t)``.

    Same shape, dtype and device as ``x_t`` ``[N, *event]``.
    """
    check_choice(kind, "kind", PREDICTIONS)
    x0, eps, c = posterior_means(gm, x_t, t, interp)
    out = _from_pair(x0, eps, kind, c)
    return out.reshape(x_t.shape).to(dtype=x_t.dtype, device=x_t.device)


def denoiser(gm: GaussianMixture, interp: Interpolant, kind: str = "velocity") -> Callable:
    """``fn(x_t [B, *event], t float tensor [B]) -> prediction [B, *event]``, the exact one of type ``kind``.

    Drops into ``toydiff.sample(fn, x_1, interp, prediction=kind, ...)``.
    """
    _check_interp(interp)
    check_choice(kind, "kind", PREDICTIONS)

    def fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return predict(gm, x_t, t, interp, kind)

    return fn
