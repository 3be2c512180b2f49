"""Plotly building blocks the ``*_plotly`` renderers share: a density heatmap, arrows, points, and
:func:`animate`, the one place that turns per-frame traces into a figure with a play / pause button and a time
slider (playback runs in the browser as Plotly frames, so a host page is not re-run while it plays).

This module imports Plotly (the optional ``app`` extra); the figure families import it inside their
``*_plotly`` functions only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from toydiff.checks import check_int
from toydiff.toy.figures.base import PLOTLY_LAYOUT, SAMPLE_COLOR, to_numpy

__all__ = ["LOG_TICK_MODE", "log_ticks", "log_axis", "PLANE_X", "PLANE_Y", "plane_axes", "density_heatmap", "arrows",
           "points", "animate"]


#: the tick mode every log axis of the app uses (:func:`log_axis`); the figure checks look for it
LOG_TICK_MODE = "array"


def _tick_text(v: float) -> str:
    """A tick label as a full number (``0.002``, ``20``, ``5000``), or ``2e-5`` / ``3e6`` far from 1."""
    if 1e-3 <= v < 1e5:
        return f"{v:.6g}"
    m, e = f"{v:.0e}".split("e")
    return f"{m}e{int(e)}"


def log_ticks(values) -> tuple[list[float], list[str]]:
    """Readable ticks for a log axis over the positive finite ``values`` (any shape): 1-2-5 in every decade when
    the data span at most three decades, whole decades (every k-th past eight) otherwise, always at least two
    ticks inside the data's range, each labelled with its full number. Plotly's default labels the minor ticks of
    a short log axis with their bare leading digit ("9 10 2 3 4", where "2" means 20); these do not."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return [1.0], ["1"]
    lo, hi = float(v.min()), float(v.max())
    d0, d1 = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    span = max(d1 - d0, 1)
    mantissas = (1, 2, 5) if span <= 3 else (1,)
    every = max(1, int(np.ceil(span / 8)))
    ticks = [m * 10.0 ** d for d in range(d0, d1 + 1) if (d - d0) % every == 0 for m in mantissas]
    inside = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    if len(inside) < 2:  # a narrow range: 1-9 per decade, else four ticks at two significant digits
        ticks = [m * 10.0 ** d for d in range(d0, d1 + 1) for m in range(1, 10)]
        inside = [t for t in ticks if lo <= t <= hi]
        if len(inside) < 2:
            ticks = [float(f"{t:.2g}") for t in np.geomspace(lo, hi, 4)]
    ticks = sorted({float(f"{t:.12g}") for t in ticks})
    return ticks, [_tick_text(t) for t in ticks]


def log_axis(*values, **axis) -> dict:
    """The one way the app draws a log axis: ``dict(type="log", tickmode="array", tickvals, ticktext)`` from
    :func:`log_ticks` over every array in ``values`` (the data drawn on that axis), plus ``axis`` (a title …).
    Use as ``fig.update_xaxes(**log_axis(x))`` or ``xaxis=log_axis(x, title="n")``."""
    vals, text = log_ticks(np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in values]) if values
                           else [])
    return dict(type="log", tickmode=LOG_TICK_MODE, tickvals=vals, ticktext=text, **axis)


#: axes for points in a plane: equal units on x and y (``scaleanchor``), and the plot area shrunk to the data's
#: box (``constrain="domain"``) rather than the box widened with blank bands beside a heatmap
PLANE_X = dict(constrain="domain")
PLANE_Y = dict(scaleanchor="x", scaleratio=1, constrain="domain")


def plane_axes(fig, *, row: int | None = None, col: int | None = None, x_range=None, y_range=None) -> None:
    """Give a panel equal aspect (:data:`PLANE_X` / :data:`PLANE_Y`), anchored to its own x axis in a subplot grid;
    ``x_range`` / ``y_range`` fix the data box (e.g. a density grid's extent, so a heatmap fills the panel)."""
    if row is None:
        fig.update_xaxes(**PLANE_X, **({} if x_range is None else dict(range=list(x_range))))
        fig.update_yaxes(**PLANE_Y, **({} if y_range is None else dict(range=list(y_range))))
        return
    xref = fig.get_subplot(row, col).xaxis.plotly_name.replace("axis", "")
    fig.update_xaxes(**PLANE_X, **({} if x_range is None else dict(range=list(x_range))), row=row, col=col)
    fig.update_yaxes(**dict(PLANE_Y, scaleanchor=xref), **({} if y_range is None else dict(range=list(y_range))),
                     row=row, col=col)


def density_heatmap(xs, ys, p, *, name: str = "exact p_t(x)", showscale: bool = False) -> go.Heatmap:
    """A faint blue heatmap of a 2-D density grid (from :func:`density_grid`), hover showing the density."""
    return go.Heatmap(x=xs, y=ys, z=np.asarray(p, dtype=np.float32), colorscale="Blues", showscale=showscale, name=name, zsmooth="best",
                      hovertemplate="x=%{x:.2f}<br>y=%{y:.2f}<br>density %{z:.3g}<extra>" + name + "</extra>")


def arrows(origins, vectors, *, scale: float = 1.0, name: str, color: str, width: float = 1.5) -> go.Scatter:
    """Arrows from ``origins [N, 2]`` along ``scale · vectors [N, 2]`` as one line trace (segments split by gaps),
    with a small head at each tip; one trace, so it can be swapped frame by frame."""
    o, v = to_numpy(origins), to_numpy(vectors) * scale
    tip = o + v
    back = -0.25 * v
    side = 0.5 * np.stack([-back[:, 1], back[:, 0]], 1)
    nan = np.full(len(o), np.nan)
    seg = [o[:, 0], tip[:, 0], nan, tip[:, 0] + back[:, 0] + side[:, 0], tip[:, 0],
           tip[:, 0] + back[:, 0] - side[:, 0], nan]
    segy = [o[:, 1], tip[:, 1], nan, tip[:, 1] + back[:, 1] + side[:, 1], tip[:, 1],
            tip[:, 1] + back[:, 1] - side[:, 1], nan]
    return go.Scatter(x=np.stack(seg, 1).ravel().astype(np.float32), y=np.stack(segy, 1).ravel().astype(np.float32),
                      mode="lines", name=name,
                      line=dict(color=color, width=width), hoverinfo="skip")


def points(x, *, name: str, color: str = SAMPLE_COLOR, size: float = 3, opacity: float = 0.5,
           y=None, symbol: str = "circle", gl: bool = False) -> go.Scatter | go.Scattergl:
    """A scatter of ``[N, 2]`` points (or of ``[N, 1]`` points at heights ``y``).

    SVG by default (quicker to start in a browser without a GPU); ``gl=True`` for WebGL, which redraws
    thousands of points faster frame after frame (animations).
    """
    p = to_numpy(x).reshape(len(x), -1)
    yy = p[:, 1] if p.shape[1] > 1 else (np.zeros(len(p)) if y is None else to_numpy(y))
    p, yy = p.astype(np.float32), np.asarray(yy, dtype=np.float32)  # half the bytes sent to the browser
    return (go.Scattergl if gl else go.Scatter)(x=p[:, 0], y=yy, mode="markers", name=name, opacity=opacity,
                                                marker=dict(size=size, color=color, symbol=symbol),
                                                hovertemplate="(%{x:.3f}, %{y:.3f})<extra>" + name + "</extra>")


def animate(frames: Sequence[Sequence], labels: Sequence[str], *, static: Sequence = (), title: str = "",
            duration_ms: int = 100, slider_prefix: str = "", **layout) -> go.Figure:
    """A figure that plays ``frames`` in the browser: a play / pause button and a slider over ``labels``.

    Args:
        frames: one list of traces per frame, the same number and kinds of traces in each (frame i replaces
            trace j of the figure by ``frames[i][j]``).
        labels: the slider label of each frame.
        static: traces drawn under every frame and never replaced (after the animated ones in ``fig.data``).
        duration_ms: time per frame while playing.
        layout: passed to ``fig.update_layout`` (axis ranges should be fixed so frames do not rescale).
    """
    if not frames or len(frames) != len(labels):
        raise ValueError(f"frames and labels must be non-empty and of equal length, got {len(frames)} and {len(labels)}")
    n = len(frames[0])
    if any(len(f) != n for f in frames):
        raise ValueError("every frame must hold the same number of traces")
    duration_ms = check_int(duration_ms, "duration_ms", min=1)
    names = [str(i) for i in range(len(frames))]
    # built unvalidated: each trace was validated when made, and re-validating 50 frames costs seconds
    fig = go.Figure(dict(data=list(frames[0]) + list(static),
                         frames=[dict(data=list(f), name=nm, traces=list(range(n))) for f, nm in zip(frames, names)]),
                    _validate=False)
    play = dict(frame=dict(duration=duration_ms, redraw=True), fromcurrent=True, transition=dict(duration=0))
    pause = dict(frame=dict(duration=0, redraw=False), mode="immediate", transition=dict(duration=0))
    # the slider ends 6 % short of the right edge and the margin is wider, so its last label is not clipped
    # the template as an object: the figure is unvalidated, so a template name would stay a string, which
    # Figure.to_html (the page's HTML download) cannot read
    fig.update_layout(
        **dict(PLOTLY_LAYOUT, margin=dict(PLOTLY_LAYOUT["margin"], r=60), template=pio.templates[PLOTLY_LAYOUT["template"]]),
        title=title,
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.08, xanchor="left", yanchor="top",
                          showactive=False, pad=dict(r=10, t=10),
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="⏸ Pause", method="animate", args=[[None], pause])])],
        sliders=[dict(active=0, x=0.16, len=0.78, y=-0.04, pad=dict(r=20, t=30), yanchor="top", currentvalue=dict(prefix=slider_prefix, xanchor="right"),
                      steps=[dict(label=lab, method="animate", args=[[nm], dict(pause, frame=dict(duration=0, redraw=True))])
                             for lab, nm in zip(labels, names)])])
    fig.update_layout(**layout)
    return fig
