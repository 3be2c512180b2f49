"""Is a sample a copy of a training point? The nearest-neighbour ratio test and the copy rate.

A generated x counts as a copy of its nearest training point y_(1) when it is much closer to it than to the
second nearest, ‖x − y_(1)‖ / ‖x − y_(2)‖ < ``ratio`` with ``ratio = 1/3`` (Yoon et al. 2023, "Diffusion
probabilistic models generalize when they fail to memorize", ICML workshop; Gu et al. 2023, "On memorization
in diffusion models", Sec. 3, whose threshold this is). The ratio is scale free, so it reads the same in data
or in normalised units. Nearest neighbours by :class:`scipy.spatial.cKDTree` over the *distinct* training points:
a duplicated point is one point (an exact copy of it is a copy, ratio 0, not a tie with its twin), and a set of
one distinct point counts exact copies only (there is no second point to compare with).

    stats = copy_stats(samples, train)          # samples [N, *event], train [n >= 2, *event]
    stats.rate                                   # share of copies in [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from toydiff.checks import check_number, check_tensor

__all__ = ["CopyStats", "copy_stats", "copy_rate", "COPY_RATIO"]

#: the nearest / second-nearest distance ratio below which a sample is a copy (Yoon et al. 2023; Gu et al. 2023)
COPY_RATIO = 1 / 3


@dataclass(frozen=True)
class CopyStats:
    """Per sample: ``ratio`` ‖x − y_(1)‖/‖x − y_(2)‖ ``[N]``, ``nearest`` index ``[N]``, ``distance`` ‖x − y_(1)‖
    ``[N]``; ``is_copy`` = ratio < ``threshold``; ``rate`` its mean; ``unique`` distinct training points copied."""

    ratio: torch.Tensor
    nearest: torch.Tensor
    distance: torch.Tensor
    threshold: float

    @property
    def is_copy(self) -> torch.Tensor:
        return self.ratio < self.threshold

    @property
    def rate(self) -> float:
        return float(self.is_copy.double().mean())

    @property
    def unique(self) -> int:
        return int(self.nearest[self.is_copy].unique().numel())


def _points(x, name: str, min_n: int) -> np.ndarray:
    check_tensor(x, name, min_ndim=1)
    if x.shape[0] < min_n:
        raise ValueError(f"{name} must hold at least {min_n} points, got {x.shape[0]}")
    return x.detach().reshape(x.shape[0], -1).double().cpu().numpy()


def copy_stats(samples: torch.Tensor, train: torch.Tensor, *, ratio: float = COPY_RATIO) -> CopyStats:
    """The nearest-neighbour ratio of every sample against the training set (see the module docstring)."""
    thr = check_number(ratio, "ratio", min=0.0, max=1.0)
    x, y = _points(samples, "samples", 1), _points(train, "train", 2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"samples have {x.shape[1]} dimensions per point but train has {y.shape[1]}")
    # duplicates of a training point are one point: an exact copy of a duplicated point is a copy (ratio 0),
    # not a tie between the two copies; ``first`` maps a distinct point back to its first index in ``train``
    y, first = np.unique(y, axis=0, return_index=True)
    if y.shape[0] == 1:  # one distinct point: no second one to compare with, so only an exact copy counts
        d1 = np.sqrt(((x - y[0]) ** 2).sum(1))
        r, idx = np.where(d1 == 0, 0.0, 1.0), np.zeros(x.shape[0], dtype=np.int64)
    else:
        from scipy.spatial import cKDTree  # here: scipy.spatial costs 0.2 s of every toydiff import

        dist, nn = cKDTree(y).query(x, k=2)  # [N, 2]; distinct points, so d2 > 0
        d1, r, idx = dist[:, 0], dist[:, 0] / dist[:, 1], nn[:, 0]
    return CopyStats(torch.from_numpy(r), torch.from_numpy(first[idx]), torch.from_numpy(d1), thr)


def copy_rate(samples: torch.Tensor, train: torch.Tensor, *, ratio: float = COPY_RATIO) -> float:
    """The share of ``samples`` that copy a training point: ‖x − y_(1)‖ / ‖x − y_(2)‖ < ``ratio``."""
    return copy_stats(samples, train, ratio=ratio).rate
