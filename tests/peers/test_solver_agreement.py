"""toydiff's solvers of issue 25 against the peers' implementations on the same levels (the same integer timesteps,
the same σ), the same starting noise and, for the stochastic ones, the same noise draws: max |diff| ≤ 1e-6.

The model is the exact mixture: ε* for toydiff and diffusers (at integer t), the exact x̂_0 = x̃ − σ ε* for
k-diffusion (at σ). Noise: toydiff draws N(0, I) from its generator once per step that adds noise; the peers are fed
the same draws (k-diffusion's ``noise_sampler``, diffusers' ``variance_noise``; k-diffusion's ``sample_heun``, which
has no noise sampler, from torch's global generator seeded alike inside ``fork_rng``). diffusers' schedules are
float32: after ``set_timesteps`` the scheduler's ``sigmas`` are replaced by toydiff's float64 σ at the same
timesteps, so both run the same algorithm on the same levels (``DPMSolverMultistepScheduler`` still does its
update in float32: gaps of 2e-7..6e-7 there, 1e-14 and below elsewhere). Skipped without the peers.
"""

import math

import pytest
import torch

import toydiff as td
from toydiff.testing.adapters import k_diffusion_sampling

diffusers = pytest.importorskip("diffusers")
try:
    K = k_diffusion_sampling()
except ImportError:
    pytest.skip("k-diffusion is not installed", allow_module_level=True)

S = td.schedules.linear(T=1000)
GM = td.GaussianMixture.diagonal([0.3, 0.5, 0.2], [[-1.5, 0.5], [1.5, 1.0], [0.0, -1.5]],
                                 [[0.8, 1.0], [1.0, 0.7], [0.9, 0.9]])
X_T = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
TOL = 1e-6


def levels(schedule, steps, spacing):
    """The integer timesteps of ``steps`` respaced steps and their Karras σ followed by 0, float64."""
    ts = [int(t) for t in schedule.respace(steps, spacing).timesteps]
    return ts, torch.tensor([float(schedule.sigmas[t]) for t in ts] + [0.0], dtype=torch.float64)


def k_model(schedule=S):
    """k-diffusion's model D(x̃; σ): the exact x̂_0 of the mixture at continuous σ."""
    def denoise(xs, sigma):
        ab = 1.0 / (1.0 + sigma.to(torch.float64) ** 2)
        return xs - sigma[:, None] * GM.eps_star(xs * ab.sqrt()[:, None], ab)
    return denoise


def k_run(fn, sigmas, **kw):
    """A k-diffusion sampler from X_T (VP) scaled to x̃ at σ_0; returns x_0."""
    return fn(k_model(), X_T * math.sqrt(1.0 + float(sigmas[0]) ** 2), sigmas, disable=True, **kw)


def draws(seed):
    """k-diffusion's noise_sampler drawing what toydiff's generator (seeded alike) draws, in the same order."""
    g = torch.Generator().manual_seed(seed)
    return lambda sigma, sigma_next: torch.randn(X_T.shape, generator=g, dtype=torch.float64)


def ours(method, ts, seed=0, schedule=S, **kw):
    return td.sample(GM.eps_fn(schedule), X_T, schedule, method=method, steps=ts,
                     generator=torch.Generator().manual_seed(seed), **kw)


def diffusers_run(cls, ts, sigmas, seed=None, **config):
    """A diffusers scheduler's own loop on toydiff's levels (float64 σ) with the exact ε*; ``seed``: the noise each
    step needs, drawn as toydiff draws it and passed as ``variance_noise``."""
    sched = cls(num_train_timesteps=S.T, trained_betas=S.betas.numpy(), **config)
    sched.set_timesteps(len(ts))
    sched.timesteps, sched.sigmas = torch.tensor(ts), sigmas.clone()
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    x = X_T.clone()
    for t in ts:
        eps = GM.eps_fn(S)(x, torch.full((x.shape[0],), t))
        extra = {} if g is None else {"variance_noise": torch.randn(x.shape, generator=g, dtype=torch.float64)}
        x = sched.step(eps, t, x, return_dict=False, **extra)[0]
    return x


@pytest.mark.parametrize("steps", [9])
def test_dpmpp_3m_is_k_diffusions_3m_sde_at_eta_zero(steps):
    ts, sig = levels(S, steps, "logsnr")
    gap = (ours("dpm++3m", ts) - k_run(K.sample_dpmpp_3m_sde, sig, eta=0.0, noise_sampler=draws(0))).abs().max()
    assert gap < TOL


def test_dpmpp_3m_is_diffusers_third_order_multistep():
    # solver_type="heun": the second-order warm-up step k-diffusion's 3M makes (diffusers' default "midpoint" makes
    # another); lower_order_final=False: below 15 steps diffusers would lower the penultimate step's order too
    # (its last step, to σ = 0, is first order either way, as toydiff's). Measured gap 5.7e-7 (float32 update).
    ts, sig = levels(S, 10, "logsnr")
    theirs = diffusers_run(diffusers.DPMSolverMultistepScheduler, ts, sig, solver_order=3, solver_type="heun",
                           algorithm_type="dpmsolver++", lower_order_final=False)
    assert (ours("dpm++3m", ts) - theirs).abs().max() < TOL


@pytest.mark.parametrize("steps,spacing", [(8, "logsnr"), (9, "linspace")])
def test_unipc_is_diffusers_unipc_bh2(steps, spacing):
    ts, sig = levels(S, steps, spacing)
    theirs = diffusers_run(diffusers.UniPCMultistepScheduler, ts, sig, solver_type="bh2", predict_x0=True,
                           solver_order=2)
    assert (ours("unipc", ts) - theirs).abs().max() < TOL


def test_euler_ancestral_is_k_diffusions_with_the_same_noise():
    ts, sig = levels(S, 10, "linspace")
    gap = (ours("euler-ancestral", ts, seed=3) - k_run(K.sample_euler_ancestral, sig, noise_sampler=draws(3))).abs()
    assert gap.max() < TOL


def test_dpmpp_2m_sde_is_k_diffusions_midpoint_with_the_same_noise():
    ts, sig = levels(S, 10, "logsnr")
    theirs = k_run(K.sample_dpmpp_2m_sde, sig, eta=1.0, solver_type="midpoint", noise_sampler=draws(4))
    assert (ours("dpm++2m-sde", ts, seed=4) - theirs).abs().max() < TOL


def test_dpmpp_2m_sde_is_diffusers_sde_dpmsolver_pp():
    ts, sig = levels(S, 10, "logsnr")
    theirs = diffusers_run(diffusers.DPMSolverMultistepScheduler, ts, sig, seed=4, solver_order=2,
                           algorithm_type="sde-dpmsolver++")
    assert (ours("dpm++2m-sde", ts, seed=4) - theirs).abs().max() < TOL  # measured 2.8e-7: diffusers' float32 update


def geometric_schedule(T=200, sigma_min=0.01, sigma_max=80.0):
    """A schedule whose σ grid is geometric, σ_j = σ_min q^j: a churn 1 + γ = q^3 lands exactly on σ_{j+3}, so toydiff's
    grid-rounded σ̂ is k-diffusion's continuous one."""
    sig = torch.logspace(math.log10(sigma_min), math.log10(sigma_max), T, dtype=torch.float64)
    ab = 1.0 / (1.0 + sig**2)
    betas = 1.0 - ab / torch.cat([ab.new_ones(1), ab[:-1]])
    return td.NoiseSchedule(betas), float(sig[1] / sig[0])


def test_edm_churn_is_k_diffusions_heun_with_churn():
    s, q = geometric_schedule()
    ts = [int(t) for t in torch.linspace(s.T - 4, 0, 7).round()]
    sig = torch.tensor([float(s.sigmas[t]) for t in ts] + [0.0], dtype=torch.float64)
    churn = (q**3 - 1.0) * len(ts)  # γ = s_churn / N = q^3 - 1: σ̂ = σ_{t+3} at every step
    mine = td.sample(GM.eps_fn(s), X_T, s, method="edm", steps=ts, s_churn=churn, s_noise=1.003,
                     generator=torch.Generator().manual_seed(5))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)  # sample_heun draws randn_like(x) per step from the global generator
        theirs = k_run(K.sample_heun, sig, s_churn=churn, s_noise=1.003)
    assert (mine - theirs).abs().max() < TOL
    assert (mine - ours("heun", ts, schedule=s)).abs().max() > 1e-2, "the churn must change the samples"


def test_edm_without_churn_is_k_diffusions_heun():
    ts, sig = levels(S, 7, "linspace")
    assert (ours("edm", ts) - k_run(K.sample_heun, sig)).abs().max() < TOL
