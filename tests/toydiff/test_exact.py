import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import toydiff as td
from toydiff.processes import schedules

S = schedules.linear(T=1000)


@st.composite
def mixtures(draw, max_dim=3):
    K = draw(st.integers(1, 4))
    D = draw(st.integers(1, max_dim))
    seed = draw(st.integers(0, 10_000))
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(K, generator=g, dtype=torch.float64) + 0.1
    mu = 3 * torch.randn(K, D, generator=g, dtype=torch.float64)
    A = torch.randn(K, D, D, generator=g, dtype=torch.float64)
    cov = A @ A.transpose(1, 2) / D + 0.2 * torch.eye(D, dtype=torch.float64)
    return td.GaussianMixture(w, mu, cov)


def test_log_prob_matches_scipy_and_weights_are_normalised():
    w, mu = [1.0, 3.0], [[0.0, 1.0], [2.0, -1.0]]
    cov = [[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 2.0]]]
    gm = td.GaussianMixture(w, mu, cov)
    assert torch.allclose(gm.weights, torch.tensor([0.25, 0.75], dtype=torch.float64))
    x = torch.tensor([[0.1, 0.2], [3.0, -2.0], [-1.0, 5.0]], dtype=torch.float64)
    expected = np.log(sum(wk / 4 * stats.multivariate_normal(m, c).pdf(x.numpy()) for wk, m, c in zip(w, mu, cov)))
    assert np.allclose(gm.log_prob(x).numpy(), expected)


def test_sampling_matches_moments():
    gm = td.GaussianMixture([1, 2], [[-4.0], [4.0]], [[[1.0]], [[1.0]]])
    x, comp = gm.sample(200_000, torch.Generator().manual_seed(0), return_components=True)
    assert x.shape == (200_000, 1) and x.dtype == torch.float64
    assert (comp == 1).double().mean().item() == pytest.approx(2 / 3, abs=0.005)
    assert x.mean().item() == pytest.approx(gm.mean().item(), abs=0.03)
    assert x.var().item() == pytest.approx(gm.covariance().item(), rel=0.01)


@given(gm=mixtures(), ab=st.floats(1e-4, 1.0))
def test_score_is_the_gradient_of_log_prob(gm, ab):
    x = torch.randn(5, gm.D, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_()
    (grad,) = torch.autograd.grad(gm.log_prob(x, ab).sum(), x)
    assert torch.allclose(gm.score(x.detach(), ab), grad, atol=1e-8, rtol=1e-6)


@given(gm=mixtures(), ab=st.floats(1e-3, 0.999))
def test_noised_is_the_marginal_of_x_t(gm, ab):
    x = torch.randn(6, gm.D, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(gm.noised(ab).log_prob(x), gm.log_prob(x, ab), atol=1e-9)
    r = gm.responsibilities(x, ab)
    assert torch.allclose(r.sum(-1), torch.ones(6, dtype=torch.float64))


def test_noised_marginal_agrees_with_q_sample():
    gm = td.GaussianMixture([1, 2], [[-4.0, 1.0], [4.0, 0.0]], [[[1.0, 0.2], [0.2, 0.5]], [[0.3, 0.0], [0.0, 1.0]]])
    g = torch.Generator().manual_seed(0)
    t = 300
    x_t = td.q_sample(S, gm.sample(200_000, g), torch.full((200_000,), t), generator=g)
    law = gm.noised(S.alpha_bars[t].item())
    assert torch.allclose(x_t.mean(0), law.mean(), atol=0.02)
    assert torch.allclose(torch.cov(x_t.T), law.covariance(), atol=0.05)


def test_eps_star_is_the_conditional_mean_of_the_noise():
    gm = td.GaussianMixture([1, 2], [[-4.0], [4.0]], [[[1.0]], [[1.0]]])
    g = torch.Generator().manual_seed(0)
    n, t = 400_000, 600
    x0 = gm.sample(n, g)
    eps = torch.randn(n, 1, dtype=torch.float64, generator=g)
    tt = torch.full((n,), t)
    x_t = td.q_sample(S, x0, tt, eps)
    e_star = gm.eps_fn(S)(x_t, tt)
    assert torch.allclose(e_star, gm.eps_star(x_t, S.alpha_bars[t]), atol=1e-12)
    # E[(eps - eps*) h(x_t)] = 0 for any h: the residual is orthogonal to functions of x_t
    resid = eps - e_star
    for h in (torch.ones_like(x_t), x_t, torch.tanh(x_t)):
        assert abs((resid * h).mean().item()) < 5 * (resid * h).std().item() / n**0.5
    # and perturbing eps* in any direction increases the loss
    base = (resid**2).mean()
    for d in (0.05, -0.05):
        assert ((eps - e_star - d) ** 2).mean() > base
        assert ((eps - e_star * (1 + d)) ** 2).mean() > base


def test_bayes_optimal_loss_of_a_gaussian_has_its_closed_form():
    cov = torch.tensor([[2.0, 0.5], [0.5, 0.3]], dtype=torch.float64)
    gm = td.GaussianMixture([1.0], [[1.0, -1.0]], [cov])
    lam = torch.linalg.eigvalsh(cov)
    ts = [0, 50, 300, 999]
    floor = gm.bayes_optimal_loss(S, t=ts, n=50_000, generator=torch.Generator().manual_seed(0))
    for i, t in enumerate(ts):
        ab = S.alpha_bars[t]
        exact = (ab * lam / (ab * lam + 1 - ab)).mean().item()  # per element: tr Cov(eps | x_t) / D
        assert floor.per_t[i].item() == pytest.approx(exact, abs=4 * floor.stderr[i].item() + 1e-6)
    assert floor.bucketed(2).shape == (2,)


def test_eps_fn_keeps_any_event_shape():
    gm = td.GaussianMixture.diagonal([1, 1], torch.randn(2, 784, generator=torch.Generator().manual_seed(0)), [0.5, 0.7])
    x = torch.randn(3, 1, 28, 28)
    out = gm.eps_fn(S)(x, torch.tensor([0, 500, 999]))
    assert out.shape == x.shape and out.dtype == x.dtype


def test_affine_gives_the_law_of_the_transformed_data():
    gm = td.GaussianMixture([1, 2], [[-4.0, 0.0], [4.0, 1.0]], [torch.eye(2).tolist()] * 2)
    a, b = torch.tensor([0.5, 2.0]), torch.tensor([1.0, -1.0])
    x = gm.sample(5, torch.Generator().manual_seed(0))
    moved = gm.affine(a, b)
    # change of variables: log p_y(a x + b) = log p_x(x) - sum log a
    assert torch.allclose(moved.log_prob(x * a + b), gm.log_prob(x) - a.log().sum().double(), atol=1e-9)


@pytest.mark.parametrize("args,match", [
    (([1, -1], [[0.0], [1.0]], [[[1.0]], [[1.0]]]), "weights"),
    (([1, 1], [[0.0], [1.0]], [[[1.0]], [[-1.0]]]), "positive definite"),
    (([1, 1], [[0.0], [1.0]], [[[1.0]]]), "covs"),
    (([1, 1, 1], [[0.0], [1.0]], [[[1.0]], [[1.0]]]), "means"),
    (([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]]), "symmetric"),
])
def test_bad_mixtures_raise(args, match):
    with pytest.raises(ValueError, match=match):
        td.GaussianMixture(*args)


def test_bad_queries_raise():
    gm = td.GaussianMixture([1.0], [[0.0, 0.0]], [torch.eye(2).tolist()])
    with pytest.raises(ValueError, match="D = 2"):
        gm.log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="alpha_bar"):
        gm.score(torch.zeros(3, 2), 0.0)
    with pytest.raises(ValueError, match="n must"):
        gm.sample(-1)
