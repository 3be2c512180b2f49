"""Inpainting, RePaint-style (Lugmayr et al. 2022, without resampling): keep the pixels outside a mask.

After every sampler step the known region is replaced by the original noised to the current level,
x_t ← m · x_t + (1 − m) · q(x_orig, t) (:func:`toydiff.inpaint_projection`), and by the original itself
at the end, so the result equals the original exactly where m = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import toydiff as td
from toydiff.checks import check_choice, check_int

from image_track.lab.common import (METHOD, STRIDE, LoadedModel, check_class, finish, load_input, new_figure, show, strided_sample,
                     to_numpy)

__all__ = ["InpaintResult", "inpaint", "plot_inpaint", "parse_rect", "rect_mask"]

DEFAULT_RECT = (0, 0, 14, 28)  # the top half


@dataclass
class InpaintResult:
    original: np.ndarray  # [H, W]
    mask: np.ndarray  # [H, W], 1 where content was generated
    samples: np.ndarray  # [n, H, W]
    label: int | None = None
    caption: str = ""


def parse_rect(rect, size: int = 28) -> tuple[int, int, int, int]:
    """``"top,left,height,width"`` (or a 4-sequence of ints) inside a ``size × size`` image."""
    try:
        parts = [p.strip() for p in rect.split(",")] if isinstance(rect, str) else list(rect)
        vals = tuple(int(p) for p in parts)
        if any(isinstance(p, float) and not float(p).is_integer() for p in parts):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"rect must be four ints top,left,height,width, got {rect!r}") from None
    if len(vals) != 4:
        raise ValueError(f"rect must be four ints top,left,height,width, got {rect!r}")
    top, left, h, w = vals
    if top < 0 or left < 0 or h < 1 or w < 1 or top + h > size or left + w > size:
        raise ValueError(f"rect {top},{left},{h},{w} (top,left,height,width) must lie inside the {size}x{size} image "
                         "with height and width >= 1")
    return vals


def rect_mask(rect, size: int = 28) -> torch.Tensor:
    """A mask ``[1, 1, size, size]``: 1 inside the rectangle (generated), 0 outside (kept)."""
    top, left, h, w = parse_rect(rect, size)
    m = torch.zeros(1, 1, size, size)
    m[..., top:top + h, left:left + w] = 1.0
    return m


def _mask(mask, rect, size: int) -> torch.Tensor:
    if mask is not None and rect is not None:
        raise ValueError("give mask or rect, not both")
    if mask is None:
        return rect_mask(DEFAULT_RECT if rect is None else rect, size)
    if isinstance(mask, torch.Tensor):
        m = mask.to(torch.float32).reshape(1, 1, *mask.shape[-2:])
        if m.shape[-2:] != (size, size) or not torch.all((m == 0) | (m == 1)):
            raise ValueError(f"mask must be a {size}x{size} tensor of zeros and ones, got shape {tuple(mask.shape)}")
        return m
    from image_track.images import load_mask_png

    return load_mask_png(mask, size=size)


def inpaint(model: LoadedModel, *, image=None, digit: int | None = None, index: int | None = None, mask=None,
            rect=None, label: int | None = None, w: float | None = None, n: int = 4, method: str = METHOD,
            stride: int = STRIDE, clip_x0: float | None = 1.0, seed: int = 0, out=None,
            progress: bool = False) -> InpaintResult:
    """Regenerate the masked part of one picture ``n`` times over the strided timesteps.

    Args:
        image: a tensor ``[1, 1, H, W]`` or an image file; default an MNIST test ``digit`` / ``index``.
        mask: a ``[H, W]`` 0/1 tensor or a mask image (white = generate); or ``rect``.
        rect: ``"top,left,height,width"`` to generate; default the top half (0,0,14,28).
        label: generate the hole as this class (default unconditional); ``w``: its guidance scale.
        n: how many inpaintings (per-sample seeds ``seed, seed + 1, ...``).
    """
    check_choice(method, "method", td.METHODS)
    n = check_int(n, "n", min=1)
    if label is not None:
        check_class(label, "label", model.num_classes)
    size = model.image_size
    m = _mask(mask, rect, size)  # [1, 1, H, W], 1 = generate
    x0, caption = load_input(image, digit=digit, index=index, size=size)
    x_orig = x0.expand(n, *x0.shape[1:])  # [n, 1, H, W]
    x = strided_sample(model, model.eps_fn(label, n, w=w), n, method=method, stride=stride, clip_x0=clip_x0,
                       seed=seed, progress=progress,
                       project=lambda gens: td.inpaint_projection(model.schedule, x_orig, m, gens))
    res = InpaintResult(original=to_numpy(x0[0, 0]), mask=to_numpy(m[0, 0]), samples=to_numpy(x[:, 0]),
                        label=label, caption=caption)
    return finish(res, plot_inpaint, out)


def plot_inpaint(res: InpaintResult):
    n = len(res.samples)
    fig = new_figure(1.5 * (n + 3) + 0.3, 2.3)
    axes = fig.subplots(1, n + 3)
    show(axes[0], res.original, f"original\n{res.caption}", fontsize=8)
    show(axes[1], res.mask * 2 - 1, "mask\n(white = generate)", fontsize=8)
    for sp in axes[1].spines.values():  # frame the mask: its white would melt into the page
        sp.set_visible(True)
        sp.set_color("0.5")
    show(axes[2], np.where(res.mask > 0, 0.0, res.original), "kept pixels\n(hole in gray)", fontsize=8)
    what = "unconditional" if res.label is None else f"class {res.label}"
    for i in range(n):
        show(axes[3 + i], res.samples[i], f"inpainted #{i + 1}\n({what})", fontsize=8)
    fig.suptitle("Inpainting (RePaint-style projection, Lugmayr et al. 2022): pixels outside the mask are kept exactly",
                 fontsize=10)
    return fig
