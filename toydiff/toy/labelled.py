"""Labelled toy data sets for guidance: points with a class each, and the labelled exact mixture where one exists.

    ds = get_labelled("8gaussians_4class")
    x, y = ds.sample(10_000, generator)          # [10000, 2] float32, [10000] long in [0, 4)
    ds.mixture.condition(1)                      # the exact p(x | y = 1)

* ``8gaussians_2class``: the 8 Gaussians ring, class k mod 2 (neighbouring modes differ).
* ``8gaussians_4class``: the same ring, class k mod 4 (each class: two opposite modes).
* ``moons``: the two moons, class = moon (0 upper, 1 lower); no closed form, so no oracle.
* ``moons_mixture``: 2 × 12 isotropic Gaussians along the two arcs (a stand-in for moons with an exact oracle;
  its samples are the mixture's, not :func:`~toydiff.toy.datasets.get_dataset`'s moons).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from toydiff.checks import check_int
from toydiff.exact.mixture import GaussianMixture
from toydiff.toy.datasets import ToyDataset, _moons, _ring

__all__ = ["LabelledDataset", "LABELLED", "get_labelled"]


@dataclass(frozen=True)
class LabelledDataset:
    """A named toy distribution whose points carry a class.

    Attributes:
        name, dim, description: as :class:`~toydiff.toy.datasets.ToyDataset`.
        n_classes: C; labels are ``0 .. C-1`` (a conditional network's null label is C).
        mixture: the labelled exact :class:`~toydiff.exact.GaussianMixture`, or ``None``.
    """

    name: str
    dim: int
    n_classes: int
    description: str
    mixture: GaussianMixture | None = None
    _sampler: Callable[[int, torch.Generator | None], tuple[torch.Tensor, torch.Tensor]] | None = field(
        default=None, repr=False)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` points ``[n, dim]`` float32 and their classes ``[n]`` long."""
        n = check_int(n, "n", min=1)
        if self._sampler is not None:
            x, y = self._sampler(n, generator)
        else:
            x, comp = self.mixture.sample(n, generator, return_components=True)
            y = self.mixture.labels[comp]
        return x.to(torch.float32), y

    @property
    def has_oracle(self) -> bool:
        return self.mixture is not None

    def unlabelled(self) -> ToyDataset:
        """The same distribution without labels, for :mod:`toydiff.toy.metrics` and :mod:`toydiff.toy.figures`."""
        return ToyDataset(self.name, self.dim, self.description, self.mixture,
                          None if self._sampler is None else (lambda n, g: self._sampler(n, g)[0]))


def _ring_classes(n_classes: int) -> GaussianMixture:
    ring = _ring()
    return GaussianMixture(ring.weights, ring.means, ring.covs, labels=[k % n_classes for k in range(ring.K)])


def _moons_mixture(per_moon: int = 12, noise: float = 0.08) -> GaussianMixture:
    th = (torch.arange(per_moon, dtype=torch.float64) + 0.5) * math.pi / per_moon
    upper = torch.stack([th.cos(), th.sin()], 1)
    lower = torch.stack([1 - th.cos(), 0.5 - th.sin()], 1)
    means = (torch.cat([upper, lower]) - torch.tensor([0.5, 0.25], dtype=torch.float64)) * 1.5
    # spread along the arc (a uniform over one arc segment has std spacing / sqrt(12)) and across it (the noise)
    std = 1.5 * math.sqrt(noise**2 + (math.pi / per_moon) ** 2 / 12)
    return GaussianMixture.diagonal(torch.ones(2 * per_moon), means, std, labels=[0] * per_moon + [1] * per_moon)


_REGISTRY: dict[str, Callable[[], LabelledDataset]] = {
    "8gaussians_2class": lambda: LabelledDataset("8gaussians_2class", 2, 2, "8 Gaussians, class k mod 2",
                                                 _ring_classes(2)),
    "8gaussians_4class": lambda: LabelledDataset("8gaussians_4class", 2, 4, "8 Gaussians, class k mod 4 "
                                                 "(opposite modes share a class)", _ring_classes(4)),
    "moons": lambda: LabelledDataset("moons", 2, 2, "two moons, class = moon", None,
                                     lambda n, g: _moons(n, g, return_labels=True)),
    "moons_mixture": lambda: LabelledDataset("moons_mixture", 2, 2, "2 x 12 Gaussians along two moons, class = moon",
                                             _moons_mixture()),
}

LABELLED = tuple(_REGISTRY)


def get_labelled(name: str = "8gaussians_4class") -> LabelledDataset:
    """The labelled data set called ``name`` (one of :data:`LABELLED`)."""
    if name not in _REGISTRY:
        raise ValueError(f"dataset must be one of {LABELLED}, got {name!r}")
    return _REGISTRY[name]()
