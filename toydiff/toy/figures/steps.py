"""Sampling levels side by side: where each grid puts its N levels on the log-SNR axis, and the pathwise error
each grid gives (:mod:`toydiff.sampling.optimal_steps`: the optimised levels beside the fixed spacings).

    grids = {"logsnr": {"log_snr": [-10.2, -5.0, 0.1, 9.2], "error": (0.08, 0.01)},
             "optimised": {"log_snr": [-10.2, -3.1, 1.0, 4.4], "error": (0.03, 0.005)}}
    fig = levels_mpl(grids)       # PNG
    fig = levels_plotly(grids)    # the app
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["Grid", "levels_data", "levels_mpl", "levels_plotly"]


@dataclass
class Grid:
    """One grid: its levels' log-SNR λ ``[N]`` (noisiest first) and its pathwise error (mean, sd over seeds)."""

    log_snr: list[float]
    error: float
    error_sd: float


def levels_data(grids: Mapping[str, dict]) -> dict[str, Grid]:
    """``{label: Grid}`` from ``{label: {"log_snr": [N], "error": (mean, sd) or mean}}``; refuses an empty mapping."""
    if not grids:
        raise ValueError("grids must hold at least one grid")
    out = {}
    for label, g in grids.items():
        err = g["error"]
        mean, sd = (float(err[0]), float(err[1])) if isinstance(err, (tuple, list)) else (float(err), 0.0)
        out[str(label)] = Grid([float(v) for v in g["log_snr"]], mean, sd)
    return out


def levels_mpl(grids: Mapping[str, dict]) -> Figure:
    """Left: each grid's levels as dots on the log-SNR axis (one row per grid); right: its pathwise error (bars,
    ± one sd over seeds)."""
    data = levels_data(grids)
    labels = list(data)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 0.5 * len(labels) + 1.6), width_ratios=(2.2, 1), sharey=True)
    for i, lab in enumerate(labels):
        g = data[lab]
        a.plot(g.log_snr, [i] * len(g.log_snr), "o-", ms=5, lw=0.8)
        b.barh(i, g.error, xerr=g.error_sd, color=f"C{i}", alpha=0.8)
    a.set_yticks(range(len(labels)), labels)
    a.set_xlabel("log-SNR λ = log(ᾱ / (1 − ᾱ))  (noise ← → data)")
    a.set_title("the levels")
    b.set_xlabel("pathwise error (data std)")
    b.set_title("error to the exact flow map")
    a.invert_yaxis()
    fig.tight_layout()
    return fig


def levels_plotly(grids: Mapping[str, dict]) -> "go.Figure":
    """:func:`levels_mpl` for the app: hover shows each level's λ and each grid's error ± sd."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    from plotly.colors import qualitative

    data = levels_data(grids)
    labels = list(data)
    palette = qualitative.Plotly
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.68, 0.32], horizontal_spacing=0.03,
                        subplot_titles=("the levels", "pathwise error to the exact flow map"))
    for i, lab in enumerate(labels):
        g, colour = data[lab], palette[i % len(palette)]  # one colour per grid in both panels
        fig.add_trace(go.Scatter(x=g.log_snr, y=[lab] * len(g.log_snr), mode="lines+markers", name=lab,
                                 line={"color": colour}, marker={"color": colour},
                                 legendgroup=lab, hovertemplate=f"<b>{lab}</b><br>λ = %{{x:.2f}}<extra></extra>"),
                      row=1, col=1)
        fig.add_trace(go.Bar(x=[g.error], y=[lab], orientation="h", name=lab, legendgroup=lab, showlegend=False,
                             marker={"color": colour},
                             error_x={"type": "data", "array": [g.error_sd]},
                             hovertemplate=f"<b>{lab}</b><br>error %{{x:.3g}} ± {g.error_sd:.2g}<extra></extra>"),
                      row=1, col=2)
    fig.update_xaxes(title_text="log-SNR λ (noise ← → data)", row=1, col=1)
    fig.update_xaxes(title_text="data std", row=1, col=2)
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=labels)
    fig.update_layout(height=120 + 45 * len(labels), showlegend=False, margin={"t": 40, "b": 40, "l": 90, "r": 20},
                      template="plotly_white")
    return fig
