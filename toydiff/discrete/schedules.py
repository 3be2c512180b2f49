"""Masking-rate schedules of the discrete processes: ᾱ(u), the probability that a token is still its clean self
at time u ∈ [0, 1] (u = 1 fully noised), and its derivative. Pure functions of float64 tensors.

- ``"linear"``: ᾱ(u) = 1 − u (MDLM's log-linear schedule, Sahoo et al. 2024; the rate −ᾱ'/(1 − ᾱ) = 1/u).
- ``"cosine"``: ᾱ(u) = cos(πu/2) (MD4's cosine, Shi et al. 2024; the masking schedule of MaskGIT, Chang et al. 2022).

A discrete-time process with T steps evaluates the same curve at u = k / T (Austin et al. 2021's D3PM fixes the
per-step matrices; the cumulative ᾱ_k here is the curve on the grid, so the discrete and continuous processes
share one schedule and differ only in where the sampler may stop).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["SCHEDULES", "alpha_bar", "alpha_bar_rate"]


def _linear(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return 1.0 - u, torch.full_like(u, -1.0)


def _cosine(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.where(u >= 1.0, torch.zeros_like(u), torch.cos(0.5 * math.pi * u))
    return a, -0.5 * math.pi * torch.sin(0.5 * math.pi * u)


#: name -> u [n] float64 -> (ᾱ(u) [n], dᾱ/du [n])
SCHEDULES: dict[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]] = {
    "linear": _linear, "cosine": _cosine}


def alpha_bar(name: str, u: torch.Tensor) -> torch.Tensor:
    """ᾱ(u) of schedule ``name`` at ``u`` (float64, in [0, 1]), same shape."""
    return SCHEDULES[name](u.to(torch.float64))[0].clamp(0.0, 1.0)


def alpha_bar_rate(name: str, u: torch.Tensor) -> torch.Tensor:
    """dᾱ/du of schedule ``name`` at ``u`` (≤ 0), same shape."""
    return SCHEDULES[name](u.to(torch.float64))[1]
