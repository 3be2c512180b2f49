"""The kit's sharper properties, each shown to catch a broken sampler that every older property passes:
calls at levels, efficiency, duplicate levels, edge steps and the calibrated two-sample test."""

import math

import pytest
import torch

from toydiff.testing import ROWS, check_sampler, default_problem, from_callable
from toydiff.testing.levels import call_problems, duplicate_schedule
from toydiff.testing.protocol import Run
from toydiff.testing.reference import REFERENCES, reference_solve
from toydiff.testing.twosample import ALPHA, energy_permutation_p, log_density_z

#: the rows the kit had before these: a sampler "only the new row catches" passes every one of them
OLD = {"runs", "denoiser t", "timesteps", "determinism", "batch invariance", "clean end", "pathwise", "order"}
NEW = {"calls at levels", "efficiency", "duplicate levels", "edge steps"}
FAST = dict(steps=(12, 24, 48), sweep=range(1, 9), edges=(1, 2), n_samples=300)

pytestmark = pytest.mark.usefixtures("one_thread")


def linspace_t(T: int, steps: int) -> list[int]:
    return [round((T - 1) * (steps - 1 - i) / (steps - 1)) for i in range(steps)] if steps > 1 else [T - 1]


def sigma_of(ab, t: int) -> float:
    return 0.0 if t < 0 else math.sqrt((1 - float(ab[t])) / float(ab[t]))


def make_ddim(*, told=lambda ts, i, T: ts[i], one_step_bug=False):
    """DDIM (Song et al. 2021 eq. 12, η = 0) on linspace timesteps; ``told(ts, i, T)``: the timestep the model is
    told at step i (correct: ts[i]); ``one_step_bug``: the linspace formula divides by steps − 1."""

    def ddim(eps_fn, x_T, ab, steps, generator):
        T = len(ab)
        ts = ([round((T - 1) * (steps - 1 - i) / (steps - 1)) for i in range(steps)] if one_step_bug
              else linspace_t(T, steps)) + [-1]
        x = x_T
        for i, (t, tp) in enumerate(zip(ts, ts[1:])):
            a, ap = float(ab[t]), (float(ab[tp]) if tp >= 0 else 1.0)
            eps = eps_fn(x, torch.full((x.shape[0],), told(ts, i, T)))
            x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
            x = math.sqrt(ap) * x0 + math.sqrt(1 - ap) * eps
        return x, ts

    return ddim


def euler_in_root_sigma(eps_fn, x_T, ab, steps, generator):
    """Euler on the probability-flow ODE in the time u = √σ (dx̃/du = 2√σ ε), the last step landing on x̂_0:
    consistent and first order, but ~6x the error of DDIM on the same levels."""
    T = len(ab)
    ts = linspace_t(T, steps) + [-1]
    xs = x_T * math.sqrt(1 + sigma_of(ab, ts[0]) ** 2)
    for t, tp in zip(ts, ts[1:]):
        s, sp = sigma_of(ab, t), sigma_of(ab, tp)
        eps = eps_fn(xs / math.sqrt(1 + s * s), torch.full((xs.shape[0],), t))
        xs = xs - s * eps if tp < 0 else xs + 2 * (math.sqrt(sp) - math.sqrt(s)) * math.sqrt(s) * eps
    return xs, ts


def dpmpp_2m_unguarded(eps_fn, x_T, ab, steps, generator):
    """DPM-Solver++(2M) (Lu et al. 2022) on linspace timesteps with its levels in float32, as a float32 pipeline
    keeps them, dividing by the last step's length h_prev without a guard: correct at order 2 wherever the levels
    are distinct in float32; on levels equal to 15 digits h_prev = 0 and the result is NaN (diffusers' multistep
    schedulers do the same)."""
    T = len(ab)
    ts = linspace_t(T, steps) + [-1]
    xs = x_T * math.sqrt(1 + sigma_of(ab, ts[0]) ** 2)
    old = h_last = None
    f32 = lambda t: float(torch.tensor(sigma_of(ab, t), dtype=torch.float32))
    for t, tp in zip(ts, ts[1:]):
        s, sp = f32(t), f32(tp)
        d = xs - s * eps_fn(xs / math.sqrt(1 + s * s), torch.full((xs.shape[0],), t))
        if tp < 0:
            xs = d
            break
        h = math.log(s / sp)
        ratio = torch.tensor(h, dtype=torch.float64) / (2 * h_last) if old is not None else None  # inf when h_last = 0
        dd = d if old is None else (1 + ratio) * d - ratio * old
        xs = (sp / s) * xs - math.expm1(-h) * dd
        old, h_last = d, h
    return xs / math.sqrt(1 + sigma_of(ab, ts[-1]) ** 2), ts


def failed(rep) -> set[str]:
    return {r.name for r in rep.failures}


def test_the_report_names_every_row():
    rep = check_sampler(from_callable(make_ddim(), order=1), **FAST)
    assert rep.passed, rep.table()
    assert [r.name for r in rep.rows] == [n for n in ROWS if n not in ("distribution", "flow map")]
    assert rep.row("efficiency").passed and max(rep.efficiency.values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("told, why", [
    (lambda ts, i, T: max(ts[i] - 1, 0), "next to the reported level"),            # off by one timestep
    (lambda ts, i, T: max(ts[i + 1], 0), "never asked about the reported level"),  # the level it steps to
])
def test_a_model_told_another_level_than_the_state_is_caught_only_by_calls_at_levels(told, why):
    rep = check_sampler(from_callable(make_ddim(told=told), order=1), **FAST)
    assert failed(rep) == {"calls at levels"}, rep.table()
    assert why in rep.row("calls at levels").detail


def test_call_problems_accepts_stages_and_flags_near_misses():
    p = default_problem()
    run = Run(p.x_T, (999.0, 500.0, -1.0))
    mid = math.sqrt(p.sigma_at(999) * p.sigma_at(500))                 # a stage: the log-σ midpoint
    assert call_problems(p, run, [(999.0, p.sigma_at(999)), (None, mid), (500.0, p.sigma_at(500))]) == []
    near = call_problems(p, run, [(999.0, p.sigma_at(999)), (501.0, p.sigma_at(501))])
    assert len(near) == 2 and "t = 501" in near[0] and "never asked" in near[1]


def test_a_consistent_but_wasteful_sampler_is_caught_only_by_efficiency():
    rep = check_sampler(from_callable(euler_in_root_sigma, order=1), **FAST)
    assert failed(rep) == {"efficiency"}, rep.table()
    assert min(rep.efficiency.values()) > 4 and 0.65 <= rep.order <= 1.35


def test_the_references_converge_at_their_orders():
    p = default_problem(batch=4)
    grids = {n: [p.sigma_at(t) for t in linspace_t(1000, n)] + [0.0] for n in (16, 32)}
    exact = p.mixture.probability_flow(p.x_T, [grids[16][0], 0.0], rtol=1e-9, atol=1e-9)[-1]  # both grids: σ_999 -> 0
    for order, methods in REFERENCES.items():
        for name in methods:
            errs = [float((reference_solve(p.mixture, p.x_T, grids[n], name) - exact).norm(dim=1).mean()) for n in grids]
            assert math.log2(errs[0] / errs[1]) > order - 0.5, (name, errs)


def test_an_unguarded_multistep_on_repeated_levels_is_caught_only_by_duplicate_levels():
    rep = check_sampler(from_callable(dpmpp_2m_unguarded, order=2), **FAST)
    assert failed(rep) == {"duplicate levels"}, rep.table()
    assert "neither refused nor handled" in rep.row("duplicate levels").detail


def test_a_clear_refusal_of_repeated_levels_passes():
    def refusing(eps_fn, x_T, ab, steps, generator):
        if bool((ab[1:] / ab[:-1] > 1 - 1e-12).any()):
            raise ValueError("alphas_cumprod repeats a level")
        return dpmpp_2m_unguarded(eps_fn, x_T, ab, steps, generator)

    rep = check_sampler(from_callable(refusing, order=2), **FAST)
    assert rep.row("duplicate levels").passed and "refused" in rep.row("duplicate levels").detail, rep.table()
    dup = duplicate_schedule(default_problem())
    assert dup.sigma_at(999) == pytest.approx(default_problem().sigma_at(999), rel=1e-12)


def test_a_sampler_that_breaks_at_one_step_is_caught_only_by_edge_steps():
    rep = check_sampler(from_callable(make_ddim(one_step_bug=True), order=1), **FAST)
    assert failed(rep) == {"edge steps"}, rep.table()
    assert "steps=1: ZeroDivisionError" in rep.row("edge steps").detail


def test_the_full_T_is_an_edge_step():
    def breaks_at_T(eps_fn, x_T, ab, steps, generator):
        if steps == len(ab):
            return x_T * math.nan
        return make_ddim()(eps_fn, x_T, ab, steps, generator)

    rep = check_sampler(from_callable(breaks_at_T, order=1), steps=(12, 24), sweep=(), n_samples=300)
    assert failed(rep) == {"edge steps"} and "steps=1000" in rep.row("edge steps").detail, rep.table()


def make_ddpm(noise_scale: float = 1.0):
    """Ancestral DDPM (Ho et al. 2020 Algorithm 2, posterior variance) on linspace timesteps; ``noise_scale``
    multiplies the noise of every step but the last (1.1: the samples come out ~10 % too wide in variance)."""

    def ddpm(eps_fn, x_T, ab, steps, generator):
        T = len(ab)
        ts = linspace_t(T, steps) + [-1]
        x = x_T
        for t, tp in zip(ts, ts[1:]):
            a, ap = float(ab[t]), (float(ab[tp]) if tp >= 0 else 1.0)
            eps = eps_fn(x, torch.full((x.shape[0],), t))
            x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
            beta = 1 - a / ap
            x = (math.sqrt(ap) * beta * x0 + math.sqrt(a / ap) * (1 - ap) * x) / (1 - a)
            if tp >= 0:
                z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
                x = x + noise_scale * math.sqrt(beta * (1 - ap) / (1 - a)) * z
        return x, ts

    return ddpm


def test_a_ten_percent_too_wide_sampler_is_caught_only_by_the_calibrated_test():
    from toydiff.toy.metrics import energy_distance

    kw = dict(steps=(12,), sweep=(), edges=(1,), n_samples=1000)
    good = check_sampler(from_callable(make_ddpm()), **kw)
    bad = check_sampler(from_callable(make_ddpm(1.1)), **kw)
    assert good.passed and good.stochastic, good.table()
    assert failed(bad) == {"distribution"} and "too wide" in bad.row("distribution").detail, bad.table()
    # the kit's former test (energy distance within 2x the largest of four true-vs-true distances) passes it
    p, g = default_problem(), torch.Generator().manual_seed(3)
    x_T = torch.randn(1000, 2, dtype=torch.float64, generator=g)
    x0 = make_ddpm(1.1)(p.recorder().eps_fn, x_T, p.alphas_cumprod, 200, g)[0]
    truth = [p.mixture.sample(1000, g) for _ in range(5)]
    assert energy_distance(x0, truth[0]) <= 2 * max(energy_distance(b, truth[0]) for b in truth[1:])


def test_the_two_tests_are_calibrated_on_exact_samples():
    p, g = default_problem(), torch.Generator().manual_seed(0)
    zs = [log_density_z(p.mixture, p.mixture.sample(500, g), g) for _ in range(16)]  # N(0, 1) under the null
    assert abs(sum(zs) / len(zs)) < 0.75 and 0.5 < (sum(z * z for z in zs) / len(zs)) ** 0.5 < 1.6
    assert log_density_z(p.mixture, 1.3 * p.mixture.sample(500, g), g) < -3          # too wide: lower density
    assert energy_permutation_p(p.mixture.sample(200, g), p.mixture.sample(200, g), g) > ALPHA / 2
    assert energy_permutation_p(p.mixture.sample(200, g) + 1.0, p.mixture.sample(200, g), g) <= ALPHA / 2


def test_rows_a_timeout_skipped_say_so():
    import time

    def slow_after_first(eps_fn, x_T, ab, steps, generator):
        if steps != 12:
            time.sleep(30)
        return make_ddim()(eps_fn, x_T, ab, steps, generator)

    rep = check_sampler(from_callable(slow_after_first, order=1), steps=(12, 24), sweep=(), timeout=0.3)
    assert not rep.row("runs").passed and "timeout after 0.3 s" in rep.row("runs").detail, rep.table()
    assert {r.name for r in rep.rows} >= {"runs", "calls at levels", "edge steps", "duplicate levels"}
    assert "timed out" in rep.row("duplicate levels").detail and rep.row("duplicate levels").passed is None
