"""What the figure families share: colours, array conversion, a plotting box, and exact density grids.

No plotting library is imported here; these are the data every renderer draws from.
"""

from __future__ import annotations

import numpy as np
import torch

from toydiff.checks import check_int
from toydiff.exact.mixture import GaussianMixture

__all__ = ["TRUE_COLOR", "SAMPLE_COLOR", "EXACT_COLOR", "MPL_TRUE", "MPL_SAMPLE", "PLOTLY_LAYOUT", "PLOTLY_LAYOUT_LABS",
           "to_numpy", "extent", "density_grid", "density_frames"]

#: Plotly colours (hex) and their matplotlib names: the truth blue, samples red, exact curves near-black
TRUE_COLOR, SAMPLE_COLOR, EXACT_COLOR = "#1f77b4", "#d62728", "#222222"
MPL_TRUE, MPL_SAMPLE = "tab:blue", "tab:red"
#: the layout every Plotly figure starts from (the labs' figures use narrower left margins)
PLOTLY_LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=20, t=50, b=40), hovermode="closest")
PLOTLY_LAYOUT_LABS = dict(template="plotly_white", margin=dict(l=40, r=20, t=50, b=40), hovermode="closest")


def to_numpy(x) -> np.ndarray:
    """A tensor or array-like as a float64 NumPy array (detached, on the CPU)."""
    return (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)).astype(np.float64)


def extent(points=None, mixture: GaussianMixture | None = None, pad: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A box ``(lo [D], hi [D])`` holding the mixture's components (±4 std) or the points' 0.1–99.9 % quantiles."""
    if mixture is not None:
        std = to_numpy(mixture.covs.diagonal(dim1=1, dim2=2).sqrt())
        lo, hi = (to_numpy(mixture.means) - 4 * std).min(0), (to_numpy(mixture.means) + 4 * std).max(0)
    elif points is not None:
        p = to_numpy(points)
        lo, hi = np.quantile(p, 0.001, axis=0), np.quantile(p, 0.999, axis=0)
    else:
        raise ValueError("extent needs points or a mixture")
    span = np.maximum(hi - lo, 1e-6)
    return lo - pad * span, hi + pad * span


def density_grid(mixture: GaussianMixture, alpha_bar: float, lo, hi, n: int = 60) -> tuple[np.ndarray, ...]:
    """The exact density of x_t (the mixture noised to ``alpha_bar``) on a grid.

    Returns ``(xs [n], p [n])`` in 1-D, ``(xs [n], ys [n], p [n, n])`` (rows = y) in 2-D.
    """
    n = check_int(n, "n", min=2)
    xs = np.linspace(lo[0], hi[0], n)
    if mixture.D == 1:
        return xs, mixture.log_prob(torch.from_numpy(xs)[:, None], alpha_bar).exp().numpy()
    ys = np.linspace(lo[1], hi[1], n)
    XX, YY = np.meshgrid(xs, ys)
    pts = torch.from_numpy(np.stack([XX.ravel(), YY.ravel()], 1))
    return xs, ys, mixture.log_prob(pts, alpha_bar).exp().numpy().reshape(n, n)


def density_frames(mixture: GaussianMixture, alpha_bars, lo, hi, n: int = 50) -> tuple[np.ndarray, ...]:
    """:func:`density_grid` at every ᾱ of ``alpha_bars`` ``[F]`` in one batched ``log_prob`` call.

    Returns ``(xs [n], p [F, n])`` in 1-D, ``(xs [n], ys [n], p [F, n, n])`` in 2-D.
    """
    n = check_int(n, "n", min=2)
    ab = torch.as_tensor(np.asarray(alpha_bars, dtype=np.float64))
    xs = np.linspace(lo[0], hi[0], n)
    if mixture.D == 1:
        grid = torch.from_numpy(xs)[:, None]
    else:
        ys = np.linspace(lo[1], hi[1], n)
        XX, YY = np.meshgrid(xs, ys)
        grid = torch.from_numpy(np.stack([XX.ravel(), YY.ravel()], 1))
    m = grid.shape[0]
    p = mixture.log_prob(grid.repeat(len(ab), 1), ab.repeat_interleave(m)).exp().numpy()
    return (xs, p.reshape(len(ab), n)) if mixture.D == 1 else (xs, ys, p.reshape(len(ab), n, n))
