"""What every lab experiment shares: the model handle, the strided timesteps, inputs, figure helpers.

Nothing here samples or noises: the experiments compose :func:`toydiff.sample`, :func:`toydiff.sdedit`,
:func:`toydiff.inpaint_projection` and the denoiser combinators in :mod:`image_track.lab.combinators`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

import toydiff as td
from toydiff.schedules import NoiseSchedule

__all__ = [
    "LabModel",
    "load_lab_model",
    "strided_timesteps",
    "check_class",
    "check_choice",
    "mnist_digit",
    "load_input",
    "generators",
    "to_numpy",
    "show",
    "save_figure",
    "new_figure",
    "judge",
    "verdict",
]

STRIDE = 30
METHOD = "ddpm"


@dataclass(frozen=True)
class LabModel:
    """A class-conditional noise predictor and the schedule it was trained with.

    Attributes:
        net: ``net(x [B, 1, H, W], t LongTensor [B], y LongTensor [B]) -> eps [B, 1, H, W]``; label
            ``num_classes`` is the null ("no class") label of classifier-free guidance.
        schedule: its noise schedule.
        num_classes: number of real classes (10 for MNIST).
        image_size: H = W.
    """

    net: Callable[..., torch.Tensor]
    schedule: NoiseSchedule
    num_classes: int = 10
    image_size: int = 28

    @property
    def null_label(self) -> int:
        return self.num_classes

    def eps_fn(self, label: int | torch.Tensor | None, n: int, *, w: float | None = None) -> td.samplers.EpsFn:
        """A denoiser for a batch of ``n``: class ``label`` (an int, or labels ``[n]``; ``None`` is
        unconditional, the null label), with classifier-free guidance ε_u + w (ε_c − ε_u) when ``w`` is given
        (Ho & Salimans 2022, via :func:`toydiff.conditional_eps_fn`)."""
        if label is None:
            return td.conditional_eps_fn(self.net, torch.full((n,), self.null_label, dtype=torch.long))
        if isinstance(label, torch.Tensor):
            y = label.to(torch.long)
            if y.shape != (n,) or int(y.min()) < 0 or int(y.max()) >= self.num_classes:
                raise ValueError(f"labels must be [{n}] classes in 0..{self.num_classes - 1}, got {label!r}")
        else:
            y = torch.full((n,), check_class(label, "class", self.num_classes), dtype=torch.long)
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w)):
            raise ValueError(f"w (guidance scale) must be a finite number, got {w!r}")
        return td.conditional_eps_fn(self.net, y, w=w, null_label=self.null_label)


def load_lab_model(checkpoint: str | os.PathLike | None = None) -> LabModel:
    """Load a class-conditional checkpoint (default: the committed ``tiny_cond``) as a :class:`LabModel`."""
    from image_track import sampling  # lazy: torch-heavy, and written by another module's owners

    path = Path(checkpoint) if checkpoint is not None else sampling.default_checkpoint(conditional=True)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    loaded = sampling.load_model(path)  # EMA weights, eval mode; CheckpointError (a ValueError) if it does not fit
    if not loaded.conditional:
        raise ValueError(f"checkpoint {path} is not class-conditional: the lab needs a conditional model")
    return LabModel(net=loaded.model, schedule=loaded.schedule, num_classes=int(loaded.num_classes),
                    image_size=int(loaded.image_size))


def strided_timesteps(T: int = 1000, stride: int = STRIDE) -> list[int]:
    """The seed's strided timesteps, descending to 0: T = 1000, stride 30 -> [990, 960, ..., 30, 0]."""
    if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride < T:
        raise ValueError(f"stride must be an int in [1, {T - 1}], got {stride!r}")
    return list(range((T - 1) // stride * stride, -1, -stride))


def check_class(c, name: str, num_classes: int = 10) -> int:
    """``c`` as a class index in ``[0, num_classes)``; a ValueError naming ``name`` otherwise."""
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= int(c) < num_classes:
        raise ValueError(f"{name} must be a digit class in 0..{num_classes - 1}, got {c!r}")
    return int(c)


def check_choice(value, name: str, choices: Sequence) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def mnist_digit(*, digit: int | None = None, index: int | None = None) -> tuple[torch.Tensor, int]:
    """An MNIST test image ``[1, 1, 28, 28]`` and its label: test image ``index``, or the first ``digit``."""
    from image_track.data import load_mnist

    images, labels = load_mnist("test")
    if index is None:
        d = check_class(3 if digit is None else digit, "digit")
        index = int(torch.nonzero(labels == d)[0])
    elif isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(images):
        raise ValueError(f"index must be an int in [0, {len(images) - 1}], got {index!r}")
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


def generators(seed: int, n: int) -> list[torch.Generator]:
    """Per-sample generators seeded ``seed, seed + 1, ...``: sample i is the same at any batch size."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


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
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120, bbox_inches="tight")
    return p


def new_figure(width: float, height: float):
    """A pyplot-free ``matplotlib.figure.Figure`` (no global state, nothing to close)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def judge(x: torch.Tensor) -> np.ndarray | None:
    """Class probabilities ``[B, 10]`` of images ``[B, 1, 28, 28]`` from the committed MNIST classifier
    (:mod:`image_track.classifier`), or ``None`` where its weights are not available."""
    try:
        from image_track.classifier import classify

        return classify(x.detach().float().cpu()).numpy()
    except (ImportError, FileNotFoundError, ValueError, KeyError, RuntimeError):  # CheckpointError is a ValueError
        return None


def verdict(probs: np.ndarray | None, i: int) -> str:
    """``"clf: 8 (93%)"`` for row ``i`` of classifier probabilities, or ``""`` without a classifier."""
    if probs is None:
        return ""
    k = int(probs[i].argmax())
    return f"clf: {k} ({probs[i, k]:.0%})"
