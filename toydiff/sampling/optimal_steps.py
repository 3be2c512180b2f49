"""Optimal sampling steps from the exact oracle, in the spirit of Align Your Steps (Sabour et al. 2024).

For a Gaussian mixture the exact probability-flow map Φ_{T−1→clean} (:func:`toydiff.exact.flow_map.flow_map`) is
known, so the error a deterministic sampler makes on a grid of N levels can be measured exactly: run the sampler
from x_T ~ N(0, I) on the levels t_0 = T−1 > t_1 > ... > t_{N−1} ≥ 0 (the last step lands on the clean sample) and
compare with Φ(x_T) from the same x_T. The **pathwise error** is

    E(t_1, ..., t_{N−1}) = sqrt( mean_{b, d} ((x̂_0[b, d] − Φ(x_T)[b, d]) / std_d)² )

in units of the data's per-coordinate standard deviation (the number
:func:`toydiff.evaluation.few_step.pathwise_error` gives). :func:`optimal_steps` minimises it over the N − 1 free
integer levels by a compass (pattern) search in log-SNR λ = log(ᾱ / (1 − ᾱ)): each level in turn moves by ±δ in λ
to the nearest integer step strictly between its neighbours (so the levels stay strictly descending by
construction), a move is kept only if it lowers E, and δ halves when a sweep keeps nothing. The search starts from
the best fixed spacing (or the one given), so its result is never worse than that start on the draws it saw; its
draws are quasi-random (:func:`search_draws`), and everything is seeded and deterministic. Align Your Steps
minimises a KL bound with a learned model; here the exact map makes the pathwise error itself the objective. The
first level stays at T − 1: x_T ~ N(0, I) is that step's marginal, and a later start would sample a different x_T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from toydiff.checks import check_choice, check_int, check_number, check_tensor
from toydiff.exact.flow_map import flow_map, resolve
from toydiff.processes.schedules import SPACINGS, NoiseSchedule
from toydiff.sampling.loop import METHODS, REGISTRY, sample

__all__ = ["OptimalSteps", "optimal_steps", "steps_error", "exact_targets", "start_draws", "search_draws"]

#: the fixed spacings a search may start from (``leading`` does not start at T − 1, so it is not among them)
START_SPACINGS = ("linspace", "trailing", "karras", "logsnr")


@dataclass(frozen=True)
class OptimalSteps:
    """What :func:`optimal_steps` found.

    Attributes:
        timesteps: the N optimised levels, strictly descending, ``timesteps[0] = T − 1`` (pass as ``steps=``).
        error: the pathwise error at ``timesteps`` on the search's draws (data standard deviations).
        start, start_error: the levels the search started from and their pathwise error on the same draws.
        evaluations: how many sampler runs the search made.
        log_snr: λ = log(ᾱ / (1 − ᾱ)) at each level, ``[N]`` (float64).
    """

    timesteps: tuple[int, ...]
    error: float
    start: tuple[int, ...]
    start_error: float
    evaluations: int
    log_snr: tuple[float, ...]


def _schedule_of(process) -> NoiseSchedule:
    proc = resolve(process)
    if not isinstance(proc, NoiseSchedule):
        raise TypeError("process must be a VP schedule (NoiseSchedule or VPProcess): the optimised levels are its "
                        f"integer steps; got {type(process).__name__} (interpolants: not supported yet)")
    return proc


def _check_method(method: str) -> str:
    check_choice(method, "method", METHODS)
    if REGISTRY[method].order is None:
        deterministic = [k for k, v in REGISTRY.items() if v.order is not None]
        raise ValueError(f"method={method!r} is stochastic: its samples have no exact path to compare with; use one "
                         f"of {deterministic}")
    return method


def start_draws(gm, n: int, seed: int) -> torch.Tensor:
    """x_T ~ N(0, I), ``[n, D]`` float64, from ``torch.Generator().manual_seed(seed)``."""
    n, seed = check_int(n, "n", min=1), check_int(seed, "seed", min=0)
    return torch.randn(n, gm.D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def search_draws(gm, n: int, seed: int) -> torch.Tensor:
    """The search's x_T ``[n, D]`` float64: a scrambled Sobol sequence (Owen scrambling seeded by ``seed``) mapped
    through the normal quantile, a quasi-Monte Carlo N(0, I) sample. The pathwise error is dominated by the few x_T
    whose path passes between modes; QMC covers them evenly, so the search overfits its draws far less than with
    i.i.d. draws (judge the result on :func:`start_draws` of other seeds)."""
    n, seed = check_int(n, "n", min=1), check_int(seed, "seed", min=0)
    u = torch.quasirandom.SobolEngine(gm.D, scramble=True, seed=seed).draw(n, dtype=torch.float64)
    eps = 0.5 / n
    return torch.special.ndtri(u.clamp(eps, 1 - eps))


def exact_targets(gm, process, x_T: torch.Tensor) -> torch.Tensor:
    """Φ_{T−1→clean}(x_T) ``[B, D]``: where every sampler started at step T − 1 from ``x_T`` should land."""
    schedule = _schedule_of(process)
    return flow_map(gm, check_tensor(x_T, "x_T", min_ndim=2), schedule.T - 1, -1, schedule)


def steps_error(gm, process, method: str, timesteps: Sequence[int], x_T: torch.Tensor,
                exact: torch.Tensor | None = None) -> float:
    """The pathwise error (module docstring) of ``method`` on the levels ``timesteps`` from ``x_T`` ``[B, D]``.

    ``exact`` (``[B, D]``, :func:`exact_targets`) is computed when not given; pass it to reuse one exact solve.
    """
    schedule = _schedule_of(process)
    _check_method(method)
    ts = [int(t) for t in timesteps]
    if not ts or ts[0] != schedule.T - 1:
        raise ValueError(f"timesteps must start at T - 1 = {schedule.T - 1} (x_T ~ N(0, I) is that step's "
                         f"marginal), got {tuple(ts)[:3]}...")
    x = sample(gm.eps_fn(schedule), x_T.double(), schedule, method=method, steps=ts)
    exact = exact_targets(gm, schedule, x_T) if exact is None else exact
    std = gm.covariance().diagonal().sqrt().reshape(1, -1)
    return float(((x - exact.double()) / std).pow(2).mean().sqrt())


def _start_levels(schedule: NoiseSchedule, n_steps: int, start, score) -> tuple[int, ...]:
    """The search's first levels: a spacing name, ``"best"`` (the best of ``START_SPACINGS`` by ``score``) or an
    explicit strictly descending sequence starting at T − 1."""
    if isinstance(start, str):
        names = START_SPACINGS if start == "best" else (check_choice(start, "start", START_SPACINGS + ("best",)),)
        plans = [tuple(schedule.respace(n_steps, s).timesteps) for s in names]
        return min(plans, key=score)
    ts = tuple(schedule.respace(list(start)).timesteps)  # checks ints, range and strict descent
    if len(ts) != n_steps or ts[0] != schedule.T - 1:
        raise ValueError(f"start must hold n_steps = {n_steps} levels starting at T - 1 = {schedule.T - 1}, got {ts}")
    return ts


def _moved(lam: torch.Tensor, ts: list[int], i: int, delta: float) -> int:
    """Level ``i`` moved by ``delta`` in λ (λ falls with t, so +δ is towards t = 0): the nearest integer step
    strictly between its neighbours; one step over when rounding lands back on the level itself."""
    hi = ts[i - 1] - 1
    lo = ts[i + 1] + 1 if i + 1 < len(ts) else 0
    if lo > hi:
        return ts[i]
    target = float(lam[ts[i]]) + delta
    t = int((lam[lo:hi + 1] - target).abs().argmin()) + lo
    if t == ts[i]:
        t += -1 if delta > 0 else 1
    return min(max(t, lo), hi)


def optimal_steps(gm, process, method: str, n_steps: int, *, n: int = 256, seed: int = 0, start="best",
                  max_evaluations: int = 400, tol: float = 1e-3) -> OptimalSteps:
    """The ``n_steps`` levels that minimise ``method``'s exact pathwise error on ``gm`` (module docstring).

    Args:
        gm: a :class:`~toydiff.exact.mixture.GaussianMixture` (the oracle: ε* and the exact flow map).
        process: a :class:`NoiseSchedule` or a VP process object.
        method: a deterministic method of :data:`toydiff.sampling.loop.METHODS` (ddim, euler, heun, dpm++2m).
        n_steps: the budget N of levels (``2 <= N <= T``); a single level has nothing to optimise.
        n, seed: the search's draws x_T ``[n, D]`` (:func:`search_draws`); judge the result on other draws.
        start: ``"best"`` (the best of linspace / trailing / karras / logsnr on these draws), one of those names,
            or an explicit descending sequence of ``n_steps`` levels from T − 1.
        max_evaluations: the most sampler runs the search makes; tol: the smallest λ move (δ) it tries.

    Returns:
        an :class:`OptimalSteps`; its ``error`` is never above ``start_error``.
    """
    schedule, method = _schedule_of(process), _check_method(method)
    n_steps = check_int(n_steps, "n_steps", min=2, max=schedule.T)
    max_evaluations = check_int(max_evaluations, "max_evaluations", min=1)
    tol = check_number(tol, "tol", min=1e-12)
    x_T = search_draws(gm, n, seed)
    exact = exact_targets(gm, schedule, x_T)
    cache: dict[tuple[int, ...], float] = {}

    def score(ts: Sequence[int]) -> float:
        key = tuple(ts)
        if key not in cache:
            cache[key] = steps_error(gm, schedule, method, key, x_T, exact)
        return cache[key]

    first = _start_levels(schedule, n_steps, start, score)
    lam = schedule.log_snr
    ts, best = list(first), score(first)
    gaps = [float(lam[b] - lam[a]) for a, b in zip(first, first[1:])]
    delta = 0.5 * sum(gaps) / len(gaps)
    while delta >= tol and len(cache) < max_evaluations:
        improved = False
        for i in range(1, n_steps):
            for sign in (1.0, -1.0):
                t = _moved(lam, ts, i, sign * delta)
                if t == ts[i] or len(cache) >= max_evaluations:
                    continue
                trial = ts[:i] + [t] + ts[i + 1:]
                e = score(trial)
                if e < best:
                    ts, best, improved = trial, e, True
                    break
        if not improved:
            delta /= 2
    return OptimalSteps(tuple(ts), best, tuple(first), score(first), len(cache),
                        tuple(float(lam[t]) for t in ts))
