"""Data a person draws: a handful of 2-D (or 1-D) points turned into an exact Gaussian mixture.

A Gaussian kernel density estimate (Parzen 1962; ``scipy.stats.gaussian_kde``, Scott's bandwidth by default)
*is* a Gaussian mixture: one component per point, equal weights, every covariance the KDE's kernel
covariance (bandwidth² × the points' covariance). So drawn data gets what the built-in mixtures have — an
exact ε*, a Bayes-optimal loss floor and exact metrics — through :class:`toydiff.GaussianMixture`.

    ds = drawn_dataset(points)          # points [N, D], N > D
    x = ds.sample(10_000, generator)    # draws from the KDE
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from toydiff.bounds import check_size
from toydiff.exact.mixture import GaussianMixture
from toydiff.toy.datasets import ToyDataset

__all__ = ["kde_mixture", "drawn_dataset"]


#: the largest |coordinate| a drawn point may have: its KDE covariance (~coordinate²) must stay far from float64's
#: overflow (1e308), and no drawing canvas is 1e50 wide
_MAX_COORD = 1e50
#: the largest numeric bandwidth factor: the kernel covariance is factor² × the points' covariance
_MAX_BANDWIDTH = 1e6


def _kde_points(points) -> np.ndarray:
    """``points`` as a float64 array ``[N, D]``, D in (1, 2), N > D and within the ``components`` bound, finite and
    within ±``_MAX_COORD``; a ragged or non-numeric input is a TypeError, a bad shape or value a ValueError."""
    if isinstance(points, torch.Tensor):
        p = points.detach().cpu().double().numpy()
    else:
        try:
            p = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise TypeError(f"points must be an [N, D] array of numbers with rows of one length ({e})"[:300]) from None
    if p.ndim != 2 or p.shape[1] not in (1, 2):
        raise ValueError(f"points must have shape [N, 1] or [N, 2], got {p.shape}")
    if len(p) <= p.shape[1]:
        raise ValueError(f"points: need more than {p.shape[1]} points for a {p.shape[1]}-D KDE, got {len(p)}")
    check_size(len(p), "points (N, one component each)", key="components")
    if not np.isfinite(p).all():
        raise ValueError("points must be finite")
    if np.abs(p).max() > _MAX_COORD:
        raise ValueError(f"points must lie within ±{_MAX_COORD:g} (their KDE covariance would overflow), "
                         f"got a coordinate of {np.abs(p).max():.3g}")
    return p


def kde_mixture(points, bandwidth: str | float = "scott") -> GaussianMixture:
    """The Gaussian KDE of ``points`` ``[N, D]`` as a :class:`GaussianMixture` of N equal-weight components.

    Args:
        points: ``[N, D]`` array or tensor, N > D, not all on one line (the KDE's covariance must be invertible).
        bandwidth: ``"scott"``, ``"silverman"`` or a positive factor, as ``gaussian_kde``'s ``bw_method``.

    Raises:
        ValueError: too few points, non-finite points, points on a line, or a bad bandwidth.
    """
    p = _kde_points(points)
    if isinstance(bandwidth, str):
        if bandwidth not in ("scott", "silverman"):
            raise ValueError(f"bandwidth must be 'scott', 'silverman' or a positive number, got {bandwidth!r}")
    elif isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)) or not 0 < bandwidth < _MAX_BANDWIDTH:
        raise ValueError(f"bandwidth must be 'scott', 'silverman' or a positive finite number below "
                         f"{_MAX_BANDWIDTH:g}, got {bandwidth!r}")
    try:
        kde = stats.gaussian_kde(p.T, bw_method=bandwidth)
    except np.linalg.LinAlgError:
        raise ValueError("points: the drawn points lie on a line (their covariance is singular); "
                         "add points off that line") from None
    cov = np.atleast_2d(kde.covariance)
    if np.linalg.eigvalsh(cov).min() <= 1e-12 * max(1.0, np.abs(cov).max()):
        raise ValueError("points: the drawn points lie on a line (their covariance is singular); add points off that line")
    n = len(p)
    return GaussianMixture(torch.full((n,), 1.0 / n), torch.from_numpy(p), torch.from_numpy(cov).expand(n, -1, -1))


def drawn_dataset(points, *, name: str = "drawn", bandwidth: str | float = "scott") -> ToyDataset:
    """A :class:`ToyDataset` whose exact law is :func:`kde_mixture` of ``points`` (usable by ``train_toy``)."""
    mix = kde_mixture(points, bandwidth)
    return ToyDataset(name, mix.D, f"{mix.D}-D: your {mix.K} drawn points, smoothed by a Gaussian KDE "
                                   f"({bandwidth} bandwidth)", mix)
