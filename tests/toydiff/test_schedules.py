import math
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toydiff as td
from toydiff.processes import schedules

BUILDERS = {
    "linear": lambda T: schedules.linear(T=T),
    "constant": lambda T: schedules.constant(T=T, beta=0.02),
    "cosine": lambda T: schedules.cosine(T=T),
    "sigmoid": lambda T: schedules.sigmoid(T=T),
}


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", td.TerminalSNRWarning)
        return fn(*args, **kw)


@pytest.mark.parametrize("name", BUILDERS)
@given(T=st.integers(2, 1500))
def test_alpha_bar_strictly_decreasing_in_unit_interval(name, T):
    s = quiet(BUILDERS[name], T)
    ab = s.alpha_bars
    assert s.T == T and ab.shape == (T,) and ab.dtype == torch.float64
    assert ((ab > 0) & (ab < 1)).all()
    assert (ab[1:] < ab[:-1]).all()


@pytest.mark.parametrize("name", BUILDERS)
def test_posterior_variance_matches_definition(name):
    s = BUILDERS[name](1000)
    b, ab = s.betas, s.alpha_bars
    for t in [1, 2, 10, 500, 999]:
        expected = b[t] * (1 - ab[t - 1]) / (1 - ab[t])
        assert s.posterior_variance[t].item() == pytest.approx(expected.item(), rel=1e-12)
    assert s.posterior_variance[0] == 0  # q(x_{-1} | x_0, x_0) is a point mass
    assert torch.allclose(s.alpha_bars_prev[1:], ab[:-1]) and s.alpha_bars_prev[0] == 1
    assert torch.allclose(s.snr, ab / (1 - ab))
    assert torch.allclose(s.alphas, 1 - b)
    assert torch.allclose(s.sigmas**2, (1 - ab) / ab)


def test_builder_defaults_match_the_papers():
    lin = schedules.linear()
    assert lin.T == 1000 and lin.betas[0].item() == pytest.approx(1e-4) and lin.betas[-1].item() == pytest.approx(0.02)
    c = schedules.constant()
    assert c.T == 250 and torch.all(c.betas == 0.02)
    assert c.alpha_bars[-1].item() == pytest.approx(0.98**250)
    cos = schedules.cosine(T=1000)
    assert cos.betas.max().item() <= 0.999 + 1e-12
    # Nichol & Dhariwal: alpha_bar(t) = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1+s)) pi/2)
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    assert cos.alpha_bars[499].item() == pytest.approx(f(500 / 1000) / f(0), rel=1e-9)


def test_schedule_is_immutable():
    s = schedules.linear(T=10, beta_start=0.1, beta_end=0.5)
    b = s.betas
    b[0] = 0.9
    assert s.betas[0].item() == pytest.approx(0.1)
    with pytest.raises(AttributeError):
        s.T = 5
    assert td.NoiseSchedule.from_dict(s.to_dict()) == s
    import copy
    import pickle

    assert copy.deepcopy(s) is s and copy.copy(s) is s  # immutable: a model holding one deep-copies it
    again = pickle.loads(pickle.dumps(s))
    assert again == s and again.name == s.name and again.params == s.params and again.T == 10


@pytest.mark.parametrize("betas", [[0.1, 0.0], [0.5, 1.0], [-0.1], [float("nan")], []])
def test_betas_outside_unit_interval_raise(betas):
    with pytest.raises(ValueError, match="betas"):
        schedules.from_betas(betas)


def test_terminal_warning_when_alpha_bar_far_from_zero():
    with pytest.warns(td.TerminalSNRWarning, match="alpha_bar"):
        schedules.linear(T=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", td.TerminalSNRWarning)
        schedules.linear(T=1000)
        schedules.constant()


@pytest.mark.parametrize("spacing", schedules.SPACINGS)
@given(data=st.data(), T=st.integers(1, 1200))
def test_respacing_properties(spacing, data, T):
    s = quiet(schedules.linear, T=T, beta_start=1e-4, beta_end=0.02) if T > 1 else schedules.from_betas([0.5])
    steps = data.draw(st.integers(1, T))
    plan = s.respace(steps, spacing)
    ts = plan.timesteps
    assert len(ts) == steps
    assert all(0 <= t < T for t in ts)
    assert all(a > b for a, b in zip(ts, ts[1:])), "strictly descending, no duplicates"
    pairs = plan.pairs
    assert [p[0] for p in pairs] == list(ts)
    assert all(p[1] == q[0] for p, q in zip(pairs, pairs[1:])), "each step starts where the last ended"
    assert pairs[-1][1] == -1 and s.alpha_bar(pairs[-1][1]) == 1.0, "last step lands on the clean sample"
    if spacing in ("karras", "logsnr"):  # from the largest noise level to the smallest
        assert ts[0] == T - 1 and (ts[-1] == 0 or steps == 1)
    if spacing in ("linspace", "trailing", "karras", "logsnr"):
        assert ts[0] == T - 1
    else:  # leading: floor(i T / steps) from 0, so the first t falls short of T - 1 by less than T / steps
        assert ts[-1] == 0 and T - 1 - ts[0] < T / steps


def test_karras_spacing_crowds_the_low_noise_end():
    s = schedules.linear()
    ts = s.respace(20, "karras").timesteps
    lin = s.respace(20, "linspace").timesteps
    assert sum(t < 100 for t in ts) >= sum(t < 100 for t in lin) + 3
    sigma = ((1 - s.alpha_bars) / s.alpha_bars).sqrt()[list(ts)]
    ratios = (sigma[:-1] / sigma[1:]).log()
    assert (ratios > 0).all()  # noise levels strictly decrease


def test_logsnr_spacing_is_uniform_in_log_snr():
    s = schedules.linear()
    ts = list(s.respace(20, "logsnr").timesteps)
    lam = (s.alpha_bars / (1 - s.alpha_bars)).log()[ts]
    gaps = lam[1:-1] - lam[:-2]  # the last steps sit on neighbouring integers, where rounding dominates
    assert (gaps > 0).all() and gaps.max() / gaps.min() < 1.6


def test_logsnr_window_spends_the_inner_steps_inside_it():
    s = schedules.linear()
    ts = list(s.respace(20, "logsnr", log_snr_range=(-5.0, 7.0)).timesteps)
    assert len(ts) == 20 and ts[0] == 999 and ts[-1] == 0 and all(a > b for a, b in zip(ts, ts[1:]))
    lam = s.log_snr[ts]
    inner = lam[1:-1]
    assert inner[0] == pytest.approx(-5.0, abs=0.05) and inner[-1] == pytest.approx(7.0, abs=0.3)
    gaps = inner[1:-3] - inner[:-4]  # uniform, but for rounding to integer t at the crowded low-noise end
    assert (gaps > 0).all() and gaps.max() / gaps.min() < 1.3
    # a window wider than the schedule is clipped to it (the collisions at the ends pushed apart)
    wide = s.respace(20, "logsnr", log_snr_range=(-100.0, 100.0)).timesteps
    assert len(wide) == 20 and wide[0] == 999 and wide[-1] == 0 and all(a > b for a, b in zip(wide, wide[1:]))
    with pytest.raises(ValueError, match="log_snr_range"):
        s.respace(20, "karras", log_snr_range=(-5.0, 7.0))
    with pytest.raises(ValueError, match="log_snr_range"):
        s.respace(20, "logsnr", log_snr_range=(7.0, -5.0))
    with pytest.raises(ValueError, match="steps"):
        s.respace(2, "logsnr", log_snr_range=(-5.0, 7.0))


def test_respacing_explicit_and_printable():
    s = schedules.linear()
    plan = s.respace(range(990, -1, -30))  # the seed notebooks' stride of 30
    assert plan.timesteps[0] == 990 and plan.timesteps[-1] == 0 and len(plan) == 34
    text = str(plan)
    assert "t_prev" in text and "990" in text and text.count("\n") == len(plan)


@pytest.mark.parametrize("steps", [0, -3, 1001])
def test_bad_steps_raise(steps):
    with pytest.raises(ValueError, match="steps"):
        schedules.linear().respace(steps)


def test_bad_respacing_input_raise():
    s = schedules.linear()
    with pytest.raises(ValueError, match="spacing"):
        s.respace(10, "uniform")
    with pytest.raises(ValueError, match="descending"):
        s.respace([10, 20])
    with pytest.raises(ValueError, match="steps"):
        s.respace([1000, 5])
    with pytest.raises(TypeError, match="steps"):
        s.respace(10.5)


@pytest.mark.parametrize("name", sorted(schedules.BUILDERS))
def test_from_name_builds_what_the_builder_builds(name):
    s = schedules.from_name(name, T=50)
    assert s == schedules.BUILDERS[name](T=50) and s.T == 50 and s.name == name
    assert schedules.from_name(s.name, **s.params) == s      # a checkpoint's record rebuilds the schedule


def test_from_name_names_the_bad_argument():
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedules.from_name("linaer")
    with pytest.raises(TypeError, match="schedule 'linear'"):
        schedules.from_name("linear", beta=0.1)


def test_alpha_bar_underflow_is_refused_naming_the_step():
    # issue 11: from_betas([0.999] * 500) gave alpha_bar = 0; linear(T=10**6) sampled to |x| ~ 1e160
    with pytest.raises(ValueError, match=r"underflows at step t = 102 .*alpha_bar_102 = 1e-309"):
        schedules.from_betas([0.999] * 500)
    with pytest.raises(ValueError, match=r"linear.*underflows at step t = 261611 of T = 1000000"):
        schedules.linear(T=10**6)
    with pytest.raises(ValueError, match=r"does not decrease at step t = 1: beta_1 = 1e-18"):
        schedules.from_betas([0.1, 1e-18, 0.2])


@pytest.mark.parametrize("T", [1000, 4000])
@pytest.mark.parametrize("name", sorted(schedules.BUILDERS))
def test_builder_defaults_stay_representable(name, T):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ab = schedules.from_name(name, T=T).alpha_bars
    assert ab[-1] >= torch.finfo(torch.float64).tiny and (ab[1:] < ab[:-1]).all() and ab[0] < 1
    if name == "cosine":  # beta clipped at 0.999 keeps alpha_bar_T far above float32's range too
        assert 1e-11 < ab[-1] < 1e-8


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"T": 1.5}, TypeError, "T must be an int"), ({"beta_start": float("nan")}, ValueError, "beta_start"),
    ({"beta_end": 1.0}, ValueError, "beta_end"), ({"beta_start": "0.1"}, TypeError, "beta_start"),
])
def test_builder_parameters_are_checked_by_name(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        schedules.linear(**kwargs)


def test_respace_refuses_non_integer_timesteps():
    with pytest.raises(TypeError, match=r"steps\[0\] must be an int, got float 3.7"):
        schedules.linear(T=10).respace([3.7, 1.2])
    with pytest.raises(ValueError, match="spacing"):
        schedules.linear(T=10).respace(None, "bogus")
