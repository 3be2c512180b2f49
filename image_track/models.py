"""UNet presets for MNIST-sized images, each reproducing one course notebook's architecture.

Every preset is an epsilon-predictor (Ho et al. 2020, "Denoising Diffusion Probabilistic Models") with one
signature, ``model(x [B, C, H, W], t [B] step indices 0..T-1, y [B] | None) -> eps_hat [B, C, H, W]``, and
can be class-conditional (``num_classes=K``: labels ``0..K-1`` plus the null class ``K`` used by
classifier-free guidance; ``y=None`` means the null class).

=============  ============================================================  =======================
preset         architecture                                                  parameters (C=1, 28x28)
=============  ============================================================  =======================
``simple``     Block UNet 64-128-256, BatchNorm + ReLU, sinusoidal time MLP  3 712 257
``efficient``  Block UNet 24-48-96, time_dim 192, middle conv                678 961
``attention``  GroupNorm/GELU double convs, self-attention at S/4 and S/8    12 919 041
``tiny``       skip UNet 16-32-64, scalar t / T through small MLPs           144 945
``fcblock``    Conv/DownConv/UpConv/Flatten/Unflatten + FCBlock modulation   1 996 417 (D = 64)
``experts``    one copy of ``expert`` (a preset's config) per band of steps   N x the expert's
=============  ============================================================  =======================

``build_model(name, ...)`` builds one; ``model.config`` is a JSON-friendly dict and
``build_model(**model.config)`` rebuilds the same architecture (for checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

from torch import nn

from image_track.unets.attention_unet import AttentionUNet, AttentionUNetConfig
from image_track.unets.block_unet import BlockUNet, BlockUNetConfig
from image_track.unets.common import EpsUNet, UNetConfig
from image_track.unets.experts import ExpertsConfig, TimeExperts
from image_track.unets.fcblock_unet import FCBlockUNet, FCBlockUNetConfig
from image_track.unets.tiny_unet import TinyUNet, TinyUNetConfig

__all__ = ["Preset", "PRESETS", "list_presets", "build_model", "count_parameters", "EpsUNet", "UNetConfig"]


@dataclass(frozen=True)
class Preset:
    """A named architecture: its config class, the module it builds and the preset's own defaults."""

    config_cls: type[UNetConfig]
    model_cls: Callable[[Any], EpsUNet]
    defaults: dict
    description: str


PRESETS: dict[str, Preset] = {
    "simple": Preset(BlockUNetConfig, BlockUNet, {},
                     "Block UNet 64-128-256 (FashionMNIST notebook), ~3.7M parameters"),
    "efficient": Preset(BlockUNetConfig, BlockUNet,
                        {"channels": (24, 48, 96), "time_dim": 192, "middle_conv": True, "first_kernel": 2},
                        "Block UNet 24-48-96 with a middle conv, ~0.68M parameters"),
    "attention": Preset(AttentionUNetConfig, AttentionUNet, {},
                        "self-attention UNet (notebook: 32x32 padded MNIST; 28x28 works too), ~12.9M parameters"),
    "tiny": Preset(TinyUNetConfig, TinyUNet, {}, "skip UNet with scalar-t MLPs, ~145k parameters"),
    "fcblock": Preset(FCBlockUNetConfig, FCBlockUNet, {},
                      "Conv/Flatten/Unflatten UNet with FCBlock time and class modulation, ~2.0M parameters (D=64)"),
    "experts": Preset(ExpertsConfig, lambda config: TimeExperts(config, build_model), {},
                      "one copy of another preset per band of steps (a few-step student's grid), N x its parameters"),
}


def list_presets() -> dict[str, str]:
    """Preset name -> one-line description."""
    return {name: p.description for name, p in PRESETS.items()}


def build_model(
    name: str,
    *,
    num_classes: int | None = None,
    T: int = 1000,
    in_channels: int = 1,
    image_size: int = 28,
    **overrides: Any,
) -> EpsUNet:
    """Build preset ``name``; ``overrides`` set the preset's own config fields (e.g. ``hidden=128``).

    Raises:
        ValueError: unknown ``name``, an override the preset does not have, or sizes the architecture
            cannot handle (the message names the argument).
    """
    if name not in PRESETS:
        raise ValueError(f"name must be one of {sorted(PRESETS)}, got {name!r}")
    preset = PRESETS[name]
    allowed = {f.name for f in fields(preset.config_cls)} - {"name", "num_classes", "T", "in_channels", "image_size"}
    unknown = set(overrides) - allowed
    if unknown:
        raise ValueError(f"unknown overrides {sorted(unknown)} for preset {name!r}; it accepts {sorted(allowed)}")
    kwargs = {**preset.defaults, **overrides}
    config = preset.config_cls(name=name, num_classes=num_classes, T=T, in_channels=in_channels,
                               image_size=image_size, **kwargs)
    return preset.model_cls(config)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
