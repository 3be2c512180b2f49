"""toydiff.processes.interpolants: boundary values, derivatives, log-SNR inverse, prediction conversions, bad input."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toydiff as td
from toydiff.processes import interpolants as I

SCHEDULE = td.schedules.linear(T=1000)
ALL = {"linear": I.linear(), "cosine": I.cosine(), "vp": I.vp(SCHEDULE), "vp-cosine": I.vp(td.schedules.cosine(T=50))}
times = st.floats(min_value=0.01, max_value=0.99)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_boundary_values(name):
    interp = ALL[name]
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert interp.alpha(t).tolist() == [1.0, 0.0]
    assert interp.sigma(t).tolist() == [0.0, 1.0]
    assert interp.log_snr(t).tolist() == [math.inf, -math.inf]


@given(t=times, name=st.sampled_from(["linear", "cosine"]))
def test_cosine_and_linear_formulas(t, name):
    a, s = float(ALL[name].alpha(t)), float(ALL[name].sigma(t))
    want = (1 - t, t) if name == "linear" else (math.cos(math.pi * t / 2), math.sin(math.pi * t / 2))
    assert a == pytest.approx(want[0], abs=1e-12) and s == pytest.approx(want[1], abs=1e-12)


@given(t=times, name=st.sampled_from(list(ALL)))
def test_derivatives_match_finite_differences(t, name):
    interp, h = ALL[name], 1e-6
    for f, df in ((interp.alpha, interp.d_alpha), (interp.sigma, interp.d_sigma)):
        # piecewise (vp): the central difference only where t ± h lie in one piece (a one-sided slope's O(h f'')
        # error exceeds the tolerance near t = 1 of a steep schedule, e.g. vp-cosine at t = 0.984375)
        if name.startswith("vp") and math.floor((t + h) * interp.schedule.T) != math.floor((t - h) * interp.schedule.T):
            continue
        fd = (float(f(t + h)) - float(f(t - h))) / (2 * h)
        assert float(df(t)) == pytest.approx(fd, rel=1e-4, abs=1e-6)


@given(t=times, name=st.sampled_from(list(ALL)))
def test_log_snr_inverse(t, name):
    interp = ALL[name]
    assert float(interp.t_of_log_snr(interp.log_snr(t))) == pytest.approx(t, abs=1e-9)


def test_vp_hits_the_discrete_steps():
    v = ALL["vp"]
    k = torch.arange(SCHEDULE.T)
    tk = (k + 1).double() / SCHEDULE.T
    torch.testing.assert_close(v.alpha(tk) ** 2, SCHEDULE.alpha_bars, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(v.sigma(tk) ** 2, 1 - SCHEDULE.alpha_bars, rtol=1e-12, atol=1e-15)
    assert float(v.alpha(0.0)) == 1.0 and float(v.sigma(0.0)) == 0.0
    assert 0 < float(v.alpha(1.0)) < 0.01 and float(v.sigma(1.0)) < 1.0  # never quite pure noise


@given(t=times, name=st.sampled_from(list(ALL)), kind=st.sampled_from(I.PREDICTIONS),
       to=st.sampled_from(I.PREDICTIONS), seed=st.integers(0, 2**16))
def test_conversions_round_trip(t, name, kind, to, seed):
    interp = ALL[name]
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(2, 3, 2, 2, dtype=torch.float64, generator=g)  # [B=3, 2, 2] each: any event rank
    tt = torch.full((3,), t, dtype=torch.float64)
    x_t = interp.q_sample(x0, tt, eps)
    pred = interp.target(x0, eps, kind, tt)
    other = interp.convert(pred, kind, to, x_t, tt)
    torch.testing.assert_close(other, interp.target(x0, eps, to, tt), rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(interp.convert(other, to, kind, x_t, tt), pred, rtol=1e-7, atol=1e-7)


def test_named_conversions_and_linear_velocity():
    fm = ALL["linear"]
    x0, eps = torch.randn(2, 4, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0.1, 0.4, 0.7, 0.9], dtype=torch.float64)
    x_t = fm.q_sample(x0, t, eps)
    u = fm.target(x0, eps, "velocity", t)
    torch.testing.assert_close(u, eps - x0)
    torch.testing.assert_close(fm.to_x0(u, "velocity", x_t, t), x0)
    torch.testing.assert_close(fm.to_eps(u, "velocity", x_t, t), eps)
    torch.testing.assert_close(fm.to_v(eps, "eps", x_t, t), (1 - t)[:, None] * eps - t[:, None] * x0)
    torch.testing.assert_close(fm.to_velocity(x0, "x0", x_t, t), u)
    torch.testing.assert_close(fm.q_sample(x0, 0.25, eps), 0.75 * x0 + 0.25 * eps)  # a float t broadcasts


def test_v_is_salimans_and_ho_for_the_cosine_path():
    c = ALL["cosine"]
    x0, eps = torch.randn(2, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    phi = torch.rand(5, dtype=torch.float64) * math.pi / 2
    t = phi * 2 / math.pi
    v = c.target(x0, eps, "v", t)
    torch.testing.assert_close(v, phi.cos()[:, None] * eps - phi.sin()[:, None] * x0)
    # v is dx/dφ, so the velocity is v dφ/dt
    torch.testing.assert_close(c.target(x0, eps, "velocity", t), v * math.pi / 2)


def test_equality_and_dict_round_trip():
    assert I.linear() == I.linear() and I.linear() != I.cosine() and hash(I.cosine()) == hash(I.cosine())
    assert I.vp(SCHEDULE) == I.vp(td.schedules.linear(T=1000)) != I.vp(td.schedules.cosine(T=1000))
    for interp in ALL.values():
        assert I.from_dict(interp.to_dict()) == interp
    with pytest.raises(ValueError, match="name"):
        I.from_dict({"name": "quadratic"})


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), torch.tensor([0.5, 1.01])])
def test_time_outside_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match="t must lie in"):
        I.linear().alpha(bad)


def test_bad_input_names_the_argument():
    fm = I.linear()
    x = torch.zeros(3, 2)
    with pytest.raises(TypeError, match="t must be"):
        fm.alpha(torch.tensor([1, 0]))  # integer steps are not continuous time
    with pytest.raises(TypeError, match="t must be"):
        fm.alpha(True)
    with pytest.raises(ValueError, match="kind must be one of"):
        fm.to_x0(x, "score", x, 0.5)
    with pytest.raises(ValueError, match="to must be one of"):
        fm.convert(x, "eps", "noise", x, 0.5)
    with pytest.raises(ValueError, match="pred must have shape"):
        fm.to_x0(torch.zeros(3, 1), "eps", x, 0.5)
    with pytest.raises(ValueError, match="t has 2 entries"):
        fm.to_x0(x, "eps", x, torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="t must be a scalar or have shape"):
        fm.alpha(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="eps must have shape"):
        fm.q_sample(x, 0.5, torch.zeros(3))
    with pytest.raises(TypeError, match="schedule must be a NoiseSchedule"):
        I.vp("linear")
    with pytest.raises(ValueError, match="lam"):
        fm.t_of_log_snr(float("nan"))
