"""Order of convergence of the deterministic samplers on the exact probability-flow ODE.

The reference is the same ODE, dx~/dσ = ε*(x~/sqrt(1+σ²), ᾱ = 1/(1+σ²)) in Karras et al.'s scaled
variable, solved by scipy's RK45 at tight tolerances from σ(T−1) to σ(0). Each sampler is compared at
t = 0 (the last grid point they share), so the first-order final jump to σ = 0 does not mask the order.

Grids: linspace at 25..200 steps, but for UniPC the logsnr grid it is built for (on linspace its big final steps in
λ keep it at 2.1 over these counts) and for DPM-Solver++(3M) linspace at 50..200 steps, where its third-order
term shows (the 3M cut to second order: 2.12; on linspace at 25..100 the 3M itself fits only 2.66).
``edm`` without churn is ``heun`` bit for bit (tests/toydiff/test_samplers.py), so it has heun's band.
"""

import dataclasses
from types import MappingProxyType


import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import toydiff as td

S = td.schedules.linear(T=1000)
GM = td.GaussianMixture.diagonal([0.3, 0.5, 0.2], [[-2.0, 0.0], [1.5, 1.0], [0.0, -2.0]],
                                 [[0.5, 0.8], [0.6, 0.4], [0.7, 0.7]])
STEPS = [25, 50, 100, 200]
#: (low, high) bands for the fitted order (and the finest pair's slope); measured 1.03 (euler, ddim), 2.06 (heun,
#: edm), 1.92 (dpm++2m), 2.92 (unipc: pairs 3.05, 2.79, 2.98), 2.70 (dpm++3m: pairs 2.51, 2.89; cut to second
#: order 2.12: pairs 2.11, 2.14)
BANDS = {"euler": (0.8, 1.25), "ddim": (0.8, 1.25), "heun": (1.7, 2.4), "dpm++2m": (1.7, 2.4),
         "unipc": (2.6, 3.5), "dpm++3m": (2.4, 3.6)}
#: (spacing, step counts) where not linspace at STEPS
GRIDS = {"unipc": ("logsnr", [12, 24, 48, 96]), "dpm++3m": ("linspace", [50, 100, 200])}


@pytest.fixture(scope="module")
def problem():
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(16, 2, dtype=torch.float64, generator=g)
    ab = S.alpha_bars
    sigma = lambda t: ((1 - ab[t]) / ab[t]).sqrt().item()

    def rhs(log_sigma, y):  # dx~/dlog σ = σ ε*
        sg = np.exp(log_sigma)
        abar = 1.0 / (1.0 + sg**2)
        x_scaled = torch.from_numpy(y.reshape(x_T.shape))
        return (sg * GM.eps_star(x_scaled * abar**0.5, torch.tensor(abar))).numpy().ravel()

    y0 = (x_T / ab[-1].sqrt()).numpy().ravel()
    sol = solve_ivp(rhs, (np.log(sigma(999)), np.log(sigma(0))), y0, method="RK45", rtol=1e-11, atol=1e-11)
    assert sol.success
    ref = torch.from_numpy(sol.y[:, -1].reshape(x_T.shape)) * ab[0].sqrt()
    return x_T, ref


def pathwise_error(method, steps, x_T, ref, spacing="linspace"):
    captured = {}

    def grab(info):
        if info["t_prev"] == 0:
            captured["x"] = info["x_prev"].clone()

    td.sample(GM.eps_fn(S), x_T, S, method=method, steps=steps, spacing=spacing, callback=grab)
    return (captured["x"] - ref).norm(dim=1).mean().item()


def fitted_orders(method, x_T, ref) -> tuple[float, float, list[float]]:
    """The slope of log error on log steps over the method's grid, and over its finest pair."""
    spacing, steps = GRIDS.get(method, ("linspace", STEPS))
    errors = [pathwise_error(method, n, x_T, ref, spacing) for n in steps]
    assert all(a > b for a, b in zip(errors, errors[1:])), f"error must shrink with steps: {errors}"
    finest = -np.log(errors[-1] / errors[-2]) / np.log(steps[-1] / steps[-2])
    return -np.polyfit(np.log(steps), np.log(errors), 1)[0], finest, errors


@pytest.mark.parametrize("method", list(BANDS))
def test_order_of_convergence(method, problem):
    order, finest, errors = fitted_orders(method, *problem)
    lo, hi = BANDS[method]
    assert lo <= order <= hi, f"{method}: fitted order {order:.2f} outside [{lo}, {hi}] (errors {errors})"
    if method in GRIDS:
        assert lo <= finest <= hi, f"{method}: finest-pair order {finest:.2f} outside [{lo}, {hi}] (errors {errors})"


def _broken(monkeypatch, method, step):
    """Replace ``method``'s step function in the registry for one test."""
    from toydiff.sampling import loop

    registry = dict(loop.REGISTRY) | {method: dataclasses.replace(loop.REGISTRY[method], step=step)}
    monkeypatch.setattr(loop, "REGISTRY", MappingProxyType(registry))


def test_dpmpp_3m_without_its_third_order_term_fails_the_band(monkeypatch, problem):
    from toydiff.sampling import vp_steps

    def second_order_only(ctx, x, t, t_prev):  # one x̂_0 of history: the D₂ term never enters
        out = vp_steps.dpmpp_3m_step(ctx, x, t, t_prev)
        ctx.memory["dpm++3m"] = ctx.memory["dpm++3m"][-1:]
        return out

    _broken(monkeypatch, "dpm++3m", second_order_only)  # measured: pairs 2.11, 2.14 (fitted 2.12)
    with pytest.raises(AssertionError, match="outside"):
        test_order_of_convergence("dpm++3m", problem)


def test_unipc_with_its_corrector_sign_flipped_fails_the_band(monkeypatch, problem):
    from toydiff.sampling import vp_steps

    weights = vp_steps._unic_weights
    monkeypatch.setattr(vp_steps, "_unic_weights", lambda h, r1: tuple(-w for w in weights(h, r1)))
    with pytest.raises(AssertionError, match="outside|must shrink"):
        test_order_of_convergence("unipc", problem)
