"""Argument checks shared by every layer: one helper per kind of misuse, each naming the argument.

    check_int(steps, "steps", min=1)          -> int       (TypeError for a bool, float or str)
    check_number(w, "w", min=0.0)             -> float     (finite unless allow_inf; ValueError for NaN)
    check_choice(method, "method", METHODS)   -> the value
    check_tensor(x_T, "x_T", min_ndim=1)      -> the tensor (floating point, finite, B >= 1)

Python's ``bool`` is an ``int``; these helpers refuse it where a count or a number is meant, so
``steps=True`` is a ``TypeError`` rather than one step. Bounds are inclusive.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Collection

import torch

__all__ = ["check_int", "check_number", "check_choice", "check_tensor", "check_finite", "check_device"]


def check_int(value: Any, name: str, *, min: int | None = None, max: int | None = None) -> int:
    """``value`` as an ``int`` in ``[min, max]``; numpy / torch integer scalars are accepted, bools are not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point() and value.dtype != torch.bool:
            value = int(value)
        else:
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    _check_bounds(value, name, min, max)
    return value


def check_number(value: Any, name: str, *, min: float | None = None, max: float | None = None,
                 allow_inf: bool = False) -> float:
    """``value`` as a finite ``float`` in ``[min, max]`` (``allow_inf`` admits ±inf; NaN is always refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, torch.Tensor) and value.ndim == 0 and value.dtype != torch.bool:
            value = float(value)
        else:
            raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    _check_bounds(value, name, min, max)
    return value


def check_choice(value: Any, name: str, choices: Collection) -> Any:
    """``value`` if it is one of ``choices`` (a ValueError listing them otherwise)."""
    try:
        ok = value in choices
    except TypeError:  # unhashable value against a set or dict
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_tensor(x: Any, name: str, *, min_ndim: int = 1, floating: bool = True, finite: bool = True) -> torch.Tensor:
    """``x`` if it is a tensor ``[B, ...]`` with ``B >= 1`` and at least ``min_ndim`` dimensions."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.ndim < min_ndim or (x.ndim >= 1 and x.shape[0] == 0):
        raise ValueError(f"{name} must have shape [B, ...] with B >= 1 and at least {min_ndim} dimension(s), "
                         f"got {tuple(x.shape)}")
    if finite:
        check_finite(x, name)
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` if every entry is finite; a ValueError naming ``name`` and counting the bad entries otherwise.

    Cheap on the way through: one sum (a NaN or ±inf anywhere makes it non-finite); only a non-finite sum
    (or one that overflowed from finite entries) is followed by the elementwise scan.
    """
    if x.is_floating_point() and x.numel() and not math.isfinite(float(x.detach().sum())):
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(f"{name} contains {bad} NaN or infinite value(s) out of {x.numel()}")
    return x


def check_device(device: Any, name: str = "device") -> torch.device:
    """``device`` (a str or ``torch.device``) as a ``torch.device`` this machine has: a TypeError for another type,
    a ValueError naming ``name`` for an unknown device or a CUDA device that is not there."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be a str or torch.device, got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} must be 'cpu', 'cuda', 'cuda:N' or another torch device, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={str(device)!r} was asked for but CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"{name}={str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name}={str(device)!r} was asked for but MPS is not available on this machine")
    return dev


def _check_bounds(value: float, name: str, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        raise ValueError(f"{name} must be in [{lo_s}, {hi_s}], got {value!r}")
