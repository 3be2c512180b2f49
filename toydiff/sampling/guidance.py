"""Guidance as denoiser combinators: functions that take ``eps_fn``s and return an ``eps_fn``.

Each result has the signature :func:`toydiff.sample` expects, ``eps_fn(x_t [B, *event], t LongTensor [B])
-> eps [B, *event]``, so guidance works with every sampler and tensor rank without the samplers knowing.

CFG is written two ways in the literature, and the same ``w`` means different things (``CFG_CONVENTIONS``):

* ``"scale"``: ε_u + w (ε_c − ε_u) — w = 0 unconditional, w = 1 conditional (Imagen, diffusers, EDM2's
  autoguidance); the target at t → 0 is p(x | y)^w p(x)^(1−w).
* ``"ho-salimans"``: (1 + w) ε_c − w ε_u (Ho & Salimans 2022, Eq. 6) — w = 0 conditional, w = −1
  unconditional: the ``"scale"`` formula at w + 1.

Every combinator takes an optional limited guidance interval ``t_min <= t < t_max`` (Kynkäänniemi et al.
2024): outside it the conditional (good) denoiser runs alone. :func:`guidance_interval` turns the paper's
σ range into steps. Exact ingredients for labelled mixtures: :mod:`toydiff.exact.guidance`.
"""

from __future__ import annotations

from typing import Callable

import torch

from toydiff.checks import check_choice, check_int, check_number
from toydiff.processes.forward import expand_to
from toydiff.sampling.loop import EpsFn
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["CFG_CONVENTIONS", "guidance_combine", "classifier_free_guidance", "classifier_guidance", "autoguidance",
           "conditional_eps_fn", "guidance_interval"]

#: the two CFG formulas, by name: how each maps its w to the "scale" w (ε_u + w (ε_c − ε_u))
CFG_CONVENTIONS = {"scale": lambda w: w, "ho-salimans": lambda w: w + 1}


def _check_callable(fn, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be callable as {name}(x_t, t), got {type(fn).__name__}")


def _check_interval(t_min: int | None, t_max: int | None) -> tuple[int | None, int | None]:
    t_min = None if t_min is None else check_int(t_min, "t_min", min=0)
    t_max = None if t_max is None else check_int(t_max, "t_max", min=1)
    if t_min is not None and t_max is not None and t_min >= t_max:
        raise ValueError(f"t_min must be below t_max, got t_min={t_min}, t_max={t_max}")
    return t_min, t_max


def _inside(t: torch.Tensor, t_min: int | None, t_max: int | None) -> torch.Tensor:
    """``[B]`` bool: which steps lie in the guidance interval ``t_min <= t < t_max``."""
    inside = torch.ones_like(t, dtype=torch.bool)
    if t_min is not None:
        inside &= t >= t_min
    if t_max is not None:
        inside &= t < t_max
    return inside


def guidance_interval(schedule: NoiseSchedule, sigma_lo: float = 0.28, sigma_hi: float = 5.42) -> tuple[int, int]:
    """``(t_min, t_max)``: the steps whose σ_t = √((1 − ᾱ_t) / ᾱ_t) lies in ``(sigma_lo, sigma_hi]``.

    The defaults are Kynkäänniemi et al. 2024's interval for EDM2 on ImageNet-512 (data std 0.5); for data
    normalised to std 1 they are a starting point, not a tuned value. Empty intervals are refused.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    lo, hi = check_number(sigma_lo, "sigma_lo", min=0.0), check_number(sigma_hi, "sigma_hi", allow_inf=True)
    ab = schedule.alpha_bars
    sig = ((1 - ab) / ab).sqrt()  # increasing in t
    inside = ((sig > lo) & (sig <= hi)).nonzero().flatten()
    if inside.numel() == 0:
        raise ValueError(f"no step of the schedule has sigma in ({lo}, {hi}] (sigma spans "
                         f"{float(sig[0]):.3g} .. {float(sig[-1]):.3g})")
    return int(inside[0]), int(inside[-1]) + 1


def guidance_combine(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, w: float | torch.Tensor,
                     convention: str = "scale") -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022), ``[B, *event]``: ε_u + w (ε_c − ε_u) under ``"scale"``,
    (1 + w) ε_c − w ε_u under ``"ho-salimans"`` (see ``CFG_CONVENTIONS``).

    Under ``"scale"`` w = 0 is the unconditional denoiser, w = 1 the conditional one, w > 1 extrapolates.
    ``w`` may be a float or a per-sample tensor ``[B]``.
    """
    w = CFG_CONVENTIONS[check_choice(convention, "convention", CFG_CONVENTIONS)](w)
    return eps_uncond + expand_to(w, eps_cond) * (eps_cond - eps_uncond)


def classifier_free_guidance(eps_cond: EpsFn, eps_uncond: EpsFn, w: float, *, convention: str = "scale",
                             t_min: int | None = None, t_max: int | None = None) -> EpsFn:
    """Combine a conditional and an unconditional denoiser by :func:`guidance_combine` (Ho & Salimans 2022).

    With ``t_min`` / ``t_max``: guide only at ``t_min <= t < t_max`` (per sample) and use ε_c alone elsewhere,
    the limited interval of Kynkäänniemi et al. 2024.
    """
    w = check_number(w, "w")
    check_choice(convention, "convention", CFG_CONVENTIONS)
    _check_callable(eps_cond, "eps_cond"), _check_callable(eps_uncond, "eps_uncond")
    t_min, t_max = _check_interval(t_min, t_max)
    w_scale = CFG_CONVENTIONS[convention](w)

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if w_scale == 1:
            return eps_cond(x, t)
        inside = _inside(t, t_min, t_max)                    # [B]
        eps_c = eps_cond(x, t)
        if not bool(inside.any()):
            return eps_c
        guided_eps = guidance_combine(eps_uncond(x, t), eps_c, w_scale)
        return torch.where(inside.reshape(-1, *[1] * (eps_c.ndim - 1)), guided_eps, eps_c)  # ε_c exactly outside

    return guided


def classifier_guidance(eps_fn: EpsFn, grad_log_p_y: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                        scale: float, schedule: NoiseSchedule, *, t_min: int | None = None,
                        t_max: int | None = None) -> EpsFn:
    """Classifier guidance (Dhariwal & Nichol 2021, Algorithm 2's ε form): ε = ε(x_t) − s √(1 − ᾱ_t) ∇ log p(y | x_t).

    ``grad_log_p_y(x_t, t) -> [B, *event]`` is the noisy classifier's gradient (exact for a labelled mixture:
    :func:`toydiff.exact.guidance.classifier_grad_fn`). With the unconditional ε*, s = 1 gives the conditional
    ε* exactly and s targets p(x) p(y | x)^s ∝ p(x | y)^s p(x)^(1−s). Outside ``t_min <= t < t_max`` the scale is 1.
    """
    scale = check_number(scale, "scale")
    _check_callable(eps_fn, "eps_fn"), _check_callable(grad_log_p_y, "grad_log_p_y")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    t_min, t_max = _check_interval(t_min, t_max)
    sigma = (1 - schedule.alpha_bars).sqrt()  # [T] float64

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s_t = torch.where(_inside(t, t_min, t_max), scale, 1.0).to(torch.float64) * sigma.to(t.device)[t]
        return eps_fn(x, t) - expand_to(s_t.to(x.dtype), x) * grad_log_p_y(x, t)

    return guided


def autoguidance(eps_good: EpsFn, eps_bad: EpsFn, w: float, *, t_max: int | None = None,
                 t_min: int | None = None) -> EpsFn:
    """Autoguidance (Karras et al. 2024, "Guiding a Diffusion Model with a Bad Version of Itself"):
    ε = ε_bad + w (ε_good − ε_bad), w ≥ 1.

    The guidance formula of classifier-free guidance, with the unconditional denoiser replaced by a weaker
    model of the same kind (e.g. an early snapshot of the same training run). It needs no labels, so it
    sharpens unconditional models too; w = 1 is the good model alone. Two evaluations per guided step.

    ``t_min`` / ``t_max``: guide only at steps ``t_min <= t < t_max`` and use the good model alone elsewhere, the limited guidance
    interval of Kynkäänniemi et al. 2024 ("Applying Guidance in a Limited Interval ..."): guidance at the
    noisiest steps mostly skews which modes (digits) get drawn, while the middle steps are where it
    sharpens them. Per sample: ``t`` ``[B]`` may mix steps inside and outside the interval.
    """
    w = check_number(w, "w", min=1.0)
    _check_callable(eps_good, "eps_good"), _check_callable(eps_bad, "eps_bad")
    t_min, t_max = _check_interval(t_min, t_max)

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = eps_good(x, t)
        if w == 1:
            return eps
        if t_max is None and t_min is None:
            return guidance_combine(eps_bad(x, t), eps, w)
        inside = _inside(t, t_min, t_max)                    # [B]
        if not bool(inside.any()):
            return eps
        return guidance_combine(eps_bad(x, t), eps, torch.where(inside, w, 1.0).to(eps.dtype))

    return guided


def conditional_eps_fn(model: Callable[..., torch.Tensor], y: torch.Tensor, *, w: float | None = None,
                       null_label: int | None = None) -> EpsFn:
    """Bind labels ``y`` ``[B]`` to a class-conditional ``model(x, t, y)``; with ``w``, apply classifier-free
    guidance against ``null_label`` in one batched call of size 2B (Ho & Salimans 2022)."""
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, t, y), got {type(model).__name__}")
    if w is not None:
        w = check_number(w, "w")
        if null_label is None:
            raise ValueError("null_label is required when w is given")
        null_label = check_int(null_label, "null_label")
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"y must be an integer (Long) tensor of labels [B], got {getattr(y, 'dtype', type(y).__name__)}")
    if w is None:
        return lambda x, t: model(x, t, y)

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if w == 1:
            return model(x, t, y)
        if w == 0:
            return model(x, t, torch.full_like(y, null_label))
        eps = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, null_label)]))
        eps_c, eps_u = eps.chunk(2)                          # [B, *event] each
        return guidance_combine(eps_u, eps_c, w)

    return guided
