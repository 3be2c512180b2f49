"""Progressive distillation (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of Diffusion Models").

    obj = ProgressiveDistillation(process, process.network_fn(teacher), steps=4)   # student: 4 steps, teacher: 8
    Trainer(student, obj, batches, config).fit()       # student initialised from the teacher's weights
    x0 = process.sample(process.network_fn(student), x_T, **process.step_options(4))

One round: the student takes one deterministic step where the teacher takes two (Algorithm 2). For x_0 from the
data, a boundary ``t`` of the student's grid (:meth:`~toydiff.processes.VPProcess.step_grid`, nested: the
teacher's grid at ``2N`` steps holds every boundary of the student's at ``N``) and ε ~ N(0, I), the teacher runs
two DDIM steps z_t → z_m → z_s (x_s = α_s x̂ + σ_s (x_t − α_t x̂)/σ_t, x̂ the teacher's x_0 estimate), and the
student's x_0 estimate regresses on the x-target that makes *one* DDIM step from z_t land on the teacher's z_s:

    x̃ = (z_s − (σ_s/σ_t) z_t) / (α_s − (σ_s/σ_t) α_t)

weighted by ``max(α_t²/σ_t², 1)`` (the paper's truncated SNR weighting; ``"snr"``: α_t²/σ_t², the ε-space
loss). :func:`halving_rounds` and :func:`distil` run rounds N → N/2 → … , each student initialised from its
teacher (the previous round's student), through the one training engine. The process object answers every
sampler question (its grid, its DDIM coefficients, the :meth:`sample` keywords of its deterministic step), so
this module works for a VP ε-teacher and a flow velocity teacher alike, at any data rank ``[B, *event]``.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Callable, ContextManager, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from toydiff.checks import check_choice, check_int
from toydiff.processes.base import CheckpointMismatch, Fn, process_of
from toydiff.training.losses import LossTerms, batched_held_out

__all__ = ["ProgressiveDistillation", "GridMapDistillation", "teacher_paths", "WEIGHTINGS", "MAP_WEIGHTINGS",
           "halving_rounds",
           "file_sha256", "distil", "ddim_move", "one_step_x_target", "x_loss_weight"]

#: the loss weights of the x-space error: the paper's truncated SNR, or SNR (the ε-space loss)
WEIGHTINGS = ("truncated-snr", "snr")
#: :class:`GridMapDistillation`'s weights: the error where the jump lands (x_s), or :data:`WEIGHTINGS`'
MAP_WEIGHTINGS = ("landing", *WEIGHTINGS)


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``v [B]`` as ``[B, 1, …]`` in ``like``'s dtype, to broadcast over ``like [B, *event]``."""
    return v.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def _as_time(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Times ``v [B]`` on ``like``'s device: integer steps stay integers, continuous times take ``like``'s dtype."""
    return v.to(like.device, like.dtype if v.is_floating_point() else v.dtype)


def ddim_move(process, x_t: torch.Tensor, x0_hat: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """One deterministic DDIM step (Song et al. 2021, η = 0) from ``x_t [B, *event]`` at times ``t [B]`` to ``s [B]``
    given the x_0 estimate ``x0_hat``: x_s = α_s x̂ + σ_s (x_t − α_t x̂)/σ_t (coefficients: ``process.path_coefs``)."""
    a_t, s_t = process.path_coefs(t)
    a_s, s_s = process.path_coefs(s)
    ratio = _bcast(s_s / s_t, x_t)
    return _bcast(a_s, x_t) * x0_hat + ratio * (x_t - _bcast(a_t, x_t) * x0_hat)


def one_step_x_target(process, z_t: torch.Tensor, z_s: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The x_0 estimate ``[B, *event]`` whose one DDIM step from ``z_t`` at ``t [B]`` lands on ``z_s`` at ``s [B]``
    (Salimans & Ho 2022, Algorithm 2): x̃ = (z_s − (σ_s/σ_t) z_t) / (α_s − (σ_s/σ_t) α_t); at the clean end
    (α_s, σ_s) = (1, 0) it is ``z_s`` itself."""
    a_t, s_t = process.path_coefs(t)
    a_s, s_s = process.path_coefs(s)
    ratio = s_s / s_t
    return (z_s - _bcast(ratio, z_t) * z_t) / _bcast(a_s - ratio * a_t, z_t)


def x_loss_weight(process, t: torch.Tensor, weighting: str) -> torch.Tensor:
    """The weight ``[B]`` (float64) of an x-space error at times ``t [B]``: ``"truncated-snr"`` max(α_t²/σ_t², 1)
    (Salimans & Ho 2022), ``"snr"`` α_t²/σ_t² (the ε-space loss)."""
    a, s = process.path_coefs(t)
    snr = (a / s) ** 2
    return snr.clamp(min=1.0) if weighting == "truncated-snr" else snr


def _check_same_distillation(objective, meta: dict, what: str) -> None:
    """Raise :class:`CheckpointMismatch` unless ``meta`` has ``objective``'s process and ``distilled`` record."""
    if process_of(meta) != objective.process.name:
        raise CheckpointMismatch(f"was trained with --process {process_of(meta)}, not {objective.process.name}")
    there, here = meta.get("distilled"), objective.metadata()["distilled"]
    if there != here:
        raise CheckpointMismatch(f"is another {what} ({there}), not {here}")


def halving_rounds(start_steps: int, rounds: int) -> list[tuple[int, int]]:
    """``[(teacher_steps, student_steps), …]`` of ``rounds`` rounds from ``start_steps`` (halved each round)."""
    start_steps, rounds = check_int(start_steps, "start_steps", min=2), check_int(rounds, "rounds", min=1)
    if start_steps % (2 ** rounds):
        raise ValueError(f"start_steps must be divisible by 2**rounds = {2 ** rounds} (each round halves it), got "
                         f"start_steps={start_steps}, rounds={rounds}")
    return [(start_steps >> r, start_steps >> (r + 1)) for r in range(rounds)]


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (a teacher checkpoint's identity)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class ProgressiveDistillation:
    """One round's objective for :class:`~toydiff.training.Trainer` (see the module docstring).

    Args:
        process: the :class:`~toydiff.processes.base.Process` of teacher and student (``step_grid``,
            ``step_options``, ``path_coefs``, ``network_fn``, ``to_x0``).
        teacher_fn: the teacher as the sampler calls it, ``fn(x_t [B, *event], t [B] process time, **kw)``
            (``process.network_fn(model)``, or an exact oracle's ``process.exact_fn(mixture)``).
        steps: the student's number of steps N (the teacher runs 2N on the nested grid).
        weighting: :data:`WEIGHTINGS`.
        info: extra JSON for the checkpoint's ``distilled`` record (teacher hash, round).
    """

    def __init__(self, process, teacher_fn: Fn, steps: int, *, weighting: str = "truncated-snr",
                 info: dict | None = None):
        if not callable(teacher_fn):
            raise TypeError(f"teacher_fn must be callable, got {type(teacher_fn).__name__}")
        self.process, self.teacher_fn, self.schedule = process, teacher_fn, process.schedule
        self.steps = check_int(steps, "steps", min=1)
        self.weighting = check_choice(weighting, "weighting", WEIGHTINGS)
        self.sampler = process.step_options(self.steps)  # refuses a process without a DDIM-equivalent step
        student, teacher = process.step_grid(self.steps), process.step_grid(2 * self.steps)
        nested = [p[0] for p in student] == [p[0] for p in teacher[::2]] and \
            [p[1] for p in student] == [p[1] for p in teacher[1::2]]
        if not nested:
            raise ValueError(f"the {2 * self.steps}-step grid does not nest the {self.steps}-step grid of "
                             f"{process.describe()}: choose steps so that the grid halves evenly")
        # process time as the grid gives it: integer steps (long) or continuous times (float64)
        self.starts = torch.tensor([p[0] for p in student])   # [N] t of each student step
        self.mids = torch.tensor([p[1] for p in teacher[::2]])  # [N] the teacher's middle boundary
        self.ends = torch.tensor([p[1] for p in student])     # [N] s of each student step
        self.info = dict(info or {})
        self._base = process.objective()

    def network_fn(self, model: Fn) -> Fn:
        """The student as the sampler calls it (:meth:`process.network_fn`)."""
        return self.process.network_fn(model)

    def _times(self, idx: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(_as_time(v[idx.cpu()], like) for v in (self.starts, self.mids, self.ends))

    def index_of(self, t: torch.Tensor) -> torch.Tensor:
        """The student step ``[B]`` that starts at each time of ``t [B]`` (a ValueError for a time off the grid)."""
        gap = (t.detach().cpu().double()[:, None] - self.starts.double()[None, :]).abs()  # [B, N]
        best = gap.min(1)
        if not bool((best.values < 1e-6).all()):  # float32 times (held-out draws) match to round-off
            raise ValueError("t must hold start times of the student's grid")
        return best.indices

    def noisy(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = α_t x_0 + σ_t ε, ``[B, *event]``."""
        a, s = self.process.path_coefs(t)
        return _bcast(a, x0) * x0 + _bcast(s, x0) * noise.to(x0.dtype)

    @torch.no_grad()
    def target(self, x_t: torch.Tensor, idx: torch.Tensor, **model_kwargs) -> torch.Tensor:
        """The x-target ``[B, *event]`` of student step ``idx [B]`` from ``x_t``: two teacher DDIM steps t → m → s,
        then x̃ = (z_s − (σ_s/σ_t) z_t) / (α_s − (σ_s/σ_t) α_t) (Salimans & Ho 2022, Algorithm 2)."""
        t, m, s = self._times(idx, x_t)
        z = x_t
        for a, b in ((t, m), (m, s)):
            out = self.teacher_fn(z, a, **model_kwargs).to(x_t.dtype)
            z = ddim_move(self.process, z, self.process.to_x0(out, z, a), a, b)
        return one_step_x_target(self.process, x_t, z, t, s)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """The loss weight ``[B]`` (float64) at student start times ``t``."""
        return x_loss_weight(self.process, t, self.weighting)

    def _per_sample(self, fn: Fn, x0: torch.Tensor, idx: torch.Tensor, noise: torch.Tensor,
                    **model_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        t = self._times(idx, x0)[0]
        x_t = self.noisy(x0, t, noise)
        target = self.target(x_t, idx, **model_kwargs)
        x_hat = self.process.to_x0(fn(x_t, t, **model_kwargs).to(x0.dtype), x_t, t)
        err = (x_hat - target).pow(2).flatten(1).mean(1)
        return err * self.weight(t).to(err), t

    def loss(self, model: Fn, x0: torch.Tensor, *, generator: torch.Generator | None = None,
             **model_kwargs) -> tuple[torch.Tensor, LossTerms]:
        """(the weighted mean, :class:`LossTerms` of the weighted per-sample loss and the start times ``t [B]``) for
        ``x0 [B, *event]``: a student step drawn uniformly, ε ~ N(0, I), both from ``generator``."""
        dev = generator.device if generator is not None else x0.device
        idx = torch.randint(len(self.starts), (x0.shape[0],), generator=generator, device=dev).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=dev, dtype=x0.dtype).to(x0.device)
        per, t = self._per_sample(self.network_fn(model), x0, idx, noise, **model_kwargs)
        return per.mean(), LossTerms(per, t)

    def bucket_sums(self, values: torch.Tensor, t: torch.Tensor, n_buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per time bucket ``(sum, count)`` of ``values [B]`` at ``t [B]``: the process's own buckets."""
        return self._base.bucket_sums(values, t, n_buckets)

    def held_out_draws(self, shape, *, seed: int, noise_dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed start times ``t [N]`` (student steps drawn uniformly) and noise ``[N, *event]`` from ``seed``."""
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(len(self.starts), (shape[0],), generator=g)
        t = self.starts[idx]
        return (t.float() if t.is_floating_point() else t), torch.randn(tuple(shape), generator=g, dtype=noise_dtype)

    def held_out_loss(self, fn: Fn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, *, n_buckets: int = 10,
                      batch_size: int = 65_536, model_kwargs: dict | None = None,
                      context: Callable[[], ContextManager] | None = None) -> tuple[float, list[float]]:
        """(mean, per bucket) of the weighted distillation loss of ``fn`` (the student's sampler view), fixed draws."""
        idx = self.index_of(t)
        return batched_held_out(
            lambda sl, kw: self._per_sample(fn, x0[sl], idx[sl], noise[sl], **kw)[0],
            t, self.bucket_sums, n_buckets=n_buckets, batch_size=batch_size, model_kwargs=model_kwargs, context=context)

    def metadata(self) -> dict:
        """The process keys and ``distilled``: method, student and teacher steps, weighting, the student's sampler
        keywords and :attr:`info` (teacher hash, round)."""
        return self.process.to_dict() | {"target": "conditional", "distilled": {
            "method": "progressive distillation (Salimans & Ho 2022)", "steps": self.steps,
            "teacher_steps": 2 * self.steps, "weighting": self.weighting, "sampler": self.sampler, **self.info}}

    def check_resume(self, meta: dict) -> None:
        """Raise :class:`CheckpointMismatch` unless ``meta`` was written by this round (process, steps, teacher)."""
        _check_same_distillation(self, meta, "distillation round")


def _time_list(times) -> list:
    return [float(t) if isinstance(t, float) else int(t) for t in times]


def _column(times: list, t, what: str) -> int:
    """The index of ``t`` in ``times`` (to 1e-9 for continuous times), else a ValueError naming ``what``."""
    for k, u in enumerate(times):
        if abs(float(u) - float(t)) < 1e-9:
            return k
    raise ValueError(f"times must hold every boundary of {what}; {t} is missing from {times}")


@torch.no_grad()
def teacher_paths(process, teacher_fn: Fn, x_T: torch.Tensor, times: Sequence, *, method: str = "dpm++2m",
                  steps: int = 16, batch_size: int = 512, clip_x0: float | None = 1.0,
                  progress: bool = False) -> torch.Tensor:
    """The teacher's deterministic paths from ``x_T [P, *event]``, kept at ``times``: ``[P, K, *event]`` float32.

    The teacher ``teacher_fn`` (as the sampler calls it) runs ``method`` (default DPM-Solver++(2M), Lu et al. 2022)
    on ``process.step_grid(steps)``; column k holds x at process time ``times[k]`` (``times[0]``: the grid's first
    start, where x = x_T; the clean end is the sample). Every time must be a boundary of that grid, so a student
    grid whose boundaries lie on it (trailing spacing nests 4 and 2 in 16) reads its jumps off the columns
    (:class:`GridMapDistillation`). ``clip_x0`` as in :func:`toydiff.sample` (images: 1)."""
    times = _time_list(times)
    grid = process.step_grid(check_int(steps, "steps", min=1))
    bounds = [grid[0][0]] + [p[1] for p in grid]
    for t in times:
        _column(bounds, t, f"the teacher's {steps}-step grid")
    if abs(float(times[0]) - float(grid[0][0])) > 1e-9:
        raise ValueError(f"times[0] must be the grid's first start {grid[0][0]} (where x = x_T), got {times[0]}")
    if method not in process.methods:
        raise ValueError(f"method must be one of {process.describe()}'s samplers {tuple(process.methods)}, got {method!r}")
    opts = process.step_options(steps) | {"method": method}
    out = []
    for i0 in tqdm(range(0, x_T.shape[0], check_int(batch_size, "batch_size", min=1)), desc="teacher paths",
                   unit="batch", disable=not progress, leave=False):
        xb = x_T[i0: i0 + batch_size]
        cols: list = [None] * len(times)
        cols[0] = xb.float().clone()

        def keep(d):
            for k, t in enumerate(times[1:], start=1):
                if abs(float(d["t_prev"]) - float(t)) < 1e-9:
                    cols[k] = d["x_prev"].detach().float().clone()

        process.sample(teacher_fn, xb, clip_x0=clip_x0, callback=keep, **opts)
        if any(c is None for c in cols):
            raise RuntimeError(f"the sampler skipped a time of {times} (its callback never reached it)")
        out.append(torch.stack(cols, 1))
    return torch.cat(out)


class GridMapDistillation:
    """Flow-map distillation onto the student's own grid: each of the student's ``steps`` deterministic DDIM jumps
    t → s regresses on the teacher's ODE path between the same two times.

    The flow map Φ(x_t, t → s) is what every few-step generator approximates (Boffi, Albergo & Vanden-Eijnden
    2024, "Flow map matching": their Lagrangian distillation reads it off the teacher's trajectories; for one jump
    this is Luhman & Luhman 2021's knowledge distillation). Here the student is an ordinary model of ``process``,
    sampled by DDIM on ``process.step_grid(steps)``, so it only needs Φ at its grid's ``steps`` jumps: the data are
    the teacher's paths ``[B, K, *event]`` (:func:`teacher_paths`, column k at process time ``times[k]``), a jump j
    is drawn per path, and the student's x_0 estimate at z_t regresses on the x-target :func:`one_step_x_target`
    that makes one DDIM step land on the path's z_s. The default weight ``"landing"`` scores the error where the
    jump lands, ‖x_s − z_s‖² = (α_s − σ_s α_t/σ_t)² ‖x̂ − x̃‖²: the truncated-SNR x-space loss (``"truncated-snr"``,
    :func:`x_loss_weight`) weighs the first jump from t = T − 1 (where α_t ≈ 0.006 and an ε-model's x̂ is 160×
    its ε error) about 100× the last, which is the one that draws the digit. Unlike
    :class:`ProgressiveDistillation` the target is the teacher's full-accuracy path, not a halving round's (whose
    errors compound over the rounds), and no teacher runs during training.

    Args:
        process: the :class:`~toydiff.processes.base.Process` of teacher and student.
        steps: the student's number of steps N (``process.step_grid(N)``), or its own grid: explicit descending
            timesteps (a discrete schedule's, e.g. ``(999, 249)``; :meth:`~toydiff.processes.VPProcess.step_grid`).
        times: the process times of the paths' columns (descending; every boundary of the student's grid among them).
        weighting: :data:`MAP_WEIGHTINGS`.
        info: extra JSON for the checkpoint's ``distilled`` record (teacher hash, the paths' sampler and count).
    """

    def __init__(self, process, steps: int | Sequence[int], times: Sequence, *, weighting: str = "landing",
                 info: dict | None = None):
        self.process, self.schedule = process, process.schedule
        if isinstance(steps, int):  # a count (bool refused here); a grid is checked by the process
            steps = check_int(steps, "steps", min=1)
        self.weighting = check_choice(weighting, "weighting", MAP_WEIGHTINGS)
        self.sampler = process.step_options(steps)  # refuses a process without a DDIM-equivalent step, a bad grid
        self.times = _time_list(times)
        grid = process.step_grid(steps)
        self.steps = len(grid)
        what = f"the student's {self.steps}-step grid {[p[0] for p in grid]}"
        self.col_t = torch.tensor([_column(self.times, t, what) for t, _ in grid])  # [N] the columns of z_t
        self.col_s = torch.tensor([_column(self.times, s, what) for _, s in grid])  # [N] … and of z_s
        self.starts = torch.tensor([p[0] for p in grid])  # [N] process time of each jump's start
        self.ends = torch.tensor([p[1] for p in grid])    # [N] … and its end
        self.info = dict(info or {})
        self._base = process.objective()

    def network_fn(self, model: Fn) -> Fn:
        """The student as the sampler calls it (:meth:`process.network_fn`)."""
        return self.process.network_fn(model)

    def _check(self, paths: torch.Tensor) -> None:
        if not isinstance(paths, torch.Tensor) or paths.ndim < 3 or paths.shape[1] != len(self.times):
            raise ValueError(f"paths must be [B, K = {len(self.times)}, *event] (a column per time of {self.times}), "
                             f"got {list(getattr(paths, 'shape', []))}")

    def _per_sample(self, fn: Fn, paths: torch.Tensor, idx: torch.Tensor, **model_kwargs):
        rows, i = torch.arange(paths.shape[0], device=paths.device), idx.cpu()
        z_t = paths[rows, self.col_t[i].to(paths.device)]
        z_s = paths[rows, self.col_s[i].to(paths.device)]
        t, s = _as_time(self.starts[i], z_t), _as_time(self.ends[i], z_t)
        target = one_step_x_target(self.process, z_t, z_s, t, s)
        x_hat = self.process.to_x0(fn(z_t, t, **model_kwargs).to(z_t.dtype), z_t, t)
        err = (x_hat - target).pow(2).flatten(1).mean(1)
        if self.weighting == "landing":  # x_s − z_s = (α_s − σ_s α_t / σ_t)(x̂ − x̃)
            a_t, s_t = self.process.path_coefs(t)
            a_s, s_s = self.process.path_coefs(s)
            return err * ((a_s - s_s / s_t * a_t) ** 2).to(err), t
        return err * x_loss_weight(self.process, t, self.weighting).to(err), t

    def loss(self, model: Fn, paths: torch.Tensor, *, generator: torch.Generator | None = None,
             **model_kwargs) -> tuple[torch.Tensor, LossTerms]:
        """(the weighted mean, :class:`LossTerms` of the per-sample loss and the jumps' start times ``t [B]``) for
        teacher paths ``[B, K, *event]``: one jump per path drawn uniformly from ``generator``."""
        self._check(paths)
        dev = generator.device if generator is not None else paths.device
        idx = torch.randint(self.steps, (paths.shape[0],), generator=generator, device=dev)
        per, t = self._per_sample(self.network_fn(model), paths, idx, **model_kwargs)
        return per.mean(), LossTerms(per, t)

    @torch.no_grad()
    def jump_errors(self, fn: Fn, paths: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        """RMS ``[N]`` over ``paths [B, K, *event]`` of each jump's one DDIM step from the teacher's z_t against the
        teacher's z_s (data units): where along the path a student (or the teacher's own DDIM) misses the map."""
        self._check(paths)
        sums = torch.zeros(self.steps, dtype=torch.float64)
        for j in range(self.steps):
            for i0 in range(0, paths.shape[0], batch_size):
                p = paths[i0: i0 + batch_size]
                z_t, z_s = p[:, int(self.col_t[j])], p[:, int(self.col_s[j])]
                t = _as_time(self.starts[j].repeat(p.shape[0]), z_t)
                s = _as_time(self.ends[j].repeat(p.shape[0]), z_t)
                x0 = self.process.to_x0(fn(z_t, t).to(z_t.dtype), z_t, t)
                sums[j] += (ddim_move(self.process, z_t, x0, t, s) - z_s).double().pow(2).flatten(1).mean(1).sum()
        return (sums / paths.shape[0]).sqrt()

    def bucket_sums(self, values: torch.Tensor, t: torch.Tensor, n_buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per time bucket ``(sum, count)`` of ``values [B]`` at ``t [B]``: the process's own buckets."""
        return self._base.bucket_sums(values, t, n_buckets)

    def metadata(self) -> dict:
        """The process keys and ``distilled``: method, student steps, weighting, the student's sampler keywords and
        :attr:`info` (teacher hash, the paths' sampler and count)."""
        return self.process.to_dict() | {"target": "conditional", "distilled": {
            "method": "flow-map distillation on the student's grid (Boffi et al. 2024)", "steps": self.steps,
            "times": self.times, "weighting": self.weighting, "sampler": self.sampler, **self.info}}

    def check_resume(self, meta: dict) -> None:
        """Raise :class:`CheckpointMismatch` unless ``meta`` was written by this objective (process, steps, paths)."""
        _check_same_distillation(self, meta, "distillation")


def distil(teacher: nn.Module, process, make_trainer: Callable, *, start_steps: int, rounds: int,
           teacher_sha256: str, weighting: str = "truncated-snr", out: str | Path | None = None,
           resume: bool = False, on_round: Callable | None = None) -> nn.Module:
    """Progressive distillation over :func:`halving_rounds`: each round copies its teacher into the student,
    trains it with :class:`ProgressiveDistillation` through the trainer ``make_trainer(student, objective,
    checkpoint_path)`` gives, and hands the student (its EMA weights) on as the next teacher; returns the last.

    ``out``: each round's checkpoint ``round{r}_{N}steps.safetensors`` there (the trainer writes it atomically);
    ``resume``: a round whose checkpoint exists is loaded (and finished if it stopped early) instead of restarted.
    ``on_round(round, student_steps, student, trainer)`` after each round (evaluation, a table row).
    """
    path_of = (lambda r, n: Path(out) / f"round{r}_{n}steps.safetensors") if out is not None else (lambda r, n: None)
    sha = teacher_sha256
    for r, (n_teacher, n_student) in enumerate(halving_rounds(start_steps, rounds), start=1):
        teacher = teacher.eval().requires_grad_(False)
        objective = ProgressiveDistillation(process, process.network_fn(teacher), n_student, weighting=weighting,
                                            info={"round": r, "rounds": rounds, "start_steps": start_steps,
                                                  "teacher_sha256": sha})
        student = copy.deepcopy(teacher).train().requires_grad_(True)
        path = path_of(r, n_student)
        trainer = make_trainer(student, objective, path)
        if resume and path is not None and path.exists():
            trainer.load(path)
        trainer.fit()
        if on_round is not None:
            on_round(r, n_student, trainer.eval_model, trainer)
        teacher = copy.deepcopy(trainer.eval_model)
        sha = file_sha256(path) if path is not None and path.exists() else f"round {r} (not saved)"
    return teacher.eval()
