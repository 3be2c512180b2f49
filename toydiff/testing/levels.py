"""The kit's sharper properties on the levels a sampler visits: its model calls, repeated levels, edge step counts.

- **calls at levels** (:func:`call_problems`): a deterministic sampler asks the model only about the levels it
  reports (its path) or about stages inside one of its intervals, and about every level of its path but the clean
  end. A method that tells the model a level other than the one its state is at (an off-by-one timestep, the
  previous or the next level) converges at its order with a worse constant and passes ``order``; it fails here.
- **duplicate levels** (:func:`duplicate_schedule`): on a schedule whose ᾱ repeats to 15 digits over a block of
  timesteps (β = 1e-15 there, the least step a toydiff schedule accepts: exactly equal ᾱ are refused by
  :class:`~toydiff.processes.schedules.NoiseSchedule` itself), a sampler either refuses clearly (ValueError /
  TypeError) or handles it (a finite result as close to the exact ODE solution as ``efficiency`` allows); NaN, a
  crash of another kind or a silently wrong result fails. A multistep method dividing by the last step's length
  (DPM-Solver's r = h_prev / h) amplifies rounding by ~1e15 there.
- **edge steps**: 1 and 2 steps and the full T (every timestep) run, give finite samples near the data, and the
  full T is at least as close to the exact ODE solution as the finest of the pathwise step counts.

Levels are compared as Karras et al. 2022's σ (``Problem.sigma_at`` for timesteps); σ-space samplers report σ.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from toydiff.processes import schedules
from toydiff.testing.oracle import OracleCallError, Problem
from toydiff.testing.protocol import Run

__all__ = ["run_sigmas", "call_problems", "duplicate_schedule", "STAGE_BAND", "LEVEL_RTOL"]

#: a call strictly inside an interval of the path is a stage when it sits this far into it, as a fraction of the
#: interval in log σ (σ itself for the last interval, to σ = 0): midpoint / 2S / RK stages sit at 1/3 .. 2/3; a
#: call closer to a level than 20 % of the interval, but not on it, is a level mismatch (an off-by-one timestep)
STAGE_BAND = (0.2, 0.8)
#: how close (relative) a call's σ must be to a reported level to be "at" it: float32 timesteps of diffusers
#: land within 1e-5; one timestep moves σ by at least ~1 % on every schedule the kit draws
LEVEL_RTOL = 1e-4


def run_sigmas(problem: Problem, run: Run) -> list[float] | None:
    """The σ path of ``run`` (first to last), or None when its timesteps are outside the schedule."""
    if run.sigmas is not None:
        return [float(s) for s in run.sigmas]
    try:
        return [problem.sigma_at(t) for t in run.timesteps]
    except OracleCallError:
        return None


def _at(a: float, b: float) -> bool:
    """Whether σ ``a`` is the level ``b`` (to :data:`LEVEL_RTOL`); σ = ∞ (a flow path's pure-noise end) only equals
    itself."""
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= LEVEL_RTOL * max(abs(a), abs(b))


def _place(sig: list[float], s: float):
    """``("level", j)`` when ``s`` is the reported level j, ``("stage", i)`` inside interval i (in the stage band),
    ``("near", j)`` close to level j but not on it, ``("outside", None)`` beyond the path."""
    for j, level in enumerate(sig):
        if _at(s, level):
            return "level", j
    for i, (hi, lo) in enumerate(zip(sig, sig[1:])):
        if lo < s < hi:
            frac = (hi - s) / (hi - lo) if lo == 0 else math.log(hi / s) / math.log(hi / lo)
            if STAGE_BAND[0] <= frac <= STAGE_BAND[1]:
                return "stage", i
            return "near", (i if frac < 0.5 else i + 1)
    return "outside", None


def _show_level(problem: Problem, run: Run, sig: list[float], j: int) -> str:
    return f"t = {run.timesteps[j]:g}" if run.timesteps is not None else f"sigma = {sig[j]:.4g}"


def call_problems(problem: Problem, run: Run, calls: Sequence[tuple]) -> list[str]:
    """What is wrong with the model calls ``calls`` (``(t or None, σ)`` each, as the recorder logs them) of a run
    whose reported path is ``run`` (empty if nothing): every call at a reported level or at a stage inside an
    interval, every reported level but the last called."""
    sig = run_sigmas(problem, run)
    if sig is None or not sig:
        return []
    out, called = [], set()
    for k, (t, s) in enumerate(calls):
        kind, j = _place(sig, s)
        told = f"t = {t:g}" if t is not None else f"sigma = {s:.4g}"
        if kind == "level":
            called.add(j)
        elif kind == "near":
            out.append(f"call {k} asks about {told}, next to the reported level {_show_level(problem, run, sig, j)} "
                       "but not on it")
        elif kind == "outside":
            out.append(f"call {k} asks about {told}, outside the reported path "
                       f"sigma {sig[0]:.4g} .. {sig[-1]:.4g}")
    missed = [j for j in range(len(sig) - 1) if j not in called and sig[j] != sig[-1]]
    if missed:
        out.append(f"the model is never asked about the reported level {_show_level(problem, run, sig, missed[0])} "
                   f"(step {missed[0]} of {len(sig) - 1}; {len(missed)} level(s) in all)")
    return out


#: the block of timesteps (as fractions of T) whose β is ``DUPLICATE_BETA`` in :func:`duplicate_schedule`
DUPLICATE_BLOCK = (0.4, 0.6)
DUPLICATE_BETA = 1e-15


def duplicate_schedule(problem: Problem) -> Problem:
    """``problem`` with β_t = ``DUPLICATE_BETA`` for t in the middle fifth of the schedule (ᾱ and σ repeat there to
    15 digits) and the other β (but β_0) scaled so that ᾱ_{T−1} is unchanged: the noisiest and the cleanest level
    stay where they were, so the exact ODE path from x_T is the one of ``problem``. Every step count above ~5
    puts two levels in the block."""
    betas = problem.schedule.betas.clone()
    T = len(betas)
    block = torch.zeros(T, dtype=torch.bool)
    block[int(DUPLICATE_BLOCK[0] * T): int(DUPLICATE_BLOCK[1] * T)] = True
    free = ~block
    free[0] = False
    target = float(torch.log1p(-betas[1:]).sum()) - float(block.sum()) * math.log1p(-DUPLICATE_BETA)
    c = 1.0
    for _ in range(50):  # Newton on c: sum over the free steps of log(1 - c β) = target
        g = float(torch.log1p(-c * betas[free]).sum()) - target
        dg = float((-betas[free] / (1 - c * betas[free])).sum())
        c -= g / dg
        if abs(g) < 1e-15:
            break
    betas[free] = c * betas[free]
    betas[block] = DUPLICATE_BETA
    return Problem(schedules.from_betas(betas, name="repeated levels"), problem.mixture, problem.x_T)


def spread(problem: Problem) -> float:
    """A generous bound on how far a sample of any sensible sampler lands from the exact ODE solution: the data's
    diameter (largest distance between component means) plus 6 times their largest std."""
    mu = problem.mixture.means
    diam = float(torch.cdist(mu, mu).max()) if len(mu) > 1 else 0.0
    return diam + 6.0 * math.sqrt(float(torch.linalg.eigvalsh(problem.mixture.covs).max()))
