"""Draw your own 2-D data: click (or box / lasso) a grid of faint markers to add points; the points become a
Gaussian KDE, itself a Gaussian mixture (:func:`toydiff.toy.drawn.kde_mixture`), so the drawn data set has an
exact ε*, a loss floor and exact metrics like the built-in ones."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from apps.charts import csv_bytes, downloads, show_chart
from apps.pages.toy.data import DRAWN_KEY, WIDTH_KEY, WIDTHS, drawn_points, drawn_width, kernel_std_of
from toydiff.toy.drawn import kde_mixture
from toydiff.toy.figures import base as figure_base, plotly_kit

__all__ = ["CANVAS_LIMIT", "canvas_figure", "parse_points", "draw_section"]

CANVAS_LIMIT = 4.0
_AXIS = np.linspace(-CANVAS_LIMIT, CANVAS_LIMIT, 33)
_GX, _GY = (a.ravel() for a in np.meshgrid(_AXIS, _AXIS))


@st.cache_data(max_entries=16, show_spinner=False)
def _kde_grid(points: tuple, width) -> tuple | None:
    try:
        mix = kde_mixture(np.array(points), kernel_std=kernel_std_of(points, width))
    except ValueError:
        return None
    lo, hi = np.full(2, -CANVAS_LIMIT), np.full(2, CANVAS_LIMIT)
    return figure_base.density_grid(mix, 1.0, lo, hi, 80)


def canvas_figure(points: tuple, width="auto") -> go.Figure:
    """The canvas: clickable grid markers (trace 0), the drawn points and, from 3 points on, their KDE with the
    kernel ``width`` (one of :data:`apps.pages.toy.data.WIDTHS`)."""
    fig = go.Figure()
    fig.add_scatter(x=_GX, y=_GY, mode="markers", name="click to add", marker=dict(size=9, color="rgba(0,0,0,0.07)"),
                    hovertemplate="add (%{x:.2f}, %{y:.2f})<extra></extra>")
    grid = _kde_grid(points, width) if len(points) > 2 else None
    if grid is not None:
        # no hover on the density: a click must land on the marker under it, not on a heatmap cell
        fig.add_trace(plotly_kit.density_heatmap(*grid, name="KDE of your points").update(hoverinfo="skip",
                                                                                        hovertemplate=None))
    if points:
        p = np.array(points)
        fig.add_scatter(x=p[:, 0], y=p[:, 1], mode="markers", name=f"your {len(p)} points",
                        marker=dict(size=8, color=figure_base.SAMPLE_COLOR), hoverinfo="skip")
    lim = [-CANVAS_LIMIT - 0.3, CANVAS_LIMIT + 0.3]
    fig.update_layout(template="plotly_white", height=460, margin=dict(l=30, r=10, t=30, b=30),
                      xaxis=dict(range=lim, fixedrange=True),
                      yaxis=dict(range=lim, scaleanchor="x", fixedrange=True), showlegend=True,
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return fig


def _take_selection(key: str) -> None:
    """Add the canvas markers of a new selection (read before the chart is drawn, so it shows them at once)."""
    try:
        sel = st.session_state[key]["selection"]["points"]
    except (KeyError, TypeError):
        sel = []
    picked = tuple((round(float(p["x"]), 4), round(float(p["y"]), 4)) for p in sel if p.get("curve_number", 0) == 0)
    if picked and picked != st.session_state.get("toy_canvas_last"):
        st.session_state["toy_canvas_last"] = picked
        drawn_points().extend([list(p) for p in picked])
        st.session_state.setdefault("toy_canvas_strokes", []).append(len(picked))


def parse_points(text: str) -> list[list[float]]:
    """``x, y`` per line (commas or spaces) -> ``[[x, y], ...]``; ValueError naming the bad line."""
    out = []
    for i, line in enumerate(text.strip().splitlines(), 1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        try:
            xy = [float(v) for v in parts]
        except ValueError:
            raise ValueError(f"points: line {i} ({line.strip()!r}) is not two numbers") from None
        if len(xy) != 2 or not np.isfinite(xy).all():
            raise ValueError(f"points: line {i} ({line.strip()!r}) must hold two finite numbers x, y")
        out.append(xy)
    return out


def _typed_points() -> None:
    with st.form("toy_canvas_typed", border=False):
        text = st.text_area("…or type points, one `x, y` per line", key="toy_canvas_text", height=90)
        if st.form_submit_button("Add typed points", key="toy_canvas_add"):
            try:
                new = parse_points(text)
            except ValueError as e:
                st.error(str(e))
                return
            drawn_points().extend(new)
            st.session_state.setdefault("toy_canvas_strokes", []).append(len(new))
            st.rerun()


def _reset_canvas(keep: int) -> None:
    st.session_state[DRAWN_KEY] = drawn_points()[:keep]
    st.session_state["toy_canvas_gen"] = st.session_state.get("toy_canvas_gen", 0) + 1  # a fresh chart: no selection
    st.session_state["toy_canvas_last"] = None


def draw_section() -> None:
    """The canvas with Undo / Clear, the point count and a CSV of the points."""
    key = f"toy_canvas_{st.session_state.get('toy_canvas_gen', 0)}"
    _take_selection(key)
    pts = tuple(tuple(p) for p in drawn_points())
    st.caption("Click the grey dots to add points; the box / lasso tools (top right of the canvas) add a blob.")
    st.session_state.setdefault(WIDTH_KEY, "auto")
    st.select_slider("Kernel width (std of each point's Gaussian, canvas units)", WIDTHS, key=WIDTH_KEY,
                     help="auto: a quarter of the points' median nearest-neighbour distance (at least the grid "
                          "spacing), so separate clicks stay separate; Scott: scipy's rule, which scales the kernel "
                          "with the points' whole spread and merges a few far-apart clicks into one blob")
    if len(pts) > 2 and drawn_width() != "Scott":
        st.caption(f"Kernel std in use: {kernel_std_of(pts, drawn_width()):.3g}.")
    show_chart(canvas_figure(pts, drawn_width()), key=key, on_select="rerun", selection_mode=("points", "box", "lasso"))
    c1, c2, c3 = st.columns(3)
    strokes = st.session_state.setdefault("toy_canvas_strokes", [])
    if c1.button("Undo last", key="toy_canvas_undo", disabled=not strokes):
        _reset_canvas(len(pts) - strokes.pop())
        st.rerun()
    if c2.button("Clear", key="toy_canvas_clear", disabled=not pts):
        strokes.clear()
        _reset_canvas(0)
        st.rerun()
    c3.metric("Points drawn", len(pts))
    _typed_points()
    if len(pts) < 3:
        st.info("Add at least 3 points to make a data set" + (" (not all on one line, for Scott's rule)."
                if drawn_width() == "Scott" else "."), icon="✏️")
    else:
        downloads("drawn_points", key="toy_canvas_dl", csv=csv_bytes(np.array(pts), ["x", "y"]))
