"""SDEdit (Meng et al. 2022): noise a picture part of the way, then denoise it, freely or towards a class.

A *start index* i indexes the strided timesteps [990, 960, ..., 30, 0]: the picture is noised to
``strided[i]`` and denoised over ``strided[i:]`` (:func:`toydiff.sdedit`). Index 0 (t = 990) is almost pure
noise, an ordinary sample; the last index (t = 0) gives the input back. Small indices edit a lot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

import toydiff as td
from toydiff.checks import check_choice, check_int

from image_track.lab.common import (METHOD, STRIDE, LoadedModel, check_class, finish, judge, load_input, new_figure, show,
                     strided_timesteps, to_numpy, verdict)

__all__ = ["SDEditResult", "sdedit", "plot_sdedit", "I_STARTS"]

I_STARTS = (1, 3, 5, 7, 10, 20)


@dataclass
class SDEditResult:
    original: np.ndarray  # [H, W]
    i_starts: np.ndarray  # [K]
    t_starts: np.ndarray  # [K] the timestep each start index denotes
    unconditional: np.ndarray  # [K, H, W]
    guided: np.ndarray | None  # [K, H, W] towards ``target``, or None
    target: int | None = None
    w: float | None = None
    caption: str = ""
    probs_unconditional: np.ndarray | None = None  # [K, 10] MNIST-classifier probabilities (None: no classifier)
    probs_guided: np.ndarray | None = None


def sdedit(model: LoadedModel, *, image=None, digit: int | None = 3, index: int | None = None,
           target: int | None = 8, w: float | None = 5.0, i_starts: Sequence[int] = I_STARTS,
           method: str = METHOD, stride: int = STRIDE, clip_x0: float | None = 1.0, seed: int = 0, out=None,
           progress: bool = False) -> SDEditResult:
    """Edit one picture from each start index, unconditionally and (if ``target``) towards class ``target``.

    Args:
        image: a tensor ``[1, 1, H, W]`` or an image file of any size/mode; default MNIST test ``digit``/``index``.
        target: the class to edit towards (``None``: only the unconditional row).
        w: classifier-free guidance scale for the targeted row (``None``: plain conditional).
        i_starts: indices into the strided timesteps (0 = t 990 ... last = t 0).
        seed: one noise ε for all start indices (so columns differ only in how far they are noised), and
            the sampler's noise.
    """
    check_choice(method, "method", td.METHODS)
    strided = strided_timesteps(model.schedule.T, stride)
    idx = [check_int(i, "i_starts", min=0, max=len(strided) - 1) for i in i_starts]
    if not idx:
        raise ValueError("i_starts must name at least one index into the strided timesteps")
    if target is not None:
        check_class(target, "target", model.num_classes)
    x0, caption = load_input(image, digit=digit, index=index, size=model.image_size)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))

    def run(label, guidance) -> torch.Tensor:
        outs = []
        for i in idx:
            outs.append(td.sdedit(model.eps_fn(label, 1, w=guidance), x0, model.schedule, steps=strided[i:],
                                  noise=noise, generator=torch.Generator().manual_seed(seed + 1),
                                  method=method, clip_x0=clip_x0, progress=progress))
        return torch.cat(outs)[:, 0]

    uncond = run(None, None)
    guided = run(target, w) if target is not None else None
    res = SDEditResult(original=to_numpy(x0[0, 0]), i_starts=np.array(idx), t_starts=np.array([strided[i] for i in idx]),
                       unconditional=to_numpy(uncond), guided=None if guided is None else to_numpy(guided),
                       target=target, w=w, caption=caption, probs_unconditional=judge(uncond[:, None]),
                       probs_guided=None if guided is None else judge(guided[:, None]))
    return finish(res, plot_sdedit, out)


def plot_sdedit(res: SDEditResult):
    """A row per conditioning, a column per start index, the input on the right."""
    K = len(res.i_starts)
    rows = [("unconditional", res.unconditional, res.probs_unconditional)]
    if res.guided is not None:
        wtxt = "" if res.w is None else f", w = {res.w:g}"
        rows.append((f"towards {res.target}{wtxt}", res.guided, res.probs_guided))
    fig = new_figure(1.45 * (K + 1) + 0.6, 1.75 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), K + 1, squeeze=False)
    for r, (name, imgs, probs) in enumerate(rows):
        for c in range(K):
            show(axes[r, c], imgs[c], f"i_start={res.i_starts[c]}\n(t = {res.t_starts[c]})" if r == 0 else None,
                 fontsize=8)
            axes[r, c].set_xlabel(verdict(probs, c), fontsize=7)
        axes[r, 0].set_ylabel(name, fontsize=10)
        show(axes[r, K], res.original, res.caption if r == 0 else None, fontsize=8)
    fig.suptitle("SDEdit (Meng et al. 2022): noise to strided[i_start], then denoise — small i_start = more noise",
                 fontsize=10)
    return fig
