"""Guidance as denoiser combinators: functions that take ``eps_fn``s and return an ``eps_fn``.

Each result has the signature :func:`toydiff.sample` expects, ``eps_fn(x_t [B, *event], t LongTensor [B])
-> eps [B, *event]``, so guidance works with every sampler and tensor rank without the samplers knowing.
"""

from __future__ import annotations

from typing import Callable

import torch

from .checks import check_int, check_number
from .forward import expand_to
from .samplers import EpsFn

__all__ = ["guidance_combine", "classifier_free_guidance", "autoguidance", "conditional_eps_fn"]


def _check_callable(fn, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be callable as {name}(x_t, t), got {type(fn).__name__}")


def guidance_combine(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, w: float | torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022): ε = ε_u + w (ε_c − ε_u), ``[B, *event]``.

    w = 0 is the unconditional denoiser, w = 1 the conditional one, w > 1 extrapolates. Some code
    (the Ho & Salimans paper itself) writes (1 + w) ε_c − w ε_u instead: that is this with w → w + 1.
    ``w`` may be a float or a per-sample tensor ``[B]``.
    """
    return eps_uncond + expand_to(w, eps_cond) * (eps_cond - eps_uncond)


def classifier_free_guidance(eps_cond: EpsFn, eps_uncond: EpsFn, w: float) -> EpsFn:
    """Combine a conditional and an unconditional denoiser into ε_u + w (ε_c − ε_u) (Ho & Salimans 2022)."""
    w = check_number(w, "w")
    _check_callable(eps_cond, "eps_cond"), _check_callable(eps_uncond, "eps_uncond")

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
    interval of Kynkäänniemi et al. 2024 ("Applying Guidance in a Limited Interval ..."): guidance at the
    noisiest steps mostly skews which modes (digits) get drawn, while the middle steps are where it
    sharpens them. Per sample: ``t`` ``[B]`` may mix steps inside and outside the interval.
    """
    w = check_number(w, "w", min=1.0)
    _check_callable(eps_good, "eps_good"), _check_callable(eps_bad, "eps_bad")
    if t_max is not None:
        t_max = check_int(t_max, "t_max", min=1)

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = eps_good(x, t)
        if w == 1:
            return eps
        if t_max is None:
            return guidance_combine(eps_bad(x, t), eps, w)
        inside = t < t_max                                   # [B]
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
