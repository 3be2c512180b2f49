"""Visual anagrams (Geng et al. 2024): one digit that reads as class a, and as class b when transformed.

The denoiser averages ε̂(x_t, a) with T⁻¹ ε̂(T x_t, b) (:func:`image_track.lab.combinators.anagram_eps_fn`)
for T a horizontal flip or a 180° rotation (a 6 turned over is a 9), and :func:`toydiff.sample` does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import toydiff as td
from toydiff.checks import check_choice, check_int

from image_track.lab.combinators import TRANSFORMS, anagram_eps_fn
from image_track.lab.common import (METHOD, STRIDE, LoadedModel, check_class, finish, judge, new_figure, show, strided_sample,
                     to_numpy, verdict)

__all__ = ["AnagramResult", "anagram", "plot_anagram"]

_VIEW = {"identity": "as is", "hflip": "mirrored", "rot180": "turned 180°"}


@dataclass
class AnagramResult:
    samples: np.ndarray  # [n, H, W] as generated: reads as class a
    transformed: np.ndarray  # [n, H, W] after the transform: reads as class b
    a: int
    b: int
    transform: str
    w: float | None = None
    probs: np.ndarray | None = None  # [n, 10] MNIST-classifier probabilities of the samples (None: no classifier)
    probs_transformed: np.ndarray | None = None  # [n, 10] of the transformed samples

    def success(self) -> float | None:
        """Fraction of anagrams the classifier reads as ``a`` upright *and* as ``b`` transformed."""
        if self.probs is None:
            return None
        return float(np.mean((self.probs.argmax(1) == self.a) & (self.probs_transformed.argmax(1) == self.b)))


def anagram(model: LoadedModel, *, a: int = 6, b: int = 9, transform: str = "rot180", w: float | None = 3.0,
            n: int = 4, method: str = METHOD, stride: int = STRIDE, clip_x0: float | None = 1.0, seed: int = 0,
            out=None, progress: bool = False) -> AnagramResult:
    """Sample ``n`` anagrams of classes ``a`` / ``b`` under ``transform`` (``"hflip"``, ``"rot180"``, ``"identity"``).

    ``w`` is the classifier-free guidance scale of both denoisers (``None``: plain conditional).
    """
    check_choice(method, "method", td.METHODS)
    check_choice(transform, "transform", tuple(TRANSFORMS))
    a, b = check_class(a, "a", model.num_classes), check_class(b, "b", model.num_classes)
    n = check_int(n, "n", min=1)
    eps = anagram_eps_fn(model.eps_fn(a, n, w=w), model.eps_fn(b, n, w=w), transform)
    x = strided_sample(model, eps, n, method=method, stride=stride, clip_x0=clip_x0, seed=seed, progress=progress)
    fx = TRANSFORMS[transform][0](x)  # [n, 1, H, W] the transformed view
    res = AnagramResult(samples=to_numpy(x[:, 0]), transformed=to_numpy(fx[:, 0]), a=a, b=b,
                        transform=transform, w=w, probs=judge(x), probs_transformed=judge(fx))
    return finish(res, plot_anagram, out)


def plot_anagram(res: AnagramResult):
    n = len(res.samples)
    fig = new_figure(1.5 * n + 1.0, 3.8)
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        show(axes[0, i], res.samples[i], f"#{i + 1}", fontsize=8)
        show(axes[1, i], res.transformed[i])
        axes[0, i].set_xlabel(verdict(res.probs, i), fontsize=7)
        axes[1, i].set_xlabel(verdict(res.probs_transformed, i), fontsize=7)
    axes[0, 0].set_ylabel(f"upright:\nmeant as {res.a}", fontsize=10)
    axes[1, 0].set_ylabel(f"{_VIEW[res.transform]}:\nmeant as {res.b}", fontsize=10)
    wtxt = "" if res.w is None else f", guidance w = {res.w:g}"
    ok = res.success()
    stxt = "" if ok is None else f"\nclassifier reads both ways: {ok:.0%} of samples"
    fig.suptitle(f"Visual anagrams: ε = ½[ε(x, {res.a}) + T⁻¹ε(T x, {res.b})], T = {res.transform}{wtxt}{stxt}",
                 fontsize=10)
    return fig
