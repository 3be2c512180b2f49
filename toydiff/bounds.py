"""The largest size a user may ask for, in one table: every count a person sets (sampler steps, samples, training
points, frames, grid sides, class ids) is checked here by the API function that allocates or loops over it, so
the command line and the app get the same bound for free.

Each bound is set by what the value costs, on the toy track's CPU budget of "seconds, and well under 1 GB":

    check_size(steps, "steps")           -> int in [1, SIZE_LIMITS["steps"].max], else TypeError / ValueError
    size_arg("n_train")                  -> an argparse ``type`` for the same check on the command line

The app's URL-state bounds (``apps/common/url_state.BOUNDS``) are stricter, interactive ranges; their upper ends
must stay within these.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable

from toydiff.checks import check_int

__all__ = ["SizeLimit", "SIZE_LIMITS", "check_size", "size_arg"]


@dataclass(frozen=True)
class SizeLimit:
    """The inclusive range ``[min, max]`` of one size and why its maximum is what it is."""

    min: int
    max: int
    why: str


#: name -> bound. A new size a user sets is a line here, checked by the API function that spends it.
SIZE_LIMITS: MappingProxyType[str, SizeLimit] = MappingProxyType({
    "steps": SizeLimit(1, 10_000, "each step is 1-2 network calls: 20k calls of a toy MLP take ~10 s, and no "
                                  "sampler measured here changes past 1000 steps"),
    "n": SizeLimit(1, 1_000_000, "one toy MLP forward holds [n, 256] float32 activations per layer: 1 GB at 1e6"),
    "n_train": SizeLimit(1, 20_000, "the empirical denoiser is a softmax over every training point at every step: "
                                    "2000 samples x 1000 steps x 20k points is ~4e10 multiply-adds (~30 s)"),
    "n_likelihood": SizeLimit(1, 100_000, "the PF-ODE solve carries [n, D + 1] through ~100 adaptive steps, each "
                                          "with D backward passes for the exact divergence"),
    "frames": SizeLimit(1, 1_000, "a recording keeps [frames, n, D] and a figure draws every frame"),
    "grid": SizeLimit(2, 1_000, "a grid side G evaluates G^2 points: 1e6 at 1000"),
    "components": SizeLimit(1, 10_000, "mixture evaluations hold [n, K, D] float64: 10k points x 10k components "
                                       "x D = 2 is 1.6 GB"),
    "class_id": SizeLimit(0, 9_999, "C = max id + 1 classes, each with a per-class table (priors, guidance "
                                    "embeddings): 10k classes, not the 1e12 a stray id would allocate"),
})


def check_size(value: Any, name: str, *, key: str | None = None) -> int:
    """``value`` as an ``int`` within ``SIZE_LIMITS[key or name]`` (a TypeError for a non-integer, a ValueError
    naming ``name``, the range and the reason of its maximum otherwise)."""
    limit = SIZE_LIMITS[key or name]
    v = check_int(value, name)
    if not limit.min <= v <= limit.max:
        raise ValueError(f"{name} must be in [{limit.min}, {limit.max}] ({limit.why}), got {v}")
    return v


def size_arg(key: str) -> Callable[[str], int]:
    """An argparse ``type`` that parses an int and applies :func:`check_size` with ``key``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        limit = SIZE_LIMITS[key]
        if not limit.min <= v <= limit.max:
            raise argparse.ArgumentTypeError(f"must be in [{limit.min}, {limit.max}] ({limit.why}), got {v}")
        return v

    parse.__name__ = f"{key} size"
    return parse
