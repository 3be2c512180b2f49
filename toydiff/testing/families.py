"""The exact model of every sampler family, on the kit's Gaussian-mixture oracle.

A sampler is only as testable as the model it expects. Each family wants a different network output; each is a
closed-form function of the mixture's posterior means E[x_0 | x_t], E[ε | x_t] (:func:`toydiff.exact.flow.posterior_at`)
or of its exact flow map Φ_{t→s} (:mod:`toydiff.exact.flow_map`):

- **diffusion (VP)**: ε*, x̂_0, v, the score ∇ log p_t = −E[ε | x_t]/σ_t — :func:`exact_prediction` on any
  :class:`~toydiff.processes.interpolants.Interpolant`;
- **flow matching**: the velocity u* = α̇ x̂_0 + σ̇ ε̂ on the rectified-flow path x_t = (1 − t) x_0 + t ε, and on a
  *shifted* time grid: SD3's t' = shift·t / (1 + (shift − 1)·t) (Esser et al. 2024, "Scaling Rectified Flow
  Transformers for High-Resolution Image Synthesis", eq. 23; diffusers' dynamic shifting is the same map with
  shift = e^μ, or shift = μ for ``time_shift_type="linear"``) — :func:`shift_time`, :func:`shifted`;
- **EDM** (Karras et al. 2022, Table 1): the raw network F with D = c_skip x + c_out F, seen through c_in x and
  c_noise = ln(σ)/4 — :func:`edm_network_output`;
- **consistency** (Song et al. 2023; LCM, Luo et al. 2023): the exact consistency function f*(x_t) = Φ_{t→0}(x_t),
  and the raw output F of an LCM-parametrised network, c_skip x + c_out F = f* — :func:`lcm_network_output`;
- **flow map / few-step**: Φ_{t→s} itself (:func:`toydiff.exact.flow_map.flow_map`), the reference a one-step
  sampler is judged against, and the average velocity u*(x_t, r, t) (Geng et al. 2025) for flow-map schedulers.

All maths float64; tensors ``[B, *event]``; times ``t`` floats or ``[B]`` tensors.
"""

from __future__ import annotations

import math

import torch

from toydiff.checks import check_choice, check_number
from toydiff.exact.flow import MixtureLike, posterior_at
from toydiff.processes.interpolants import Interpolant, time_tensor

__all__ = ["KINDS", "shift_time", "shift_of_mu", "shifted", "exact_prediction", "karras_level", "edm_network_output",
           "lcm_scalings", "lcm_network_output"]

#: what :func:`exact_prediction` can return: the interpolant's four prediction types and the score
KINDS = ("eps", "x0", "v", "velocity", "score")


def _check_shift(shift) -> float:
    shift = check_number(shift, "shift", min=0.0)
    if not shift > 0 or math.isinf(shift):
        raise ValueError(f"shift must be a finite number > 0, got {shift!r}")
    return float(shift)


def shift_time(t, shift: float) -> torch.Tensor:
    """SD3's shifted time t' = shift·t / (1 + (shift − 1)·t) (Esser et al. 2024, eq. 23), float64 like ``t``.

    Maps [0, 1] onto itself, t' = t at shift 1; shift > 1 spends more of a uniform grid near the noise end.
    """
    shift = _check_shift(shift)
    t = torch.as_tensor(t, dtype=torch.float64)
    return shift * t / (1 + (shift - 1) * t)


def shift_of_mu(mu: float, time_shift_type: str = "exponential") -> float:
    """The shift of diffusers' dynamic shifting ``time_shift(mu, 1.0, t)``: e^μ (exponential) or μ (linear) — with
    the exponent 1 both are :func:`shift_time` (e^μ / (e^μ + 1/t − 1) = e^μ t / (1 + (e^μ − 1) t))."""
    check_choice(time_shift_type, "time_shift_type", ("exponential", "linear"))
    mu = check_number(mu, "mu")
    return math.exp(mu) if time_shift_type == "exponential" else mu


def shifted(interp: Interpolant, shift: float) -> Interpolant:
    """``interp`` run on the shifted clock: α'(t) = α(s(t)), σ'(t) = σ(s(t)) with s = :func:`shift_time`, so
    α̇' = α̇(s) s'(t) (chain rule, s'(t) = shift / (1 + (shift − 1) t)²) and the exact velocity at t is
    s'(t) · u*(x, s(t)) — the same path, traversed at another speed. Not serialisable (``to_dict`` names the base)."""
    if not isinstance(interp, Interpolant):
        raise TypeError(f"interp must be an Interpolant, got {type(interp).__name__}")
    shift = _check_shift(shift)

    def coefs(t: torch.Tensor):
        s = shift_time(t, shift)
        ds = shift / (1 + (shift - 1) * t) ** 2
        a, sg, da, dsg = interp.coefs(s)
        return a, sg, da * ds, dsg * ds

    def t_of_log_snr(lam: torch.Tensor) -> torch.Tensor:
        u = interp.t_of_log_snr(lam)  # base time; invert s: t = u / (shift − (shift − 1) u)
        return u / (shift - (shift - 1) * u)

    return Interpolant(f"{interp.name}-shift{shift:g}", coefs, t_of_log_snr, ("shifted", interp.key, shift))


def exact_prediction(gm: MixtureLike, x_t: torch.Tensor, t, interp: Interpolant, kind: str = "velocity"):
    """The optimal prediction ``kind`` (:data:`KINDS`) at ``(x_t [B, *event], t)`` on ``interp``, float64.

    eps, x0: E[ε | x_t], E[x_0 | x_t]; v = α ε̂ − σ x̂_0; velocity = α̇ x̂_0 + σ̇ ε̂; score = −ε̂/σ (needs σ > 0).
    """
    check_choice(kind, "kind", KINDS)
    xf = gm._flat(x_t, "x_t").detach().cpu()
    tt = time_tensor(t)
    tt = tt.expand(xf.shape[0]) if tt.ndim == 0 else tt
    if tt.shape != (xf.shape[0],):
        raise ValueError(f"t must be a scalar or have shape [B={xf.shape[0]}], got {tuple(tt.shape)}")
    a, s, da, ds = interp.coefs(tt)
    x0, eps = posterior_at(gm, xf, a, s)
    a, s, da, ds = (v[:, None] for v in (a, s, da, ds))
    if kind == "score" and bool((s == 0).any()):
        raise ValueError("kind='score' needs sigma(t) > 0 (the data density has no score at sigma = 0 here)")
    out = {"eps": lambda: eps, "x0": lambda: x0, "v": lambda: a * eps - s * x0,
           "velocity": lambda: da * x0 + ds * eps, "score": lambda: -eps / s}[kind]()
    return out.reshape(x_t.shape)


def karras_level(interp: Interpolant, t: float) -> float:
    """Karras et al. 2022's σ = σ_t/α_t of ``interp`` at time ``t`` (inf where α = 0, the pure-noise end)."""
    a, s, _, _ = interp.coefs(time_tensor(float(t)).reshape(1))
    return float(s) / float(a) if float(a) > 0 else math.inf


def edm_network_output(denoised: torch.Tensor, x: torch.Tensor, sigma, sigma_data: float) -> torch.Tensor:
    """The raw EDM network output F with D(x; σ) = c_skip x + c_out F (Karras et al. 2022, Table 1:
    c_skip = σ_d²/(σ² + σ_d²), c_out = σ σ_d/sqrt(σ² + σ_d²)): F = (D − c_skip x)/c_out. ``sigma`` scalar or [B]."""
    sig = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, *([1] * (x.ndim - 1)))
    c_skip = sigma_data**2 / (sig**2 + sigma_data**2)
    c_out = sig * sigma_data / (sig**2 + sigma_data**2).sqrt()
    return (denoised.to(torch.float64) - c_skip * x.to(torch.float64)) / c_out


def lcm_scalings(t: float, timestep_scaling: float = 10.0, sigma_data: float = 0.5) -> tuple[float, float]:
    """LCM's boundary-condition scalings at discrete timestep ``t`` (Luo et al. 2023, after Song et al. 2023's
    c_skip(0) = 1, c_out(0) = 0): with τ = t·timestep_scaling, c_skip = σ_d²/(τ² + σ_d²), c_out = τ/sqrt(τ² + σ_d²)."""
    tau = float(t) * timestep_scaling
    return sigma_data**2 / (tau**2 + sigma_data**2), tau / math.sqrt(tau**2 + sigma_data**2)


def lcm_network_output(f_star: torch.Tensor, x: torch.Tensor, t: float, timestep_scaling: float = 10.0):
    """The x̂_0-type output F of an exact LCM network at timestep ``t``: c_skip x + c_out F = f*(x)
    (:func:`lcm_scalings`); at c_out = 0 (t = 0) F = f* (any F gives c_skip x = x there)."""
    c_skip, c_out = lcm_scalings(t, timestep_scaling)
    if c_out == 0:
        return f_star.to(torch.float64)
    return (f_star.to(torch.float64) - c_skip * x.to(torch.float64)) / c_out
