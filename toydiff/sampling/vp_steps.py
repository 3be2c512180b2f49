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

import bisect
import math

import torch

from toydiff.processes.forward import posterior_coefficients
from toydiff.sampling.context import StepContext, dpmpp_2m_update

__all__ = ["ddpm_step", "ddpm_no_noise_step", "ddim_step", "euler_step", "heun_step", "dpmpp_2m_step",
           "dpmpp_3m_step", "unipc_step", "euler_ancestral_step", "dpmpp_2m_sde_step", "edm_step"]

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


# --- the solvers of issue 25: third-order multistep, UniPC, ancestral / SDE variants, EDM churn ----------------

def _vp_coefs(ab: float) -> tuple[float, float, float]:
    """(α, σ, λ) of the VP path at ᾱ: α = sqrt(ᾱ), σ = sqrt(1 − ᾱ), λ = log(α/σ) (+inf at ᾱ = 1)."""
    a, s = math.sqrt(ab), math.sqrt(1.0 - ab)
    return a, s, (math.inf if s == 0 else math.log(a / s))


def dpmpp_3m_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """DPM-Solver++(3M), Lu et al. 2022 ("DPM-Solver++: Fast Solver for Guided Sampling ...") §4 / Appendix:
    the third-order multistep solver on the data prediction (the deterministic, η = 0 case of the 3M SDE).

    With h = λ_{t'} − λ_t, φ₂ = (e^{−h} − 1)/h + 1, φ₃ = φ₂/h − 1/2 and the last three x̂_0 (m₀ newest) at
    step ratios r₀ = h₁/h, r₁ = h₂/h (h₁, h₂ the two previous steps in λ):
    x_{t'} = (σ_{t'}/σ_t) x_t − α_{t'} (e^{−h} − 1) m₀ + α_{t'} φ₂ D₁ − α_{t'} φ₃ D₂, where
    D₁' = (m₀ − m₁)/r₀, D₁'' = (m₁ − m₂)/r₁, D₁ = D₁' + r₀ (D₁' − D₁'')/(r₀ + r₁), D₂ = (D₁' − D₁'')/(r₀ + r₁).
    Warm-up: first order on the first step (D₁ = D₂ = 0), second order (D₁ = D₁', D₂ = 0) on the second;
    the last step returns x̂_0. ``x`` ``[B, *event]``; history (x̂_0, λ) in ``ctx.memory``.
    """
    eps, x0 = ctx.denoise(x, t)
    _, s_t, lam_t = _vp_coefs(ctx.alpha_bar(t))
    hist = ctx.memory.get("dpm++3m", [])
    if t_prev < 0:
        x_prev = x0
    else:
        a_p, s_p, lam_p = _vp_coefs(ctx.alpha_bar(t_prev))
        h = lam_p - lam_t
        phi_2 = math.expm1(-h) / h + 1.0
        x_prev = torch.mul(x, s_p / s_t).add_(x0, alpha=-a_p * math.expm1(-h))
        if len(hist) >= 1:
            (m1, lam_1) = hist[-1]
            r0 = (lam_t - lam_1) / h
            d1_0 = (x0 - m1) / r0
            if len(hist) >= 2:
                (m2, lam_2) = hist[-2]
                r1 = (lam_1 - lam_2) / h
                d1_1 = (m1 - m2) / r1
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x_prev.add_(d1_0 + r0 * d2, alpha=a_p * phi_2).add_(d2, alpha=-a_p * (phi_2 / h - 0.5))
            else:
                x_prev.add_(d1_0, alpha=a_p * phi_2)
    ctx.memory["dpm++3m"] = (hist + [(x0, lam_t)])[-2:]
    return x_prev, eps, x0


def _unic_weights(h: float, r1: float | None) -> tuple[float, ...]:
    """UniC's weights for the B(h) = e^{−h} − 1 variant ("bh2") on the data prediction: ``(1/2,)`` at order 1 (the
    simplified rule), else the solution (ρ₀, ρ₁) of [[1, 1], [r₁, 1]] ρ = (b₁, b₂), with hh = −h,
    b₁ = (φ − 1)/B, b₂ = 2 ((φ − 1)/hh − 1/2)/B, φ = (e^{hh} − 1)/hh (Zhao et al. 2023, eq. 8 and Appendix)."""
    if r1 is None:
        return (0.5,)
    hh = -h
    big_b = math.expm1(hh)
    phi = big_b / hh - 1.0
    b1, b2 = phi / big_b, 2.0 * (phi / hh - 0.5) / big_b
    rho0 = (b1 - b2) / (1.0 - r1)
    return rho0, b1 - rho0


def _unipc_correct(ctx: StepContext, x0: torch.Tensor, t: int, mem: dict) -> torch.Tensor:
    """UniC: the corrected state at ``t`` from the previous step's input ``mem["x"]`` and its x̂_0 history, using the
    new x̂_0 ``x0`` at the predicted state (Zhao et al. 2023, Algorithm 2 corrector; no extra evaluation)."""
    (m0, s0), prev = mem["m"][-1], (mem["m"][-2] if mem["order"] == 2 else None)
    a_t, s_t, lam_t = _vp_coefs(ctx.alpha_bar(t))
    _, sig_0, lam_0 = _vp_coefs(ctx.alpha_bar(s0))
    h = lam_t - lam_0
    big_b = math.expm1(-h)
    r1 = None if prev is None else (_vp_coefs(ctx.alpha_bar(prev[1]))[2] - lam_0) / h
    rhos = _unic_weights(h, r1)
    corr = (x0 - m0) * rhos[-1]
    if prev is not None:
        corr = corr + (prev[0] - m0) * (rhos[0] / r1)
    return torch.mul(mem["x"], s_t / sig_0).add_(m0, alpha=-a_t * big_b).add_(corr, alpha=-a_t * big_b)


def unipc_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """UniPC, Zhao et al. 2023 ("UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion
    Models"), the B(h) = e^{−h} − 1 ("bh2") variant on the data prediction, predictor order 2 (UniPC-2).

    Each step first corrects the state it was handed (UniC, :func:`_unipc_correct`: the new x̂_0 at the predicted
    point enters the previous step's update, order raised by one, no extra evaluation), then predicts with UniP-2,
    which for bh2 is the DPM-Solver++(2M) update
    x_{t'} = (σ_{t'}/σ_t) x_t − α_{t'} (e^{−h} − 1)(m₀ − (m₁ − m₀)/(2 r₁)), r₁ = (λ_{prev} − λ_t)/h.
    Warm-up: first-order predictor and the order-1 corrector (weight 1/2) on the first step; the last step
    returns x̂_0 (the correction of the last state has no effect there and is skipped). Order 3 (UniPC-2 with
    UniC). ``x`` ``[B, *event]``; the history (x̂_0, t), the last predictor input and order in ``ctx.memory``.
    """
    eps, x0 = ctx.denoise(x, t)
    mem = ctx.memory.get("unipc")
    if t_prev < 0:
        return x0, eps, x0
    if mem is not None:
        x = _unipc_correct(ctx, x0, t, mem)
    _, s_t, lam_t = _vp_coefs(ctx.alpha_bar(t))
    a_p, s_p, lam_p = _vp_coefs(ctx.alpha_bar(t_prev))
    h = lam_p - lam_t
    x_prev = torch.mul(x, s_p / s_t).add_(x0, alpha=-a_p * math.expm1(-h))
    history = [] if mem is None else mem["m"]
    if history:
        m1, s1 = history[-1]
        r1 = (_vp_coefs(ctx.alpha_bar(s1))[2] - lam_t) / h
        x_prev.add_(m1 - x0, alpha=-a_p * math.expm1(-h) * 0.5 / r1)
    ctx.memory["unipc"] = {"x": x, "m": (history + [(x0, t)])[-2:], "order": 2 if history else 1}
    return x_prev, eps, x0


def euler_ancestral_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """Euler ancestral sampling in Karras et al. 2022's scaled variable x̃ = x/sqrt(ᾱ), σ = sqrt((1 − ᾱ)/ᾱ)
    (the ``sample_euler_ancestral`` of Crowson's k-diffusion; Song et al. 2021's reverse SDE split into a
    deterministic and a noise part).

    From σ to σ' < σ: σ_up = min(σ', sqrt(σ'² (σ² − σ'²)/σ²)), σ_down = sqrt(σ'² − σ_up²); an Euler step of the
    ODE to σ_down, x̃' = x̃ + (σ_down − σ) ε̂, then fresh noise x̃' += σ_up z from the run's generator. The last
    step (σ' = 0) is x̂_0. Stochastic; ``x`` ``[B, *event]``.
    """
    eps, x0 = ctx.denoise(x, t)
    ab_t, ab_p = ctx.alpha_bar(t), ctx.alpha_bar(t_prev)
    s_t, s_p = _karras_sigma(ab_t), _karras_sigma(ab_p)
    s_up = min(s_p, math.sqrt(max(s_p**2 * (s_t**2 - s_p**2) / s_t**2, 0.0)))
    s_down = math.sqrt(max(s_p**2 - s_up**2, 0.0))
    xs = torch.div(x, math.sqrt(ab_t)).add_(eps, alpha=s_down - s_t)
    if t_prev >= 0:
        xs.add_(ctx.noise(x), alpha=s_up)
    return xs.mul_(math.sqrt(ab_p)), eps, x0


def dpmpp_2m_sde_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """DPM-Solver++(2M) SDE, Lu et al. 2022 ("DPM-Solver++: Fast Solver for Guided Sampling ...") Appendix, the
    second-order multistep solver of the reverse SDE on the data prediction (midpoint form, η = 1).

    With h = λ_{t'} − λ_t and the previous step's x̂_0 at step ratio r = h_prev/h:
    x_{t'} = (σ_{t'}/σ_t) e^{−h} x_t + α_{t'} (1 − e^{−2h}) (x̂_0 + (x̂_0 − x̂_0^{prev})/(2r)) + σ_{t'} sqrt(1 − e^{−2h}) z,
    z from the run's generator; first order (no x̂_0^{prev} term) on the first step, x̂_0 on the last. Stochastic;
    ``x`` ``[B, *event]``.
    """
    eps, x0 = ctx.denoise(x, t)
    _, s_t, lam_t = _vp_coefs(ctx.alpha_bar(t))
    prev = ctx.memory.get("dpm++2m-sde")
    ctx.memory["dpm++2m-sde"] = (x0, lam_t)
    if t_prev < 0:
        return x0, eps, x0
    a_p, s_p, lam_p = _vp_coefs(ctx.alpha_bar(t_prev))
    h = lam_p - lam_t
    gain = -math.expm1(-2.0 * h)  # 1 − e^{−2h}
    x_prev = torch.mul(x, s_p / s_t * math.exp(-h)).add_(x0, alpha=a_p * gain)
    if prev is not None:
        r = (lam_t - prev[1]) / h
        x_prev.add_(x0 - prev[0], alpha=a_p * gain * 0.5 / r)
    return x_prev.add_(ctx.noise(x), alpha=s_p * math.sqrt(gain)), eps, x0


def _churn_level(ctx: StepContext, t: int) -> int:
    """The step t̂ ≥ t whose σ is nearest σ_t (1 + γ), γ = min(s_churn/N, √2 − 1) when s_tmin ≤ σ_t ≤ s_tmax, else
    t itself: Karras et al. 2022 Algorithm 2's raised level, rounded to the schedule's σ grid as their reference
    code rounds it for a discrete-time network (``round_sigma``), so the denoiser is asked about integer steps."""
    s_churn, _, s_tmin, s_tmax = ctx.churn
    sigmas = ctx.memory.get("edm-sigmas")
    if sigmas is None:
        sigmas = ctx.memory["edm-sigmas"] = [_karras_sigma(ab) for ab in ctx._ab]  # ascending in t
    s_t = sigmas[t]
    if s_churn <= 0 or not s_tmin <= s_t <= s_tmax:
        return t
    target = s_t * (1.0 + min(s_churn / max(ctx.n_steps, 1), math.sqrt(2.0) - 1.0))
    hi = min(bisect.bisect_left(sigmas, target), len(sigmas) - 1)
    return hi - 1 if hi > t and target - sigmas[hi - 1] <= sigmas[hi] - target else hi


def edm_step(ctx: StepContext, x: torch.Tensor, t: int, t_prev: int) -> Step:
    """The EDM stochastic sampler, Karras et al. 2022 ("Elucidating the Design Space of Diffusion-Based Generative
    Models") Algorithm 2: churn, then a Heun step, in x̃ = x/sqrt(ᾱ) with σ = sqrt((1 − ᾱ)/ᾱ).

    Options ``s_churn``, ``s_noise``, ``s_tmin``, ``s_tmax``: where s_tmin ≤ σ_t ≤ s_tmax the level is raised to
    σ̂ = σ_t (1 + γ), γ = min(s_churn/N, √2 − 1) (N the run's steps; σ̂ rounded to the schedule's grid,
    :func:`_churn_level`) by fresh noise, x̃ ← x̃ + sqrt(σ̂² − σ_t²) s_noise z; then Heun from σ̂ to σ_{t'}
    (:func:`heun_step`'s update; Euler on the last step to σ = 0). ``s_churn = 0`` (the default) is the
    deterministic Heun sampler. ``x`` ``[B, *event]``; the returned ε, x̂_0 are those at σ̂.
    """
    t_hat = _churn_level(ctx, t)
    if t_hat != t:
        ab_t, ab_hat = ctx.alpha_bar(t), ctx.alpha_bar(t_hat)
        s_t, s_hat = _karras_sigma(ab_t), _karras_sigma(ab_hat)
        xs = torch.div(x, math.sqrt(ab_t)).add_(ctx.noise(x), alpha=math.sqrt(s_hat**2 - s_t**2) * ctx.churn[1])
        x = xs.mul_(math.sqrt(ab_hat))
    return heun_step(ctx, x, t_hat, t_prev)
