"""Interactive (Plotly) figures of the labs: guidance against its exact tilted target, the exact class posterior,
and flow vs diffusion paths. Matplotlib twins for export: :mod:`toydiff.toy.plots_guidance`.

Every function returns a ``plotly.graph_objects.Figure`` and never shows it. Plotly is an optional dependency
(the ``app`` extra); importing :mod:`toydiff.toy` does not import this module.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..checks import check_int
from ..exact import GaussianMixture
from ..exact_guidance import TiltedTarget
from .charts import SAMPLE_COLOR, _np

__all__ = ["target_panels", "guidance_curves", "class_posterior_heatmap", "paths_figure"]

_LAYOUT = dict(template="plotly_white", margin=dict(l=40, r=20, t=50, b=40), hovermode="closest")
_CURVES = (("sw_tilted", "distance to the tilted target"), ("sw_cond", "distance to p(x | y)"),
           ("off_data", "off-data share (> 3σ out)"))


def target_panels(panels: Sequence[tuple[str, TiltedTarget]], samples, *, max_points: int = 1500) -> go.Figure:
    """One panel per ``(title, target)``: the target's density on its grid (shaded) under the same samples
    ``[N, 2]`` (data units), so the sample cloud can be read against each density."""
    if not panels:
        raise ValueError("panels is empty")
    x = _np(samples)[:check_int(max_points, "max_points", min=1)]
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"samples must be [N, 2], got {x.shape}")
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for t, _ in panels], horizontal_spacing=0.06)
    for col, (title, tg) in enumerate(panels, start=1):
        fig.add_trace(go.Heatmap(x=_np(tg.xs), y=_np(tg.ys), z=_np(tg.density), colorscale="Blues", showscale=False,
                                 name=title, hovertemplate="x = %{x:.2f}, y = %{y:.2f}<br>density %{z:.3g}"
                                                           "<extra>" + title + "</extra>"), row=1, col=col)
        fig.add_trace(go.Scattergl(x=x[:, 0], y=x[:, 1], mode="markers", name="guided samples", showlegend=col == 1,
                                   legendgroup="samples", marker=dict(size=3, color=SAMPLE_COLOR, opacity=0.5),
                                   hovertemplate="(%{x:.2f}, %{y:.2f})<extra>sample</extra>"), row=1, col=col)
        fig.update_xaxes(range=[float(tg.xs[0]), float(tg.xs[-1])], row=1, col=col)
        fig.update_yaxes(range=[float(tg.ys[0]), float(tg.ys[-1])], scaleanchor=f"x{col if col > 1 else ''}",
                         row=1, col=col)
    fig.update_layout(**_LAYOUT, height=420, legend=dict(orientation="h", y=-0.08))
    return fig


def guidance_curves(rows: Sequence, *, xlabel: str = "w (ε_u + w (ε_c − ε_u))") -> go.Figure:
    """Sliced W1 to the tilted target and to p(x | y), and the off-data share, against w: one line per
    (source, interval), each distance's noise floor dashed. ``rows``: ``GuidanceRow`` s or their dicts."""
    rs = [r if isinstance(r, dict) else r.to_dict() for r in rows]
    if not rs:
        raise ValueError("rows must not be empty")
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in _CURVES], horizontal_spacing=0.07)
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rs:
        groups.setdefault((r["source"], r["interval"]), []).append(r)
    palette = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")
    for i, ((src, iv), g) in enumerate(groups.items()):
        g = sorted(g, key=lambda r: r["w"])
        label = f"{src}, {iv} interval"
        for col, (key, _) in enumerate(_CURVES, start=1):
            fig.add_trace(go.Scatter(x=[r["w"] for r in g], y=[r[key] for r in g], mode="lines+markers", name=label,
                                     legendgroup=label, showlegend=col == 1, line=dict(color=palette[i % 4]),
                                     customdata=[[r["modes_covered"], r["n_modes"], r["class_share"]] for r in g],
                                     hovertemplate="w = %{x:g}: %{y:.3g}<br>modes %{customdata[0]}/%{customdata[1]}, "
                                                   "class share %{customdata[2]:.3f}<extra>" + label + "</extra>"),
                          row=1, col=col)
    g = sorted({r["w"]: r for r in rs}.values(), key=lambda r: r["w"])
    for col, key in ((1, "sw_tilted_floor"), (2, "sw_cond_floor")):
        fig.add_trace(go.Scatter(x=[r["w"] for r in g], y=[r[key] for r in g], mode="lines", name="noise floor",
                                 legendgroup="floor", showlegend=col == 1, line=dict(color="grey", dash="dash"),
                                 hovertemplate="two target draws: %{y:.3g}<extra>floor</extra>"), row=1, col=col)
    fig.update_xaxes(title_text=xlabel)
    fig.update_yaxes(title_text="sliced W1", row=1, col=1)
    fig.update_layout(**_LAYOUT, height=380, legend=dict(orientation="h", y=-0.25))
    return fig


def class_posterior_heatmap(mixture: GaussianMixture, alpha_bar: float, y: int, *, n: int = 100,
                            extent: tuple[float, float, float, float] | None = None) -> go.Figure:
    """The exact p(y | x_t) over the plane at noise level ``alpha_bar``, with the noised component means
    coloured by class (hover reads the probability)."""
    if mixture.D != 2:
        raise ValueError(f"class_posterior_heatmap needs a 2-D mixture, got D = {mixture.D}")
    n = check_int(n, "n", min=8)
    mu = _np(mixture.means) * float(alpha_bar) ** 0.5
    if extent is None:
        lo, hi = mu.min(0) - 2.5, mu.max(0) + 2.5
        extent = (lo[0], hi[0], lo[1], hi[1])
    xs, ys = np.linspace(extent[0], extent[1], n), np.linspace(extent[2], extent[3], n)
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))
    p = mixture.class_posterior(pts, alpha_bar=float(alpha_bar))[:, y].numpy().reshape(n, n)
    fig = go.Figure(go.Heatmap(x=xs, y=ys, z=p, zmin=0, zmax=1, colorscale="Viridis",
                               colorbar=dict(title=f"p(y={y} | x_t)", thickness=12),
                               hovertemplate="x_t = (%{x:.2f}, %{y:.2f})<br>p(y | x_t) = %{z:.3f}<extra></extra>"))
    labels = _np(mixture.labels).astype(int)
    fig.add_trace(go.Scatter(x=mu[:, 0], y=mu[:, 1], mode="markers", name="√ᾱ · component means",
                             marker=dict(size=9, color=labels, colorscale="Plotly3", line=dict(color="white", width=1)),
                             customdata=labels, hovertemplate="mean of a class-%{customdata} component<extra></extra>"))
    fig.update_yaxes(scaleanchor="x")
    fig.update_layout(**_LAYOUT, height=420, title=f"exact class posterior, ᾱ = {float(alpha_bar):.3g}",
                      legend=dict(orientation="h", y=-0.12))
    return fig


def paths_figure(paths: Mapping[str, torch.Tensor], *, density: tuple | None = None) -> go.Figure:
    """The paths ``[S + 1, n, D]`` of a few particles under each process, one panel per process: in 2-D the
    curves in the plane (start ○ at x_1, end ● at the sample), in 1-D x against the fraction of the run.
    ``density``: ``(xs, ys, p)`` of the data, shaded under 2-D panels."""
    if not paths:
        raise ValueError("paths is empty")
    fig = make_subplots(rows=1, cols=len(paths), subplot_titles=list(paths), horizontal_spacing=0.06)
    for col, (name, p) in enumerate(paths.items(), start=1):
        a = _np(p)
        if a.ndim != 3 or a.shape[2] not in (1, 2):
            raise ValueError(f"paths[{name!r}] must be [S + 1, n, 1 or 2], got {a.shape}")
        if a.shape[2] == 2 and density is not None:
            fig.add_trace(go.Heatmap(x=density[0], y=density[1], z=density[2], colorscale="Blues", showscale=False,
                                     hoverinfo="skip"), row=1, col=col)
        u = np.linspace(0, 1, a.shape[0])
        for k in range(a.shape[1]):
            xy = (a[:, k, 0], a[:, k, 1]) if a.shape[2] == 2 else (u, a[:, k, 0])
            fig.add_trace(go.Scatter(x=xy[0], y=xy[1], mode="lines", line=dict(width=1.2), showlegend=False,
                                     opacity=0.8, hovertemplate=f"particle {k}<extra>{name}</extra>"), row=1, col=col)
        ends = (a[[0, -1], :, 0], a[[0, -1], :, 1]) if a.shape[2] == 2 else (np.array([[0.0], [1.0]]) + 0 * a[[0, -1], :, 0],
                                                                             a[[0, -1], :, 0])
        for j, (sym, lab) in enumerate((("circle-open", "x_1 (noise)"), ("circle", "x_0 (sample)"))):
            fig.add_trace(go.Scatter(x=ends[0][j], y=ends[1][j], mode="markers", name=lab, legendgroup=lab,
                                     showlegend=col == 1, marker=dict(symbol=sym, size=7, color="black"),
                                     hovertemplate="(%{x:.2f}, %{y:.2f})<extra>" + lab + "</extra>"), row=1, col=col)
        if a.shape[2] == 2:
            fig.update_yaxes(scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
        else:
            fig.update_xaxes(title_text="fraction of the run (noise → data)", row=1, col=col)
    fig.update_layout(**_LAYOUT, height=430, legend=dict(orientation="h", y=-0.1))
    return fig
