"""The per-run property checks of :func:`toydiff.testing.check_sampler`: visited levels and distributions.

A run's visited levels must descend strictly from a level where the data are drowned to the clean sample;
a stochastic sampler's samples must pass a calibrated two-sample test against the exact data distribution
(:mod:`toydiff.testing.twosample`).
"""

from __future__ import annotations

import torch

from toydiff.exact.mixture import GaussianMixture
from toydiff.testing.oracle import Problem
from toydiff.testing.protocol import Run
from toydiff.testing.runner import Runner
from toydiff.testing.twosample import two_sample_test

__all__ = ["path_problems", "distribution_row", "distribution_steps", "clean_end_row", "sharp_mixture"]


def _show(path) -> str:
    vals = [f"{v:g}" for v in path]
    return "[" + ", ".join(vals if len(vals) <= 8 else vals[:3] + ["..."] + vals[-4:]) + "]"


def path_problems(problem: Problem, run: Run) -> list[str]:
    """What is wrong with the levels ``run`` visited (empty if nothing): descending, distinct, non-negative
    but for the final clean −1, starting at SNR ≤ 1, ending clean."""
    if run.timesteps is not None:
        ts, clean, name = list(run.timesteps), -1.0, "t"
    else:
        ts, clean, name = list(run.sigmas), 0.0, "sigma"
    if not ts:
        return ["no timesteps reported"]
    out = []
    if len(set(ts)) < len(ts):
        out.append(f"duplicate {name} in {_show(ts)}")
    if any(b >= a for a, b in zip(ts, ts[1:])):
        out.append(f"{name} not strictly descending: {_show(ts)}")
    if run.timesteps is not None and any(v < 0 for v in ts[:-1]):
        out.append(f"negative t before the end: {_show(ts)}")
    if ts[-1] != clean:
        out.append(f"ends at {name} = {ts[-1]:g}, not the clean sample ({name} = {clean:g})")
    try:
        sigma0 = problem.sigma_at(ts[0]) if run.timesteps is not None else ts[0]
    except ValueError:
        out.append(f"starts outside the schedule: {name} = {ts[0]:g}")
    else:
        if sigma0 < 1.0:  # SNR = 1/σ² > 1: the start keeps more signal than noise
            out.append(f"starts at {name} = {ts[0]:g} where SNR = {sigma0 ** -2 if sigma0 else float('inf'):.3g} > 1")
    return out


def distribution_row(runner: Runner, problem: Problem, steps: int, n: int, seed: int):
    """``(passed, detail)``: ``n`` samples at ``steps`` against the exact data distribution by the calibrated
    two-sample test of :mod:`toydiff.testing.twosample` (false-alarm rate <= 1 %); ``(None | False, why)`` when
    the run was skipped after a timeout or failed."""
    g = torch.Generator().manual_seed(seed + 7919)
    x_T = torch.randn(n, problem.mixture.D, dtype=torch.float64, generator=g)
    got = runner.attempt(problem, x_T, steps, seed)
    if got.run is None:
        return (None if got.skipped else False), f"n={n}: {got.error}"
    ok, detail = two_sample_test(problem.mixture, got.run.x0, seed + 7920)
    return ok, f"steps={steps}, {detail}"


def distribution_steps(steps: int, T: int) -> int:
    """The step count of the distribution check: ``DISTRIBUTION_STEPS_FACTOR`` times the finest pathwise count,
    at least ``DISTRIBUTION_MIN_STEPS``, at most T (a correct ancestral sampler's O(1/N) bias in the variance is
    then below what the test detects: DDIM η = 1 at 96 steps has z ≈ 3, at 384 ≈ 0.8)."""
    return min(T, max(DISTRIBUTION_STEPS_FACTOR * steps, DISTRIBUTION_MIN_STEPS))


DISTRIBUTION_STEPS_FACTOR = 4
DISTRIBUTION_MIN_STEPS = 200


#: the component standard deviation of :func:`sharp_mixture`, and how many of them a sample may sit from one
SHARP_STD = 1e-4
SHARP_RADIUS = 6.0


def sharp_mixture(dim: int) -> GaussianMixture:
    """Two narrow components (std ``SHARP_STD``) at ±1.5 on the first axis, in ``dim`` dimensions."""
    means = torch.zeros(2, dim, dtype=torch.float64)
    means[:, 0] = torch.tensor([-1.5, 1.5])
    return GaussianMixture.diagonal([0.5, 0.5], means, SHARP_STD)


def clean_end_row(runner: Runner, problem: Problem, steps: int, seed: int, n: int = 64):
    """``(passed, detail)``: on :func:`sharp_mixture` data every correct sampler's last step returns (close to) the
    exact x̂_0, which sits within a few component stds of a mode; fresh noise added on the last step (or a final
    state left short of the clean sample) lands ``n`` samples off the modes. Passes when at least 90 % are within
    ``SHARP_RADIUS`` stds (Mahalanobis) of a component. A run that fails (raises, NaN, wrong shape, timeout)
    fails it; one skipped after an earlier timeout is ``None``."""
    g = torch.Generator().manual_seed(seed + 104729)
    x_T = torch.randn(n, problem.mixture.D, dtype=torch.float64, generator=g)
    sharp = Problem(problem.schedule, sharp_mixture(problem.mixture.D), x_T)
    got = runner.attempt(sharp, x_T, steps, seed)
    if got.run is None:
        return (None if got.skipped else False), f"did not run on the sharp data: {got.error}"
    dist = sharp.mixture.mahalanobis_sq(got.run.x0.detach().cpu().to(torch.float64)).min(dim=1).values.sqrt()
    share = float((dist <= SHARP_RADIUS).double().mean())
    off = float(dist.median()) * SHARP_STD
    hint = "" if share >= 0.9 else (f"; sigma at t=0 is {problem.sigma_at(0):.2g}: a run ending there, not at the clean "
                                    "sample, or noise added on the last step, lands this far off")
    return share >= 0.9, (f"data with std {SHARP_STD:g}: {share:.0%} of {n} samples within {SHARP_RADIUS:g} std of a "
                          f"mode at steps={steps} (median distance {off:.2g}; needs 90%){hint}")
