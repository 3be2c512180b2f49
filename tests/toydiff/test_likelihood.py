"""The PF-ODE likelihood against closed forms: the exact oracle's ε*/velocity must give back its own log-density."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

import toydiff as td
from toydiff.processes import interpolants
from toydiff.evaluation.likelihood import bits_per_dim, pf_ode_likelihood

S1000 = td.schedules.linear(T=1000)
GM1 = td.GaussianMixture([1.0, 2.0], [[-1.0], [1.5]], [[[0.09]], [[0.25]]])
GM2 = td.GaussianMixture.diagonal([1, 1, 2], [[-1.0, 0.5], [1.0, -0.5], [0.0, 1.2]], [0.2, 0.3, 0.15])


@pytest.mark.parametrize("gm", [GM1, GM2], ids=["1d", "2d"])
def test_vp_oracle_reproduces_the_mixture_log_prob(gm):
    x = gm.sample(4, torch.Generator().manual_seed(0))
    terminal = gm.noised(float(S1000.alpha_bars[-1])).log_prob  # the exact x_1 law: the ODE's own error only
    r = pf_ode_likelihood(gm.eps_fn(S1000), x, S1000, prior=terminal, rtol=1e-4, atol=1e-4)
    assert (r.log_prob - gm.log_prob(x)).abs().max() < 0.02
    # with the N(0, I) prior the gap is the schedule's terminal mismatch (alpha_bar_T = 4e-5), still small here
    assert (r.delta + r.prior_log_prob - r.log_prob).abs().max() < 1e-12


@pytest.mark.parametrize("gm", [GM1, GM2], ids=["1d", "2d"])
def test_interpolant_oracle_reproduces_the_mixture_log_prob(gm):
    x = gm.sample(6, torch.Generator().manual_seed(1))
    fm = interpolants.linear()
    lp = td.log_likelihood(gm.velocity_fn(fm), x, fm)
    assert (lp - gm.log_prob(x)).abs().max() < 0.02
    # another prediction type through the interpolant's conversion
    lp_v = td.log_likelihood(gm.denoiser(fm, "v"), x, fm, prediction="v")
    assert (lp_v - gm.log_prob(x)).abs().max() < 0.02


@settings(max_examples=5)
@given(mu=st.floats(-3, 3), s=st.floats(0.2, 2.0))
def test_gaussian_closed_form(mu, s):
    gm = td.GaussianMixture([1.0], [[mu]], [[[s * s]]])
    x = torch.tensor([[mu - s], [mu + 0.5 * s], [mu + 2 * s]], dtype=torch.float64)
    closed = -0.5 * ((x[:, 0] - mu) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
    lp = td.log_likelihood(gm.velocity_fn(interpolants.cosine()), x, interpolants.cosine())
    assert (lp - closed).abs().max() < 0.02


def test_gaussian_closed_form_on_a_schedule():
    mu, s = 0.7, 0.5
    gm = td.GaussianMixture([1.0], [[mu]], [[[s * s]]])
    x = torch.tensor([[0.0], [1.2]], dtype=torch.float64)
    closed = -0.5 * ((x[:, 0] - mu) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
    assert (td.log_likelihood(gm.eps_fn(S1000), x, S1000, rtol=1e-4, atol=1e-4) - closed).abs().max() < 0.02


def test_hutchinson_is_unbiased_enough_and_seeded():
    fm = interpolants.linear()
    x = GM2.sample(4, torch.Generator().manual_seed(2))
    kw = dict(divergence="hutchinson", n_probes=4, rtol=1e-3, atol=1e-3)
    a = td.log_likelihood(GM2.velocity_fn(fm), x, fm, generator=torch.Generator().manual_seed(3), **kw)
    b = td.log_likelihood(GM2.velocity_fn(fm), x, fm, generator=torch.Generator().manual_seed(3), **kw)
    assert torch.equal(a, b)
    assert (a - GM2.log_prob(x)).abs().mean() < 0.5


def test_a_wrong_model_scores_lower_on_average():
    fm = interpolants.linear()
    x = GM1.sample(8, torch.Generator().manual_seed(4))
    wide = td.GaussianMixture(GM1.weights, GM1.means, GM1.covs * 4)
    assert td.log_likelihood(wide.velocity_fn(fm), x, fm).mean() < GM1.log_prob(x).mean() - 0.1


def test_bits_per_dim_of_a_uniform_density():
    # the uniform density on [-1, 1]^D has log p = -D log 2: exactly 8 bits per dimension for 256 levels
    D = 5
    assert torch.allclose(bits_per_dim(torch.tensor([-D * math.log(2.0)]), D), torch.tensor([8.0], dtype=torch.float64))


@pytest.mark.parametrize("kwargs, match", [
    (dict(fn=None), "fn"), (dict(process="vp"), "process"), (dict(divergence="bogus"), "divergence"),
    (dict(n_probes=0), "n_probes"), (dict(rtol=-1.0), "rtol"), (dict(prediction="bogus"), "prediction"),
    (dict(x=torch.zeros(0, 1)), "x"), (dict(prior=3), "prior"), (dict(t_min=0.9), "t_min")])
def test_bad_input_names_the_argument(kwargs, match):
    args = dict(fn=GM1.velocity_fn(interpolants.linear()), x=torch.zeros(2, 1), process=interpolants.linear())
    args.update(kwargs)
    with pytest.raises((TypeError, ValueError), match=match):
        pf_ode_likelihood(args.pop("fn"), args.pop("x"), args.pop("process"), **args)


def test_a_non_differentiable_fn_is_refused():
    fm = interpolants.linear()
    f = GM1.velocity_fn(fm)

    def no_grad(x, t):
        with torch.no_grad():
            return f(x, t)

    with pytest.raises(ValueError, match="differentiable"):
        td.log_likelihood(no_grad, torch.zeros(2, 1), fm)


def test_the_vp_interpolant_view_with_a_velocity_agrees():
    fm = interpolants.vp(S1000)  # starts at t = 1/T, where the velocity is finite
    x = GM1.sample(4, torch.Generator().manual_seed(5))
    lp = td.log_likelihood(GM1.velocity_fn(fm), x, fm, rtol=1e-4, atol=1e-4)
    assert (lp - GM1.log_prob(x)).abs().max() < 0.02


def test_a_process_object_gives_what_its_schedule_or_path_gives():
    from toydiff.processes.flow import InterpolantProcess
    from toydiff.processes.vp import VPProcess

    fm = interpolants.linear()
    x = GM1.sample(3, torch.Generator().manual_seed(2))
    assert torch.equal(td.log_likelihood(GM1.denoiser(fm, "v"), x, fm, prediction="v", rtol=1e-3, atol=1e-3),
                       td.log_likelihood(GM1.denoiser(fm, "v"), x, InterpolantProcess(fm, "v"), rtol=1e-3, atol=1e-3))
    s = td.schedules.linear(T=50)
    assert torch.equal(td.log_likelihood(GM1.eps_fn(s), x, s, rtol=1e-3, atol=1e-3),
                       td.log_likelihood(GM1.eps_fn(s), x, VPProcess(s), rtol=1e-3, atol=1e-3))
    with pytest.raises(ValueError, match="prediction"):
        td.log_likelihood(GM1.velocity_fn(fm), x, InterpolantProcess(fm, "v"), prediction="velocity")
