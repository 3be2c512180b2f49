"""The noise schedule as figures: β_t, ᾱ_t and SNR_t against t / T, the sinusoidal time embedding, and the
forward process q(x_t | x_0) against its exact density.

    fig = schedule_curves_mpl(schedules.linear(), schedules.cosine())               # PNG
    fig = schedule_curves_plotly(schedule_series([schedules.linear(), schedules.cosine()]))   # the app
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from toydiff.checks import check_int
from toydiff.embeddings import sinusoidal_embedding
from toydiff.exact.mixture import GaussianMixture
from toydiff.processes.forward import q_sample
from toydiff.processes.schedules import NoiseSchedule
from toydiff.toy.figures.base import MPL_SAMPLE, MPL_TRUE, extent, to_numpy

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["schedule_series", "schedule_curves_mpl", "schedule_curves_plotly", "embedding_data", "embedding_mpl",
           "embedding_plotly", "forward_density_mpl"]

#: one schedule's curves: (label, betas [T], alpha_bars [T], snr [T])
Series = tuple[str, np.ndarray, np.ndarray, np.ndarray]


def schedule_series(schedules: Sequence[NoiseSchedule], labels: Sequence[str] | None = None) -> list[Series]:
    """``(label, betas [T], alpha_bars [T], snr [T])`` per schedule, labelled ``"name (T=…)"`` by default."""
    if not schedules:
        raise ValueError("give at least one schedule")
    labels = list(labels) if labels is not None else [f"{s.name} (T={s.T})" for s in schedules]
    return [(lab, to_numpy(s.betas), to_numpy(s.alpha_bars), to_numpy(s.snr)) for s, lab in zip(schedules, labels)]


def schedule_curves_mpl(*schedules: NoiseSchedule, labels: Sequence[str] | None = None) -> Figure:
    """β_t, ᾱ_t and SNR_t (log scale) of one or more schedules, overlaid, against t / T."""
    series = schedule_series(schedules, labels)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for lab, betas, abar, snr in series:
        u = np.arange(len(betas)) / len(betas)
        axes[0].plot(u, betas, label=lab)
        axes[1].plot(u, abar, label=lab)
        axes[2].semilogy(u, snr, label=lab)
    axes[0].set(title="β_t (noise added per step)", xlabel="t / T")
    axes[1].set(title="ᾱ_t (signal kept)", xlabel="t / T", ylim=(0, 1.02))
    axes[2].set(title="SNR_t = ᾱ / (1 − ᾱ)", xlabel="t / T")
    for ax in axes:
        ax.grid(alpha=0.3)
    # one legend under the three panels: inside the middle one it covered the ᾱ curves it labels
    handles, labs = axes[1].get_legend_handles_labels()
    fig.legend(handles, labs, loc="lower center", ncol=min(len(labs), 3), frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def schedule_curves_plotly(series: Sequence[Series]) -> go.Figure:
    """β_t, ᾱ_t and SNR_t (log) against t / T for ``(label, betas [T], alpha_bars [T], snr [T])`` tuples,
    one legend below the three panels (so it covers none of them); ``series`` from :func:`schedule_series`."""
    if not series:
        raise ValueError("series is empty")
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from toydiff.toy.figures.plotly_kit import log_axis

    fig = make_subplots(rows=1, cols=3, subplot_titles=("β_t (noise added per step, log)", "ᾱ_t (signal kept)",
                                                        "SNR_t = ᾱ / (1 − ᾱ)"))
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    for i, (label, betas, abar, snr) in enumerate(series):
        T = len(betas)
        u = np.arange(T) / T
        t = np.arange(T)
        for col, y in enumerate((betas, abar, snr), start=1):
            fig.add_trace(go.Scatter(x=u, y=y, customdata=t, mode="lines", name=label, legendgroup=label,
                                     showlegend=col == 1, line={"color": palette[i % len(palette)]},
                                     hovertemplate="t = %{customdata}<br>%{y:.4g}<extra>" + label + "</extra>"),
                          row=1, col=col)
    # β spans 1e-4 (linear start) to ~1 (cosine's clipped end), SNR many decades: readable ticks on both
    fig.update_yaxes(**log_axis(*[s[1] for s in series]), row=1, col=1)
    fig.update_yaxes(**log_axis(*[s[3] for s in series]), row=1, col=3)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_xaxes(title_text="t / T")
    fig.update_layout(height=360, margin={"t": 40, "b": 10}, hovermode="x unified",
                      legend={"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0})
    return fig


def embedding_data(dim: int, n_steps: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """``(t [n_steps], emb [n_steps, dim], channels)``: the sinusoidal time embedding (Vaswani et al. 2017; Ho et
    al. 2020) of t = 0 … n_steps − 1, and four channels from fast to slow to draw as lines."""
    dim, n_steps = check_int(dim, "dim", min=2), check_int(n_steps, "n_steps", min=2)
    t = np.arange(n_steps)
    emb = sinusoidal_embedding(torch.arange(n_steps), dim).numpy()
    return t, emb, sorted({0, dim // 8, dim // 4, dim // 2 - 1})


def embedding_mpl(dim: int = 64, T: int = 1000) -> Figure:
    """The sinusoidal time embedding as a heatmap (embedding dimension × t), and a few of its channels."""
    t, emb, channels = embedding_data(dim, T)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 2]})
    im = ax.imshow(emb.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, origin="lower", extent=(0, T - 1, 0, dim))
    ax.set(xlabel="t", ylabel="embedding channel", title=f"Sinusoidal embedding (dim {dim}): sin half, then cos half")
    fig.colorbar(im, ax=ax)
    for c in channels:
        ax2.plot(t, emb[:, c], label=f"channel {c}")
    ax2.set(xlabel="t", title="fast to slow frequencies")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def embedding_plotly(dim: int, T: int, *, t_max: int | None = None) -> go.Figure:
    """The embedding of t = 0 … ``t_max`` (default min(T, 200)): a heatmap of channel × t and four channels as
    lines. Over all of a long T the fast channels alias into a solid block; the first ``t_max`` steps show
    every frequency resolved."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    dim, T = check_int(dim, "dim", min=2), check_int(T, "T", min=2)
    t_max = min(T, 200) if t_max is None else check_int(t_max, "t_max", min=2)
    t, emb, channels = embedding_data(dim, t_max)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.12,
                        subplot_titles=(f"channels × t (t < {t_max}): sin half, then cos half", "fast to slow"))
    fig.add_trace(go.Heatmap(z=emb.T, x=t, y=np.arange(dim), colorscale="RdBu_r", zmin=-1, zmax=1,
                             colorbar={"x": 0.54, "len": 0.9, "thickness": 12},
                             hovertemplate="t = %{x}<br>channel %{y}<br>value %{z:.3f}<extra></extra>"), row=1, col=1)
    for c in channels:
        fig.add_trace(go.Scatter(x=t, y=emb[:, c], mode="lines", name=f"channel {c}",
                                 hovertemplate="t = %{x}: %{y:.3f}<extra>channel " + str(c) + "</extra>"), row=1, col=2)
    fig.update_xaxes(title_text="t")
    fig.update_yaxes(title_text="embedding channel", row=1, col=1)
    fig.update_layout(height=380, margin={"t": 40, "b": 10}, legend={"orientation": "h", "y": -0.2, "x": 0.62})
    return fig


def _forward_1d(mixture: GaussianMixture, schedule: NoiseSchedule, x0, ts, n_samples: int, g, units: str) -> Figure:
    """Forward figure, 1-D: the exact density heatmap t × x, and a histogram of q_sample draws at each of ``ts``."""
    ab = schedule.alpha_bars
    lo, hi = extent(x0, mixture)
    lo, hi = min(lo[0], -4.0), max(hi[0], 4.0)
    grid = torch.linspace(lo, hi, 300, dtype=torch.float64)[:, None]
    t_axis = np.unique(np.linspace(0, schedule.T - 1, 150).round().astype(int))
    dens = np.stack([mixture.log_prob(grid, ab[t].item()).exp().numpy() for t in t_axis])
    fig, axes = plt.subplots(1, len(ts) + 1, figsize=(3 * (len(ts) + 1), 3.8), constrained_layout=True,
                             gridspec_kw={"width_ratios": [2] + [1] * len(ts)})
    axes[0].imshow(dens.T, origin="lower", aspect="auto", cmap="viridis", extent=(t_axis[0], t_axis[-1], lo, hi))
    axes[0].set(xlabel="t", ylabel=f"x_t ({units})", title="exact density of x_t")
    for ax, t in zip(axes[1:], ts):
        xt = q_sample(schedule, x0, torch.full((n_samples,), int(t)), generator=g)
        ax.hist(to_numpy(xt)[:, 0], bins=60, range=(lo, hi), density=True, color=MPL_SAMPLE, alpha=0.5,
                orientation="horizontal", label="q_sample")
        ax.plot(mixture.log_prob(grid, ab[t].item()).exp().numpy(), grid[:, 0], color=MPL_TRUE, label="exact")
        ax.set(title=f"t = {t}, ᾱ = {ab[t]:.3f}", xlabel="density", ylim=(lo, hi))
    axes[1].legend(fontsize=8)
    return fig


def _forward_2d(mixture: GaussianMixture, schedule: NoiseSchedule, x0, ts, n_samples: int, g, units: str) -> Figure:
    """Forward figure, 2-D: q_sample draws over closed contours of the exact density (at 10–90 % of its peak,
    so no level runs off the box as a stray fragment), one equal-aspect panel per step of ``ts``."""
    ab = schedule.alpha_bars
    fig, axes = plt.subplots(1, len(ts), figsize=(3.2 * len(ts), 4.3), sharex=True, sharey=True,
                             constrained_layout=True, squeeze=False)
    lim = max(4.0, float(np.abs(to_numpy(x0)).max()) * 1.1)
    xs = torch.linspace(-lim, lim, 160, dtype=torch.float64)
    XX, YY = torch.meshgrid(xs, xs, indexing="xy")
    pts = torch.stack([XX.reshape(-1), YY.reshape(-1)], 1)
    for ax, t in zip(axes[0], ts):
        xt = to_numpy(q_sample(schedule, x0, torch.full((n_samples,), int(t)), generator=g))
        ax.scatter(xt[:, 0], xt[:, 1], s=2, color=MPL_SAMPLE, alpha=0.3)
        p = mixture.log_prob(pts, ab[t].item()).exp().reshape(XX.shape).numpy()
        ax.contour(XX.numpy(), YY.numpy(), p, levels=p.max() * np.array([0.1, 0.3, 0.5, 0.7, 0.9]), colors=MPL_TRUE,
                   linewidths=0.8)
        ax.set(title=f"t = {t}, ᾱ = {ab[t]:.3f}", aspect="equal", xlim=(-lim, lim), ylim=(-lim, lim),
               xlabel=f"x ({units})")
    axes[0, 0].set_ylabel(f"y ({units})")
    return fig


def forward_density_mpl(mixture: GaussianMixture, schedule: NoiseSchedule, *, n_samples: int = 4000,
                        n_panels: int = 5, generator: torch.Generator | None = None,
                        units: str = "normalised units") -> Figure:
    """The forward process: the exact density of x_t over t, beside histograms of q_sample draws.

    1-D: a heatmap t × x of the exact marginal and histograms at ``n_panels`` steps. 2-D: the exact
    density contours and sampled points at ``n_panels`` steps. ``units`` names the space of ``mixture`` on
    every axis: the default is a run's oracle, the normalised data the model diffuses in (pass ``"data units"``
    with a data set's own mixture).
    """
    g = generator or torch.Generator().manual_seed(0)
    ts = np.linspace(0, schedule.T - 1, check_int(n_panels, "n_panels", min=1)).round().astype(int)
    x0 = mixture.sample(n_samples, g)
    if mixture.D == 1:
        fig = _forward_1d(mixture, schedule, x0, ts, n_samples, g, units)
    elif mixture.D == 2:
        fig = _forward_2d(mixture, schedule, x0, ts, n_samples, g, units)
    else:
        raise ValueError("forward_density draws 1-D and 2-D mixtures")
    fig.suptitle(f"Forward process q(x_t | x_0) on the {schedule.name} schedule, {units}: exact (blue) vs sampled "
                 "(red)")
    return fig
