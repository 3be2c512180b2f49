"""The empirical distribution's exact denoiser (a softmax over training points), and the copy-rate metric."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

import toydiff as td
from toydiff.sampling import flow_steps as flow_samplers
from toydiff.processes import interpolants
from toydiff.evaluation.memorisation import COPY_RATIO, copy_rate, copy_stats

S100 = td.schedules.linear(T=100, beta_start=1e-4, beta_end=0.2)
PTS = torch.randn(12, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
EMP = td.exact.EmpiricalDistribution(PTS)


@pytest.mark.parametrize("method", td.METHODS)
def test_every_vp_sampler_returns_training_points(method):
    g = torch.Generator().manual_seed(1)
    steps = None if method.startswith("ddpm") else 25
    x = td.sample(EMP.eps_fn(S100), torch.randn(40, 2, generator=g, dtype=torch.float64), S100, method=method,
                  steps=steps, generator=g)
    assert torch.cdist(x, PTS).min(1).values.max() < 1e-3
    assert copy_rate(x, PTS) == 1.0


@pytest.mark.parametrize("method", flow_samplers.FLOW_METHODS)
def test_flow_samplers_on_the_empirical_velocity_return_training_points(method):
    fm = interpolants.linear()
    x1 = torch.randn(40, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = flow_samplers.sample_interpolant(EMP.velocity_fn(fm), x1, fm, method=method, steps=40)
    assert torch.cdist(x, PTS).min(1).values.max() < 1e-3


@settings(max_examples=10)
@given(ab=st.floats(0.05, 0.99), seed=st.integers(0, 100))
def test_eps_is_the_limit_of_a_mixture_with_tiny_components(ab, seed):
    gm = td.GaussianMixture.diagonal(torch.ones(len(PTS)), PTS, 1e-6)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2
    assert torch.allclose(EMP.eps_star(x, ab), gm.eps_star(x, ab), atol=1e-5)
    assert torch.allclose(EMP.log_prob(x, ab), gm.log_prob(x, ab), atol=1e-5)
    assert torch.allclose(EMP.score(x, ab), gm.score(x, ab), atol=1e-4)


def test_many_points_in_chunks_stay_finite_and_sum_to_one():
    big = td.exact.EmpiricalDistribution(torch.randn(5000, 3, generator=torch.Generator().manual_seed(3)))
    x = torch.randn(1000, 3, generator=torch.Generator().manual_seed(4))
    x0 = big.x0_hat(x, 0.9999)  # nearly a hard nearest neighbour: logsumexp keeps it finite
    assert torch.isfinite(x0).all()
    assert torch.isfinite(big.log_prob(x * 100, 0.9999)).all()


def test_samples_are_training_points_and_seeded():
    a = EMP.sample(20, torch.Generator().manual_seed(5))
    assert torch.cdist(a, PTS).min(1).values.max() == 0
    assert torch.equal(a, EMP.sample(20, torch.Generator().manual_seed(5)))


def test_copy_rate_on_known_cases():
    train = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    copies = train + 0.1  # ratio 0.14/9.9: copies
    midway = torch.tensor([[5.0, 0.0], [0.0, 5.0]])  # equidistant from two points: ratio 1
    assert copy_rate(copies, train) == 1.0
    assert copy_rate(midway, train) == 0.0
    stats = copy_stats(torch.cat([copies, midway]), train)
    assert stats.rate == pytest.approx(3 / 5) and stats.unique == 3
    # the threshold is 1/3: a point at distance ratio 0.3 counts, at 0.4 not
    assert copy_rate(torch.tensor([[3.0 / 1.3 * 1.0, 0.0]]), torch.tensor([[0.0, 0.0], [10.0, 0.0]])) == 1.0
    assert copy_rate(torch.tensor([[10 * 0.4 / 1.4, 0.0]]), torch.tensor([[0.0, 0.0], [10.0, 0.0]])) == 0.0
    assert COPY_RATIO == pytest.approx(1 / 3)


def test_copy_rate_counts_copies_of_duplicated_training_points():
    dup = torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0]])
    assert copy_rate(torch.tensor([[0.0, 0.0], [0.1, 0.0]]), dup) == 1.0  # a duplicate is one point, not a tie
    assert copy_rate(torch.tensor([[5.0, 0.0]]), dup) == 0.0
    assert copy_rate(torch.zeros(4, 2), torch.zeros(5, 2)) == 1.0  # all identical: exact copies still count


@pytest.mark.parametrize("call, match", [
    (lambda: td.exact.EmpiricalDistribution([[0.0]]), "points"),
    (lambda: td.exact.EmpiricalDistribution(torch.zeros(0, 2)), "points"),
    (lambda: EMP.eps_star(torch.zeros(3, 3), 0.5), "x_t"),
    (lambda: EMP.eps_star(torch.zeros(3, 2), 1.0), "alpha_bar"),
    (lambda: EMP.eps_fn("linear"), "schedule"),
    (lambda: EMP.eps_fn(S100)(torch.zeros(2, 2), torch.tensor([0.5, 0.5])), "t"),
    (lambda: EMP.denoiser(interpolants.linear(), "bogus"), "kind"),
    (lambda: EMP.sample(-1), "n"),
    (lambda: copy_rate(torch.zeros(2, 2), torch.zeros(1, 2)), "train"),
    (lambda: copy_rate(torch.zeros(2, 3), torch.zeros(4, 2)), "dimensions"),
    (lambda: copy_rate(torch.zeros(2, 2), torch.zeros(4, 2), ratio=2.0), "ratio")])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()
