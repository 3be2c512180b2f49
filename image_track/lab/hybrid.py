"""Hybrid images by factorized diffusion (Geng et al. 2024): class a from afar, class b close up.

The denoiser is lowpass(ε̂(x_t, a)) + highpass(ε̂(x_t, b)) with a Gaussian blur as the low-pass
(:func:`image_track.lab.combinators.hybrid_eps_fn`); the blur is the seed's kernel 33 / σ 2 at 64 px scaled to
the model's image size (kernel 15, σ 0.875 at 28 px). The result is shown at full size and shrunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

import toydiff as td
from toydiff.checks import check_choice, check_int
from image_track.images import downsample, gaussian_blur, scaled_blur

from image_track.lab.combinators import hybrid_eps_fn
from image_track.lab.common import (METHOD, STRIDE, LoadedModel, check_class, finish, judge, new_figure, show, strided_sample,
                     to_numpy, verdict)

__all__ = ["HybridResult", "hybrid", "plot_hybrid"]


@dataclass
class HybridResult:
    samples: np.ndarray  # [n, H, W]
    far: np.ndarray  # [n, s, s]: area-averaged to ``far_size`` (what survives at a distance)
    low: int
    high: int
    kernel: int
    sigma: float
    w: float | None = None
    probs: np.ndarray | None = None  # [n, 10] MNIST-classifier probabilities close up (None: no classifier)
    probs_far: np.ndarray | None = None  # [n, 10] of the far view scaled back up to full size


def hybrid(model: LoadedModel, *, low: int = 1, high: int = 7, w: float | None = 3.0, n: int = 4,
           kernel: int | None = None, sigma: float | None = None, far_size: int = 7, method: str = METHOD,
           stride: int = STRIDE, clip_x0: float | None = 1.0, seed: int = 0, out=None,
           progress: bool = False) -> HybridResult:
    """Sample ``n`` hybrids: the low frequencies of class ``low``, the high ones of class ``high``.

    ``kernel``/``sigma`` default to :func:`image_track.images.scaled_blur` of the image size; ``w`` is the
    guidance scale of both denoisers; ``far_size`` the side of the "seen from afar" view.
    """
    check_choice(method, "method", td.METHODS)
    low, high = check_class(low, "low", model.num_classes), check_class(high, "high", model.num_classes)
    n = check_int(n, "n", min=1)
    size = model.image_size
    k0, s0 = scaled_blur(size)
    kernel, sigma = (k0 if kernel is None else kernel), (s0 if sigma is None else float(sigma))
    lowpass = partial(gaussian_blur, kernel_size=kernel, sigma=sigma)
    lowpass(torch.zeros(1, 1, size, size))  # validates kernel and sigma before sampling
    far_size = check_int(far_size, "far_size", min=1, max=size)
    eps = hybrid_eps_fn(model.eps_fn(low, n, w=w), model.eps_fn(high, n, w=w), lowpass)
    x = strided_sample(model, eps, n, method=method, stride=stride, clip_x0=clip_x0, seed=seed, progress=progress)
    far = downsample(x, far_size)  # [n, 1, far_size, far_size]
    back = torch.nn.functional.interpolate(far, size=(size, size), mode="bilinear", align_corners=False)
    res = HybridResult(samples=to_numpy(x[:, 0]), far=to_numpy(far[:, 0]), low=low, high=high, kernel=kernel,
                       sigma=sigma, w=w, probs=judge(x), probs_far=judge(back))
    return finish(res, plot_hybrid, out)


def plot_hybrid(res: HybridResult):
    """Top: each hybrid close up; bottom: the same picture drawn small (viewed from afar)."""
    n = len(res.samples)
    fig = new_figure(1.7 * n + 1.2, 3.3)
    axes = fig.subplots(2, n, squeeze=False, gridspec_kw={"height_ratios": [4, 1]})
    for i in range(n):
        show(axes[0, i], res.samples[i], f"#{i + 1}", fontsize=8)
        axes[0, i].set_xlabel(verdict(res.probs, i), fontsize=7)
        show(axes[1, i], res.samples[i])
        axes[1, i].set_xlabel(verdict(res.probs_far, i), fontsize=7)
    axes[0, 0].set_ylabel(f"close up:\nhigh freq. = {res.high}", fontsize=9)
    axes[1, 0].set_ylabel(f"afar:\n{res.low}", fontsize=9)
    wtxt = "" if res.w is None else f", w = {res.w:g}"
    fig.suptitle(f"Hybrid: lowpass(ε({res.low})) + highpass(ε({res.high})), Gaussian kernel {res.kernel}, "
                 f"σ = {res.sigma:g}{wtxt}", fontsize=10)
    return fig
