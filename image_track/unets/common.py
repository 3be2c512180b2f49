"""What every UNet preset shares: its config fields, input checks and the class embedding with a null class.

Every network here is an epsilon-predictor (Ho et al. 2020): ``forward(x [B, C, H, W], t [B], y [B] | None)
-> eps_hat [B, C, H, W]``, where ``t`` holds diffusion step indices ``0 .. T-1`` and ``y`` class labels.
A class-conditional network has ``num_classes + 1`` class slots: the last, index ``num_classes``, is the
*null class* that classifier-free guidance (Ho & Salimans 2022) trains with label dropout and samples
with; ``y=None`` means the null class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

__all__ = ["UNetConfig", "EpsUNet", "ClassEmbedding"]


@dataclass(frozen=True)
class UNetConfig:
    """Fields every preset has; a preset's own config subclasses this and adds its widths."""

    name: str
    num_classes: int | None = None
    T: int = 1000
    in_channels: int = 1
    image_size: int = 28

    def __post_init__(self):
        if self.num_classes is not None and (not isinstance(self.num_classes, int) or self.num_classes < 1):
            raise ValueError(f"num_classes must be None or a positive int, got {self.num_classes!r}")
        if not isinstance(self.T, int) or self.T < 1:
            raise ValueError(f"T must be a positive int, got {self.T!r}")
        if not isinstance(self.in_channels, int) or self.in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {self.in_channels!r}")
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {self.image_size!r}")
        for f in fields(self):  # JSON round trips turn tuples into lists
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))

    def require_multiple(self, multiple: int, minimum: int) -> None:
        """Raise ``ValueError`` naming ``image_size`` unless it is a multiple of ``multiple`` and >= ``minimum``."""
        if self.image_size % multiple or self.image_size < minimum:
            raise ValueError(f"image_size must be a multiple of {multiple} and at least {minimum} for the "
                             f"{self.name!r} preset, got {self.image_size}")


class ClassEmbedding(nn.Module):
    """Learned class vectors ``[num_classes + 1, dim]``; row ``num_classes`` is the null class."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:  # [B] -> [B, dim]
        return self.table(y)


class EpsUNet(nn.Module):
    """Base class: stores the config and turns ``(x, t, y)`` into checked tensors."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self._config = config

    @property
    def config(self) -> dict:
        """The preset's config as a JSON-friendly dict; ``build_model(**model.config)`` rebuilds the model."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self._config).items()}

    @property
    def num_classes(self) -> int | None:
        return self._config.num_classes

    def _check(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Validate inputs; return ``t`` as ``[B]`` and ``y`` as ``[B]`` long (null class for ``None``), or None."""
        c = self._config
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"x must have shape [B, C, H, W], got {tuple(x.shape)}")
        B, C, H, W = x.shape
        if C != c.in_channels:
            raise ValueError(f"x has {C} channels but the model was built with in_channels={c.in_channels}")
        if (H, W) != (c.image_size, c.image_size):
            raise ValueError(f"x is {H}x{W} but the model was built with image_size={c.image_size}")
        if not isinstance(t, torch.Tensor):
            t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(B)
        if t.shape != (B,):
            raise ValueError(f"t must have shape [B] = [{B}], got {tuple(t.shape)}")
        if t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"t must hold real step indices, got dtype {t.dtype}")
        if c.num_classes is None:
            if y is not None:
                raise ValueError("y must be None: the model is unconditional (built with num_classes=None)")
            return t, None
        if y is None:
            return t, torch.full((B,), c.num_classes, dtype=torch.long, device=x.device)
        if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise TypeError(f"y must be an integer tensor of class labels, got {getattr(y, 'dtype', type(y))}")
        if y.shape != (B,):
            raise ValueError(f"y must have shape [B] = [{B}], got {tuple(y.shape)}")
        if B and (int(y.min()) < 0 or int(y.max()) > c.num_classes):
            raise ValueError(f"y must hold labels in 0..{c.num_classes} ({c.num_classes} = null class), "
                             f"got values in {int(y.min())}..{int(y.max())}")
        return t, y.long()
