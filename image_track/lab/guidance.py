"""Classifier-free guidance sweep (Ho & Salimans 2022): ε = ε_u + w (ε_c − ε_u) for w ∈ {0, 5, 10}.

w = 0 is the unconditional model (the label is ignored), w = 1 the plain conditional one, larger w trades
variety for digits that look more like their class. Every w starts from the same noise (per-sample seeds),
so a grid position shows one starting point under growing guidance. The GIFs animate x_t over the
strided sampling steps, one file per digit (:func:`image_track.sampling.progression_gif`): x_t above x̂_0,
n columns per w, left to right in the order of ``ws``. All scales run as one batch, a block per w
(:func:`image_track.lab.combinators.blockwise_eps_fn`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

import toydiff as td
from toydiff.checks import check_choice, check_int, check_number

from image_track.lab.combinators import blockwise_eps_fn
from image_track.lab.common import (METHOD, STRIDE, LoadedModel, check_class, finish, judge, new_figure, show, strided_sample,
                     strided_timesteps, to_numpy)

__all__ = ["GuidanceResult", "guidance", "plot_guidance", "WS"]

WS = (0.0, 5.0, 10.0)


@dataclass
class GuidanceResult:
    ws: np.ndarray  # [W]
    digits: np.ndarray  # [D]
    samples: np.ndarray  # [W, D, n, H, W]
    frames: np.ndarray  # [W, S + 1, D, n, H, W]: x_t at every strided step, then the sample
    timesteps: np.ndarray  # [S]
    gifs: list[str]
    accuracy: np.ndarray | None = None  # [W]: fraction the MNIST classifier reads as the requested digit


def guidance(model: LoadedModel, *, ws: Sequence[float] = WS, digits: Sequence[int] = tuple(range(10)), n: int = 2,
             method: str = METHOD, stride: int = STRIDE, clip_x0: float | None = 1.0, seed: int = 0, out=None,
             gif_dir=None, gif_frames: int = 12, progress: bool = False) -> GuidanceResult:
    """Sample ``n`` of each digit at each guidance scale; plot the grid to ``out``, GIFs into ``gif_dir``
    (``gif_frames`` evenly spaced sampler steps each: noise frames do not compress, so keep them few)."""
    check_choice(method, "method", td.METHODS)
    ws = [check_number(w, "ws") for w in ws]
    digits = [check_class(d, "digits", model.num_classes) for d in digits]
    if not ws or not digits:
        raise ValueError(f"ws and digits must each name at least one value, got ws={ws!r}, digits={digits!r}")
    n, gif_frames = check_int(n, "n", min=1), check_int(gif_frames, "gif_frames", min=1)
    W, D, size = len(ws), len(digits), model.image_size
    B = D * n  # one block of the batch per w: [d0 x n, d1 x n, ...]
    labels = torch.tensor(digits, dtype=torch.long).repeat_interleave(n)  # [B]
    eps = blockwise_eps_fn([model.eps_fn(labels, B, w=w) for w in ws], [B] * W)
    gens = [g for _ in ws for g in td.per_sample_generators(seed, B)]  # the same x_T and sampler noise in every block
    rec, per_digit = td.TrajectoryRecorder(keep=("x_t",)), _gif_recorders(gif_dir, gif_frames, model, stride, W, D, n)
    x = strided_sample(model, eps, W * B, method=method, stride=stride, clip_x0=clip_x0, generators=gens,
                       callback=td.chain_callbacks(rec, *per_digit), progress=progress)  # [W * B, 1, H, W]
    frames = rec.path().reshape(-1, W, D, n, size, size).transpose(0, 1)  # [W, S + 1, D, n, H, W]
    probs = judge(x)
    acc = None if probs is None else (probs.argmax(1).reshape(W, D, n) == np.array(digits)[None, :, None]).mean(axis=(1, 2))
    res = GuidanceResult(ws=np.array(ws), digits=np.array(digits), samples=to_numpy(x.reshape(W, D, n, size, size)),
                         frames=to_numpy(frames), timesteps=np.array(rec.timesteps), gifs=[], accuracy=acc)
    if gif_dir is not None:
        from image_track.sampling import progression_gif

        res.gifs = [str(progression_gif(r, Path(gif_dir) / f"guidance_digit{d}.gif", scale=2, duration_ms=150))
                    for d, r in zip(digits, per_digit)]
    return finish(res, plot_guidance, out)


def _gif_recorders(gif_dir, gif_frames: int, model: LoadedModel, stride: int, W: int, D: int,
                   n: int) -> list[td.TrajectoryRecorder]:
    """One recorder per digit (its ``n`` samples at every w) at ``gif_frames`` evenly spaced steps; none
    without ``gif_dir``."""
    if gif_dir is None:
        return []
    from image_track.sampling import evenly_spaced_steps

    steps = strided_timesteps(model.schedule.T, stride)
    keep = evenly_spaced_steps(len(steps), min(gif_frames, len(steps)))
    B = D * n
    return [td.TrajectoryRecorder(indices=[k * B + j * n + i for k in range(W) for i in range(n)], steps=keep)
            for j in range(D)]


def plot_guidance(res: GuidanceResult):
    """A block of rows per w (n samples each), a column per digit."""
    W, D, n = res.samples.shape[:3]
    fig = new_figure(0.95 * D + 1.2, 0.95 * W * n + 0.5 * W + 0.6)
    subs = fig.subfigures(W, 1, squeeze=False)[:, 0]
    for k, sf in enumerate(subs):
        axes = sf.subplots(n, D, squeeze=False)
        for i in range(n):
            for j in range(D):
                show(axes[i, j], res.samples[k, j, i], str(res.digits[j]) if i == 0 else None, fontsize=8)
        w = res.ws[k]
        note = " (unconditional)" if w == 0 else " (conditional)" if w == 1 else ""
        acc = "" if res.accuracy is None else f": classifier agrees with the column's digit on {res.accuracy[k]:.0%}"
        sf.suptitle(f"w = {w:g}{note}{acc}", fontsize=10)
    fig.suptitle("Classifier-free guidance ε_u + w (ε_c − ε_u): each grid position starts from the same noise at every w",
                 fontsize=11)
    return fig
