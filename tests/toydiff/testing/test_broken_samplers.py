"""Samplers written from scratch on the kit's plain protocol: one correct DDIM / DDPM, and deliberately broken
variants of them, each carrying one bug a real sampler has had."""

import math

import torch


def _timesteps(T: int, steps: int, trailing: bool = False) -> list[int]:
    if trailing:  # round(T - i T / steps) - 1: starts at T - 1, ends at T / steps - 1 (Lin et al. 2024)
        return [round(T - i * T / steps) - 1 for i in range(steps)]
    return [round((T - 1) * (steps - 1 - i) / (steps - 1)) for i in range(steps)] if steps > 1 else [T - 1]


def make_ddim(*, sign=-1.0, t_shift=0, stride_bug=False, extra_t=False):
    """DDIM (Song et al. 2021 eq. 12, η = 0) with optional bugs: ``sign=+1`` (x̂_0 with the wrong sign),
    ``t_shift`` (the model is told t + shift, clamped to [0, T-1]), ``stride_bug`` (diffusers-like: the state
    moves by T // steps while the timesteps are linspace), ``extra_t`` (a final t = -1 step at every step count)."""

    def ddim(eps_fn, x_T, alphas_cumprod, steps, generator):
        T = len(alphas_cumprod)
        ts = _timesteps(T, steps) + ([-1] if extra_t else [])
        x = x_T
        for i, t in enumerate(ts):
            t_prev = t - T // steps if stride_bug else (ts[i + 1] if i + 1 < len(ts) else -1)
            ab = float(alphas_cumprod[t])
            ab_prev = float(alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
            told = t if t < 0 else min(max(t + t_shift, 0), T - 1)  # t = -1 goes to the model, as in diffusers
            eps = eps_fn(x, torch.full((x.shape[0],), told))
            x0 = (x + sign * math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
        return x, ts + [-1] if not extra_t else ts

    return ddim


def make_ddpm(*, last_noise=False):
    """Ancestral DDPM (Ho et al. 2020 Algorithm 2, posterior variance) between strided steps; ``last_noise``
    adds σ z on the final step too (trailing spacing, so that step starts at t = T / steps - 1; (the trailing-spacing bug of diffusers' DDPMScheduler)."""

    def ddpm(eps_fn, x_T, alphas_cumprod, steps, generator):
        T = len(alphas_cumprod)
        ts = _timesteps(T, steps, trailing=True)
        x = x_T
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            ab, ab_prev = float(alphas_cumprod[t]), float(alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
            eps = eps_fn(x, torch.full((x.shape[0],), t))
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            beta = 1 - ab / ab_prev
            mean = (math.sqrt(ab_prev) * beta * x0 + math.sqrt(ab / ab_prev) * (1 - ab_prev) * x) / (1 - ab)
            var = beta * (1 - ab_prev) / (1 - ab)
            if t_prev >= 0 or last_noise:
                var = var if t_prev >= 0 else beta  # the last step's would-be variance is 0; the bug uses beta
                mean = mean + math.sqrt(var) * torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = mean
        return x, ts + [-1]

    return ddpm


def make_heun(*, t_shift=0, skip_last=False):
    """Heun on the probability-flow ODE in x̃ = x/√ᾱ, σ = √((1 − ᾱ)/ᾱ) (Karras et al. 2022 Algorithm 1), linspace
    timesteps; bugs: ``t_shift`` (the model is told t + shift, clamped to [0, T-1]: an off-by-one timestep) or
    ``skip_last`` (an off-by-one loop bound: the final step to the clean sample is never taken)."""

    def heun(eps_fn, x_T, alphas_cumprod, steps, generator):
        T = len(alphas_cumprod)
        ts = _timesteps(T, steps) + [-1]
        sigma = lambda t: 0.0 if t < 0 else math.sqrt((1 - float(alphas_cumprod[t])) / float(alphas_cumprod[t]))
        model = lambda xs, t: eps_fn(xs / math.sqrt(1 + sigma(t) ** 2),
                                     torch.full((xs.shape[0],), min(max(t + t_shift, 0), T - 1)))
        xs = x_T * math.sqrt(1 + sigma(ts[0]) ** 2)
        for t, t_prev in list(zip(ts, ts[1:]))[: -1 if skip_last else None]:
            d = model(xs, t)
            x_next = xs + (sigma(t_prev) - sigma(t)) * d
            if t_prev >= 0:
                x_next = xs + (sigma(t_prev) - sigma(t)) * 0.5 * (d + model(x_next, t_prev))
            xs = x_next
        end = ts[-2] if skip_last else -1
        return xs / math.sqrt(1 + sigma(end) ** 2), ts[:-1] if skip_last else ts

    return heun


# --- the kit catches each bug, and passes the correct samplers ------------------------------------------------

import pytest  # noqa: E402

from toydiff.testing import assert_converges, check_sampler, from_callable  # noqa: E402

FAST = dict(steps=(12, 24, 48), sweep=range(1, 9), n_samples=500, edges=(1, 2))  # the timesteps of 1..8 steps too: enough for these bugs


def failed(rep) -> set[str]:
    return {r.name for r in rep.failures}


def test_correct_samplers_written_from_scratch_pass_with_their_order():
    ddim = assert_converges(from_callable(make_ddim(), "ddim"), order=1, **FAST)
    heun = assert_converges(from_callable(make_heun(), "heun"), order=2, **FAST)
    assert 0.8 <= ddim.order <= 1.2 and 1.8 <= heun.order <= 2.4
    assert heun.errors[48] < ddim.errors[48] / 10  # second order beats first at the same steps
    ddpm = check_sampler(from_callable(make_ddpm(), "ddpm"), **FAST)
    assert ddpm.passed and ddpm.stochastic and ddpm.row("distribution").passed, ddpm.table()


def test_wrong_sign_of_the_noise_term_is_caught():
    rep = check_sampler(from_callable(make_ddim(sign=+1.0)), **FAST)
    assert {"pathwise", "order", "clean end"} <= failed(rep), rep.table()


@pytest.mark.parametrize("shift", [-1, 1])
def test_off_by_one_timestep_given_to_the_model_is_caught(shift):
    rep = check_sampler(from_callable(make_heun(t_shift=shift), order=2), **FAST)
    assert {"order", "calls at levels"} <= failed(rep) <= {"order", "pathwise", "clean end", "calls at levels"}, rep.table()


def test_off_by_one_loop_that_never_reaches_the_clean_sample_is_caught():
    rep = check_sampler(from_callable(make_heun(skip_last=True), order=2), **FAST)
    assert {"timesteps", "clean end"} <= failed(rep), rep.table()
    assert "not the clean sample" in rep.row("timesteps").detail


def test_noise_added_on_the_last_step_is_caught():
    good = check_sampler(from_callable(make_ddpm()), **FAST)
    bad = check_sampler(from_callable(make_ddpm(last_noise=True)), **FAST)
    assert good.row("clean end").passed and not bad.row("clean end").passed, bad.table()


def test_first_order_update_labelled_second_order_is_caught():
    rep = check_sampler(from_callable(make_ddim(), order=2), **FAST)
    assert failed(rep) == {"order"} and "claimed 2" in rep.row("order").detail
    with pytest.raises(AssertionError, match="order"):
        assert_converges(from_callable(make_ddim()), order=2, **FAST)


def test_diffusers_like_stride_bug_is_caught():
    rep = check_sampler(from_callable(make_ddim(stride_bug=True), order=1), **FAST)
    assert "order" in failed(rep), rep.table()


def test_a_step_to_t_minus_one_is_caught_at_the_step_counts_where_it_happens():
    rep = check_sampler(from_callable(make_ddim(extra_t=True)), **FAST)
    assert {"runs", "denoiser t"} <= failed(rep)
    assert "t = -1" in rep.row("denoiser t").detail
