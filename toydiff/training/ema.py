"""Exponential moving average of a network's weights: the weights one samples from.

``ema ← d_k · ema + (1 − d_k) · θ`` after every optimiser step k (Polyak & Juditsky 1992; the EMA that
DDPM, Ho et al. 2020, samples from). With ``warmup=True`` the decay follows the usual warm-up
``d_k = min(d, (1 + k) / (10 + k))`` so the average is not dominated by the random initial weights; with
``warmup=False`` the first update copies the weights (``d_0 = 0``) and then ``d_k = d``, which is what
``torch.optim.swa_utils.get_ema_multi_avg_fn`` does (the toy track's recipe).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from toydiff.checks import check_int, check_number

__all__ = ["EMA"]


class EMA:
    """An averaged copy ``.module`` of ``model`` (eval mode, no gradients); buffers follow the model's.

    Args:
        model: the network being trained (its weights at construction time start the average).
        decay: the decay ``d`` in ``[0, 1)``.
        warmup: use ``d_k = min(d, (1 + k) / (10 + k))`` (else copy at k = 0, then ``d``).
    """

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = True):
        self.decay = check_number(decay, "ema_decay", min=0.0)
        if not self.decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {decay!r}")
        self.warmup = bool(warmup)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay ``d_k`` used by the update after optimiser step ``k`` (0 for the first one)."""
        k = check_int(step, "step", min=0)
        if self.warmup:
            return min(self.decay, (1 + k) / (10 + k))
        return 0.0 if k == 0 else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Average ``model``'s current weights in, with the decay of step ``step``; copy its buffers."""
        d = self.decay_at(step)
        ema_p = list(self.module.parameters())
        cur_p = [p.detach() for p in model.parameters()]
        if d == 0.0:
            torch._foreach_copy_(ema_p, cur_p)
        else:
            torch._foreach_lerp_(ema_p, cur_p, 1.0 - d)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)
