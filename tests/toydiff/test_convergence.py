"""Order of convergence of the deterministic samplers on the exact probability-flow ODE.

The reference is the same ODE, dx~/dσ = ε*(x~/sqrt(1+σ²), ᾱ = 1/(1+σ²)) in Karras et al.'s scaled
variable, solved by scipy's RK45 at tight tolerances from σ(T−1) to σ(0). Each sampler is compared at
t = 0 (the last grid point they share), so the first-order final jump to σ = 0 does not mask the order.
"""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import toydiff as td

S = td.schedules.linear(T=1000)
GM = td.GaussianMixture.diagonal([0.3, 0.5, 0.2], [[-2.0, 0.0], [1.5, 1.0], [0.0, -2.0]],
                                 [[0.5, 0.8], [0.6, 0.4], [0.7, 0.7]])
STEPS = [25, 50, 100, 200]
#: (low, high) bands for the fitted order; measured 1.03 (euler, ddim), 2.06 (heun), 1.92 (dpm++2m)
BANDS = {"euler": (0.8, 1.25), "ddim": (0.8, 1.25), "heun": (1.7, 2.4), "dpm++2m": (1.7, 2.4)}


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


def pathwise_error(method, steps, x_T, ref):
    captured = {}

    def grab(info):
        if info["t_prev"] == 0:
            captured["x"] = info["x_prev"].clone()

    td.sample(GM.eps_fn(S), x_T, S, method=method, steps=steps, spacing="linspace", callback=grab)  # a uniform grid
    return (captured["x"] - ref).norm(dim=1).mean().item()


@pytest.mark.parametrize("method", list(BANDS))
def test_order_of_convergence(method, problem):
    x_T, ref = problem
    errors = [pathwise_error(method, n, x_T, ref) for n in STEPS]
    assert all(a > b for a, b in zip(errors, errors[1:])), f"error must shrink with steps: {errors}"
    order = -np.polyfit(np.log(STEPS), np.log(errors), 1)[0]
    lo, hi = BANDS[method]
    assert lo <= order <= hi, f"{method}: fitted order {order:.2f} outside [{lo}, {hi}] (errors {errors})"
