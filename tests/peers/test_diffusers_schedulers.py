"""The kit pointed at the installed diffusers' schedulers: each verdict asserted, so a regression in the kit or a
fix upstream shows here. Skipped when diffusers is absent (``pip install -e .[peers]`` installs it).

Known defects of diffusers 0.42.1 these pin (see docs/testing.md for the reproducer commands):
DDIM/DDPM ``trailing`` ask the model about t = −1 at 61, 103, 121 steps; ``leading`` (the default) and
``linspace`` at one step start at t = 0 (DDIM, DDPM, Euler, Heun, LMS: σ = σ_min); DDIM's fixed stride
t − T // N is wrong whenever the timesteps are not spaced by exactly T // N (linspace, or trailing with N not
dividing T) and its convergence stalls; DDPM ``trailing`` with ``variance_type="fixed_large"`` adds noise on
the final step; PNDM (default ``set_alpha_to_one=False``), DEIS and SA-Solver stop at σ_0 instead of the clean
sample; KDPM2 ancestral at 2 steps feeds the model t = NaN. With the sharper rows (docs/testing.md): the multistep
DPM-Solver / UniPC / DEIS give NaN on levels repeated to 15 digits ('duplicate levels'); PNDM raises a broadcast
ValueError at 1 and 2 steps and Euler-ancestral's one step starts at σ_min ('edge steps').
"""

import warnings

import pytest

diffusers = pytest.importorskip("diffusers")

from toydiff.testing import DEFAULT_SWEEP, check_sampler, from_diffusers  # noqa: E402

SHORT = (1, 2, 3)  # the sweep where only the one-step start matters
STEPS = (12, 24, 48)  # none divides T = 1000
#: (scheduler, config, sweep, failing properties, order band or None)
CASES = [
    ("DDIMScheduler", {}, SHORT, {"timesteps", "edge steps"}, (0.8, 1.2)),
    # at 48 steps the last t is 20 = T // 48, so the stride lands on t = 0, not the clean sample
    ("DDIMScheduler", {"timestep_spacing": "trailing"}, (61,), {"denoiser t", "order", "clean end"}, (0.4, 0.9)),
    ("DDIMScheduler", {"timestep_spacing": "linspace"}, SHORT, {"timesteps", "order", "edge steps"}, (0.4, 0.9)),
    ("DDIMScheduler", {"timestep_spacing": "leading", "steps_offset": 1}, SHORT, {"timesteps", "edge steps"}, (0.8, 1.2)),
    ("DDPMScheduler", {}, SHORT, {"timesteps", "edge steps"}, None),
    ("DDPMScheduler", {"timestep_spacing": "trailing"}, (61,), {"denoiser t"}, None),
    ("DDPMScheduler", {"timestep_spacing": "trailing", "variance_type": "fixed_large"}, (), {"clean end"}, None),
    ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}, SHORT, {"duplicate levels"}, (1.5, 2.3)),
    ("DPMSolverSinglestepScheduler", {}, SHORT, {"duplicate levels"}, (1.5, 2.3)),
    ("UniPCMultistepScheduler", {}, SHORT, {"duplicate levels"}, (2.0, 3.5)),
    ("EulerDiscreteScheduler", {}, SHORT, {"timesteps", "edge steps"}, (0.8, 1.2)),
    ("HeunDiscreteScheduler", {}, SHORT, {"timesteps", "edge steps"}, (1.7, 2.4)),
    ("PNDMScheduler", {}, SHORT, {"clean end", "edge steps"}, (1.5, 2.6)),
    ("PNDMScheduler", {"set_alpha_to_one": True}, SHORT, {"edge steps"}, (1.5, 2.6)),  # 1, 2 steps: a broadcast ValueError
    ("DEISMultistepScheduler", {}, SHORT, {"clean end", "duplicate levels"}, (1.5, 2.3)),
    ("KDPM2AncestralDiscreteScheduler", {}, (2,), {"denoiser t", "edge steps"}, None),  # stochastic: checked on its samples
    ("EulerAncestralDiscreteScheduler", {}, (), {"edge steps"}, None),  # one step starts at sigma_min
]


@pytest.mark.parametrize("name, config, sweep, failing, band", CASES,
                         ids=[f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items()) or 'default'}" for c in CASES])
def test_diffusers_scheduler_verdict(name, config, sweep, failing, band):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = check_sampler(from_diffusers(getattr(diffusers, name), **config), steps=STEPS, sweep=sweep,
                            n_samples=500, edges=(1, 2))
    assert {r.name for r in rep.failures} == failing, rep.table()
    if band is not None:
        assert band[0] <= rep.order <= band[1], rep.table()


def test_trailing_ddim_asks_about_t_minus_one_at_61_103_121_steps():
    rep = check_sampler(from_diffusers(diffusers.DDIMScheduler, timestep_spacing="trailing"), steps=[12, 24],
                        sweep=DEFAULT_SWEEP)
    assert "t = -1" in rep.row("denoiser t").detail and "[61, 103, 121]" in rep.row("denoiser t").detail


def test_the_adapter_refuses_config_it_cannot_honour():
    with pytest.raises(ValueError, match="oracle's own discrete schedule"):
        from_diffusers(diffusers.DDIMScheduler, beta_schedule="scaled_linear")
    with pytest.raises(ValueError, match="no option 'nope'"):
        from_diffusers(diffusers.DDIMScheduler, nope=1)
