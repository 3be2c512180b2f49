import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toydiff as td
from toydiff.processes import forward, schedules

S = schedules.linear(T=1000)


def test_q_sample_closed_form_per_sample_t_any_rank():
    g = torch.Generator().manual_seed(0)
    for shape in [(5, 1), (5, 2), (5, 1, 28, 28)]:
        x0 = torch.randn(shape, generator=g)
        eps = torch.randn(shape, generator=g)
        t = torch.tensor([0, 10, 500, 998, 999])
        x_t = td.q_sample(S, x0, t, eps)
        assert x_t.shape == shape
        for i, ti in enumerate(t.tolist()):
            ab = S.alpha_bars[ti].item()
            assert torch.allclose(x_t[i], ab**0.5 * x0[i] + (1 - ab) ** 0.5 * eps[i], atol=1e-6)


@pytest.mark.parametrize("t", [0, 3, 49])
def test_q_sample_agrees_in_distribution_with_markov_steps(t):
    s = schedules.linear(T=50, beta_start=0.01, beta_end=0.2)
    g = torch.Generator().manual_seed(1)
    n = 200_000
    x0 = torch.full((n, 1), 2.0, dtype=torch.float64)
    x = x0
    for k in range(t + 1):
        x = td.q_step(s, x, k, generator=g)
    direct = td.q_sample(s, x0, torch.full((n,), t), generator=g)
    ab = s.alpha_bars[t].item()
    for y in (x, direct):
        assert y.mean().item() == pytest.approx(2.0 * ab**0.5, abs=5e-3)
        assert y.var().item() == pytest.approx(1 - ab, abs=1e-2)


@given(t=st.integers(0, 999), seed=st.integers(0, 2**16))
def test_eps_x0_v_round_trips(t, seed):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(4, 3, dtype=torch.float64, generator=g)
    eps = torch.randn(4, 3, dtype=torch.float64, generator=g)
    tt = torch.full((4,), t)
    x_t = td.q_sample(S, x0, tt, eps)
    assert torch.allclose(forward.x0_to_eps(S, x_t, tt, td.eps_to_x0(S, x_t, tt, eps)), eps, atol=1e-6)
    assert torch.allclose(td.eps_to_x0(S, x_t, tt, eps), x0, rtol=1e-6, atol=1e-4 / S.alpha_bars[t].item() ** 0.5)
    v = forward.v_target(S, x0, tt, eps)
    assert torch.allclose(forward.v_to_eps(S, x_t, tt, v), eps, atol=1e-9)
    assert torch.allclose(forward.v_to_x0(S, x_t, tt, v), x0, atol=1e-9)


@given(t=st.integers(1, 999))
def test_posterior_one_step_equals_ddpm_posterior(t):
    x0 = torch.tensor([[1.5], [-0.5]], dtype=torch.float64)
    x_t = torch.tensor([[0.3], [2.0]], dtype=torch.float64)
    mean, var = forward.q_posterior(S, x0, x_t, t)
    b, a, ab, ab_prev = S.betas[t], S.alphas[t], S.alpha_bars[t], S.alpha_bars[t - 1]
    # Ho et al. 2020, eq. 7
    expected = ab_prev.sqrt() * b / (1 - ab) * x0 + a.sqrt() * (1 - ab_prev) / (1 - ab) * x_t
    assert torch.allclose(mean, expected, atol=1e-12)
    assert var == pytest.approx(S.posterior_variance[t].item(), rel=1e-10)


def test_strided_posterior_is_gaussian_conditioning():
    # q(x_t' | x_t, x0) by conditioning the joint Gaussian of (x_t', x_t) given x0.
    t, tp = 700, 400
    ab_t, ab_p = S.alpha_bars[t].item(), S.alpha_bars[tp].item()
    x0 = torch.tensor([[0.7]], dtype=torch.float64)
    x_t = torch.tensor([[-1.2]], dtype=torch.float64)
    cov_pt = (ab_t / ab_p) ** 0.5 * (1 - ab_p)  # Cov(x_t', x_t | x0)
    mean = ab_p**0.5 * x0 + cov_pt / (1 - ab_t) * (x_t - ab_t**0.5 * x0)
    var = (1 - ab_p) - cov_pt**2 / (1 - ab_t)
    m, v = forward.q_posterior(S, x0, x_t, t, tp)
    assert torch.allclose(m, mean, atol=1e-12) and v == pytest.approx(var, rel=1e-10)
    m_clean, v_clean = forward.q_posterior(S, x0, x_t, t, -1)
    assert torch.allclose(m_clean, x0) and v_clean == pytest.approx(0, abs=1e-12)


def test_bad_input_names_the_argument():
    x0 = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="t must be in"):
        td.q_sample(S, x0, torch.tensor([0, 1, 1000]))
    with pytest.raises(ValueError, match="t must be in"):
        td.q_sample(S, x0, torch.tensor([-2, 1, 1]))
    with pytest.raises(ValueError, match="t has 2 entries"):
        td.q_sample(S, x0, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="noise"):
        td.q_sample(S, x0, torch.tensor([0, 1, 2]), torch.zeros(3, 3))
    with pytest.raises(TypeError, match="t must be"):
        td.q_sample(S, x0, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="x0"):
        td.q_sample(S, torch.zeros(3, 2, dtype=torch.long), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="t_prev"):
        forward.q_posterior(S, x0, x0, 5, 7)


def test_per_sample_generators_seed_each_sample_by_its_index():
    gens = td.per_sample_generators(7, 3)
    assert [g.initial_seed() for g in gens] == [7, 8, 9]
    second_batch = td.per_sample_generators(7, range(2, 4))  # samples 2 and 3 of a larger run
    x = td.randn_like(torch.zeros(3, 2, 2), td.per_sample_generators(7, 3))
    assert torch.equal(td.randn_like(torch.zeros(2, 2, 2), second_batch)[0], x[2])
    assert td.per_sample_generators(0, 0) == []
    with pytest.raises(TypeError, match="seed"):
        td.per_sample_generators(True, 2)
    with pytest.raises(ValueError, match="n_or_indices"):
        td.per_sample_generators(0, -1)
