"""The exact oracle under a Gaussian interpolant (toydiff.exact.flow via GaussianMixture.velocity / denoiser)."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toydiff as td
from toydiff.processes import interpolants as I

S = td.schedules.linear(T=1000)
GM = td.GaussianMixture.diagonal([0.3, 0.5, 0.2], [[-2.0, 0.0], [1.5, 1.0], [0.0, -2.0]],
                                 [[0.5, 0.8], [0.6, 0.4], [0.7, 0.7]])
GM1 = td.GaussianMixture([1.0, 2.0], [[-1.0], [1.0]], [[[0.3]], [[0.2]]])
PATHS = {"linear": I.linear(), "cosine": I.cosine()}


def noised_mixture(gm, interp, t: float) -> td.GaussianMixture:
    """The marginal of x_t = α x_0 + σ ε written out directly: Σ_k w_k N(α μ_k, α² Σ_k + σ² I)."""
    a, s = float(interp.alpha(t)), float(interp.sigma(t))
    return td.GaussianMixture(gm.weights, a * gm.means, a * a * gm.covs + s * s * torch.eye(gm.D, dtype=torch.float64))


@given(mu=st.floats(-3, 3), std=st.floats(0.2, 2.0), z=st.floats(-3, 3), t=st.floats(0.02, 0.98),
       name=st.sampled_from(list(PATHS)))
def test_velocity_is_the_time_derivative_of_the_gaussian_path(mu, std, z, t, name):
    # for N(μ, s²) the probability-flow ODE keeps the quantile z: x_t = α μ + sqrt(α² s² + σ²) z
    interp = PATHS[name]
    gm = td.GaussianMixture([1.0], [[mu]], [[[std**2]]])

    def x_at(tt):
        a, s = float(interp.alpha(tt)), float(interp.sigma(tt))
        return a * mu + math.sqrt(a * a * std**2 + s * s) * z

    h = 1e-5
    fd = (x_at(t + h) - x_at(t - h)) / (2 * h)
    u = gm.velocity(torch.tensor([[x_at(t)]], dtype=torch.float64), torch.tensor([t], dtype=torch.float64), interp)
    assert float(u) == pytest.approx(fd, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", list(PATHS))
@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
def test_continuity_equation_in_1d(name, t):
    # ∂p_t/∂t + ∂(p_t u)/∂x = 0 for the exact velocity, by central differences on a grid
    interp, h, dx = PATHS[name], 1e-4, 1e-3
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)[:, None]
    p = lambda tt, xx: noised_mixture(GM1, interp, tt).log_prob(xx).exp()
    flux = lambda xx: p(t, xx) * GM1.velocity(xx, torch.full((xx.shape[0],), t, dtype=torch.float64), interp)[:, 0]
    dp_dt = (p(t + h, x) - p(t - h, x)) / (2 * h)
    dflux_dx = (flux(x + dx) - flux(x - dx)) / (2 * dx)
    assert (dp_dt + dflux_dx).abs().max() < 1e-5 * dp_dt.abs().max() + 1e-6
    assert dp_dt.abs().max() > 1e-2  # the density does move


@pytest.mark.parametrize("name", list(PATHS))
def test_posterior_means_are_consistent_and_tweedie(name):
    interp = PATHS[name]
    x = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0.1, 0.9, 7, dtype=torch.float64)
    x0, eps = GM.denoiser(interp, "x0")(x, t), GM.denoiser(interp, "eps")(x, t)
    a, s = interp.alpha(t)[:, None], interp.sigma(t)[:, None]
    torch.testing.assert_close(a * x0 + s * eps, x)  # x_t = α E[x_0|x_t] + σ E[ε|x_t]
    for i in range(7):  # Tweedie: E[ε | x_t] = −σ ∇ log p_t(x_t)
        score = noised_mixture(GM, interp, float(t[i])).score(x[i:i + 1])
        torch.testing.assert_close(eps[i:i + 1], -s[i] * score)
    da, ds = interp.d_alpha(t)[:, None], interp.d_sigma(t)[:, None]
    torch.testing.assert_close(GM.velocity(x, t, interp), da * x0 + ds * eps)
    torch.testing.assert_close(GM.denoiser(interp, "v")(x, t), a * eps - s * x0)


def test_linear_velocity_is_eps_minus_x0_and_finite_at_both_ends():
    fm = I.linear()
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for t in (0.0, 0.3, 1.0):
        tt = torch.full((5,), t, dtype=torch.float64)
        want = GM.denoiser(fm, "eps")(x, tt) - GM.denoiser(fm, "x0")(x, tt)
        torch.testing.assert_close(GM.velocity(x, tt, fm), want)
    torch.testing.assert_close(GM.denoiser(fm, "x0")(x, torch.zeros(5, dtype=torch.float64)), x)  # σ = 0
    torch.testing.assert_close(GM.velocity(x, torch.ones(5, dtype=torch.float64), fm), x - GM.mean())  # α = 0


def test_vp_interpolant_coincides_with_the_discrete_oracle():
    v = I.vp(S)
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    k = torch.tensor([0, 3, 100, 500, 900, 999])
    tk = (k + 1).double() / S.T
    torch.testing.assert_close(GM.denoiser(v, "eps")(x, tk), GM.eps_fn(S)(x, k), rtol=1e-10, atol=1e-12)
    ab = S.alpha_bars[k][:, None]
    x0_vp = (x - (1 - ab).sqrt() * GM.eps_fn(S)(x, k)) / ab.sqrt()
    torch.testing.assert_close(GM.denoiser(v, "x0")(x, tk), x0_vp, rtol=1e-9, atol=1e-10)


def test_shapes_dtypes_and_scalar_time():
    x = torch.randn(4, 1, 2, 1, dtype=torch.float32)  # any event with prod = D = 2
    u = GM.velocity(x, 0.5, I.linear())
    assert u.shape == x.shape and u.dtype == torch.float32
    torch.testing.assert_close(u, GM.velocity(x, torch.full((4,), 0.5), I.linear()))


def test_bad_input_names_the_argument():
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="t must lie in"):
        GM.velocity(x, torch.tensor([0.5, 1.2, 0.1], dtype=torch.float64), I.linear())
    with pytest.raises(ValueError, match="t must be a scalar or have shape"):
        GM.velocity(x, torch.tensor([0.5, 0.5], dtype=torch.float64), I.linear())
    with pytest.raises(TypeError, match="t must be"):
        GM.velocity(x, torch.tensor([1, 0, 1]), I.linear())
    with pytest.raises(ValueError, match="x_t must have shape"):
        GM.velocity(torch.zeros(3, 3), 0.5, I.linear())
    with pytest.raises(ValueError, match="kind must be one of"):
        GM.denoiser(I.linear(), "score")
    with pytest.raises(TypeError, match="interp must be an Interpolant"):
        GM.velocity_fn(S)


def test_probability_flow_carries_a_gaussian_along_its_quantile_and_keeps_event_shape():
    """One Gaussian N(μ, s²) per coordinate: the PF-ODE (Song et al. 2021) keeps each point's quantile, so at ᾱ
    (σ² = (1 − ᾱ)/ᾱ) the state is √ᾱ μ + √(ᾱ s² + 1 − ᾱ) z for z = (x_T − √ᾱ_T μ) / √(ᾱ_T s² + 1 − ᾱ_T)."""
    mu, s = torch.tensor([0.7, -1.2, 0.3, 2.0]), torch.tensor([0.5, 1.5, 1.0, 0.2])
    gm = td.GaussianMixture.diagonal([1.0], mu[None], s[None])
    x_T = torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sig = torch.tensor([20.0, 3.0, 0.5, 0.0], dtype=torch.float64)
    out = gm.probability_flow(x_T.reshape(3, 4), sig.tolist())
    ab = 1 / (1 + sig**2)
    z = (x_T.reshape(3, 4) - ab[0].sqrt() * mu) / (ab[0] * s**2 + 1 - ab[0]).sqrt()
    want = ab.sqrt()[:, None, None] * mu + (ab[:, None, None] * s**2 + 1 - ab[:, None, None]).sqrt() * z
    torch.testing.assert_close(out, want, atol=1e-7, rtol=0)
    shaped = td.GaussianMixture.diagonal([1.0], mu[None], s[None]).probability_flow(x_T, [20.0, 0.0])
    assert shaped.shape == (2, 3, 2, 2)
    torch.testing.assert_close(shaped[0], x_T, atol=1e-12, rtol=0)


@pytest.mark.parametrize("sigmas", [[1.0], [1.0, 1.0], [1.0, 2.0, 0.5], [-1.0, 0.0], [float("nan"), 0.0]])
def test_probability_flow_refuses_a_bad_grid(sigmas):
    gm = td.GaussianMixture.diagonal([1.0], [[0.0]], [1.0])
    with pytest.raises(ValueError, match="sigmas"):
        gm.probability_flow(torch.zeros(2, 1), sigmas)
