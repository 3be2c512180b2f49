"""Flow matching against diffusion as figures: the paths particles take under each process.

    fig = paths_plotly({"flow · euler": paths_flow, "VP · ddim": paths_vp}, density=(xs, ys, p))

The paths come from :func:`toydiff.toy.flow_compare.ode_paths`; the README's flow-vs-diffusion figure is
drawn by the bench that measures it (``bench/figures_flow.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np
import torch

from toydiff.toy.figures.base import PLOTLY_LAYOUT_LABS, to_numpy

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["paths_plotly"]


def paths_plotly(paths: Mapping[str, torch.Tensor], *, density: tuple | None = None) -> go.Figure:
    """The paths ``[S + 1, n, D]`` of a few particles under each process, one panel per process: in 2-D the
    curves in the plane (start ○ at x_1, end ● at the sample), in 1-D x against the fraction of the run.
    ``density``: ``(xs, ys, p)`` of the data, shaded under 2-D panels."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from toydiff.toy.figures.plotly_kit import plane_axes

    if not paths:
        raise ValueError("paths is empty")
    fig = make_subplots(rows=1, cols=len(paths), subplot_titles=list(paths), horizontal_spacing=0.06)
    for col, (name, p) in enumerate(paths.items(), start=1):
        a = to_numpy(p)
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
            plane_axes(fig, row=1, col=col)
        else:
            fig.update_xaxes(title_text="fraction of the run (noise → data)", row=1, col=col)
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=430, legend=dict(orientation="h", y=-0.1))
    return fig
