"""toydiff.sampling.optimal_steps: the searched levels are valid, seeded, never worse than their start, and the
objective is the bench's pathwise error (toydiff.evaluation.few_step.pathwise_error against the exact flow map)."""

import pytest
import torch

import toydiff as td
from toydiff.evaluation.few_step import data_std, pathwise_error
from toydiff.exact.mixture import GaussianMixture
from toydiff.sampling.optimal_steps import optimal_steps, search_draws, start_draws, steps_error

SCHED = td.schedules.linear(200, beta_end=0.1)  # small T: cheap runs, alpha_bar[T-1] ~ 1e-4
TWO = GaussianMixture([1.0, 2.0], [[-4.0], [4.0]], [[[1.0]], [[1.0]]])
ONE = GaussianMixture([1.0], [[1.5]], [[[4.0]]])  # one Gaussian: the exact flow map is affine


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny tensors on a shared CPU: one intra-op thread is ~20x faster here (tests/conftest.py's one_thread)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def found(one_torch_thread):
    return optimal_steps(TWO, SCHED, "ddim", 4, n=32, seed=3, max_evaluations=40)


def test_levels_strictly_descending_in_range_and_start_at_T_minus_1(found):
    ts = found.timesteps
    assert len(ts) == 4 and ts[0] == SCHED.T - 1 and ts[-1] >= 0
    assert all(a > b for a, b in zip(ts, ts[1:]))
    assert found.log_snr == tuple(float(SCHED.log_snr[t]) for t in ts)
    assert found.evaluations <= 40


def test_search_moves_and_improves_on_its_start(found):
    assert found.timesteps != found.start
    assert found.error < found.start_error


def test_reproducible_from_the_seed_and_seed_matters(found):
    again = optimal_steps(TWO, SCHED, "ddim", 4, n=32, seed=3, max_evaluations=40)
    assert again == found
    for draws in (start_draws, search_draws):
        assert draws(TWO, 32, 3).equal(draws(TWO, 32, 3)) and not draws(TWO, 32, 3).equal(draws(TWO, 32, 4))


def test_search_draws_are_standard_normal_quasi_random():
    x = search_draws(TWO, 256, 0)
    assert x.shape == (256, 1) and torch.isfinite(x).all()
    assert abs(float(x.mean())) < 0.02 and abs(float(x.std()) - 1) < 0.03  # QMC: far tighter than 1/sqrt(256)


def test_objective_is_the_bench_pathwise_error_at_the_returned_levels(found):
    x_T = search_draws(TWO, 32, 3)
    x0 = td.sample(TWO.eps_fn(SCHED), x_T, SCHED, method="ddim", steps=list(found.timesteps))
    exact = TWO.flow_map(x_T, SCHED.T - 1, -1, SCHED)
    assert found.error == pytest.approx(pathwise_error(x0, exact, data_std(TWO)), rel=1e-12)
    assert found.start_error == pytest.approx(steps_error(TWO, SCHED, "ddim", found.start, x_T), rel=1e-12)


def test_one_gaussian_never_worse_than_its_linspace_start():
    r = optimal_steps(ONE, SCHED, "dpm++2m", 5, n=16, seed=0, start="linspace", max_evaluations=30)
    assert r.start == tuple(SCHED.respace(5, "linspace").timesteps)
    assert r.error <= r.start_error
    x_T = search_draws(ONE, 16, 0)
    assert r.start_error == pytest.approx(steps_error(ONE, SCHED, "dpm++2m", r.start, x_T), rel=1e-12)


@pytest.mark.parametrize("kwargs, exc, word", [
    ({"method": "ddpm"}, ValueError, "method"),
    ({"method": "nope"}, ValueError, "method"),
    ({"n_steps": 1}, ValueError, "n_steps"),
    ({"start": (199, 100, 50)}, ValueError, "start"),
    ({"start": "leading"}, ValueError, "start"),
    ({"n": 0}, ValueError, "n"),
    ({"process": "linear"}, TypeError, "process"),
    ({"process": td.interpolants.linear()}, ValueError, "method"),  # ddim is not a flow method
])
def test_bad_arguments_are_named(kwargs, exc, word):
    args = {"process": SCHED, "method": "ddim", "n_steps": 4, **kwargs}
    with pytest.raises(exc, match=word):
        optimal_steps(TWO, args.pop("process"), args.pop("method"), args.pop("n_steps"), max_evaluations=2, **args)


def test_steps_error_refuses_levels_that_do_not_start_at_T_minus_1():
    with pytest.raises(ValueError, match="timesteps"):
        steps_error(TWO, SCHED, "ddim", (150, 50), torch.zeros(4, 1, dtype=torch.float64))


def test_over_an_interpolant_the_times_are_searched_and_the_objective_is_the_bench_error():
    interp = td.interpolants.linear()
    r = optimal_steps(TWO, interp, "heun", 3, n=32, seed=1, max_evaluations=30)
    assert r.timesteps[0] == 1.0 and all(a > b > 0 for a, b in zip(r.timesteps, r.timesteps[1:]))
    assert r.error < r.start_error
    starts = [(1.0, 2 / 3, 1 / 3), (1.0, 6 / 7, 0.6)]  # uniform or shift 3, snapped to a table of 4096 times
    assert any(r.start == pytest.approx(s, abs=1 / 4096) for s in starts)
    x_T = search_draws(TWO, 32, 1)
    x0 = td.sample(TWO.velocity_fn(interp), x_T, interp, method="heun", times=[*r.timesteps, 0.0])
    exact = TWO.flow_map(x_T, 1.0, 0.0, interp)
    assert r.error == pytest.approx(pathwise_error(x0, exact, data_std(TWO)), rel=1e-12)
