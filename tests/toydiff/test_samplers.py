import math
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toydiff as td
from toydiff.processes import schedules

S = schedules.linear(T=1000)
MU, STD = 1.5, 0.7
ONE = td.GaussianMixture([1.0], [[MU]], [[[STD**2]]])
DETERMINISTIC = ("ddim", "euler", "heun", "dpm++2m", "dpm++3m", "unipc", "edm")
STOCHASTIC = ("ddpm", "euler-ancestral", "dpm++2m-sde")  # and ddim with eta > 0, edm with s_churn > 0


def noise(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("method,kw", [("ddpm", {"variance": "beta"}), ("ddpm", {"variance": "posterior"}),
                                       ("ddim", {"eta": 1.0})])
def test_every_stochastic_sampler_recovers_a_gaussian_at_full_steps(method, kw):
    n = 20_000
    x0 = td.sample(ONE.eps_fn(S), noise((n, 1), 0), S, method=method, generator=torch.Generator().manual_seed(1), **kw)
    se_mean, se_var = STD / math.sqrt(n), STD**2 * math.sqrt(2 / (n - 1))  # 0.005 each
    assert x0.mean().item() == pytest.approx(MU, abs=6 * se_mean)
    assert x0.var().item() == pytest.approx(STD**2, abs=6 * se_var)


#: max |error| of the path x_T -> x_0 at 1000 steps; measured 5.1e-3 (first order), 2.1e-4 (heun), 7e-5 (dpm++2m).
#: The solvers of issue 25 are checked on the exact flow at 12..400 steps instead (test_convergence.py, the kit).
PATH_TOL = {"ddim": 0.02, "euler": 0.02, "heun": 2e-3, "dpm++2m": 2e-3}


@pytest.mark.parametrize("method", list(PATH_TOL))
def test_every_deterministic_sampler_follows_the_exact_flow_at_full_steps(method):
    # For Gaussian data the probability-flow ODE maps quantiles to quantiles: x_T ~ N(sqrt(ab_T) MU,
    # ab_T STD^2 + 1 - ab_T) goes to MU + STD z. A pathwise check on a few points is stronger (and far
    # cheaper) than the moments of many.
    x_T = noise((256, 1), 0)
    ab_T = S.alpha_bar(S.T - 1)
    exact = MU + STD * (x_T - math.sqrt(ab_T) * MU) / math.sqrt(ab_T * STD**2 + 1 - ab_T)
    x0 = td.sample(ONE.eps_fn(S), x_T, S, method=method)
    assert (x0 - exact).abs().max().item() < PATH_TOL[method]


@pytest.mark.parametrize("steps", [1, 9, [900, 500, 499, 120, 3, 0]])
def test_edm_without_churn_is_heun_and_churn_only_where_s_tmin_s_tmax_allow(steps):
    """Karras et al. 2022 Algorithm 2 with S_churn = 0 is Algorithm 1 (Heun); a window [s_tmin, s_tmax] that holds no
    level of the run churns nothing, one that holds some changes the samples."""
    x_T, g = noise((6, 2), 5), lambda: torch.Generator().manual_seed(0)
    gm = td.GaussianMixture.diagonal([1, 2], [[-1.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    heun = td.sample(gm.eps_fn(S), x_T, S, method="heun", steps=steps)
    edm = lambda **kw: td.sample(gm.eps_fn(S), x_T, S, method="edm", steps=steps, generator=g(), **kw)
    assert torch.equal(edm(), heun)
    assert torch.equal(edm(s_churn=40.0, s_tmin=500.0), heun)  # every σ of the schedule is below 157
    if steps != 1:  # one step from σ = 157: its raised level is past the schedule's end, so nothing to churn
        assert not torch.equal(edm(s_churn=40.0, s_tmax=2.0), heun)


def test_ddpm_without_noise_collapses_the_spread():
    x0 = td.sample(ONE.eps_fn(S), noise((5000, 1), 0), S, method="ddpm-no-noise")
    assert x0.mean().item() == pytest.approx(MU, abs=0.1)
    assert x0.var().item() < 0.25 * STD**2, "without sigma*z every step jumps to a mean: the spread is lost"


@pytest.mark.parametrize("method", DETERMINISTIC)
def test_deterministic_given_x_T(method):
    x_T = noise((64, 2), 3)
    gm = td.GaussianMixture.diagonal([1, 1], [[-2.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    a = td.sample(gm.eps_fn(S), x_T, S, method=method, steps=20, generator=torch.Generator().manual_seed(1))
    b = td.sample(gm.eps_fn(S), x_T, S, method=method, steps=20, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


@pytest.mark.parametrize("method", td.METHODS)
def test_same_seed_same_result_and_other_seed_differs(method):
    x_T = noise((32, 2), 3)
    gm = td.GaussianMixture.diagonal([1, 1], [[-2.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    kw = {"ddim": {"eta": 0.5}, "edm": {"s_churn": 3.0}}.get(method, {})
    run = lambda seed: td.sample(gm.eps_fn(S), x_T, S, method=method, steps=25, **kw,
                                 generator=torch.Generator().manual_seed(seed))
    assert torch.equal(run(7), run(7))
    if method in STOCHASTIC + ("ddim", "edm"):
        assert not torch.equal(run(7), run(8))


@given(steps=st.integers(2, 60), seed=st.integers(0, 1000))
def test_ddim_eta_one_is_ddpm_with_posterior_variance(steps, seed):
    x_T = noise((8, 2), seed)
    gm = td.GaussianMixture.diagonal([1, 2], [[-1.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    a = td.sample(gm.eps_fn(S), x_T, S, method="ddim", eta=1.0, steps=steps, generator=torch.Generator().manual_seed(seed))
    b = td.sample(gm.eps_fn(S), x_T, S, method="ddpm", variance="posterior", steps=steps,
                  generator=torch.Generator().manual_seed(seed))
    assert torch.allclose(a, b, atol=1e-8)


@given(steps=st.integers(1, 80))
def test_euler_on_the_pf_ode_equals_ddim_eta_zero(steps):
    x_T = noise((8, 2), steps)
    gm = td.GaussianMixture.diagonal([1, 2], [[-1.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    a = td.sample(gm.eps_fn(S), x_T, S, method="euler", steps=steps)
    b = td.sample(gm.eps_fn(S), x_T, S, method="ddim", steps=steps)
    assert torch.allclose(a, b, atol=1e-8)


@pytest.mark.parametrize("shape", [(6, 1), (6, 2), (6, 1, 28, 28)])
@pytest.mark.parametrize("method", td.METHODS)
def test_same_call_for_every_rank(shape, method):
    D = math.prod(shape[1:])
    gm = td.GaussianMixture.diagonal([1, 1], torch.stack([torch.full((D,), -0.5), torch.full((D,), 0.5)]), [0.3, 0.4])
    x_T = noise(shape, 0, torch.float32)
    eps = gm.eps_fn(S)(x_T, torch.full((6,), 500))
    assert eps.shape == shape and eps.dtype == torch.float32
    out = td.sample(gm.eps_fn(S), x_T, S, method=method, steps=8, generator=torch.Generator().manual_seed(0))
    assert out.shape == shape and out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("method,kw", [("ddpm", {}), ("euler-ancestral", {}), ("dpm++2m-sde", {}),
                                       ("edm", {"s_churn": 3.0})])
def test_per_sample_generators_make_sample_i_independent_of_batch_size(method, kw):
    gm = td.GaussianMixture.diagonal([1, 1], [[-2.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    def run(n):
        gens = [torch.Generator().manual_seed(100 + i) for i in range(n)]
        x_T = torch.stack([torch.randn(2, generator=g, dtype=torch.float64) for g in gens])
        return td.sample(gm.eps_fn(S), x_T, S, method=method, steps=12, generator=gens, **kw)
    assert torch.allclose(run(3), run(7)[:3])


def test_callback_receives_every_step():
    seen = []
    td.sample(ONE.eps_fn(S), noise((4, 1), 0), S, method="heun", steps=10, callback=seen.append)
    assert [d["step"] for d in seen] == list(range(10))
    assert seen[0]["t"] == 999 and seen[-1]["t_prev"] == -1
    for d in seen:
        assert {"step", "t", "t_prev", "x_t", "x0_hat", "eps", "x_prev"} <= d.keys()
        assert d["x_t"].shape == d["x0_hat"].shape == d["eps"].shape == (4, 1)
    calls = []
    counting = lambda x, t: calls.append(1) or ONE.eps_fn(S)(x, t)
    td.sample(counting, noise((4, 1), 0), S, method="heun", steps=10)
    assert len(calls) == td.function_evaluations("heun", 10) == 19


@pytest.mark.parametrize("kwargs,match", [
    ({"steps": 1001}, "steps"), ({"steps": 0}, "steps"), ({"eta": -0.1}, "eta"), ({"eta": 1.5}, "eta"),
    ({"method": "plms"}, "method"), ({"variance": "learned"}, "variance"), ({"spacing": "uniform", "steps": 5}, "spacing"),
    ({"clip_x0": -1.0}, "clip_x0"),
])
def test_bad_arguments_raise_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        td.sample(ONE.eps_fn(S), noise((2, 1), 0), S, **kwargs)


def test_bad_tensors_raise():
    x = noise((2, 1), 0)
    x[1, 0] = float("nan")
    with pytest.raises(ValueError, match="x_T"):
        td.sample(ONE.eps_fn(S), x, S)
    with pytest.raises(TypeError, match="x_T"):
        td.sample(ONE.eps_fn(S), torch.zeros(2, 1, dtype=torch.long), S)
    with pytest.raises(ValueError, match="eps_fn returned"):
        td.sample(lambda x, t: torch.zeros(2, 3), noise((2, 1), 0), S, steps=3)
    with pytest.raises(ValueError, match="shape"):
        ONE.eps_fn(S)(noise((2, 2), 0), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="schedule"):
        td.sample(ONE.eps_fn(S), noise((2, 1), 0), "linear")


def test_terminal_warning_for_a_start_that_keeps_signal():
    s = schedules.linear(T=1000)
    with pytest.warns(td.TerminalSNRWarning):
        td.sample(ONE.eps_fn(s), noise((2, 1), 0), s, method="ddim", steps=2, spacing="leading")


# --- the registry and the option-refusal rule -----------------------------------------------------

from toydiff.sampling.loop import OPTION_DEFAULTS, REGISTRY  # noqa: E402

#: a non-default value for every option that only some methods use, and what else it needs to show an effect
NON_DEFAULT = {"eta": 0.5, "variance": "posterior", "s_churn": 5.0, "s_noise": 0.5, "s_tmin": 2.0, "s_tmax": 2.0}
NEEDS = {"s_noise": {"s_churn": 5.0}, "s_tmin": {"s_churn": 5.0}, "s_tmax": {"s_churn": 5.0}}


def test_registry_covers_methods_and_every_step_names_its_paper():
    assert tuple(REGISTRY) == td.METHODS and set(NON_DEFAULT) == set(OPTION_DEFAULTS)
    for name, entry in REGISTRY.items():
        doc = entry.step.__doc__ or ""
        assert re.search(r"[A-Z][a-z]+ et al\. 20\d\d", doc), f"{name}: the docstring must name its paper"
        assert set(entry.options) <= set(OPTION_DEFAULTS), name


@pytest.mark.parametrize("method", td.METHODS)
def test_function_evaluations_counts_the_calls(method):
    calls = []
    counting = lambda x, t: calls.append(1) or ONE.eps_fn(S)(x, t)
    for steps in (1, 7):
        calls.clear()
        td.sample(counting, noise((3, 1), 0), S, method=method, steps=steps, generator=torch.Generator().manual_seed(0))
        assert len(calls) == td.function_evaluations(method, steps)


@pytest.mark.parametrize("method", td.METHODS)
@pytest.mark.parametrize("option", sorted(NON_DEFAULT))
def test_an_option_the_method_does_not_use_is_refused_naming_it(method, option):
    run = lambda **kw: td.sample(ONE.eps_fn(S), noise((3, 1), 0), S, method=method, steps=4,
                                 generator=torch.Generator().manual_seed(0), **kw)
    default = run()
    assert torch.equal(run(**{option: OPTION_DEFAULTS[option]}), default), "the default is always accepted"
    if option in REGISTRY[method].options:
        base = run(**NEEDS.get(option, {}))
        changed = run(**NEEDS.get(option, {}), **{option: NON_DEFAULT[option]})
        assert not torch.equal(changed, base), f"{method} uses {option}: a new value must change the sample"
    else:
        with pytest.raises(ValueError, match=rf"^{option}=.*{re.escape(method)}"):
            run(**{option: NON_DEFAULT[option]})


# --- clip_x0 ----------------------------------------------------------------------------------------

def test_clip_x0_clamps_x0_hat_and_recomputes_eps_consistently():
    # data far outside [-1, 1]: the exact x0_hat leaves the range on every step
    far = td.GaussianMixture([1.0], [[3.0]], [[[0.25]]])
    x_T = noise((64, 1), 5)
    seen = {"raw": [], "clip": []}
    keep = lambda k: lambda d: seen[k].append({n: d[n].clone() if torch.is_tensor(d[n]) else d[n]
                                              for n in ("t", "x_t", "x0_hat", "eps")})
    raw = td.sample(far.eps_fn(S), x_T, S, method="ddim", steps=10, callback=keep("raw"))
    clipped = td.sample(far.eps_fn(S), x_T, S, method="ddim", steps=10, clip_x0=1.0, callback=keep("clip"))
    assert raw.max() > 2.5 and clipped.abs().max() <= 1.0 + 1e-12
    assert seen["raw"][0]["x0_hat"].abs().max() > 1.0
    for d in seen["clip"]:
        ab = S.alpha_bar(d["t"])
        assert d["x0_hat"].abs().max() <= 1.0
        # the pair stays on the line x_t = sqrt(ab) x0_hat + sqrt(1 - ab) eps
        torch.testing.assert_close(ab**0.5 * d["x0_hat"] + (1 - ab) ** 0.5 * d["eps"], d["x_t"])
    # on the first step both runs see the same x_t: clipping changes x0_hat exactly where it left the range
    r, c = seen["raw"][0], seen["clip"][0]
    torch.testing.assert_close(c["x0_hat"], r["x0_hat"].clamp(-1, 1))
    inside = r["x0_hat"].abs() <= 1
    assert torch.equal(c["eps"][inside], r["eps"][inside]) and not torch.allclose(c["eps"], r["eps"])


def test_clip_x0_does_nothing_when_x0_hat_stays_in_range():
    small = td.GaussianMixture([1.0], [[0.0]], [[[0.01]]])
    x_T = noise((32, 1), 6) * 0.01  # tiny x_T: x0_hat stays well inside [-1, 1]
    a = td.sample(small.eps_fn(S), x_T, S, method="ddim", steps=10)
    b = td.sample(small.eps_fn(S), x_T, S, method="ddim", steps=10, clip_x0=1.0)
    torch.testing.assert_close(a, b)


# --- a plain reference loop for every method ---------------------------------------------------------

def reference_sample(eps_fn, x_T, s, method, steps, *, eta=0.0, variance="beta", generator=None):
    """Each method's update as written in its paper, out of place in float64, independent of toydiff's code."""
    x, prev = x_T, None
    # an int number of steps is spaced as the method's default (logsnr for dpm++2m, linspace otherwise)
    spacing = "logsnr" if method == "dpm++2m" else "linspace"
    for t, tp in s.respace(steps, spacing).pairs:
        a, ap = s.alpha_bar(t), s.alpha_bar(tp)
        e = eps_fn(x, torch.full((x.shape[0],), t))
        x0 = (x - math.sqrt(1 - a) * e) / math.sqrt(a)
        z = lambda: torch.randn(x.shape, generator=generator, dtype=x.dtype)
        if method in ("ddpm", "ddpm-no-noise"):
            beta = 1 - a / ap
            new = math.sqrt(ap) * beta / (1 - a) * x0 + math.sqrt(a / ap) * (1 - ap) / (1 - a) * x
            if method == "ddpm" and tp >= 0:
                new = new + math.sqrt(beta * (1 - ap) / (1 - a) if variance == "posterior" else beta) * z()
        elif method == "ddim":
            sig = eta * math.sqrt((1 - ap) / (1 - a)) * math.sqrt(1 - a / ap)
            new = math.sqrt(ap) * x0 + math.sqrt(max(1 - ap - sig**2, 0.0)) * e + (sig * z() if sig > 0 else 0)
        elif method in ("euler", "heun"):
            sg, sgp = math.sqrt((1 - a) / a), math.sqrt((1 - ap) / ap)
            slope = e
            if method == "heun" and tp >= 0:
                x_euler = (x / math.sqrt(a) + (sgp - sg) * e) * math.sqrt(ap)
                slope = (e + eps_fn(x_euler, torch.full((x.shape[0],), tp))) / 2
            new = (x / math.sqrt(a) + (sgp - sg) * slope) * math.sqrt(ap)
        else:  # dpm++2m in alpha_t = sqrt(ab), sigma_t = sqrt(1 - ab), lambda = log(alpha / sigma)
            lam = math.log(math.sqrt(a) / math.sqrt(1 - a))
            if tp < 0:
                new = x0
            else:
                h = math.log(math.sqrt(ap) / math.sqrt(1 - ap)) - lam
                d = x0 if prev is None else x0 + (x0 - prev[0]) * h / (2 * (lam - prev[1]))
                new = math.sqrt(1 - ap) / math.sqrt(1 - a) * x - math.sqrt(ap) * (math.exp(-h) - 1) * d
            prev = (x0, lam)
        x = new
    return x


@pytest.mark.parametrize("method,kw", [("ddpm", {}), ("ddpm", {"variance": "posterior"}), ("ddpm-no-noise", {}),
                                       ("ddim", {}), ("ddim", {"eta": 0.6}), ("euler", {}), ("heun", {}),
                                       ("dpm++2m", {})])
@pytest.mark.parametrize("steps", [1, 13, list(range(700, -1, -70))])
def test_every_method_matches_a_plain_reference_loop(method, kw, steps):
    gm = td.GaussianMixture.diagonal([1, 2], [[-1.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    x_T = noise((6, 2), 11)
    ours = td.sample(gm.eps_fn(S), x_T, S, method=method, steps=steps, generator=torch.Generator().manual_seed(2), **kw)
    ref = reference_sample(gm.eps_fn(S), x_T, S, method, steps, generator=torch.Generator().manual_seed(2), **kw)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"eta": True}, TypeError, "eta"), ({"method": "ddim", "eta": "0.5"}, TypeError, "eta"),
    ({"clip_x0": 0.0}, ValueError, "clip_x0"), ({"clip_x0": True}, TypeError, "clip_x0"),
    ({"callback": 3}, TypeError, "callback"), ({"project": "mask"}, TypeError, "project"),
])
def test_bad_option_types_name_the_argument(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        td.sample(ONE.eps_fn(S), noise((2, 1), 0), S, **kwargs)


# --- default spacings (issue 12) --------------------------------------------------------------------------

@pytest.mark.parametrize("method", td.METHODS)
def test_default_spacing_is_the_methods_own(method):
    """spacing=None (the default) respaces as REGISTRY[method].default_spacing: logsnr for DPM-Solver++ and UniPC,
    linspace for the others; an explicit spacing is unchanged."""
    gm = td.GaussianMixture.diagonal([1, 2], [[-1.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    x_T = noise((6, 2), 11)
    expected = "logsnr" if method in ("dpm++2m", "dpm++3m", "unipc", "dpm++2m-sde") else "linspace"
    assert td.sampling.REGISTRY[method].default_spacing == expected
    run = lambda **kw: td.sample(gm.eps_fn(S), x_T, S, method=method, steps=10,
                                 generator=torch.Generator().manual_seed(2), **kw)
    torch.testing.assert_close(run(), run(spacing=expected), rtol=0, atol=0)
    other = "linspace" if expected == "logsnr" else "logsnr"
    assert not torch.equal(run(), run(spacing=other))


def test_heun_default_spacing_does_not_diverge_at_10_steps():
    """On the exact 1-D mixture under the linear T = 1000 schedule (σ ≈ 157 at its first step), heun's default
    spacing at 10 steps stays finite, inside the data's range, and beats logsnr and karras spacing."""
    from toydiff.toy.metrics import wasserstein1
    from toydiff.toy.run import oracle_run

    run = oracle_run("two_gaussians", td.schedules.linear(T=1000))
    truth = run.dataset.sample(4000, torch.Generator().manual_seed(1))
    w1 = {}
    for spacing in (None, "logsnr", "karras"):
        x = run.sample(4000, method="heun", steps=10, seed=0, spacing=spacing)
        assert torch.isfinite(x).all() and x.abs().max() < 20  # the modes sit at -4 and +4 with std 1
        w1[spacing] = wasserstein1(x, truth)
    assert w1[None] < 0.3 and w1[None] < min(w1["logsnr"], w1["karras"])


@pytest.mark.parametrize("method", td.METHODS)
def test_a_nan_from_the_denoiser_is_refused_naming_method_step_and_t(method):
    # issue 11: every sampler returned NaN when the denoiser did
    calls = []

    def eps_fn(x, t):
        calls.append(int(t[0]))
        return torch.full_like(x, float("nan")) if len(calls) == 3 else 0.1 * x

    kw = {"generator": torch.Generator().manual_seed(0)}
    with pytest.raises(ValueError, match=rf"method='{re.escape(method)}'\) at step \d \(t = {{}}\).*2 NaN".replace(
            "{}", r"\d+")) as e:
        td.sample(eps_fn, noise((1, 2), 0, torch.float32), S, method=method, steps=5, **kw)
    assert f"(t = {calls[-1]})" in str(e.value) and len(calls) == 3, "stops at the first bad evaluation"


def test_a_non_finite_result_is_refused_even_when_every_eps_was_finite():
    project = lambda x, t: x if t >= 0 else x / 0.0     # the projection after the last step overflows
    with pytest.raises(ValueError, match=r"the result has 3 NaN or infinite"):
        td.sample(lambda x, t: 0.1 * x, noise((3, 1), 0), S, method="ddim", steps=3, project=project)


def test_a_start_beyond_the_dtype_range_is_refused_and_float64_still_samples():
    s = schedules.linear(T=40_000)                                   # alpha_bar_T = 1.7e-176: fine in float64
    ab0 = s.alpha_bar(s.T - 1)
    with pytest.raises(ValueError, match=r"alpha_bar = 1.73e-176 at the first sampled step t = 39999 .*float32"):
        td.sample(ONE.eps_fn(s), noise((4, 1), 0, torch.float32), s, method="ddim", steps=10)
    with pytest.raises(ValueError, match=r"step 0 from t = 39999 to t_prev = 35555 raises alpha_bar 6.55e\+36-fold"):
        td.sample(ONE.eps_fn(s), noise((4, 1), 0), s, method="ddim", steps=10)   # float64 gave |x| ~ 200
    x = td.sample(ONE.eps_fn(s), noise((4, 1), 0), s, method="ddim", steps=100)
    assert ab0 < 1e-170 and ((x - MU).abs() < 6 * STD).all()


def test_the_check_can_be_switched_off_for_the_bench_only():
    nan_fn = lambda x, t: torch.full_like(x, float("nan"))
    from toydiff.sampling.context import StepContext
    StepContext.check_finite = False
    try:
        assert torch.isnan(td.sample(nan_fn, noise((2, 1), 0), S, method="ddim", steps=2)).all()
    finally:
        StepContext.check_finite = True
    with pytest.raises(ValueError, match="NaN"):
        td.sample(nan_fn, noise((2, 1), 0), S, method="ddim", steps=2)


@pytest.mark.parametrize("bad_call", [2, 10])
def test_a_single_nan_entry_in_a_large_batch_is_never_returned(bad_call):
    """Above ``probe_size`` entries the per-step check sums a window that moves on each evaluation: a NaN the
    window skipped stays where it is and is caught by a later window (five cover this batch; one every second
    evaluation) or the final scan."""
    from toydiff.sampling.context import StepContext

    n = 4 * StepContext.probe_size + 3                       # five windows
    calls = []

    def eps_fn(x, t):
        calls.append(int(t[0]))
        eps = 0.1 * x
        if len(calls) == bad_call:
            eps[n - 2] = float("nan")                        # one entry, once
        return eps

    with pytest.raises(ValueError, match=r"NaN or infinite value") as e:
        td.sample(eps_fn, noise((n, 1), 0), S, method="ddim", steps=10)
    assert len(calls) <= bad_call + 2 * 5, "seen once the windows (every second evaluation) have gone round"
    assert ("at step" in str(e.value)) and (bad_call == 10 or "eps_fn returned" in str(e.value))
