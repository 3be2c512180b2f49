"""Toy distributions in 1-D and 2-D, each drawn from a ``torch.Generator``.

Mixture data sets carry their exact :class:`~toydiff.exact.GaussianMixture` (the oracle); the others
(two moons, swiss roll, rings, checkerboard) have none. :class:`Normalizer` stores the mean/std
normalisation the original 1-D exercise applies and inverts it for figures; ``normalizer.oracle(gm)``
is the exact law of the *normalised* data.

    ds = get_dataset("two_gaussians")            # the seed exercise: weights 1:2, means -4 / +4, std 1
    x = ds.sample(10_000, generator)             # [10000, 1] float32
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from toydiff.exact.mixture import GaussianMixture

__all__ = ["ToyDataset", "Normalizer", "DATASETS", "get_dataset", "list_datasets"]


@dataclass(frozen=True)
class Normalizer:
    """Per-dimension affine normalisation ``(x - mean) / std`` and its inverse; ``mean``, ``std`` are ``[D]``."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, x: torch.Tensor) -> "Normalizer":
        """Fit to data ``[N, D]`` (the sample mean and standard deviation, as the seed exercise does)."""
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"x must have shape [N >= 2, D], got {tuple(x.shape)}")
        return cls(x.double().mean(0), x.double().std(0))

    @classmethod
    def from_mixture(cls, mixture: GaussianMixture) -> "Normalizer":
        """The exact mean and standard deviation of a mixture (what :meth:`fit` estimates from samples)."""
        return cls(mixture.mean(), mixture.covariance().diagonal().sqrt())

    @classmethod
    def identity(cls, dim: int) -> "Normalizer":
        return cls(torch.zeros(dim, dtype=torch.float64), torch.ones(dim, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean.to(x)) / self.std.to(x))

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std.to(x) + self.mean.to(x)

    def oracle(self, mixture: GaussianMixture) -> GaussianMixture:
        """The exact law of the normalised data, given the law of the raw data."""
        return mixture.affine(1.0 / self.std, -self.mean / self.std)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        return cls(torch.tensor(d["mean"], dtype=torch.float64), torch.tensor(d["std"], dtype=torch.float64))


@dataclass(frozen=True)
class ToyDataset:
    """A named toy distribution.

    Attributes:
        name: registry name.
        dim: D, the dimension of a point.
        description: one line for menus and figure titles.
        mixture: the exact GaussianMixture, or ``None`` where no closed form exists.
    """

    name: str
    dim: int
    description: str
    mixture: GaussianMixture | None = None
    _sampler: Callable[[int, torch.Generator | None], torch.Tensor] | None = field(default=None, repr=False)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` points, ``[n, dim]`` float32."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        x = self.mixture.sample(n, generator) if self._sampler is None else self._sampler(n, generator)
        return x.to(torch.float32)

    @property
    def has_oracle(self) -> bool:
        return self.mixture is not None


# --- mixtures --------------------------------------------------------------------------------------

def _two_gaussians() -> GaussianMixture:
    return GaussianMixture.diagonal([1.0, 2.0], [[-4.0], [4.0]], [1.0, 1.0])


def _ring(n_modes: int = 8, radius: float = 2.0, std: float = 0.15) -> GaussianMixture:
    angles = torch.arange(n_modes, dtype=torch.float64) * 2 * math.pi / n_modes
    means = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    return GaussianMixture.diagonal(torch.ones(n_modes), means, std)


def _grid(side: int = 5, spacing: float = 1.0, std: float = 0.1) -> GaussianMixture:
    c = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    means = torch.cartesian_prod(c, c)
    return GaussianMixture.diagonal(torch.ones(side * side), means, std)


# --- shapes without a closed form --------------------------------------------------------------

def _moons(n: int, g: torch.Generator | None, noise: float = 0.08, *, return_labels: bool = False):
    upper = torch.rand(n, generator=g) < 0.5
    theta = torch.rand(n, generator=g, dtype=torch.float64) * math.pi
    x = torch.where(upper, theta.cos(), 1 - theta.cos())
    y = torch.where(upper, theta.sin(), 0.5 - theta.sin())
    pts = torch.stack([x, y], 1) + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    pts = (pts - torch.tensor([0.5, 0.25], dtype=torch.float64)) * 1.5
    return (pts, (~upper).long()) if return_labels else pts  # label 0: the upper moon, 1: the lower


def _swiss_roll(n: int, g: torch.Generator | None, noise: float = 0.3) -> torch.Tensor:
    u = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64))
    pts = torch.stack([u * u.cos(), u * u.sin()], 1) + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return pts / 5.0


def _rings(n: int, g: torch.Generator | None, radii=(0.8, 1.6, 2.4), noise: float = 0.06) -> torch.Tensor:
    r = torch.tensor(radii, dtype=torch.float64)
    which = torch.multinomial(r / r.sum(), n, replacement=True, generator=g)  # points in proportion to length
    theta = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    pts = r[which, None] * torch.stack([theta.cos(), theta.sin()], 1)
    return pts + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _checkerboard(n: int, g: torch.Generator | None, squares: int = 4, size: float = 1.0) -> torch.Tensor:
    # a uniform point on the black squares of a squares x squares board centred at 0
    black = [(i, j) for i in range(squares) for j in range(squares) if (i + j) % 2 == 0]
    cell = torch.tensor(black, dtype=torch.float64)[torch.randint(len(black), (n,), generator=g)]
    pts = (cell + torch.rand(n, 2, generator=g, dtype=torch.float64)) * size
    return pts - squares * size / 2


_REGISTRY: dict[str, Callable[[], ToyDataset]] = {
    "two_gaussians": lambda: ToyDataset("two_gaussians", 1, "1-D: weights 1:2, means -4 / +4, std 1 (the seed exercise)",
                                        _two_gaussians()),
    "three_gaussians": lambda: ToyDataset("three_gaussians", 1, "1-D: three modes of different widths",
                                          GaussianMixture.diagonal([0.2, 0.5, 0.3], [[-5.0], [0.0], [4.0]], [0.8, 1.2, 0.5])),
    "narrow_wide": lambda: ToyDataset("narrow_wide", 1, "1-D: a narrow mode (std 0.3) beside a wide one (std 2)",
                                      GaussianMixture.diagonal([0.5, 0.5], [[-2.0], [3.0]], [0.3, 2.0])),
    "8gaussians": lambda: ToyDataset("8gaussians", 2, "2-D: 8 Gaussians on a ring of radius 2", _ring()),
    "25gaussians": lambda: ToyDataset("25gaussians", 2, "2-D: 25 Gaussians on a 5 x 5 grid", _grid()),
    "moons": lambda: ToyDataset("moons", 2, "2-D: two interleaved moons", None, _moons),
    "swissroll": lambda: ToyDataset("swissroll", 2, "2-D: a swiss roll", None, _swiss_roll),
    "rings": lambda: ToyDataset("rings", 2, "2-D: three concentric rings", None, _rings),
    "checkerboard": lambda: ToyDataset("checkerboard", 2, "2-D: a 4 x 4 checkerboard", None, _checkerboard),
}

DATASETS = tuple(_REGISTRY)


def list_datasets(dim: int | None = None) -> list[str]:
    """Registered names, optionally only those of dimension ``dim``."""
    return [n for n in DATASETS if dim is None or _REGISTRY[n]().dim == dim]


def get_dataset(name: str = "two_gaussians") -> ToyDataset:
    """The data set called ``name`` (one of :data:`DATASETS`)."""
    if name not in _REGISTRY:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    return _REGISTRY[name]()
