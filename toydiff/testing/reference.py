"""Reference solvers of the claimed order on a sampler's own levels: the yardstick of the kit's efficiency row.

A sampler that claims order p and visits levels σ_0 > σ_1 > … > σ_N (its reported path) is compared with a
textbook method of order p run by the kit on exactly those levels, from the same starting points, with the exact
denoiser. All work in Karras et al. 2022's variables: x̃ = x·sqrt(1 + σ²), dx̃/dσ = ε*(x̃/sqrt(1 + σ²), ᾱ = 1/(1 + σ²)),
the same probability-flow ODE :func:`toydiff.testing.oracle.pf_ode` solves to tolerance.

- order 1: Euler in σ (Karras et al. 2022 Algorithm 1 without the correction) — algebraically DDIM (η = 0,
  Song et al. 2021 eq. 12) on the same levels;
- order 2: Heun (Karras et al. 2022 Algorithm 1: trapezoidal correction, Euler on the last step to σ = 0) and
  DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2: multistep on the data prediction in λ = −log σ, first order on its
  first step and on the step to σ = 0);
- order 3: Kutta's third-order Runge–Kutta (Kutta 1901; stages at the start, the σ-midpoint and the end of each
  interval; ε* at σ = 0 is 0, the ODE is smooth there for a mixture of non-degenerate Gaussians) and the
  variable-step three-step Adams–Bashforth method in σ (Hairer, Nørsett & Wanner, *Solving ODEs I*, III.5: the
  weights integrate the Lagrange polynomial through the last three derivatives; lower order on the first two
  steps) — the linear multistep method k-diffusion's ``sample_lms`` generalises.

Repeated levels are merged first (a zero-length step moves nothing). Shapes: ``x [B, *event]`` float64.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from toydiff.exact.mixture import GaussianMixture

__all__ = ["REFERENCES", "reference_solve", "distinct_levels"]

Field = Callable[[torch.Tensor, float], torch.Tensor]


def _field(mixture: GaussianMixture) -> Field:
    """dx̃/dσ = ε*(x̃/sqrt(1 + σ²), 1/(1 + σ²)), ``[B, *event]`` float64."""

    def f(xs: torch.Tensor, sigma: float) -> torch.Tensor:
        if sigma == 0.0:
            return torch.zeros_like(xs)
        ab = 1.0 / (1.0 + sigma * sigma)
        return mixture.eps_star(xs * math.sqrt(ab), ab)

    return f


def distinct_levels(sigmas: Sequence[float]) -> list[float]:
    """``sigmas`` with consecutive repeats (equal to 12 digits) merged: a zero-length step moves nothing, and a
    near-zero one would make a multistep method divide rounding noise by ~1e-15."""
    out: list[float] = []
    for s in sigmas:
        s = float(s)
        if not out or (s != out[-1] if math.isinf(s) or math.isinf(out[-1]) else
                       abs(s - out[-1]) > 1e-12 * abs(out[-1])):
            out.append(s)
    return out


def _euler(f: Field, xs: torch.Tensor, sig: list[float]) -> torch.Tensor:
    for s, s_next in zip(sig, sig[1:]):
        xs = xs + (s_next - s) * f(xs, s)
    return xs


def _heun(f: Field, xs: torch.Tensor, sig: list[float]) -> torch.Tensor:
    for s, s_next in zip(sig, sig[1:]):
        d = f(xs, s)
        x_next = xs + (s_next - s) * d
        if s_next > 0:
            x_next = xs + (s_next - s) * 0.5 * (d + f(x_next, s_next))
        xs = x_next
    return xs


def _dpmpp_2m(f: Field, xs: torch.Tensor, sig: list[float]) -> torch.Tensor:
    old, h_last = None, None
    for s, s_next in zip(sig, sig[1:]):
        d = xs - s * f(xs, s)                                   # x̂_0 = x̃ − σ ε*
        if s_next == 0:
            xs = d
            continue
        h = math.log(s) - math.log(s_next)                      # λ = −log σ grows by h
        dd = d if old is None else (1 + h / (2 * h_last)) * d - h / (2 * h_last) * old
        xs = (s_next / s) * xs - math.expm1(-h) * dd
        old, h_last = d, h
    return xs


def _adams_weights(nodes: list[float], a: float, b: float) -> list[float]:
    """∫_a^b ℓ_j(σ) dσ for the Lagrange basis ℓ_j on ``nodes``: the variable-step Adams–Bashforth weights."""
    out = []
    for j, nj in enumerate(nodes):
        poly = np.poly1d([1.0])
        for k, nk in enumerate(nodes):
            if k != j:
                poly = poly * np.poly1d([1.0, -nk]) / (nj - nk)
        integral = poly.integ()
        out.append(float(integral(b) - integral(a)))
    return out


def _ab3(f: Field, xs: torch.Tensor, sig: list[float]) -> torch.Tensor:
    history: list[torch.Tensor] = []
    for i, (s, s_next) in enumerate(zip(sig, sig[1:])):
        history = (history + [f(xs, s)])[-3:]
        nodes = sig[i + 1 - len(history): i + 1]
        xs = xs + sum(w * d for w, d in zip(_adams_weights(nodes, s, s_next), history))
    return xs


def _rk3(f: Field, xs: torch.Tensor, sig: list[float]) -> torch.Tensor:
    for s, s_next in zip(sig, sig[1:]):
        h = s_next - s
        k1 = f(xs, s)
        k2 = f(xs + 0.5 * h * k1, s + 0.5 * h)
        k3 = f(xs - h * k1 + 2 * h * k2, s_next)
        xs = xs + h / 6 * (k1 + 4 * k2 + k3)
    return xs


#: order -> the reference methods of that order, by name
REFERENCES: dict[int, dict[str, Callable]] = {1: {"euler": _euler}, 2: {"heun": _heun, "dpm++2m": _dpmpp_2m},
                                              3: {"rk3": _rk3, "ab3": _ab3}}


def reference_solve(mixture: GaussianMixture, x_start: torch.Tensor, sigmas: Sequence[float],
                    method: str) -> torch.Tensor:
    """Run the reference ``method`` (a name in :data:`REFERENCES`) from ``x_start [B, *event]`` (VP convention, at
    ``sigmas[0]``) over the levels ``sigmas`` (descending); returns the VP state at ``sigmas[-1]``, float64."""
    fn = next((m[method] for m in REFERENCES.values() if method in m), None)
    if fn is None:
        raise ValueError(f"method must be one of {[k for m in REFERENCES.values() for k in m]}, got {method!r}")
    sig = distinct_levels(sigmas)
    x = x_start.detach().cpu().to(torch.float64)
    if math.isinf(sig[0]):  # a flow path's pure-noise end: every method's first step is its σ → ∞ limit, DDIM from
        # ᾱ = 0 (ε̂ = x_T, x̂₀ = E[x₀]): x̃ = E[x₀] + σ₁ x_T (Karras scale); the method runs on from σ₁
        if len(sig) == 1 or math.isinf(sig[1]):
            raise ValueError("sigmas must have a finite level after an infinite one")
        mean = (mixture._w[:, None] * mixture._mu).sum(0).reshape((1,) + x.shape[1:])
        xs, sig = mean + sig[1] * x, sig[1:]
    else:
        xs = x * math.sqrt(1.0 + sig[0] ** 2)
    if len(sig) == 1:
        return xs / math.sqrt(1.0 + sig[-1] ** 2)
    return fn(_field(mixture), xs, sig) / math.sqrt(1.0 + sig[-1] ** 2)
