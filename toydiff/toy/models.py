"""Time-conditioned MLP noise predictors for 1-D / 2-D points.

``MLPDenoiser(config)(x [B, D], t LongTensor [B]) -> eps_hat [B, D]``. The step enters either as a
sinusoidal embedding (:func:`toydiff.embeddings.sinusoidal_embedding`, shared with image_track's UNets)
or, as in the seed exercise, as the raw number t concatenated to x.

``TwoTimeMLP(TwoTimeConfig)(x [B, D], t [B], gap [B]) -> [B, D]``: the same MLP with a second time input, the
gap t − r of an average-velocity network (:class:`toydiff.processes.jump.JumpProcess`; MeanFlow, Geng et al. 2025).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from toydiff.embeddings import sinusoidal_embedding

__all__ = ["MLPConfig", "MLPDenoiser", "ACTIVATIONS", "exercise_config", "build_mlp", "mlp_net", "embed_time",
           "TwoTimeConfig", "TwoTimeMLP", "network_config_for"]

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}
TIME_INPUTS = ("sinusoidal", "raw")


@dataclass(frozen=True)
class MLPConfig:
    """Architecture of :class:`MLPDenoiser`.

    Attributes:
        dim: D, the dimension of a point.
        width: hidden units per layer.
        depth: number of hidden layers.
        activation: one of ``ACTIVATIONS``.
        time_input: ``"sinusoidal"`` (an embedding of ``time_dim`` channels) or ``"raw"`` (t as one float).
        time_dim: width of the sinusoidal embedding.
    """

    dim: int = 1
    width: int = 128
    depth: int = 3
    activation: str = "silu"
    time_input: str = "sinusoidal"
    time_dim: int = 32

    def __post_init__(self):
        for name in ("dim", "width", "depth", "time_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {self.activation!r}")
        if self.time_input not in TIME_INPUTS:
            raise ValueError(f"time_input must be one of {TIME_INPUTS}, got {self.time_input!r}")
        if self.time_input == "sinusoidal" and self.time_dim % 2:
            raise ValueError(f"time_dim must be even, got {self.time_dim}")


def exercise_config(dim: int = 1) -> MLPConfig:
    """The seed exercise's network: concat(x, t) -> 128 -> 128 -> D with tanh, t as a raw float."""
    return MLPConfig(dim=dim, width=128, depth=2, activation="tanh", time_input="raw")


def mlp_net(config: MLPConfig, extra_in: int = 0) -> nn.Sequential:
    """The MLP body: ``[B, D + T + extra_in] -> [B, D]`` with ``config.depth`` hidden layers of ``config.width``
    (T: the width of :func:`embed_time`'s output; ``extra_in``: further input channels, e.g. a class embedding)."""
    layers: list[nn.Module] = []
    d_in = config.dim + (config.time_dim if config.time_input == "sinusoidal" else 1) + extra_in
    for _ in range(config.depth):
        layers += [nn.Linear(d_in, config.width), ACTIVATIONS[config.activation]()]
        d_in = config.width
    layers.append(nn.Linear(d_in, config.dim))
    return nn.Sequential(*layers)


def embed_time(config: MLPConfig, t: torch.Tensor) -> torch.Tensor:
    """The step as the MLP sees it: ``t [B] -> [B, time_dim]`` (sinusoidal) or ``[B, 1]`` float32 (raw)."""
    if config.time_input == "raw":
        return t.to(torch.float32)[:, None]
    return sinusoidal_embedding(t, config.time_dim)


class MLPDenoiser(nn.Module):
    """ε̂(x_t, t): an MLP on ``concat(x_t, embed(t))``; ``[B, D], [B] -> [B, D]``."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        self.net = mlp_net(config)

    def embed_time(self, t: torch.Tensor) -> torch.Tensor:
        return embed_time(self.config, t)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.config.dim:
            raise ValueError(f"x must have shape [B, {self.config.dim}], got {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape [B={x.shape[0]}], got {tuple(t.shape)}")
        h = torch.cat([x.to(torch.float32), self.embed_time(t).to(x.device)], dim=1)
        return self.net(h).to(x.dtype)

    def config_dict(self) -> dict:
        return asdict(self.config)


@dataclass(frozen=True)
class TwoTimeConfig(MLPConfig):
    """:class:`MLPConfig` of a :class:`TwoTimeMLP`; ``times`` (always 2) marks its checkpoint dicts."""

    times: int = 2

    def __post_init__(self):
        super().__post_init__()
        if self.times != 2:
            raise ValueError(f"times must be 2, got {self.times!r}")


class TwoTimeMLP(nn.Module):
    """u(x, t, gap): an MLP on ``concat(x, embed(t), embed(gap))``, ``[B, D], [B], [B] -> [B, D]`` (each time embedded
    as :func:`embed_time`); the average-velocity network of MeanFlow / shortcut models (gap = t − r, the step
    size)."""

    def __init__(self, config: TwoTimeConfig):
        super().__init__()
        self.config = config
        self.net = mlp_net(config, extra_in=config.time_dim if config.time_input == "sinusoidal" else 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.config.dim:
            raise ValueError(f"x must have shape [B, {self.config.dim}], got {tuple(x.shape)}")
        for name, v in (("t", t), ("gap", gap)):
            if v.shape != (x.shape[0],):
                raise ValueError(f"{name} must have shape [B={x.shape[0]}], got {tuple(v.shape)}")
        h = torch.cat([x.to(torch.float32), embed_time(self.config, t).to(x.device),
                       embed_time(self.config, gap).to(x.device)], dim=1)
        return self.net(h).to(x.dtype)

    def config_dict(self) -> dict:
        return asdict(self.config)


def network_config_for(config: MLPConfig, process) -> MLPConfig:
    """The network ``process`` needs with ``config``'s architecture: a :class:`TwoTimeConfig` where the process's
    network takes two times (``process.network_times == 2``), else ``config`` itself."""
    if getattr(process, "network_times", 1) == 2 and not isinstance(config, TwoTimeConfig):
        return TwoTimeConfig(**asdict(config))
    return config


def build_mlp(config: MLPConfig | dict) -> MLPDenoiser | TwoTimeMLP:
    """An :class:`MLPDenoiser` (or a :class:`TwoTimeMLP` for a :class:`TwoTimeConfig`) from a config or its dict
    (as stored in checkpoints: a dict with ``times`` is a two-time network's)."""
    if isinstance(config, dict):
        config = (TwoTimeConfig if "times" in config else MLPConfig)(**config)
    return TwoTimeMLP(config) if isinstance(config, TwoTimeConfig) else MLPDenoiser(config)
