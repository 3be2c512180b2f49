"""What every lab experiment shares: the model handle, the strided timesteps, inputs, judging, figures.

Each sampling experiment follows one skeleton: check its arguments, build a denoiser from
:meth:`LoadedModel.eps_fn <image_track.loaded.LoadedModel.eps_fn>` (and the combinators of
:mod:`image_track.lab.combinators`), sample with :func:`strided_sample` (or :func:`toydiff.sdedit`), judge the
images with :func:`judge` into its result dataclass, and hand that to :func:`finish`, which draws and saves the
figure. The maths lives in :mod:`toydiff` (:func:`toydiff.sample`, :func:`toydiff.inpaint_projection`, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import toydiff as td
from toydiff.checks import check_choice, check_int
from image_track.loaded import LoadedModel
from toydiff.processes.schedules import NoiseSchedule

__all__ = [
    "LoadedModel",
    "LabModel",
    "load_lab_model",
    "strided_timesteps",
    "strided_sample",
    "finish",
    "check_class",
    "mnist_digit",
    "load_input",
    "to_numpy",
    "show",
    "save_figure",
    "new_figure",
    "judge",
    "verdict",
]

STRIDE = 30
METHOD = "ddpm"


def LabModel(net: Callable[..., torch.Tensor], schedule: NoiseSchedule, num_classes: int = 10,  # noqa: N802
             image_size: int = 28) -> LoadedModel:
    """The lab's former handle, kept as a name: a class-conditional ``net`` wrapped as a :class:`LoadedModel`
    (:meth:`LoadedModel.from_net`). A loaded checkpoint already is a ``LoadedModel``: pass it as it is."""
    return LoadedModel.from_net(net, schedule, num_classes=num_classes, image_size=image_size)


def load_lab_model(checkpoint: str | os.PathLike | None = None) -> LoadedModel:
    """Load a class-conditional checkpoint (default: the committed ``tiny_cond``) as a :class:`LoadedModel`."""
    from image_track.loaded import default_checkpoint, load_model

    path = Path(checkpoint) if checkpoint is not None else default_checkpoint(conditional=True)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    loaded = load_model(path)  # EMA weights, eval mode; CheckpointError (a ValueError) if it does not fit
    if not loaded.conditional:
        raise ValueError(f"checkpoint {path} is not class-conditional: the lab needs a conditional model")
    loaded.require_schedule(f"the lab (SDEdit, inpainting, denoising, hybrids on DDPM's schedule) with {path}")
    return loaded


def strided_timesteps(T: int = 1000, stride: int = STRIDE) -> list[int]:
    """The seed's strided timesteps, descending to 0: T = 1000, stride 30 -> [990, 960, ..., 30, 0]."""
    stride = check_int(stride, "stride", min=1, max=T - 1)
    return list(range((T - 1) // stride * stride, -1, -stride))


def strided_sample(model: LoadedModel, eps_fn: Callable, n: int, *, method: str = METHOD, stride: int = STRIDE,
                   clip_x0: float | None = 1.0, seed: int = 0, progress: bool = False,
                   generators: list[torch.Generator] | None = None, project: Callable | None = None,
                   callback: Callable | None = None) -> torch.Tensor:
    """The skeleton's sampling step: ``n`` images ``[n, C, H, W]`` from ``eps_fn`` with :func:`toydiff.sample`
    (ancestral DDPM by default, Ho et al. 2020) over :func:`strided_timesteps`.

    ``generators``: one per sample (default :func:`toydiff.per_sample_generators` ``(seed, n)``), drawing sample
    ``i``'s x_T and its sampler noise. ``project``: a function of those generators returning a projection for
    :func:`toydiff.sample` (e.g. :func:`toydiff.inpaint_projection`, which draws from the same generators).
    """
    check_choice(method, "method", td.METHODS)
    gens = td.per_sample_generators(seed, check_int(n, "n", min=1)) if generators is None else generators
    size = model.image_size
    x_T = td.randn_like(torch.zeros(len(gens), model.in_channels, size, size), gens)  # [n, C, H, W]
    return td.sample(eps_fn, x_T, model.schedule, method=method, clip_x0=clip_x0,
                     steps=strided_timesteps(model.schedule.T, stride), generator=gens,
                     project=None if project is None else project(gens), callback=callback, progress=progress)


def finish(result, plot: Callable, out: str | os.PathLike | None):
    """The skeleton's last step: draw ``plot(result)`` and save it to ``out`` (PNG; ``None``: no figure);
    return ``result`` (the experiment's dataclass, its images already judged by :func:`judge`)."""
    if out is not None:
        save_figure(plot(result), out)
    return result


def check_class(c, name: str, num_classes: int = 10) -> int:
    """``c`` as a class index in ``[0, num_classes)``; a TypeError / ValueError naming ``name`` otherwise."""
    return check_int(c, name, min=0, max=num_classes - 1)


def mnist_digit(*, digit: int | None = None, index: int | None = None) -> tuple[torch.Tensor, int]:
    """An MNIST test image ``[1, 1, 28, 28]`` and its label: test image ``index``, or the first ``digit``."""
    from image_track.data import load_mnist

    images, labels = load_mnist("test")
    if index is None:
        d = check_class(3 if digit is None else digit, "digit")
        index = int(torch.nonzero(labels == d)[0])
    else:
        index = check_int(index, "index", min=0, max=len(images) - 1)
    return images[index: index + 1].clone(), int(labels[index])


def load_input(image: str | os.PathLike | torch.Tensor | None, *, digit: int | None = None,
               index: int | None = None, size: int = 28) -> tuple[torch.Tensor, str]:
    """The picture to edit ``[1, 1, size, size]`` and a caption: a tensor, a user's image file, or a test digit."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 4 or image.shape[:2] != (1, 1) or image.shape[-1] != size or image.shape[-2] != size:
            raise ValueError(f"image must have shape [1, 1, {size}, {size}], got {tuple(image.shape)}")
        return image, "input"
    if image is not None:
        from image_track.images import load_png

        return load_png(image, size=size), Path(image).name
    x, label = mnist_digit(digit=digit, index=index)
    return x, f"test digit ({label})"


def to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).numpy()


def show(ax, img, title: str | None = None, *, fontsize: int = 9) -> None:
    """Draw one gray image (anything that squeezes to [H, W], in [-1, 1]) without axes."""
    a = np.asarray(img.detach().cpu() if isinstance(img, torch.Tensor) else img, dtype=np.float32).squeeze()
    ax.imshow(a, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=fontsize)


def save_figure(fig, out: str | os.PathLike | None) -> Path | None:
    """Save ``fig`` (a ``matplotlib.figure.Figure``) to ``out`` (PNG, folders created); ``None``: don't."""
    if out is None:
        return None
    from toydiff.outputs import save_figure as save_atomically

    return save_atomically(fig, out, dpi=120, bbox_inches="tight")  # rewritten whole, never truncated


def new_figure(width: float, height: float):
    """A pyplot-free ``matplotlib.figure.Figure`` (no global state, nothing to close)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def judge(x: torch.Tensor) -> np.ndarray | None:
    """Class probabilities ``[B, 10]`` of images ``[B, 1, 28, 28]`` from the committed MNIST classifier
    (:mod:`image_track.classifier`), or ``None`` only where its weights file is absent; any other failure raises."""
    from image_track import classifier

    if not Path(classifier.DEFAULT_WEIGHTS).is_file():
        return None
    return classifier.classify(x.detach().float().cpu()).numpy()


def verdict(probs: np.ndarray | None, i: int) -> str:
    """``"clf: 8 (93%)"`` for row ``i`` of classifier probabilities, or ``""`` without a classifier."""
    if probs is None:
        return ""
    k = int(probs[i].argmax())
    return f"clf: {k} ({probs[i, k]:.0%})"
