"""Figures for the toy track (matplotlib + seaborn). Every function returns a ``Figure`` and never shows it.

1-D points are ``[N, 1]``, 2-D points ``[N, 2]``; tensors or arrays are accepted.
"""

from __future__ import annotations

from typing import Callable, Sequence


import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure

from toydiff.checks import check_int
from toydiff.embeddings import sinusoidal_embedding
from toydiff.exact.mixture import GaussianMixture
from toydiff.processes.forward import q_sample
from toydiff.processes.schedules import NoiseSchedule
from toydiff.training.engine import History

__all__ = [
    "kde_vs_histogram",
    "trajectories",
    "forward_density",
    "schedule_curves",
    "embedding_heatmap",
    "loss_curves",
    "scatter_with_density",
    "vector_fields",
    "samples_vs_truth",
    "eps_comparison",
    "trajectories_2d",
    "convergence",
]

TRUE_COLOR, SAMPLE_COLOR = "tab:blue", "tab:red"


def _np(x) -> np.ndarray:
    return (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)).astype(np.float64)


def _extent(points: np.ndarray, mixture: GaussianMixture | None, pad: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    if mixture is not None:
        std = _np(mixture.covs.diagonal(dim1=1, dim2=2).sqrt())
        lo, hi = (_np(mixture.means) - 4 * std).min(0), (_np(mixture.means) + 4 * std).max(0)
    else:
        lo, hi = np.quantile(points, 0.001, axis=0), np.quantile(points, 0.999, axis=0)
    span = hi - lo
    return lo - pad * span, hi + pad * span


def kde_vs_histogram(samples, *, mixture: GaussianMixture | None = None, true_samples=None,
                     title: str = "Sampled vs true distribution", bins: int = 60) -> Figure:
    """The seed exercise's Figure 1: a density histogram of the samples over the true density.

    The truth is drawn as the exact mixture density when ``mixture`` is given and as a seaborn KDE of
    ``true_samples`` when those are given (both if both). 1-D only.
    """
    x = _np(samples).reshape(len(samples), -1)
    if x.shape[1] != 1:
        raise ValueError("kde_vs_histogram is for 1-D samples [N, 1]; use scatter_with_density in 2-D")
    lo, hi = _extent(x, mixture)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(x[:, 0], bins=np.linspace(lo[0], hi[0], bins), density=True, color=SAMPLE_COLOR, alpha=0.55,
            label=f"samples (n = {len(x):,})")
    if true_samples is not None:
        sns.kdeplot(x=_np(true_samples).reshape(-1), ax=ax, color=TRUE_COLOR, lw=2, ls="--", label="KDE of true samples")
    if mixture is not None:
        grid = np.linspace(lo[0], hi[0], 600)
        ax.plot(grid, mixture.log_prob(torch.from_numpy(grid)[:, None]).exp().numpy(), color=TRUE_COLOR, lw=2,
                label="exact density")
    ax.set(xlabel="x", ylabel="density", title=title, xlim=(lo[0], hi[0]))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def trajectories(path, timesteps: Sequence[int], *, mixture: GaussianMixture | None = None,
                 title: str = "Reverse-process trajectories", max_lines: int = 200) -> Figure:
    """The seed exercise's Figure 2: tracked 1-D samples x_t against the step, coloured by the mode they end in.

    Args:
        path: ``[S + 1, n, 1]`` — the kept x_t then the final sample (``TrajectoryRecorder.path()``).
        timesteps: the t of each of the S kept rows (``TrajectoryRecorder.timesteps``).
        mixture: colours each line by its final sample's most responsible component; the final density is
            drawn on the right.
    """
    p = _np(path)
    if p.ndim != 3 or p.shape[2] != 1:
        raise ValueError(f"path must have shape [S + 1, n, 1], got {p.shape}")
    steps = np.array(list(timesteps) + [-1]) + 1  # t + 1 noising steps remain; 0 = clean
    n = min(p.shape[1], max_lines)
    palette = sns.color_palette("tab10")
    if mixture is not None:
        modes = mixture.responsibilities(torch.from_numpy(p[-1, :n])).argmax(1).numpy()
    else:
        modes = np.zeros(n, dtype=int)
    fig, (ax, side) = plt.subplots(1, 2, figsize=(10, 4.5), gridspec_kw={"width_ratios": [5, 1]}, sharey=True)
    for i in range(n):
        ax.plot(steps, p[:, i, 0], color=palette[modes[i] % 10], alpha=0.35, lw=0.8)
    ax.invert_xaxis()
    ax.set(xlabel="noising steps remaining (t + 1)", ylabel="x_t", title=f"{title} ({n} samples)")
    ax.grid(alpha=0.3)
    side.hist(p[-1, :, 0], bins=40, orientation="horizontal", density=True, color=SAMPLE_COLOR, alpha=0.5)
    if mixture is not None:
        grid = np.linspace(p.min(), p.max(), 400)
        side.plot(mixture.log_prob(torch.from_numpy(grid)[:, None]).exp().numpy(), grid, color=TRUE_COLOR)
        for k in range(mixture.K):
            ax.plot([], [], color=palette[k % 10], label=f"ends in mode {k} (mean {mixture.means[k].tolist()[0]:.2g})")
        ax.legend(loc="upper left", fontsize=8)
    side.set(xlabel="density", title="x_0")
    fig.tight_layout()
    return fig


def forward_density(mixture: GaussianMixture, schedule: NoiseSchedule, *, n_samples: int = 4000,
                    n_panels: int = 5, generator: torch.Generator | None = None) -> Figure:
    """The forward process: the exact density of x_t over t, beside histograms of q_sample draws.

    1-D: a heatmap t × x of the exact marginal and histograms at ``n_panels`` steps. 2-D: the exact
    density contours and sampled points at ``n_panels`` steps.
    """
    g = generator or torch.Generator().manual_seed(0)
    ts = np.linspace(0, schedule.T - 1, n_panels).round().astype(int)
    ab = schedule.alpha_bars
    x0 = mixture.sample(n_samples, g)
    if mixture.D == 1:
        lo, hi = _extent(_np(x0), mixture)
        lo, hi = min(lo[0], -4.0), max(hi[0], 4.0)
        grid = torch.linspace(lo, hi, 300, dtype=torch.float64)[:, None]
        t_axis = np.unique(np.linspace(0, schedule.T - 1, 150).round().astype(int))
        dens = np.stack([mixture.log_prob(grid, ab[t].item()).exp().numpy() for t in t_axis])
        fig, axes = plt.subplots(1, n_panels + 1, figsize=(3 * (n_panels + 1), 3.6),
                                 gridspec_kw={"width_ratios": [2] + [1] * n_panels})
        axes[0].imshow(dens.T, origin="lower", aspect="auto", cmap="viridis",
                       extent=(t_axis[0], t_axis[-1], lo, hi))
        axes[0].set(xlabel="t", ylabel="x_t", title="exact density of x_t")
        for ax, t in zip(axes[1:], ts):
            xt = q_sample(schedule, x0, torch.full((n_samples,), int(t)), generator=g)
            ax.hist(_np(xt)[:, 0], bins=60, range=(lo, hi), density=True, color=SAMPLE_COLOR, alpha=0.5,
                    orientation="horizontal", label="q_sample")
            ax.plot(mixture.log_prob(grid, ab[t].item()).exp().numpy(), grid[:, 0], color=TRUE_COLOR, label="exact")
            ax.set(title=f"t = {t}, ᾱ = {ab[t]:.3f}", xlabel="density", ylim=(lo, hi))
        axes[1].legend(fontsize=8)
    elif mixture.D == 2:
        fig, axes = plt.subplots(1, n_panels, figsize=(3.2 * n_panels, 3.4), sharex=True, sharey=True)
        lim = max(4.0, float(np.abs(_np(x0)).max()) * 1.1)
        xs = torch.linspace(-lim, lim, 120, dtype=torch.float64)
        XX, YY = torch.meshgrid(xs, xs, indexing="xy")
        pts = torch.stack([XX.reshape(-1), YY.reshape(-1)], 1)
        for ax, t in zip(axes, ts):
            xt = _np(q_sample(schedule, x0, torch.full((n_samples,), int(t)), generator=g))
            ax.scatter(xt[:, 0], xt[:, 1], s=2, color=SAMPLE_COLOR, alpha=0.3)
            ax.contour(XX, YY, mixture.log_prob(pts, ab[t].item()).exp().reshape(XX.shape), levels=6, colors=TRUE_COLOR,
                       linewidths=0.8)
            ax.set(title=f"t = {t}, ᾱ = {ab[t]:.3f}", aspect="equal")
    else:
        raise ValueError("forward_density draws 1-D and 2-D mixtures")
    fig.suptitle(f"Forward process q(x_t | x_0) on the {schedule.name} schedule: exact (blue) vs sampled (red)")
    fig.tight_layout()
    return fig


def schedule_curves(*schedules: NoiseSchedule, labels: Sequence[str] | None = None) -> Figure:
    """β_t, ᾱ_t and SNR_t (log scale) of one or more schedules, overlaid, against t / T."""
    if not schedules:
        raise ValueError("give at least one schedule")
    labels = list(labels) if labels is not None else [f"{s.name} (T={s.T})" for s in schedules]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for s, lab in zip(schedules, labels):
        u = np.arange(s.T) / s.T
        axes[0].plot(u, _np(s.betas), label=lab)
        axes[1].plot(u, _np(s.alpha_bars), label=lab)
        axes[2].semilogy(u, _np(s.snr), label=lab)
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


def embedding_heatmap(dim: int = 64, T: int = 1000) -> Figure:
    """The sinusoidal time embedding as a heatmap (embedding dimension × t), and a few of its channels."""
    t = torch.arange(T)
    emb = sinusoidal_embedding(t, dim).numpy()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 2]})
    im = ax.imshow(emb.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, origin="lower", extent=(0, T - 1, 0, dim))
    ax.set(xlabel="t", ylabel="embedding channel", title=f"Sinusoidal embedding (dim {dim}): sin half, then cos half")
    fig.colorbar(im, ax=ax)
    for c in (0, dim // 8, dim // 4, dim // 2 - 1):
        ax2.plot(t, emb[:, c], label=f"channel {c}")
    ax2.set(xlabel="t", title="fast to slow frequencies")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loss_curves(history: History, *, title: str = "Training", meta: dict | None = None) -> Figure:
    """Train and held-out loss per epoch against the Bayes-optimal floor, and the held-out loss by t bucket.
    ``meta``: the run's checkpoint metadata (``ToyRun.metadata``), which names the prediction, the process's time
    and the training target (a stable-target run's train loss sits below the floor by design)."""
    if not history.records:
        raise ValueError("history has no epochs yet")
    meta = meta or {}
    flow = meta.get("process") == "flow"
    pred = {"eps": "ε", "velocity": "velocity"}.get(meta.get("prediction", "eps"), meta.get("prediction"))
    ep = history.column("epoch")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    train = "train (stable target: below the floor by design)" if meta.get("target") == "stf" else "train"
    ax.plot(ep, history.train_loss, label=train)
    ax.plot(ep, history.val_loss, label="held-out (EMA weights)")
    if history.floor is not None:
        ax.axhline(history.floor, color="k", ls="--", lw=1, label=f"Bayes-optimal floor {history.floor:.4f}")
    ax.set(xlabel="epoch", ylabel=f"{pred}-prediction MSE", title=f"{title}: loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    nb = history.n_buckets
    centers = (np.arange(nb) + 0.5) / nb
    last = np.array(history.records[-1]["val_by_bucket"])
    first = np.array(history.records[0]["val_by_bucket"])
    ax2.plot(centers, first, "o-", alpha=0.5, label=f"epoch {ep[0]}")
    ax2.plot(centers, last, "o-", label=f"epoch {ep[-1]}")
    if history.floor_by_bucket is not None:
        ax2.plot(centers, history.floor_by_bucket, "k--", label="floor per bucket")
    ax2.set(xlabel="t (bucket centre; 0 = data, 1 = noise)" if flow else "t / T (bucket centre)",
            ylabel="held-out MSE", title="held-out loss by t bucket" if flow else "loss by t bucket: low t is hardest")
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def scatter_with_density(samples, *, mixture: GaussianMixture | None = None, true_samples=None,
                         title: str = "Samples") -> Figure:
    """2-D samples over the exact density's contours (or over true samples where no density is known)."""
    x = _np(samples)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"scatter_with_density is for 2-D samples [N, 2], got {x.shape}")
    lo, hi = _extent(x if true_samples is None else _np(true_samples), mixture)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    if true_samples is not None:
        t = _np(true_samples)
        ax.scatter(t[:, 0], t[:, 1], s=2, color=TRUE_COLOR, alpha=0.25, label="true samples")
    if mixture is not None:
        xs, ys = np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150)
        XX, YY = np.meshgrid(xs, ys)
        logp = mixture.log_prob(torch.from_numpy(np.stack([XX.ravel(), YY.ravel()], 1))).numpy().reshape(XX.shape)
        ax.contour(XX, YY, np.exp(logp), levels=8, colors=TRUE_COLOR, linewidths=0.8)
        ax.plot([], [], color=TRUE_COLOR, label="exact density")
    ax.scatter(x[:, 0], x[:, 1], s=3, color=SAMPLE_COLOR, alpha=0.4, label=f"samples (n = {len(x):,})")
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), aspect="equal", title=title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def vector_fields(eps_fns: dict[str, Callable], schedule: NoiseSchedule, t: int, *,
                  extent: tuple[float, float] = (-3.0, 3.0), n: int = 21) -> Figure:
    """−ε̂(x, t) (the score direction, scaled) on a grid, one panel per denoiser (e.g. learned vs exact)."""
    xs = torch.linspace(extent[0], extent[1], n)
    XX, YY = torch.meshgrid(xs, xs, indexing="xy")
    pts = torch.stack([XX.reshape(-1), YY.reshape(-1)], 1)
    tt = torch.full((pts.shape[0],), int(t))
    fig, axes = plt.subplots(1, len(eps_fns), figsize=(5 * len(eps_fns), 5), squeeze=False)
    for ax, (name, fn) in zip(axes[0], eps_fns.items()):
        with torch.no_grad():
            e = _np(fn(pts, tt))
        mag = np.linalg.norm(e, axis=1)
        ax.quiver(XX.numpy(), YY.numpy(), -e[:, 0].reshape(XX.shape), -e[:, 1].reshape(XX.shape), mag, cmap="viridis")
        ax.set(title=f"{name}: −ε(x, t={t}), ᾱ = {schedule.alpha_bar(int(t)):.3f}", aspect="equal")
    fig.tight_layout()
    return fig


def samples_vs_truth(samples, *, mixture: GaussianMixture | None = None, true_samples=None,
                     title: str = "Samples") -> Figure:
    """:func:`kde_vs_histogram` for 1-D samples ``[N, 1]``, :func:`scatter_with_density` for 2-D ``[N, 2]``."""
    dim = _np(samples).reshape(len(samples), -1).shape[1]
    if dim == 1:
        return kde_vs_histogram(samples, mixture=mixture, true_samples=true_samples, title=title)
    return scatter_with_density(samples, mixture=mixture, true_samples=true_samples, title=title)


def eps_comparison(learned: Callable, schedule: NoiseSchedule, t: int, *, oracle: GaussianMixture | None = None,
                   extent: tuple[float, float] = (-3.5, 3.5)) -> Figure:
    """A learned ε̂(x, t) against the exact ε*(x, t) = E[ε | x_t = x] of ``oracle`` at step ``t``.

    1-D: both curves over x, with the exact density of x_t shaded on a second axis. 2-D: their fields side by
    side (:func:`vector_fields`). ``learned`` is called as ``learned(x [N, D] float32, t [N])``.
    """
    t = check_int(t, "t", min=0, max=schedule.T - 1)
    dim = getattr(getattr(learned, "config", None), "dim", None) or (oracle.D if oracle is not None else 1)
    if dim != 1:
        fns = {"learned ε̂": learned, **({"exact ε*": oracle.eps_fn(schedule)} if oracle is not None else {})}
        return vector_fields(fns, schedule, t, extent=extent, n=21)
    ab = schedule.alpha_bar(t)
    grid = torch.linspace(extent[0], extent[1], 400)[:, None]
    with torch.no_grad():
        e_hat = _np(learned(grid, torch.full((len(grid),), t)))[:, 0]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(grid[:, 0], e_hat, color=SAMPLE_COLOR, lw=2, label="learned ε̂(x_t, t)")
    if oracle is not None:
        ax.plot(grid[:, 0], _np(oracle.eps_star(grid.double(), ab))[:, 0], "k--", lw=1.5,
                label="exact ε*(x_t, t) = E[ε | x_t]")
        ax2 = ax.twinx()
        ax2.fill_between(grid[:, 0], _np(oracle.log_prob(grid.double(), ab).exp()), color=TRUE_COLOR, alpha=0.15,
                         label="p_t(x_t) (exact)")
        ax2.set_ylabel("density of x_t", color=TRUE_COLOR)
        ax2.set_ylim(bottom=0)
        ax2.legend(loc="lower right", fontsize=8)
    ax.set(xlabel="x_t (normalised)", ylabel="noise prediction", title=f"ε̂ vs ε* at t = {t} (ᾱ = {ab:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def trajectories_2d(path, *, n: int = 40, title: str = "Reverse trajectories") -> Figure:
    """The first ``n`` tracked 2-D paths ``[S + 1, N, 2]`` (``TrajectoryRecorder.path()``), start and end marked."""
    n = check_int(n, "n", min=1)
    p = _np(path)
    if p.ndim != 3 or p.shape[2] != 2:
        raise ValueError(f"path must have shape [S + 1, n, 2], got {p.shape}")
    k = min(n, p.shape[1])
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for i in range(k):
        ax.plot(p[:, i, 0], p[:, i, 1], lw=0.6, alpha=0.5)
    ax.scatter(p[-1, :k, 0], p[-1, :k, 1], s=10, color=SAMPLE_COLOR, zorder=3, label="x_0 (end)")
    ax.scatter(p[0, :k, 0], p[0, :k, 1], s=10, color="0.5", zorder=3, label="x_T (start)")
    ax.set(title=f"{title} ({k} samples)", aspect="equal", xlabel="x", ylabel="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def convergence(curves: dict[str, tuple[Sequence[float], Sequence[float]]], floor: float | None = None, *,
                metric: str = "distance", xlabel: str = "sampler steps") -> Figure:
    """Distance to the truth against cost, one line per sampler, log-log, with the two-sample noise floor.

    Args:
        curves: ``{sampler: (xs, distances)}``, xs being step counts or network evaluations.
        floor: the same distance between two independent true sets (drawn dashed).
    """
    if not curves:
        raise ValueError("give at least one curve")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, (xs, ys) in curves.items():
        if len(xs) != len(ys):
            raise ValueError(f"curve {name!r}: {len(xs)} x values but {len(ys)} distances")
        ax.plot(xs, ys, "o-", label=name)
    if floor is not None:
        ax.axhline(floor, color="k", ls="--", lw=1, label=f"noise floor (two true sets) {floor:.3g}")
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=f"{metric} to the truth",
           title=f"Distance to the truth against {xlabel}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
