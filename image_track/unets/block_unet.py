"""The ``simple`` and ``efficient`` Block UNets of the FashionMNIST DDPM notebook (T=300).

A two-level UNet (Ronneberger et al. 2015) as used for DDPM (Ho et al. 2020). The step ``t`` is
embedded sinusoidally (:func:`toydiff.embeddings.sinusoidal_embedding`, width ``time_dim``) and passed
through ``Linear + ReLU``; each :class:`Block` projects it with its own ``Linear + ReLU`` to its channel
count and adds it after its first convolution::

    Block(in, out):  conv3x3 -> ReLU -> BN -> (+ time) -> conv3x3 -> ReLU -> BN -> resample
    down: conv from ``in``;  resample = Conv2d(4, stride 2, pad 1)            H -> H/2
    up:   conv from ``2 in`` (skip concatenated); resample = ConvTranspose2d(4, 2, 1)   H -> 2H

With ``channels = (c0, c1, c2)``: ``x [B, C, H, W] -> conv -> [B, c0, H, W] -> down -> [B, c1, H/2]
-> down -> [B, c2, H/4] (-> middle conv3x3) -> cat skip -> up -> [B, c1, H/2] -> cat skip -> up ->
[B, c0, H] -> conv1x1 -> [B, C, H, W]``. (As in the notebook, the input projection's output is never
used as a skip.) ``simple``: channels 64-128-256, ``time_dim`` 64 (3 712 257 parameters in the notebook);
``efficient``: 24-48-96, ``time_dim`` 192, a middle conv and a 2x2 input conv (678 961 parameters).
With the 2x2 input conv (padding 1) an H-pixel image becomes H+1 pixels wide, which the first stride-2
conv floors back to H/2.

Class conditioning adds a learned class vector (with a null class) to the time embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from toydiff.embeddings import sinusoidal_embedding

from image_track.unets.common import ClassEmbedding, EpsUNet, UNetConfig

__all__ = ["BlockUNetConfig", "Block", "BlockUNet"]


@dataclass(frozen=True)
class BlockUNetConfig(UNetConfig):
    channels: tuple[int, ...] = (64, 128, 256)
    time_dim: int = 64
    middle_conv: bool = False
    first_kernel: int = 3

    def __post_init__(self):
        super().__post_init__()
        if len(self.channels) < 2 or any(not isinstance(c, int) or c < 1 for c in self.channels):
            raise ValueError(f"channels must be at least two positive ints, got {self.channels!r}")
        if self.first_kernel not in (2, 3):
            raise ValueError(f"first_kernel must be 2 or 3, got {self.first_kernel!r}")
        levels = len(self.channels) - 1
        self.require_multiple(2 ** levels, 2 ** levels)


class Block(nn.Module):
    """One resolution step: ``x [B, in (or 2 in if up), H, W], temb [B, time_dim] -> [B, out, H/2 or 2H]``."""

    def __init__(self, in_ch: int, out_ch: int, time_dim: int, up: bool = False):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, out_ch), nn.ReLU())
        self.conv1 = nn.Conv2d(2 * in_ch if up else in_ch, out_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.resample = (nn.ConvTranspose2d if up else nn.Conv2d)(out_ch, out_ch, 4, 2, 1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.bn1(torch.relu(self.conv1(x)))
        h = h + self.time_mlp(temb)[:, :, None, None]
        h = self.bn2(torch.relu(self.conv2(h)))
        return self.resample(h)


class BlockUNet(EpsUNet):
    """The notebook's ``SimpleUnet``: ``forward(x [B, C, H, W], t [B], y [B] | None) -> eps_hat [B, C, H, W]``."""

    def __init__(self, config: BlockUNetConfig):
        super().__init__(config)
        c = config
        ch = c.channels
        self.time_mlp = nn.Sequential(nn.Linear(c.time_dim, c.time_dim), nn.ReLU())
        self.class_emb = ClassEmbedding(c.num_classes, c.time_dim) if c.num_classes else None
        self.conv_in = nn.Conv2d(c.in_channels, ch[0], c.first_kernel, padding=1)
        self.downs = nn.ModuleList(Block(ch[i], ch[i + 1], c.time_dim) for i in range(len(ch) - 1))
        self.middle = nn.Conv2d(ch[-1], ch[-1], 3, padding=1) if c.middle_conv else nn.Identity()
        rev = ch[::-1]
        self.ups = nn.ModuleList(Block(rev[i], rev[i + 1], c.time_dim, up=True) for i in range(len(ch) - 1))
        self.conv_out = nn.Conv2d(ch[0], c.in_channels, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t, y = self._check(x, t, y)
        temb = self.time_mlp(sinusoidal_embedding(t, self._config.time_dim))  # [B, time_dim]
        if self.class_emb is not None:
            temb = temb + self.class_emb(y)
        h = self.conv_in(x)                                                   # [B, c0, H(+1), W(+1)]
        skips = []
        for block in self.downs:
            h = block(h, temb)
            skips.append(h)                                                   # [B, c_{i+1}, H/2^{i+1}]
        h = self.middle(h)
        for block in self.ups:
            h = block(torch.cat([h, skips.pop()], dim=1), temb)
        return self.conv_out(h)                                               # [B, C, H, W]
