"""Time embeddings shared by every network in toydiff and image_track.

The sinusoidal embedding is the Transformer position encoding (Vaswani et al. 2017) used for the
diffusion step by Ho et al. 2020: half the channels are ``sin(t * w_k)`` and half ``cos(t * w_k)``
with frequencies ``w_k = max_period ** (-k / half)`` spaced geometrically from 1 down to
``1 / max_period``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["sinusoidal_embedding"]


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) times.

    Args:
        t: times, shape ``[B]`` (any real dtype; integer steps or normalised times both work).
        dim: embedding width, a positive even number.
        max_period: the longest wavelength.

    Returns:
        ``[B, dim]`` float32 tensor: ``[sin(t w_0) .. sin(t w_{h-1}), cos(t w_0) .. cos(t w_{h-1})]``.
    """
    if not isinstance(dim, int) or dim <= 0 or dim % 2:
        raise ValueError(f"dim must be a positive even integer, got {dim!r}")
    if t.ndim != 1:
        raise ValueError(f"t must have shape [B], got {tuple(t.shape)}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.to(torch.float32)[:, None] * freqs[None, :]  # [B, half]
    return torch.cat([angles.sin(), angles.cos()], dim=1)
