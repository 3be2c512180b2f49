"""Metrics on sets of MNIST-like images ``[N, 1, 28|32, 28|32]`` in ``[-1, 1]`` (no sampling here).

* :func:`frechet_distance` — the Fréchet (2-Wasserstein) distance between Gaussians fitted to two feature
  sets, as in FID (Heusel et al. 2017): ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^{1/2})``.
* :func:`fid_mnist` — that distance in the feature space of the small MNIST classifier
  (:mod:`image_track.classifier`), not Inception's, so numbers are comparable only within toydiff;
  :func:`fid_floor` is the value two *real* sets of the same size reach (train vs test), the floor any
  generator's score should be read against.
* :func:`kid` — the kernel inception distance (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
  MMD² with the cubic polynomial kernel ``k(a, b) = (a·b / F + 1)³``, mean ± sd over random subsets.
* :func:`precision_recall` — improved precision and recall (Kynkäänniemi et al. 2019): the share of generated
  features inside the k-NN manifold of the real ones (fidelity) and of real inside the generated (coverage).
* :func:`mnist_metrics` — all of them at once (FID, KID, precision, recall, confident share) for one sample set,
  each next to its real-vs-real floor at the same ``n`` (:class:`MnistReference`: n test digits as the
  reference, n training digits as the "perfect generator").
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

__all__ = ["frechet_distance", "fid_mnist", "fid_floor", "kid", "precision_recall", "MnistReference", "mnist_metrics",
           "METRIC_KEYS", "format_metrics", "conditional_accuracy", "confident_fraction", "class_histogram",
           "kl_to_uniform"]


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


def kid(feats_a, feats_b, *, subsets: int = 10, subset_size: int | None = None, seed: int = 0) -> tuple[float, float]:
    """Kernel inception distance (Bińkowski et al. 2018) between ``feats_a [N, F]`` and ``feats_b [M, F]``.

    Each of ``subsets`` draws takes ``m = subset_size`` rows (default ``min(1000, N // 2, M // 2)``, so subsets
    differ and their sd means something) of each set (without replacement, from
    ``seed``) and computes the unbiased MMD² with the kernel ``k(a, b) = (a·b / F + 1)³``:
    ``Σ_{i≠j} k(a_i, a_j) / (m(m−1)) + Σ_{i≠j} k(b_i, b_j) / (m(m−1)) − 2 Σ_{i,j} k(a_i, b_j) / m²`` (float64).
    Unbiased: its mean is 0 for two draws of one distribution, so it can be negative. Returns (mean, sd).
    """
    a, b = _as_2d("feats_a", feats_a), _as_2d("feats_b", feats_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_a and feats_b differ in feature width: {a.shape[1]} vs {b.shape[1]}")
    subsets, seed = check_int(subsets, "subsets", min=1), check_int(seed, "seed", min=0)
    m = (max(2, min(1000, len(a) // 2, len(b) // 2)) if subset_size is None
         else check_int(subset_size, "subset_size", min=2))
    if m > min(len(a), len(b)):
        raise ValueError(f"subset_size must be at most both set sizes ({len(a)}, {len(b)}), got {m}")
    rng, f = np.random.default_rng(seed), a.shape[1]
    values = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T) / f + 1) ** 3, ((y @ y.T) / f + 1) ** 3, ((x @ y.T) / f + 1) ** 3
        off = m * (m - 1)
        values.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values, ddof=1)) if subsets > 1 else 0.0


def precision_recall(real_feats, fake_feats, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake_feats [M, F]`` against ``real_feats [N, F]``.

    Each set's manifold is the union of balls around its points with radius the distance to the point's k-th
    nearest neighbour in its own set (the point itself excluded). Precision: the share of fake points inside the
    real manifold; recall: the share of real points inside the fake manifold. Both in [0, 1]; a set against
    itself gives (1, 1). Euclidean distances in float64 (``torch.cdist``).
    """
    real, fake = (torch.from_numpy(_as_2d(n, v)) for n, v in (("real_feats", real_feats), ("fake_feats", fake_feats)))
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_feats and fake_feats differ in feature width: {real.shape[1]} vs {fake.shape[1]}")
    k = check_int(k, "k", min=1)
    if k >= min(len(real), len(fake)):
        raise ValueError(f"k must be below both set sizes ({len(real)}, {len(fake)}), got {k}")

    def radii(x: torch.Tensor) -> torch.Tensor:  # [N]: distance to the k-th neighbour (index 0 is the point itself)
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values

    def covered(support: torch.Tensor, queries: torch.Tensor) -> float:
        inside = torch.cdist(queries, support) <= radii(support)[None, :] * (1 + 1e-12)  # [Q, S]
        return float(inside.any(dim=1).double().mean())

    return covered(real, fake), covered(fake, real)


#: the keys :func:`mnist_metrics` returns (each generator metric ``x`` with its floor ``x_floor``)
METRIC_KEYS = ("n", "fid", "fid_floor", "kid", "kid_sd", "kid_floor", "kid_floor_sd", "precision",
               "precision_floor", "recall", "recall_floor", "confident", "confident_floor")


class MnistReference:
    """The real sets every MNIST metric is read against, at one size ``n``: ``n`` random test digits (the
    reference) and ``n`` random training digits (a perfect generator's stand-in, giving the floors), with their
    classifier features ``[n, F]``; the floors (real vs real at the same ``n``) are computed once.

    Args:
        n: set size, ``2 <= n <= 10000``; score sample sets of this size against it.
        seed: which digits are drawn.
        pad_to_32: 32 × 32 images (the ``attention`` preset).
    """

    def __init__(self, n: int, *, seed: int = 0, pad_to_32: bool = False, classifier: MNISTClassifier | None = None,
                 k: int = 3, kid_subsets: int = 10):
        from image_track.data import load_mnist

        self.n = check_int(n, "n", min=max(2, check_int(k, "k", min=1) + 1), max=10_000)
        self.seed = check_int(seed, "seed")
        self.classifier, self.k, self.kid_subsets = classifier, k, check_int(kid_subsets, "kid_subsets", min=1)
        gen = torch.Generator().manual_seed(self.seed)
        x_train, _ = load_mnist("train", pad_to_32=pad_to_32)
        x_test, _ = load_mnist("test", pad_to_32=pad_to_32)
        self.real = x_train[torch.randperm(len(x_train), generator=gen)[:self.n]]
        self.reference = x_test[torch.randperm(len(x_test), generator=gen)[:self.n]]
        self.reference_features = features(self.reference, classifier)
        self.floors = {("kid_floor_sd" if k == "kid_sd" else f"{k}_floor"): v
                       for k, v in self._scores(self.real).items()}

    def _scores(self, images: torch.Tensor) -> dict:
        feats = features(images, self.classifier)
        km, ks = kid(feats, self.reference_features, subsets=self.kid_subsets, seed=self.seed)
        precision, recall = precision_recall(self.reference_features, feats, k=self.k)
        return {"fid": frechet_distance(feats, self.reference_features), "kid": km, "kid_sd": ks,
                "precision": precision, "recall": recall,
                "confident": confident_fraction(images, 0.9, self.classifier)}


def mnist_metrics(images: torch.Tensor, reference: MnistReference | int | None = None, *, seed: int = 0) -> dict:
    """Every MNIST sample metric of ``images [n, 1, 28|32, 28|32]`` in ``[-1, 1]``, each beside its floor.

    FID-MNIST (:func:`frechet_distance` of classifier features), KID (:func:`kid`, mean and sd over 10 subsets),
    precision and recall (:func:`precision_recall`, k = 3) against ``n`` test digits, and the confident share
    (top class probability > 0.9); ``<name>_floor``: the same metric of ``n`` training digits (real vs real at
    the same ``n``: what a perfect generator scores). ``reference``: an :class:`MnistReference` of size ``n``
    (reuse one across settings), an int ``n`` or ``None`` (``len(images)``), then drawn from ``seed``.
    Returns a dict with :data:`METRIC_KEYS`.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a tensor [n, C, H, W], got {getattr(images, 'shape', type(images).__name__)}")
    if reference is None or isinstance(reference, int):
        reference = MnistReference(len(images) if reference is None else reference, seed=seed,
                                   pad_to_32=images.shape[-1] == 32)
    if not isinstance(reference, MnistReference):
        raise TypeError(f"reference must be an MnistReference, an int or None, got {type(reference).__name__}")
    if len(images) != reference.n:
        raise ValueError(f"images must number reference.n = {reference.n} (floors are read at the same n), "
                         f"got {len(images)}")
    return {"n": reference.n, **reference._scores(images), **reference.floors}


def format_metrics(r: dict) -> str:
    """One line of :func:`mnist_metrics`' dict: each metric with its floor."""
    return (f"FID {r['fid']:.2f} (floor {r['fid_floor']:.2f}), KID {r['kid']:.3g} ± {r['kid_sd']:.2g} "
            f"(floor {r['kid_floor']:.2g} ± {r['kid_floor_sd']:.2g}), "
            f"precision {r['precision']:.3f} (floor {r['precision_floor']:.3f}), "
            f"recall {r['recall']:.3f} (floor {r['recall_floor']:.3f}), confident {r['confident']:.3f} "
            f"(floor {r['confident_floor']:.3f}), n = {r['n']}")


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
