"""Likelihood as figures: the PF-ODE log-likelihood (Song et al. 2021, Appendix D.2) against the exact log p
of the mixture, and the variational bound's terms L_t by step (Ho et al. 2020, eq. 5) for models against the
oracle's.

    fig = likelihood_check_mpl(exact_log_p, {"model": log_p})      # PNG: estimate against exact, y = x
    fig = elbo_mpl(terms) / elbo_plotly(terms)                      # L_t by step, and the excess over the oracle
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from toydiff.evaluation.elbo import ELBOTerms
from toydiff.toy.figures.base import PLOTLY_LAYOUT_LABS, to_numpy

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["likelihood_check_mpl", "likelihood_points_plotly", "likelihood_grid_plotly", "ElboLine", "elbo_data",
           "elbo_mpl", "elbo_plotly"]


def likelihood_check_mpl(exact_log_p, estimates: dict, *, title: str = "PF-ODE log-likelihood") -> Figure:
    """Scatter of ODE estimates (``{label: log p [N]}``) against the exact log p ``[N]``, with y = x."""
    fig, ax = plt.subplots(figsize=(5, 4.6), constrained_layout=True)
    ex = to_numpy(exact_log_p)
    for label, lp in estimates.items():
        est = to_numpy(lp)
        ax.scatter(ex, est, s=9, alpha=0.7, label=f"{label} (mean gap {np.mean(ex - est):+.3f} nats)")
    lo, hi = ex.min(), ex.max()
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set(xlabel="exact log p(x) [nats]", ylabel="PF-ODE log p_θ(x) [nats]", title=title)
    ax.legend(fontsize=8)
    return fig


def likelihood_points_plotly(x, exact_log_p, estimates: Mapping[str, torch.Tensor]) -> go.Figure:
    """PF-ODE log-likelihoods against the exact log p of the same points ``x [N, D]``: in 1-D log p over x (the
    exact curve, the estimates as markers), in 2-D estimate against exact with the line y = x. ``estimates``:
    ``{label: log p [N]}`` in nats."""
    import plotly.graph_objects as go

    xs, ex = to_numpy(x), to_numpy(exact_log_p)
    if xs.ndim != 2 or xs.shape[0] != ex.shape[0]:
        raise ValueError(f"x must be [N, D] with N = len(exact_log_p) = {ex.shape[0]}, got {xs.shape}")
    fig = go.Figure()
    if xs.shape[1] == 1:
        order = np.argsort(xs[:, 0])
        fig.add_trace(go.Scatter(x=xs[order, 0], y=ex[order], mode="lines", name="exact log p(x)",
                                 line=dict(color="black"), hovertemplate="x = %{x:.3f}: %{y:.3f} nats<extra>exact</extra>"))
        for label, lp in estimates.items():
            fig.add_trace(go.Scatter(x=xs[:, 0], y=to_numpy(lp), mode="markers", name=f"{label} (PF-ODE)", marker=dict(size=6),
                                     hovertemplate="x = %{x:.3f}: %{y:.3f} nats<extra>" + label + "</extra>"))
        fig.update_layout(xaxis_title="x", yaxis_title="log p(x) [nats]")
    else:
        lo, hi = float(ex.min()), float(ex.max())
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line=dict(color="black", dash="dash"),
                                 hoverinfo="skip"))
        for label, lp in estimates.items():
            est = to_numpy(lp)
            fig.add_trace(go.Scatter(x=ex, y=est, mode="markers", name=f"{label} (mean gap {np.mean(ex - est):+.3f})",
                                     marker=dict(size=6, opacity=0.7), customdata=xs,
                                     hovertemplate="x = (%{customdata[0]:.2f}, %{customdata[1]:.2f})<br>exact %{x:.3f}"
                                                   ", PF-ODE %{y:.3f} nats<extra>" + label + "</extra>"))
        fig.update_layout(xaxis_title="exact log p(x) [nats]", yaxis_title="PF-ODE log p_θ(x) [nats]")
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=400, legend=dict(orientation="h", y=-0.2))
    return fig


def likelihood_grid_plotly(xs, ys, values: Mapping[str, np.ndarray], *, span: float = 15.0) -> go.Figure:
    """log p over a grid, one panel per ``values`` entry (``{label: [n] (1-D) or [n_y, n_x] (2-D)}``, nats), on
    one colour scale clipped to the ``span`` nats below the largest value (far from the data a model's log p can
    be off by orders of magnitude; hover shows the true numbers). ``ys=None`` for 1-D: curves over ``xs``."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from toydiff.toy.figures.plotly_kit import plane_axes

    if not values:
        raise ValueError("values is empty")
    top = max(float(np.max(to_numpy(v))) for v in values.values())
    lo = top - float(span)
    if ys is None:
        fig = go.Figure([go.Scatter(x=to_numpy(xs), y=np.clip(to_numpy(v), lo, None), mode="lines", name=label,
                                    customdata=to_numpy(v), hovertemplate="x = %{x:.3f}: %{customdata:.3f} nats<extra>"
                                    + label + "</extra>") for label, v in values.items()])
        fig.update_layout(**PLOTLY_LAYOUT_LABS, height=380, xaxis_title="x", yaxis_title=f"log p [nats], clipped at {lo:.1f}",
                          legend=dict(orientation="h", y=-0.2))
        return fig
    fig = make_subplots(rows=1, cols=len(values), subplot_titles=list(values), horizontal_spacing=0.05)
    for col, (label, v) in enumerate(values.items(), start=1):
        z = to_numpy(v)
        fig.add_trace(go.Heatmap(x=to_numpy(xs), y=to_numpy(ys), z=np.clip(z, lo, top), customdata=z, zmin=lo, zmax=top,
                                 colorscale="Viridis", showscale=col == len(values),
                                 colorbar=dict(title="log p", thickness=12),
                                 hovertemplate="(%{x:.2f}, %{y:.2f}): %{customdata:.3f} nats<extra>" + label + "</extra>"),
                      row=1, col=col)
        plane_axes(fig, row=1, col=col, x_range=(float(np.min(xs)), float(np.max(xs))),
                   y_range=(float(np.min(ys)), float(np.max(ys))))
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=380)
    return fig


# --- the ELBO by step ----------------------------------------------------------------------------------------


@dataclass
class ElboLine:
    """One entry of the ELBO figure: ``per_t [T]`` (L_t, nats), its ``total``, and its excess over the
    reference per step ``gap [T]`` (None for the reference itself or without one)."""

    label: str
    per_t: np.ndarray
    total: float
    gap: np.ndarray | None


def elbo_data(terms: Mapping[str, ELBOTerms], reference: str = "oracle") -> list[ElboLine]:
    """One :class:`ElboLine` per entry of ``terms`` (``{label: ELBOTerms}``), the gaps taken to ``reference``."""
    if not terms:
        raise ValueError("terms is empty")
    ref = terms.get(reference)
    return [ElboLine(label, to_numpy(tr.per_t), tr.total,
                     to_numpy(tr.per_t - ref.per_t) if ref is not None and label != reference else None)
            for label, tr in terms.items()]


def elbo_mpl(terms: Mapping[str, ELBOTerms], *, reference: str = "oracle", title: str = "ELBO by step") -> Figure:
    """Left: L_t against t (log scale; t = 0 is the decoder, left out) for each entry of ``terms``. Right: each
    entry's excess over ``reference``, L_t − L_t(reference), with its cumulative sum: where likelihood is lost
    (no right panel when ``terms`` holds the reference alone: there is no excess to draw)."""
    lines = elbo_data(terms, reference)
    gaps = [ln for ln in lines if ln.gap is not None]
    # the excess panel only where there is an excess to draw (the reference alone has none)
    fig, axes = plt.subplots(1, 2 if gaps else 1, figsize=(11, 4) if gaps else (6.5, 4), constrained_layout=True,
                             squeeze=False)
    a = axes[0, 0]
    for ln in lines:
        t = np.arange(1, len(ln.per_t))
        a.plot(t, np.clip(ln.per_t[1:], 1e-8, None), label=f"{ln.label}: total {ln.total:.3f} nats")
    a.set(yscale="log", xlabel="step t", ylabel="L_t [nats]", title=title)
    a.legend(fontsize=8)
    if gaps:
        b = axes[0, 1]
        for ln in gaps:
            b.plot(np.arange(len(ln.gap)), ln.gap, label=f"{ln.label} − {reference} per step")
            b.plot(np.arange(len(ln.gap)), np.cumsum(ln.gap), "--", label=f"cumulative ({np.sum(ln.gap):+.3f} nats)")
        b.axhline(0, color="k", lw=0.8)
        b.set(xlabel="step t", ylabel="excess [nats]", title="where the model loses likelihood")
        b.legend(fontsize=8)
    return fig


def elbo_plotly(terms: Mapping[str, ELBOTerms], *, reference: str = "oracle") -> go.Figure:
    """Left: the ELBO's L_t against t (log scale, t ≥ 1) per entry of ``terms``. Right: each entry's excess over
    ``reference`` per step and its cumulative sum — where a model loses likelihood."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from toydiff.toy.figures.plotly_kit import log_axis

    lines = elbo_data(terms, reference)
    gaps = any(ln.gap is not None for ln in lines)  # the excess panel only where there is an excess to draw
    fig = make_subplots(rows=1, cols=2 if gaps else 1, horizontal_spacing=0.1,
                        subplot_titles=("L_t by step [nats]",) + ((f"excess over the {reference}, by step",) if gaps else ()))
    for ln in lines:
        t = np.arange(1, len(ln.per_t))
        fig.add_trace(go.Scatter(x=t, y=np.clip(ln.per_t[1:], 1e-8, None), mode="lines", name=f"{ln.label}: total "
                                 f"{ln.total:.3f} nats", hovertemplate="t = %{x}: %{y:.3g}<extra>" + ln.label + "</extra>"),
                      row=1, col=1)
        if ln.gap is not None:
            gap = ln.gap
            fig.add_trace(go.Scatter(x=np.arange(len(gap)), y=gap, mode="lines", name=f"{ln.label} − {reference}, per step",
                                     hovertemplate="t = %{x}: %{y:.3g}<extra>per step</extra>"), row=1, col=2)
            fig.add_trace(go.Scatter(x=np.arange(len(gap)), y=np.cumsum(gap), mode="lines", line=dict(dash="dash"),
                                     name=f"cumulative ({gap.sum():+.3f} nats)",
                                     hovertemplate="t ≤ %{x}: %{y:.3g}<extra>cumulative</extra>"), row=1, col=2)
    fig.update_yaxes(**log_axis(*[np.clip(ln.per_t[1:], 1e-8, None) for ln in lines]), row=1, col=1)
    fig.update_xaxes(title_text="step t")
    fig.update_layout(**PLOTLY_LAYOUT_LABS, height=380, legend=dict(orientation="h", y=-0.25))
    return fig
