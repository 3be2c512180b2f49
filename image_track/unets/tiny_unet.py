"""The ``tiny`` skip UNet (~145k parameters) of the MNIST NoiseDiffuser notebook.

A two-level UNet (Ronneberger et al. 2015) with ReLU double convolutions and no normalisation. The step
enters as a *scalar*: ``t / T`` (in ``[0, 1)``; the notebook fed raw step numbers, which saturate a
linear layer for T = 1000) goes through a ``Linear(1, n) - ReLU - Linear(n, n)`` MLP per decoder level and
is added to the feature map about to be upsampled. With widths ``(w0, w1, w2) = (16, 32, 64)``::

    x1 = double_conv(x)                    [B, w0, H,   W  ]
    x2 = maxpool + double_conv(x1)         [B, w1, H/2, W/2]
    x3 = maxpool + double_conv(x2)         [B, w2, H/4, W/4]
    y2 = ConvT3x3/2(x3 + mlp2(t))          [B, w1, H/2+1]     -> cat(pad(x2)) -> double_conv -> [B, w1, H/2+1]
    y1 = ConvT3x3/2(y2 + mlp1(t))          [B, w0, H+3]       -> cat(pad(x1)) -> conv5x5, conv4x4 -> [B, w0, H]
    out = conv1x1(y1)                      [B, C, H, W]

The skips are zero-padded to the (larger) upsampled size, and the last 5x5 and 4x4 convolutions (padding 1)
trim ``H + 3`` back to ``H``: this works for any ``image_size`` divisible by 4 (28 and 32 included).
144 945 parameters for one input channel (the notebook's 145 233 was counted with three input channels).
The class-conditional variant adds a learned class vector (null class included) next to each time vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from image_track.unets.common import ClassEmbedding, EpsUNet, UNetConfig

__all__ = ["TinyUNetConfig", "TinyUNet"]


@dataclass(frozen=True)
class TinyUNetConfig(UNetConfig):
    widths: tuple[int, int, int] = (16, 32, 64)

    def __post_init__(self):
        super().__post_init__()
        if len(self.widths) != 3 or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"widths must be three positive ints, got {self.widths!r}")
        self.require_multiple(4, 8)


def _double_conv(in_ch: int, out_ch: int, k1: int = 3, k2: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, k1, padding=1), nn.ReLU(),
                         nn.Conv2d(out_ch, out_ch, k2, padding=1), nn.ReLU())


def _time_mlp(n: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(1, n), nn.ReLU(), nn.Linear(n, n))


def _pad_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Zero-pad ``x [B, C, h, w]`` (centred) to ``ref``'s spatial size."""
    dy, dx = ref.shape[-2] - x.shape[-2], ref.shape[-1] - x.shape[-1]
    return F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])


class TinyUNet(EpsUNet):
    """``forward(x [B, C, H, W], t [B], y [B] | None) -> eps_hat [B, C, H, W]``; see the module docstring."""

    def __init__(self, config: TinyUNetConfig):
        super().__init__(config)
        w0, w1, w2 = config.widths
        self.inc = _double_conv(config.in_channels, w0)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), _double_conv(w0, w1))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), _double_conv(w1, w2))
        self.time2, self.time1 = _time_mlp(w2), _time_mlp(w1)
        self.up2 = nn.ConvTranspose2d(w2, w1, 3, stride=2)
        self.after2 = _double_conv(2 * w1, w1)
        self.up1 = nn.ConvTranspose2d(w1, w0, 3, stride=2)
        self.after1 = _double_conv(2 * w0, w0, k1=5, k2=4)
        self.out = nn.Conv2d(w0, config.in_channels, 1)
        if config.num_classes:
            self.class2 = ClassEmbedding(config.num_classes, w2)
            self.class1 = ClassEmbedding(config.num_classes, w1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t, y = self._check(x, t, y)
        s = (t.float() / self._config.T)[:, None]      # [B, 1]
        v2, v1 = self.time2(s), self.time1(s)          # [B, w2], [B, w1]
        if y is not None:
            v2, v1 = v2 + self.class2(y), v1 + self.class1(y)
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        y2 = self.up2(x3 + v2[:, :, None, None])
        y2 = self.after2(torch.cat([y2, _pad_like(x2, y2)], dim=1))
        y1 = self.up1(y2 + v1[:, :, None, None])
        y1 = self.after1(torch.cat([y1, _pad_like(x1, y1)], dim=1))
        return self.out(y1)
