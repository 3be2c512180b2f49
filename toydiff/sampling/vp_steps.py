"""One function per sampling method, all with the signature ``step(ctx, x, t, t_prev) -> (x_prev, eps, x0_hat)``.

Each function takes one reverse step from ``x`` ``[B, *event]`` at diffusion step ``t`` to ``t_prev < t``
(``t_prev = -1``: the clean sample, ᾱ = 1) and returns the new point together with the ε and x̂_0 of its
first denoiser evaluation (what :func:`toydiff.sample`'s callback reports). Everything the methods share —
the denoiser call with ``clip_x0`` and the ε ↔ x̂_0 conversion, ᾱ look-ups, the noise draw from the
run's generator(s), the options ``eta`` / ``variance`` and the history of multistep methods — comes in
``ctx``, a :class:`toydiff.sampling.context.StepContext`. Scalar coefficients are Python floats, so the same code
serves ``[B, 1]`` points and ``[B, 1, 28, 28]`` images.

The registry that names these functions and the options each accepts is ``toydiff.sampling.loop.REGISTRY``;
adding a sampler is a function here and one line there.
"""

from __future__ import annotations

import math

import torch

from toydiff.processes.forward import posterior_coefficients
from toydiff.sampling.context import StepContext, dpmpp_2m_update

__all__ = ["ddpm_step", "ddpm_no_noise_step", "ddim_step", "euler_step", "heun_step", "dpmpp_2m_step"]

Step = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x_prev, eps, x0_hat), each [B, *event]


def _posterior_mean(x: torch.Tensor, x0: torch.Tensor, ab_t: float, ab_p: float) -> tuple[torch.Tensor, float]:
    """μ̃(x_t, x̂_0) of q(x_{t'} | x_t, x_0) (Ho et al. 2020 eq. 7, any t' < t) and that posterior's variance β̃."""
    c0, ct, post_var = posterior_coefficients(ab_t, ab_p)
    return torch.mul(x0, c0).add_(x, alpha=ct), post_var


def ddpm_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """Ancestral sampling, Ho et al. 2020 ("Denoising Diffusion Probabilistic Models") Algorithm 2.

    x_{t'} = μ̃(x_t, x̂_0) + σ z, z ~ N(0, I), with σ² = β_t (``variance="beta"``; for a strided step the
    effective 1 − ᾱ_t/ᾱ_{t'}) or σ² = β̃_t, the posterior variance (``variance="posterior"``); z = 0 on
    the final step, as in the paper.
    """
    eps, x0 = ctx.denoise(x, t)
    ab_t, ab_p = ctx.alpha_bar(t), ctx.alpha_bar(t_prev)
    x_prev, post_var = _posterior_mean(x, x0, ab_t, ab_p)
    if t_prev >= 0:
        var = post_var if ctx.variance == "posterior" else 1.0 - ab_t / ab_p
        x_prev.add_(ctx.noise(x), alpha=math.sqrt(var))
    return x_prev, eps, x0


def ddpm_no_noise_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """Ho et al. 2020 Algorithm 2 with the σ z term removed: x_{t'} = μ̃(x_t, x̂_0).

    Every step jumps to the posterior *mean*, so nothing re-injects the spread the data has: samples
    collapse towards a few points near E[x_0 | x_T] (blurry averages of digits, a shrunken mixture in
    1-D) — the classroom demonstration of why the σ z term matters.
    """
    eps, x0 = ctx.denoise(x, t)
    x_prev, _ = _posterior_mean(x, x0, ctx.alpha_bar(t), ctx.alpha_bar(t_prev))
    return x_prev, eps, x0


def ddim_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """DDIM, Song et al. 2021 ("Denoising Diffusion Implicit Models") eq. 12.

    x_{t'} = sqrt(ᾱ_{t'}) x̂_0 + sqrt(1 − ᾱ_{t'} − σ²) ε̂ + σ z with
    σ = η sqrt((1 − ᾱ_{t'})/(1 − ᾱ_t)) sqrt(1 − ᾱ_t/ᾱ_{t'}): η = 0 is deterministic, η = 1 with full
    steps is ancestral sampling with the posterior variance.
    """
    eps, x0 = ctx.denoise(x, t)
    ab_t, ab_p = ctx.alpha_bar(t), ctx.alpha_bar(t_prev)
    sigma = ctx.eta * math.sqrt((1.0 - ab_p) / (1.0 - ab_t) * (1.0 - ab_t / ab_p))
    x_prev = torch.mul(x0, math.sqrt(ab_p)).add_(eps, alpha=math.sqrt(max(1.0 - ab_p - sigma**2, 0.0)))
    if sigma > 0:
        x_prev.add_(ctx.noise(x), alpha=sigma)
    return x_prev, eps, x0


def _karras_sigma(ab: float) -> float:
    """Karras et al. 2022's noise level of the scaled variable x̃ = x / sqrt(ᾱ): σ = sqrt((1 − ᾱ)/ᾱ)."""
    return math.sqrt((1.0 - ab) / ab)


def euler_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """Euler on the probability-flow ODE, Karras et al. 2022 ("Elucidating the Design Space ...") Algorithm 1
    without the second-order correction.

    In the scaled variable x̃ = x / sqrt(ᾱ_t) with σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) the ODE is dx̃/dσ = ε(x, t), so
    x̃_{t'} = x̃_t + (σ_{t'} − σ_t) ε̂. Equals DDIM with η = 0 in exact arithmetic.
    """
    eps, x0 = ctx.denoise(x, t)
    ab_t, ab_p = ctx.alpha_bar(t), ctx.alpha_bar(t_prev)
    xs = x / math.sqrt(ab_t)
    xs_prev = xs + (_karras_sigma(ab_p) - _karras_sigma(ab_t)) * eps
    return xs_prev * math.sqrt(ab_p), eps, x0


def heun_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """Heun on the probability-flow ODE, Karras et al. 2022 ("Elucidating the Design Space ...") Algorithm 1.

    The Euler step of :func:`euler_step`, then the trapezoidal correction
    x̃_{t'} = x̃_t + (σ_{t'} − σ_t) (ε̂(x_t) + ε̂(x_{t'}))/2: two denoiser evaluations per step, one on
    the last (no correction at σ = 0).
    """
    eps, x0 = ctx.denoise(x, t)
    ab_t, ab_p = ctx.alpha_bar(t), ctx.alpha_bar(t_prev)
    s_t, s_p = _karras_sigma(ab_t), _karras_sigma(ab_p)
    xs = x / math.sqrt(ab_t)
    xs_prev = xs + (s_p - s_t) * eps
    if t_prev >= 0:
        eps_p, _ = ctx.denoise(xs_prev * math.sqrt(ab_p), t_prev)
        xs_prev = xs + (s_p - s_t) * 0.5 * (eps + eps_p)
    return xs_prev * math.sqrt(ab_p), eps, x0


def _log_snr_half(ab: float) -> float:
    """λ = log(sqrt(ᾱ)/sqrt(1 − ᾱ)), DPM-Solver's half log signal-to-noise ratio."""
    return 0.5 * math.log(ab / (1.0 - ab))


def dpmpp_2m_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """DPM-Solver++(2M), Lu et al. 2022 ("DPM-Solver++: Fast Solver for Guided Sampling ...") Algorithm 2.

    A second-order multistep solver in λ = log(sqrt(ᾱ)/sqrt(1 − ᾱ)) on the data prediction: with
    h = λ_{t'} − λ_t, x_{t'} = sqrt((1 − ᾱ_{t'})/(1 − ᾱ_t)) x_t − sqrt(ᾱ_{t'}) (e^{−h} − 1) D, where
    D = (1 + 1/(2r)) x̂_0 − x̂_0^{prev}/(2r), r = h_{prev}/h, uses the previous step's x̂_0 (kept in
    ``ctx.memory``); first order (D = x̂_0) on the first step, and the last step returns x̂_0.
    """
    eps, x0 = ctx.denoise(x, t)
    ab_t = ctx.alpha_bar(t)
    lam_t = _log_snr_half(ab_t)
    if t_prev < 0:
        x_prev = x0
    else:
        ab_p = ctx.alpha_bar(t_prev)
        x_prev = dpmpp_2m_update(x, x0, ctx.memory.get("dpm++2m"), lam_t, _log_snr_half(ab_p),
                                 math.sqrt((1.0 - ab_p) / (1.0 - ab_t)), math.sqrt(ab_p))
    ctx.memory["dpm++2m"] = (x0, lam_t)
    return x_prev, eps, x0
