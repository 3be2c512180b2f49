"""The exact models of the sampler families (toydiff.testing.families): the shifted time grid of flow-matching
schedulers, the score, the σ = inf end of the reference ODE, the LCM / EDM parametrisations."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toydiff.exact.mixture import GaussianMixture
from toydiff.processes.interpolants import cosine, linear
from toydiff.testing import default_problem, pf_ode
from toydiff.testing.families import (edm_network_output, exact_prediction, lcm_network_output, lcm_scalings,
                                      shift_of_mu, shift_time, shifted)

GM = GaussianMixture.diagonal([0.4, 0.6], torch.tensor([[-1.0, 0.5], [1.2, -0.3]]),
                              torch.tensor([[0.5, 0.8], [0.7, 0.4]]))


def _x(n=6, seed=0):
    return torch.randn(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(t=st.floats(0.0, 1.0), shift=st.floats(0.2, 8.0))
def test_shift_time_is_sd3s_map_and_maps_the_unit_interval_onto_itself(t, shift):
    s = float(shift_time(t, shift))
    assert 0.0 <= s <= 1.0
    assert s == pytest.approx(shift * t / (1 + (shift - 1) * t), abs=1e-12)
    assert (s >= t) == (shift >= 1) or s == pytest.approx(t, abs=1e-12)


def test_dynamic_shifting_is_the_same_map_with_shift_e_to_the_mu():
    t = torch.linspace(0.01, 1.0, 7, dtype=torch.float64)
    mu = 1.15
    diffusers_exponential = math.exp(mu) / (math.exp(mu) + (1 / t - 1))  # time_shift(mu, 1.0, t), written out
    assert torch.allclose(shift_time(t, shift_of_mu(mu)), diffusers_exponential, atol=1e-12)
    assert torch.allclose(shift_time(t, shift_of_mu(0.5, "linear")), 0.5 / (0.5 + (1 / t - 1)), atol=1e-12)


@pytest.mark.parametrize("base", [cosine()], ids=["cosine"])
def test_shifted_velocity_is_the_derivative_of_the_exact_path(base):
    """u on the shifted clock = d/dt of the exact flow path Φ_{t0→t}(x) (central difference), and equals the
    unshifted velocity at the mapped time times s'(t) — dropping the chain-rule factor fails both."""
    interp, shift, t0, h = shifted(base, 3.0), 3.0, 0.4, 1e-4
    x = _x()
    fwd = GM.flow_map(x, t0, t0 + h, interp, rtol=1e-12, atol=1e-12)
    back = GM.flow_map(x, t0, t0 - h, interp, rtol=1e-12, atol=1e-12)
    fd = (fwd - back) / (2 * h)
    u = exact_prediction(GM, x, t0, interp, "velocity")
    assert torch.allclose(u, fd, atol=1e-6), (u - fd).abs().max()
    ds = shift / (1 + (shift - 1) * t0) ** 2
    u_base = exact_prediction(GM, x, float(shift_time(t0, shift)), base, "velocity")
    assert torch.allclose(u, ds * u_base, atol=1e-10)
    assert not torch.allclose(u, u_base, atol=1e-2)  # the factor matters here (s'(0.4) = 0.69)


def test_shifted_interpolant_inverts_its_log_snr():
    interp = shifted(linear(), 3.0)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(interp.t_of_log_snr(interp.log_snr(t)), t, atol=1e-9)


def test_score_is_the_gradient_of_the_log_density_on_the_path():
    """On x_t = (1 − t) x_0 + t ε, x_t / c is the VP state with ᾱ = (1 − t)²/c² (c² = (1 − t)² + t²)."""
    t, x = 0.3, _x()
    c = math.sqrt((1 - t) ** 2 + t**2)
    want = GM.score(x / c, (1 - t) ** 2 / c**2) / c
    assert torch.allclose(exact_prediction(GM, x, t, linear(), "score"), want, atol=1e-10)
    with pytest.raises(ValueError, match="sigma"):
        exact_prediction(GM, x, 0.0, linear(), "score")


def test_reference_ode_from_pure_noise_agrees_with_the_sigma_ode_and_is_its_large_sigma_limit():
    """pf_ode's σ = inf end goes through the exact flow map on the linear path: at a finite σ that route gives the
    σ-ODE's answer, and from σ = inf it is where a start at σ = 1e6 nearly lands (x_T differs by O(1/σ))."""
    from toydiff.testing.oracle import _pf_ode_via_flow_map

    p = default_problem(batch=3)
    via_map = _pf_ode_via_flow_map(p, p.x_T, 4.0, 0.0, rtol=1e-10, atol=1e-10)
    assert torch.allclose(via_map, pf_ode(p, p.x_T, 4.0, 0.0), atol=1e-7)
    inf = pf_ode(p, p.x_T, math.inf, 0.0)
    assert torch.allclose(_pf_ode_via_flow_map(p, p.x_T, 1e6, 0.0, rtol=1e-10, atol=1e-10), inf, atol=1e-5)
    assert not torch.allclose(via_map, inf, atol=1e-2)


def test_lcm_and_edm_parametrisations_give_back_the_target():
    x, target = _x(seed=1), _x(seed=2)
    for t in (0, 19, 999):
        c_skip, c_out = lcm_scalings(t)
        assert torch.allclose(c_skip * x + c_out * lcm_network_output(target, x, t), target, atol=1e-12) or t == 0
    sigma, sd = 3.0, 0.5
    F = edm_network_output(target, x, sigma, sd)
    assert torch.allclose(sd**2 / (sigma**2 + sd**2) * x + sigma * sd / math.sqrt(sigma**2 + sd**2) * F, target)
