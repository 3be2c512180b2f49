"""Classifier-free guidance on labelled 2-D mixtures (:mod:`toydiff.toy.guidance_eval`): guided samples over the
exact tilted target p(x | y)^w p(x)^(1 − w), what CFG samples against w, and the exact class posterior p(y | x_t).

    fig = guided_panels_mpl({w: samples_w}, {w: tilted_target(gm.condition(y), gm, w)}, title="exact CFG")
    fig = guidance_curves_mpl(rows)      # PNG: distances to the tilted target and to p(x | y) against w
    fig = guidance_curves_plotly(rows)   # the same rows for the app
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from toydiff.checks import check_int
from toydiff.exact.guidance import TiltedTarget
from toydiff.exact.mixture import GaussianMixture
from toydiff.toy.figures.base import PLOTLY_LAYOUT_LABS, SAMPLE_COLOR, to_numpy

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["guided_panels_mpl", "target_panels_plotly", "GuidanceCurves", "guidance_curves_data",
           "guidance_curves_mpl", "guidance_curves_plotly", "ClassPosterior", "class_posterior_data",
           "class_posterior_mpl", "class_posterior_plotly", "log_density", "LOG_DECADES"]

#: the three panels of the guidance curves: (row key, panel title in the app)
CURVES = (("sw_tilted", "distance to the tilted target"), ("sw_cond", "distance to p(x | y)"),
          ("off_data", "off-data share (> 3σ out)"))


def guided_panels_mpl(samples: Mapping[float, torch.Tensor], targets: Mapping[float, TiltedTarget], *,
                      title: str = "Guided samples over the tilted target p(x|y)^w p(x)^(1-w) (log density)",
                      max_points: int = 1500) -> Figure:
    """One panel per w: the tilted target's density (shaded, from ``targets[w]``) and the samples ``[N, 2]``."""
    ws = list(samples)
    if not ws or any(w not in targets for w in ws):
        raise ValueError("samples and targets must share their keys (the w values), and not be empty")
    fig, axes = plt.subplots(1, len(ws), figsize=(3.2 * len(ws), 3.4), squeeze=False)
    for ax, w in zip(axes[0], ws):
        tg, x = targets[w], to_numpy(samples[w])[:max_points]
        ext = [float(tg.xs[0]), float(tg.xs[-1]), float(tg.ys[0]), float(tg.ys[-1])]
        ax.imshow(log_density(tg.density), origin="lower", extent=ext, cmap="Blues", aspect="equal")
        ax.scatter(x[:, 0], x[:, 1], s=2, color="tab:red", alpha=0.4)
        ax.set(title=f"w = {w:g}", xlim=ext[:2], ylim=ext[2:], xticks=[], yticks=[])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


#: how many decades below each panel's peak the log-density colour scale reaches
LOG_DECADES = 4.0


def log_density(density) -> np.ndarray:
    """log₁₀ of a density grid, clipped :data:`LOG_DECADES` decades below its own peak: a per-panel colour scale
    that does not saturate at the modes (on a linear scale a sharpened target and p(x|y) look alike)."""
    d = to_numpy(density).astype(float)
    top = float(d.max())
    if not top > 0:
        raise ValueError("density must have a positive maximum")
    return np.log10(np.maximum(d, top * 10.0 ** -LOG_DECADES))


def target_panels_plotly(panels: Sequence[tuple[str, TiltedTarget]], samples, *, max_points: int = 1500) -> go.Figure:
    """One panel per ``(title, target)``: the target's log₁₀ density on its grid (shaded, each panel on its own
    scale of :data:`LOG_DECADES` decades below its peak) under the same samples ``[N, 2]`` (data units), so the
    sample cloud can be read against each density."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from toydiff.toy.figures.plotly_kit import plane_axes

    if not panels:
        raise ValueError("panels is empty")
    x = to_numpy(samples)[:check_int(max_points, "max_points", min=1)]
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"samples must be [N, 2], got {x.shape}")
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for t, _ in panels], horizontal_spacing=0.06)
    for col, (title, tg) in enumerate(panels, start=1):
        fig.add_trace(go.Heatmap(x=to_numpy(tg.xs), y=to_numpy(tg.ys), z=log_density(tg.density), colorscale="Blues",
                                 showscale=False, name=title, hovertemplate="x = %{x:.2f}, y = %{y:.2f}<br>log₁₀ "
                                 "density %{z:.2f}<extra>" + title + "</extra>"), row=1, col=col)
        fig.add_trace(go.Scattergl(x=x[:, 0], y=x[:, 1], mode="markers", name="guided samples", showlegend=col == 1,
                                   legendgroup="samples", marker=dict(size=3, color=SAMPLE_COLOR, opacity=0.5),
                                   hovertemplate="(%{x:.2f}, %{y:.2f})<extra>sample</extra>"), row=1, col=col)
        plane_axes(fig, row=1, col=col, x_range=(float(tg.xs[0]), float(tg.xs[-1])),
                   y_range=(float(tg.ys[0]), float(tg.ys[-1])))
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=420, legend=dict(orientation="h", y=-0.08))
    return fig


# --- what CFG samples, against w ----------------------------------------------------------------------------


@dataclass
class GuidanceCurves:
    """``groups``: ``{(source, interval): rows sorted by w}``; ``floor``: one row per w (sorted), holding the
    noise floors ``sw_tilted_floor`` and ``sw_cond_floor``."""

    groups: dict[tuple[str, str], list[dict]]
    floor: list[dict]


def guidance_curves_data(rows: Sequence) -> GuidanceCurves:
    """Group ``rows`` (:class:`~toydiff.toy.guidance_eval.GuidanceRow` s or their dicts) into one line per
    (source, interval), each sorted by w, and the noise floor per w."""
    rs = [r if isinstance(r, dict) else r.to_dict() for r in rows]
    if not rs:
        raise ValueError("rows must not be empty")
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rs:
        groups.setdefault((r["source"], r["interval"]), []).append(r)
    groups = {k: sorted(g, key=lambda r: r["w"]) for k, g in groups.items()}
    return GuidanceCurves(groups, sorted({r["w"]: r for r in rs}.values(), key=lambda r: r["w"]))


def guidance_curves_mpl(rows: Sequence, *, title: str = "What CFG samples, against w",
                        xlabel: str = "w (ε_u + w (ε_c − ε_u))") -> Figure:
    """Sliced W1 to the tilted target and to p(x | y), and the off-data share, against w: one line per
    (source, interval), the noise floor dashed. ``rows``: see :func:`guidance_curves_data`."""
    d = guidance_curves_data(rows)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for (src, iv), g in d.groups.items():
        w = [r["w"] for r in g]
        for ax, key in zip(axes, ("sw_tilted", "sw_cond", "off_data")):
            ax.plot(w, [r[key] for r in g], marker="o", label=f"{src}, {iv}")
    for ax, key, name in zip(axes[:2], ("sw_tilted", "sw_cond"), ("tilted target", "p(x | y)")):
        ax.plot([r["w"] for r in d.floor], [r[f"{key}_floor"] for r in d.floor], ls="--", color="grey",
                label="noise floor")
        ax.set(xlabel=xlabel, ylabel="sliced W1", title=f"distance to {name}")
    axes[2].set(xlabel="w", ylabel="share", title="off-data share (> 3σ from every mode)")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def guidance_curves_plotly(rows: Sequence, *, xlabel: str = "w (ε_u + w (ε_c − ε_u))") -> go.Figure:
    """The same three panels for the app, hover showing the modes covered and the class share; each
    distance's noise floor dashed. ``rows``: see :func:`guidance_curves_data`."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    d = guidance_curves_data(rows)
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in CURVES], horizontal_spacing=0.07)
    palette = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")
    for i, ((src, iv), g) in enumerate(d.groups.items()):
        label = f"{src}, {iv} interval"
        for col, (key, _) in enumerate(CURVES, start=1):
            fig.add_trace(go.Scatter(x=[r["w"] for r in g], y=[r[key] for r in g], mode="lines+markers", name=label,
                                     legendgroup=label, showlegend=col == 1, line=dict(color=palette[i % 4]),
                                     customdata=[[r["modes_covered"], r["n_modes"], r["class_share"]] for r in g],
                                     hovertemplate="w = %{x:g}: %{y:.3g}<br>modes %{customdata[0]}/%{customdata[1]}, "
                                                   "class share %{customdata[2]:.3f}<extra>" + label + "</extra>"),
                          row=1, col=col)
    for col, key in ((1, "sw_tilted_floor"), (2, "sw_cond_floor")):
        fig.add_trace(go.Scatter(x=[r["w"] for r in d.floor], y=[r[key] for r in d.floor], mode="lines",
                                 name="noise floor", legendgroup="floor", showlegend=col == 1,
                                 line=dict(color="grey", dash="dash"),
                                 hovertemplate="two target draws: %{y:.3g}<extra>floor</extra>"), row=1, col=col)
    fig.update_xaxes(title_text=xlabel)
    fig.update_yaxes(title_text="sliced W1", row=1, col=1)
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=380, legend=dict(orientation="h", y=-0.25))
    return fig


# --- the exact class posterior ------------------------------------------------------------------------------


@dataclass
class ClassPosterior:
    """p(y | x_t) ``p [n, n]`` (rows = y) on the grid ``xs [n]``, ``ys [n]`` covering ``extent`` (x0, x1, y0,
    y1), with the noised component means ``mu [K, 2]`` = √ᾱ · means and their class ``labels [K]``."""

    xs: np.ndarray
    ys: np.ndarray
    p: np.ndarray
    extent: tuple[float, float, float, float]
    mu: np.ndarray
    labels: np.ndarray


def class_posterior_data(mixture: GaussianMixture, alpha_bar: float, y: int, *, n: int = 150,
                         extent: tuple[float, float, float, float] | None = None) -> ClassPosterior:
    """The exact p(y | x_t) at noise level ``alpha_bar`` on an ``n``² grid (default box: the noised means ± 2.5)."""
    if mixture.D != 2:
        raise ValueError(f"the class posterior figure needs a 2-D mixture, got D = {mixture.D}")
    n = check_int(n, "n", min=8)
    mu = to_numpy(mixture.means) * float(alpha_bar) ** 0.5
    if extent is None:
        lo, hi = mu.min(0) - 2.5, mu.max(0) + 2.5
        extent = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
    xs, ys = np.linspace(extent[0], extent[1], n), np.linspace(extent[2], extent[3], n)
    XX, YY = np.meshgrid(xs, ys)
    pts = torch.from_numpy(np.stack([XX.ravel(), YY.ravel()], 1))
    p = mixture.class_posterior(pts, alpha_bar=float(alpha_bar))[:, y].numpy().reshape(n, n)
    return ClassPosterior(xs, ys, p, extent, mu, to_numpy(mixture.labels).astype(int))


def class_posterior_mpl(mixture: GaussianMixture, alpha_bar: float, y: int, *, n: int = 150,
                        extent: tuple[float, float, float, float] | None = None) -> Figure:
    """p(y | x_t) over the plane at noise level ``alpha_bar`` (exact), with the noised mixture's component means."""
    d = class_posterior_data(mixture, alpha_bar, y, n=n, extent=extent)
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(d.p, origin="lower", extent=d.extent, cmap="viridis", vmin=0, vmax=1, aspect="equal")
    ax.scatter(d.mu[:, 0], d.mu[:, 1], c=d.labels, cmap="tab10", vmin=0, vmax=9, s=25,
               edgecolors="white", label="noised component means (colour: class)")
    ax.legend(loc="lower right", fontsize=7)
    fig.colorbar(im, ax=ax, label=f"p(y = {y} | x_t)")
    ax.set(title=f"exact class posterior, ᾱ = {float(alpha_bar):.3g}")
    fig.tight_layout()
    return fig


def class_posterior_plotly(mixture: GaussianMixture, alpha_bar: float, y: int, *, n: int = 100,
                           extent: tuple[float, float, float, float] | None = None) -> go.Figure:
    """The exact p(y | x_t) over the plane at noise level ``alpha_bar``, with the noised component means
    coloured by class (hover reads the probability)."""
    import plotly.graph_objects as go

    from toydiff.toy.figures.plotly_kit import plane_axes

    d = class_posterior_data(mixture, alpha_bar, y, n=n, extent=extent)
    fig = go.Figure(go.Heatmap(x=d.xs, y=d.ys, z=d.p, zmin=0, zmax=1, colorscale="Viridis",
                               colorbar=dict(title=f"p(y={y} | x_t)", thickness=12),
                               hovertemplate="x_t = (%{x:.2f}, %{y:.2f})<br>p(y | x_t) = %{z:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=d.mu[:, 0], y=d.mu[:, 1], mode="markers", name="√ᾱ · component means",
                             marker=dict(size=9, color=d.labels, colorscale="Plotly3", line=dict(color="white", width=1)),
                             customdata=d.labels, hovertemplate="mean of a class-%{customdata} component<extra></extra>"))
    plane_axes(fig, x_range=d.extent[:2], y_range=d.extent[2:])
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=420, title=f"exact class posterior, ᾱ = {float(alpha_bar):.3g}",
                      legend=dict(orientation="h", y=-0.12))
    return fig
