"""Interactive (Plotly) figures of the Schedules, Sampler lab and MNIST pages: hover reads the numbers off, zoom
looks closer; matplotlib (``toydiff.toy.plots``, ``image_track.plots``) stays for the exported figures.

Every function returns a ``plotly.graph_objects.Figure``; the page shows it with ``st.plotly_chart``. The MNIST
animation carries its frames, so playing it runs in the browser without a rerun of the page.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from toydiff.checks import check_int
from toydiff.embeddings import sinusoidal_embedding

__all__ = ["convergence_figure", "schedule_figure", "embedding_figure", "denoising_animation"]


def convergence_figure(curves: dict[str, dict], floor: tuple[float, float] | None, *, metric: str,
                       xlabel: str) -> go.Figure:
    """Distance to the truth against cost, log-log, one line per sampler with ± one standard deviation over
    seeds as error bars, and the two-true-sets floor as a line inside its own ± band.

    Args:
        curves: ``{label: {"x": [...], "mean": [...], "std": [...], "steps": [...]}}``.
        floor: ``(mean, std)`` of the distance between two independent true sets, or ``None``.
    """
    if not curves:
        raise ValueError("curves is empty")
    fig = go.Figure()
    xs_all = [x for c in curves.values() for x in c["x"]]
    if floor is not None and xs_all:
        lo, hi = min(xs_all) / 1.3, max(xs_all) * 1.3
        m, s = floor
        fig.add_trace(go.Scatter(x=[lo, hi, hi, lo], y=[m + s, m + s, max(m - s, m * 0.05), max(m - s, m * 0.05)],
                                 fill="toself", fillcolor="rgba(0,0,0,0.10)", line={"width": 0}, hoverinfo="skip", mode="lines",
                                 name="floor ± 1 sd", showlegend=True))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[m, m], mode="lines", line={"color": "black", "dash": "dash"},
                                 name=f"floor: two true sets ({m:.3g})",
                                 hovertemplate=f"two true sets: {m:.3g} ± {s:.2g}<extra></extra>"))
    for label, c in curves.items():
        dash = "dot" if label.startswith("flow") else "solid"
        fig.add_trace(go.Scatter(
            x=c["x"], y=c["mean"], error_y={"type": "data", "array": c["std"], "visible": True, "thickness": 1},
            mode="lines+markers", name=label, line={"dash": dash}, customdata=np.c_[c["steps"], c["std"]],
            hovertemplate=(f"<b>{label}</b><br>{xlabel}: %{{x}}<br>steps: %{{customdata[0]}}<br>"
                           f"{metric}: %{{y:.3g}} ± %{{customdata[1]:.2g}}<extra></extra>")))
    fig.update_layout(xaxis={"type": "log", "title": xlabel}, yaxis={"type": "log", "title": f"{metric} to the truth"},
                      height=460, margin={"t": 30, "b": 40}, legend={"font": {"size": 11}}, hovermode="closest")
    return fig


def schedule_figure(series: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> go.Figure:
    """β_t, ᾱ_t and SNR_t (log) against t / T for ``(label, betas [T], alpha_bars [T], snr [T])`` tuples,
    one legend below the three panels (so it covers none of them)."""
    if not series:
        raise ValueError("series is empty")
    fig = make_subplots(rows=1, cols=3, subplot_titles=("β_t (noise added per step, log)", "ᾱ_t (signal kept)",
                                                        "SNR_t = ᾱ / (1 − ᾱ)"))
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    for i, (label, betas, abar, snr) in enumerate(series):
        T = len(betas)
        u = np.arange(T) / T
        t = np.arange(T)
        for col, y in enumerate((betas, abar, snr), start=1):
            fig.add_trace(go.Scatter(x=u, y=y, customdata=t, mode="lines", name=label, legendgroup=label,
                                     showlegend=col == 1, line={"color": palette[i % len(palette)]},
                                     hovertemplate="t = %{customdata}<br>%{y:.4g}<extra>" + label + "</extra>"),
                          row=1, col=col)
    fig.update_yaxes(type="log", row=1, col=1)  # β spans 1e-4 (linear start) to ~1 (cosine's clipped end)
    fig.update_yaxes(type="log", row=1, col=3)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_xaxes(title_text="t / T")
    fig.update_layout(height=360, margin={"t": 40, "b": 10}, hovermode="x unified",
                      legend={"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0})
    return fig


def embedding_figure(dim: int, T: int, *, t_max: int | None = None) -> go.Figure:
    """The sinusoidal time embedding (Vaswani et al. 2017; Ho et al. 2020) of t = 0 … ``t_max`` (default
    min(T, 200)): a heatmap of channel × t and four channels as lines. Over all of a long T the fast channels
    alias into a solid block; the first ``t_max`` steps show every frequency resolved."""
    dim, T = check_int(dim, "dim", min=2), check_int(T, "T", min=2)
    t_max = min(T, 200) if t_max is None else check_int(t_max, "t_max", min=2)
    import torch

    t = np.arange(t_max)
    emb = sinusoidal_embedding(torch.arange(t_max), dim).numpy()  # [t_max, dim]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.12,
                        subplot_titles=(f"channels × t (t < {t_max}): sin half, then cos half", "fast to slow"))
    fig.add_trace(go.Heatmap(z=emb.T, x=t, y=np.arange(dim), colorscale="RdBu_r", zmin=-1, zmax=1,
                             colorbar={"x": 0.54, "len": 0.9, "thickness": 12},
                             hovertemplate="t = %{x}<br>channel %{y}<br>value %{z:.3f}<extra></extra>"), row=1, col=1)
    for c in sorted({0, dim // 8, dim // 4, dim // 2 - 1}):
        fig.add_trace(go.Scatter(x=t, y=emb[:, c], mode="lines", name=f"channel {c}",
                                 hovertemplate="t = %{x}: %{y:.3f}<extra>channel " + str(c) + "</extra>"), row=1, col=2)
    fig.update_xaxes(title_text="t")
    fig.update_yaxes(title_text="embedding channel", row=1, col=1)
    fig.update_layout(height=380, margin={"t": 40, "b": 10}, legend={"orientation": "h", "y": -0.2, "x": 0.62})
    return fig


def _heat(z: np.ndarray) -> go.Heatmap:
    return go.Heatmap(z=z[::-1], zmin=-1, zmax=1, colorscale="gray", showscale=False,
                      hovertemplate="pixel value %{z:.2f}<extra></extra>")


def denoising_animation(x_t: np.ndarray, x0_hat: np.ndarray, ts: Sequence[int], *, frame_ms: int = 120) -> go.Figure:
    """x_t beside the model's x̂_0 for each recorded step, as client-side animation frames with play / pause and
    a time slider. ``x_t`` and ``x0_hat`` are ``[F, H, W]`` in [-1, 1]; ``ts`` the F timesteps."""
    x_t, x0_hat = np.asarray(x_t, dtype=float), np.asarray(x0_hat, dtype=float)
    if x_t.ndim != 3 or x_t.shape != x0_hat.shape or len(ts) != x_t.shape[0]:
        raise ValueError(f"x_t {x_t.shape} and x0_hat {x0_hat.shape} must both be [F, H, W] with F = len(ts) "
                         f"({len(ts)})")
    names = [f"step {i + 1}: t = {t}" for i, t in enumerate(ts)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("x_t (what the sampler holds)", "x̂_0 (the model's guess)"),
                        horizontal_spacing=0.05)
    fig.add_trace(_heat(x_t[0]), row=1, col=1)
    fig.add_trace(_heat(x0_hat[0]), row=1, col=2)
    fig.frames = [go.Frame(data=[_heat(a), _heat(b)], traces=[0, 1], name=nm) for a, b, nm in zip(x_t, x0_hat, names)]
    anim = {"frame": {"duration": frame_ms, "redraw": True}, "transition": {"duration": 0}, "mode": "immediate"}
    fig.update_layout(
        height=380, width=640, margin={"t": 40, "b": 10, "l": 10, "r": 10},
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0.0, "y": -0.05, "xanchor": "left",
                      "buttons": [{"label": "▶ Play", "method": "animate", "args": [None, {**anim, "fromcurrent": True}]},
                                  {"label": "❚❚ Pause", "method": "animate",
                                   "args": [[None], {**anim, "frame": {"duration": 0, "redraw": False}}]}]}],
        sliders=[{"active": 0, "x": 0.22, "len": 0.78, "y": -0.02, "currentvalue": {"prefix": ""},
                  "steps": [{"label": str(t), "method": "animate",
                             "args": [[nm], {**anim, "frame": {"duration": 0, "redraw": True}}]}
                            for t, nm in zip(ts, names)]}])
    for ax in ("xaxis", "xaxis2", "yaxis", "yaxis2"):
        fig.layout[ax].update(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    return fig
