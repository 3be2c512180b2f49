"""Metrics on sets of MNIST-like images ``[N, 1, 28|32, 28|32]`` in ``[-1, 1]`` (no sampling here).

* :func:`frechet_distance` — the Fréchet (2-Wasserstein) distance between Gaussians fitted to two feature
  sets, as in FID (Heusel et al. 2017): ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^{1/2})``.
* :func:`fid_mnist` — that distance in the feature space of the small MNIST classifier
  (:mod:`image_track.classifier`), not Inception's, so numbers are comparable only within toydiff;
  :func:`fid_floor` is the value two *real* sets of the same size reach (train vs test), the floor any
  generator's score should be read against.
* :func:`conditional_accuracy`, :func:`confident_fraction`, :func:`class_histogram`,
  :func:`kl_to_uniform` — whether samples show the requested digit, look like any digit, and cover all ten.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from toydiff.checks import check_int, check_number

from image_track.classifier import MNISTClassifier, classify, features

__all__ = ["frechet_distance", "fid_mnist", "fid_floor", "conditional_accuracy", "confident_fraction",
           "class_histogram", "kl_to_uniform"]


def _as_2d(name: str, feats) -> np.ndarray:
    a = feats.detach().cpu().double().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name} must have shape [N >= 2, F], got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values")
    return a


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussian fits of ``feats_a [N, F]`` and ``feats_b [M, F]`` (float64 maths).

    The matrix square root is :func:`scipy.linalg.sqrtm`; its tiny imaginary part from round-off is dropped.
    """
    a, b = _as_2d("feats_a", feats_a), _as_2d("feats_b", feats_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_a and feats_b differ in feature width: {a.shape[1]} vs {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
    if caught or not np.all(np.isfinite(covmean)):
        # Singular product (e.g. a feature that is always 0): regularise, as the reference FID code does.
        eps = 1e-6 * np.eye(a.shape[1])
        covmean = scipy.linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    d = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))
    return max(d, 0.0)


def fid_mnist(images: torch.Tensor, reference_images: torch.Tensor, classifier: MNISTClassifier | None = None) -> float:
    """Fréchet distance between ``images`` and ``reference_images`` (both ``[N, 1, 28|32, 28|32]`` in
    ``[-1, 1]``) in the classifier's penultimate-layer features (``classifier=None``: the committed one)."""
    return frechet_distance(features(images, classifier), features(reference_images, classifier))


def fid_floor(n: int, classifier: MNISTClassifier | None = None, *, seed: int = 0) -> float:
    """:func:`fid_mnist` between ``n`` random training and ``n`` random test digits (the finite-sample floor).

    Args:
        n: set size, ``2 <= n <= 10000``; compare a generator's FID with the floor at the same ``n``.
        seed: which random subsets are drawn.
    """
    from image_track.data import load_mnist

    n = check_int(n, "n", min=2, max=10_000)
    gen = torch.Generator().manual_seed(check_int(seed, "seed"))
    x_train, _ = load_mnist("train")
    x_test, _ = load_mnist("test")
    a = x_train[torch.randperm(len(x_train), generator=gen)[:n]]
    b = x_test[torch.randperm(len(x_test), generator=gen)[:n]]
    return fid_mnist(a, b, classifier)


def conditional_accuracy(images: torch.Tensor, requested_labels: torch.Tensor,
                         classifier: MNISTClassifier | None = None) -> float:
    """Fraction of ``images [N, 1, H, W]`` the classifier labels as ``requested_labels [N]``."""
    labels = torch.as_tensor(requested_labels)
    if labels.shape != (len(images),):
        raise ValueError(f"requested_labels must have shape [N] = [{len(images)}], got {tuple(labels.shape)}")
    pred = classify(images, classifier).argmax(-1)
    return (pred == labels.cpu().long()).float().mean().item()


def confident_fraction(images: torch.Tensor, threshold: float = 0.9, classifier: MNISTClassifier | None = None) -> float:
    """Fraction of ``images`` whose top class probability exceeds ``threshold`` (legible digits)."""
    if check_number(threshold, "threshold", min=0.0) >= 1.0:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold!r}")
    return (classify(images, classifier).max(-1).values > threshold).float().mean().item()


def class_histogram(images: torch.Tensor, classifier: MNISTClassifier | None = None) -> torch.Tensor:
    """Fraction of ``images`` assigned to each class (argmax), ``[10]`` summing to 1."""
    pred = classify(images, classifier).argmax(-1)
    return torch.bincount(pred, minlength=10).double() / len(pred)


def kl_to_uniform(histogram) -> float:
    """``KL(p || uniform) = log K - H(p)`` in nats for a histogram ``[K]`` (normalised here); 0 iff uniform."""
    p = torch.as_tensor(histogram, dtype=torch.float64)
    if p.ndim != 1 or len(p) < 1 or bool((p < 0).any()) or float(p.sum()) <= 0:
        raise ValueError("histogram must be a non-empty 1-D array of non-negative counts with a positive sum")
    p = p / p.sum()
    nz = p[p > 0]
    return float(np.log(len(p)) + (nz * nz.log()).sum())
