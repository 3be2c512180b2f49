"""Interactive (Plotly) figures of the labs: guidance against its exact tilted target, the exact class posterior,
flow vs diffusion paths, the PF-ODE likelihood against the exact one, the ELBO by step, and memorisation (copies,
copy rate against n). Matplotlib twins for export: :mod:`toydiff.toy.plots_guidance`, :mod:`toydiff.toy.plots_labs`.

Every function returns a ``plotly.graph_objects.Figure`` and never shows it. Plotly is an optional dependency
(the ``app`` extra); importing :mod:`toydiff.toy` does not import this module.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from toydiff.checks import check_int
from toydiff.exact.mixture import GaussianMixture
from toydiff.exact.guidance import TiltedTarget
from toydiff.toy.charts import SAMPLE_COLOR, _np

__all__ = ["target_panels", "guidance_curves", "class_posterior_heatmap", "paths_figure", "likelihood_points",
           "likelihood_grid", "elbo_steps", "copies_figure", "copy_rate_curve"]

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
    fig.update_yaxes(rangemode="tozero")
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


# --- likelihood and memorisation (toydiff.evaluation.likelihood, toydiff.evaluation.elbo, toydiff.evaluation.memorisation) -------------------


def likelihood_points(x, exact_log_p, estimates: Mapping[str, torch.Tensor]) -> go.Figure:
    """PF-ODE log-likelihoods against the exact log p of the same points ``x [N, D]``: in 1-D log p over x (the
    exact curve, the estimates as markers), in 2-D estimate against exact with the line y = x. ``estimates``:
    ``{label: log p [N]}`` in nats."""
    xs, ex = _np(x), _np(exact_log_p)
    if xs.ndim != 2 or xs.shape[0] != ex.shape[0]:
        raise ValueError(f"x must be [N, D] with N = len(exact_log_p) = {ex.shape[0]}, got {xs.shape}")
    fig = go.Figure()
    if xs.shape[1] == 1:
        order = np.argsort(xs[:, 0])
        fig.add_trace(go.Scatter(x=xs[order, 0], y=ex[order], mode="lines", name="exact log p(x)",
                                 line=dict(color="black"), hovertemplate="x = %{x:.3f}: %{y:.3f} nats<extra>exact</extra>"))
        for label, lp in estimates.items():
            fig.add_trace(go.Scatter(x=xs[:, 0], y=_np(lp), mode="markers", name=f"{label} (PF-ODE)", marker=dict(size=6),
                                     hovertemplate="x = %{x:.3f}: %{y:.3f} nats<extra>" + label + "</extra>"))
        fig.update_layout(xaxis_title="x", yaxis_title="log p(x) [nats]")
    else:
        lo, hi = float(ex.min()), float(ex.max())
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line=dict(color="black", dash="dash"),
                                 hoverinfo="skip"))
        for label, lp in estimates.items():
            est = _np(lp)
            fig.add_trace(go.Scatter(x=ex, y=est, mode="markers", name=f"{label} (mean gap {np.mean(ex - est):+.3f})",
                                     marker=dict(size=6, opacity=0.7), customdata=xs,
                                     hovertemplate="x = (%{customdata[0]:.2f}, %{customdata[1]:.2f})<br>exact %{x:.3f}"
                                                   ", PF-ODE %{y:.3f} nats<extra>" + label + "</extra>"))
        fig.update_layout(xaxis_title="exact log p(x) [nats]", yaxis_title="PF-ODE log p_θ(x) [nats]")
    fig.update_layout(**_LAYOUT, height=400, legend=dict(orientation="h", y=-0.2))
    return fig


def likelihood_grid(xs, ys, values: Mapping[str, np.ndarray], *, span: float = 15.0) -> go.Figure:
    """log p over a grid, one panel per ``values`` entry (``{label: [n] (1-D) or [n_y, n_x] (2-D)}``, nats), on
    one colour scale clipped to the ``span`` nats below the largest value (far from the data a model's log p can
    be off by orders of magnitude; hover shows the true numbers). ``ys=None`` for 1-D: curves over ``xs``."""
    if not values:
        raise ValueError("values is empty")
    top = max(float(np.max(_np(v))) for v in values.values())
    lo = top - float(span)
    if ys is None:
        fig = go.Figure([go.Scatter(x=_np(xs), y=np.clip(_np(v), lo, None), mode="lines", name=label,
                                    customdata=_np(v), hovertemplate="x = %{x:.3f}: %{customdata:.3f} nats<extra>"
                                    + label + "</extra>") for label, v in values.items()])
        fig.update_layout(**_LAYOUT, height=380, xaxis_title="x", yaxis_title=f"log p [nats], clipped at {lo:.1f}",
                          legend=dict(orientation="h", y=-0.2))
        return fig
    fig = make_subplots(rows=1, cols=len(values), subplot_titles=list(values), horizontal_spacing=0.05)
    for col, (label, v) in enumerate(values.items(), start=1):
        z = _np(v)
        fig.add_trace(go.Heatmap(x=_np(xs), y=_np(ys), z=np.clip(z, lo, top), customdata=z, zmin=lo, zmax=top,
                                 colorscale="Viridis", showscale=col == len(values),
                                 colorbar=dict(title="log p", thickness=12),
                                 hovertemplate="(%{x:.2f}, %{y:.2f}): %{customdata:.3f} nats<extra>" + label + "</extra>"),
                      row=1, col=col)
        fig.update_yaxes(scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
    fig.update_layout(**_LAYOUT, height=380)
    return fig


def elbo_steps(terms: Mapping, *, reference: str = "oracle") -> go.Figure:
    """Left: the ELBO's L_t against t (log scale, t ≥ 1) per entry of ``terms`` (``ELBOTerms``). Right: each
    entry's excess over ``reference`` per step and its cumulative sum — where a model loses likelihood."""
    if not terms:
        raise ValueError("terms is empty")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("L_t by step [nats]", f"excess over the {reference}, by step"),
                        horizontal_spacing=0.1)
    ref = terms.get(reference)
    for label, tr in terms.items():
        per_t = _np(tr.per_t)
        t = np.arange(1, len(per_t))
        fig.add_trace(go.Scatter(x=t, y=np.clip(per_t[1:], 1e-8, None), mode="lines", name=f"{label}: total "
                                 f"{tr.total:.3f} nats", hovertemplate="t = %{x}: %{y:.3g}<extra>" + label + "</extra>"),
                      row=1, col=1)
        if ref is not None and label != reference:
            gap = per_t - _np(ref.per_t)
            fig.add_trace(go.Scatter(x=np.arange(len(gap)), y=gap, mode="lines", name=f"{label} − {reference}, per step",
                                     hovertemplate="t = %{x}: %{y:.3g}<extra>per step</extra>"), row=1, col=2)
            fig.add_trace(go.Scatter(x=np.arange(len(gap)), y=np.cumsum(gap), mode="lines", line=dict(dash="dash"),
                                     name=f"cumulative ({gap.sum():+.3f} nats)",
                                     hovertemplate="t ≤ %{x}: %{y:.3g}<extra>cumulative</extra>"), row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="step t")
    fig.update_layout(**_LAYOUT, height=380, legend=dict(orientation="h", y=-0.25))
    return fig


def copies_figure(train, samples, is_copy) -> go.Figure:
    """Training points and samples, the samples coloured by whether they copy a training point (2-D: the plane;
    1-D: stacked histograms with the training points as ticks). ``train [M, D]``, ``samples [N, D]``, ``is_copy [N]``."""
    tr, xs, cp = _np(train), _np(samples), _np(is_copy).astype(bool)
    if tr.ndim != 2 or xs.ndim != 2 or tr.shape[1] != xs.shape[1] or cp.shape != (xs.shape[0],):
        raise ValueError(f"train [M, D], samples [N, D] and is_copy [N] must agree, got {tr.shape}, {xs.shape}, {cp.shape}")
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
        fig.update_yaxes(scaleanchor="x")
    fig.update_layout(**_LAYOUT, height=420, legend=dict(orientation="h", y=-0.15))
    return fig


def copy_rate_curve(n_train: Sequence[int], rates: Mapping[str, Sequence[float]], *, ratio: float) -> go.Figure:
    """Copy rate against the number of training points (log x), one line per ``rates`` entry."""
    if not rates:
        raise ValueError("rates is empty")
    fig = go.Figure()
    for label, r in rates.items():
        fig.add_trace(go.Scatter(x=list(n_train), y=list(r), mode="lines+markers", name=label,
                                 hovertemplate="n = %{x}: %{y:.1%}<extra>" + label + "</extra>"))
    fig.update_layout(**_LAYOUT, height=360, xaxis=dict(type="log", title="training points n"),
                      yaxis=dict(title=f"copy rate (nearest < {ratio:.2g} × second nearest)", range=[-0.03, 1.03]),
                      legend=dict(orientation="h", y=-0.25))
    return fig
