"""What training produced: the loss curves against the Bayes-optimal floor, and the learned ε̂(x, t) against the
exact ε*(x, t) = E[ε | x_t = x] (Ho et al. 2020's regression target), as curves (1-D) or −ε fields (2-D).

    fig = loss_curves_mpl(run.history, meta=run.metadata)     # PNG
    fig = loss_curves_plotly(run.history)                      # the app
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from toydiff.checks import check_int
from toydiff.exact.mixture import GaussianMixture
from toydiff.processes.schedules import NoiseSchedule
from toydiff.toy.figures.base import (EXACT_COLOR, MPL_SAMPLE, MPL_TRUE, PLOTLY_LAYOUT, SAMPLE_COLOR, TRUE_COLOR,
                                      density_grid, to_numpy)
from toydiff.training.engine import History

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["LossData", "loss_curves_data", "bucket_title", "loss_curves_mpl", "loss_curves_plotly", "EpsCurves", "eps_curves_data",
           "eps_comparison_mpl", "eps_comparison_plotly", "vector_fields_mpl"]


@dataclass
class LossData:
    """Per epoch ``epochs, train, val [E]`` and the floor; per t bucket ``centers [B]`` (bucket centres in
    [0, 1]), the held-out loss of the first and last epochs and the floor per bucket (or None)."""

    epochs: list
    train: list
    val: list
    floor: float | None
    centers: np.ndarray
    first: list
    last: list
    floor_by_bucket: list | None


def loss_curves_data(history: History) -> LossData:
    """What both loss figures draw, from a :class:`~toydiff.training.engine.History` with at least one epoch."""
    if not history.records:
        raise ValueError("history has no epochs yet")
    nb = history.n_buckets
    return LossData(history.column("epoch"), history.train_loss, history.val_loss, history.floor,
                    (np.arange(nb) + 0.5) / nb, history.records[0]["val_by_bucket"],
                    history.records[-1]["val_by_bucket"], history.floor_by_bucket)


def bucket_title(d: LossData, *, t_name: str = "t/T", sep: str = "; ") -> str:
    """The by-bucket panel's title, read off the last epoch: where the held-out loss peaks and, with a floor,
    where its excess over the floor per bucket peaks (no claim that holds for one data set only). ``sep`` joins
    the two (``"<br>"`` in a Plotly title)."""
    last = np.asarray(d.last, dtype=float)
    i = int(np.nanargmax(last))  # empty buckets are NaN (an objective with few held-out times)
    out = f"held-out loss by t bucket: highest at {t_name} ≈ {d.centers[i]:.2f}"
    if d.floor_by_bucket is not None:
        excess = last - np.asarray(d.floor_by_bucket, dtype=float)
        j = int(np.nanargmax(excess))
        out += f"{sep}most above the floor at {t_name} ≈ {d.centers[j]:.2f} (+{excess[j]:.2g})"
    return out


def loss_curves_mpl(history: History, *, title: str = "Training", meta: dict | None = None) -> Figure:
    """Train and held-out loss per epoch against the Bayes-optimal floor, and the held-out loss by t bucket.
    ``meta``: the run's checkpoint metadata (``ToyRun.metadata``), which names the prediction, the process's time
    and the training target (a stable-target run's train loss sits below the floor by design)."""
    d = loss_curves_data(history)
    meta = meta or {}
    flow = meta.get("process") == "flow"
    pred = {"eps": "ε", "velocity": "velocity"}.get(meta.get("prediction", "eps"), meta.get("prediction"))
    ep = d.epochs
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    train = "train (stable target: below the floor by design)" if meta.get("target") == "stf" else "train"
    ax.plot(ep, d.train, label=train)
    ax.plot(ep, d.val, label="held-out (EMA weights)")
    if d.floor is not None:
        ax.axhline(d.floor, color="k", ls="--", lw=1, label=f"Bayes-optimal floor {d.floor:.4f}")
    ax.set(xlabel="epoch", ylabel=f"{pred}-prediction MSE", title=f"{title}: loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax2.plot(d.centers, d.first, "o-", alpha=0.5, label=f"epoch {ep[0]}")
    ax2.plot(d.centers, d.last, "o-", label=f"epoch {ep[-1]}")
    if d.floor_by_bucket is not None:
        ax2.plot(d.centers, d.floor_by_bucket, "k--", label="floor per bucket")
    ax2.set(xlabel="t (bucket centre; 0 = data, 1 = noise)" if flow else "t / T (bucket centre)",
            ylabel="held-out MSE", title=bucket_title(d, t_name="t" if flow else "t/T", sep="\n"))
    ax2.title.set_fontsize(9)
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def loss_curves_plotly(history: History, *, title: str = "Training") -> go.Figure:
    """Train and held-out loss per epoch against the Bayes-optimal floor, and the held-out loss by t bucket."""
    from plotly.subplots import make_subplots

    d = loss_curves_data(history)
    ep = d.epochs
    fig = make_subplots(1, 2, subplot_titles=(f"{title}: loss", bucket_title(d, sep="<br>")))
    fig.update_annotations(font_size=12)
    fig.add_scatter(x=ep, y=d.train, name="train (training t-distribution)", row=1, col=1)
    fig.add_scatter(x=ep, y=d.val, name="held-out (uniform t, EMA weights)", row=1, col=1)
    if d.floor is not None:
        fig.add_scatter(x=[ep[0], ep[-1]], y=[d.floor] * 2, mode="lines", name=f"floor {d.floor:.4f}",
                        line=dict(color=EXACT_COLOR, dash="dash"), row=1, col=1)
    fig.add_scatter(x=d.centers, y=d.first, mode="lines+markers", opacity=0.5,
                    name=f"epoch {ep[0]}", row=1, col=2)
    fig.add_scatter(x=d.centers, y=d.last, mode="lines+markers", name=f"epoch {ep[-1]}",
                    row=1, col=2)
    if d.floor_by_bucket is not None:
        fig.add_scatter(x=d.centers, y=d.floor_by_bucket, mode="lines", name="floor per bucket",
                        line=dict(color=EXACT_COLOR, dash="dash"), row=1, col=2)
    fig.update_xaxes(title_text="epoch", row=1, col=1)
    fig.update_xaxes(title_text="t / T (bucket centre)", row=1, col=2)
    fig.update_yaxes(title_text="ε-prediction MSE", row=1, col=1)
    fig.update_layout(**PLOTLY_LAYOUT, height=380)
    return fig


# --- the learned ε̂ against the exact ε* --------------------------------------------------------------------


def _dim(learned: Callable, oracle: GaussianMixture | None) -> int:
    return getattr(getattr(learned, "config", None), "dim", None) or (oracle.D if oracle is not None else 1)


@dataclass
class EpsCurves:
    """1-D: ``x [n]`` (float32), the learned ``e_hat [n]``, and with an oracle the exact ``e_star [n]`` and ``density [n]``
    of x_t, at step ``t`` with ``alpha_bar``."""

    t: int
    alpha_bar: float
    x: np.ndarray
    e_hat: np.ndarray
    e_star: np.ndarray | None
    density: np.ndarray | None


def eps_curves_data(learned: Callable, schedule: NoiseSchedule, t: int, *, oracle: GaussianMixture | None = None,
                    extent: tuple[float, float] = (-3.5, 3.5), n: int = 400) -> EpsCurves:
    """ε̂ and ε* on ``n`` points of ``extent`` at step ``t`` (1-D). ``learned(x [n, 1] float32, t [n])``."""
    t = check_int(t, "t", min=0, max=schedule.T - 1)
    ab = schedule.alpha_bar(t)
    grid = torch.linspace(extent[0], extent[1], n)[:, None]
    with torch.no_grad():
        e_hat = to_numpy(learned(grid, torch.full((len(grid),), t)))[:, 0]
    e_star = dens = None
    if oracle is not None:
        g64 = grid.double()
        e_star, dens = to_numpy(oracle.eps_star(g64, ab))[:, 0], to_numpy(oracle.log_prob(g64, ab).exp())
    return EpsCurves(t, ab, grid[:, 0].numpy(), e_hat, e_star, dens)


def vector_fields_mpl(eps_fns: dict[str, Callable], schedule: NoiseSchedule, t: int, *,
                      extent: tuple[float, float] = (-3.0, 3.0), n: int = 21) -> Figure:
    """−ε̂(x, t) (the score direction, scaled) on a grid, one panel per denoiser (e.g. learned vs exact)."""
    xs = torch.linspace(extent[0], extent[1], n)
    XX, YY = torch.meshgrid(xs, xs, indexing="xy")
    pts = torch.stack([XX.reshape(-1), YY.reshape(-1)], 1)
    tt = torch.full((pts.shape[0],), int(t))
    fig, axes = plt.subplots(1, len(eps_fns), figsize=(5 * len(eps_fns), 5), squeeze=False)
    for ax, (name, fn) in zip(axes[0], eps_fns.items()):
        with torch.no_grad():
            e = to_numpy(fn(pts, tt))
        mag = np.linalg.norm(e, axis=1)
        ax.quiver(XX.numpy(), YY.numpy(), -e[:, 0].reshape(XX.shape), -e[:, 1].reshape(XX.shape), mag, cmap="viridis")
        ax.set(title=f"{name}: −ε(x, t={t}), ᾱ = {schedule.alpha_bar(int(t)):.3f}", aspect="equal")
    fig.tight_layout()
    return fig


def eps_comparison_mpl(learned: Callable, schedule: NoiseSchedule, t: int, *, oracle: GaussianMixture | None = None,
                       extent: tuple[float, float] = (-3.5, 3.5)) -> Figure:
    """A learned ε̂(x, t) against the exact ε*(x, t) = E[ε | x_t = x] of ``oracle`` at step ``t``.

    1-D: both curves over x, with the exact density of x_t shaded on a second axis. 2-D: their fields side by
    side (:func:`vector_fields_mpl`). ``learned`` is called as ``learned(x [N, D] float32, t [N])``.
    """
    t = check_int(t, "t", min=0, max=schedule.T - 1)
    if _dim(learned, oracle) != 1:
        fns = {"learned ε̂": learned, **({"exact ε*": oracle.eps_fn(schedule)} if oracle is not None else {})}
        return vector_fields_mpl(fns, schedule, t, extent=extent, n=21)
    c = eps_curves_data(learned, schedule, t, oracle=oracle, extent=extent, n=400)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(c.x, c.e_hat, color=MPL_SAMPLE, lw=2, label="learned ε̂(x_t, t)")
    if oracle is not None:
        ax.plot(c.x, c.e_star, "k--", lw=1.5, label="exact ε*(x_t, t) = E[ε | x_t]")
        ax2 = ax.twinx()
        ax2.fill_between(c.x, c.density, color=MPL_TRUE, alpha=0.15, label="p_t(x_t) (exact)")
        ax2.set_ylabel("density of x_t", color=MPL_TRUE)
        ax2.set_ylim(bottom=0)
        ax2.legend(loc="lower right", fontsize=8)
    ax.set(xlabel="x_t (normalised)", ylabel="noise prediction", title=f"ε̂ vs ε* at t = {t} (ᾱ = {c.alpha_bar:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _eps_arrows_plotly(fig, learned: Callable, oracle: GaussianMixture | None, t: int, ab: float,
                       extent: tuple[float, float], n_arrows: int) -> None:
    """2-D: −ε̂ and −ε* as arrows on an ``n_arrows``² grid over the exact density of x_t, one length scale."""
    from toydiff.toy.figures.plotly_kit import arrows, density_heatmap, plane_axes

    xs = np.linspace(extent[0], extent[1], n_arrows)
    XX, YY = np.meshgrid(xs, xs)
    pts = torch.from_numpy(np.stack([XX.ravel(), YY.ravel()], 1))
    if oracle is not None:
        fig.add_trace(density_heatmap(*density_grid(oracle, ab, np.full(2, extent[0]), np.full(2, extent[1]), 70)))
    with torch.no_grad():
        vecs = {"−ε̂ (learned)": -to_numpy(learned(pts.float(), torch.full((len(pts),), t)))}
    if oracle is not None:
        vecs["−ε* (exact)"] = -to_numpy(oracle.eps_star(pts, ab))
    # one scale for both fields: the longest arrow spans one grid cell
    step = (extent[1] - extent[0]) / (n_arrows - 1) * 0.9 / max(np.linalg.norm(v, axis=1).max() for v in vecs.values())
    for (name, v), color in zip(vecs.items(), (SAMPLE_COLOR, EXACT_COLOR)):
        fig.add_trace(arrows(pts, v, scale=step, name=name, color=color, width=1.5 if color == SAMPLE_COLOR else 1))
    plane_axes(fig, x_range=extent, y_range=extent)
    fig.update_layout(height=520)


def eps_comparison_plotly(learned: Callable, schedule: NoiseSchedule, t: int, *, oracle: GaussianMixture | None = None,
                          extent: tuple[float, float] = (-3.5, 3.5), n_arrows: int = 17) -> go.Figure:
    """A learned ε̂(x, t) against the exact ε*(x, t) = E[ε | x_t = x] at step ``t``.

    1-D: both curves over x with the exact density of x_t shaded. 2-D: −ε̂ and −ε* (score directions) as arrows
    on an ``n_arrows``² grid over the exact density of x_t. ``learned(x [N, D] float32, t [N])``.
    """
    import plotly.graph_objects as go

    t = check_int(t, "t", min=0, max=schedule.T - 1)
    ab = schedule.alpha_bar(t)
    fig = go.Figure()
    if _dim(learned, oracle) == 1:
        c = eps_curves_data(learned, schedule, t, oracle=oracle, extent=extent, n=300)
        fig.add_scatter(x=c.x, y=c.e_hat, name="learned ε̂(x_t, t)", line=dict(color=SAMPLE_COLOR, width=2))
        if oracle is not None:
            fig.add_scatter(x=c.x, y=c.e_star, name="exact ε* = E[ε | x_t]", line=dict(color=EXACT_COLOR, dash="dash"))
            fig.add_scatter(x=c.x, y=c.density, name="p_t(x_t) (exact)", yaxis="y2",
                            fill="tozeroy", line=dict(color=TRUE_COLOR, width=0.5), opacity=0.3)
            fig.update_layout(yaxis2=dict(overlaying="y", side="right", title="density of x_t", rangemode="tozero"))
        fig.update_layout(xaxis_title="x_t (normalised)", yaxis_title="noise prediction")
    else:
        _eps_arrows_plotly(fig, learned, oracle, t, ab, extent, n_arrows)
    fig.update_layout(**PLOTLY_LAYOUT, title=f"ε̂ vs ε* at t = {t} (ᾱ = {ab:.3f})")
    return fig
