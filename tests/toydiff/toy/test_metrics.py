import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import toydiff as td
from toydiff.toy import metrics
from toydiff.toy.datasets import get_dataset


def normal(n, d=1, seed=0, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


@given(shift=st.floats(-5, 5), seed=st.integers(0, 100))
def test_w1_of_a_translate_is_the_shift(shift, seed):
    x = normal(300, seed=seed)
    assert metrics.wasserstein1(x, x + shift) == pytest.approx(abs(shift), abs=1e-9)


def test_sliced_w_of_a_translate():
    x = normal(4000, 2)
    # a shift c along one axis projects to c|cos θ| on a random direction: mean 2c/π
    assert metrics.sliced_wasserstein(x, x + torch.tensor([1.0, 0.0], dtype=torch.float64), n_projections=2000) == \
        pytest.approx(2 / math.pi, rel=0.05)
    with pytest.raises(ValueError, match="dimensions"):
        metrics.sliced_wasserstein(normal(10, 2), normal(10, 3))
    with pytest.raises(ValueError, match="1-D"):
        metrics.wasserstein1(normal(10, 2), normal(10, 2))


@pytest.mark.parametrize("fn, same_below, factor", [(metrics.energy_distance, 0.08, 3), (metrics.mmd2, 0.01, 10)])
def test_two_sample_distances_separate_distributions(fn, same_below, factor):
    same = fn(normal(1500, 2, 0), normal(1500, 2, 1))
    shifted = fn(normal(1500, 2, 0), normal(1500, 2, 1, shift=0.5))
    assert abs(same) < same_below and shifted > factor * max(abs(same), 1e-4)
    assert shifted < fn(normal(1500, 2, 0), normal(1500, 2, 1, shift=1.0))  # grows with the shift


def test_energy_distance_of_a_set_with_itself_is_zero():
    x = normal(200, 2)
    assert metrics.energy_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_energy_distance_is_scipys_in_one_dimension_and_linear_in_a_shift():
    a, b = normal(800, 1, 0), normal(600, 1, 1, shift=0.3)
    assert metrics.energy_distance(a, b) == pytest.approx(stats.energy_distance(a[:, 0], b[:, 0]), rel=1e-9)
    # small differences: twice the shift, twice the distance (the squared form would quadruple)
    x = normal(800, 2)
    near, nearer = (metrics.energy_distance(x, x + torch.tensor([s, 0.0], dtype=torch.float64)) for s in (0.2, 0.1))
    assert near / nearer == pytest.approx(2.0, rel=0.05)


def test_nll_of_true_samples_is_the_entropy():
    gm = td.GaussianMixture([1.0], [[0.0]], [[[4.0]]])
    x = gm.sample(100_000, torch.Generator().manual_seed(0))
    assert metrics.nll(x, gm) == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 4.0), abs=0.01)


def test_kde_divergences_small_for_truth_large_for_a_shift():
    gm = get_dataset("two_gaussians").mixture
    x = gm.sample(4000, torch.Generator().manual_seed(0))
    good, bad = metrics.kde_divergences(x, gm), metrics.kde_divergences(x + 3.0, gm)
    assert set(good) == {"kl_true_kde", "kl_kde_true", "js"}
    assert good["js"] < 0.03 and 0.1 < bad["js"] <= math.log(2) + 1e-9
    assert all(v >= 0 for v in good.values())


def test_mode_stats_recover_weights_and_missing_modes():
    gm = get_dataset("8gaussians").mixture
    g = torch.Generator().manual_seed(0)
    x, comp = gm.sample(8000, g, return_components=True)
    s = metrics.mode_stats(x, gm)
    assert s["covered"] == 8 and s["max_weight_error"] < 0.02
    only_three = x[comp < 3]
    s = metrics.mode_stats(only_three, gm)
    assert s["covered"] == 3 and np.allclose(sum(s["weights"]), 1.0)
    assert s["max_weight_error"] == pytest.approx(1 / 3 - 1 / 8, abs=0.03)
    # true 2-D points lie beyond 3 standard deviations with probability exp(-9/2); points on the ring
    # between two modes (0.77 from each, over 5 standard deviations) all do
    assert metrics.mode_stats(x, gm)["off_mode_share"] == pytest.approx(math.exp(-4.5), abs=0.004)
    between = 2.0 * torch.stack([torch.cos(torch.arange(8) * math.pi / 4 + math.pi / 8),
                                 torch.sin(torch.arange(8) * math.pi / 4 + math.pi / 8)], 1).double()
    assert metrics.mode_stats(between, gm)["off_mode_share"] == 1.0


@pytest.mark.parametrize("name", ["two_gaussians", "8gaussians", "moons"])
def test_report_puts_true_samples_at_the_floor_and_a_shift_far_above(name):
    ds = get_dataset(name)
    x = ds.sample(2000, torch.Generator().manual_seed(9)).double()
    good, bad = metrics.report(x, ds, seed=1), metrics.report(x + 1.0, ds, seed=1)
    key = "wasserstein1" if ds.dim == 1 else "sliced_wasserstein"
    assert set(good) >= {key, "energy_distance", "mmd2"}
    assert ("nll" in good) == ds.has_oracle and ("modes_covered" in good) == ds.has_oracle
    assert good[key]["value"] < 2.5 * good[key]["floor"]
    assert bad[key]["value"] > 5 * bad[key]["floor"]
    assert bad["energy_distance"]["value"] > 3 * good["energy_distance"]["value"]
    assert bad[key]["floor"] == good[key]["floor"]  # the floor depends only on n and the seed


def test_report_bad_input():
    ds = get_dataset("two_gaussians")
    with pytest.raises(ValueError, match="10 points"):
        metrics.report(torch.zeros(5, 1), ds)
    with pytest.raises(ValueError, match="dimension"):
        metrics.report(torch.zeros(50, 2), ds)


def test_the_noise_floor_shrinks_with_n():
    ds = get_dataset("two_gaussians")
    floors = [metrics.report(ds.sample(n, torch.Generator().manual_seed(0)), ds, seed=4)["wasserstein1"]["floor"]
              for n in (200, 2000, 20000)]
    assert floors[0] > floors[1] > floors[2]
    assert floors[0] / floors[2] > 4  # about sqrt(100) = 10 for a 1/sqrt(n) rate


def test_kl_of_a_density_with_itself_is_about_zero():
    gm = td.GaussianMixture([1.0], [[0.0]], [[[1.0]]])
    x = gm.sample(20000, torch.Generator().manual_seed(0))
    d = metrics.kde_divergences(x, gm)
    assert d["kl_true_kde"] < 0.005 and d["kl_kde_true"] < 0.005


def test_eps_gap_is_zero_for_the_exact_predictor_and_grows_with_a_wrong_sign():
    import toydiff as td
    from toydiff.toy.metrics import eps_gap

    s = td.schedules.constant(T=50)
    gm = td.GaussianMixture([1.0, 2.0], [[-2.0], [2.0]], [[[0.5]], [[0.5]]])
    t = 20
    ab = s.alpha_bar(t)
    exact = lambda x, tt: gm.eps_star(x.double(), ab)
    assert eps_gap(exact, gm, ab, t) < 1e-12
    flipped = lambda x, tt: -gm.eps_star(x.double(), ab)
    direct = float((4 * gm.eps_star(gm.noised(ab).sample(4000, torch.Generator().manual_seed(0)), ab) ** 2).mean())
    assert abs(eps_gap(flipped, gm, ab, t) - direct) < 1e-9 and direct > 0.1
    with pytest.raises(ValueError, match="alpha_bar"):
        eps_gap(exact, gm, 1.5, t)
