"""Checks a drawn figure must pass: text inside the canvas, no empty panel, equal aspect for points in a plane,
readable log ticks. Each returns a list of problems (empty when the figure passes), so a test can assert on
it and a bench can print it.

    problems = mpl_problems(fig, plane=True)          # matplotlib: titles / ticks inside, no empty axes, aspect 1
    problems = plotly_problems(fig, plane=True)       # Plotly: log axes use log_axis, planes have scaleanchor
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import BlendedGenericTransform

__all__ = ["mpl_problems", "plotly_problems"]


def _has_data(ax: Axes) -> bool:
    """Whether ``ax`` draws data: a line in data coordinates with a finite point, a collection with offsets or
    paths, a patch (bars), or an image. Reference lines (``axhline``: half in axes coordinates) do not count."""
    for ln in ax.lines:
        x, y = (np.asarray(v, dtype=float) for v in ln.get_data())
        blended = isinstance(ln.get_transform(), BlendedGenericTransform)  # axhline / axvline: a reference
        if not blended and np.isfinite(x).any() and np.isfinite(y).any():
            return True
    if any(len(c.get_offsets()) or len(c.get_paths()) for c in ax.collections):
        return True
    # bars and histograms count; axhspan / axvspan (half in axes coordinates) are references, like axhline
    return bool(ax.images) or any(not isinstance(p.get_data_transform(), BlendedGenericTransform) for p in ax.patches)


def _drawn_ticks(axis) -> list:
    """The tick labels ``axis`` draws: those at a location inside its view interval (matplotlib keeps a few
    beyond it that it does not draw)."""
    lo, hi = sorted(axis.get_view_interval())
    eps = 1e-9 * max(abs(lo), abs(hi), 1e-300)
    return [t.label1 for t in axis.get_major_ticks() if t.label1.get_visible() and lo - eps <= t.get_loc() <= hi + eps]


def _outside(box, fig_box, tol: float = 1.0) -> bool:
    return (box.x0 < fig_box.x0 - tol or box.y0 < fig_box.y0 - tol or box.x1 > fig_box.x1 + tol
            or box.y1 > fig_box.y1 + tol)


def mpl_problems(fig: Figure, *, plane: bool = False) -> list[str]:
    """What is wrong with a matplotlib figure, after drawing it: a title, suptitle or tick label reaching past the
    canvas; a visible axes (not a colorbar) with no data; with ``plane=True`` (the data are points in a plane) a
    scatter panel whose aspect is not 1."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    canvas = fig.bbox
    out = []
    texts = [("suptitle", fig._suptitle), ("supxlabel", fig._supxlabel)]
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        texts += [(f"axes {i} title", t) for t in (ax.title, ax._left_title, ax._right_title)]
        texts += [(f"axes {i} x tick {t.get_text()!r}", t) for t in _drawn_ticks(ax.xaxis)]
        texts += [(f"axes {i} y tick {t.get_text()!r}", t) for t in _drawn_ticks(ax.yaxis)]
        texts += [(f"axes {i} {w} label", lab) for w, lab in (("x", ax.xaxis.label), ("y", ax.yaxis.label))]
        is_cbar = hasattr(ax, "_colorbar") or ax.get_label() == "<colorbar>"
        if not is_cbar and not _has_data(ax):
            out.append(f"axes {i} ({ax.get_title()!r}) is empty")
        if plane and not is_cbar and ax.collections and any(len(c.get_offsets()) > 1 for c in ax.collections) \
                and ax.get_aspect() not in (1, 1.0, "equal"):
            out.append(f"axes {i} ({ax.get_title()!r}) draws points in a plane at aspect {ax.get_aspect()!r}, not 1")
    for name, t in texts:
        if t is None or not t.get_visible() or not t.get_text():
            continue
        if _outside(t.get_window_extent(r), canvas):
            out.append(f"{name} ({t.get_text()[:40]!r}) reaches outside the canvas")
    return out


def plotly_problems(fig, *, plane: bool = False) -> list[str]:
    """What is wrong with a Plotly figure: a log axis without the readable ticks of
    :func:`~toydiff.toy.figures.plotly_kit.log_axis` (Plotly's default labels minor ticks with a bare digit), or
    with ``plane=True`` a y axis of a scatter / heatmap panel without ``scaleanchor`` (unequal aspect) or without
    ``constrain="domain"`` (blank bands beside the data)."""
    from toydiff.toy.figures.plotly_kit import LOG_TICK_MODE

    out = []
    lay = fig.layout
    axes = [k for k in lay.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]
    for k in axes:
        a = lay[k]
        if a.type == "log" and (a.tickmode != LOG_TICK_MODE or not a.tickvals or not a.ticktext):
            out.append(f"{k} is a log axis without log_axis ticks (tickmode {a.tickmode!r})")
    if plane:
        panels = {(getattr(tr, "xaxis", None) or "x", getattr(tr, "yaxis", None) or "y") for tr in fig.data
                  if tr.type in ("scatter", "scattergl", "heatmap")}
        for xa, ya in sorted(panels):
            y = lay["yaxis" + ya[1:]]
            x = lay["xaxis" + xa[1:]]
            if y.scaleanchor != xa:
                out.append(f"{'yaxis' + ya[1:]} has scaleanchor {y.scaleanchor!r}, not {xa!r}: unequal aspect")
            if y.constrain != "domain" or x.constrain != "domain":
                out.append(f"{xa}/{ya} are not constrain='domain': blank bands beside the data")
    return out
