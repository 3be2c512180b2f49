"""The ``fcblock`` UNet of the "MNIST from scratch" notebook (time- and class-conditioned via FCBlocks).

Blocks (BN = BatchNorm2d): Conv = conv3x3 + BN + GELU (size kept); DownConv = conv3x3 stride 2 + BN + GELU
(H -> H/2); UpConv = ConvTranspose 4x4 stride 2 + BN + GELU (H -> 2H); Flatten = AvgPool(H/4) + GELU
(H/4 x H/4 -> 1x1, i.e. 7x7 for 28x28 input); Unflatten = ConvTranspose (H/4)x(H/4) + BN + GELU (1x1 ->
H/4); ConvBlock = Conv + Conv; DownBlock = DownConv + ConvBlock; UpBlock = UpConv + ConvBlock;
FCBlock(F_in, F_out) = Linear + GELU + Linear. With hidden width ``D``::

    e0 = ConvBlock(C -> D)(x)            [B,  D, H,   W  ]
    e1 = DownBlock(D -> D)(e0)           [B,  D, H/2, W/2]
    e2 = DownBlock(D -> 2D)(e1)          [B, 2D, H/4, W/4]
    u  = c1 * Unflatten(Flatten(e2)) + t1                 [B, 2D, H/4, W/4]
    u1 = c2 * UpBlock(4D -> D)(cat(e2, u)) + t2           [B,  D, H/2, W/2]
    u0 = UpBlock(2D -> D)(cat(e1, u1))                    [B,  D, H,   W  ]
    out = conv3x3(ConvBlock(2D -> D)(cat(e0, u0)))        [B,  C, H,   W  ]

with ``t1 = FCBlock(1, 2D)(t / T)``, ``t2 = FCBlock(1, D)(t / T)`` and, when class-conditional,
``c1 = FCBlock(K, 2D)(onehot(y))``, ``c2 = FCBlock(K, D)(onehot(y))`` (else ``c1 = c2 = 1``). The null
class ``y = K`` is the all-zero one-hot vector, as in the notebook's label dropout. (The notebook's
pseudocode adds ``t1`` to ``up1``, a typo: ``t1`` has 2D channels and ``up1`` D, so ``t2`` is meant.) Default ``D = 64``
(the notebook's time- and class-conditioned runs). ``image_size`` must be a multiple of 4 (28 -> 7, 32 -> 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from image_track.unets.common import EpsUNet, UNetConfig

__all__ = ["FCBlockUNetConfig", "FCBlockUNet", "FCBlock"]


@dataclass(frozen=True)
class FCBlockUNetConfig(UNetConfig):
    hidden: int = 64

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.hidden, int) or self.hidden < 1:
            raise ValueError(f"hidden must be a positive int, got {self.hidden!r}")
        self.require_multiple(4, 4)


def _conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.BatchNorm2d(out_ch), nn.GELU())


def _conv_block(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(_conv(in_ch, out_ch), _conv(out_ch, out_ch))


def _down_block(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 2, 1), nn.BatchNorm2d(out_ch), nn.GELU(),
                         _conv_block(out_ch, out_ch))


def _up_block(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1), nn.BatchNorm2d(out_ch), nn.GELU(),
                         _conv_block(out_ch, out_ch))


class FCBlock(nn.Sequential):
    """``[B, F_in] -> [B, F_out]``: Linear, GELU, Linear."""

    def __init__(self, f_in: int, f_out: int):
        super().__init__(nn.Linear(f_in, f_out), nn.GELU(), nn.Linear(f_out, f_out))


class FCBlockUNet(EpsUNet):
    """``forward(x [B, C, H, W], t [B], y [B] | None) -> eps_hat [B, C, H, W]``; see the module docstring."""

    def __init__(self, config: FCBlockUNetConfig):
        super().__init__(config)
        D, C, k = config.hidden, config.in_channels, config.image_size // 4
        self.conv_in = _conv_block(C, D)
        self.down1, self.down2 = _down_block(D, D), _down_block(D, 2 * D)
        self.flatten = nn.Sequential(nn.AvgPool2d(k), nn.GELU())
        self.unflatten = nn.Sequential(nn.ConvTranspose2d(2 * D, 2 * D, k), nn.BatchNorm2d(2 * D), nn.GELU())
        self.up1, self.up0 = _up_block(4 * D, D), _up_block(2 * D, D)
        self.conv_mid = _conv_block(2 * D, D)
        self.conv_out = nn.Conv2d(D, C, 3, 1, 1)
        self.fc1_t, self.fc2_t = FCBlock(1, 2 * D), FCBlock(1, D)
        if config.num_classes:
            self.fc1_c, self.fc2_c = FCBlock(config.num_classes, 2 * D), FCBlock(config.num_classes, D)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t, y = self._check(x, t, y)
        s = (t.float() / self._config.T)[:, None]                         # [B, 1] in [0, 1)
        t1, t2 = self.fc1_t(s)[:, :, None, None], self.fc2_t(s)[:, :, None, None]
        c1 = c2 = 1.0
        if y is not None:
            K = self._config.num_classes
            onehot = F.one_hot(y, K + 1)[:, :K].float()                   # null class -> zeros, [B, K]
            c1, c2 = self.fc1_c(onehot)[:, :, None, None], self.fc2_c(onehot)[:, :, None, None]
        e0 = self.conv_in(x)
        e1 = self.down1(e0)
        e2 = self.down2(e1)
        u = c1 * self.unflatten(self.flatten(e2)) + t1
        u1 = c2 * self.up1(torch.cat([e2, u], dim=1)) + t2
        u0 = self.up0(torch.cat([e1, u1], dim=1))
        return self.conv_out(self.conv_mid(torch.cat([e0, u0], dim=1)))
