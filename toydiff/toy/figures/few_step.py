"""Few-step methods against the exact flow map as figures (:mod:`toydiff.evaluation.few_step`): the RMS error of
one jump x_t → 0 against t, and a cloud of x_1 moved in one jump by each method, each point coloured by its
distance to the exact map Φ_{1→0}(x_1) on one colour scale shared by every panel.

    errors = few_step.jump_error_curves(methods, gm, interp, ts)        # {label: [T]}
    fig = jump_error_mpl(ts, errors)                                     # PNG
    fig = one_jump_plotly(x_1, {"Euler": x_e, ...}, exact)               # the app
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from toydiff.toy.figures.base import PLOTLY_LAYOUT_LABS, to_numpy

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["jump_error_data", "jump_error_mpl", "jump_error_plotly", "one_jump_data", "one_jump_mpl",
           "one_jump_plotly"]

EXACT = "exact map"
STYLES, MARKERS = ("-", "--", ":", "-."), ("o", "s", "^", "x", "D", "v")
COLORSCALE, CMAP = "Viridis", "viridis"


def jump_error_data(ts: Sequence[float], errors: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, dict]:
    """``(ts [T], {label: errors [T]})`` checked: times in (0, 1], one finite non-negative error per time.
    Curves that are 0 at every t (the exact map) are kept; the renderers name them instead of drawing them on
    a log axis."""
    t = to_numpy(ts).ravel()
    if t.size == 0 or not ((t > 0) & (t <= 1)).all():
        raise ValueError(f"ts must be non-empty times in (0, 1], got {t}")
    if not errors:
        raise ValueError("errors is empty")
    out = {}
    for label, e in errors.items():
        e = to_numpy(e).ravel()
        if e.shape != t.shape or not (np.isfinite(e) & (e >= 0)).all():
            raise ValueError(f"errors[{label!r}] must hold {t.size} finite non-negative values, got {e}")
        out[label] = e
    return t, out


def _zero(e: np.ndarray) -> bool:
    return bool((e <= 0).all())


def jump_error_mpl(ts, errors: Mapping[str, Sequence[float]], *, title: str = "One jump x_t → 0 against the exact map"
                   ) -> Figure:
    """RMS error (data std) of one jump from t to 0 against t, log y; all-zero curves listed in the legend title."""
    t, errs = jump_error_data(ts, errors)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    for i, (label, e) in enumerate(errs.items()):
        if not _zero(e):  # coinciding curves (Euler = DPM++ at 1-2 NFE on a linear path) stay told apart
            keep = e > 0
            ax.plot(t[keep], e[keep], ls=STYLES[i % len(STYLES)], marker=MARKERS[i % len(MARKERS)], ms=4,
                    mfc="none" if i % 2 else None, label=label)
    zeros = [k for k, e in errs.items() if _zero(e)]
    ax.set(xlabel="t (start of the jump; 1 = pure noise)", ylabel="RMS error to Φ(x_t, t→0) / data std",
           yscale="log", xlim=(0, 1.02))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, title=("0 at every t: " + ", ".join(zeros)) if zeros else None, title_fontsize=8)
    return fig


def jump_error_plotly(ts, errors: Mapping[str, Sequence[float]]) -> go.Figure:
    """:func:`jump_error_mpl` for the app (log y; all-zero curves named in the title)."""
    import plotly.graph_objects as go

    from toydiff.toy.figures.plotly_kit import log_axis

    t, errs = jump_error_data(ts, errors)
    fig = go.Figure()
    for label, e in errs.items():
        if not _zero(e):
            keep = e > 0
            fig.add_trace(go.Scatter(x=t[keep], y=e[keep], mode="lines+markers", name=label,
                                     hovertemplate="t = %{x:.3g}: %{y:.3g}<extra>" + label + "</extra>"))
    zeros = [k for k, e in errs.items() if _zero(e)]
    title = "RMS error of one jump x_t → 0 (data std)" + (f"; 0 at every t: {', '.join(zeros)}" if zeros else "")
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=380, title=dict(text=title, font=dict(size=13)),
                      xaxis=dict(title="t (start of the jump; 1 = pure noise)", range=[0, 1.02]),
                      yaxis=log_axis(*[e[e > 0] for e in errs.values()], title="RMS error / data std"),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def one_jump_data(x_1, jumps: Mapping[str, object], exact, references: Mapping[str, object] | None = None) -> dict:
    """``{"x_1" [N, D], "points" {label: [N, D]}, "error" {label: [N]}, "vmax"}``: each method's one-jump end points,
    their Euclidean distance to ``exact`` ``[N, D]`` (Φ_{1→0}(x_1)) or to ``references[label]`` (a method judged
    against its own exact map, e.g. a checkpoint's oracle in its own normalisation), the exact map first (error 0),
    and the shared colour-scale top (the 98th percentile of all errors, so one outlier does not wash it out)."""
    x1, ex = to_numpy(x_1), to_numpy(exact)
    if x1.ndim != 2 or ex.shape != x1.shape or x1.shape[1] not in (1, 2):
        raise ValueError(f"x_1 and exact must be [N, D] with D in (1, 2) and agree, got {x1.shape}, {ex.shape}")
    points, error = {EXACT: ex}, {EXACT: np.zeros(len(ex))}
    for label, x in jumps.items():
        x = to_numpy(x)
        if x.shape != ex.shape:
            raise ValueError(f"jumps[{label!r}] must have shape {ex.shape}, got {x.shape}")
        ref = ex if references is None or label not in references else to_numpy(references[label])
        points[label], error[label] = x, np.linalg.norm(x - ref.reshape(ex.shape), axis=1)
    allerr = np.concatenate(list(error.values()))
    vmax = float(np.quantile(allerr, 0.98)) if allerr.max() > 0 else 1.0
    return {"x_1": x1, "points": points, "error": error, "vmax": max(vmax, 1e-12)}


def _grid(k: int) -> tuple[int, int]:
    cols = k if k <= 4 else 3  # up to four panels in one row
    return math.ceil(k / cols), cols


def one_jump_mpl(x_1, jumps: Mapping[str, object], exact, references: Mapping[str, object] | None = None, *,
                 title: str = "x_1 moved in one jump") -> Figure:
    """One panel per method (and the exact map): 2-D end points, or in 1-D x_1 against its end point (the map),
    coloured by the distance to Φ_{1→0}(x_1) on a shared scale."""
    d = one_jump_data(x_1, jumps, exact, references)
    rows, cols = _grid(len(d["points"]))
    plane = d["x_1"].shape[1] == 2
    # shared axes: a solver's one step from pure noise collapses to the mean, which must read as a dot, not a cloud
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.8 * rows), constrained_layout=True, squeeze=False,
                             sharex=True, sharey=True)
    for ax, (label, x) in zip(axes.flat, d["points"].items()):
        xy = (x[:, 0], x[:, 1]) if plane else (d["x_1"][:, 0], x[:, 0])
        sc = ax.scatter(*xy, c=d["error"][label], s=5, cmap=CMAP, vmin=0, vmax=d["vmax"])
        ax.set_title(f"{label}\nRMS ‖x̂₀ − Φ‖ {np.sqrt(np.mean(d['error'][label] ** 2)):.3g}", fontsize=9)
        if plane:
            ax.set(aspect="equal", xlabel="x", ylabel="y")
        else:
            ax.set(xlabel="x_1", ylabel="x_0 after the jump")
    used = list(axes.flat)[:len(d["points"])]
    for ax in list(axes.flat)[len(used):]:
        ax.remove()
    fig.colorbar(sc, ax=used, label="‖x̂₀ − Φ(x₁)‖", shrink=0.8)
    fig.suptitle(title, fontsize=11)
    return fig


def one_jump_plotly(x_1, jumps: Mapping[str, object], exact, references: Mapping[str, object] | None = None
                    ) -> go.Figure:
    """:func:`one_jump_mpl` for the app: one panel per method, one shared colour bar."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from toydiff.toy.figures.plotly_kit import plane_axes

    d = one_jump_data(x_1, jumps, exact, references)
    rows, cols = _grid(len(d["points"]))
    plane = d["x_1"].shape[1] == 2
    titles = [f"{k}<br>RMS ‖x̂₀ − Φ‖ {np.sqrt(np.mean(e ** 2)):.3g}" for k, e in d["error"].items()]
    fig = make_subplots(rows, cols, subplot_titles=titles, horizontal_spacing=0.06, vertical_spacing=0.12,
                        shared_xaxes="all", shared_yaxes="all")
    for i, (label, x) in enumerate(d["points"].items()):
        r, c = divmod(i, cols)
        xy = (x[:, 0], x[:, 1]) if plane else (d["x_1"][:, 0], x[:, 0])
        fig.add_trace(go.Scattergl(x=xy[0], y=xy[1], mode="markers", name=label, showlegend=False,
                                   marker=dict(size=4, color=d["error"][label], colorscale=COLORSCALE, cmin=0,
                                               cmax=d["vmax"], showscale=i == 0,
                                               colorbar=dict(title="‖x̂₀ − Φ‖", len=0.8)),
                                   hovertemplate="error %{marker.color:.3g}<extra>" + label + "</extra>"),
                      row=r + 1, col=c + 1)
        if plane:
            plane_axes(fig, row=r + 1, col=c + 1)
        else:
            fig.update_xaxes(title_text="x_1", row=r + 1, col=c + 1)
            fig.update_yaxes(title_text="x_0 after the jump", row=r + 1, col=c + 1)
    fig.update_annotations(font_size=11)
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=330 * rows + 40)
    return fig
