"""Small image utilities for the lab: a user's PNG as an MNIST-like digit, masks, Gaussian blur.

Images are tensors ``[B, C, H, W]`` in ``[-1, 1]`` (MNIST convention: a bright digit on a dark
background); masks are ``[1, 1, H, W]`` in ``{0, 1}``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal.windows import gaussian

from toydiff.checks import check_int, check_number

__all__ = [
    "load_png",
    "load_mask_png",
    "save_png",
    "gaussian_kernel1d",
    "gaussian_blur",
    "scaled_blur",
    "downsample",
    "MAX_PIXELS",
]

#: the most pixels an input picture may have (4096 x 4096), checked from the file's header before decoding:
#: a small compressed file can claim a huge canvas (a 20 KB PNG of 13000 x 13000 decodes to 4 GB)
MAX_PIXELS = 4096 * 4096


def _open(path: str | os.PathLike, what: str, max_pixels: int = MAX_PIXELS):
    """Open ``path`` with pillow, upright; a missing file, a non-image or a picture of more than ``max_pixels``
    pixels (read from the header, before anything is decoded) raises a message naming it."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} file not found: {p}")
    try:
        with warnings.catch_warnings():  # pillow's own bomb warning: the size is judged here instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(p)  # lazy: reads the header only
        w, h = img.size
        if w * h > max_pixels:
            img.close()
            raise ValueError(f"{what} {p} is {w} x {h} pixels; at most {max_pixels:,} pixels (4096 x 4096) are "
                             "accepted: scale it down first")
        img.load()
    except Image.DecompressionBombError:
        raise ValueError(f"{what} {p} claims a canvas too large to decode safely (pillow refused it as a "
                         f"decompression bomb); at most {max_pixels:,} pixels are accepted") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{what} {p} is not an image file pillow can read ({type(e).__name__})") from None
    return ImageOps.exif_transpose(img)


def _to_gray(img, name: str = "image") -> np.ndarray:
    """Any pillow mode -> float array [H, W] in [0, 1]; transparent pixels count as white paper. A float image
    (a TIFF of mode ``F``) holding NaN or infinite pixels is a ValueError naming ``name`` (rescaling would turn
    it into a blank or meaningless picture without a word)."""
    from PIL import Image

    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # high bit depth: rescale to [0, 1] by hand
        a = np.asarray(img, dtype=np.float64)
        bad = int(a.size - np.isfinite(a).sum())
        if bad:
            raise ValueError(f"{name} holds {bad} NaN or infinite pixel value(s) of {a.size}; pixel values must be finite")
        lo, hi = float(a.min()), float(a.max())
        return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    rgba = img.convert("RGBA")  # palette, LA, CMYK, ... all go through RGBA
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(paper, rgba).convert("L"), dtype=np.float64) / 255.0


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def _square(a: np.ndarray, fill: float) -> np.ndarray:
    """Pad [H, W] to a centred square with ``fill`` so that resizing keeps the aspect ratio."""
    h, w = a.shape
    n = max(h, w)
    out = np.full((n, n), fill, dtype=a.dtype)
    top, left = (n - h) // 2, (n - w) // 2
    out[top:top + h, left:left + w] = a
    return out


def _resize(a: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray(a.astype(np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BOX if a.shape[0] > size else Image.Resampling.BILINEAR))


def load_png(path: str | os.PathLike, *, size: int = 28, invert: bool | str = "auto") -> torch.Tensor:
    """Load any image file pillow reads as an MNIST-like digit ``[1, 1, size, size]`` float32 in [-1, 1].

    Any mode (RGB, RGBA, palette, 16-bit, ...) becomes gray (transparency over white paper); a
    non-square image is padded to a square with its background before resizing.

    Args:
        path: the image file.
        size: output height and width.
        invert: ``True`` / ``False``, or ``"auto"``: invert when the border is bright, so a dark digit
            drawn on white paper becomes MNIST's bright digit on black.

    Raises:
        FileNotFoundError: no such file. ValueError: not an image, NaN or infinite pixel values (a float TIFF),
            or a bad ``size`` / ``invert``.
    """
    size = check_int(size, "size", min=1)
    if not isinstance(invert, bool) and invert != "auto":  # not check_choice: 1 == True would pass it
        raise ValueError(f"invert must be True, False or 'auto', got {invert!r}")
    a = _to_gray(_open(path, "image"), f"image {path}")
    if invert is True or (invert == "auto" and _border(a).mean() > 0.5):
        a = 1.0 - a
    a = _resize(_square(a, float(np.median(_border(a)))), size)
    x = torch.from_numpy(np.clip(a, 0.0, 1.0).astype(np.float32))
    return (x * 2.0 - 1.0)[None, None]


def load_mask_png(path: str | os.PathLike, *, size: int = 28) -> torch.Tensor:
    """Load a mask image as ``[1, 1, size, size]`` float32 in {0, 1}: 1 (white) where content is generated.

    The image is resized (without padding: a mask covers the whole picture) and thresholded at half gray.
    """
    from PIL import Image

    size = check_int(size, "size", min=1)
    a = _to_gray(_open(path, "mask"), f"mask {path}")
    img = Image.fromarray(a.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BOX)
    m = torch.from_numpy((np.asarray(img) >= 0.5).astype(np.float32))
    return m[None, None]


def save_png(x: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Write one gray image (any shape that squeezes to [H, W], values in [-1, 1]) as an 8-bit PNG."""
    from PIL import Image

    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64).squeeze()
    if a.ndim != 2:
        raise ValueError(f"save_png needs one image that squeezes to [H, W], got shape {a.shape}")
    from toydiff.outputs import save_image

    return save_image(Image.fromarray(np.rint((np.clip(a, -1, 1) + 1) * 127.5).astype(np.uint8), mode="L"), path)


def gaussian_kernel1d(kernel_size: int, sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian window ``[kernel_size]`` (float64), from ``scipy.signal.windows.gaussian``."""
    if check_int(kernel_size, "kernel_size", min=1) % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    if check_number(sigma, "sigma", min=0.0) == 0:
        raise ValueError("sigma must be positive, got 0")
    k = torch.from_numpy(gaussian(kernel_size, std=float(sigma)))
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``x`` ``[B, C, H, W]`` (reflect padding; same shape and dtype out)."""
    if x.ndim != 4:
        raise ValueError(f"gaussian_blur needs [B, C, H, W], got {tuple(x.shape)}")
    B, C, H, W = x.shape
    k = gaussian_kernel1d(kernel_size, sigma).to(x.dtype).to(x.device)
    r = kernel_size // 2
    mode = "reflect" if r < min(H, W) else "replicate"
    y = F.pad(x.reshape(B * C, 1, H, W), (r, r, r, r), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 1, -1))  # along W
    y = F.conv2d(y, k.view(1, 1, -1, 1))  # along H
    return y.reshape(B, C, H, W)


def scaled_blur(size: int, *, ref_size: int = 64, ref_kernel: int = 33, ref_sigma: float = 2.0) -> tuple[int, float]:
    """Kernel size and σ scaled from a blur tuned at ``ref_size`` pixels to ``size`` pixels.

    The seed's hybrid images use kernel 33 and σ = 2 at 64 px; at 28 px that is σ = 0.875 and kernel 15
    (33 · 28/64 = 14.4, rounded up to the next odd size).
    """
    f = size / ref_size
    k = max(1, int(round(ref_kernel * f)))
    return (k if k % 2 else k + 1), ref_sigma * f


def downsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Area-average ``x`` ``[B, C, H, W]`` to ``size × size``: the picture as seen from further away."""
    size = check_int(size, "size", min=1)
    return F.adaptive_avg_pool2d(x, size)
