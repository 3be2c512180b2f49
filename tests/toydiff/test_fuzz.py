"""Fuzzing the public API with valid and invalid arguments (issue 11, item 7).

Each property draws a call with every argument valid, or with exactly one argument replaced by a bad value
(wrong type, bool, NaN / inf, a zero or negative count, an out-of-range step, a mismatched shape). A valid call
must return finite output of the right shape; a call with a bad argument must raise ``ValueError`` or
``TypeError`` whose message names that argument. Nothing else passes: no NaN result, no traceback from deep
inside torch / numpy / scipy, no bad value accepted silently.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import toydiff as td
from toydiff.processes import forward, schedules
from toydiff.toy import metrics

NAN, INF = float("nan"), float("inf")
FUZZ = settings(max_examples=30, deadline=None)

S = schedules.linear(T=60, beta_start=1e-3, beta_end=0.2)
GM = td.GaussianMixture.diagonal([1.0, 2.0], [[-2.0, 0.0], [2.0, 1.0]], [0.5, 0.8])


def outcome(call, bad: str | None, *names: str):
    """Run ``call``: with ``bad`` None it must succeed (its value is returned); otherwise it must raise a
    ValueError / TypeError naming ``bad`` (or one of ``names``, other words for the same argument)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = call()
        except (ValueError, TypeError) as e:
            assert bad is not None, f"valid arguments raised {type(e).__name__}: {e}"
            assert any(n in str(e) for n in (bad, *names)), f"bad {bad!r}, but the message does not name it: {e}"
            return None
    assert bad is None, f"bad {bad!r} was accepted: returned {str(out)[:200]}"
    return out


def finite(x: torch.Tensor, shape) -> None:
    assert isinstance(x, torch.Tensor) and tuple(x.shape) == tuple(shape), getattr(x, "shape", x)
    assert torch.isfinite(x).all()


def pick(data, valid: dict, bad_values: dict):
    """``(kwargs, bad)``: the valid arguments, with at most one of them swapped for one of its bad values."""
    bad = data.draw(st.sampled_from([None, None, *bad_values]), label="bad")
    kw = dict(valid)
    if bad is not None:
        kw[bad] = data.draw(st.sampled_from(bad_values[bad]), label=bad)
    return kw, bad


BAD_COUNT = [0, -3, True, 2.5, "4", None, NAN]
BAD_NUMBER = [NAN, INF, -INF, "0.1", True, None]
BAD_TENSOR = [[[0.0, 1.0]], torch.zeros(3, 2, dtype=torch.long), torch.full((3, 2), NAN), torch.zeros(0, 2),
              torch.tensor([[INF, 0.0]] * 3)]


# --- schedules ---------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(schedules.BUILDERS)), T=st.integers(1, 400))
def test_fuzz_schedule_builders(data, name, T):
    betas = {"beta_start": [0.0, 1.0, -0.1, NAN, "a", True], "beta_end": [1.0, 2.0, INF, None],
             "beta": [0.0, 1.0, NAN, [0.1]], "s": [-0.5, NAN, "x"], "max_beta": [0.0, 1.5, NAN],
             "steepness": [NAN, INF, "6"]}
    import inspect
    params = [p for p in inspect.signature(schedules.BUILDERS[name]).parameters if p != "T"]
    kw, bad = pick(data, {"T": T}, {"T": BAD_COUNT, **{p: betas[p] for p in params}})
    s = outcome(lambda: schedules.from_name(name, **kw), bad)
    if s is not None:
        ab = s.alpha_bars
        assert s.T == T and bool(((ab > 0) & (ab < 1)).all()) and bool((ab[1:] < ab[:-1]).all())


@FUZZ
@given(data=st.data(), betas=st.lists(st.floats(1e-4, 0.9), min_size=1, max_size=50))
def test_fuzz_from_betas(data, betas):
    bad = data.draw(st.sampled_from([None, "nan", "zero", "one", "tiny", "underflow", "type"]))
    b = list(betas)
    if bad == "nan":
        b[len(b) // 2] = NAN
    elif bad == "zero":
        b[-1] = 0.0
    elif bad == "one":
        b[0] = 1.0
    elif bad == "tiny":      # below float64's resolution of alpha_bar: alpha_bar stops decreasing
        b[0] = 1e-18
    elif bad == "underflow":
        b = b + [0.999] * 120
    elif bad == "type":
        b = "0.1, 0.2"
    s = outcome(lambda: schedules.from_betas(b), None if bad is None else "betas", "alpha_bar")
    if s is not None:
        assert s.T == len(b) and torch.isfinite(s.log_snr).all() and (s.alpha_bars > 0).all()


@FUZZ
@given(data=st.data(), T=st.integers(1, 80))
def test_fuzz_respace(data, T):
    s = schedules.constant(T=T, beta=0.05)
    n = data.draw(st.integers(1, T))
    explicit = sorted(data.draw(st.sets(st.integers(0, T - 1), min_size=1, max_size=T)), reverse=True)
    steps = data.draw(st.sampled_from([n, None, explicit]))
    kw, bad = pick(data, {"steps": steps, "spacing": data.draw(st.sampled_from(schedules.SPACINGS))},
                   {"steps": [0, -1, T + 1, True, 2.5, [3.7, 1.2], [], [0, 1] if T > 1 else [T], "10", [T]],
                    "spacing": ["bogus", None, 3]})
    plan = outcome(lambda: s.respace(**kw), bad)
    if plan is not None:
        ts = plan.timesteps
        assert all(0 <= t < T for t in ts) and all(a > b for a, b in zip(ts, ts[1:]))
        assert len(ts) == (T if kw["steps"] is None else kw["steps"] if isinstance(kw["steps"], int)
                           else len(kw["steps"]))


# --- forward -----------------------------------------------------------------------------------------

T_BAD = [-2, S.T, 1.5, True, torch.tensor([0.5, 1.0, 2.0]), torch.tensor([1, 2]), torch.tensor([0, 1, S.T]),
         torch.tensor([-1, 0, 1]), "3"]


@FUZZ
@given(data=st.data(), B=st.integers(1, 4), D=st.integers(1, 3))
def test_fuzz_forward(data, B, D):
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 99)))
    x = torch.randn(B, D, generator=g, dtype=torch.float64)
    t = data.draw(st.one_of(st.integers(0, S.T - 1), st.lists(st.integers(0, S.T - 1), min_size=B, max_size=B)
                            .map(torch.tensor)))
    fn_name = data.draw(st.sampled_from(["q_sample", "eps_to_x0", "x0_to_eps", "v_target", "v_to_eps", "v_to_x0"]))
    second = {"q_sample": "noise", "eps_to_x0": "eps", "x0_to_eps": "x0", "v_target": "eps", "v_to_eps": "v",
              "v_to_x0": "v"}[fn_name]
    low = -1 if fn_name == "q_sample" else 0  # q_sample's t = −1 is the clean end (x_0 itself), documented
    bad_t = [v for v in T_BAD if not (isinstance(v, torch.Tensor) and v.shape == (B,) and not v.is_floating_point()
                                      and v.min() >= low and v.max() < S.T)]  # tensor([1, 2]) is fine when B = 2
    # q_sample lets non-finite training data through: the training engine names the step of the non-finite loss
    bad_x = BAD_TENSOR[:2] + BAD_TENSOR[3:4] if fn_name == "q_sample" else BAD_TENSOR
    kw, bad = pick(data, {"x": x, "t": t, "y": torch.randn(B, D, generator=g, dtype=torch.float64)},
                   {"x": bad_x, "t": bad_t, "y": bad_x + [torch.randn(B + 1, D, dtype=torch.float64)]})
    first = "x0" if fn_name in ("q_sample", "v_target") else "x_t"
    names = {"x": first, "t": "t", "y": second}
    call = lambda: getattr(forward, fn_name)(S, kw["x"], kw["t"], kw["y"])
    out = outcome(call, None if bad is None else names[bad], *(["x_T"] if bad == "x" else []))
    if out is not None:
        finite(out, (B, D))


# --- samplers ----------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data(), method=st.sampled_from(td.METHODS), B=st.integers(1, 3))
def test_fuzz_sample(data, method, B):
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 99)))
    x_T = torch.randn(B, 2, generator=g, dtype=data.draw(st.sampled_from([torch.float32, torch.float64])))
    valid = {"x_T": x_T, "steps": data.draw(st.sampled_from([None, 1, 5, [40, 20, 3]])),
             "eta": 0.5 if method == "ddim" else 0.0, "clip_x0": data.draw(st.sampled_from([None, 3.0])),
             "method": method, "generator": g, "eps_fn": GM.eps_fn(S)}
    nan_fn = lambda x, t: torch.full_like(x, NAN)
    wrong_shape = lambda x, t: x[:, :1]
    kw, bad = pick(data, valid, {
        "x_T": BAD_TENSOR + [torch.randn(B, 3)], "steps": [0, S.T + 1, True, 2.5, [3.7, 1.2], [5, 9]],
        "eta": [NAN, -0.1, 1.5, "0"] + ([0.3] if method != "ddim" else []), "clip_x0": [0.0, -1.0, NAN, "1"],
        "method": ["bogus", None], "generator": ["seed", 3, [g] * (B + 1)], "eps_fn": [nan_fn, wrong_shape, None]})
    names = {"x_T": ("x_T", "D = 2"), "eps_fn": ("eps_fn",)}.get(bad, (bad,))
    out = outcome(lambda: td.sample(kw.pop("eps_fn"), kw.pop("x_T"), S, **kw), bad and names[0], *names[1:])
    if out is not None:
        finite(out, x_T.shape)


def test_fuzz_sample_names_the_step_of_a_nan():
    """A denoiser that turns NaN at one step only: the error names that step and its t."""
    def eps_fn(x, t):
        return torch.full_like(x, NAN) if int(t[0]) == 20 else 0.1 * x
    with pytest.raises(ValueError, match=r"method='ddim'\) at step 1 \(t = 20\)"):
        td.sample(eps_fn, torch.randn(4, 2), S, method="ddim", steps=[40, 20, 3])


# --- guidance ------------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data(), which=st.sampled_from(["classifier_free_guidance", "autoguidance", "conditional_eps_fn"]))
def test_fuzz_guidance(data, which):
    x, t = torch.randn(3, 2, dtype=torch.float64), torch.tensor([5, 30, 59])
    good, bad_fn = (lambda x, t: 0.1 * x), (lambda x, t: 0.2 * x)
    w = data.draw(st.sampled_from([1.0, 2.5, 4.0]))
    bad_w = [NAN, INF, -INF, "2", True, None] + ([0.5] if which == "autoguidance" else [])
    if which == "conditional_eps_fn":
        model = lambda x, t, y: x * (y[:, None] + 1).to(x.dtype)
        kw, bad = pick(data, {"model": model, "y": torch.tensor([0, 1, 2]), "w": w, "null_label": 3},
                       {"model": [None, 3], "y": [torch.tensor([0.5, 1.0, 2.0]), [0, 1, 2]], "w": bad_w[:-1],
                        "null_label": [None, 1.5, True]})
        call = lambda: td.conditional_eps_fn(kw.pop("model"), kw.pop("y"), **kw)(x, t)
    else:
        first, second = ("eps_cond", "eps_uncond") if which == "classifier_free_guidance" else ("eps_good", "eps_bad")
        kw, bad = pick(data, {first: good, second: bad_fn, "w": w}, {first: [None, "f"], second: [None, 0], "w": bad_w})
        call = lambda: getattr(td, which)(kw[first], kw[second], kw["w"])(x, t)
    out = outcome(call, bad)
    if out is not None:
        finite(out, x.shape)


# --- the oracle --------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data(), B=st.integers(1, 4))
def test_fuzz_oracle(data, B):
    x = torch.randn(B, 2, generator=torch.Generator().manual_seed(data.draw(st.integers(0, 99))), dtype=torch.float64)
    what = data.draw(st.sampled_from(["eps_fn", "score", "log_prob", "noised"]))
    ab = data.draw(st.sampled_from([1.0, 0.3, 1e-6]))
    t = torch.tensor(data.draw(st.lists(st.integers(0, S.T - 1), min_size=B, max_size=B)))
    bad_ab = [0.0, 1.5, -0.2, NAN, "0.5", True, torch.full((B + 1,), 0.5)]
    kw, bad = pick(data, {"x": x, "t": t, "alpha_bar": ab},
                   {"x": BAD_TENSOR + [torch.randn(B, 3, dtype=torch.float64)],
                    "t": [torch.full((B,), -1), torch.full((B,), S.T), t.double(), t[:1].repeat(B + 1), [1] * B,
                          torch.ones(B, dtype=torch.bool)],
                    "alpha_bar": bad_ab})
    if what == "eps_fn":
        kw.pop("alpha_bar")
        bad = None if bad == "alpha_bar" else bad
        call, shape, names = lambda: GM.eps_fn(S)(kw["x"], kw["t"]), (B, 2), {"x": "x_t", "t": "t"}
    elif what == "noised":
        kw.pop("x"), kw.pop("t")
        bad = None if bad in ("x", "t") else bad
        if bad == "alpha_bar" and isinstance(kw["alpha_bar"], torch.Tensor):
            kw["alpha_bar"] = "x"
        call, shape, names = lambda: GM.noised(kw["alpha_bar"]).log_prob(x), (B,), {"alpha_bar": "alpha_bar"}
    else:
        kw.pop("t")
        bad = None if bad == "t" else bad
        call = lambda: getattr(GM, what)(kw["x"], kw["alpha_bar"])
        shape, names = ((B, 2) if what == "score" else (B,)), {"x": "x", "alpha_bar": "alpha_bar"}
    out = outcome(call, bad and names[bad], *(["D = 2"] if bad == "x" else []))
    if out is not None:
        finite(out, shape)


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_fuzz_bayes_optimal_loss(data):
    kw, bad = pick(data, {"n": data.draw(st.integers(2, 16)), "t": data.draw(st.sampled_from([[0, 30, 59], None]))},
                   {"n": BAD_COUNT + [1], "t": [[-1], [S.T], [3.7], [], "5", torch.tensor([1.5])]})
    floor = outcome(lambda: GM.bayes_optimal_loss(S, generator=torch.Generator().manual_seed(0), **kw), bad)
    if floor is not None:
        m = S.T if kw["t"] is None else len(kw["t"])
        finite(floor.per_t, (m,)), finite(floor.stderr, (m,))
        assert math.isfinite(floor.mean) and floor.mean >= 0


# --- toy metrics -------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data(), n=st.integers(2, 40), D=st.sampled_from([1, 2]))
def test_fuzz_metrics(data, n, D):
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 99)))
    a, b = torch.randn(n, D, generator=g, dtype=torch.float64), torch.randn(n + 3, D, generator=g, dtype=torch.float64)
    name = data.draw(st.sampled_from(["wasserstein1", "sliced_wasserstein", "energy_distance", "mmd2"]))
    if name == "wasserstein1" and D != 1:
        D, a, b = 1, a[:, :1], b[:, :1]
    extra = {"sliced_wasserstein": {"n_projections": (8, BAD_COUNT)}, "energy_distance": {"max_points": (50, BAD_COUNT)},
             "mmd2": {"bandwidth": (data.draw(st.sampled_from([None, 0.5])), [0.0, -1.0, NAN, INF, "1"])}}.get(name, {})
    bad_points = [torch.full((n, D), NAN), [["x"] * D] * n, torch.zeros(0, D), torch.randn(n, D + 1)]
    if name == "mmd2":
        bad_points.append(torch.randn(1, D))
    kw, bad = pick(data, {"a": a, "b": b, **{k: v for k, (v, _) in extra.items()}},
                   {"a": bad_points, "b": bad_points, **{k: bv for k, (_, bv) in extra.items()}})
    names = ("dimension",) if bad in ("a", "b") else ()
    value = outcome(lambda: getattr(metrics, name)(**kw), bad, *names)
    if value is not None:
        assert isinstance(value, float) and math.isfinite(value)


@settings(max_examples=15, deadline=None)
@given(data=st.data(), n=st.integers(3, 60))
def test_fuzz_mixture_metrics(data, n):
    x = GM.sample(n, torch.Generator().manual_seed(data.draw(st.integers(0, 99))))
    name = data.draw(st.sampled_from(["nll", "mode_stats"]))
    kw, bad = pick(data, {"samples": x, "mixture": GM},
                   {"samples": [torch.full((n, 2), NAN), torch.randn(n, 3), torch.zeros(0, 2), "x"],
                    "mixture": [None, "8gaussians"]})
    value = outcome(lambda: getattr(metrics, name)(**kw), bad, *(["dimension"] if bad == "samples" else []))
    if isinstance(value, dict):
        assert 0 <= value["covered"] <= GM.K and all(math.isfinite(w) for w in value["weights"])
        assert sum(value["weights"]) == pytest.approx(1.0)
    elif value is not None:
        assert math.isfinite(value)


# --- image_track.generate on a tiny random-weight UNet ------------------------------------------------

@pytest.fixture(scope="module")
def tiny_unets():
    from image_track.models import build_model
    torch.manual_seed(0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_model("tiny", widths=(4, 8, 8), T=60).eval(), build_model("tiny", num_classes=10, widths=(4, 8, 8),
                                                                          T=60).eval()
    torch.set_num_threads(n)


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_fuzz_generate(tiny_unets, data):
    from image_track.sampling import generate
    uncond, cond = tiny_unets
    conditional = data.draw(st.booleans())
    n = data.draw(st.integers(1, 3))
    valid = {"n": n, "steps": data.draw(st.integers(1, 3)), "seed": data.draw(st.integers(0, 50)), "batch_size": 2,
             "method": data.draw(st.sampled_from(td.METHODS)), "schedule": S, "x_T": None}
    bad_values = {"n": BAD_COUNT, "steps": [0, S.T + 1, 1.5, True], "seed": [-1, 1.5, "0", True],
                  "batch_size": BAD_COUNT[:5], "method": ["bogus"], "schedule": [schedules.linear(T=50), "linear"],
                  "x_T": [torch.randn(max(n - 1, 1) if n > 1 else 2, 1, 28, 28), torch.full((n, 1, 28, 28), NAN),
                          torch.randn(n, 1, 32, 32), "noise"]}
    if conditional:
        valid |= {"labels": torch.arange(n) % 10, "w": data.draw(st.sampled_from([0.0, 1.0, 3.0]))}
        bad_values |= {"labels": [torch.tensor([1.7] * n), torch.full((n,), 10), torch.arange(n + 1), "3"],
                       "w": [NAN, INF, "3", True]}
    kw, bad = pick(data, valid, bad_values)
    names = {"schedule": ("schedule", "T = "), "x_T": ("x_T",), "labels": ("label",)}.get(bad, (bad,))
    out = outcome(lambda: generate(cond if conditional else uncond, kw.pop("schedule"), kw.pop("n"), **kw),
                  bad and names[0], *names[1:])
    if out is not None:
        finite(out, (n, 1, 28, 28))
        assert out.abs().max() <= 1
