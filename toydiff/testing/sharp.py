"""The rows of :func:`toydiff.testing.check_sampler` beyond convergence: calls at levels, efficiency, duplicate
levels and edge steps (what each checks: :mod:`toydiff.testing.levels`, :mod:`toydiff.testing.reference`).

**efficiency**: a sampler that claims order p (or, claiming none, whose fitted order rounds to p) is run against
the kit's reference methods of order p on *its own* levels from the same x_T (:mod:`toydiff.testing.reference`:
1 Euler ≡ DDIM; 2 Heun and DPM-Solver++(2M); 3 Kutta's RK3 and Adams–Bashforth 3). Its pathwise error may be at
most ``EFFICIENCY_FACTOR`` times the *largest* reference error, at every step count. Why 4: on the default problem
the correct samplers measured (toydiff's four ODE methods on every spacing, k-diffusion's euler / heun / dpm_2 /
dpmpp_2m / lms, diffusers' DDIM / Euler / Heun / LMS / DPM-Solver multistep and singlestep / UniPC) sit at
ratios 0.2–3.0 (3.0: DPM-Solver singlestep, whose stage timesteps count as its levels); consistent but wasteful
ones at 10 and more (Euler in the variance-exploding time σ², 10–17). ``bench/kit_efficiency.py`` prints them.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from toydiff.testing.levels import call_problems, duplicate_schedule, run_sigmas
from toydiff.testing.oracle import Problem, pf_ode
from toydiff.testing.properties import path_problems
from toydiff.testing.protocol import Run
from toydiff.testing.reference import REFERENCES, reference_solve
from toydiff.testing.runner import Attempt, Runner

__all__ = ["EFFICIENCY_FACTOR", "calls_row", "efficiency_ratios", "efficiency_row", "duplicate_row", "edge_row",
           "path_error"]

EFFICIENCY_FACTOR = 4.0


class ExactPaths:
    """The exact probability-flow solutions from ``problem.x_T`` between two levels, each solved once per
    (mixture, x_T, σ_start, σ_end to 12 digits): one ``pf_ode`` costs ~0.5 s at the kit's tolerance."""

    def __init__(self):
        self._cache: dict[tuple, torch.Tensor] = {}

    def __call__(self, problem: Problem, sigma_start: float, sigma_end: float) -> torch.Tensor:
        key = (id(problem.mixture), problem.x_T.data_ptr(), f"{sigma_start:.11e}", f"{sigma_end:.11e}")
        if key not in self._cache:
            self._cache[key] = pf_ode(problem, problem.x_T, sigma_start, sigma_end)
        return self._cache[key]


def path_error(x0: torch.Tensor, exact: torch.Tensor) -> float:
    """Mean over the batch of ‖x_0 − exact‖ (``[B, *event]`` each)."""
    diff = x0.detach().cpu().to(torch.float64) - exact
    return float(diff.reshape(diff.shape[0], -1).norm(dim=1).mean())


def calls_row(problem: Problem, attempts: dict[int, Attempt], stochastic: bool | None):
    """``(passed, detail)`` of 'calls at levels' over the runs ``attempts`` (step count -> attempt)."""
    if stochastic:
        return None, "stochastic sampler (noise injection, EDM churn, may move the state off its grid)"
    done = {n: a for n, a in attempts.items() if a.run is not None}
    if done and all(n > 1 and len(run_sigmas(problem, a.run) or ()) == 2 for n, a in done.items()):
        return None, "the sampler reports only the ends of its path (its inner levels are its own: adaptive / fast)"
    wrong = {n: call_problems(problem, a.run, a.calls) for n, a in done.items()}
    wrong = {n: w for n, w in wrong.items() if w}
    if not attempts or all(a.run is None for a in attempts.values()):
        return None, "no run finished"
    if not wrong:
        calls = sum(len(a.calls) for a in attempts.values())
        return True, f"{calls} calls at steps {sorted(attempts)}: each at a reported level or a stage inside an interval"
    n = min(wrong)
    return False, f"steps={n}: {wrong[n][0]}" + (f" (and {len(wrong[n]) - 1} more)" if len(wrong[n]) > 1 else "") + \
        f"; wrong at steps {sorted(wrong)}"


def _reference_order(claimed: float | None, fitted: float | None) -> int | None:
    order = claimed if claimed is not None else fitted
    if order is None or not order >= 0.5:
        return None
    return int(min(3, max(1, round(order))))


def efficiency_ratios(problem: Problem, runs: dict[int, Run], errors: dict[int, float], order: int,
                      exact_paths: ExactPaths) -> dict[int, float]:
    """Step count -> the sampler's pathwise error over the largest error of the order-``order`` references on the
    same levels (from the same x_T)."""
    out = {}
    for n, run in runs.items():
        sig = run_sigmas(problem, run)
        if n not in errors or sig is None:
            continue
        exact = exact_paths(problem, sig[0], sig[-1])
        ref = max(path_error(reference_solve(problem.mixture, problem.x_T, sig, m), exact) for m in REFERENCES[order])
        out[n] = errors[n] / max(ref, 1e-12)
    return out


def efficiency_row(problem: Problem, runs: dict[int, Run], errors: dict[int, float], claimed, fitted,
                   exact_paths: ExactPaths):
    """``(passed, detail, ratios)`` of 'efficiency' (module docstring)."""
    order = _reference_order(claimed, fitted)
    if order is None:
        return None, "no order claimed or fitted (>= 0.5)", {}
    ratios = efficiency_ratios(problem, runs, errors, order, exact_paths)
    if not ratios:
        return None, "no pathwise errors to compare", {}
    names = " and ".join(REFERENCES[order])
    shown = ", ".join(f"{n}: {r:.2f}" for n, r in sorted(ratios.items()))
    worst = max(ratios.values())
    return worst <= EFFICIENCY_FACTOR, (f"error / worst order-{order} reference ({names}) on the same levels by steps "
                                        f"{shown} (needs <= {EFFICIENCY_FACTOR:g})"), ratios


def _near_data(problem: Problem, x0: torch.Tensor) -> float:
    """The share of samples within 6 std (Mahalanobis) of a component of the data."""
    d2 = problem.mixture.mahalanobis_sq(x0.detach().cpu().to(torch.float64).reshape(x0.shape[0], -1))
    return float((d2.min(dim=1).values <= 36.0).double().mean())


def duplicate_row(runner: Runner, problem: Problem, n: int, seed: int, stochastic: bool | None, order: int | None,
                  exact_paths: ExactPaths, plain_ratio: float = 0.0):
    """``(passed, detail)`` of 'duplicate levels': the run at ``n`` steps on :func:`duplicate_schedule`; handled
    means within ``EFFICIENCY_FACTOR`` of the reference, or within 2x the sampler's own worst ratio on the plain
    schedule (``plain_ratio``: a wasteful sampler is the efficiency row's finding, not this one's)."""
    dup = duplicate_schedule(problem)
    got = runner.attempt(dup, dup.x_T, n, seed)
    if got.skipped:
        return None, "not run: an earlier run timed out"
    refused = got.raised is not None and issubclass(got.raised, (ValueError, TypeError)) and not got.in_model
    if refused and not got.bad:
        return True, f"refused: {got.error}"
    if got.in_model:
        return False, f"neither refused nor handled: the model got what it refuses ({got.error})"
    if got.run is None:
        return False, f"neither refused (ValueError / TypeError) nor handled: {got.error}"
    sig = run_sigmas(dup, got.run)
    repeats = 0 if sig is None else sum(abs(a - b) <= 1e-12 * a for a, b in zip(sig, sig[1:]))
    if stochastic or sig is None:
        share = _near_data(dup, got.run.x0)
        return share >= 0.9, (f"handled at steps={n} ({repeats} repeated levels): {share:.0%} of the samples within 6 "
                              "std of a data component (needs 90%)")
    err = path_error(got.run.x0, exact_paths(dup, sig[0], sig[-1]))
    ratio = efficiency_ratios(dup, {n: got.run}, {n: err}, order or 1, exact_paths).get(n, math.inf)
    limit = max(EFFICIENCY_FACTOR, 2 * plain_ratio)
    return ratio <= limit, (f"handled at steps={n} ({repeats} repeated levels): |x_0 - ODE| {err:.2e}, "
                            f"{ratio:.3g} x the order-{order or 1} reference (needs <= {limit:.3g})")


def _edge_problem(runner: Runner, problem: Problem, n: int, seed: int, stochastic: bool | None) -> str | None:
    """What is wrong with the run at ``n`` steps (None if nothing): 1 and 2 steps on the exact oracle (batch of
    ``problem``), the full T on the zero denoiser (batch 2: at T only the plan and the arithmetic matter)."""
    full = n == problem.schedule.T
    x_T = problem.x_T[:2].clone() if full else problem.x_T
    got = runner.attempt(problem, x_T, n, seed, cheap=full)
    if got.bad:
        return f"steps={n}: called at t = {got.bad[0]:g}, outside [0, {problem.schedule.T - 1}]"
    if got.run is None:
        return None if got.skipped else got.error
    wrong = path_problems(problem, got.run)
    if wrong:
        return f"steps={n}: {wrong[0]}"
    if stochastic and not full and n > 1:
        share = _near_data(problem, got.run.x0)
        return None if share >= 0.9 else f"steps={n}: {share:.0%} of samples near the data (needs 90%)"
    return None


def edge_row(runner: Runner, problem: Problem, stochastic: bool | None, seed: int, edges: Sequence[int]):
    """``(passed, detail)`` of 'edge steps': each count of ``edges`` (default 1, 2 and T) finishes with a finite x_0
    of the right shape, asks the model only about t in [0, T − 1] and visits a valid path (module docstring of
    :mod:`toydiff.testing.levels`). Accuracy is not asked (Heun from σ = 157 in two steps is far off, and correct)."""
    T = problem.schedule.T
    counts = sorted({n for n in edges if n <= T})
    if not counts:
        return None, "no edge step counts asked for"
    found = [w for w in (_edge_problem(runner, problem, n, seed, stochastic) for n in counts) if w]
    if runner.timed_out is not None and not found:
        return None, "not checked: the sampler timed out"
    if found:
        return False, "; ".join(found)
    full = f" (T: zero denoiser)" if T in counts else ""
    return True, f"steps {', '.join(map(str, counts))} finished{full}: finite, valid paths, t in [0, {T - 1}]"
