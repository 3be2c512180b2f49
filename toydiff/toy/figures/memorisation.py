"""Memorisation as figures: which samples copy a training point (nearest training point much nearer than the
second nearest; :mod:`toydiff.evaluation.memorisation`), and the copy rate against the number of training points.

    fig = memorisation_mpl(train, {"model": x}, {"model": is_copy})    # PNG, one panel per model
    fig = copies_plotly(train, x, is_copy)                              # the app
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from toydiff.toy.figures.base import PLOTLY_LAYOUT_LABS, SAMPLE_COLOR, to_numpy

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["copies_data", "memorisation_mpl", "copies_plotly", "copy_rate_plotly"]


def copies_data(train, samples, is_copy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train [M, D], samples [N, D], is_copy [N] bool)`` as arrays, checked to agree."""
    tr, xs, cp = to_numpy(train), to_numpy(samples), to_numpy(is_copy).astype(bool)
    if tr.ndim != 2 or xs.ndim != 2 or tr.shape[1] != xs.shape[1] or cp.shape != (xs.shape[0],):
        raise ValueError(f"train [M, D], samples [N, D] and is_copy [N] must agree, got {tr.shape}, {xs.shape}, {cp.shape}")
    return tr, xs, cp


def memorisation_mpl(train, samples: dict, copies: dict, *, title: str = "Memorisation") -> Figure:
    """One panel per ``samples`` entry: training points (black), samples coloured by copy (red) or not (blue)."""
    fig, axes = plt.subplots(1, len(samples), figsize=(4.6 * len(samples), 4.4), constrained_layout=True,
                             squeeze=False)
    for ax, (label, x) in zip(axes[0], samples.items()):
        tr, xs, cp = copies_data(train, x, copies[label])
        if xs.shape[1] == 1:
            bins = np.linspace(min(xs.min(), tr.min()), max(xs.max(), tr.max()), 200)
            ax.hist([xs[cp, 0], xs[~cp, 0]], bins=bins, stacked=True, color=["tab:red", "tab:blue"],
                    label=["copies", "new"])
            ax.plot(tr[:, 0], np.zeros(len(tr)), "k|", ms=12, label="training points")
        else:
            ax.scatter(tr[:, 0], tr[:, 1], s=40, facecolors="none", edgecolors="k", lw=0.8, label="training points")
            ax.scatter(xs[~cp, 0], xs[~cp, 1], s=3, c="tab:blue", alpha=0.5, label="new")
            ax.scatter(xs[cp, 0], xs[cp, 1], s=3, c="tab:red", alpha=0.5, label="copies")
            ax.set(aspect="equal", xlabel="x", ylabel="y")  # points in a plane: a ring stays round
        ax.set_title(f"{label}: copy rate {cp.mean():.0%}")
        ax.legend(fontsize=7, markerscale=2)
    # wrapped to the figure's width (about 10 characters an inch at this size): one narrow panel clipped it
    fig.suptitle(textwrap.fill(title, width=max(20, int(fig.get_figwidth() * 10))), fontsize=11)
    return fig


def copies_plotly(train, samples, is_copy) -> go.Figure:
    """Training points and samples, the samples coloured by whether they copy a training point (2-D: the plane;
    1-D: stacked histograms with the training points as ticks). ``train [M, D]``, ``samples [N, D]``, ``is_copy [N]``."""
    import plotly.graph_objects as go

    from toydiff.toy.figures.plotly_kit import plane_axes

    tr, xs, cp = copies_data(train, samples, is_copy)
    fig = go.Figure()
    parts = (("new", "#1f77b4", ~cp), ("copies", SAMPLE_COLOR, cp))
    if xs.shape[1] == 1:
        for name, color, m in parts:
            fig.add_trace(go.Histogram(x=xs[m, 0], name=f"{name} ({m.sum()})", marker_color=color, nbinsx=120))
        fig.add_trace(go.Scatter(x=tr[:, 0], y=np.zeros(len(tr)), mode="markers", name="training points",
                                 marker=dict(symbol="line-ns-open", size=14, color="black")))
        fig.update_layout(barmode="stack", xaxis_title="x", yaxis_title="samples")
    else:
        fig.add_trace(go.Scatter(x=tr[:, 0], y=tr[:, 1], mode="markers", name="training points",
                                 marker=dict(size=10, symbol="circle-open", color="black")))
        for name, color, m in parts:
            fig.add_trace(go.Scattergl(x=xs[m, 0], y=xs[m, 1], mode="markers", name=f"{name} ({m.sum()})",
                                       marker=dict(size=4, color=color, opacity=0.6)))
        plane_axes(fig)
        fig.update_layout(xaxis_title="x", yaxis_title="y")
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=420, legend=dict(orientation="h", y=-0.15))
    return fig


def copy_rate_plotly(n_train: Sequence[int], rates: Mapping[str, Sequence[float]], *, ratio: float) -> go.Figure:
    """Copy rate against the number of training points (log x), one line per ``rates`` entry."""
    import plotly.graph_objects as go

    from toydiff.toy.figures.plotly_kit import log_axis

    if not rates:
        raise ValueError("rates is empty")
    fig = go.Figure()
    for label, r in rates.items():
        fig.add_trace(go.Scatter(x=list(n_train), y=list(r), mode="lines+markers", name=label,
                                 hovertemplate="n = %{x}: %{y:.1%}<extra>" + label + "</extra>"))
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=360, xaxis=log_axis(n_train, title="training points n"),
                      yaxis=dict(title=f"copy rate (nearest < {ratio:.2g} × second nearest)", range=[-0.03, 1.03]),
                      legend=dict(orientation="h", y=-0.25))
    return fig
