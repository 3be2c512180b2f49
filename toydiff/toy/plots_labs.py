"""Figures for the likelihood and memorisation labs (matplotlib). Every function returns a ``Figure``.

- :func:`likelihood_check`: PF-ODE log p_θ(x) against the exact log p(x), one dot per held-out point;
- :func:`elbo_by_step`: the variational bound's terms L_t for models against the oracle's, and where they differ;
- :func:`memorisation_scatter`: training points, samples, and which samples copy a training point (2-D or 1-D).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from toydiff.evaluation.elbo import ELBOTerms

__all__ = ["likelihood_check", "elbo_by_step", "memorisation_scatter"]


def _np(x) -> np.ndarray:
    return x.detach().double().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def likelihood_check(exact_log_p, estimates: dict, *, title: str = "PF-ODE log-likelihood") -> Figure:
    """Scatter of ODE estimates (``{label: log p [N]}``) against the exact log p ``[N]``, with y = x."""
    fig, ax = plt.subplots(figsize=(5, 4.6), constrained_layout=True)
    ex = _np(exact_log_p)
    for label, lp in estimates.items():
        est = _np(lp)
        ax.scatter(ex, est, s=9, alpha=0.7, label=f"{label} (mean gap {np.mean(ex - est):+.3f} nats)")
    lo, hi = ex.min(), ex.max()
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set(xlabel="exact log p(x) [nats]", ylabel="PF-ODE log p_θ(x) [nats]", title=title)
    ax.legend(fontsize=8)
    return fig


def elbo_by_step(terms: dict[str, ELBOTerms], *, reference: str = "oracle", title: str = "ELBO by step") -> Figure:
    """Left: L_t against t (log scale; t = 0 is the decoder, left out) for each entry of ``terms``. Right: each
    entry's excess over ``reference``, L_t − L_t(reference), with its cumulative sum: where likelihood is lost."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    ref = terms.get(reference)
    for label, tr in terms.items():
        t = np.arange(1, len(tr.per_t))
        a.plot(t, np.clip(_np(tr.per_t[1:]), 1e-8, None), label=f"{label}: total {tr.total:.3f} nats")
        if ref is not None and label != reference:
            gap = _np(tr.per_t - ref.per_t)
            b.plot(np.arange(len(gap)), gap, label=f"{label} − {reference} per step")
            b.plot(np.arange(len(gap)), np.cumsum(gap), "--", label=f"cumulative ({np.sum(gap):+.3f} nats)")
    a.set(yscale="log", xlabel="step t", ylabel="L_t [nats]", title=title)
    b.axhline(0, color="k", lw=0.8)
    b.set(xlabel="step t", ylabel="excess [nats]", title="where the model loses likelihood")
    a.legend(fontsize=8)
    if b.lines[1:]:
        b.legend(fontsize=8)
    return fig


def memorisation_scatter(train, samples: dict, copies: dict, *, title: str = "Memorisation") -> Figure:
    """One panel per ``samples`` entry: training points (black), samples coloured by copy (red) or not (blue)."""
    fig, axes = plt.subplots(1, len(samples), figsize=(4.6 * len(samples), 4.4), constrained_layout=True,
                             squeeze=False)
    tr = _np(train)
    for ax, (label, x) in zip(axes[0], samples.items()):
        xs, cp = _np(x), _np(copies[label]).astype(bool)
        if xs.shape[1] == 1:
            bins = np.linspace(min(xs.min(), tr.min()), max(xs.max(), tr.max()), 200)
            ax.hist([xs[cp, 0], xs[~cp, 0]], bins=bins, stacked=True, color=["tab:red", "tab:blue"],
                    label=["copies", "new"])
            ax.plot(tr[:, 0], np.zeros(len(tr)), "k|", ms=12, label="training points")
        else:
            ax.scatter(tr[:, 0], tr[:, 1], s=40, facecolors="none", edgecolors="k", lw=0.8, label="training points")
            ax.scatter(xs[~cp, 0], xs[~cp, 1], s=3, c="tab:blue", alpha=0.5, label="new")
            ax.scatter(xs[cp, 0], xs[cp, 1], s=3, c="tab:red", alpha=0.5, label="copies")
        ax.set_title(f"{label}: copy rate {cp.mean():.0%}")
        ax.legend(fontsize=7, markerscale=2)
    fig.suptitle(title)
    return fig
