"""The ``attention`` UNet of the MNIST-32x32 DDPM notebook (T=1000).

A UNet after milesial's Pytorch-UNet with self-attention at the two coarsest levels, as in Ho et al.
(2020). Building blocks: ``DoubleConv`` = (conv3x3 without bias, GroupNorm(1), GELU, conv3x3, GroupNorm(1)),
optionally residual (``GELU(x + f(x))``); ``Down`` = maxpool2 + residual DoubleConv + DoubleConv;
``Up`` = bilinear x2 (align_corners) + pad to the skip's size + concat + residual DoubleConv + DoubleConv;
``SelfAttention`` = pre-LayerNorm 4-head attention + a pre-LayerNorm GELU MLP, both residual, over the
``H * W`` positions. With base width ``c`` (64) and input ``[B, C, S, S]``::

    x1 = inc(x)                                 [B,  c, S,   S  ]
    x2 = down1(x1)  + pe(t, 2c)                 [B, 2c, S/2, S/2]
    x3 = sa1(down2(x2) + pe(t, 4c))             [B, 4c, S/4, S/4]   attention (8x8 for S = 32)
    x4 = sa2(down3(x3) + pe(t, 4c))             [B, 4c, S/8, S/8]   attention (4x4)
    h  = sa3(up1(x4, x3) + pe(t, 2c))           [B, 2c, S/4, S/4]   attention (8x8)
    h  = up2(h, x2) + pe(t, c);  h = up3(h, x1) + pe(t, c)   ->  outc (conv1x1) -> [B, C, S, S]

``pe(t, n)`` is the sinusoidal encoding of the step (:func:`toydiff.embeddings.sinusoidal_embedding`,
width ``n``) broadcast over the feature map. The class-conditional variant adds a learned class vector
(``4c`` wide, first ``n`` entries used, null class included) wherever ``pe`` is added.

Sizes: 32x32 as in the notebook; any ``image_size`` that is a multiple of 4 and at least 16 also works
(28 -> 14 -> 7 -> 3, with the upsampled maps padded to the skip sizes; attention then runs at 7x7 and 3x3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from toydiff.embeddings import sinusoidal_embedding

from image_track.unets.common import ClassEmbedding, EpsUNet, UNetConfig

__all__ = ["AttentionUNetConfig", "AttentionUNet"]


@dataclass(frozen=True)
class AttentionUNetConfig(UNetConfig):
    base_channels: int = 64
    heads: int = 4

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.base_channels, int) or self.base_channels < 1:
            raise ValueError(f"base_channels must be a positive int, got {self.base_channels!r}")
        if not isinstance(self.heads, int) or self.heads < 1 or (2 * self.base_channels) % self.heads:
            raise ValueError(f"heads must be a positive int dividing 2*base_channels = {2 * self.base_channels}, "
                             f"got {self.heads!r}")
        if self.base_channels % 2:
            raise ValueError(f"base_channels must be even (sinusoidal encodings of width base_channels), "
                             f"got {self.base_channels}")
        self.require_multiple(4, 16)


class DoubleConv(nn.Module):
    """``[B, in, H, W] -> [B, out, H, W]``: two bias-free 3x3 convs with GroupNorm(1) and GELU between."""

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None, residual: bool = False):
        super().__init__()
        mid_ch = mid_ch or out_ch
        self.residual = residual
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, mid_ch, 3, padding=1, bias=False), nn.GroupNorm(1, mid_ch), nn.GELU(),
            nn.Conv2d(mid_ch, out_ch, 3, padding=1, bias=False), nn.GroupNorm(1, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x + self.net(x)) if self.residual else self.net(x)


class Down(nn.Sequential):
    """``[B, in, H, W] -> [B, out, H//2, W//2]``."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_ch, in_ch, residual=True), DoubleConv(in_ch, out_ch))


class Up(nn.Module):
    """``x [B, a, h, w], skip [B, b, H, W] -> [B, out, H, W]`` with ``in_ch = a + b``."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = DoubleConv(in_ch, in_ch, residual=True)
        self.conv2 = DoubleConv(in_ch, out_ch, in_ch // 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv2(self.conv1(torch.cat([skip, x], dim=1)))


class SelfAttention(nn.Module):
    """Transformer-style block over positions: ``[B, ch, H, W] -> [B, ch, H, W]``."""

    def __init__(self, ch: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(ch)
        self.attn = nn.MultiheadAttention(ch, heads, batch_first=True)
        self.ff = nn.Sequential(nn.LayerNorm(ch), nn.Linear(ch, ch), nn.GELU(), nn.Linear(ch, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        seq = x.flatten(2).transpose(1, 2)                      # [B, H*W, C]
        q = self.norm(seq)
        seq = seq + self.attn(q, q, q, need_weights=False)[0]
        seq = seq + self.ff(seq)
        return seq.transpose(1, 2).reshape(B, C, H, W)


class AttentionUNet(EpsUNet):
    """``forward(x [B, C, S, S], t [B], y [B] | None) -> eps_hat [B, C, S, S]``; see the module docstring."""

    def __init__(self, config: AttentionUNetConfig):
        super().__init__(config)
        c = config.base_channels
        self.inc = DoubleConv(config.in_channels, c)
        self.down1, self.down2, self.down3 = Down(c, 2 * c), Down(2 * c, 4 * c), Down(4 * c, 4 * c)
        self.up1, self.up2, self.up3 = Up(8 * c, 2 * c), Up(4 * c, c), Up(2 * c, c)
        self.sa1, self.sa2 = SelfAttention(4 * c, config.heads), SelfAttention(4 * c, config.heads)
        self.sa3 = SelfAttention(2 * c, config.heads)
        self.outc = nn.Conv2d(c, config.in_channels, 1)
        self.class_emb = ClassEmbedding(config.num_classes, 4 * c) if config.num_classes else None

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t, y = self._check(x, t, y)
        c = self._config.base_channels
        pe = {n: sinusoidal_embedding(t, n)[:, :, None, None] for n in (c, 2 * c, 4 * c)}  # [B, n, 1, 1]
        if self.class_emb is not None:
            label = self.class_emb(y)                                                       # [B, 4c]
            pe = {n: v + label[:, :n, None, None] for n, v in pe.items()}
        x1 = self.inc(x)
        x2 = self.down1(x1) + pe[2 * c]
        x3 = self.sa1(self.down2(x2) + pe[4 * c])
        x4 = self.sa2(self.down3(x3) + pe[4 * c])
        h = self.sa3(self.up1(x4, x3) + pe[2 * c])
        h = self.up2(h, x2) + pe[c]
        h = self.up3(h, x1) + pe[c]
        return self.outc(h)
