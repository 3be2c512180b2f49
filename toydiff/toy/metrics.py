"""How far a sample set is from the truth, each number next to its reference (two true sets).

A distance between n samples and the truth is never 0, even for perfect samples: finite n alone gives
a positive value. So :func:`report` gives every metric next to its **reference** — the same metric
between two independent sets of n true samples (key ``"floor"``). For the distances this is a noise
floor; for the NLL it is the true law's own NLL (≈ its entropy), which samples can score below (a sampler
that collapses onto the modes does), so it is no floor: :func:`reference_name` names each one. A sampler
is as good as the truth when its value sits at its reference.

Metrics (on ``scipy.stats`` / ``scipy.spatial``): Wasserstein-1 (1-D, exact), sliced Wasserstein
(2-D, random projections), energy distance, MMD² with a Gaussian kernel (unbiased), KL and JS between
a Gaussian KDE of the samples and the exact density on a grid, NLL under the true density, and mode
coverage / recovered mode weights from the oracle's responsibilities.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy import stats
from scipy.spatial.distance import cdist

from toydiff.toy.datasets import ToyDataset
from toydiff.checks import check_int, check_number
from toydiff.exact.mixture import GaussianMixture

__all__ = [
    "eps_gap",
    "wasserstein1",
    "sliced_wasserstein",
    "energy_distance",
    "mmd2",
    "kde",
    "kde_divergences",
    "nll",
    "mode_stats",
    "report",
    "reference_name",
]

#: how to name a metric's two-true-sets value (``report(...)[metric]["floor"]``) in a table header
REFERENCE_NAMES = {"nll": "reference (true law's NLL)"}


def reference_name(metric: str) -> str:
    """The name of ``metric``'s reference: "noise floor (two true sets)", except where values can fall below it
    by design (the NLL: "reference (true law's NLL)")."""
    return REFERENCE_NAMES.get(metric, "noise floor (two true sets)")

Points = torch.Tensor | np.ndarray


def _np(x: Points, name: str, min_n: int = 1) -> np.ndarray:
    """``x`` as a float64 array ``[N, D]`` (a 1-D array is ``[N, 1]``): at least ``min_n`` points, all finite."""
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool or x.is_complex():
            raise TypeError(f"{name} must hold real numbers, got {x.dtype}")
        a = x.detach().cpu().to(torch.float64).numpy()
    else:
        a = np.asarray(x)
        if a.dtype.kind not in "iuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
        a = a.astype(np.float64)
    if a.ndim == 0 or a.shape[0] < min_n or a.size == 0:
        raise ValueError(f"{name} must be points [N, D] with N >= {min_n}, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(a)).sum())} NaN or infinite value(s) out of {a.size}")
    return a[:, None] if a.ndim == 1 else a.reshape(a.shape[0], -1)


def _same_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same dimensions, got {a.shape[1]} and {b.shape[1]}")


def wasserstein1(a: Points, b: Points) -> float:
    """Wasserstein-1 between two 1-D sample sets (``scipy.stats.wasserstein_distance``)."""
    a, b = _np(a, "a"), _np(b, "b")
    if a.shape[1] != 1 or b.shape[1] != 1:
        raise ValueError("wasserstein1 is for 1-D samples; use sliced_wasserstein in higher dimensions")
    return float(stats.wasserstein_distance(a[:, 0], b[:, 0]))


def sliced_wasserstein(a: Points, b: Points, n_projections: int = 128, seed: int = 0) -> float:
    """Mean W1 over random unit directions (Rabin et al. 2011); equals W1 in 1-D."""
    a, b = _np(a, "a"), _np(b, "b")
    _same_dim(a, b)
    n_projections, seed = check_int(n_projections, "n_projections", min=1), check_int(seed, "seed", min=0)
    if a.shape[1] == 1:
        return wasserstein1(a, b)
    dirs = np.random.default_rng(seed).normal(size=(n_projections, a.shape[1]))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return float(np.mean([stats.wasserstein_distance(a @ d, b @ d) for d in dirs]))


def _subsample(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    return x if x.shape[0] <= n else x[np.random.default_rng(seed).choice(x.shape[0], n, replace=False)]


def energy_distance(a: Points, b: Points, max_points: int = 3000, seed: int = 0) -> float:
    """Energy distance √(2E|X−Y| − E|X−X'| − E|Y−Y'|) (Székely & Rizzo 2013) between ``[N, D]`` sets.

    The square root, as ``scipy.stats.energy_distance`` defines it (and matches in 1-D): a metric, which
    for small differences grows linearly with them (a shift by 2c scores twice a shift by c), as W1 does,
    so ratios of it compare with ratios of W1; the bracket alone would square them. The expectations are
    the plug-in (V-statistic) means over all pairs, via ``scipy.spatial.distance.cdist``; two samples of
    one law therefore score above 0, by about √((E|X−X'| + E|Y−Y'|)/n). Sets larger than ``max_points``
    are subsampled (the cost is quadratic).
    """
    max_points, seed = check_int(max_points, "max_points", min=1), check_int(seed, "seed", min=0)
    a, b = _np(a, "a"), _np(b, "b")
    _same_dim(a, b)
    a, b = _subsample(a, max_points, seed), _subsample(b, max_points, seed + 1)
    return math.sqrt(max(float(2 * cdist(a, b).mean() - cdist(a, a).mean() - cdist(b, b).mean()), 0.0))


def mmd2(a: Points, b: Points, bandwidth: float | None = None, max_points: int = 3000, seed: int = 0) -> float:
    """Unbiased squared MMD with a Gaussian kernel (Gretton et al. 2012).

    ``bandwidth`` defaults to the median pairwise distance of the pooled sets (the median heuristic; their
    mean distance where over half the pairs coincide, 1 where all points do). Each set needs two points.
    """
    max_points, seed = check_int(max_points, "max_points", min=2), check_int(seed, "seed", min=0)
    if bandwidth is not None and not check_number(bandwidth, "bandwidth") > 0:
        raise ValueError(f"bandwidth must be positive or None, got {bandwidth!r}")
    a, b = _np(a, "a", min_n=2), _np(b, "b", min_n=2)
    _same_dim(a, b)
    a, b = _subsample(a, max_points, seed), _subsample(b, max_points, seed + 1)
    if bandwidth is None:
        pool = _subsample(np.concatenate([a, b]), 1000, seed + 2)
        d = cdist(pool, pool)[np.triu_indices(len(pool), 1)]
        bandwidth = float(np.median(d)) or float(d.mean()) or 1.0
    k = lambda x, y: np.exp(-cdist(x, y, "sqeuclidean") / (2 * bandwidth**2))
    kaa, kbb = k(a, a), k(b, b)
    n, m = len(a), len(b)
    return float((kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
                 - 2 * k(a, b).mean())


def kde(samples: Points) -> stats.gaussian_kde:
    """A Gaussian KDE of ``[N, D]`` samples (``scipy.stats.gaussian_kde``, Scott's bandwidth)."""
    x = _np(samples, "samples", min_n=2)
    try:
        return stats.gaussian_kde(x.T)
    except (np.linalg.LinAlgError, ValueError) as e:  # fewer points than dimensions, or all on a line
        raise ValueError(f"samples: a KDE needs points that spread in every dimension ({e})") from None


def _grid(mixture: GaussianMixture, n: int) -> tuple[np.ndarray, float]:
    """A regular grid covering the mixture (means ± 5 std), as points ``[G, D]`` and the cell volume."""
    std = mixture.covs.diagonal(dim1=1, dim2=2).sqrt()
    lo = (mixture.means - 5 * std).min(0).values.numpy()
    hi = (mixture.means + 5 * std).max(0).values.numpy()
    axes = [np.linspace(l, h, n) for l, h in zip(lo, hi)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, mixture.D)
    return mesh, float(np.prod([(h - l) / (n - 1) for l, h in zip(lo, hi)]))


def kde_divergences(samples: Points, mixture: GaussianMixture) -> dict[str, float]:
    """KL(p‖q), KL(q‖p) and JS(p, q) in nats between the exact density p and the samples' KDE q.

    Integrated numerically on a grid (2 000 points in 1-D, 150 × 150 in 2-D).
    """
    _check_mixture(mixture)
    _mixture_dim(_np(samples, "samples"), mixture)
    if mixture.D > 2:
        raise ValueError("kde_divergences integrates on a grid: only 1-D and 2-D")
    grid, cell = _grid(mixture, 2000 if mixture.D == 1 else 150)
    p = mixture.log_prob(torch.from_numpy(grid)).exp().numpy()
    q = kde(samples)(grid.T)
    if not q.sum() > 0:
        raise ValueError("samples: their KDE has no mass on the grid around the mixture (means ± 5 std), so the "
                         "divergences are infinite; the samples lie far from every mode")
    p, q = p / (p.sum() * cell), q / (q.sum() * cell)
    eps = 1e-300
    kl = lambda u, v: float(np.sum(u * (np.log(u + eps) - np.log(v + eps))) * cell)
    m = 0.5 * (p + q)
    return {"kl_true_kde": kl(p, q), "kl_kde_true": kl(q, p), "js": 0.5 * kl(p, m) + 0.5 * kl(q, m)}


def nll(samples: Points, mixture: GaussianMixture) -> float:
    """Mean negative log-likelihood of the samples under the true density (nats per point)."""
    _check_mixture(mixture)
    x = _np(samples, "samples")
    _mixture_dim(x, mixture)
    return float(-mixture.log_prob(torch.from_numpy(x)).mean())


def _check_mixture(mixture) -> None:
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")


def _mixture_dim(x: np.ndarray, mixture: GaussianMixture) -> None:
    if x.shape[1] != mixture.D:
        raise ValueError(f"samples have dimension {x.shape[1]} but the mixture has D = {mixture.D}")


def mode_stats(samples: Points, mixture: GaussianMixture, min_share: float = 0.25) -> dict:
    """Which mixture components the samples land in.

    Each sample is assigned to its most responsible component. ``weights`` are the recovered shares,
    ``coverage`` counts components that got at least ``min_share`` of their true weight, and
    ``max_weight_error`` is the largest |recovered − true| weight. ``off_mode_share`` is the share of samples
    more than 3 standard deviations (Mahalanobis) from every component: the points a learned denoiser leaves
    between the modes (true 2-D samples: e^(−9/2) ≈ 1.1 %; 1-D: 0.27 %, less where modes overlap).
    """
    _check_mixture(mixture)
    min_share = check_number(min_share, "min_share", min=0.0, max=1.0)
    xa = _np(samples, "samples")
    _mixture_dim(xa, mixture)
    x = torch.from_numpy(xa)
    off = float((mixture.mahalanobis_sq(x).min(dim=1).values > 9.0).double().mean())
    counts = torch.bincount(mixture.responsibilities(x).argmax(1), minlength=mixture.K).double()
    share = counts / counts.sum()
    true = mixture.weights
    return {
        "weights": share.tolist(),
        "true_weights": true.tolist(),
        "covered": int((share >= min_share * true).sum()),
        "n_modes": mixture.K,
        "max_weight_error": float((share - true).abs().max()),
        "off_mode_share": off,
    }


def eps_gap(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], mixture: GaussianMixture, alpha_bar: float,
            t: int, *, n: int = 4000, seed: int = 0) -> float:
    """E_{x_t ~ p_t} ‖ε̂(x_t, t) − ε*(x_t)‖² / D: how far a noise predictor is from the exact one at step ``t``
    (ᾱ_t = ``alpha_bar``), averaged where the noised data actually lives (``n`` draws of x_t, seeded)."""
    _check_mixture(mixture)
    check_int(n, "n", min=1)
    x_t = mixture.noised(check_number(alpha_bar, "alpha_bar", min=0.0, max=1.0)).sample(
        n, torch.Generator().manual_seed(check_int(seed, "seed", min=0)))
    with torch.no_grad():
        e_hat = model(x_t.float(), torch.full((n,), check_int(t, "t", min=0)))
    return float(((e_hat.double() - mixture.eps_star(x_t, alpha_bar)) ** 2).mean())


def report(samples: Points, truth: ToyDataset | GaussianMixture, *, seed: int = 0) -> dict[str, dict[str, float]]:
    """Every applicable metric of ``samples [N, D]`` against the truth, each as ``{"value", "floor"}``.

    Two independent true sets ``a``, ``b`` of N points are drawn from ``seed``: ``value`` compares the
    samples with ``a`` and ``floor`` compares ``b`` with ``a`` — the same computation, so a perfect sampler
    scores the floor up to chance. Density-based metrics (NLL, KDE divergences) use the exact density.
    """
    x, seed = _np(samples, "samples"), check_int(seed, "seed", min=0)
    n, D = x.shape
    if n < 10:
        raise ValueError(f"samples: need at least 10 points, got {n}")
    mixture = truth if isinstance(truth, GaussianMixture) else truth.mixture
    draw: Callable[[int, torch.Generator], torch.Tensor] = (
        (lambda k, g: truth.sample(k, g)) if isinstance(truth, GaussianMixture) else truth.sample)
    if D != (mixture.D if mixture is not None else truth.dim):
        raise ValueError(f"samples have dimension {D}, the truth has {mixture.D if mixture else truth.dim}")
    g = torch.Generator().manual_seed(seed)
    a, b = _np(draw(n, g), "truth"), _np(draw(n, g), "truth")  # two independent true sets of size n

    out: dict[str, dict[str, float]] = {}

    def add(name: str, fn: Callable[[np.ndarray, np.ndarray], float]) -> None:
        out[name] = {"value": fn(x, a), "floor": fn(b, a)}

    if D == 1:
        add("wasserstein1", wasserstein1)
    else:
        add("sliced_wasserstein", sliced_wasserstein)
    add("energy_distance", energy_distance)
    add("mmd2", mmd2)
    if mixture is not None:
        out["nll"] = {"value": nll(x, mixture), "floor": nll(b, mixture)}
        if D <= 2:
            div_x, div_a = kde_divergences(x, mixture), kde_divergences(b, mixture)
            for k in div_x:
                out[k] = {"value": div_x[k], "floor": div_a[k]}
        mx, ma = mode_stats(x, mixture), mode_stats(b, mixture)
        out["modes_covered"] = {"value": mx["covered"], "floor": ma["covered"]}
        out["mode_weight_error"] = {"value": mx["max_weight_error"], "floor": ma["max_weight_error"]}
        out["off_mode_share"] = {"value": mx["off_mode_share"], "floor": ma["off_mode_share"]}
    return out
