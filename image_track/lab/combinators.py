"""Denoiser combinators for optical illusions: each takes ordinary ``eps_fn(x_t, t)`` and returns one.

- :func:`anagram_eps_fn` — visual anagrams (Geng et al. 2024): ε = ½ (ε_a(x_t) + T⁻¹ ε_b(T x_t)) for an
  image transform T (a flip, a 180° rotation), so the sample reads as class a upright and b transformed.
- :func:`blockwise_eps_fn` — a different denoiser for each consecutive block of the batch (e.g. one
  guidance scale per block), so one sampler run serves several settings.
- :func:`hybrid_eps_fn` — factorized diffusion / hybrid images (Geng et al. 2024):
  ε = lowpass(ε_a(x_t)) + highpass(ε_b(x_t)) with highpass = identity − lowpass, so the picture reads as
  a from afar (low frequencies) and b close up (high frequencies).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from toydiff.sampling.loop import EpsFn

__all__ = ["TRANSFORMS", "anagram_eps_fn", "hybrid_eps_fn", "blockwise_eps_fn"]

Transform = Callable[[torch.Tensor], torch.Tensor]

#: name -> (transform, inverse) on images [B, C, H, W]; all three are their own inverse
TRANSFORMS: dict[str, tuple[Transform, Transform]] = {
    "identity": (lambda x: x, lambda x: x),
    "hflip": (lambda x: x.flip(-1), lambda x: x.flip(-1)),
    "rot180": (lambda x: x.flip(-2, -1), lambda x: x.flip(-2, -1)),
}


def anagram_eps_fn(eps_a: EpsFn, eps_b: EpsFn, transform: str | tuple[Transform, Transform]) -> EpsFn:
    """Visual-anagram denoiser: average ε_a(x_t) with inverse(ε_b(transform(x_t))).

    ``transform`` is a name in :data:`TRANSFORMS` or a ``(transform, inverse)`` pair of pixel permutations
    (for anything else the averaged ε is no longer a valid noise estimate).
    """
    if isinstance(transform, str):
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {tuple(TRANSFORMS)}, got {transform!r}")
        transform = TRANSFORMS[transform]
    fwd, inv = transform

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * (eps_a(x, t) + inv(eps_b(fwd(x), t)))

    return eps


def hybrid_eps_fn(eps_low: EpsFn, eps_high: EpsFn, lowpass: Callable[[torch.Tensor], torch.Tensor]) -> EpsFn:
    """Hybrid-image denoiser: lowpass(ε_low(x_t)) + ε_high(x_t) − lowpass(ε_high(x_t)).

    ``lowpass`` maps ``[B, C, H, W]`` to the same shape (e.g. a Gaussian blur); with the same denoiser twice
    this is that denoiser again.
    """

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        e_low, e_high = eps_low(x, t), eps_high(x, t)
        return lowpass(e_low) + (e_high - lowpass(e_high))

    return eps


def blockwise_eps_fn(eps_fns: Sequence[EpsFn], sizes: Sequence[int]) -> EpsFn:
    """Denoise consecutive blocks of the batch with different denoisers: rows ``[0, sizes[0])`` with
    ``eps_fns[0]``, the next ``sizes[1]`` rows with ``eps_fns[1]``, ... (the batch must be ``sum(sizes)``)."""
    sizes = [int(s) for s in sizes]
    if len(eps_fns) != len(sizes) or not sizes or min(sizes) < 1:
        raise ValueError(f"need one positive block size per eps_fn, got {len(eps_fns)} eps_fns and sizes {sizes}")

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != sum(sizes):
            raise ValueError(f"batch of {x.shape[0]} does not match the blocks {sizes}")
        return torch.cat([f(xb, tb) for f, xb, tb in zip(eps_fns, x.split(sizes), t.split(sizes))])

    return eps
