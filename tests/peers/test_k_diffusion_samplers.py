"""The kit pointed at the installed k-diffusion's samplers (``k_diffusion.sampling``, loaded alone when the package's
training dependencies are missing). Skipped when k-diffusion is absent."""

import pytest

from toydiff.testing import check_sampler, from_k_diffusion
from toydiff.testing.adapters import k_diffusion_sampling

try:
    K = k_diffusion_sampling()
except ImportError:
    pytest.skip("k-diffusion is not installed", allow_module_level=True)

#: (sampler, claimed order or None for stochastic)
CASES = [("sample_euler", 1, "linspace"), ("sample_euler", 1, "karras"), ("sample_heun", 2, "linspace"),
         ("sample_heun", 2, "karras"), ("sample_dpm_2", 2, "karras"), ("sample_dpmpp_2m", 2, "linspace"),
         ("sample_dpmpp_2m", 2, "karras"), ("sample_euler_ancestral", None, "karras"),
         ("sample_dpmpp_2m_sde", None, "karras")]


@pytest.mark.parametrize("name, order, sigmas", CASES)
def test_k_diffusion_sampler_passes_with_its_order(name, order, sigmas):
    rep = check_sampler(from_k_diffusion(getattr(K, name), sigmas=sigmas, order=order), steps=(12, 24, 48),
                        sweep=(1, 2, 3), n_samples=500, edges=(1, 2))
    known = {"sample_dpmpp_2m_sde": {"edge steps"}}  # one step: UnboundLocalError on 'h' (k-diffusion's own bug)
    assert {r.name for r in rep.failures} == known.get(name, set()), rep.table()
    assert rep.stochastic is (order is None)


def test_lms_converges_faster_than_second_order():
    rep = check_sampler(from_k_diffusion(K.sample_lms), steps=(12, 24, 48), sweep=(), edges=(1, 2))
    # on levels repeated to 15 digits its Lagrange weights blow up: |x_0 - ODE| ~ 1e20, silently
    assert {r.name for r in rep.failures} == {"duplicate levels"} and rep.order > 2.6, rep.table()


def test_the_adapter_refuses_an_option_the_sampler_lacks():
    with pytest.raises(ValueError, match="no option 'eta'"):
        from_k_diffusion(K.sample_euler, eta=1.0)


def test_dpm_solver_fast_converges_at_third_order_and_stops_at_sigma_min_by_design():
    """``sample_dpm_fast`` takes a σ range and refuses σ_min = 0, so it ends at σ_min (0.01 here), not the clean
    sample: the kit says so (timesteps, clean end, and the edge runs' ends) and measures its order against the ODE
    to σ_min; it reports only the ends of its path, so 'calls at levels' does not apply."""
    from toydiff.testing import default_problem

    rep = check_sampler(from_k_diffusion(K.sample_dpm_fast, sigmas="karras"), steps=(6, 12), sweep=(),
                        problem=default_problem(batch=4))
    assert {r.name for r in rep.failures} == {"timesteps", "clean end", "edge steps"}, rep.table()
    assert rep.row("calls at levels").passed is None, rep.table()
    assert rep.order > 2.5, rep.table()
