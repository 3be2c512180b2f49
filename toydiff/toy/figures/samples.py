"""Samples against the truth, and the reverse trajectories that led to them (1-D and 2-D).

    fig = samples_vs_truth_mpl(x, mixture=gm)        # PNG: histogram over the exact density (1-D), scatter (2-D)
    fig = samples_vs_truth_plotly(x, mixture=gm)     # the same data for the app

Points are ``[N, 1]`` or ``[N, 2]`` tensors or arrays; paths ``[S + 1, n, D]`` (``TrajectoryRecorder.path()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from toydiff.checks import check_int
from toydiff.exact.mixture import GaussianMixture
from toydiff.toy.figures.base import (MPL_SAMPLE, MPL_TRUE, PLOTLY_LAYOUT, SAMPLE_COLOR, TRUE_COLOR, density_grid,
                                      extent, to_numpy)

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["SamplesData", "samples_data", "kde_vs_histogram_mpl", "scatter_with_density_mpl", "samples_vs_truth_mpl",
           "samples_vs_truth_plotly", "trajectories_1d_data", "trajectories_1d_mpl", "trajectories_1d_plotly",
           "trajectories_2d_data", "trajectories_2d_mpl", "trajectories_2d_plotly"]


@dataclass
class SamplesData:
    """Samples ``x [N, D]``, true samples ``truth [M, D]`` (or None), the box ``lo, hi [D]``, and the exact
    density on a grid over the box (:func:`~toydiff.toy.figures.base.density_grid`, or None without a mixture)."""

    x: np.ndarray
    truth: np.ndarray | None
    lo: np.ndarray
    hi: np.ndarray
    density: tuple[np.ndarray, ...] | None


def samples_data(samples, *, mixture: GaussianMixture | None = None, true_samples=None, n_grid: int = 400,
                 box_from_truth: bool = True) -> SamplesData:
    """What :func:`samples_vs_truth_mpl` and :func:`samples_vs_truth_plotly` draw. The box holds the mixture
    (±4 std) or else the quantiles of ``true_samples`` (of the samples when ``box_from_truth`` is False or
    there are none); the density is evaluated on ``n_grid`` points (1-D) or ``n_grid``² (2-D)."""
    x = to_numpy(samples).reshape(len(samples), -1)
    if x.shape[1] not in (1, 2):
        raise ValueError(f"samples must be [N, 1] or [N, 2], got {x.shape}")
    truth = None if true_samples is None else to_numpy(true_samples).reshape(len(true_samples), -1)
    lo, hi = extent(x if truth is None or not box_from_truth else truth, mixture)
    dens = density_grid(mixture, 1.0, lo, hi, n_grid) if mixture is not None else None
    return SamplesData(x, truth, lo, hi, dens)


def kde_vs_histogram_mpl(samples, *, mixture: GaussianMixture | None = None, true_samples=None,
                         title: str = "Sampled vs true distribution", bins: int = 60,
                         units: str = "data units") -> Figure:
    """The seed exercise's Figure 1: a density histogram of the samples over the true density.

    The truth is drawn as the exact mixture density when ``mixture`` is given and as a seaborn KDE of
    ``true_samples`` when those are given (both if both). 1-D only. ``units`` names x's space on the axis.
    """
    if to_numpy(samples).reshape(len(samples), -1).shape[1] != 1:
        raise ValueError("kde_vs_histogram is for 1-D samples [N, 1]; use scatter_with_density in 2-D")
    import seaborn as sns

    d = samples_data(samples, mixture=mixture, true_samples=true_samples, n_grid=600, box_from_truth=False)
    x, lo, hi = d.x, d.lo, d.hi
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(x[:, 0], bins=np.linspace(lo[0], hi[0], bins), density=True, color=MPL_SAMPLE, alpha=0.55,
            label=f"samples (n = {len(x):,})")
    if d.truth is not None:
        sns.kdeplot(x=d.truth.reshape(-1), ax=ax, color=MPL_TRUE, lw=2, ls="--", label="KDE of true samples")
    if d.density is not None:
        ax.plot(*d.density, color=MPL_TRUE, lw=2, label="exact density")
    ax.set(xlabel=f"x ({units})", ylabel="density", title=title, xlim=(lo[0], hi[0]))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def scatter_with_density_mpl(samples, *, mixture: GaussianMixture | None = None, true_samples=None,
                             title: str = "Samples", units: str = "data units") -> Figure:
    """2-D samples over the exact density's contours (or over true samples where no density is known);
    ``units`` names the space of the points on both axes."""
    x = to_numpy(samples)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"scatter_with_density is for 2-D samples [N, 2], got {x.shape}")
    d = samples_data(samples, mixture=mixture, true_samples=true_samples, n_grid=150)
    lo, hi = d.lo, d.hi
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    if d.truth is not None:
        ax.scatter(d.truth[:, 0], d.truth[:, 1], s=2, color=MPL_TRUE, alpha=0.25, label="true samples")
    if d.density is not None:
        ax.contour(*d.density, levels=8, colors=MPL_TRUE, linewidths=0.8)
        ax.plot([], [], color=MPL_TRUE, label="exact density")
    ax.scatter(x[:, 0], x[:, 1], s=3, color=MPL_SAMPLE, alpha=0.4, label=f"samples (n = {len(x):,})")
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), aspect="equal", title=title, xlabel=f"x ({units})",
           ylabel=f"y ({units})")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def samples_vs_truth_mpl(samples, *, mixture: GaussianMixture | None = None, true_samples=None,
                         title: str = "Samples", units: str = "data units") -> Figure:
    """:func:`kde_vs_histogram_mpl` for 1-D samples ``[N, 1]``, :func:`scatter_with_density_mpl` for 2-D ``[N, 2]``."""
    dim = to_numpy(samples).reshape(len(samples), -1).shape[1]
    if dim == 1:
        return kde_vs_histogram_mpl(samples, mixture=mixture, true_samples=true_samples, title=title, units=units)
    return scatter_with_density_mpl(samples, mixture=mixture, true_samples=true_samples, title=title, units=units)


def samples_vs_truth_plotly(samples, *, mixture: GaussianMixture | None = None, true_samples=None,
                            title: str = "Samples") -> go.Figure:
    """Samples against the truth: 1-D a density histogram over the exact density, 2-D a scatter over it;
    ``true_samples`` stand in where there is no exact mixture."""
    import plotly.graph_objects as go

    from toydiff.toy.figures.plotly_kit import density_heatmap, plane_axes, points

    x = to_numpy(samples).reshape(len(samples), -1)
    d = samples_data(samples, mixture=mixture, true_samples=true_samples, n_grid=400 if x.shape[1] == 1 else 80)
    lo, hi = d.lo, d.hi
    fig = go.Figure()
    if x.shape[1] == 1:
        fig.add_histogram(x=x[:, 0], histnorm="probability density", name=f"samples (n = {len(x):,})",
                          marker_color=SAMPLE_COLOR, opacity=0.55, xbins=dict(start=lo[0], end=hi[0],
                                                                               size=(hi[0] - lo[0]) / 60))
        if d.truth is not None:
            fig.add_histogram(x=d.truth.reshape(-1), histnorm="probability density", name="true samples",
                              marker_color=TRUE_COLOR, opacity=0.35)
        if d.density is not None:
            fig.add_scatter(x=d.density[0], y=d.density[1], mode="lines", name="exact density",
                            line=dict(color=TRUE_COLOR, width=2))
        fig.update_layout(barmode="overlay", xaxis_title="x", yaxis_title="density")
    else:
        if d.density is not None:
            fig.add_trace(density_heatmap(*d.density))
        if d.truth is not None:
            fig.add_trace(points(d.truth, name="true samples", color=TRUE_COLOR, opacity=0.3))
        fig.add_trace(points(x, name=f"samples (n = {len(x):,})"))
        plane_axes(fig, x_range=(lo[0], hi[0]), y_range=(lo[1], hi[1]))
    fig.update_layout(**PLOTLY_LAYOUT, title=title, legend=dict(x=0.99, y=0.99, xanchor="right", yanchor="top",
                                                               bgcolor="rgba(255,255,255,0.7)"))
    return fig


# --- trajectories ----------------------------------------------------------------------------------------


def trajectories_1d_data(path, timesteps: Sequence[int], *, mixture: GaussianMixture | None = None,
                         max_lines: int = 200) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """``(path [S + 1, n_all, 1], steps remaining [S + 1] (t + 1; 0 = clean), n drawn, mode [n])``: each drawn
    line's mode is the mixture component most responsible for its end point (0 without a mixture)."""
    p = to_numpy(path)
    if p.ndim != 3 or p.shape[2] != 1:
        raise ValueError(f"path must have shape [S + 1, n, 1], got {p.shape}")
    n = min(p.shape[1], check_int(max_lines, "max_lines", min=1))
    steps = np.array(list(timesteps) + [-1]) + 1  # t + 1 noising steps remain; 0 = clean
    modes = (mixture.responsibilities(torch.from_numpy(p[-1, :n])).argmax(1).numpy() if mixture is not None
             else np.zeros(n, dtype=int))
    return p, steps, n, modes


def trajectories_1d_mpl(path, timesteps: Sequence[int], *, mixture: GaussianMixture | None = None,
                        title: str = "Reverse-process trajectories", max_lines: int = 200) -> Figure:
    """The seed exercise's Figure 2: tracked 1-D samples x_t against the step, coloured by the mode they end in.

    Args:
        path: ``[S + 1, n, 1]`` — the kept x_t then the final sample (``TrajectoryRecorder.path()``).
        timesteps: the t of each of the S kept rows (``TrajectoryRecorder.timesteps``).
        mixture: colours each line by its final sample's most responsible component; the final density is
            drawn on the right.
    """
    import seaborn as sns

    p, steps, n, modes = trajectories_1d_data(path, timesteps, mixture=mixture, max_lines=max_lines)
    palette = sns.color_palette("tab10")
    fig, (ax, side) = plt.subplots(1, 2, figsize=(10, 4.5), gridspec_kw={"width_ratios": [5, 1]}, sharey=True)
    for i in range(n):
        ax.plot(steps, p[:, i, 0], color=palette[modes[i] % 10], alpha=0.35, lw=0.8)
    ax.invert_xaxis()
    ax.set(xlabel="noising steps remaining (t + 1)", ylabel="x_t", title=f"{title} ({n} samples)")
    ax.grid(alpha=0.3)
    side.hist(p[-1, :, 0], bins=40, orientation="horizontal", density=True, color=MPL_SAMPLE, alpha=0.5)
    if mixture is not None:
        grid = np.linspace(p.min(), p.max(), 400)
        side.plot(mixture.log_prob(torch.from_numpy(grid)[:, None]).exp().numpy(), grid, color=MPL_TRUE)
        for k in range(mixture.K):
            ax.plot([], [], color=palette[k % 10], label=f"ends in mode {k} (mean {mixture.means[k].tolist()[0]:.2g})")
        ax.legend(loc="upper left", fontsize=8)
    side.set(xlabel="density", title="x_0")
    fig.tight_layout()
    return fig


def trajectories_1d_plotly(path, timesteps: Sequence[int], *, mixture: GaussianMixture | None = None,
                           title: str = "Reverse-process trajectories", max_lines: int = 100) -> go.Figure:
    """Tracked 1-D samples x_t against the steps remaining ``[S + 1, n, 1]``, coloured by the mixture component
    their end point belongs to, one trace per component."""
    import plotly.graph_objects as go

    p, steps, n, modes = trajectories_1d_data(path, timesteps, mixture=mixture, max_lines=max_lines)
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
    fig = go.Figure()
    for k in np.unique(modes):
        idx = np.flatnonzero(modes == k)
        xs = np.concatenate([np.append(steps, np.nan)] * len(idx))
        ys = np.concatenate([np.append(p[:, i, 0], np.nan) for i in idx])
        fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(width=0.8, color=palette[k % len(palette)]), opacity=0.5,
                        name=f"ends in mode {k} ({len(idx)})", hovertemplate="t+1=%{x}<br>x=%{y:.3f}<extra></extra>")
    fig.update_layout(**PLOTLY_LAYOUT, title=f"{title} ({n} samples)", xaxis=dict(autorange="reversed",
                      title="noising steps remaining (t + 1)"), yaxis_title="x_t")
    return fig


def trajectories_2d_data(path, *, n: int = 40) -> tuple[np.ndarray, int]:
    """``(path [S + 1, N, 2], k)``: the paths and how many of them (the first ``k = min(n, N)``) are drawn."""
    n = check_int(n, "n", min=1)
    p = to_numpy(path)
    if p.ndim != 3 or p.shape[2] != 2:
        raise ValueError(f"path must have shape [S + 1, n, 2], got {p.shape}")
    return p, min(n, p.shape[1])


def trajectories_2d_mpl(path, *, n: int = 40, title: str = "Reverse trajectories") -> Figure:
    """The first ``n`` tracked 2-D paths ``[S + 1, N, 2]`` (``TrajectoryRecorder.path()``), start and end marked."""
    p, k = trajectories_2d_data(path, n=n)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for i in range(k):
        ax.plot(p[:, i, 0], p[:, i, 1], lw=0.6, alpha=0.5)
    ax.scatter(p[-1, :k, 0], p[-1, :k, 1], s=10, color=MPL_SAMPLE, zorder=3, label="x_0 (end)")
    ax.scatter(p[0, :k, 0], p[0, :k, 1], s=10, color="0.5", zorder=3, label="x_T (start)")
    ax.set(title=f"{title} ({k} samples)", aspect="equal", xlabel="x", ylabel="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def trajectories_2d_plotly(path, *, n: int = 40, title: str = "Reverse trajectories") -> go.Figure:
    """The first ``n`` tracked 2-D paths ``[S + 1, N, 2]`` as one line trace, start and end marked."""
    import plotly.graph_objects as go

    from toydiff.toy.figures.plotly_kit import plane_axes, points

    p, k = trajectories_2d_data(path, n=n)
    nan = np.full((1, k), np.nan)
    xs, ys = np.concatenate([p[:, :k, 0], nan]).T.ravel(), np.concatenate([p[:, :k, 1], nan]).T.ravel()
    fig = go.Figure([go.Scatter(x=xs, y=ys, mode="lines", line=dict(width=0.8, color="rgba(100,100,100,0.5)"),
                                name="paths", hoverinfo="skip"),
                     points(p[0, :k], name="x_T (start)", color="grey", size=6, opacity=0.9),
                     points(p[-1, :k], name="x_0 (end)", color=SAMPLE_COLOR, size=6, opacity=0.9)])
    fig.update_layout(**PLOTLY_LAYOUT, title=f"{title} ({k} samples)")
    plane_axes(fig)
    return fig
