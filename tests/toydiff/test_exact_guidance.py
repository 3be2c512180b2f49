"""Exact guidance on labelled mixtures: p(y | x_t), conditional ε*, classifier guidance, CFG conventions,
limited intervals, autoguidance's weak model and the tilted target."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toydiff as td
from toydiff.exact import guidance as eg

S = td.schedules.linear(T=100, beta_start=1e-4, beta_end=0.1)


@st.composite
def labelled_mixtures(draw):
    """A labelled diagonal mixture in 1-D or 2-D with 2..5 components and 2..3 classes, every class used."""
    D, K = draw(st.integers(1, 2)), draw(st.integers(2, 5))
    C = draw(st.integers(2, min(3, K)))
    seed = draw(st.integers(0, 10_000))
    g = torch.Generator().manual_seed(seed)
    labels = list(range(C)) + torch.randint(0, C, (K - C,), generator=g).tolist()
    w = torch.rand(K, generator=g, dtype=torch.float64) + 0.1
    mu = 4 * torch.randn(K, D, generator=g, dtype=torch.float64)
    std = 0.2 + torch.rand(K, D, generator=g, dtype=torch.float64)
    return td.GaussianMixture.diagonal(w, mu, std, labels=labels), seed


def _prior(gm):
    return torch.zeros(gm.n_classes, dtype=torch.float64).index_add_(0, gm.labels, gm.weights)


@given(labelled_mixtures(), st.floats(1e-4, 1.0))
def test_class_posterior_rows_sum_to_one(case, ab):
    gm, seed = case
    x = 3 * torch.randn(64, gm.D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    p = gm.class_posterior(x, alpha_bar=ab)
    assert p.shape == (64, gm.n_classes) and (p >= 0).all()
    torch.testing.assert_close(p.sum(1), torch.ones(64, dtype=torch.float64), rtol=0, atol=1e-12)


@given(labelled_mixtures())
def test_class_posterior_tends_to_the_prior_as_the_signal_vanishes(case):
    gm, seed = case
    x = torch.randn(32, gm.D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    far = (gm.class_posterior(x, alpha_bar=1e-4) - _prior(gm)).abs().max()
    farther = (gm.class_posterior(x, alpha_bar=1e-12) - _prior(gm)).abs().max()
    assert farther < 1e-4 and farther <= far + 1e-12


def test_class_posterior_schedule_form_matches_alpha_bar_form_and_is_sharp_at_t0():
    gm = td.GaussianMixture.diagonal([1, 1], [[-3.0], [3.0]], 0.5, labels=[1, 0])
    x, t = torch.tensor([[-3.0], [3.0], [0.5]]), torch.tensor([0, 50, 99])
    torch.testing.assert_close(gm.class_posterior(x, t, S), gm.class_posterior(x, alpha_bar=S.alpha_bars[t]))
    p0 = gm.class_posterior(x[:2], 0, S)
    assert p0[0, 1] > 0.999 and p0[1, 0] > 0.999  # labels [1, 0]: the left mode is class 1
    with pytest.raises(ValueError, match="alpha_bar"):
        gm.class_posterior(x, t, S, alpha_bar=0.5)
    with pytest.raises(ValueError, match="t must"):
        gm.class_posterior(x, torch.tensor([0, 1]), S)


def test_condition_keeps_class_components_renormalised():
    gm = td.GaussianMixture.diagonal([1, 2, 3, 4], [[0.0], [1.0], [2.0], [3.0]], 0.1, labels=[0, 1, 0, 1])
    c = gm.condition(1)
    torch.testing.assert_close(c.weights, torch.tensor([2 / 6, 4 / 6], dtype=torch.float64))
    torch.testing.assert_close(c.means, torch.tensor([[1.0], [3.0]], dtype=torch.float64))
    assert c.labels.tolist() == [1, 1]
    assert gm.noised(0.5).labels.tolist() == gm.affine(2.0, 1.0).labels.tolist() == [0, 1, 0, 1]


def test_labels_are_checked():
    plain = td.GaussianMixture.diagonal([1, 1], [[0.0], [1.0]], 0.1)
    with pytest.raises(ValueError, match="labels"):
        plain.condition(0)
    with pytest.raises(ValueError, match="labels"):
        plain.class_posterior(torch.zeros(2, 1), alpha_bar=0.5)
    with pytest.raises(ValueError, match="labels"):
        td.GaussianMixture.diagonal([1, 1], [[0.0], [1.0]], 0.1, labels=[0, 1, 1])
    with pytest.raises(TypeError, match="labels"):
        td.GaussianMixture.diagonal([1, 1], [[0.0], [1.0]], 0.1, labels=[0.0, 1.0])
    with pytest.raises(ValueError, match="labels"):
        td.GaussianMixture.diagonal([1, 1], [[0.0], [1.0]], 0.1, labels=[0, -1])
    gm = td.GaussianMixture.diagonal([1, 1], [[0.0], [1.0]], 0.1, labels=[0, 2])  # class 1 has no component
    with pytest.raises(ValueError, match="y"):
        gm.condition(1)
    assert gm.class_posterior(torch.zeros(3, 1), alpha_bar=0.5)[:, 1].eq(0).all()


def _eps_pair(gm, y):
    return gm.condition(y).eps_fn(S), gm.eps_fn(S)


@given(labelled_mixtures(), st.integers(0, 99))
def test_cfg_w0_and_w1_are_the_unconditional_and_conditional_eps_exactly(case, step):
    """Under "scale" (ε_u + w(ε_c − ε_u)) w = 0 is ε_u and w = 1 is ε_c, bit for bit; under "ho-salimans"
    ((1 + w) ε_c − w ε_u) w = 0 is ε_c and w = −1 is ε_u."""
    gm, seed = case
    eps_c, eps_u = _eps_pair(gm, 1)
    x, t = torch.randn(16, gm.D, generator=torch.Generator().manual_seed(seed)), torch.full((16,), step)
    e_c, e_u = eps_c(x, t), eps_u(x, t)
    fixed_c, fixed_u = (lambda x_, t_: e_c), (lambda x_, t_: e_u)  # the same tensors, so equality is exact
    cfg = td.classifier_free_guidance
    assert torch.equal(cfg(fixed_c, fixed_u, 0.0)(x, t), e_u)
    assert torch.equal(cfg(fixed_c, fixed_u, 1.0)(x, t), e_c)
    assert torch.equal(cfg(fixed_c, fixed_u, 0.0, convention="ho-salimans")(x, t), e_c)
    assert torch.equal(cfg(fixed_c, fixed_u, -1.0, convention="ho-salimans")(x, t), e_u)
    torch.testing.assert_close(cfg(fixed_c, fixed_u, 2.0, convention="ho-salimans")(x, t), e_u + 3.0 * (e_c - e_u))


@given(labelled_mixtures(), st.integers(0, 99), st.floats(-1.0, 6.0))
def test_exact_classifier_guidance_is_exact_cfg_and_scale_one_is_the_conditional_eps(case, step, s):
    gm, seed = case
    eps_c, eps_u = _eps_pair(gm, 0)
    grad = eg.classifier_grad_fn(gm, S, 0)
    x = torch.randn(16, gm.D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    t = torch.full((16,), step)
    torch.testing.assert_close(td.classifier_guidance(eps_u, grad, 1.0, S)(x, t), eps_c(x, t), rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(td.classifier_guidance(eps_u, grad, s, S)(x, t),
                               td.classifier_free_guidance(eps_c, eps_u, s)(x, t), rtol=1e-6, atol=1e-6)


def test_classifier_grad_matches_autograd_of_log_class_posterior():
    gm = td.GaussianMixture.diagonal([1, 2, 1], [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], 0.5, labels=[0, 1, 1])
    x = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    lp = eg.class_log_joint(gm, x, 0.4)
    logpost = (lp - torch.logsumexp(lp, 1, keepdim=True))[:, 1].sum()
    (auto,) = torch.autograd.grad(logpost, x)
    torch.testing.assert_close(eg.classifier_grad(gm, x.detach(), 0.4, 1), auto)


def test_limited_interval_guides_only_inside():
    gm = td.GaussianMixture.diagonal([1, 1], [[-2.0], [2.0]], 0.5, labels=[0, 1])
    eps_c, eps_u = _eps_pair(gm, 1)
    x, t = torch.randn(6, 1, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 9, 10, 49, 50, 99])
    guided = td.classifier_free_guidance(eps_c, eps_u, 4.0, t_min=10, t_max=50)(x, t)
    full = td.classifier_free_guidance(eps_c, eps_u, 4.0)(x, t)
    inside = (t >= 10) & (t < 50)
    assert torch.equal(guided[~inside], eps_c(x, t)[~inside])
    torch.testing.assert_close(guided[inside], full[inside])
    assert not torch.allclose(guided[inside], eps_c(x, t)[inside])
    with pytest.raises(ValueError, match="t_min"):
        td.classifier_free_guidance(eps_c, eps_u, 4.0, t_min=50, t_max=10)
    with pytest.raises(ValueError, match="convention"):
        td.classifier_free_guidance(eps_c, eps_u, 4.0, convention="cfg++")


def test_guidance_interval_steps_have_sigma_in_range():
    s = td.schedules.linear(T=250, beta_start=1e-4, beta_end=0.04)
    lo, hi = td.guidance_interval(s, 0.5, 3.0)
    sig = ((1 - s.alpha_bars) / s.alpha_bars).sqrt()
    assert (sig[lo:hi] > 0.5).all() and (sig[lo:hi] <= 3.0).all()
    assert sig[lo - 1] <= 0.5 and sig[hi] > 3.0
    with pytest.raises(ValueError, match="sigma"):
        td.guidance_interval(s, 1e3, 1e4)


def test_labelled_eps_fn_uses_each_samples_class_and_the_null_label():
    gm = td.GaussianMixture.diagonal([1, 1, 2], [[-2.0], [2.0], [5.0]], 0.5, labels=[0, 1, 1])
    fn = eg.labelled_eps_fn(gm, S)
    x, t, y = torch.randn(3, 1, dtype=torch.float64), torch.tensor([5, 20, 60]), torch.tensor([0, 1, 2])
    out = fn(x, t, y)
    ab = S.alpha_bars[t]
    torch.testing.assert_close(out[0], gm.condition(0).eps_star(x[:1], ab[:1])[0])
    torch.testing.assert_close(out[1], gm.condition(1).eps_star(x[1:2], ab[1:2])[0])
    torch.testing.assert_close(out[2], gm.eps_star(x[2:], ab[2:])[0])  # y = 2 = C: the null label


def test_tilted_target_is_normalised_and_equals_the_conditional_at_w1():
    gm = td.GaussianMixture.diagonal([1, 1, 1], [[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]], 0.4, labels=[0, 1, 1])
    cond = gm.condition(1)
    tg = eg.tilted_target(cond, gm, 1.0, n=128)
    assert math.isclose(float(tg.density.sum()) * tg.cell, 1.0, rel_tol=1e-9)
    gy, gx = torch.meshgrid(tg.ys, tg.xs, indexing="ij")
    exact = cond.log_prob(torch.stack([gx.flatten(), gy.flatten()], 1)).reshape(128, 128)
    assert (tg.log_density - exact)[exact > -5].abs().max() < 1e-3  # the grid holds all but a sliver of mass
    x = tg.sample(4000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.mean(0), cond.mean(), atol=0.05, rtol=0)
    # w = 3 pushes mass away from class 0: less of it near (-1, 0) than under p(x | y)
    t3 = eg.tilted_target(cond, gm, 3.0, n=128)
    near = (gx + 1) ** 2 + gy**2 < 0.5
    assert t3.density[near].sum() < tg.density[near].sum()


def test_widened_scales_covariances_and_keeps_labels():
    gm = td.GaussianMixture.diagonal([1, 1], [[0.0, 0.0], [3.0, 0.0]], 0.5, labels=[1, 0])
    wide = eg.widened(gm, 2.0)
    torch.testing.assert_close(wide.covs, 4 * gm.covs)
    assert wide.labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="factor"):
        eg.widened(gm, 0.0)
