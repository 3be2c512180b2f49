"""``check_sampler``: run a sampler on the exact oracle and report which properties hold.

Properties (one row each in :class:`Report`):

- **runs**: every run finishes within the time limit (``timeout``, default 60 s per run; a run anywhere over it
  fails this row) and returns finite ``x_0`` of the right shape;
- **denoiser t**: the denoiser is only asked about timesteps in ``[0, T - 1]`` (diffusers' trailing DDIM asks
  about t = −1 at some step counts);
- **timesteps**: the levels visited are strictly descending, free of duplicates and of negative t (but the
  final −1, the clean sample), start where the signal is drowned (SNR ᾱ/(1 − ᾱ) ≤ 1) and end at the clean
  sample — checked at every step count of ``steps`` and of ``sweep``;
- **calls at levels** (deterministic): every model call is at a level the run reports, or at a stage inside one
  of its intervals, and every reported level is called (:mod:`toydiff.testing.levels`);
- **determinism**: the same seed gives the same ``x_0``;
- **batch invariance** (deterministic samplers): a sample does not depend on the rest of its batch;
- **pathwise** (deterministic): the error against the exact probability-flow ODE solution
  (:func:`toydiff.testing.oracle.pf_ode`, from the sampler's own first level to its own last) shrinks as
  the step count grows, and **order**: the order fitted to it (slope of log error on log steps, over all step
  counts and over the finest pair, where an error floor shows first) matches the claimed one within
  ``order_tol``, or is at least ``min_order`` if none is claimed;
- **efficiency** (deterministic): the pathwise error is at most ``EFFICIENCY_FACTOR`` (4) times that of the
  kit's reference methods of the claimed order on the same levels (:mod:`toydiff.testing.sharp`);
- **distribution** (stochastic): ``n_samples`` samples at 4x the finest step count (at least 200) pass a calibrated
  two-sample test against the exact data (false-alarm rate <= 1 %; :mod:`toydiff.testing.twosample`);
- **clean end**: on near-point-mass data the last step lands on the data; **edge steps**: 1, 2 and the full T
  steps finish with valid paths; **duplicate levels**: on a schedule with repeated levels the sampler refuses
  clearly or stays accurate (:mod:`toydiff.testing.levels`).

Whose fault: the caller's bad arguments (``order=nan``, ``steps=[]``, a configuration the sampler refuses, a peer
library that fails to import) raise ValueError/TypeError before any run; whatever the sampler does wrong
(raises, NaN, wrong shape, too slow: :mod:`toydiff.testing.runner`) is a failed row with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from toydiff.checks import check_int, check_number
from toydiff.options import MAX_SEED
from toydiff.testing.adapters import as_sampler
from toydiff.testing.few_step import flow_map_row
from toydiff.testing.oracle import OracleCallError, Problem, default_problem
from toydiff.testing.properties import clean_end_row, distribution_row, distribution_steps, path_problems
from toydiff.testing.protocol import Run
from toydiff.testing.runner import DEFAULT_TIMEOUT, Runner, check_timeout
from toydiff.testing.sharp import ExactPaths, _reference_order, calls_row, duplicate_row, edge_row, efficiency_row

__all__ = ["ROWS", "Row", "Report", "check_sampler", "DEFAULT_STEPS", "DEFAULT_SWEEP", "DEFAULT_TIMEOUT"]

#: step counts of the pathwise check: none divides T = 1000, so a sampler that strides by T // steps while its
#: timesteps are spaced by T / steps (diffusers' DDIM) is off at every one of them
DEFAULT_STEPS = (12, 24, 48, 96)

#: step counts whose timesteps are checked besides ``steps``: every count to 64 and a few larger ones
DEFAULT_SWEEP = tuple(range(1, 65)) + (97, 103, 121, 127, 200, 251)


#: every row a report can hold, in the order they appear ('pathwise', 'order', 'efficiency' for deterministic
#: samplers, 'distribution' for stochastic ones)
ROWS = ("runs", "denoiser t", "timesteps", "calls at levels", "determinism", "batch invariance", "clean end",
        "edge steps", "pathwise", "order", "efficiency", "distribution", "duplicate levels", "flow map")


@dataclass(frozen=True)
class Row:
    """One property: ``passed`` is True, False, or None when it does not apply (``detail`` says why)."""

    name: str
    passed: bool | None
    detail: str


@dataclass
class Report:
    """What :func:`check_sampler` found: ``rows`` (named as :data:`ROWS`), the fitted ``order`` (None if not
    measured), the pathwise ``errors`` by step count, whether the sampler is ``stochastic`` and its ``efficiency``
    (step count -> error over the reference's). ``passed``: no row failed."""

    sampler: str
    rows: list[Row] = field(default_factory=list)
    order: float | None = None
    errors: dict[int, float] = field(default_factory=dict)
    stochastic: bool | None = None
    efficiency: dict[int, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed is not False for r in self.rows)

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row {name!r}; rows: {[r.name for r in self.rows]}")

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.passed is False]

    def table(self) -> str:
        """A plain-text table: property, PASS / FAIL / n/a, detail; then the verdict."""
        mark = {True: "PASS", False: "FAIL", None: "n/a"}
        width = max(len(r.name) for r in self.rows) if self.rows else 8
        lines = [f"check_sampler: {self.sampler}", f"{'property':<{width}}  result  detail"]
        lines += [f"{r.name:<{width}}  {mark[r.passed]:<6}  {r.detail}" for r in self.rows]
        verdict = "PASSED" if self.passed else f"FAILED ({', '.join(r.name for r in self.failures)})"
        return "\n".join(lines + [verdict])

    __str__ = table


def _sigma_path(problem: Problem, run: Run) -> tuple[float, float] | None:
    """The run's first and last σ (None if its timesteps are out of range; those are reported elsewhere)."""
    if run.sigmas is not None:
        return run.sigmas[0], run.sigmas[-1]
    try:
        return problem.sigma_at(run.timesteps[0]), problem.sigma_at(run.timesteps[-1])
    except OracleCallError:
        return None


def _pathwise(problem: Problem, runs: dict[int, Run], exact_paths: ExactPaths) -> dict[int, float]:
    """Mean over the batch of ‖x_0 − exact ODE solution‖ per step count (one ODE solve per distinct path)."""
    errors = {}
    for n, run in runs.items():
        ends = _sigma_path(problem, run)
        if ends is None:
            continue
        diff = run.x0.detach().cpu().to(torch.float64) - exact_paths(problem, *ends)
        errors[n] = float(diff.reshape(diff.shape[0], -1).norm(dim=1).mean())
    return errors


def _order_rows(errors: dict[int, float], claimed: float | None, order_tol: float, min_order: float):
    ns = sorted(errors)
    errs = [errors[n] for n in ns]
    shown = ", ".join(f"{n}: {e:.2e}" for n, e in zip(ns, errs))
    if len(ns) < 2:
        return None, [Row("pathwise", None, f"needs two step counts that ran ({shown or 'none'})")]
    shrinks = all(b < a for a, b in zip(errs, errs[1:])) and errs[-1] > 0
    logs = np.log(np.maximum(errs, 1e-300))
    fit = float(-np.polyfit(np.log(ns), logs, 1)[0])
    last = float(-(logs[-1] - logs[-2]) / (np.log(ns[-1]) - np.log(ns[-2])))  # the finest pair: where floors show
    rows = [Row("pathwise", shrinks, f"|x_0 - ODE| by steps {shown}" + ("" if shrinks else " (does not shrink)"))]
    slopes = f"fitted {fit:.2f}, finest pair {last:.2f}"
    if claimed is None:
        rows.append(Row("order", min(fit, last) >= min_order, f"{slopes} (no order claimed; needs >= {min_order:g})"))
    else:
        ok = max(abs(fit - claimed), abs(last - claimed)) <= order_tol
        rows.append(Row("order", ok, f"{slopes}; claimed {claimed:g} ± {order_tol:g}"))
    return fit, rows


def _runs_rows(runner: Runner, problem: Problem, steps: list[int], seed: int):
    """Run every step count: the attempts, the runs, the 'runs' row and the out-of-range calls."""
    attempts, runs, errors, bad = {}, {}, [], []
    for n in steps:
        got = attempts[n] = runner.attempt(problem, problem.x_T, n, seed)
        bad += [(n, v) for v in got.bad]
        if got.run is None:
            errors.append(got.error)
        else:
            runs[n] = got.run
    return attempts, runs, _runs_row(steps, errors), bad


def _runs_row(steps: list[int], errors: list[str]) -> Row:
    skipped = [e for e in errors if e.endswith("(an earlier run timed out)")]
    shown = [e for e in errors if e not in skipped]
    shown += [f"{len(skipped)} more not run after the timeout"] if skipped else []
    return Row("runs", not errors, "; ".join(shown) if errors else f"steps {list(steps)} all finished, x_0 finite")


def _seed_rows(runner: Runner, problem: Problem, n: int, seed: int, first: Run | None):
    """Determinism under a seed, stochasticity (another seed) and batch invariance, at ``n`` steps."""
    if first is None:
        return None, [Row("determinism", None, "the run failed")]
    again = runner.attempt(problem, problem.x_T, n, seed).run
    other = runner.attempt(problem, problem.x_T, n, seed + 1).run
    if runner.timed_out is not None:
        return None, [Row("determinism", None, "not checked: the sampler timed out")]
    same = again is not None and torch.equal(again.x0, first.x0)
    rows = [Row("determinism", same, f"seed {seed} twice at steps={n}: " + ("identical" if same else "differs"))]
    stochastic = other is not None and not torch.equal(other.x0, first.x0)
    if stochastic:
        return True, rows + [Row("batch invariance", None, "stochastic (seed-dependent) sampler")]
    half = max(1, problem.x_T.shape[0] // 2)
    part = runner.attempt(problem, problem.x_T[:half].clone(), n, seed).run
    if runner.timed_out is not None:
        return None, rows + [Row("batch invariance", None, "not checked: the sampler timed out")]
    gap = float((part.x0 - first.x0[:half]).abs().max()) if part is not None else math.inf
    scale = 1e-6 * (1.0 + float(first.x0.abs().max()))
    rows.append(Row("batch invariance", gap <= scale, f"first {half} of the batch alone: max |diff| {gap:.1e}"))
    return False, rows


def _timestep_rows(runner: Runner, problem: Problem, runs, steps, sweep, seed, bad: list) -> list[Row]:
    """'denoiser t' and 'timesteps' over the runs and the sweep (batch 2, cheap zero denoiser)."""
    problems = {n: path_problems(problem, r) for n, r in runs.items()}
    x2 = problem.x_T[:2].clone()
    for n in sorted(set(sweep) - set(steps)):
        if n > problem.schedule.T:
            continue
        got = runner.attempt(problem, x2, n, seed, cheap=True)
        bad += [(n, v) for v in got.bad]
        if got.run is not None:  # any other failure on the zero denoiser says nothing about timesteps
            problems[n] = path_problems(problem, got.run)
    bad_ns, bad_t = sorted({n for n, _ in bad}), sorted({v for _, v in bad})
    bad_row = Row("denoiser t", not bad, "all calls in [0, T-1]" if not bad else
                  f"called at t = {', '.join(f'{v:g}' for v in bad_t[:3])}, outside [0, {problem.schedule.T - 1}], "
                  f"at steps {bad_ns[:12]}" + (f" and {len(bad_ns) - 12} more" if len(bad_ns) > 12 else ""))
    wrong = {n: p for n, p in problems.items() if p}
    checked = len(problems)
    detail = (f"{checked} step counts fine" if not wrong else
              f"{len(wrong)} of {checked} step counts wrong, e.g. steps={min(wrong)}: {wrong[min(wrong)][0]}"
              f" (all: {sorted(wrong)[:12]})")
    return [bad_row, Row("timesteps", not wrong, detail)]


def _check_args(steps, sweep, order, order_tol, min_order, seed, n_samples, problem, timeout, edges) -> dict:
    """The caller's arguments, checked (a ValueError/TypeError naming the argument), as check_sampler uses them."""
    if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
        raise TypeError(f"steps must be a sequence of step counts, got {type(steps).__name__} {steps!r}")
    steps = sorted({check_int(n, "steps", min=1) for n in steps})
    if not steps:
        raise ValueError("steps must hold at least one step count (two for the order), got none")
    if isinstance(sweep, (str, bytes)) or not hasattr(sweep, "__iter__"):
        raise TypeError(f"sweep must be a sequence of step counts, got {type(sweep).__name__} {sweep!r}")
    if order is not None and not check_number(order, "order", min=0.0) > 0:
        raise ValueError(f"order must be a positive number (or None: the sampler's own claim), got {order!r}")
    if problem is not None and not isinstance(problem, Problem):
        raise TypeError(f"problem must be a toydiff.testing.Problem, got {type(problem).__name__}")
    if edges is not None and (isinstance(edges, (str, bytes)) or not hasattr(edges, "__iter__")):
        raise TypeError(f"edges must be a sequence of step counts or None, got {type(edges).__name__} {edges!r}")
    return dict(edges=None if edges is None else tuple(sorted({check_int(n, "edges", min=1) for n in edges})), steps=steps, sweep=sorted({check_int(n, "sweep", min=1) for n in sweep}), order=order,
                order_tol=check_number(order_tol, "order_tol", min=0.0),
                min_order=check_number(min_order, "min_order", min=0.0),
                seed=check_int(seed, "seed", min=0, max=MAX_SEED), n_samples=check_int(n_samples, "n_samples", min=10),
                timeout=check_timeout(timeout))


def check_sampler(sampler, steps: Sequence[int] = DEFAULT_STEPS, *, order: float | None = None,
                  problem: Problem | None = None, seed: int = 0, sweep: Sequence[int] = DEFAULT_SWEEP,
                  order_tol: float = 0.35, min_order: float = 0.8, n_samples: int = 2000,
                  timeout: float | None = DEFAULT_TIMEOUT, edges: Sequence[int] | None = None, **config) -> Report:
    """Run ``sampler`` on the exact oracle ``problem`` (default :func:`~toydiff.testing.oracle.default_problem`)
    at each step count of ``steps`` and report every property (module docstring).

    Args:
        sampler: a :class:`KitSampler`, a plain-protocol callable, or a spec (``"toydiff:heun"``,
            ``"diffusers:DDIMScheduler"``, ``"k-diffusion:sample_euler"``) configured by ``config``.
        steps: step counts for the pathwise error and order; the run at the fewest is repeated for determinism
            and batch invariance, the clean-end check runs at the most.
        order: the claimed convergence order, > 0 (default: the sampler's own claim, ``KitSampler.order``).
        sweep: more step counts whose visited timesteps alone are checked (zero denoiser, batch 2).
        n_samples: samples for the distribution check of a stochastic sampler.
        timeout: seconds one sampler run may take (None: no limit); a run over it fails the 'runs' row with
            "timeout after N s", the sampler is not run again and the rows it did not get to say "timed out"
            (:mod:`toydiff.testing.runner`: how).
        edges: the step counts of the 'edge steps' row (default None: 1, 2 and the schedule's full T).
    Returns:
        a :class:`Report` (``.passed``, ``.order``, ``.table()``).
    Raises:
        ValueError / TypeError: the caller's bad arguments or configuration (never the sampler's misbehaviour,
        which is a failed row).
    """
    a = _check_args(steps, sweep, order, order_tol, min_order, seed, n_samples, problem, timeout, edges)
    runner = Runner(as_sampler(sampler, **config), a["timeout"])
    problem = problem if problem is not None else default_problem(seed=a["seed"])
    steps, seed = a["steps"], a["seed"]
    claimed = a["order"] if a["order"] is not None else runner.sampler.order
    diffusion = runner.sampler.family == "diffusion"  # few-step samplers: judged by the flow map, not an order
    rep = Report(runner.sampler.name)
    attempts, runs, runs_row, bad = _runs_rows(runner, problem, steps, seed)
    rep.stochastic, seed_rows = _seed_rows(runner, problem, steps[0], seed, runs.get(steps[0]))
    rep.rows += [runs_row] + _timestep_rows(runner, problem, runs, steps, a["sweep"], seed, bad)
    rep.rows += [Row("calls at levels", *calls_row(problem, attempts, rep.stochastic))] + seed_rows
    rep.rows.append(Row("clean end", *clean_end_row(runner, problem, steps[-1], seed)))
    edges = ((1, 2, problem.schedule.T) if diffusion else (1, 2)) if a["edges"] is None else a["edges"]
    rep.rows.append(Row("edge steps", *edge_row(runner, problem, rep.stochastic, seed, edges)))
    exact_paths = ExactPaths()
    if rep.stochastic:
        ok, detail = distribution_row(runner, problem, distribution_steps(steps[-1], problem.schedule.T),
                                      a["n_samples"], seed)
        rep.rows += [Row("pathwise", None, "stochastic sampler"), Row("distribution", ok, detail)]
    elif rep.stochastic is False and diffusion:
        rep.errors = _pathwise(problem, runs, exact_paths)
        rep.order, rows = _order_rows(rep.errors, claimed, a["order_tol"], a["min_order"])
        ok, detail, rep.efficiency = efficiency_row(problem, runs, rep.errors, claimed, rep.order, exact_paths)
        rep.rows += rows + [Row("efficiency", ok, detail)]
    rep.rows.append(Row("duplicate levels", *duplicate_row(
        runner, problem, steps[min(1, len(steps) - 1)], seed, rep.stochastic, _reference_order(claimed, rep.order),
        exact_paths, max(rep.efficiency.values(), default=0.0))) if diffusion else
        Row("duplicate levels", None, f"n/a: a {runner.sampler.family} sampler"))
    if runner.sampler.family == "few-step":  # consistency / flow-map samplers: toydiff.testing.few_step
        rep.rows.append(Row("flow map", *flow_map_row(runner, problem, seed, deterministic=rep.stochastic is False)))
    if runner.timed_out is not None:  # a timeout outside the main runs still fails 'runs'
        rep.rows = _after_timeout(rep.rows, runs_row, runner.timed_out)
    return rep


def _after_timeout(rows: list[Row], runs_row: Row, message: str) -> list[Row]:
    """The rows once a run timed out: 'runs' fails naming it, a row whose run was skipped says 'timed out'."""
    out = []
    for r in rows:
        if r is runs_row and r.passed:
            r = Row("runs", False, f"{runs_row.detail}; but {message}")
        elif r.passed is None and "timed out" not in r.detail and "timeout" in message and r.name != "runs" \
                and ("not run" in r.detail or "earlier run" in r.detail):
            r = Row(r.name, None, f"timed out: {r.detail}")
        out.append(r)
    return out
