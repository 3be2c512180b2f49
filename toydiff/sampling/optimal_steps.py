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
from typing import Callable, Sequence

import torch

from toydiff.checks import check_choice, check_int, check_number, check_tensor
from toydiff.exact.flow_map import flow_map, resolve
from toydiff.processes.interpolants import Interpolant
from toydiff.processes.schedules import NoiseSchedule
from toydiff.sampling.flow_steps import FLOW_METHODS, FLOW_REGISTRY, sample_interpolant, time_grid
from toydiff.sampling.loop import METHODS, REGISTRY, sample

__all__ = ["OptimalSteps", "optimal_steps", "steps_error", "exact_targets", "start_draws", "search_draws",
           "fixed_levels"]

#: the fixed spacings a search may start from (``leading`` does not start at T − 1, so it is not among them)
START_SPACINGS = ("linspace", "trailing", "karras", "logsnr")
#: over an interpolant: uniform times and SD3's shift 3 (Esser et al. 2024), on a table of FLOW_TABLE + 1 times
FLOW_SPACINGS = {"uniform": None, "shift 3": 3.0}
FLOW_TABLE = 4096


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


@dataclass(frozen=True)
class _Space:
    """Where the levels live: indices into a table of log-SNR ``lam [K]`` that falls with the index. The first
    level is fixed at ``top``; free levels lie in ``[lo, top − 1]``; ``value`` turns an index into the level a
    sampler is given (a VP step, an interpolant's time)."""

    process: object
    lam: torch.Tensor
    top: int
    lo: int
    value: Callable[[int], float]
    spacings: tuple[str, ...]


def _space_of(process) -> _Space:
    proc = resolve(process)
    if isinstance(proc, NoiseSchedule):
        return _Space(proc, proc.log_snr, proc.T - 1, 0, int, START_SPACINGS)
    taus = torch.linspace(0.0, 1.0, FLOW_TABLE + 1, dtype=torch.float64)
    return _Space(proc, proc.log_snr(taus), FLOW_TABLE, 1, lambda j: j / FLOW_TABLE, tuple(FLOW_SPACINGS))


def _check_method(method: str, space: _Space) -> str:
    vp = isinstance(space.process, NoiseSchedule)
    check_choice(method, "method", METHODS if vp else FLOW_METHODS)
    if vp and REGISTRY[method].order is None:
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
    """Φ(x_T) ``[B, D]`` from the noisy end (VP step T − 1, interpolant time 1) to the clean end: where every
    sampler started there from ``x_T`` should land."""
    proc = _space_of(process).process
    x_T = check_tensor(x_T, "x_T", min_ndim=2)
    if isinstance(proc, NoiseSchedule):
        return flow_map(gm, x_T, proc.T - 1, -1, proc)
    return flow_map(gm, x_T, 1.0, 0.0, proc)


def _run(gm, proc, method: str, levels: list, x_T: torch.Tensor) -> torch.Tensor:
    if isinstance(proc, NoiseSchedule):
        return sample(gm.eps_fn(proc), x_T, proc, method=method, steps=[int(t) for t in levels])
    return sample_interpolant(gm.velocity_fn(proc), x_T, proc, method=method, times=[*map(float, levels), 0.0])


def steps_error(gm, process, method: str, timesteps: Sequence, x_T: torch.Tensor,
                exact: torch.Tensor | None = None) -> float:
    """The pathwise error (module docstring) of ``method`` on the levels ``timesteps`` from ``x_T`` ``[B, D]``.

    ``timesteps``: VP steps from T − 1 (the clean end −1 implied), or interpolant times from 1 (the clean end 0
    implied). ``exact`` (``[B, D]``, :func:`exact_targets`) is computed when not given; pass it to reuse one solve.
    """
    space = _space_of(process)
    _check_method(method, space)
    levels = list(timesteps)
    if not levels or levels[0] != space.value(space.top):
        raise ValueError(f"timesteps must start at the noisy end {space.value(space.top)} (x_T ~ N(0, I) is that "
                         f"level's marginal), got {tuple(levels)[:3]}...")
    x = _run(gm, space.process, method, levels, x_T.double())
    exact = exact_targets(gm, space.process, x_T) if exact is None else exact
    std = gm.covariance().diagonal().sqrt().reshape(1, -1)
    return float(((x.double() - exact.double()) / std).pow(2).mean().sqrt())


def fixed_levels(process, n_steps: int) -> dict[str, tuple]:
    """The fixed grids a search is compared with, ``{name: levels}`` in :func:`steps_error`'s form: VP steps of
    linspace / trailing / karras / logsnr, or an interpolant's uniform and shift-3 times (the clean end implied)."""
    proc = _space_of(process).process
    if isinstance(proc, NoiseSchedule):
        return {s: tuple(proc.respace(n_steps, s).timesteps) for s in START_SPACINGS}
    return {name: time_grid(n_steps, shift=shift)[:-1] for name, shift in FLOW_SPACINGS.items()}


def _spacing(space: _Space, name: str, n_steps: int) -> tuple[int, ...]:
    proc = space.process
    if isinstance(proc, NoiseSchedule):
        return tuple(proc.respace(n_steps, name).timesteps)
    grid = time_grid(n_steps, shift=FLOW_SPACINGS[name])[:-1]  # the clean end is implied
    idx = [min(max(round(t * FLOW_TABLE), space.lo), space.top) for t in grid]
    for j in range(len(idx) - 2, -1, -1):  # strictly descending after snapping to the table
        idx[j] = max(idx[j], idx[j + 1] + 1)
    return tuple(idx)


def _start_levels(space: _Space, n_steps: int, start, score) -> tuple[int, ...]:
    """The search's first levels (table indices): a spacing name, ``"best"`` (the best of ``space.spacings`` by
    ``score``) or an explicit strictly descending sequence of levels from the noisy end."""
    if isinstance(start, str):
        names = space.spacings if start == "best" else (check_choice(start, "start", space.spacings + ("best",)),)
        return min((_spacing(space, s, n_steps) for s in names), key=score)
    if isinstance(space.process, NoiseSchedule):
        ts = tuple(space.process.respace(list(start)).timesteps)  # checks ints, range and strict descent
    else:
        ts = tuple(round(check_number(t, "start", min=0.0, max=1.0) * FLOW_TABLE) for t in start)
    if len(ts) != n_steps or ts[0] != space.top or any(a <= b for a, b in zip(ts, ts[1:])) or ts[-1] < space.lo:
        raise ValueError(f"start must hold n_steps = {n_steps} strictly descending levels from the noisy end "
                         f"{space.value(space.top)}, got {tuple(start)}")
    return ts


def _moved(lam: torch.Tensor, ts: list[int], i: int, delta: float, lo_end: int) -> int:
    """Level ``i`` moved by ``delta`` in λ (λ falls with the index, so +δ is towards the clean end): the nearest
    table index strictly between its neighbours; one over when rounding lands back on the level itself."""
    hi = ts[i - 1] - 1
    lo = ts[i + 1] + 1 if i + 1 < len(ts) else lo_end
    if lo > hi:
        return ts[i]
    target = float(lam[ts[i]]) + delta
    t = int((lam[lo:hi + 1] - target).abs().argmin()) + lo
    if t == ts[i]:
        t += -1 if delta > 0 else 1
    return min(max(t, lo), hi)


def _compass(score, space: _Space, first: tuple[int, ...], budget: int, tol: float) -> list[int]:
    """Compass search (module docstring) from ``first``, at most ``budget`` distinct evaluations of ``score``."""
    lam, ts, best = space.lam, list(first), score(first)
    gaps = [float(lam[b] - lam[a]) for a, b in zip(first, first[1:])]
    gaps = [g for g in gaps if math.isfinite(g)]
    delta = 0.5 * sum(gaps) / len(gaps) if gaps else 1.0
    while delta >= tol and score.count() < budget:
        improved = False
        for i in range(1, len(ts)):
            for sign in (1.0, -1.0):
                t = _moved(lam, ts, i, sign * delta, space.lo)
                if t == ts[i] or score.count() >= budget:
                    continue
                trial = ts[:i] + [t] + ts[i + 1:]
                e = score(trial)
                if e < best:
                    ts, best, improved = trial, e, True
                    break
        if not improved:
            delta /= 2
    return ts


class _Score:
    """The pathwise error of table-index levels on fixed draws, memoised (``count()``: distinct evaluations)."""

    def __init__(self, gm, space: _Space, method: str, x_T: torch.Tensor):
        self.gm, self.space, self.method, self.x_T = gm, space, method, x_T
        self.exact = exact_targets(gm, space.process, x_T)
        self.cache: dict[tuple[int, ...], float] = {}

    def count(self) -> int:
        return len(self.cache)

    def __call__(self, idx: Sequence[int]) -> float:
        key = tuple(idx)
        if key not in self.cache:
            levels = [self.space.value(j) for j in key]
            self.cache[key] = steps_error(self.gm, self.space.process, self.method, levels, self.x_T, self.exact)
        return self.cache[key]


def optimal_steps(gm, process, method: str, n_steps: int, *, n: int = 256, seed: int = 0, start="best",
                  max_evaluations: int = 400, tol: float = 1e-3) -> OptimalSteps:
    """The ``n_steps`` levels that minimise ``method``'s exact pathwise error on ``gm`` (module docstring).

    Args:
        gm: a :class:`~toydiff.exact.mixture.GaussianMixture` (the oracle: ε*, the velocity and the exact flow map).
        process: a :class:`NoiseSchedule`, an :class:`Interpolant` or a process object (VP or interpolant).
        method: a deterministic method: of :data:`toydiff.sampling.loop.METHODS` (ddim, euler, heun, dpm++2m) over a
            schedule, of :data:`toydiff.sampling.flow_steps.FLOW_METHODS` over an interpolant.
        n_steps: the budget N of levels (``2 <= N``, ``<= T`` for a schedule); one level has nothing to optimise.
        n, seed: the search's draws x_T ``[n, D]`` (:func:`search_draws`); judge the result on other draws.
        start: ``"best"`` (the best fixed spacing on these draws: linspace / trailing / karras / logsnr for a
            schedule, ``FLOW_SPACINGS`` for an interpolant), one of those names, or explicit levels from the noisy end.
        max_evaluations: the most sampler runs the search makes; tol: the smallest λ move (δ) it tries.

    Returns:
        an :class:`OptimalSteps` (VP steps, or interpolant times with the clean end 0 implied); its ``error`` is
        never above ``start_error``.
    """
    space = _space_of(process)
    method = _check_method(method, space)
    n_steps = check_int(n_steps, "n_steps", min=2, max=space.top)
    max_evaluations = check_int(max_evaluations, "max_evaluations", min=1)
    tol = check_number(tol, "tol", min=1e-12)
    score = _Score(gm, space, method, search_draws(gm, n, seed))
    first = _start_levels(space, n_steps, start, score)
    ts = _compass(score, space, first, max_evaluations, tol)
    return OptimalSteps(tuple(space.value(j) for j in ts), score(ts), tuple(space.value(j) for j in first),
                        score(first), score.count(), tuple(float(space.lam[j]) for j in ts))
