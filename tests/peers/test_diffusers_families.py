"""The kit on diffusers' flow-matching, EDM, consistency and flow-map schedulers (toydiff.testing.peer_families),
each verdict pinned. Skipped when diffusers is absent.

Pinned findings of diffusers 0.42.1 (docs/testing.md has the reproducers): ``FlowMatchEulerDiscreteScheduler`` with
``shift_terminal`` asks the model about t = NaN at one step (the stretch divides by 1 − σ_last = 0);
``EDMEulerScheduler`` with ``sigma_schedule="exponential"`` starts one step at σ_min; ``TCDScheduler``'s last
step lands on t = 0 (σ_0 ≈ 0.01 here), not the clean sample, so even one step on an exact consistency model is
0.01 off the exact flow map.
"""

import warnings

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from toydiff.testing import check_sampler, default_problem, from_diffusers  # noqa: E402
from toydiff.testing.few_step import flow_map_row  # noqa: E402
from toydiff.testing.runner import Runner  # noqa: E402

STEPS = (8, 16)
#: (scheduler, config, order band, sweep, failing properties)
CASES = [
    ("FlowMatchEulerDiscreteScheduler", {"shift": 3.0}, (0.8, 1.2), (1, 2), set()),
    ("FlowMatchEulerDiscreteScheduler", {"use_dynamic_shifting": True, "mu": 1.15, "shift_terminal": 0.1},
     (0.8, 1.2), (1,), {"denoiser t", "edge steps"}),
    ("FlowMatchHeunDiscreteScheduler", {"shift": 3.0}, (1.7, 2.5), (1, 2), set()),
    ("EDMEulerScheduler", {"sigma_schedule": "exponential"}, (0.8, 1.2), (1,), {"timesteps", "edge steps"}),
    ("EDMDPMSolverMultistepScheduler", {}, (1.6, 2.6), (1, 2), set()),
]


@pytest.mark.parametrize("name, config, band, sweep, failing", CASES,
                         ids=[f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items()) or 'default'}" for c in CASES])
def test_flow_and_edm_scheduler_verdict(name, config, band, sweep, failing):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = check_sampler(from_diffusers(getattr(diffusers, name), **config), steps=STEPS, sweep=sweep,
                            problem=default_problem(batch=4))
    assert {r.name for r in rep.failures} == failing, rep.table()
    if band is not None:
        assert band[0] <= rep.order <= band[1], rep.table()


@pytest.mark.parametrize("name, passes", [("LCMScheduler", True), ("TCDScheduler", False),
                                          ("FlowMatchLCMScheduler", True)])
def test_one_consistency_step_on_the_exact_model_is_the_exact_flow_map(name, passes):
    runner = Runner(from_diffusers(getattr(diffusers, name)))
    assert runner.sampler.family == "few-step"
    ok, detail = flow_map_row(runner, default_problem(batch=4), 0, deterministic=False)
    assert ok is passes, detail


def test_a_flow_map_scheduler_on_the_exact_average_velocity_is_exact_at_any_step_count():
    runner = Runner(from_diffusers(diffusers.FlowMapEulerDiscreteScheduler, shift=3.0))
    ok, detail = flow_map_row(runner, default_problem(batch=2), 0, deterministic=True, steps=(3,))
    assert ok and "1: " in detail and "3: " in detail, detail


def test_config_goes_where_the_scheduler_takes_it_and_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="no option 'nope'"):
        from_diffusers(diffusers.FlowMatchEulerDiscreteScheduler, nope=1)
    with pytest.raises(ValueError, match="refuses it"):  # use_dynamic_shifting without mu: set_timesteps raises
        from_diffusers(diffusers.FlowMatchEulerDiscreteScheduler, use_dynamic_shifting=True)
    with pytest.raises(ValueError, match="epsilon"):
        from_diffusers(diffusers.EDMEulerScheduler, prediction_type="v_prediction")
    with pytest.raises(TypeError, match="none of the families"):
        from_diffusers(diffusers.AmusedScheduler)


def test_stochastic_flow_matching_euler_on_a_velocity_model_loses_variance_at_any_step_count():
    """``stochastic_sampling=True`` re-noises x̂_0 = x − σ v, the posterior *mean*: right for a consistency model,
    too narrow for a velocity model (the posterior's spread is dropped every step), however many steps."""
    p = default_problem(batch=4)
    x_T = torch.randn(400, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    true_var = float(p.mixture.covariance().diagonal().sum())
    spread = {}
    for cfg in ({"stochastic_sampling": True}, {}):
        run = Runner(from_diffusers(diffusers.FlowMatchEulerDiscreteScheduler, **cfg)).attempt(p, x_T, 48, 0).run
        spread[bool(cfg)] = float(run.x0.var(0).sum()) / true_var
    assert spread[True] < 0.8 and spread[False] > 0.85, spread


def test_flow_matching_ode_solver_on_the_exact_velocity_has_its_order():
    """facebookresearch flow_matching (an optional extra, skipped when absent): its midpoint solver, run on the
    reversed clock (t = 0 noise), converges at order 2 against the exact ODE."""
    pytest.importorskip("flow_matching")
    from toydiff.testing.peer_families import from_flow_matching

    rep = check_sampler(from_flow_matching("midpoint", order=2), steps=(8, 16), sweep=(1,),
                        problem=default_problem(batch=4))
    assert rep.passed, rep.table()
