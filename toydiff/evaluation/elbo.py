"""The discrete-time variational bound, term by term (Ho et al. 2020, "Denoising Diffusion Probabilistic Models",
Eq. 5; Sohl-Dickstein et al. 2015):

    −log p_θ(x_0) ≤ L_prior + Σ_{t=1}^{T−1} L_t + L_0      (steps 0-based: x_t has ᾱ_t, the data sits at "t = −1")

- L_prior = KL(q(x_{T−1} | x_0) ‖ N(0, I)), closed form;
- L_t = E KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t)) for t ≥ 1: both Gaussians, with means μ̃ and
  μ_θ = (x_t − β_t/√(1−ᾱ_t) ε̂)/√α_t, so μ̃ − μ_θ = β_t/(√α_t √(1−ᾱ_t)) (ε̂ − ε) and
  L_t = β_t² / (2 σ_t² α_t (1 − ᾱ_t)) E‖ε − ε̂(x_t, t)‖² + (D/2)(β̃_t/σ_t² − 1 − log(β̃_t/σ_t²)),
  with σ_t² = β̃_t (``variance="posterior"``; the last bracket is 0) or β_t (``"beta"``);
- L_0 = E[−log N(x_0; x̂_0(x_0step), v I)] with v = (1 − ᾱ_0)/ᾱ_0, the spread of x_0 given the first noised
  step, a Gaussian decoder for continuous data: L_0 = (D/2) log(2π v) + ½ E‖ε − ε̂(x, 0)‖² (can be negative:
  a density, not a probability).

Each L_t is a closed-form function of ε̂, so a model's and the oracle's terms compare step by step; the oracle's
(E‖ε − ε*‖² is the Bayes floor at t) are the smallest any ε̂ can reach, and model − oracle = weight_t · E‖ε* − ε̂‖²
is where the model loses likelihood. Monte Carlo over the given data x_0 and ε from ``generator``; nats per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from toydiff.checks import check_choice, check_int, check_tensor
from toydiff.processes.registry import as_process
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["ELBOTerms", "elbo_terms", "elbo_weights", "VARIANCES"]

VARIANCES = ("posterior", "beta")


@dataclass(frozen=True)
class ELBOTerms:
    """The bound's terms, nats per sample: ``per_t[t]`` ``[T]`` is L_t (``per_t[0]`` the decoder L_0), with its
    Monte Carlo standard error ``stderr`` ``[T]``; ``prior`` is L_prior. ``total`` = prior + Σ per_t ≥ −E log p."""

    per_t: torch.Tensor
    stderr: torch.Tensor
    prior: float

    @property
    def total(self) -> float:
        return self.prior + float(self.per_t.sum())


def _schedule_of(process) -> NoiseSchedule:
    """The discrete schedule of ``process`` (a :class:`~toydiff.processes.vp.VPProcess` or a NoiseSchedule, via
    :func:`~toydiff.processes.registry.as_process`); a TypeError naming ``schedule`` for anything else."""
    try:
        schedule = as_process(process).schedule
    except (TypeError, ValueError) as e:
        raise TypeError(f"schedule must be a NoiseSchedule or a process with one (VPProcess): {e}") from None
    if schedule is None:
        raise TypeError(f"schedule: the discrete-time ELBO needs a process with a schedule, got the "
                        f"{process.name!r} process")
    return schedule


def elbo_weights(schedule, variance: str = "posterior") -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [T], const [T])`` with L_t = weight_t · E‖ε − ε̂‖² + const_t · D (step 0: the decoder's);
    ``schedule``: a NoiseSchedule or a process object with one (VPProcess)."""
    check_choice(variance, "variance", VARIANCES)
    schedule = _schedule_of(schedule)
    b, ab = schedule.betas, schedule.alpha_bars
    ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
    post = b * (1 - ab_prev) / (1 - ab)  # β̃_t (0 at t = 0)
    var = post if variance == "posterior" else b
    ratio = torch.where(var > 0, post / var.clamp_min(1e-300), torch.ones_like(var))
    weight = b**2 / (2 * var.clamp_min(1e-300) * (1 - b) * (1 - ab))
    const = 0.5 * (ratio - 1 - ratio.log())
    v0 = float((1 - ab[0]) / ab[0])
    weight[0], const[0] = 0.5, 0.5 * math.log(2 * math.pi * v0)
    return weight, const


def elbo_terms(eps_fn: Callable, x0: torch.Tensor, schedule, *, variance: str = "posterior",
               generator: torch.Generator | None = None, batch: int = 65536) -> ELBOTerms:
    """Every term of the bound for the denoiser ``eps_fn(x_t [B, *event], t LongTensor [B])`` on data ``x0 [N, *event]``
    under ``schedule``, a NoiseSchedule or a process object with one (:class:`~toydiff.processes.vp.VPProcess`).

    Each step draws one ε per data point (from ``generator``); pass the same generator seed to a model and its
    oracle to score them on the very same (x_0, ε) draws. ``batch`` bounds the points per ``eps_fn`` call.
    """
    check_tensor(x0, "x0", min_ndim=2)
    if not callable(eps_fn):
        raise TypeError(f"eps_fn must be callable, got {type(eps_fn).__name__}")
    check_int(batch, "batch", min=1)
    schedule = _schedule_of(schedule)
    weight, const = elbo_weights(schedule, variance)
    N, D, T = x0.shape[0], math.prod(x0.shape[1:]), schedule.T
    xd, ab = x0.detach().double(), schedule.alpha_bars
    per_chunk = max(1, batch // N)
    means, errs = [], []
    for ts in torch.arange(T).split(per_chunk):
        m = ts.numel()
        t = ts.repeat_interleave(N)
        x = xd.repeat(m, *([1] * (x0.ndim - 1)))
        eps = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        a = ab[t].reshape(-1, *([1] * (x0.ndim - 1)))
        x_t = a.sqrt() * x + (1 - a).sqrt() * eps
        with torch.no_grad():
            eps_hat = eps_fn(x_t.to(x0.dtype), t).double()
        se = ((eps - eps_hat) ** 2).reshape(m, N, D).sum(-1)  # [m, N]
        terms = weight[ts][:, None] * se + (const[ts] * D)[:, None]
        means.append(terms.mean(1))
        errs.append(terms.std(1) / math.sqrt(N) if N > 1 else torch.zeros(m, dtype=torch.float64))
    abT = float(ab[-1])
    prior = 0.5 * (abT * (xd**2).reshape(N, D).sum(1) + D * ((1 - abT) - 1 - math.log(1 - abT)))
    return ELBOTerms(torch.cat(means), torch.cat(errs), float(prior.mean()))
