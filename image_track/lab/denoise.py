"""Denoising three ways at t = 250, 500, 750: Gaussian blur, one-step x̂_0, iterative strided denoising.

The noisy image is x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε (:func:`toydiff.q_sample`). Then:

- classical: a Gaussian blur of x_t (it removes noise and detail alike);
- one step: x̂_0 = (x_t − sqrt(1 − ᾱ_t) ε̂(x_t, t)) / sqrt(ᾱ_t) (:func:`toydiff.eps_to_x0`);
- iterative: :func:`toydiff.sample` from x_t over the strided timesteps, starting at t: ``steps = [t, *s]``
  with ``s`` the entries of [990, 960, ..., 0] below t (t = 750 is entry 8 itself, so that is
  ``strided[8:]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

import toydiff as td
from toydiff.checks import check_choice, check_int
from image_track.images import gaussian_blur

from image_track.lab.common import (METHOD, STRIDE, LoadedModel, finish, load_input, new_figure, show, strided_timesteps,
                     to_numpy)

__all__ = ["DenoiseResult", "denoise", "plot_denoise", "plan_from"]


@dataclass
class DenoiseResult:
    """Arrays ``[K, H, W]`` (K noise levels) in [-1, 1] scale, and the inputs."""

    original: np.ndarray  # [H, W]
    timesteps: np.ndarray  # [K]
    noisy: np.ndarray
    blurred: np.ndarray
    one_step: np.ndarray
    iterative: np.ndarray
    caption: str = ""
    blur: tuple[int, float] = (7, 1.5)
    n_steps: tuple[int, ...] = ()


def plan_from(t: int, strided: Sequence[int]) -> list[int]:
    """The strided plan starting at ``t``: ``[t]`` followed by the entries of ``strided`` below ``t``."""
    return [int(t)] + [s for s in strided if s < t]


def denoise(model: LoadedModel, *, image=None, digit: int | None = None, index: int | None = None,
            timesteps: Sequence[int] = (250, 500, 750), i_starts: Sequence[int] | None = None,
            label: int | None = None,
            blur_kernel: int = 7, blur_sigma: float = 1.5, method: str = METHOD, stride: int = STRIDE,
            clip_x0: float | None = 1.0, seed: int = 0, out=None, progress: bool = False) -> DenoiseResult:
    """Noise one picture to each of ``timesteps`` and denoise it three ways; plot to ``out`` if given.

    Args:
        model: the denoiser and its schedule.
        image: a tensor ``[1, 1, H, W]`` or an image file; default an MNIST test ``digit`` / ``index``.
        timesteps: noise levels t in ``[0, T-1]``.
        i_starts: instead of ``timesteps``, indices into the strided timesteps (i -> t = strided[i]).
        label: condition the one-step and iterative denoisers on this class (default unconditional).
        blur_kernel, blur_sigma: the classical Gaussian blur.
        method: sampler for the iterative row (any of ``toydiff.METHODS``).
        seed: the noise ε and the sampler's noise.
    """
    check_choice(method, "method", td.METHODS)
    T = model.schedule.T
    strided = strided_timesteps(T, stride)
    if i_starts is not None:
        timesteps = [strided[check_int(i, "i_starts", min=0, max=len(strided) - 1)] for i in i_starts]
    ts = [check_int(t, "timesteps", min=0, max=T - 1) for t in timesteps]
    if not ts:
        raise ValueError("timesteps (or i_starts) must name at least one noise level")
    x0, caption = load_input(image, digit=digit, index=index, size=model.image_size)
    K = len(ts)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(x0.shape, generator=g).expand(K, *x0.shape[1:])  # the same ε at every level
    t = torch.tensor(ts, dtype=torch.long)
    x_t = td.q_sample(model.schedule, x0.expand(K, *x0.shape[1:]), t, eps)  # [K, 1, H, W]

    blurred = gaussian_blur(x_t, blur_kernel, blur_sigma)
    eps_fn = model.eps_fn(label, K)
    with torch.no_grad():
        one_step = td.eps_to_x0(model.schedule, x_t, t, eps_fn(x_t, t))
    iterative, n_steps = [], []
    for k, tk in enumerate(ts):
        plan = plan_from(tk, strided)
        n_steps.append(len(plan))
        iterative.append(td.sample(model.eps_fn(label, 1), x_t[k:k + 1], model.schedule, method=method,
                                   clip_x0=clip_x0, steps=plan, generator=torch.Generator().manual_seed(seed + 1 + k),
                                   progress=progress))
    res = DenoiseResult(original=to_numpy(x0[0, 0]), timesteps=np.array(ts), noisy=to_numpy(x_t[:, 0]),
                        blurred=to_numpy(blurred[:, 0]), one_step=to_numpy(one_step[:, 0]),
                        iterative=to_numpy(torch.cat(iterative)[:, 0]), caption=caption,
                        blur=(blur_kernel, blur_sigma), n_steps=tuple(n_steps))
    return finish(res, plot_denoise, out)


def plot_denoise(res: DenoiseResult):
    """Rows: noisy x_t, Gaussian blur, one-step x̂_0, iterative; a column per t; the original on the left."""
    K = len(res.timesteps)
    fig = new_figure(1.6 * (K + 1) + 0.6, 1.7 * 4 + 0.5)
    axes = fig.subplots(4, K + 1, squeeze=False)
    k, s = res.blur
    rows = [("noisy $x_t$", res.noisy), (f"Gaussian blur\n(kernel {k}, σ={s:g})", res.blurred),
            ("one-step $\\hat{x}_0$", res.one_step), ("iterative\n(stride 30)", res.iterative)]
    for r, (name, imgs) in enumerate(rows):
        if r == 0:
            show(axes[0, 0], res.original, f"original\n{res.caption}")
        else:
            axes[r, 0].axis("off")
        axes[r, 1].set_ylabel(name, fontsize=10)
        for c in range(K):
            title = {0: f"t = {res.timesteps[c]}", 3: f"{res.n_steps[c]} steps from t = {res.timesteps[c]}"}.get(r)
            show(axes[r, c + 1], imgs[c], title, fontsize=8)
    fig.suptitle("Denoising an MNIST digit three ways (T = 1000)", fontsize=11)
    return fig
