"""Samplers over an interpolant (toydiff.sampling.flow_steps, reached through td.sample): exactness on a Gaussian,
agreement with the VP samplers where the processes coincide, time grids, callbacks and bad input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import toydiff as td
from toydiff.processes import interpolants as I
from toydiff.sampling.flow_steps import FLOW_METHODS, flow_evaluations, time_grid

S = td.schedules.linear(T=1000)
PATHS = {"linear": I.linear(), "cosine": I.cosine(), "vp": I.vp(S)}
GM = td.GaussianMixture.diagonal([0.3, 0.7], [[-1.0, 0.0], [1.0, 1.0]], [0.5, 0.3])
X1 = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


@settings(max_examples=15)
@given(mu=st.floats(-3, 3), std=st.floats(0.3, 2.0), method=st.sampled_from(FLOW_METHODS),
       name=st.sampled_from(list(PATHS)))
def test_one_gaussian_is_recovered_pathwise(mu, std, method, name):
    # for N(μ, s²) the exact flow maps the quantile: x_0 = μ + s (x_1 − α_1 μ)/sqrt(α_1² s² + σ_1²)
    interp = PATHS[name]
    gm = td.GaussianMixture([1.0], [[mu]], [[[std**2]]])
    x_1 = X1[:, :1]
    a1, s1 = float(interp.alpha(1.0)), float(interp.sigma(1.0))
    want = mu + std * (x_1 - a1 * mu) / math.sqrt(a1**2 * std**2 + s1**2)
    x0 = td.sample(gm.velocity_fn(interp), x_1, interp, method=method, steps=64)
    # first order: euler everywhere, and the last step of heun on vp (its field is infinite at t = 0, so that
    # step is an Euler step) and of dpm++2m; measured worst over the strategy's range at 64 steps: euler 0.093,
    # dpm++2m 0.022, vp heun 0.031, every other second-order pair ≤ 0.003 (relative to |μ| + s)
    tol = {"euler": 0.12, "dpm++2m": 0.03}.get(method, 0.04 if name == "vp" else 0.01) * (abs(mu) + std)
    assert (x0 - want).abs().max() < tol


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_every_prediction_type_gives_the_same_samples(method):
    interp = PATHS["cosine"]
    times = torch.linspace(0.999, 0, 9).tolist()  # ε-prediction cannot give x_0 at α = 0 (t = 1)
    kinds = [k for k in I.PREDICTIONS if not (method == "heun" and k == "x0")]  # x0: heun's last step differs
    runs = [td.sample(GM.denoiser(interp, kind), X1, interp, method=method, times=times, prediction=kind)
            for kind in kinds]
    for x in runs[1:]:
        torch.testing.assert_close(x, runs[0], rtol=1e-8, atol=1e-8)


def test_flow_dpmpp_2m_on_vp_equals_the_vp_sampler():
    # DPM-Solver++ is the same update for any Gaussian path: on vp(S) at t_k = (k + 1)/T it is td.sample's
    steps = S.respace(20, "linspace").timesteps
    x_vp = td.sample(GM.eps_fn(S), X1, S, method="dpm++2m", steps=steps)
    times = [(k + 1) / S.T for k in steps] + [0.0]
    for kind in ("eps", "velocity"):
        x_flow = td.sample(GM.denoiser(PATHS["vp"], kind), X1, PATHS["vp"], method="dpm++2m", times=times,
                           prediction=kind)
        torch.testing.assert_close(x_flow, x_vp, rtol=1e-9, atol=1e-9)


def test_time_grids():
    assert time_grid(4) == (1.0, 0.75, 0.5, 0.25, 0.0)
    shifted = time_grid(4, shift=3.0)
    assert shifted[0] == 1.0 and shifted[-1] == 0.0
    assert shifted[2] == pytest.approx(3 * 0.5 / (1 + 2 * 0.5)) and shifted[2] > 0.5  # steps move toward noise
    assert time_grid(times=[0.8, 0.3, 0.0]) == (0.8, 0.3, 0.0)
    assert time_grid(times=torch.tensor([1.0, 0.5, 0.0])) == (1.0, 0.5, 0.0)


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_callback_and_function_evaluations(method):
    calls, infos = [0], []

    def fn(x, t):
        calls[0] += 1
        assert t.shape == (x.shape[0],) and t.dtype == x.dtype
        return GM.velocity(x, t, PATHS["linear"])

    x = td.sample(fn, X1, PATHS["linear"], method=method, steps=5, callback=lambda i: infos.append(dict(i)))
    assert calls[0] == flow_evaluations(method, 5, PATHS["linear"])
    assert [i["step"] for i in infos] == list(range(5)) and all(i["n_steps"] == 5 for i in infos)
    assert {"step", "n_steps", "t", "t_prev", "x_t", "x0_hat", "eps", "x_prev", "method", "velocity"} <= set(infos[0])
    assert [i["t"] for i in infos] == [1.0, 0.8, 0.6, 0.4, 0.2] and infos[-1]["t_prev"] == 0.0
    assert infos[-1]["x_prev"] is x and all(i["method"] == method for i in infos)
    torch.testing.assert_close(infos[0]["x0_hat"], GM.mean().expand(32, 2))  # at t = 1 the best guess is E[x_0]


def test_clip_x0_and_generators_and_float32():
    infos = []
    x = td.sample(GM.velocity_fn(PATHS["linear"]), X1.float(), PATHS["linear"], method="heun", steps=4,
                  clip_x0=0.5, callback=infos.append, generator=td.per_sample_generators(0, 32))
    assert x.dtype == torch.float32 and all(float(i["x0_hat"].abs().max()) <= 0.5 for i in infos)


def test_vp_interpolant_warns_about_a_large_terminal_alpha():
    with pytest.warns(td.TerminalSNRWarning):
        td.sample(GM.velocity_fn(I.vp(td.schedules.constant(T=10))), X1, I.vp(td.schedules.constant(T=10)),
                  method="euler", steps=2)


def test_bad_input_names_the_argument():
    fm, field = PATHS["linear"], GM.velocity_fn(PATHS["linear"])
    cases = [
        (ValueError, "method must be one of", dict(method="ddpm", steps=4)),
        (ValueError, "prediction must be one of", dict(method="euler", steps=4, prediction="score")),
        (ValueError, "prediction='eps'", dict(method="euler", steps=4, prediction="eps")),
        (ValueError, "eta=0.5 has no effect", dict(method="euler", steps=4, eta=0.5)),
        (ValueError, "spacing='karras' has no effect", dict(method="euler", steps=4, spacing="karras")),
        (ValueError, "exactly one of steps", dict(method="euler")),
        (ValueError, "exactly one of steps", dict(method="euler", steps=4, times=[1.0, 0.0])),
        (ValueError, "times must be a strictly descending", dict(method="euler", times=[0.0, 1.0])),
        (ValueError, "times must be in", dict(method="euler", times=[1.5, 0.0])),
        (ValueError, "shift must be in", dict(method="euler", steps=4, shift=-1.0)),
        (ValueError, "shift applies", dict(method="euler", times=[1.0, 0.0], shift=2.0)),
        (ValueError, "steps must be in", dict(method="euler", steps=0)),
        (TypeError, "steps must be an int over an Interpolant", dict(method="euler", steps=[3, 2, 1])),
        (TypeError, "unexpected keyword argument", dict(method="euler", steps=4, sigma_max=80.0)),
        (TypeError, "unexpected keyword argument", dict(method="euler", steps=4, vp_options={})),
        (ValueError, "generator: got 2 generators", dict(method="euler", steps=4, generator=[torch.Generator()] * 2)),
    ]
    for exc, match, kwargs in cases:
        with pytest.raises(exc, match=match):
            td.sample(field, X1, fm, **kwargs)
    with pytest.raises(ValueError, match="fn returned"):
        td.sample(lambda x, t: x[:, :1], X1, fm, method="euler", steps=2)
    with pytest.raises(TypeError, match="fn must be callable"):
        td.sample(None, X1, fm, method="euler", steps=2)
    with pytest.raises(ValueError, match="x_1 contains"):
        td.sample(field, X1 * float("nan"), fm, method="euler", steps=2)
    with pytest.raises(TypeError, match="times: options of sampling over an Interpolant"):
        td.sample(GM.eps_fn(S), X1, S, method="ddim", times=[1.0, 0.0])


def test_trajectory_recorder_keeps_flow_times():
    rec = td.TrajectoryRecorder(indices=range(3), keep=("x_t", "x0_hat"))
    x = td.sample(GM.velocity_fn(PATHS["linear"]), X1, PATHS["linear"], method="euler", steps=4, callback=rec)
    assert rec.timesteps == [1.0, 0.75, 0.5, 0.25]
    assert rec.path().shape == (5, 3, 2)
    torch.testing.assert_close(rec.path()[-1], x[:3])


@pytest.mark.parametrize("name, prediction, want", [("linear", "velocity", 8), ("cosine", "eps", 8), ("vp", "velocity", 7),
                                                    ("linear", "x0", 7)])
def test_heun_corrects_the_last_step_where_the_field_is_finite_at_zero(name, prediction, want):
    interp, calls = PATHS[name], []
    field = GM.denoiser(interp, prediction)
    times = [0.999, 0.6, 0.3, 0.1, 0.0]
    td.sample(lambda x, t: calls.append(float(t[0])) or field(x, t), X1, interp, method="heun", times=times,
              prediction=prediction)
    assert len(calls) == want == flow_evaluations("heun", 4, interp, prediction)
    assert (calls[-1] == 0.0) == (want == 8)
