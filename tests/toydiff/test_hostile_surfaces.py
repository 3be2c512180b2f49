"""Hostile inputs on the second round of surfaces (issue 23): each ends in a clear error naming the argument
(ValueError / TypeError), or in the right result, within seconds.

Silent-wrong results (NaN samples, inf conversions, wrong copy rates), cryptic tracebacks (IndexError, torch's
signatures) and hangs (a Python list of 10**12 steps) each have a case here; the command-line cases are rows
of ``tests/test_cli_errors.py``.
"""

from __future__ import annotations

import math
import time
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import toydiff as td
from toydiff.bounds import SIZE_LIMITS, check_size, size_arg
from toydiff.evaluation.memorisation import copy_rate, copy_stats
from toydiff.processes import interpolants as I
from toydiff.sampling.flow_steps import FLOW_METHODS, time_grid
from toydiff.toy.drawn import kde_mixture
from toydiff.training.hooks import NonFiniteLossError
from toydiff.training.losses import batched_held_out

HOSTILE = settings(max_examples=25, deadline=None, derandomize=True)
NAN, INF = float("nan"), float("inf")
S = td.schedules.linear(T=100, beta_start=1e-4, beta_end=0.2)
GM = td.GaussianMixture.diagonal([1.0, 2.0], [[-2.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
PATHS = {"linear": I.linear(), "cosine": I.cosine(), "vp": I.vp(S)}


def refused(call, *names: str, within: float = 5.0, kinds=(ValueError, TypeError)) -> str:
    """Run ``call``: it must raise one of ``kinds`` naming one of ``names``, within ``within`` seconds."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(kinds) as info:
            call()
    assert time.perf_counter() - t0 < within, f"took {time.perf_counter() - t0:.1f} s"
    msg = str(info.value)
    assert any(n in msg for n in names), f"{msg!r} names none of {names}"
    assert "\n" not in msg.strip()
    return msg


# --- 1. silent-wrong: non-finite fields, singular conversions, heun's last step, copies ----------------
@HOSTILE
@given(method=st.sampled_from(FLOW_METHODS), path=st.sampled_from(sorted(PATHS)), bad=st.sampled_from([NAN, INF, -INF]),
       at=st.integers(0, 3), entry=st.integers(0, 15))
def test_flow_samplers_refuse_a_non_finite_field_naming_method_step_and_t(method, path, bad, at, entry):
    """A field that turns NaN / inf at its ``at``-th call, in one entry: a ValueError names the method, the step and
    t (never NaN samples), for every flow method, as the VP samplers do."""
    calls = []

    def fn(x, t):
        calls.append(None)
        u = GM.velocity(x, t, PATHS[path])
        if len(calls) > at:
            u = u.clone()
            u.view(-1)[entry] = bad
        return u

    msg = refused(lambda: td.sample(fn, torch.randn(8, 2, generator=torch.Generator().manual_seed(0)), PATHS[path],
                                    method=method, steps=4), "NaN or infinite")
    assert f"method={method!r}" in msg and " at step " in msg and "(t = " in msg


def test_a_finite_field_passes_the_flow_probe_unchanged():
    x1 = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for method in FLOW_METHODS:
        x = td.sample(GM.velocity_fn(I.linear()), x1, I.linear(), method=method, steps=8)
        assert torch.isfinite(x).all()


@pytest.mark.parametrize("path", ["linear", "cosine"])
def test_conversions_at_the_singular_ends_are_refused_naming_t(path):
    interp, x, p = PATHS[path], torch.randn(4, 2), torch.randn(4, 2)
    assert "t = 1.0" in refused(lambda: interp.to_x0(p, "eps", x, 1.0), "alpha(t) = 0")
    assert "t = 0.0" in refused(lambda: interp.to_eps(p, "x0", x, 0.0), "sigma(t) = 0")
    refused(lambda: interp.to_v(p, "eps", x, torch.tensor([0.5, 0.5, 0.5, 1.0])), "alpha(t) = 0")
    # where the answer exists it is returned, finite: eps from a velocity at t = 0, x0 from eps inside (0, 1)
    assert torch.isfinite(interp.to_eps(p, "velocity", x, 0.0)).all()
    assert torch.isfinite(interp.to_x0(p, "eps", x, 0.5)).all()
    assert torch.equal(interp.to_x0(p, "x0", x, 1.0), p)  # no conversion: returned as is


def test_the_vp_velocity_at_t_0_is_refused_not_nan():
    x, p = torch.randn(4, 2), torch.randn(4, 2)
    refused(lambda: GM.velocity(x, 0.0, PATHS["vp"]), "t = 0.0", "infinite")
    refused(lambda: PATHS["vp"].to_x0(p, "velocity", x, 0.0), "t = 0.0")
    refused(lambda: PATHS["vp"].to_velocity(p, "eps", x, 0.0), "t = 0.0")
    assert torch.isfinite(GM.velocity(x, 0.01, PATHS["vp"])).all()
    assert torch.isfinite(GM.velocity(x, 0.0, PATHS["linear"])).all()  # finite where the path's rates are


@pytest.mark.parametrize("steps", [16, 64])
def test_heun_on_the_empirical_velocity_lands_on_training_points(steps):
    pts = torch.randn(12, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    emp = td.exact.EmpiricalDistribution(pts)
    x1 = torch.randn(40, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    calls = []
    fn = emp.velocity_fn(I.linear())
    assert fn.singular_at_zero

    def counted(x, t):
        calls.append(float(t[0]))
        return fn(x, t)

    counted.singular_at_zero = True  # a wrapper of a singular field says so too
    x = td.sample(counted, x1, I.linear(), method="heun", steps=steps)
    assert 0.0 not in calls  # the field is singular at 0: no evaluation there
    # 64 steps: every sample on a training point; 16 steps: the samples that have committed to one point
    d = torch.cdist(x, pts).min(1).values
    assert (d.max() if steps == 64 else d.median()) < 1e-3


def test_copy_rate_of_duplicated_and_identical_training_points():
    dup = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0]])
    assert copy_rate(torch.tensor([[0.0, 0.0]]), dup) == 1.0  # an exact copy of a duplicated point
    assert copy_rate(torch.tensor([[0.1, 0.0]]), dup) == 1.0
    assert copy_stats(torch.tensor([[5.0, 5.0]]), dup).nearest.tolist() == [2]  # indices into train as given
    same = torch.zeros(6, 2)
    assert copy_rate(torch.zeros(3, 2), same) == 1.0  # all identical: an exact copy is a copy
    assert copy_rate(torch.ones(3, 2), same) == 0.0  # no second point to compare with: only exact copies count


@HOSTILE
@given(n=st.integers(2, 8), reps=st.integers(1, 4), seed=st.integers(0, 1000))
def test_copy_rate_does_not_depend_on_duplicating_the_training_set(n, reps, seed):
    g = torch.Generator().manual_seed(seed)
    train = torch.randn(n, 2, generator=g) * 3
    samples = torch.cat([train[: n // 2], torch.randn(5, 2, generator=g)])
    assert copy_rate(samples, train.repeat(reps, 1)) == copy_rate(samples, train)
    assert copy_rate(train, train.repeat(reps, 1)) == 1.0


def test_a_non_finite_held_out_loss_stops_training():
    t = torch.rand(8)
    refused(lambda: batched_held_out(lambda sl, kw: torch.full((8,), INF), t, lambda v, tt, nb: (v[:nb], v[:nb] * 0 + 1),
                                     n_buckets=2, batch_size=8), "held-out loss is inf", kinds=(NonFiniteLossError,))
    assert issubclass(NonFiniteLossError, FloatingPointError)


# --- 2. tracebacks and cryptic errors -> clear errors ------------------------------------------------
@pytest.mark.parametrize("process", [S, I.linear()], ids=["vp", "flow"])
def test_log_likelihood_refuses_a_broken_field_at_once(process):
    x = torch.randn(16, 2)
    refused(lambda: td.log_likelihood(lambda x, t: x * NAN, x, process), "fn returned", "NaN")
    refused(lambda: td.log_likelihood(lambda x, t: x[:3], x, process), "fn returned", "shape")
    refused(lambda: td.log_likelihood(lambda x, t: 1.0, x, process), "fn returned")
    refused(lambda: td.log_likelihood(lambda x, t: -x, x, process, divergence="hutchinson", generator=42),
            "generator")


def test_log_likelihood_bounds_the_number_of_points():
    refused(lambda: td.log_likelihood(lambda x, t: -x, torch.zeros(SIZE_LIMITS["n_likelihood"].max + 1, 1),
                                      I.linear()), "x.shape[0]")


@pytest.mark.parametrize("points, bandwidth, name", [
    ([[1e200, 0.0], [0.0, 1e200], [3.0, -1e200]], "scott", "points"),
    ([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], INF, "bandwidth"),
    ([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], NAN, "bandwidth"),
    ([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], 1e300, "bandwidth"),
    ([[0.0, 0.0], [1.0], [0.0, 1.0]], "scott", "points"),
    ([["a", "b"], [1.0, 0.0], [0.0, 1.0]], "scott", "points"),
    ([[0.0, 0.0], [1.0, NAN], [0.0, 1.0]], "scott", "points"),
])
def test_kde_mixture_refuses_hostile_points_and_bandwidths(points, bandwidth, name):
    refused(lambda: kde_mixture(points, bandwidth), name)


@pytest.mark.parametrize("kwargs, name", [
    ({"labels": [0, 1, 10**12]}, "labels"),
    ({"labels": [0, 1, -1]}, "labels"),
    ({"labels": [0.5, 1, 2]}, "labels"),
    ({"means": [[0.0, 0.0], [1.0], [2.0, 2.0]]}, "means"),
    ({"weights": ["a", "b", "c"]}, "weights"),
    ({"weights": "abc"}, "weights"),
    ({"covs": [[[1.0, 0.0], [0.0, 1.0]], [[1.0]], [[1.0, 0.0], [0.0, 1.0]]]}, "covs"),
])
def test_gaussian_mixture_refuses_ragged_non_numeric_and_huge_labels(kwargs, name):
    args = {"weights": [1.0, 1.0, 1.0], "means": [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]],
            "covs": torch.eye(2, dtype=torch.float64).expand(3, 2, 2).tolist(), "labels": [0, 1, 1]} | kwargs
    refused(lambda: td.GaussianMixture(**args), name)


def test_trajectory_recorder_names_indices_beyond_the_batch():
    rec = td.TrajectoryRecorder(indices=range(100))
    refused(lambda: td.sample(lambda x, t: x * 0, torch.randn(8, 2), S, method="ddim", steps=5, callback=rec),
            "indices")
    refused(lambda: td.TrajectoryRecorder(indices=[0, -1]), "indices")
    refused(lambda: td.TrajectoryRecorder(indices=[0, 1.5]), "indices")
    refused(lambda: td.TrajectoryRecorder(steps=range(10**12)), "steps")
    ok = td.TrajectoryRecorder(indices=range(8))
    td.sample(lambda x, t: x * 0, torch.randn(8, 2), S, method="ddim", steps=5, callback=ok)
    assert ok.x_t.shape[1] == 8


def test_per_sample_generators_refuse_seeds_torch_cannot_take():
    refused(lambda: td.per_sample_generators(2**70, 2), "seed")
    refused(lambda: td.per_sample_generators(2**64 - 1, 2), "seed")
    assert len(td.per_sample_generators(2**64 - 2, 2)) == 2


def test_generate_refuses_a_huge_seed_another_dtype_and_a_missing_device():
    from image_track.models import build_model
    from image_track.sampling import generate

    torch.manual_seed(0)
    net, S = build_model("tiny", widths=(4, 8, 8)).eval(), td.schedules.linear(T=1000)
    refused(lambda: generate(net, S, 2, steps=2, seed=2**70), "seed")
    refused(lambda: generate(net, S, 2, steps=2, x_T=torch.randn(2, 1, 28, 28, dtype=torch.float64)), "x_T")
    refused(lambda: generate(net, S, 2, steps=2, device="bogus"), "device")
    assert generate(net, S, 2, steps=2, seed=2**64 - 3).shape == (2, 1, 28, 28)  # the largest seed that fits
    if not torch.cuda.is_available():
        refused(lambda: generate(net, S, 2, steps=2, device="cuda"), "device", "CUDA")


# --- 3. hangs: every size a user sets is bounded ----------------------------------------------------
@pytest.mark.parametrize("call, name", [
    (lambda: time_grid(steps=10**12), "steps"),
    (lambda: td.sample(lambda x, t: x * 0, torch.randn(4, 2), I.linear(), steps=10**12), "steps"),
    (lambda: td.sample(lambda x, t: x * 0, torch.randn(4, 2), S, method="ddim", steps=10**12), "steps"),
    (lambda: time_grid(times=torch.linspace(1, 0, 10**6)), "times"),
    (lambda: td.exact.EmpiricalDistribution(torch.zeros(SIZE_LIMITS["n_train"].max + 1, 1)), "points"),
    (lambda: td.GaussianMixture.diagonal(torch.ones(SIZE_LIMITS["components"].max + 1),
                                         torch.zeros(SIZE_LIMITS["components"].max + 1, 1), 1.0), "weights"),
], ids=["time_grid", "flow sample", "vp sample", "times", "empirical", "mixture"])
def test_sizes_beyond_their_bound_are_refused_at_once(call, name):
    refused(call, name, within=2.0)


@HOSTILE
@given(key=st.sampled_from(sorted(SIZE_LIMITS)), offset=st.integers(-3, 3))
def test_check_size_and_size_arg_agree_on_every_bound(key, offset):
    lim = SIZE_LIMITS[key]
    for v in (lim.min + offset, lim.max + offset):
        inside = lim.min <= v <= lim.max
        if inside:
            assert check_size(v, "x", key=key) == v == size_arg(key)(str(v))
        else:
            assert lim.why in refused(lambda: check_size(v, "x", key=key), "x must be in")
            with pytest.raises(Exception, match="must be in"):
                size_arg(key)(str(v))
    refused(lambda: check_size(True, "x", key=key), "x")
    refused(lambda: check_size(1.5, "x", key=key), "x")
    assert all(lim.why and lim.min <= lim.max for lim in SIZE_LIMITS.values())
    assert not math.isinf(lim.max)
