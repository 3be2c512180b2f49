"""Every sampler behind one entry point, for tensors of any rank, plus denoiser combinators.

``sample(eps_fn, x_T, schedule, method=...)`` runs the reverse process. The denoiser is any callable
``eps_fn(x_t [B, *event], t LongTensor [B]) -> eps [B, *event]``: a trained network, the exact oracle
(:meth:`toydiff.GaussianMixture.eps_fn`) or a combinator of those (guidance). Every method visits the
same :class:`~toydiff.schedules.StepPlan` of descending ``(t, t_prev)`` pairs; scalar coefficients are
Python floats, so the same code serves ``[B, 1]`` points and ``[B, 1, 28, 28]`` images.

Methods (``METHODS``):

- ``"ddpm"``: ancestral sampling, Ho et al. 2020 Algorithm 2: x_{t'} = μ̃(x_t, x̂_0) + σ z, with
  ``variance="beta"`` (σ² = β_t, or the strided step's 1 − ᾱ_t/ᾱ_{t'}) or ``"posterior"`` (σ² = β̃_t).
- ``"ddpm-no-noise"``: the same update with σ·z removed. Every step jumps to the posterior *mean*, so
  nothing re-injects the spread the data has: samples collapse towards a few points near E[x_0 | x_T]
  (blurry averages of digits, a shrunken mixture in 1-D) — the classroom demonstration of why the
  σ·z term matters.
- ``"ddim"``: Song et al. 2021, eq. 12, with ``eta`` in [0, 1]; η = 0 is deterministic and η = 1
  with full steps equals ``ddpm`` with ``variance="posterior"``.
- ``"euler"``, ``"heun"``: the probability-flow ODE in Karras et al. 2022's variables, on the discrete
  VP schedule: with σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) and x̃ = x / sqrt(ᾱ_t), dx̃/dσ = ε(x, t). Euler is
  Algorithm 1 of Karras et al. without the second-order correction (and equals DDIM with η = 0 in
  exact arithmetic); Heun is Algorithm 1 with the correction (2 evaluations per step, one on the last).
- ``"dpm++2m"``: DPM-Solver++(2M), Lu et al. 2022 Algorithm 2: a second-order multistep solver in
  λ = log(sqrt(ᾱ)/sqrt(1 − ᾱ)) on the data prediction; first order on the first and last step.

All randomness comes from ``generator`` (one ``torch.Generator`` or a list of one per sample).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from .forward import _eps_to_x0, _x0_to_eps, expand_to, posterior_coefficients, q_sample, randn_like
from .schedules import NoiseSchedule, _warn_terminal

__all__ = [
    "METHODS",
    "EpsFn",
    "sample",
    "sdedit",
    "guidance_combine",
    "classifier_free_guidance",
    "autoguidance",
    "conditional_eps_fn",
    "inpaint_projection",
    "chain_callbacks",
    "function_evaluations",
]

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict], None]
Projection = Callable[[torch.Tensor, int], torch.Tensor]

METHODS = ("ddpm", "ddpm-no-noise", "ddim", "euler", "heun", "dpm++2m")
VARIANCES = ("beta", "posterior")


def function_evaluations(method: str, n_steps: int) -> int:
    """How many calls of ``eps_fn`` a method makes over ``n_steps`` steps ending at the clean sample."""
    _check_method(method)
    return 2 * n_steps - 1 if method == "heun" else n_steps


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _check_x(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape [B, ...] with B >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")


@torch.no_grad()
def sample(
    eps_fn: EpsFn,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    *,
    method: str = "ddpm",
    steps: int | Sequence[int] | None = None,
    spacing: str = "linspace",
    eta: float = 0.0,
    variance: str = "beta",
    generator: torch.Generator | list[torch.Generator] | None = None,
    callback: Callback | None = None,
    clip_x0: float | None = None,
    project: Projection | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Run the reverse process from ``x_T`` to a clean sample.

    Args:
        eps_fn: denoiser ``eps_fn(x_t [B, *event], t LongTensor [B]) -> eps [B, *event]``.
        x_T: the starting point ``[B, *event]``: N(0, I) noise for ordinary sampling, or a noised input
            at ``steps[0]`` when ``steps`` is an explicit sequence (SDEdit).
        schedule: the noise schedule the denoiser was trained with.
        method: one of ``METHODS``.
        steps: ``None`` (every step), a number of respaced steps, or an explicit strictly descending
            sequence of timesteps (see :meth:`NoiseSchedule.respace`).
        spacing: ``"linspace"``, ``"leading"`` or ``"trailing"`` for an int ``steps``.
        eta: DDIM stochasticity in [0, 1] (``ddim`` only).
        variance: ``"beta"`` or ``"posterior"`` (``ddpm`` only).
        generator: source of all randomness: a ``torch.Generator``, or a list of ``B`` of them (per-sample
            seeds: sample i is then the same at any batch size).
        callback: called after every step with a dict holding ``step, n_steps, t, t_prev, x_t, x0_hat,
            eps, x_prev, method`` (tensors are the live ones: clone what you keep).
        clip_x0: if given, clamp x̂_0 to ``[-clip_x0, clip_x0]`` (images in [-1, 1] use 1.0) and recompute ε.
        project: ``project(x [B, *event], t) -> x`` applied to the starting point and after every step
            (``t = -1`` after the last); see :func:`inpaint_projection`.
        progress: show a tqdm progress bar.

    Returns:
        x_0 ``[B, *event]``, same dtype and device as ``x_T``.
    """
    _check_method(method)
    _check_x(x_T, "x_T")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    if clip_x0 is not None and not clip_x0 > 0:
        raise ValueError(f"clip_x0 must be positive or None, got {clip_x0!r}")
    if not callable(eps_fn):
        raise TypeError("eps_fn must be callable as eps_fn(x_t, t)")

    plan = schedule.respace(steps, spacing)
    if steps is None or isinstance(steps, int):
        _warn_terminal(schedule.alpha_bar(plan.timesteps[0]), f"sample(steps={steps}, spacing={spacing!r})")
    pairs = plan.pairs
    B, shape = x_T.shape[0], x_T.shape
    t_buf = torch.empty(B, dtype=torch.long, device=x_T.device)

    def denoise(x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        eps = eps_fn(x, t_buf.fill_(t))
        if not isinstance(eps, torch.Tensor) or eps.shape != shape:
            raise ValueError(f"eps_fn returned {getattr(eps, 'shape', type(eps).__name__)}; expected shape {tuple(shape)}")
        eps = eps.to(x.dtype)
        ab_t = schedule._ab_list[t]
        x0 = _eps_to_x0(x, eps, ab_t)
        if clip_x0 is not None:
            x0 = x0.clamp(-clip_x0, clip_x0)
            eps = _x0_to_eps(x, x0, ab_t)
        return eps, x0

    def noise(x: torch.Tensor) -> torch.Tensor:
        return randn_like(x, generator)

    x = x_T if project is None else project(x_T, pairs[0][0])
    prev_x0, prev_lam = None, None  # dpm++2m history
    it = tqdm(pairs, desc=f"sampling ({method})", leave=False) if progress else pairs
    for i, (t, tp) in enumerate(it):
        ab_t = schedule._ab_list[t]
        ab_p = 1.0 if tp < 0 else schedule._ab_list[tp]
        eps, x0 = denoise(x, t)

        if method in ("ddpm", "ddpm-no-noise"):
            c0, ct, post_var = posterior_coefficients(ab_t, ab_p)
            x_prev = torch.mul(x0, c0).add_(x, alpha=ct)
            if method == "ddpm" and tp >= 0:  # Ho et al.: z = 0 on the final step
                var = post_var if variance == "posterior" else 1.0 - ab_t / ab_p
                x_prev.add_(noise(x), alpha=math.sqrt(var))
        elif method == "ddim":
            sigma = eta * math.sqrt((1.0 - ab_p) / (1.0 - ab_t) * (1.0 - ab_t / ab_p))
            x_prev = torch.mul(x0, math.sqrt(ab_p)).add_(eps, alpha=math.sqrt(max(1.0 - ab_p - sigma**2, 0.0)))
            if sigma > 0:
                x_prev.add_(noise(x), alpha=sigma)
        elif method in ("euler", "heun"):
            s_t, s_p = math.sqrt((1.0 - ab_t) / ab_t), math.sqrt((1.0 - ab_p) / ab_p)
            xs = x / math.sqrt(ab_t)  # Karras' scaled variable x~ = x / s(t), noise level sigma
            xs_prev = xs + (s_p - s_t) * eps
            if method == "heun" and tp >= 0:
                eps_p, _ = denoise(xs_prev * math.sqrt(ab_p), tp)
                xs_prev = xs + (s_p - s_t) * 0.5 * (eps + eps_p)
            x_prev = xs_prev * math.sqrt(ab_p)
        else:  # dpm++2m
            if tp < 0:
                x_prev = x0
            else:
                lam_t = 0.5 * math.log(ab_t / (1.0 - ab_t))
                lam_p = 0.5 * math.log(ab_p / (1.0 - ab_p))
                h = lam_p - lam_t
                d = x0
                if prev_x0 is not None:
                    r = (lam_t - prev_lam) / h
                    d = (1.0 + 0.5 / r) * x0 - (0.5 / r) * prev_x0
                x_prev = math.sqrt((1.0 - ab_p) / (1.0 - ab_t)) * x - math.sqrt(ab_p) * math.expm1(-h) * d
            prev_x0, prev_lam = x0, 0.5 * math.log(ab_t / (1.0 - ab_t))

        if project is not None:
            x_prev = project(x_prev, tp)
        if callback is not None:
            callback({"step": i, "n_steps": len(pairs), "t": t, "t_prev": tp, "x_t": x, "x0_hat": x0,
                      "eps": eps, "x_prev": x_prev, "method": method})
        x = x_prev
    return x


def sdedit(
    eps_fn: EpsFn,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    *,
    start: int | None = None,
    steps: int | Sequence[int] | None = None,
    spacing: str = "linspace",
    noise: torch.Tensor | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
    **sample_kwargs,
) -> torch.Tensor:
    """SDEdit (Meng et al. 2022): noise ``x0`` to an intermediate step with q_sample, then denoise.

    Args:
        x0: the image or points to edit, ``[B, *event]``.
        start: the timestep to noise to (``0 <= start < T``); with an int ``steps`` the plan is respaced
            over ``[start, 0]``. Omit it when ``steps`` is an explicit sequence: its first element is the start.
        steps, spacing, generator, **sample_kwargs: as in :func:`sample`.

    Returns:
        The edited sample ``[B, *event]``. Starting at ``T - 1`` is ordinary sampling from (almost) pure noise.
    """
    if start is None:
        if steps is None or isinstance(steps, int):
            raise ValueError("sdedit needs start=, or steps= as an explicit descending sequence of timesteps")
        timesteps = schedule.respace(steps).timesteps
    else:
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < schedule.T:
            raise ValueError(f"start must be an int in [0, {schedule.T - 1}], got {start!r}")
        if steps is None or isinstance(steps, int):
            n = start + 1 if steps is None else steps
            if not 1 <= n <= start + 1:
                raise ValueError(f"steps must satisfy 1 <= steps <= start + 1 = {start + 1}, got {steps}")
            sub = NoiseSchedule(schedule._betas[: start + 1])  # same alpha_bars on [0, start]
            timesteps = sub.respace(n, spacing).timesteps
        else:
            timesteps = schedule.respace(steps).timesteps
            if timesteps[0] != start:
                raise ValueError(f"steps[0] = {timesteps[0]} does not match start = {start}")
    if noise is None:
        noise = randn_like(x0, generator)
    t0 = torch.full((x0.shape[0],), timesteps[0], dtype=torch.long, device=x0.device)
    x_t = q_sample(schedule, x0, t0, noise)
    return sample(eps_fn, x_t, schedule, steps=list(timesteps), generator=generator, **sample_kwargs)


# --- denoiser combinators -----------------------------------------------------------------------

def guidance_combine(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, w: float | torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022): ε = ε_u + w (ε_c − ε_u).

    w = 0 is the unconditional denoiser, w = 1 the conditional one, w > 1 extrapolates. Some code
    (the Ho & Salimans paper itself) writes (1 + w) ε_c − w ε_u instead: that is this with w → w + 1.
    ``w`` may be a float or a per-sample tensor ``[B]``.
    """
    return eps_uncond + expand_to(w, eps_cond) * (eps_cond - eps_uncond)


def classifier_free_guidance(eps_cond: EpsFn, eps_uncond: EpsFn, w: float) -> EpsFn:
    """Combine a conditional and an unconditional denoiser into ε_u + w (ε_c − ε_u) (Ho & Salimans 2022)."""

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return guidance_combine(eps_uncond(x, t), eps_cond(x, t), w)

    return guided


def autoguidance(eps_good: EpsFn, eps_bad: EpsFn, w: float, *, t_max: int | None = None) -> EpsFn:
    """Autoguidance (Karras et al. 2024, "Guiding a Diffusion Model with a Bad Version of Itself"):
    ε = ε_bad + w (ε_good − ε_bad), w ≥ 1.

    The guidance formula of classifier-free guidance, with the unconditional denoiser replaced by a weaker
    model of the same kind (e.g. an early snapshot of the same training run). It needs no labels, so it
    sharpens unconditional models too; w = 1 is the good model alone. Two evaluations per guided step.

    ``t_max``: guide only at steps ``t < t_max`` and use the good model alone above, the limited guidance
    interval of Kynkäänniemi et al. 2024: guidance at the noisiest steps mostly skews which modes
    (digits) get drawn, while the middle steps are where it sharpens them.
    """
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 1:
        raise ValueError(f"w must be a number >= 1 for autoguidance, got {w!r}")
    if t_max is not None and (isinstance(t_max, bool) or not isinstance(t_max, int) or t_max < 1):
        raise ValueError(f"t_max must be None or a positive int, got {t_max!r}")

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = eps_good(x, t)
        if w == 1:
            return eps
        if t_max is None:
            return guidance_combine(eps_bad(x, t), eps, w)
        inside = t < t_max                                   # [B]
        if not bool(inside.any()):
            return eps
        return guidance_combine(eps_bad(x, t), eps, torch.where(inside, float(w), 1.0).to(eps.dtype))

    return guided


def conditional_eps_fn(model: Callable[..., torch.Tensor], y: torch.Tensor, *, w: float | None = None,
                       null_label: int | None = None) -> EpsFn:
    """Bind labels ``y`` ``[B]`` to a class-conditional ``model(x, t, y)``; with ``w``, apply classifier-free
    guidance against ``null_label`` in one batched call of size 2B (Ho & Salimans 2022)."""
    if w is None:
        return lambda x, t: model(x, t, y)
    if null_label is None:
        raise ValueError("null_label is required when w is given")

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if w == 1:
            return model(x, t, y)
        if w == 0:
            return model(x, t, torch.full_like(y, null_label))
        eps = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, null_label)]))
        eps_c, eps_u = eps.chunk(2)
        return guidance_combine(eps_u, eps_c, w)

    return guided


def inpaint_projection(schedule: NoiseSchedule, x_orig: torch.Tensor, mask: torch.Tensor,
                       generator: torch.Generator | list[torch.Generator] | None = None) -> Projection:
    """RePaint-style masked projection (Lugmayr et al. 2022, without resampling jumps).

    Returns ``project(x, t)`` = m · x + (1 − m) · q_sample(x_orig, t): the known region (m = 0) is replaced
    by the original noised to the current step, and by the original itself at ``t = -1``, so the final
    sample equals ``x_orig`` exactly outside the mask. ``mask`` is 1 where content is generated, broadcastable
    to ``x_orig`` ``[B, *event]``.
    """
    if mask.shape != x_orig.shape:
        try:
            torch.broadcast_shapes(mask.shape, x_orig.shape)
        except RuntimeError:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not broadcast to x_orig {tuple(x_orig.shape)}") from None
    m = mask.to(x_orig.dtype)

    def project(x: torch.Tensor, t: int) -> torch.Tensor:
        known = x_orig if t < 0 else q_sample(schedule, x_orig, t, randn_like(x_orig, generator))
        return m * x + (1 - m) * known

    return project


def chain_callbacks(*callbacks: Callback | None) -> Callback:
    """One callback that calls each given (non-None) callback in turn."""
    cbs = [c for c in callbacks if c is not None]

    def chained(info: dict) -> None:
        for c in cbs:
            c(info)

    return chained
