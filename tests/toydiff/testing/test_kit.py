"""The kit's own parts: the exact reference, the recording oracle, the strategies, the report and the CLI."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import toydiff as td
from toydiff.testing import (OracleCallError, Problem, check_sampler, default_problem, from_callable, from_toydiff,
                             pf_ode)
from toydiff.testing import strategies as tds
from toydiff.testing.cli import main, parse_config

#: reproducible and free of wall-clock deadlines (the machine may be loaded)
PROPS = settings(deadline=None, derandomize=True)


@PROPS
@given(mu=st.floats(-2, 2), s=st.floats(0.3, 2.0), s0=st.floats(1.0, 20.0), frac=st.floats(0.0, 0.9))
def test_reference_ode_matches_the_closed_form_for_one_gaussian(mu, s, s0, frac):
    """For N(μ, s²) data the flow keeps (x̃ − μ)/sqrt(s² + σ²) fixed: the solve_ivp reference must agree."""
    gm = td.GaussianMixture.diagonal([1.0], [[mu, -mu]], [[s, 2 * s]])
    x = torch.tensor([[0.7, -1.3], [-2.0, 0.4]], dtype=torch.float64)
    prob = Problem(td.schedules.linear(T=1000), gm, x)
    s1 = frac * s0
    got = pf_ode(prob, x, s0, s1, rtol=1e-9, atol=1e-9)
    std = torch.tensor([s, 2 * s], dtype=torch.float64)
    u0 = x * math.sqrt(1 + s0**2) - torch.tensor([mu, -mu])
    want = (torch.tensor([mu, -mu]) + u0 * ((std**2 + s1**2) / (std**2 + s0**2)).sqrt()) / math.sqrt(1 + s1**2)
    assert torch.allclose(got, want, atol=1e-7, rtol=1e-7)


@PROPS
@given(problem=tds.problems(max_T=300), data=st.data())
def test_the_recorder_is_the_exact_eps_at_any_rank_and_logs_its_calls(problem, data):
    t = data.draw(st.integers(0, problem.schedule.T - 1))
    rec = problem.recorder()
    tt = torch.full((problem.x_T.shape[0],), t)
    got = rec.eps_fn(problem.x_T, tt)
    assert got.shape == problem.x_T.shape
    assert torch.allclose(got, problem.mixture.eps_fn(problem.schedule)(problem.x_T, tt), atol=1e-10)
    assert rec.calls == [(float(t), pytest.approx(problem.sigma_at(t)))]
    with pytest.raises(OracleCallError, match="t = -1"):
        rec.eps_fn(problem.x_T, tt * 0 - 1)
    assert rec.bad == [-1.0]


@PROPS
@given(gm=tds.mixtures(), shape_seed=st.data())
def test_mixtures_are_well_conditioned_in_one_to_four_dimensions(gm, shape_seed):
    assert 1 <= gm.D <= 4 and 1 <= gm.K <= 4
    assert tds.condition_number(gm) <= 4.0 + 1e-9
    shape = shape_seed.draw(tds.batch_shapes(gm.D))
    assert math.prod(shape[1:]) == gm.D and shape[0] >= 1


@PROPS
@given(schedule=tds.schedules(), data=st.data())
def test_every_drawn_schedule_and_plan_is_valid(schedule, data):
    steps = data.draw(tds.step_counts(schedule.T))
    spacing = data.draw(tds.spacings())
    plan = schedule.respace(steps, spacing)
    assert 1 <= len(plan) <= steps and all(a > b for a, b in zip(plan.timesteps, plan.timesteps[1:]))


def test_fractional_timesteps_interpolate_sigma_linearly():
    p = default_problem()
    assert p.sigma_at(10.5) == pytest.approx(0.5 * (p.sigma_at(10) + p.sigma_at(11)))
    assert p.sigma_at(-1) == 0.0
    with pytest.raises(OracleCallError):
        p.sigma_at(1000)


@PROPS
@given(shape=tds.batch_shapes(4, max_batch=4))
def test_a_sampler_sees_the_same_problem_at_any_rank(shape):
    base = default_problem(batch=shape[0], dim=4)
    shaped = base.with_batch(base.x_T.reshape(shape))
    run = lambda p: from_toydiff("ddim").run(p.recorder(), p.x_T, 5, torch.Generator().manual_seed(0)).x0
    assert torch.allclose(run(shaped).reshape(shape[0], 4), run(base), atol=1e-12)


def test_report_table_and_rows():
    rep = check_sampler("toydiff:euler", steps=[8, 16], sweep=[1, 2])
    assert rep.passed and rep.order == pytest.approx(1.0, abs=0.25)
    text = rep.table()
    assert text.splitlines()[0] == "check_sampler: toydiff:euler" and text.endswith("PASSED")
    assert {r.name for r in rep.rows} >= {"runs", "timesteps", "determinism", "batch invariance", "pathwise", "order"}
    with pytest.raises(KeyError, match="no row"):
        rep.row("speed")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="steps"):
        check_sampler("toydiff:heun", steps=[0])
    with pytest.raises(ValueError, match="unknown library"):
        check_sampler("numpy:heun")
    with pytest.raises(TypeError, match="sampler must be callable"):
        from_callable(3)
    with pytest.raises(ValueError, match="option"):
        from_toydiff("ddim", guidance=2.0)


def test_a_sampler_that_returns_the_wrong_shape_fails_the_runs_row():
    rep = check_sampler(lambda eps_fn, x, ab, n, g: x[:1], steps=[4, 8], sweep=[])
    assert not rep.passed and "expected a tensor of shape" in rep.row("runs").detail


def test_parse_config_types_values():
    assert parse_config("algorithm_type=dpmsolver++,solver_order=2, eta=0.5,flag=true,x=none") == {
        "algorithm_type": "dpmsolver++", "solver_order": 2, "eta": 0.5, "flag": True, "x": None}
    with pytest.raises(ValueError, match="key=value"):
        parse_config("solver_order")


@pytest.mark.parametrize("argv, code", [
    (["toydiff:heun", "--steps", "12,24", "--sweep", "2"], 0),
    (["toydiff:ddim", "--steps", "8,16", "--sweep", "2", "--order", "2"], 1),
    (["toydiff:nope"], 2),
    (["toydiff:heun", "--steps", "0"], 2),
    (["toydiff:heun", "--config", "oops"], 2),
])
def test_cli_exit_codes(argv, code, capsys):
    assert main(argv) == code
    out, err = capsys.readouterr()
    if code == 2:
        assert not out and len(err.strip().splitlines()) == 1 and err.startswith("toydiff check-sampler: error:")
    else:
        assert ("PASSED" if code == 0 else "FAILED (order)") in out


def test_missing_peer_libraries_are_one_clear_error(monkeypatch):
    import importlib
    import importlib.util
    import sys

    from toydiff.testing import adapters, from_diffusers

    real_import = importlib.import_module

    def no_peers(name, *a, **k):
        if name.split(".")[0] in ("k_diffusion", "diffusers"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_peers)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.delitem(sys.modules, "_kdiffusion_sampling.sampling", raising=False)
    with pytest.raises(ImportError, match="pip install --no-deps k-diffusion"):
        adapters.k_diffusion_sampling()
    with pytest.raises(ValueError, match="diffusers is not installed"):
        check_sampler("diffusers:DDIMScheduler")
    with pytest.raises(TypeError, match="diffusers scheduler class"):
        from_diffusers("DDIMScheduler")
