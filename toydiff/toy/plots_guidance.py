"""Figures for guidance on labelled 2-D mixtures (:mod:`toydiff.toy.guidance_eval`). Each returns a ``Figure``.

    fig = guided_panels({w: samples_w}, {w: tilted_target(gm.condition(y), gm, w)}, title="exact CFG")
    fig = guidance_curves(rows)             # distance to the tilted target and to p(x|y) against w
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from toydiff.exact.mixture import GaussianMixture
from toydiff.exact.guidance import TiltedTarget

__all__ = ["guided_panels", "guidance_curves", "class_posterior_map"]


def _np(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def guided_panels(samples: Mapping[float, torch.Tensor], targets: Mapping[float, TiltedTarget], *,
                  title: str = "Guided samples over the tilted target p(x|y)^w p(x)^(1-w)",
                  max_points: int = 1500) -> Figure:
    """One panel per w: the tilted target's density (shaded, from ``targets[w]``) and the samples ``[N, 2]``."""
    ws = list(samples)
    if not ws or any(w not in targets for w in ws):
        raise ValueError("samples and targets must share their keys (the w values), and not be empty")
    fig, axes = plt.subplots(1, len(ws), figsize=(3.2 * len(ws), 3.4), squeeze=False)
    for ax, w in zip(axes[0], ws):
        tg, x = targets[w], _np(samples[w])[:max_points]
        ext = [float(tg.xs[0]), float(tg.xs[-1]), float(tg.ys[0]), float(tg.ys[-1])]
        ax.imshow(_np(tg.density), origin="lower", extent=ext, cmap="Blues", aspect="equal")
        ax.scatter(x[:, 0], x[:, 1], s=2, color="tab:red", alpha=0.4)
        ax.set(title=f"w = {w:g}", xlim=ext[:2], ylim=ext[2:], xticks=[], yticks=[])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def guidance_curves(rows: Sequence, *, title: str = "What CFG samples, against w") -> Figure:
    """Sliced W1 to the tilted target and to p(x | y), and the off-data share, against w: one line per
    (source, interval), the noise floor dashed. ``rows``: :class:`~toydiff.toy.guidance_eval.GuidanceRow` s or dicts."""
    rs = [r if isinstance(r, dict) else r.to_dict() for r in rows]
    if not rs:
        raise ValueError("rows must not be empty")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rs:
        groups.setdefault((r["source"], r["interval"]), []).append(r)
    for (src, iv), g in groups.items():
        g = sorted(g, key=lambda r: r["w"])
        w = [r["w"] for r in g]
        for ax, key in zip(axes, ("sw_tilted", "sw_cond", "off_data")):
            ax.plot(w, [r[key] for r in g], marker="o", label=f"{src}, {iv}")
    for ax, key, name in zip(axes[:2], ("sw_tilted", "sw_cond"), ("tilted target", "p(x | y)")):
        g = sorted(rs, key=lambda r: r["w"])
        ax.plot([r["w"] for r in g], [r[f"{key}_floor"] for r in g], ls="--", color="grey", label="noise floor")
        ax.set(xlabel="w (ε_u + w (ε_c − ε_u))", ylabel="sliced W1", title=f"distance to {name}")
    axes[2].set(xlabel="w", ylabel="share", title="off-data share (> 3σ from every mode)")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def class_posterior_map(mixture: GaussianMixture, alpha_bar: float, y: int, *, n: int = 150,
                        extent: tuple[float, float, float, float] | None = None) -> Figure:
    """p(y | x_t) over the plane at noise level ``alpha_bar`` (exact), with the noised mixture's component means."""
    if mixture.D != 2:
        raise ValueError(f"class_posterior_map needs a 2-D mixture, got D = {mixture.D}")
    mu = mixture.means * float(alpha_bar) ** 0.5
    if extent is None:
        lo, hi = mu.min(0).values - 2.5, mu.max(0).values + 2.5
        extent = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
    xs, ys = np.linspace(extent[0], extent[1], n), np.linspace(extent[2], extent[3], n)
    XX, YY = np.meshgrid(xs, ys)
    pts = torch.from_numpy(np.stack([XX.ravel(), YY.ravel()], 1))
    p = mixture.class_posterior(pts, alpha_bar=alpha_bar)[:, y].numpy().reshape(XX.shape)
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(p, origin="lower", extent=extent, cmap="viridis", vmin=0, vmax=1, aspect="equal")
    ax.scatter(_np(mu)[:, 0], _np(mu)[:, 1], c=_np(mixture.labels), cmap="tab10", vmin=0, vmax=9, s=25,
               edgecolors="white", label="noised component means (colour: class)")
    ax.legend(loc="lower right", fontsize=7)
    fig.colorbar(im, ax=ax, label=f"p(y = {y} | x_t)")
    ax.set(title=f"exact class posterior, ᾱ = {float(alpha_bar):.3g}")
    fig.tight_layout()
    return fig
