"""Figures of MNIST digits and sample statistics (matplotlib). Every function returns a ``Figure`` and never
shows it. Images are ``[N, 1, H, W]`` in [-1, 1]."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from toydiff.checks import check_tensor
from toydiff.processes.forward import q_sample
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["noised_digits", "class_histogram"]


def noised_digits(x0: torch.Tensor, schedule: NoiseSchedule, ts: Sequence[int], *, eps: torch.Tensor | None = None,
                  generator: torch.Generator | None = None, title: str | None = None) -> Figure:
    """The forward process on digits: one row per image, columns x_0 then q_sample(x_0, t, ε) at each t.

    The same noise ε (``[N, 1, H, W]``, drawn with ``generator`` if not given) is used at every t, so the
    columns differ only in ᾱ_t. Gray scale is clipped to [-1, 1].
    """
    x0 = check_tensor(x0, "x0", min_ndim=4)
    if not ts:
        raise ValueError("ts must name at least one step")
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator)
    cols = [x0] + [q_sample(schedule, x0, int(t), eps) for t in ts]
    n = len(x0)
    fig, axes = plt.subplots(n, len(cols), figsize=(1.3 * len(cols) + 0.4, 1.3 * n + 0.5), squeeze=False)
    for j, col in enumerate(cols):
        head = "x_0" if j == 0 else f"t = {ts[j - 1]}\nᾱ = {schedule.alpha_bar(int(ts[j - 1])):.3f}"
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(col[i, 0].numpy(), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(head, fontsize=8)
    fig.suptitle(title or f"q_sample(x_0, t, ε) = √ᾱ_t x_0 + √(1 − ᾱ_t) ε on the {schedule.name} schedule",
                 fontsize=9)
    fig.tight_layout()
    return fig


def class_histogram(fractions: Sequence[float] | np.ndarray | torch.Tensor, n: int | None = None) -> Figure:
    """The share of samples a classifier assigns to each class, against the uniform share."""
    f = np.asarray(fractions.detach().cpu() if isinstance(fractions, torch.Tensor) else fractions, dtype=float)
    if f.ndim != 1 or len(f) == 0:
        raise ValueError(f"fractions must be one value per class, got shape {f.shape}")
    k = len(f)
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.bar(range(k), f, color="tab:blue")
    ax.axhline(1 / k, color="k", ls="--", lw=1, label=f"uniform ({1 / k:.2g})")
    ax.set(xticks=range(k), xlabel="class the classifier assigns", ylabel="fraction of samples",
           title="Class histogram" + ("" if n is None else f" of {n} samples"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
