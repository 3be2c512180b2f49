"""Few-step generation judged against the exact probability-flow map of a Gaussian mixture.

Every few-step method (consistency models, Song et al. 2023, "Consistency Models"; shortcut models, Frans et al.
2024, "One Step Diffusion via Shortcut Models"; Mean Flows, Geng et al. 2025; an ODE solver at a small budget)
approximates one object, the flow map Φ_{t→s} (:func:`toydiff.exact.flow_map.flow_map`). On a Gaussian mixture
that map is exact, so a method's error is measured against the answer, not only against samples.

The protocol (:class:`FewStepMethod`): ``label``; ``process`` (the path its times live on: an interpolant or a
process object); ``sample(x_1, nfe, generator) -> x_0`` (``nfe`` network evaluations from pure noise, ``ValueError``
where that budget is not possible); ``jump(x_t, t, s) -> x_s`` (the method's move from t to s at its own budget,
one evaluation for a one-step method). Adapters:

- :class:`OracleSolver`: Euler / Heun / DPM-Solver++(2M) over the exact velocity (what a perfect diffusion model
  gives at that budget);
- :class:`RunSolver`: the same solvers over a trained flow run's velocity (the baselines: reflow, a distilled flow
  student; :meth:`RunSolver.of_run`);
- :class:`ExactMap`: Φ itself (the floor: error 0);
- :class:`ProcessMethod`: any process object with ``.sample(fn, x_T, steps=N, generator=g)`` and
  ``.jump(fn, x_t, t, s)`` plus its network ``fn`` (:meth:`ProcessMethod.of_run` takes a loaded toy run).

Metrics (all in units of the data's per-coordinate std, :func:`data_std`): :func:`pathwise_error` (RMS of x̂ − Φ
from the same start), :func:`jump_error_curves` (the RMS error of one jump x_t → 0 against t) and :func:`judge`
(per method and NFE: pathwise error, a distribution distance ± sd over seeds next to the two-sample floor, mode
coverage and off-mode share through the caller's ``modes``). Everything in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from toydiff.checks import check_choice, check_int, check_tensor
from toydiff.exact.flow_map import flow_map, resolve
from toydiff.processes.interpolants import Interpolant, time_tensor
from toydiff.sampling.flow_steps import flow_evaluations, sample_interpolant

__all__ = ["FewStepMethod", "OracleSolver", "RunSolver", "ExactMap", "ProcessMethod", "method_of_run", "SOLVERS",
           "solver_steps",
           "at_budgets", "run_label", "data_std", "pathwise_error", "marginal_draws", "exact_jumps",
           "jump_error_curves", "JudgeResult", "judge", "judge_table"]

#: the exact-oracle solvers and their labels
SOLVERS = {"euler": "Euler", "heun": "Heun (Karras)", "dpm++2m": "DPM++(2M)"}


@runtime_checkable
class FewStepMethod(Protocol):
    """What the judge needs of a few-step method (see the module docstring)."""

    label: str
    process: Any

    def sample(self, x_1: torch.Tensor, nfe: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_0 ``[B, *event]`` from noise ``x_1`` ``[B, *event]`` in ``nfe`` network evaluations."""

    def jump(self, x_t: torch.Tensor, t, s) -> torch.Tensor:
        """x_s ``[B, *event]`` from ``x_t`` at time ``t`` (scalar or ``[B]``), at the method's own budget."""


def solver_steps(method: str, nfe: int, interp: Interpolant) -> int | None:
    """The step count of an exact-oracle solver whose evaluation count is exactly ``nfe`` (None where none is)."""
    check_choice(method, "method", tuple(SOLVERS))
    nfe = check_int(nfe, "nfe", min=1)
    return next((k for k in range(1, nfe + 1) if flow_evaluations(method, k, interp) == nfe), None)


def _times(t, n: int, name: str) -> torch.Tensor:
    """Continuous times (a float or ``[B]``, in [0, 1]) as float64 ``[n]``."""
    tt = time_tensor(t, name)
    if tt.ndim == 0:
        return tt.expand(n)
    if tt.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape [B={n}], got {tuple(tt.shape)}")
    return tt


def _pairs(x: torch.Tensor, t, s) -> list[tuple[torch.Tensor, float, float]]:
    """Group the rows of ``x`` ``[B, ...]`` by their (t, s) pair: ``[(index [b], t, s)]``."""
    n = x.shape[0]
    tt, ss = _times(t, n, "t"), _times(s, n, "s")
    pairs, inv = torch.unique(torch.stack([tt, ss], 1), dim=0, return_inverse=True)
    return [((inv == g).nonzero().flatten(), float(a), float(b)) for g, (a, b) in enumerate(pairs.tolist())]


@dataclass
class OracleSolver:
    """An ODE solver (``method`` in :data:`SOLVERS`) over the exact velocity of ``gm`` on ``interp``
    (:meth:`GaussianMixture.velocity_fn`): Euler; Heun (Karras et al. 2022, Algorithm 1; 2 evaluations a step);
    DPM-Solver++(2M) (Lu et al. 2022). ``jump(x_t, t, s)`` integrates from t down to s on a uniform grid in
    ``nfe`` evaluations (``ValueError`` where the method cannot spend exactly that many)."""

    gm: Any
    interp: Interpolant
    method: str = "euler"
    nfe: int = 1
    label: str = ""

    def __post_init__(self):
        check_choice(self.method, "method", tuple(SOLVERS))
        if not isinstance(self.interp, Interpolant):
            raise TypeError(f"interp must be an Interpolant, got {type(self.interp).__name__}")
        self.label = self.label or SOLVERS[self.method]
        self.fn = self.gm.velocity_fn(self.interp)

    @property
    def process(self) -> Interpolant:
        return self.interp

    def _steps(self, nfe: int) -> int:
        k = solver_steps(self.method, nfe, self.interp)
        if k is None:
            raise ValueError(f"{self.label} cannot spend exactly nfe={nfe} evaluations")
        return k

    def sample(self, x_1: torch.Tensor, nfe: int | None = None, generator=None) -> torch.Tensor:
        return sample_interpolant(self.fn, x_1, self.interp, method=self.method, steps=self._steps(nfe or self.nfe),
                                  generator=generator)

    def jump(self, x_t: torch.Tensor, t, s) -> torch.Tensor:
        x_t = check_tensor(x_t, "x_t")
        k, out = self._steps(self.nfe), x_t.clone()
        for idx, a, b in _pairs(x_t, t, s):
            if a == b:
                continue
            if b > a:
                raise ValueError(f"an ODE solver here runs toward the data: s must be below t, got t={a}, s={b}")
            times = [a + (b - a) * i / k for i in range(k + 1)]
            out[idx] = sample_interpolant(self.fn, x_t[idx], self.interp, method=self.method, times=times)
        return out


@dataclass
class RunSolver(OracleSolver):
    """A trained flow-matching run's velocity integrated by the same solvers as :class:`OracleSolver`: the baseline
    few-step methods, an ODE solver on a learned field (reflow, Liu et al. 2023: Euler on a 2-rectified flow; a
    progressively distilled flow student, Salimans & Ho 2022, whose sampler is Euler). ``velocity(x_t [B, *event],
    t [B]) -> [B, *event]`` is the run's field; ``gm`` its own oracle. :meth:`of_run` builds it from a loaded run."""

    velocity: Callable | None = None

    def __post_init__(self):
        check_choice(self.method, "method", tuple(SOLVERS))
        if not isinstance(self.interp, Interpolant) or not callable(self.velocity):
            raise TypeError("RunSolver needs an Interpolant and a callable velocity (RunSolver.of_run(run))")
        self.label = self.label or SOLVERS[self.method]
        self.fn = self.velocity

    @classmethod
    def of_run(cls, run, method: str = "euler", source=None) -> "RunSolver":
        """From a loaded toy run of a continuous-time interpolant process (``TypeError`` for another, e.g. a VP run
        over a discrete schedule); label ``"<process> (<folder>) · <solver>"``."""
        proc = run.process
        interp = getattr(proc, "interp", None)
        if not isinstance(interp, Interpolant) or interp.schedule is not None or not hasattr(proc, "prediction"):
            raise TypeError(f"a run judged by its ODE needs a continuous-time interpolant process, got "
                            f"{proc.describe()}")
        net = run.denoiser_fn()

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return interp.to_velocity(net(x, t), proc.prediction, x, t)

        label = f"{run_label(run, source)} · {SOLVERS[check_choice(method, 'method', tuple(SOLVERS))]}"
        return cls(run.oracle, interp, method, label=label, velocity=velocity)


@dataclass
class ExactMap:
    """Φ_{t→s} itself (:func:`toydiff.exact.flow_map.flow_map`): the floor of every pathwise error."""

    gm: Any
    process: Any
    label: str = "exact map"

    def sample(self, x_1: torch.Tensor, nfe: int | None = None, generator=None) -> torch.Tensor:
        return flow_map(self.gm, x_1, 1.0, 0.0, self.process)

    def jump(self, x_t: torch.Tensor, t, s) -> torch.Tensor:
        return flow_map(self.gm, x_t, t, s, self.process)


@dataclass
class ProcessMethod:
    """A trained (or exact) few-step process: ``process.sample(fn, x_T, steps=N, generator=g)`` (N evaluations)
    and ``process.jump(fn, x_t, t [B], s [B])`` (one evaluation), with its network ``fn``. ``jump`` here spends
    ``nfe`` jumps on a uniform grid from t to s."""

    process: Any
    fn: Callable
    label: str = ""
    nfe: int = 1

    def __post_init__(self):
        for name in ("sample", "jump"):
            if not callable(getattr(self.process, name, None)):
                raise TypeError(f"process must have a .{name} method (a few-step process), got "
                                f"{type(self.process).__name__}")
        self.label = self.label or getattr(self.process, "name", type(self.process).__name__)

    @classmethod
    def of_run(cls, run, label: str = "", nfe: int = 1, source=None) -> "ProcessMethod":
        """From a loaded toy run (:func:`toydiff.toy.run.load_toy`): its process and its network; the default label
        is ``"<process>/<objective> (<folder of source>)"`` (e.g. ``jump/meanflow (mf)``)."""
        return cls(run.process, run.denoiser_fn(), label or run_label(run, source), nfe)

    def sample(self, x_1: torch.Tensor, nfe: int, generator=None) -> torch.Tensor:
        return self.process.sample(self.fn, x_1, steps=check_int(nfe, "nfe", min=1), generator=generator)

    def jump(self, x_t: torch.Tensor, t, s) -> torch.Tensor:
        x_t = check_tensor(x_t, "x_t")
        n = x_t.shape[0]
        tt, ss = _times(t, n, "t"), _times(s, n, "s")
        x = x_t
        for i in range(self.nfe):
            a, b = tt + (ss - tt) * i / self.nfe, tt + (ss - tt) * (i + 1) / self.nfe
            x = self.process.jump(self.fn, x, a.to(x.dtype), b.to(x.dtype))
        return x


def method_of_run(run, source=None) -> "ProcessMethod | RunSolver":
    """A loaded toy run as a few-step method: its own jumps (:class:`ProcessMethod`) where its process has
    ``.jump``, else Euler on its learned field (:class:`RunSolver`: a flow run, reflow, a distilled flow student);
    ``TypeError`` naming the process for neither (a VP run over a discrete schedule)."""
    if callable(getattr(run.process, "jump", None)):
        return ProcessMethod.of_run(run, source=source)
    return RunSolver.of_run(run, "euler", source=source)


def at_budgets(methods: Sequence[FewStepMethod], budgets: Sequence[int] = (1, 2)) -> list[FewStepMethod]:
    """Each method once per jump budget it can spend (labels ``"<label> · <b> NFE"``); methods without a budget
    (``nfe`` attribute, e.g. :class:`ExactMap`) once, as they are."""
    out: list = []
    for m in methods:
        if not hasattr(m, "nfe"):
            out.append(m)
            continue
        for b in budgets:
            if isinstance(m, OracleSolver) and solver_steps(m.method, b, m.interp) is None:
                continue
            out.append(replace(m, nfe=check_int(b, "budgets", min=1), label=f"{m.label} · {b} NFE"))
    return out


def run_label(run, source=None) -> str:
    """``"<process>/<objective> (<where>)"`` of a loaded toy run, when ``source`` is given: the folder of a run's
    ``checkpoint.safetensors`` (or the folder itself), ``<folder>/<stem>`` of another file (a distilled round)."""
    meta = getattr(run, "metadata", {}) or {}
    name = str(meta.get("process", getattr(run.process, "name", type(run.process).__name__)))
    if isinstance(meta.get("objective"), str):
        name += f"/{meta['objective']}"
    if source is None:
        return name
    path = Path(source)
    if path.is_dir() or path.suffix != ".safetensors":
        return f"{name} ({path.name})"
    where = path.parent.name if path.name == "checkpoint.safetensors" else f"{path.parent.name}/{path.stem}"
    return f"{name} ({where})"  # a run folder's checkpoint by its folder; another file (a distilled round) by name


# --- metrics ---------------------------------------------------------------------------------------------
def data_std(gm) -> torch.Tensor:
    """The data's exact per-coordinate standard deviation ``[D]`` (the mixture's covariance diagonal, sqrt)."""
    return gm.covariance().diagonal().sqrt()


def pathwise_error(x: torch.Tensor, exact: torch.Tensor, std: torch.Tensor | None = None) -> float:
    """sqrt(mean over samples and coordinates of ((x − exact) / std_d)²): the RMS error of ``x`` ``[B, D]`` against
    ``exact`` ``[B, D]`` (the exact map from the same starts), in units of ``std`` ``[D]`` (default 1)."""
    x, exact = check_tensor(x, "x", min_ndim=2), check_tensor(exact, "exact", min_ndim=2)
    if x.shape != exact.shape:
        raise ValueError(f"x and exact must have the same shape, got {tuple(x.shape)} and {tuple(exact.shape)}")
    d = (x.double() - exact.double()).reshape(x.shape[0], -1)
    if std is not None:
        d = d / torch.as_tensor(std, dtype=torch.float64).reshape(1, -1)
    return float(d.pow(2).mean().sqrt())


def marginal_draws(gm, process, t: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` draws ``[n, D]`` of x_t = α_t x_0 + σ_t ε, x_0 ~ ``gm``, ε ~ N(0, I) (the marginal at ``t``)."""
    interp = resolve(process)
    if not isinstance(interp, Interpolant):
        raise TypeError("process must run in continuous time t in [0, 1] (an interpolant), got "
                        f"{type(process).__name__}")
    a, s, _, _ = interp.coefs(_times(t, 1, "t"))
    x0 = gm.sample(check_int(n, "n", min=1), generator)
    return float(a) * x0 + float(s) * torch.randn(x0.shape, generator=generator, dtype=torch.float64)


def exact_jumps(gm, process, ts: Sequence[float], *, n: int = 500, seed: int = 0
                ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For each t in ``ts``: ``n`` draws x_t ``[n, D]`` of the marginal (:func:`marginal_draws`, one generator
    seeded ``seed``, t after t) and their exact jump Φ_{t→0}(x_t) ``[n, D]`` under ``process``."""
    g = torch.Generator().manual_seed(check_int(seed, "seed", min=0))
    draws = [marginal_draws(gm, process, t, n, g) for t in ts]
    if not draws:
        return []
    times = torch.tensor([float(t) for t in ts], dtype=torch.float64).repeat_interleave(n)
    exact = flow_map(gm, torch.cat(draws), times, 0.0, process).split(n)  # every t in one ODE system
    return list(zip(draws, exact))


def jump_error_curves(methods: Sequence[FewStepMethod], gm, process, ts: Sequence[float], *, n: int = 500,
                      seed: int = 0, reference: list | None = None) -> dict[str, np.ndarray]:
    """The error of ONE jump x_t → 0 against t: for each t in ``ts``, the RMS of ``method.jump(x_t, t, 0)`` −
    Φ_{t→0}(x_t) in data std over the draws of :func:`exact_jumps` (the same x_t for every method; pass its
    result as ``reference`` to reuse it). Returns ``{label: errors [len(ts)]}``."""
    if not methods:
        raise ValueError("methods is empty")
    reference = exact_jumps(gm, process, ts, n=n, seed=seed) if reference is None else reference
    if len(reference) != len(ts):
        raise ValueError(f"reference must hold one (x_t, exact) pair per t ({len(ts)}), got {len(reference)}")
    std = data_std(gm)
    out = {m.label: np.empty(len(ts)) for m in methods}
    for i, (t, (x_t, exact)) in enumerate(zip(ts, reference)):
        for m in methods:
            out[m.label][i] = pathwise_error(m.jump(x_t, float(t), 0.0), exact, std)
    return out


@dataclass
class JudgeResult:
    """:func:`judge`'s rows ``{(label, nfe): {"path", "dist", "covered", "off"} lists over seeds, or None (that
    budget is not possible)}`` and the floor row (``"dist"`` of two true sets, their modes)."""

    rows: dict = field(default_factory=dict)
    floor: dict = field(default_factory=lambda: {"path": [], "dist": [], "covered": [], "off": []})
    n: int = 0
    seeds: int = 0
    n_modes: int = 0


def _add(r: dict, x: np.ndarray, path: float, truth: np.ndarray, distance, modes) -> None:
    r["path"].append(path)
    r["dist"].append(float(distance(x, truth)))
    ms = modes(x) if modes is not None else {}
    r["covered"].append(ms.get("covered", float("nan")))
    r["off"].append(ms.get("off_mode_share", float("nan")))


def judge(methods: Sequence[FewStepMethod], gm, process, nfes: Sequence[int], *, n: int, seeds: int,
          distance: Callable[[np.ndarray, np.ndarray], float], modes: Callable[[np.ndarray], dict] | None = None
          ) -> JudgeResult:
    """Each method at each NFE against the exact map Φ_{1→0} of ``gm`` under ``process``, over ``seeds`` seeds.

    Per seed: x_1 ``[n, D]`` ~ N(0, I), two true sets a, b ``[n, D]`` from ``gm``; per (method, nfe): pathwise
    error (:func:`pathwise_error` in data std) from that x_1, ``distance(x, a)`` and ``modes(x)`` (a dict with
    ``covered`` and ``off_mode_share``, e.g. :func:`toydiff.toy.metrics.mode_stats`); the row ``(exact map, ∞)``
    is Φ itself and the floor is ``distance(b, a)``. A method raising ``ValueError`` at an NFE gives ``None``.
    """
    n, seeds = check_int(n, "n", min=2), check_int(seeds, "seeds", min=1)
    std = data_std(gm)
    res = JudgeResult(n=n, seeds=seeds, n_modes=getattr(gm, "K", 0))
    new = lambda: {"path": [], "dist": [], "covered": [], "off": []}  # noqa: E731
    for seed in range(seeds):
        g = torch.Generator().manual_seed(seed)
        x_1 = torch.randn(n, gm.D, generator=g, dtype=torch.float64)
        a, b = gm.sample(n, g).numpy(), gm.sample(n, g).numpy()
        exact = flow_map(gm, x_1, 1.0, 0.0, process)
        _add(res.rows.setdefault(("exact map (the floor)", "∞"), new()), exact.numpy(), 0.0, a, distance, modes)
        for nfe in nfes:
            for m in methods:
                try:
                    x = m.sample(x_1, nfe, g).double()
                except ValueError:
                    res.rows.setdefault((m.label, nfe), None)
                    continue
                _add(res.rows.setdefault((m.label, nfe), new()), x.numpy(), pathwise_error(x, exact, std), a,
                     distance, modes)
        _add(res.floor, b, float("nan"), a, distance, modes)
    return res


def judge_table(res: JudgeResult, *, dist_name: str = "distance") -> str:
    """:func:`judge`'s result as a markdown table (means ± sd over seeds; the distance as a multiple of the floor)."""
    fl, fl_sd = float(np.mean(res.floor["dist"])), float(np.std(res.floor["dist"]))
    n, K = res.n, res.n_modes
    out = [f"| method | NFE | path RMS / std | {dist_name} to fresh (n={n}) | noise floor (n={n}) | modes covered | "
           "off-mode share |", "|---|---:|---:|---:|---:|---:|---:|"]

    def cells(r: dict) -> str:
        d, d_sd = float(np.mean(r["dist"])), float(np.std(r["dist"]))
        return (f"{d:.4f} ± {d_sd:.4f} ({d / fl:.2f}× floor) | {fl:.4f} ± {fl_sd:.4f} | "
                f"{np.mean(r['covered']):.1f}/{K} | {100 * np.mean(r['off']):.2f} % |")

    for (label, nfe), r in res.rows.items():
        out.append(f"| {label} | {nfe} | — | — | — | — | — |" if r is None
                   else f"| {label} | {nfe} | {np.mean(r['path']):.4f} | " + cells(r))
    out.append("| true samples (set b vs a) | — | — | " + cells(res.floor))
    return "\n".join(out)
