"""A small time-conditioned denoiser of categorical sequences: an MLP over one-hot tokens.

    model = DenoiserMLP(DenoiserConfig(L=9, V=2, K=3))      # K = V + 1 states with a mask symbol
    logits = model(x_t [B, L] long, u [B] float in [0, 1])   # [B, L, V]: logits of p(x₀ⁱ = v | x_t)

The input is every position's one-hot over the K states of x_t, flattened (``[B, L·K]``), concatenated with
sinusoidal features of the time u (Vaswani et al. 2017's frequencies on [0, 1]); residual SiLU blocks with layer
norm map it to ``L·V`` logits. At L ≤ 9 a flattened MLP sees every position at once, which a transformer reaches
only through attention: the same expressiveness at a fraction of the CPU time. What the logits mean (MDLM's
carry-over of unmasked tokens, D3PM's x₀ prediction) is the objective's business
(:mod:`toydiff.discrete.objectives`), not the network's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from toydiff.checks import check_int

__all__ = ["DenoiserConfig", "DenoiserMLP"]


@dataclass(frozen=True)
class DenoiserConfig:
    """The network's shape: ``L`` positions, ``V`` data symbols, ``K`` states of x_t (V + 1 with a mask),
    ``width`` hidden units, ``depth`` residual blocks, ``n_freq`` time frequencies."""

    L: int
    V: int
    K: int
    width: int = 256
    depth: int = 3
    n_freq: int = 8

    def __post_init__(self):
        check_int(self.L, "L", min=1)
        check_int(self.V, "V", min=2)
        check_int(self.K, "K", min=self.V)
        check_int(self.width, "width", min=1)
        check_int(self.depth, "depth", min=0)
        check_int(self.n_freq, "n_freq", min=1)

    def to_dict(self) -> dict:
        return asdict(self)


class _Block(nn.Module):
    """h + W₂ SiLU(W₁ LayerNorm(h)): a pre-norm residual block."""

    def __init__(self, width: int):
        super().__init__()
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(width), nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(nn.functional.silu(self.fc1(self.norm(h))))


class DenoiserMLP(nn.Module):
    """``forward(x_t [B, L] long, u [B] float) -> logits [B, L, V]`` (float32); see the module docstring."""

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = c = config
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(c.n_freq, dtype=torch.float32), persistent=False)
        self.inp = nn.Linear(c.L * c.K + 2 * c.n_freq, c.width)
        self.blocks = nn.ModuleList(_Block(c.width) for _ in range(c.depth))
        self.norm, self.out = nn.LayerNorm(c.width), nn.Linear(c.width, c.L * c.V)

    def forward(self, x_t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        c = self.config
        B = x_t.shape[0]
        if x_t.ndim != 2 or x_t.shape[1] != c.L:
            raise ValueError(f"x_t must be [B, {c.L}], got {tuple(x_t.shape)}")
        tokens = nn.functional.one_hot(x_t.long(), c.K).reshape(B, c.L * c.K).float()  # [B, L·K]
        ang = u.reshape(B, 1).float() * self.freqs  # [B, n_freq]
        h = self.inp(torch.cat([tokens, ang.sin(), ang.cos()], dim=1))
        for block in self.blocks:
            h = block(h)
        return self.out(nn.functional.silu(self.norm(h))).reshape(B, c.L, c.V)
