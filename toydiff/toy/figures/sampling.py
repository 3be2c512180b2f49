"""How fast samplers reach the truth: distance to the truth against cost (steps or network evaluations),
log-log, one line per sampler, with the two-sample noise floor.

    curves = {"ddim": {"x": [5, 10], "mean": [0.3, 0.1], "std": [0.02, 0.01], "steps": [5, 10]}}
    fig = convergence_mpl(curves, (0.05, 0.01), metric="W1")       # PNG (means, the floor's mean)
    fig = convergence_plotly(curves, (0.05, 0.01), metric="W1")    # the app (± sd bars, the floor's band)

A curve may also be given as ``(xs, distances)`` and the floor as one number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["Curve", "convergence_data", "convergence_note", "convergence_mpl", "convergence_plotly"]


@dataclass
class Curve:
    """One sampler's line: cost ``x [K]``, mean distance ``mean [K]``, its sd over seeds ``std [K]`` (None if
    unknown) and the sampler steps ``steps [K]`` behind each x."""

    x: list
    mean: list
    std: list | None
    steps: list


def convergence_data(curves: Mapping[str, dict | tuple], floor=None) -> tuple[dict[str, Curve], tuple | None]:
    """``({label: Curve}, floor (mean, sd) or None)`` from ``{label: {"x", "mean", "std"?, "steps"?}}`` or
    ``{label: (xs, distances)}`` and a floor given as ``(mean, sd)`` or one number (sd 0)."""
    if not curves:
        raise ValueError("give at least one curve")
    out = {}
    for name, c in curves.items():
        x, mean = (list(c["x"]), list(c["mean"])) if isinstance(c, Mapping) else (list(c[0]), list(c[1]))
        if len(x) != len(mean):
            raise ValueError(f"curve {name!r}: {len(x)} x values but {len(mean)} distances")
        std = list(c["std"]) if isinstance(c, Mapping) and c.get("std") is not None else None
        steps = list(c["steps"]) if isinstance(c, Mapping) and c.get("steps") is not None else x
        out[name] = Curve(x, mean, std, steps)
    if floor is not None and np.ndim(floor) == 0:
        floor = (float(floor), 0.0)
    return out, (None if floor is None else tuple(floor))


def convergence_note(curves: Mapping[str, dict | tuple], floor, *, stochastic: Sequence[str] = ("ddpm",),
                     level: float = 0.15) -> str:
    """What a convergence figure shows, in words computed from its data: each curve's distance at its largest
    budget as a multiple of the floor, and which curves have levelled off (changed by less than ``level`` over
    their last two budgets). Curves not named in ``stochastic`` are called ODE samplers (deterministic given x_T).
    Says only what the numbers show; it does not guess a cause."""
    lines, fl = convergence_data(curves, floor)
    if fl is None or fl[0] <= 0:
        raise ValueError("convergence_note needs a positive floor")
    m = fl[0]
    last = {k: c.mean[-1] for k, c in lines.items()}
    flat = [k for k, c in lines.items() if len(c.mean) > 1 and abs(c.mean[-1] - c.mean[-2]) <= level * c.mean[-2]]
    parts = [", ".join(f"{k} {v / m:.1f}×" for k, v in last.items()) + " the floor at the largest budget"]
    ode_flat = [k for k in flat if k not in stochastic]
    if ode_flat:
        lo, hi = min(last[k] for k in ode_flat), max(last[k] for k in ode_flat)
        band = (m - fl[1], m + fl[1])
        where = ("below the floor" if hi < band[0] else "above the floor" if lo > band[1]
                 else "inside the floor's ± 1 sd band" if band[0] <= lo and hi <= band[1] else "across the floor")
        parts.append(f"ODE samplers levelled off (< {level:.0%} change over the last budget): {', '.join(ode_flat)}, "
                     f"{where} ({f'{lo / m:.1f}' if f'{lo / m:.1f}' == f'{hi / m:.1f}' else f'{lo / m:.1f}–{hi / m:.1f}'}×)")
    for k in (k for k in lines if k in stochastic):
        if ode_flat:
            rel = "above" if last[k] > hi else "below" if last[k] < lo else "among"
            parts.append(f"{k} ends {rel} them")
    return "; ".join(parts) + "."


def convergence_mpl(curves: Mapping[str, dict | tuple], floor=None, *, metric: str = "distance",
                    xlabel: str = "sampler steps", title: str | None = None, floor_label: str = "two true sets",
                    note: str | None = None) -> Figure:
    """Distance to the truth against cost, one line per sampler (its mean), log-log, the noise floor dashed.

    Args:
        curves: see :func:`convergence_data`.
        floor: the same distance between two independent true sets (its mean is drawn).
        floor_label: how the floor was measured (e.g. ``"two true sets, n = 5000 vs 50000"``).
        note: a caption under the axes (e.g. :func:`convergence_note`), wrapped to the figure's width.
    """
    lines, fl = convergence_data(curves, floor)
    fig, ax = plt.subplots(figsize=(8, 4.5 if note is None else 5.2), constrained_layout=True)
    for name, c in lines.items():
        ax.plot(c.x, c.mean, "o-", label=name)
    if fl is not None:
        ax.axhline(fl[0], color="k", ls="--", lw=1, label=f"noise floor ({floor_label}): {fl[0]:.3g}")
        if fl[1] > 0:
            ax.axhspan(max(fl[0] - fl[1], fl[0] * 0.05), fl[0] + fl[1], color="k", alpha=0.08, lw=0)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=f"{metric} to the truth",
           title=title or f"Distance to the truth against {xlabel}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if note:
        import textwrap

        fig.supxlabel(textwrap.fill(note, width=int(fig.get_figwidth() * 13)), fontsize=8, ha="center")
    return fig


def _floor_band(fig, floor: tuple[float, float], xs: Sequence[float]) -> None:
    """The floor as a dashed line inside its ± 1 sd band, a little wider than the curves' x range."""
    import plotly.graph_objects as go

    lo, hi = min(xs) / 1.3, max(xs) * 1.3
    m, s = floor
    fig.add_trace(go.Scatter(x=[lo, hi, hi, lo], y=[m + s, m + s, max(m - s, m * 0.05), max(m - s, m * 0.05)],
                             fill="toself", fillcolor="rgba(0,0,0,0.10)", line={"width": 0}, hoverinfo="skip",
                             mode="lines", name="floor ± 1 sd", showlegend=True))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[m, m], mode="lines", line={"color": "black", "dash": "dash"},
                             name=f"floor: two true sets ({m:.3g})",
                             hovertemplate=f"two true sets: {m:.3g} ± {s:.2g}<extra></extra>"))


def convergence_plotly(curves: Mapping[str, dict | tuple], floor=None, *, metric: str = "distance",
                       xlabel: str = "sampler steps") -> go.Figure:
    """Distance to the truth against cost, log-log, one line per sampler with ± one standard deviation over
    seeds as error bars (flow samplers dotted), and the two-true-sets floor as a line inside its own ± band.
    ``curves`` and ``floor``: see :func:`convergence_data`."""
    import plotly.graph_objects as go

    from toydiff.toy.figures.plotly_kit import log_axis

    lines, fl = convergence_data(curves, floor)
    fig = go.Figure()
    xs_all = [x for c in lines.values() for x in c.x]
    if fl is not None and xs_all:
        _floor_band(fig, fl, xs_all)
    for label, c in lines.items():
        dash = "dot" if label.startswith("flow") else "solid"
        std = c.std if c.std is not None else [0.0] * len(c.x)
        fig.add_trace(go.Scatter(
            x=c.x, y=c.mean, error_y={"type": "data", "array": std, "visible": c.std is not None, "thickness": 1},
            mode="lines+markers", name=label, line={"dash": dash}, customdata=np.c_[c.steps, std],
            hovertemplate=(f"<b>{label}</b><br>{xlabel}: %{{x}}<br>steps: %{{customdata[0]}}<br>"
                           f"{metric}: %{{y:.3g}} ± %{{customdata[1]:.2g}}<extra></extra>")))
    xs = [v for tr in fig.data for v in tr.x]
    ys = [v for tr in fig.data for v in tr.y] + [m - s for c in lines.values() if c.std for m, s in zip(c.mean, c.std)]
    fig.update_layout(xaxis=log_axis(xs, title=xlabel), yaxis=log_axis(ys, title=f"{metric} to the truth"),
                      height=460, margin={"t": 30, "b": 40}, legend={"font": {"size": 11}}, hovermode="closest")
    return fig
