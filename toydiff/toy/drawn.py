"""Data a person draws: a handful of 2-D (or 1-D) points turned into an exact Gaussian mixture.

A Gaussian kernel density estimate (Parzen 1962; ``scipy.stats.gaussian_kde``, Scott's bandwidth by default)
*is* a Gaussian mixture: one component per point, equal weights, every covariance the KDE's kernel
covariance (bandwidth² × the points' covariance). So drawn data gets what the built-in mixtures have — an
exact ε*, a Bayes-optimal loss floor and exact metrics — through :class:`toydiff.GaussianMixture`.

    ds = drawn_dataset(points)          # points [N, D], N > D
    x = ds.sample(10_000, generator)    # draws from the KDE

Scott's bandwidth scales the kernel with the points' own covariance, so a handful of far-apart clicks becomes
one wide blob along their spread. :func:`nearest_neighbour_width` gives an isotropic kernel tied to the spacing
of the points instead (a fraction of their median nearest-neighbour distance, never below ``min_std``), which
keeps separate clicks separate; ``kernel_std=`` passes such a width (any N ≥ 1, collinear points too).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from toydiff.bounds import check_size
from toydiff.exact.mixture import GaussianMixture
from toydiff.toy.datasets import ToyDataset

__all__ = ["kde_mixture", "drawn_dataset", "nearest_neighbour_width"]


#: the largest |coordinate| a drawn point may have: its KDE covariance (~coordinate²) must stay far from float64's
#: overflow (1e308), and no drawing canvas is 1e50 wide
_MAX_COORD = 1e50
#: the largest numeric bandwidth factor: the kernel covariance is factor² × the points' covariance
_MAX_BANDWIDTH = 1e6


def _kde_points(points, at_least_dim: bool = True) -> np.ndarray:
    """``points`` as a float64 array ``[N, D]``, D in (1, 2), N > D (N ≥ 1 with ``at_least_dim=False``) and within the ``components`` bound, finite and
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
    if len(p) <= (p.shape[1] if at_least_dim else 0):
        raise ValueError(f"points: need more than {p.shape[1]} points for a {p.shape[1]}-D KDE, got {len(p)}")
    check_size(len(p), "points (N, one component each)", key="components")
    if not np.isfinite(p).all():
        raise ValueError("points must be finite")
    if np.abs(p).max() > _MAX_COORD:
        raise ValueError(f"points must lie within ±{_MAX_COORD:g} (their KDE covariance would overflow), "
                         f"got a coordinate of {np.abs(p).max():.3g}")
    return p


def nearest_neighbour_width(points, *, fraction: float = 0.25, min_std: float = 0.25) -> float:
    """An isotropic kernel std for a few points ``[N, D]``: ``fraction`` × their median nearest-neighbour
    distance (two Gaussians of std σ stay two bumps while their centres are more than 2σ apart, so 1/4 keeps
    neighbours clearly separate), at least ``min_std`` (e.g. a canvas's grid spacing, so a box of grid points
    reads as one blob); one point, or points all at one place, give ``min_std``."""
    p = _kde_points(points, at_least_dim=False)
    if not fraction > 0 or not min_std > 0:
        raise ValueError(f"fraction and min_std must be positive, got {fraction!r}, {min_std!r}")
    if len(p) < 2:
        return float(min_std)
    d = np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(max(fraction * np.median(d.min(axis=1)), min_std))


def kde_mixture(points, bandwidth: str | float = "scott", *, kernel_std: float | None = None) -> GaussianMixture:
    """The Gaussian KDE of ``points`` ``[N, D]`` as a :class:`GaussianMixture` of N equal-weight components.

    Args:
        points: ``[N, D]`` array or tensor, N > D, not all on one line (the KDE's covariance must be invertible).
        bandwidth: ``"scott"``, ``"silverman"`` or a positive factor, as ``gaussian_kde``'s ``bw_method``.
        kernel_std: if given, every component's covariance is ``kernel_std² I`` instead (``bandwidth`` is
            ignored; any N ≥ 1, points on a line too); see :func:`nearest_neighbour_width`.

    Raises:
        ValueError: too few points, non-finite points, points on a line, or a bad bandwidth.
    """
    if kernel_std is not None:
        p = _kde_points(points, at_least_dim=False)
        if isinstance(kernel_std, bool) or not isinstance(kernel_std, (int, float)) or not kernel_std > 0:
            raise ValueError(f"kernel_std must be a positive number, got {kernel_std!r}")
        n, d = p.shape
        cov = float(kernel_std) ** 2 * torch.eye(d, dtype=torch.float64)
        return GaussianMixture(torch.full((n,), 1.0 / n), torch.from_numpy(p), cov.expand(n, -1, -1))
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


def drawn_dataset(points, *, name: str = "drawn", bandwidth: str | float = "scott",
                  kernel_std: float | None = None) -> ToyDataset:
    """A :class:`ToyDataset` whose exact law is :func:`kde_mixture` of ``points`` (usable by ``train_toy``)."""
    mix = kde_mixture(points, bandwidth, kernel_std=kernel_std)
    how = f"{bandwidth} bandwidth" if kernel_std is None else f"kernel std {kernel_std:.3g}"
    noun = "point" if mix.K == 1 else "points"
    return ToyDataset(name, mix.D, f"{mix.D}-D: your {mix.K} drawn {noun}, smoothed by a Gaussian KDE ({how})", mix)
