"""image_track.evaluate and the committed classifier: metrics on known cases and on real digits."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from image_track import evaluate as ev
from image_track.classifier import DEFAULT_WEIGHTS, classify, features, load_classifier
from image_track.data import load_mnist

N = 1000  # images per set in the FID checks


@pytest.fixture(scope="module")
def clf():
    return load_classifier()


@pytest.fixture(scope="module")
def test_set():
    return load_mnist("test")


# ------------------------------------------------------------------------------ Fréchet distance


def _gauss(n, f, seed):
    return torch.randn(n, f, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_frechet_of_identical_sets_is_zero():
    a = _gauss(500, 8, 0)
    assert ev.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_of_a_shifted_set_is_the_squared_shift():
    a = _gauss(500, 6, 1)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0, 0.0, 3.0], dtype=torch.float64)
    assert ev.frechet_distance(a, a + shift) == pytest.approx(float(shift.square().sum()), rel=1e-6)


def test_frechet_of_a_scaled_set_matches_the_closed_form():
    # b = 2a: covariances S and 4S commute, so d = |mu|^2 + tr(S + 4S - 2 * 2S) = |mu|^2 + tr(S).
    a = _gauss(400, 5, 2) + 1.0
    mu, cov = a.mean(0), torch.cov(a.T)
    expected = float(mu.square().sum() + torch.trace(cov))
    assert ev.frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-6)


def test_frechet_1d_is_mean_and_std_gaps():
    a, b = _gauss(300, 1, 3), 3.0 * _gauss(300, 1, 4) + 2.0
    expected = (a.mean() - b.mean()).item() ** 2 + (a.std() - b.std()).item() ** 2
    assert ev.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_grows_with_the_gap():
    a, b = _gauss(500, 4, 5), _gauss(500, 4, 6)
    ds = [ev.frechet_distance(a, b + s) for s in (0.0, 0.5, 1.0, 2.0)]
    assert ds == sorted(ds) and ds[0] < 0.1 < ds[-1]


@given(seed=st.integers(0, 2**16), shift=st.floats(-3, 3), scale=st.floats(0.2, 3.0))
def test_frechet_properties(seed, shift, scale):
    """Symmetric, non-negative, invariant to a common shift; a pure shift s of every feature costs F s^2."""
    a, b = _gauss(60, 3, seed), scale * _gauss(60, 3, seed + 1)
    d = ev.frechet_distance(a, b)
    assert d >= 0.0
    assert ev.frechet_distance(b, a) == pytest.approx(d, rel=1e-6, abs=1e-9)
    assert ev.frechet_distance(a + shift, b + shift) == pytest.approx(d, rel=1e-6, abs=1e-9)
    assert ev.frechet_distance(a, a + shift) == pytest.approx(3 * shift**2, rel=1e-6, abs=1e-9)


def test_frechet_bad_input():
    with pytest.raises(ValueError, match="feats_a"):
        ev.frechet_distance(np.zeros(5), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="feature width"):
        ev.frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        ev.frechet_distance(np.full((5, 2), np.nan), np.zeros((5, 2)))


# ------------------------------------------------------------------------------ histogram / KL


def test_kl_to_uniform_known_values():
    assert ev.kl_to_uniform(torch.full((10,), 0.1)) == pytest.approx(0.0, abs=1e-12)
    assert ev.kl_to_uniform([5, 5, 5, 5]) == pytest.approx(0.0, abs=1e-12)
    assert ev.kl_to_uniform([0, 0, 1, 0]) == pytest.approx(math.log(4))
    assert ev.kl_to_uniform([1, 3]) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    with pytest.raises(ValueError, match="histogram"):
        ev.kl_to_uniform([-1, 2])


@given(st.lists(st.floats(0, 100), min_size=1, max_size=12).filter(lambda h: sum(h) > 1e-3))
def test_kl_to_uniform_lies_between_zero_and_log_k(hist):
    kl = ev.kl_to_uniform(hist)
    assert -1e-12 <= kl <= math.log(len(hist)) + 1e-12


# ------------------------------------------------------------------------------ the classifier


def test_committed_weights_metadata_and_size():
    _, meta = __import__("toydiff.training.checkpoint", fromlist=["load_checkpoint"]).load_checkpoint(DEFAULT_WEIGHTS)
    assert meta["test_accuracy"] >= 0.99 and "image_track.classifier" in meta["command"] and "seed" in meta
    assert DEFAULT_WEIGHTS.stat().st_size < 500_000


def test_accuracy_on_real_test_digits(clf, test_set):
    x, y = test_set
    assert ev.conditional_accuracy(x, y, clf) >= 0.99
    assert ev.conditional_accuracy(x[:500], (y[:500] + 1) % 10, clf) < 0.02


def test_32x32_input_is_centre_cropped(clf, test_set):
    x = test_set[0][:64]
    x32 = torch.nn.functional.pad(x, (2, 2, 2, 2), value=-1.0)
    assert torch.allclose(classify(x, clf), classify(x32, clf))
    assert features(x, clf).shape == (64, clf.config.hidden)
    with pytest.raises(ValueError, match="images"):
        classify(torch.zeros(2, 1, 30, 30), clf)


def test_histogram_confidence_and_kl_on_real_digits(clf, test_set):
    x, y = test_set
    hist = ev.class_histogram(x, clf)
    true = torch.bincount(y, minlength=10).double() / len(y)
    assert hist.sum().item() == pytest.approx(1.0) and (hist - true).abs().max() < 0.005
    assert ev.kl_to_uniform(hist) < 0.01
    assert ev.kl_to_uniform(ev.class_histogram(x[y == 3][:200], clf)) > 2.0  # one class only: ~log 10
    assert ev.confident_fraction(x[:N], 0.9, clf) > 0.95
    assert ev.confident_fraction(x[:N], 0.5, clf) >= ev.confident_fraction(x[:N], 0.999, clf)
    with pytest.raises(ValueError, match="threshold"):
        ev.confident_fraction(x[:2], 1.5, clf)


def test_fid_identical_floor_and_degraded(clf, test_set):
    x = test_set[0]
    real_a, real_b = x[:N], x[N:2 * N]
    assert ev.fid_mnist(real_a, real_a, clf) == pytest.approx(0.0, abs=1e-6)
    floor = ev.fid_floor(N, clf)
    assert 0.0 < floor
    between_real = ev.fid_mnist(real_a, real_b, clf)
    noisy = (real_a + 0.5 * torch.randn(real_a.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    shifted = torch.roll(real_a, shifts=(6, 6), dims=(-2, -1))
    fid_noisy, fid_shifted = ev.fid_mnist(noisy, real_b, clf), ev.fid_mnist(shifted, real_b, clf)
    assert fid_noisy > 3 * max(floor, between_real)
    assert fid_shifted > 3 * max(floor, between_real)
    very_noisy = (real_a + 1.0 * torch.randn(real_a.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert ev.fid_mnist(very_noisy, real_b, clf) > fid_noisy
    with pytest.raises(ValueError, match="n must"):
        ev.fid_floor(1, clf)


# ------------------------------------------------------------------------------ KID, precision / recall, all metrics


def test_precision_recall_of_a_set_against_itself_and_a_disjoint_cloud():
    a = _gauss(200, 4, 0)
    assert ev.precision_recall(a, a, k=3) == (1.0, 1.0)
    p, r = ev.precision_recall(a, a + 20.0, k=3)  # a cloud shifted far away: inside neither manifold
    assert p == 0.0 and r == 0.0
    # half of the fakes on the real cloud, half far away: precision 1/2, recall still high (the real cloud is covered)
    half = torch.cat([_gauss(100, 4, 1), _gauss(100, 4, 2) + 20.0])
    p, r = ev.precision_recall(a, half, k=3)
    assert p == pytest.approx(0.5, abs=0.05) and r > 0.6
    # a collapsed generator (every fake at one real point): precise, no recall
    p, r = ev.precision_recall(a, a[:1].repeat(200, 1) + 1e-9 * _gauss(200, 4, 3), k=3)
    assert p == 1.0 and r < 0.05


def test_kid_is_unbiased_and_grows_with_a_shift():
    means = [ev.kid(_gauss(400, 8, s), _gauss(400, 8, 100 + s), subsets=5, seed=s)[0] for s in range(4)]
    shifted, sd = ev.kid(_gauss(400, 8, 0), _gauss(400, 8, 1) + 0.5, subsets=5)
    assert abs(np.mean(means)) < 0.2 * shifted  # two draws of one law: ≈ 0 on average (negative values allowed)
    assert min(means) < 0 < shifted and sd > 0
    assert shifted < ev.kid(_gauss(400, 8, 0), _gauss(400, 8, 1) + 1.0, subsets=5)[0]


@pytest.mark.parametrize("call, name", [
    (lambda: ev.kid(_gauss(10, 2, 0), _gauss(10, 3, 1)), "feature width"),
    (lambda: ev.kid(_gauss(10, 2, 0), _gauss(10, 2, 1), subsets=0), "subsets"),
    (lambda: ev.kid(_gauss(10, 2, 0), _gauss(10, 2, 1), subset_size=11), "subset_size"),
    (lambda: ev.precision_recall(_gauss(10, 2, 0), _gauss(10, 2, 1), k=10), "k must"),
    (lambda: ev.precision_recall(_gauss(10, 2, 0), torch.zeros(10), k=3), "fake_feats"),
    (lambda: ev.mnist_metrics(torch.zeros(5, 28, 28)), "images"),
    (lambda: ev.mnist_metrics(torch.zeros(5, 1, 28, 28), "5"), "reference"),
])
def test_metric_errors_name_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_mnist_metrics_floors_at_the_same_n(test_set):
    ref = ev.MnistReference(40, seed=0)
    real = ev.mnist_metrics(ref.real, ref)  # the floor set itself: every metric equals its floor
    assert set(real) == set(ev.METRIC_KEYS)
    assert all(real[k] == pytest.approx(real[f"{k}_floor"]) for k in ("fid", "kid", "precision", "recall", "confident"))
    blank = ev.mnist_metrics(torch.full((40, 1, 28, 28), -1.0) + 0.01 * torch.rand(40, 1, 28, 28), ref)
    assert blank["fid"] > 2 * ref.floors["fid_floor"] and blank["recall"] < 0.1 and blank["kid"] > real["kid"]
    assert "floor" in ev.format_metrics(blank)
    with pytest.raises(ValueError, match="reference.n"):
        ev.mnist_metrics(ref.real[:20], ref)
