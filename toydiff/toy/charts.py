"""Interactive (Plotly) figures for the toy track: hover, zoom and client-side animation frames.

:mod:`toydiff.toy.plots` draws the same things with matplotlib for export (PNG); this module draws them for
a browser. Every function returns a ``plotly.graph_objects.Figure`` and never shows it. Points are ``[N, 1]``
or ``[N, 2]`` tensors or arrays. Plotly is an optional dependency (the ``app`` extra): importing
:mod:`toydiff.toy` does not import this module.

:func:`animate` is the one place that turns per-frame traces into a figure with a play / pause button and a
time slider; playback runs in the browser (Plotly frames), so a host page is not re-run while it plays.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from toydiff.checks import check_int
from toydiff.exact.mixture import GaussianMixture
from toydiff.processes.schedules import NoiseSchedule
from toydiff.training.engine import History

__all__ = ["TRUE_COLOR", "SAMPLE_COLOR", "EXACT_COLOR", "extent", "animate", "density_grid", "density_frames",
           "density_heatmap", "arrows", "points", "samples_vs_truth", "loss_curves", "eps_comparison", "trajectories_1d", "trajectories_2d", "convergence"]

TRUE_COLOR, SAMPLE_COLOR, EXACT_COLOR = "#1f77b4", "#d62728", "#222222"
_LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=20, t=50, b=40), hovermode="closest")


def _np(x) -> np.ndarray:
    return (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)).astype(np.float64)


def extent(points=None, mixture: GaussianMixture | None = None, pad: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A box ``(lo [D], hi [D])`` holding the mixture's components (±4 std) or the points' 0.1–99.9 % quantiles."""
    if mixture is not None:
        std = _np(mixture.covs.diagonal(dim1=1, dim2=2).sqrt())
        lo, hi = (_np(mixture.means) - 4 * std).min(0), (_np(mixture.means) + 4 * std).max(0)
    elif points is not None:
        p = _np(points)
        lo, hi = np.quantile(p, 0.001, axis=0), np.quantile(p, 0.999, axis=0)
    else:
        raise ValueError("extent needs points or a mixture")
    span = np.maximum(hi - lo, 1e-6)
    return lo - pad * span, hi + pad * span


# --- building blocks -----------------------------------------------------------------------------------


def density_grid(mixture: GaussianMixture, alpha_bar: float, lo, hi, n: int = 60) -> tuple[np.ndarray, ...]:
    """The exact density of x_t (the mixture noised to ``alpha_bar``) on a grid.

    Returns ``(xs [n], p [n])`` in 1-D, ``(xs [n], ys [n], p [n, n])`` (rows = y) in 2-D.
    """
    n = check_int(n, "n", min=2)
    xs = np.linspace(lo[0], hi[0], n)
    if mixture.D == 1:
        return xs, mixture.log_prob(torch.from_numpy(xs)[:, None], alpha_bar).exp().numpy()
    ys = np.linspace(lo[1], hi[1], n)
    XX, YY = np.meshgrid(xs, ys)
    pts = torch.from_numpy(np.stack([XX.ravel(), YY.ravel()], 1))
    return xs, ys, mixture.log_prob(pts, alpha_bar).exp().numpy().reshape(n, n)


def density_frames(mixture: GaussianMixture, alpha_bars, lo, hi, n: int = 50) -> tuple[np.ndarray, ...]:
    """:func:`density_grid` at every ᾱ of ``alpha_bars`` ``[F]`` in one batched ``log_prob`` call.

    Returns ``(xs [n], p [F, n])`` in 1-D, ``(xs [n], ys [n], p [F, n, n])`` in 2-D.
    """
    n = check_int(n, "n", min=2)
    ab = torch.as_tensor(np.asarray(alpha_bars, dtype=np.float64))
    xs = np.linspace(lo[0], hi[0], n)
    if mixture.D == 1:
        grid = torch.from_numpy(xs)[:, None]
    else:
        ys = np.linspace(lo[1], hi[1], n)
        XX, YY = np.meshgrid(xs, ys)
        grid = torch.from_numpy(np.stack([XX.ravel(), YY.ravel()], 1))
    m = grid.shape[0]
    p = mixture.log_prob(grid.repeat(len(ab), 1), ab.repeat_interleave(m)).exp().numpy()
    return (xs, p.reshape(len(ab), n)) if mixture.D == 1 else (xs, ys, p.reshape(len(ab), n, n))


def density_heatmap(xs, ys, p, *, name: str = "exact p_t(x)", showscale: bool = False) -> go.Heatmap:
    """A faint blue heatmap of a 2-D density grid (from :func:`density_grid`), hover showing the density."""
    return go.Heatmap(x=xs, y=ys, z=np.asarray(p, dtype=np.float32), colorscale="Blues", showscale=showscale, name=name, zsmooth="best",
                      hovertemplate="x=%{x:.2f}<br>y=%{y:.2f}<br>density %{z:.3g}<extra>" + name + "</extra>")


def arrows(origins, vectors, *, scale: float = 1.0, name: str, color: str, width: float = 1.5) -> go.Scatter:
    """Arrows from ``origins [N, 2]`` along ``scale · vectors [N, 2]`` as one line trace (segments split by gaps),
    with a small head at each tip; one trace, so it can be swapped frame by frame."""
    o, v = _np(origins), _np(vectors) * scale
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
    p = _np(x).reshape(len(x), -1)
    yy = p[:, 1] if p.shape[1] > 1 else (np.zeros(len(p)) if y is None else _np(y))
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
    fig.update_layout(
        **_LAYOUT, title=title,
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.08, xanchor="left", yanchor="top",
                          showactive=False, pad=dict(r=10, t=10),
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="⏸ Pause", method="animate", args=[[None], pause])])],
        sliders=[dict(active=0, x=0.16, len=0.84, y=-0.04, yanchor="top", currentvalue=dict(prefix=slider_prefix, xanchor="right"),
                      steps=[dict(label=lab, method="animate", args=[[nm], dict(pause, frame=dict(duration=0, redraw=True))])
                             for lab, nm in zip(labels, names)])])
    fig.update_layout(**layout)
    return fig


# --- the toy figures -----------------------------------------------------------------------------------


def samples_vs_truth(samples, *, mixture: GaussianMixture | None = None, true_samples=None,
                     title: str = "Samples") -> go.Figure:
    """Samples against the truth: 1-D a density histogram over the exact density, 2-D a scatter over it.

    The interactive twin of :func:`toydiff.toy.plots.samples_vs_truth`; ``true_samples`` stand in where there
    is no exact mixture.
    """
    x = _np(samples).reshape(len(samples), -1)
    lo, hi = extent(x if true_samples is None else true_samples, mixture)
    fig = go.Figure()
    if x.shape[1] == 1:
        fig.add_histogram(x=x[:, 0], histnorm="probability density", name=f"samples (n = {len(x):,})",
                          marker_color=SAMPLE_COLOR, opacity=0.55, xbins=dict(start=lo[0], end=hi[0],
                                                                               size=(hi[0] - lo[0]) / 60))
        if true_samples is not None:
            fig.add_histogram(x=_np(true_samples).reshape(-1), histnorm="probability density", name="true samples",
                              marker_color=TRUE_COLOR, opacity=0.35)
        if mixture is not None:
            xs, p = density_grid(mixture, 1.0, lo, hi, 400)
            fig.add_scatter(x=xs, y=p, mode="lines", name="exact density", line=dict(color=TRUE_COLOR, width=2))
        fig.update_layout(barmode="overlay", xaxis_title="x", yaxis_title="density")
    elif x.shape[1] == 2:
        if mixture is not None:
            fig.add_trace(density_heatmap(*density_grid(mixture, 1.0, lo, hi, 80)))
        if true_samples is not None:
            fig.add_trace(points(true_samples, name="true samples", color=TRUE_COLOR, opacity=0.3))
        fig.add_trace(points(x, name=f"samples (n = {len(x):,})"))
        fig.update_layout(xaxis=dict(range=[lo[0], hi[0]]), yaxis=dict(range=[lo[1], hi[1]], scaleanchor="x"))
    else:
        raise ValueError(f"samples must be [N, 1] or [N, 2], got {x.shape}")
    fig.update_layout(**_LAYOUT, title=title, legend=dict(x=0.99, y=0.99, xanchor="right", yanchor="top",
                                                          bgcolor="rgba(255,255,255,0.7)"))
    return fig


def loss_curves(history: History, *, title: str = "Training") -> go.Figure:
    """Train and held-out loss per epoch against the Bayes-optimal floor, and the held-out loss by t bucket."""
    if not history.records:
        raise ValueError("history has no epochs yet")
    ep = history.column("epoch")
    fig = make_subplots(1, 2, subplot_titles=(f"{title}: loss", "held-out loss by t bucket (low t is hardest)"))
    fig.add_scatter(x=ep, y=history.train_loss, name="train (training t-distribution)", row=1, col=1)
    fig.add_scatter(x=ep, y=history.val_loss, name="held-out (uniform t, EMA weights)", row=1, col=1)
    if history.floor is not None:
        fig.add_scatter(x=[ep[0], ep[-1]], y=[history.floor] * 2, mode="lines", name=f"floor {history.floor:.4f}",
                        line=dict(color=EXACT_COLOR, dash="dash"), row=1, col=1)
    nb = history.n_buckets
    centers = (np.arange(nb) + 0.5) / nb
    fig.add_scatter(x=centers, y=history.records[0]["val_by_bucket"], mode="lines+markers", opacity=0.5,
                    name=f"epoch {ep[0]}", row=1, col=2)
    fig.add_scatter(x=centers, y=history.records[-1]["val_by_bucket"], mode="lines+markers", name=f"epoch {ep[-1]}",
                    row=1, col=2)
    if history.floor_by_bucket is not None:
        fig.add_scatter(x=centers, y=history.floor_by_bucket, mode="lines", name="floor per bucket",
                        line=dict(color=EXACT_COLOR, dash="dash"), row=1, col=2)
    fig.update_xaxes(title_text="epoch", row=1, col=1)
    fig.update_xaxes(title_text="t / T (bucket centre)", row=1, col=2)
    fig.update_yaxes(title_text="ε-prediction MSE", row=1, col=1)
    fig.update_layout(**_LAYOUT, height=380)
    return fig


def eps_comparison(learned: Callable, schedule: NoiseSchedule, t: int, *, oracle: GaussianMixture | None = None,
                   extent_: tuple[float, float] = (-3.5, 3.5), n_arrows: int = 17) -> go.Figure:
    """A learned ε̂(x, t) against the exact ε*(x, t) = E[ε | x_t = x] at step ``t`` (Ho et al. 2020's target).

    1-D: both curves over x with the exact density of x_t shaded. 2-D: −ε̂ and −ε* (score directions) as arrows
    on an ``n_arrows``² grid over the exact density of x_t. ``learned(x [N, D] float32, t [N])``.
    """
    t = check_int(t, "t", min=0, max=schedule.T - 1)
    ab = schedule.alpha_bar(t)
    dim = getattr(getattr(learned, "config", None), "dim", None) or (oracle.D if oracle is not None else 1)
    fig = go.Figure()
    lo, hi = np.full(dim, extent_[0]), np.full(dim, extent_[1])
    if dim == 1:
        grid = torch.linspace(extent_[0], extent_[1], 300)[:, None]
        with torch.no_grad():
            e_hat = _np(learned(grid, torch.full((len(grid),), t)))[:, 0]
        fig.add_scatter(x=grid[:, 0], y=e_hat, name="learned ε̂(x_t, t)", line=dict(color=SAMPLE_COLOR, width=2))
        if oracle is not None:
            g64 = grid.double()
            fig.add_scatter(x=grid[:, 0], y=_np(oracle.eps_star(g64, ab))[:, 0], name="exact ε* = E[ε | x_t]",
                            line=dict(color=EXACT_COLOR, dash="dash"))
            fig.add_scatter(x=grid[:, 0], y=_np(oracle.log_prob(g64, ab).exp()), name="p_t(x_t) (exact)", yaxis="y2",
                            fill="tozeroy", line=dict(color=TRUE_COLOR, width=0.5), opacity=0.3)
            fig.update_layout(yaxis2=dict(overlaying="y", side="right", title="density of x_t", rangemode="tozero"))
        fig.update_layout(xaxis_title="x_t (normalised)", yaxis_title="noise prediction")
    else:
        xs = np.linspace(extent_[0], extent_[1], n_arrows)
        XX, YY = np.meshgrid(xs, xs)
        pts = torch.from_numpy(np.stack([XX.ravel(), YY.ravel()], 1))
        if oracle is not None:
            fig.add_trace(density_heatmap(*density_grid(oracle, ab, lo, hi, 70)))
        with torch.no_grad():
            vecs = {"−ε̂ (learned)": -_np(learned(pts.float(), torch.full((len(pts),), t)))}
        if oracle is not None:
            vecs["−ε* (exact)"] = -_np(oracle.eps_star(pts, ab))
        # one scale for both fields: the longest arrow spans one grid cell
        step = (extent_[1] - extent_[0]) / (n_arrows - 1) * 0.9 / max(np.linalg.norm(v, axis=1).max() for v in vecs.values())
        for (name, v), color in zip(vecs.items(), (SAMPLE_COLOR, EXACT_COLOR)):
            fig.add_trace(arrows(pts, v, scale=step, name=name, color=color, width=1.5 if color == SAMPLE_COLOR else 1))
        fig.update_layout(xaxis=dict(range=list(extent_)), yaxis=dict(range=list(extent_), scaleanchor="x"), height=520)
    fig.update_layout(**_LAYOUT, title=f"ε̂ vs ε* at t = {t} (ᾱ = {ab:.3f})")
    return fig


def trajectories_1d(path, timesteps: Sequence[int], *, mixture: GaussianMixture | None = None,
                    title: str = "Reverse-process trajectories", max_lines: int = 100) -> go.Figure:
    """Tracked 1-D samples x_t against the steps remaining ``[S + 1, n, 1]`` (``TrajectoryRecorder.path()``), coloured
    by the mixture component their end point belongs to (the interactive twin of ``plots.trajectories``)."""
    p = _np(path)
    if p.ndim != 3 or p.shape[2] != 1:
        raise ValueError(f"path must have shape [S + 1, n, 1], got {p.shape}")
    n = min(p.shape[1], check_int(max_lines, "max_lines", min=1))
    steps = np.array(list(timesteps) + [-1]) + 1
    modes = (mixture.responsibilities(torch.from_numpy(p[-1, :n])).argmax(1).numpy() if mixture is not None
             else np.zeros(n, dtype=int))
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
    fig = go.Figure()
    for k in np.unique(modes):
        idx = np.flatnonzero(modes == k)
        xs = np.concatenate([np.append(steps, np.nan)] * len(idx))
        ys = np.concatenate([np.append(p[:, i, 0], np.nan) for i in idx])
        fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(width=0.8, color=palette[k % len(palette)]), opacity=0.5,
                        name=f"ends in mode {k} ({len(idx)})", hovertemplate="t+1=%{x}<br>x=%{y:.3f}<extra></extra>")
    fig.update_layout(**_LAYOUT, title=f"{title} ({n} samples)", xaxis=dict(autorange="reversed",
                      title="noising steps remaining (t + 1)"), yaxis_title="x_t")
    return fig


def trajectories_2d(path, *, n: int = 40, title: str = "Reverse trajectories") -> go.Figure:
    """The first ``n`` tracked 2-D paths ``[S + 1, N, 2]`` (``TrajectoryRecorder.path()``), start and end marked."""
    n = check_int(n, "n", min=1)
    p = _np(path)
    if p.ndim != 3 or p.shape[2] != 2:
        raise ValueError(f"path must have shape [S + 1, n, 2], got {p.shape}")
    k = min(n, p.shape[1])
    nan = np.full((1, k), np.nan)
    xs, ys = np.concatenate([p[:, :k, 0], nan]).T.ravel(), np.concatenate([p[:, :k, 1], nan]).T.ravel()
    fig = go.Figure([go.Scatter(x=xs, y=ys, mode="lines", line=dict(width=0.8, color="rgba(100,100,100,0.5)"),
                                name="paths", hoverinfo="skip"),
                     points(p[0, :k], name="x_T (start)", color="grey", size=6, opacity=0.9),
                     points(p[-1, :k], name="x_0 (end)", color=SAMPLE_COLOR, size=6, opacity=0.9)])
    fig.update_layout(**_LAYOUT, title=f"{title} ({k} samples)", yaxis=dict(scaleanchor="x"))
    return fig


def convergence(curves: dict[str, tuple[Sequence[float], Sequence[float]]], floor: float | None = None, *,
                metric: str = "distance", xlabel: str = "sampler steps", errors: dict | None = None) -> go.Figure:
    """Distance to the truth against cost, one line per sampler, log-log, with the two-sample noise floor.

    ``errors`` (optional) maps a sampler to per-point error-bar half-widths (e.g. a standard error over seeds).
    """
    if not curves:
        raise ValueError("give at least one curve")
    fig = go.Figure()
    for name, (xs, ys) in curves.items():
        if len(xs) != len(ys):
            raise ValueError(f"curve {name!r}: {len(xs)} x values but {len(ys)} distances")
        err = None if not errors or name not in errors else dict(type="data", array=list(errors[name]))
        fig.add_scatter(x=list(xs), y=list(ys), mode="lines+markers", name=name, error_y=err)
    if floor is not None:
        fig.add_hline(y=floor, line=dict(color=EXACT_COLOR, dash="dash"),
                      annotation_text=f"noise floor (two true sets) {floor:.3g}")
    fig.update_layout(**_LAYOUT, xaxis=dict(type="log", title=xlabel), yaxis=dict(type="log", title=f"{metric} to the truth"),
                      title=f"Distance to the truth against {xlabel}")
    return fig
