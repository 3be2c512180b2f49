"""Distillation of an MNIST model to few DDIM steps on the one engine: flow-map distillation onto the student's grid
(Boffi et al. 2024, :func:`map_distill_mnist`, the default) and progressive distillation (Salimans & Ho 2022,
:func:`distill_mnist`).

    paths = map_distill_mnist(out="runs/map", students=(4, 2, 1))       # the committed tiny_uncond's paths, 3 students
    paths = distill_mnist(out="runs/pd", rounds=2, start_steps=8)     # progressive: 8 → 4 → 2 steps

    m = load_model(paths[-1])                                           # an ordinary model of its process
    x = generate(m.model, m.process, 100, **m.sampler)                  # its own sampler: DDIM on its grid

Flow-map distillation: the teacher's deterministic paths (DPM-Solver++(2M), 16 trailing steps: FID 38.8 at n = 1000,
better than its 50 DDIM steps' 40.2) from ``pool`` seeded noises are computed once and kept at the students' grid
times in ``out/teacher_paths.safetensors`` (reused while teacher, count, seed and sampler match); each student
(``map_{N}steps.safetensors``) starts from the teacher's weights and learns the N DDIM jumps of its own grid
(:func:`student_grids`: trailing, the 2-step student split at SNR 1/3) from those paths
(:class:`toydiff.training.distill.GridMapDistillation`); no teacher call during training.

Progressive distillation: the objective is :class:`toydiff.training.distill.ProgressiveDistillation` (two teacher DDIM steps per student
step, the x-target, truncated-SNR weights); the rounds are :func:`toydiff.training.distill.distil`. Each round
writes ``round{r}_{N}steps.safetensors`` into ``out`` (kind ``image_track.distill/1``: weights, EMA, optimiser,
generator state, so ``resume=True`` continues it; :func:`image_track.loaded.load_model` reads it like any
checkpoint) whose metadata's ``distilled`` record holds the teacher's SHA-256, the round and the student's
sampler keywords. Training images: the 55k training split, unconditional models only.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Callable, Sequence

import torch

from toydiff.checks import check_int, check_number
from toydiff.training.checkpoint import CheckpointError, load_checkpoint, run_lock, save_checkpoint
from toydiff.training.distill import GridMapDistillation, distil, file_sha256, halving_rounds, teacher_paths
from toydiff.training.engine import TensorBatches, TrainConfig, Trainer
from toydiff.training.hooks import ProgressBar

__all__ = ["DISTILL_KIND", "PATHS_KIND", "PATHS_FILE", "DistillSettings", "distill_mnist", "map_distill_mnist",
           "mnist_teacher_paths", "sampler_keywords"]

DISTILL_KIND = "image_track.distill/1"
#: the teacher's paths of a flow-map distillation, kept in its ``out`` folder
PATHS_KIND, PATHS_FILE = "image_track.teacher_paths/1", "teacher_paths.safetensors"


def sampler_keywords(process, steps: int | Sequence[int]) -> dict:
    """:func:`image_track.sampling.generate`'s keywords for the deterministic ``steps``-step sampler a student of
    ``process`` was distilled for (``process.step_options``; ``steps`` an int or the student's explicit grid). A
    loaded student's own: :attr:`image_track.loaded.LoadedModel.sampler`."""
    from image_track.loaded import generate_keywords

    return generate_keywords(process.step_options(steps))


class DistillSettings:
    """Per-round training settings: ``steps`` optimiser steps of batch ``batch_size``, AdamW ``lr`` with ``warmup``
    steps and cosine decay, gradient clipping 1, EMA ``ema_decay`` with warm-up (a short round's EMA is not left
    mostly the teacher's), ``seed``, bf16 autocast where fast."""

    def __init__(self, steps: int = 2000, batch_size: int = 64, lr: float = 1e-3, warmup: int = 50,
                 ema_decay: float | None = 0.999, seed: int = 0, amp: bool = True):
        self.steps, self.batch_size = check_int(steps, "steps", min=1), check_int(batch_size, "batch_size", min=1)
        self.lr, self.warmup = check_number(lr, "lr", min=1e-12), check_int(warmup, "warmup", min=0)
        self.ema_decay = None if ema_decay is None else check_number(ema_decay, "ema_decay", min=0.0, max=1.0)
        self.seed, self.amp = check_int(seed, "seed", min=0), bool(amp)

    def config(self) -> TrainConfig:
        return TrainConfig(max_steps=self.steps, epochs=10 ** 6, batch_size=self.batch_size, lr=self.lr,
                           warmup_steps=self.warmup, lr_schedule="cosine", grad_clip=1.0, ema_decay=self.ema_decay,
                           ema_warmup=True, seed=self.seed)


def distill_mnist(checkpoint: str | Path | None = None, *, out: str | Path, rounds: int = 2, start_steps: int = 8,
                  settings: DistillSettings | None = None, weighting: str = "truncated-snr", resume: bool = False,
                  progress: bool = False, subset: int | None = None,
                  on_round: Callable | None = None) -> list[Path]:
    """Distil ``checkpoint`` (default the committed ``tiny_uncond``) over ``rounds`` halving rounds from
    ``start_steps``; return the rounds' checkpoint paths. ``on_round(round, steps, student, trainer)`` after
    each round; ``subset``: the first training images only (tests)."""
    from image_track.data import load_mnist
    from image_track.loaded import default_checkpoint, load_model
    from image_track.training.loop import bf16_autocast

    settings = settings or DistillSettings()
    halving_rounds(start_steps, rounds)
    source = Path(checkpoint) if checkpoint is not None else default_checkpoint(conditional=False)
    m = load_model(source)
    if m.conditional:
        raise ValueError(f"checkpoint {source} is class-conditional; distillation here takes unconditional models")
    m.process.step_options(1)  # refuses a process without a DDIM-equivalent step
    x, _ = load_mnist("train", pad_to_32=m.image_size == 32)
    x = x[: check_int(subset, "subset", min=1)] if subset is not None else x
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def make(student, objective, path):
        hooks = [ProgressBar(every=10, desc=f"distil → {objective.steps} steps", unit="step", file=sys.stderr)] \
            if progress else []
        return Trainer(student, objective, TensorBatches(x, settings.batch_size), settings.config(), hooks=hooks,
                       kind=DISTILL_KIND, metadata={"model_config": m.model.config, "teacher_file": str(source)},
                       autocast=lambda: bf16_autocast("cpu", settings.amp), checkpoint=path)

    paths: list[Path] = []

    def keep(r, steps, student, trainer):
        paths.append(Path(trainer.checkpoint_path))
        if on_round is not None:
            on_round(r, steps, student, trainer)

    with run_lock(out):
        distil(m.model, m.process, make, start_steps=start_steps, rounds=rounds, teacher_sha256=file_sha256(source),
               weighting=weighting, out=out, resume=resume, on_round=keep)
    return paths


#: a two-step student splits its path where the schedule's signal-to-noise ratio ᾱ/(1 − ᾱ) is nearest this (t = 374
#: of the linear schedule on the teacher's 16-step grid) instead of trailing spacing's t = 499, where the jump to the
#: data was the one a student missed most. Measured (2-step expert students from the teacher, 5 500 steps each; FID
#: at n = 1000 over the teacher's DDIM-50 FID, seeds 0–2; held-out RMS error of the two jumps): split at t = 187:
#: 1.46, 0.106 / 0.025; 249: 1.36, 0.076 / 0.042; 311: 1.31, 0.051 / 0.065; 374: 1.30, 0.033 / 0.093; 499: 1.56
#: (the trailing grid, 0.019 / 0.152)
SPLIT_SNR = 1 / 3


def student_grids(process, students: Sequence[int], grids: dict | None = None, *,
                  teacher_steps: int = 16) -> dict[int, int | tuple[int, ...]]:
    """Each student's grid ``{N: grid}``: ``grids[N]`` (explicit descending timesteps) where given, else for two
    steps of a discrete schedule ``(T − 1, t*)`` with t* the boundary of the teacher's ``teacher_steps``-step grid
    nearest :data:`SPLIT_SNR` in log-SNR ((999, 374) for the committed teacher), else ``N``
    (``process.step_grid(N)``: trailing spacing). A grid must have N steps, start where the teacher's paths start
    and keep its boundaries on the teacher's grid (ValueError)."""
    grids = {} if grids is None else dict(grids)
    unknown = sorted(set(grids) - set(students))
    if unknown:
        raise ValueError(f"grids name students {unknown} that are not among the students {list(students)}")
    teacher = process.step_grid(teacher_steps)
    bounds = [t for t, _ in teacher] + [teacher[-1][1]]
    if process.schedule is not None and 2 in students and 2 not in grids and len(bounds) > 2:
        inner = torch.tensor(bounds[1:-1])
        t_star = int(inner[(process.schedule.snr[inner].log() - torch.tensor(SPLIT_SNR).log()).abs().argmin()])
        grids[2] = (bounds[0], t_star)
    out = {}
    for n in students:
        if n not in grids:
            out[n] = n
            continue
        grid = process.step_grid(grids[n])  # refuses a grid that is not strictly descending timesteps
        starts = tuple(int(t) for t, _ in grid)
        if len(grid) != n or starts[0] != bounds[0] or any(t not in bounds for t in starts):
            raise ValueError(f"grids[{n}] must be {n} descending timesteps from {bounds[0]} on the teacher's "
                             f"{teacher_steps}-step grid {bounds[:-1]}, got {list(starts)}")
        out[n] = starts
    return out


def _student_times(process, grids) -> list:
    """Every boundary of the students' grids (step counts or explicit grids), descending (the paths' columns)."""
    times = {t for g in grids for pair in process.step_grid(g) for t in pair}
    return sorted(times, reverse=True)


def _paths_job(job: dict) -> torch.Tensor:
    """One worker's share of the teacher's paths (a spawned process: it loads the teacher itself)."""
    from image_track.loaded import load_model

    m = load_model(job["source"])
    return teacher_paths(m.process, m.process.network_fn(m.model), job["x_T"], job["times"],
                         method=job["method"], steps=job["steps"], progress=job["progress"])


def mnist_teacher_paths(model, process, *, out: str | Path, students=(4, 2, 1), pool: int = 16384,
                        teacher_steps: int = 16, teacher_method: str = "dpm++2m", pool_seed: int = 0,
                        teacher_sha256: str = "", progress: bool = False, source: str | Path | None = None,
                        workers: int = 1) -> tuple[torch.Tensor, dict]:
    """``(paths [pool, K, C, H, W], record)``: the teacher's paths from ``pool`` noises drawn from a generator seeded
    ``pool_seed``, at the boundaries of the students' grids (``students``: step counts or explicit grids;
    :func:`toydiff.training.distill.teacher_paths`); read from
    ``out/teacher_paths.safetensors`` when its record (teacher hash, count, seed, sampler, times) matches, else
    computed and written there atomically. ``workers`` > 1: split over that many spawned processes (one thread
    each), which load the teacher from its checkpoint ``source``; the paths are the same."""
    pool = check_int(pool, "pool", min=1)
    workers = check_int(workers, "workers", min=1)
    times = _student_times(process, students)
    record = {"teacher_sha256": teacher_sha256, "pool": pool, "pool_seed": check_int(pool_seed, "pool_seed", min=0),
              "teacher_sampler": process.step_options(teacher_steps) | {"method": teacher_method},
              "times": times}
    path = Path(out) / PATHS_FILE
    if path.exists():
        try:
            tensors, meta = load_checkpoint(path)
        except CheckpointError as e:  # a cache: a damaged file is computed again, not trusted
            print(f"warning: {path} is unreadable ({e}); computing the teacher's paths again", file=sys.stderr)
            tensors, meta = {}, {}
        if meta.get("kind") == PATHS_KIND and meta.get("record") == record and "paths" in tensors:
            return tensors["paths"], record
    shape = (model.config["in_channels"], model.config["image_size"], model.config["image_size"])
    x_T = torch.randn(pool, *shape, generator=torch.Generator().manual_seed(pool_seed))
    model.eval()
    if workers > 1 and source is not None:
        jobs = [{"source": str(source), "x_T": part, "times": times, "method": teacher_method, "steps": teacher_steps,
                 "progress": progress and k == 0} for k, part in enumerate(x_T.chunk(workers))]
        with _spawn_pool(workers) as ex:
            paths = torch.cat(list(ex.map(_paths_job, jobs)))
    else:
        paths = teacher_paths(process, process.network_fn(model), x_T, times, method=teacher_method,
                              steps=teacher_steps, progress=progress)
    save_checkpoint(path, {"paths": paths}, {"kind": PATHS_KIND, "record": record})
    return paths, record


def _worker_threads() -> None:
    """A spawned worker's start: the thread policy (torch would otherwise take every core in each worker, and two
    workers of two threads on two cores spin: 3× slower, measured)."""
    from toydiff.threads import configure_threads

    configure_threads(None)


def _spawn_pool(workers: int):
    """A pool of ``workers`` spawned processes, each on the thread policy's count (1)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_threads)


#: a student's expert predicts x_0 where its band starts below this signal-to-noise ratio ᾱ/(1 − ᾱ), ε above: a
#: jump's landing error is σ_t/α_t times larger in ε units than in x_0 units, and the x_0 expert won where that
#: factor was 160 (t = 999) and lost where it was 3.4 (t = 499) or 1 (t = 249): the threshold is σ_t/α_t = 5
X0_BELOW_SNR = 0.04


def student_network(start, process, steps: int, *, experts: bool):
    """A new student of ``steps`` steps from ``start`` (the teacher, or a trained student): a copy of it, or
    (``experts``) one expert per jump of ``process.step_grid(steps)``
    (:class:`~image_track.unets.experts.TimeExperts`), each a copy of ``start`` (of ``start``'s expert at that
    jump's start where it has experts), predicting x_0 where the jump starts at an SNR below :data:`X0_BELOW_SNR`
    and ε elsewhere.

    Measured on single-jump experts of the tiny teacher (1 000 steps of batch 64 on 16 384 DPM++ paths; RMS landing
    error on 512 held-out paths), x_0 / ε: 999 → 499: 0.022 / 0.163; 999 → 749: 0.011 / 0.029; 499 → 249: 0.054 /
    0.042; 249 → −1: 0.065 / 0.045; 499 → −1: 0.166 / 0.159."""
    from image_track.unets.experts import TimeExperts

    if not experts:
        if isinstance(start, TimeExperts):
            raise ValueError("a student without experts cannot start from one with experts; pass experts=True")
        return copy.deepcopy(start)
    if process.schedule is None:  # an expert's band and its x_0 conversion are in a schedule's integer steps
        raise ValueError(f"experts need a process with a discrete schedule, not {process.describe()}; pass "
                         f"experts=False")
    starts = [int(t) for t, _ in process.step_grid(steps)]
    predictions = ["x0" if snr < X0_BELOW_SNR else "eps" for snr in process.schedule.snr[starts].tolist()]
    if not isinstance(start, TimeExperts):
        return TimeExperts.from_network(start, starts, predictions=predictions, schedule=process.schedule)
    k = start.expert_of(torch.tensor(starts)).tolist()
    student = TimeExperts.from_network(start.experts[k[0]], starts, predictions=predictions, schedule=process.schedule)
    for mine, theirs in zip(student.experts, k):
        mine.load_state_dict(start.experts[theirs].state_dict())
    return student


def _train_student(job: dict) -> str:
    """Train one flow-map student (in this process or a spawned worker); return its checkpoint path."""
    from image_track.loaded import load_model
    from image_track.training.loop import bf16_autocast

    m = load_model(job["source"])
    paths = job["paths"] if job.get("paths") is not None else load_checkpoint(job["paths_file"])[0]["paths"]
    settings, n = job["settings"], job["steps"]
    grid = job["grid"]  # the student's step count, or its explicit grid
    objective = GridMapDistillation(m.process, grid, job["times"], weighting=job["weighting"], info=job["info"])
    start = load_model(job["init"]).model if job.get("init") else m.model  # a trained student's EMA, or the teacher
    student = student_network(start, m.process, grid, experts=job["experts"]).train().requires_grad_(True)
    hooks = [ProgressBar(every=10, desc=f"distil → {n} steps", unit="step", file=sys.stderr,
                         position=job["position"])] if job["progress"] else []
    trainer = Trainer(student, objective, TensorBatches(paths, settings.batch_size), settings.config(),
                      hooks=hooks, kind=DISTILL_KIND, checkpoint=job["checkpoint"],
                      metadata={"model_config": student.config, "teacher_file": str(job["source"])},
                      autocast=lambda: bf16_autocast("cpu", settings.amp))
    if job["resume"] and Path(job["checkpoint"]).exists():
        trainer.load(job["checkpoint"])
    trainer.fit()
    return str(job["checkpoint"])


def map_distill_mnist(checkpoint: str | Path | None = None, *, out: str | Path, students=(4, 2, 1),
                      pool: int = 16384, teacher_steps: int = 16, teacher_method: str = "dpm++2m",
                      settings: DistillSettings | None = None, weighting: str = "landing", pool_seed: int = 0,
                      resume: bool = False, progress: bool = False, workers: int = 1,
                      steps_per_student: Sequence[int] | None = None, init_from: dict | None = None,
                      experts: bool = True, grids: dict | None = None,
                      on_student: Callable | None = None) -> list[Path]:
    """Flow-map distillation (Boffi et al. 2024) of ``checkpoint`` (default the committed ``tiny_uncond``) into one
    student per step count in ``students``; return their checkpoint paths (``map_{N}steps.safetensors``), in the
    order of ``students``.

    The teacher's paths (:func:`mnist_teacher_paths`, ``pool`` of them by ``teacher_method`` at ``teacher_steps``
    trailing steps) are the training data; each student starts from the teacher's weights and trains ``settings``
    (:class:`DistillSettings`; ``steps_per_student``: each student's own optimiser steps instead of
    ``settings.steps``, in the order of ``students``) on :class:`~toydiff.training.distill.GridMapDistillation`
    (``weighting``: its :data:`~toydiff.training.distill.MAP_WEIGHTINGS`). ``init_from`` ``{N: M}``: student N
    starts from student M's trained weights instead (it trains after M; the default ``{1: 2}``: the one-step
    student from the two-step one, as a progressive round would, where the teacher's weights gave FID 440).
    ``grids`` ``{N: timesteps}``: student N's own grid (:func:`student_grids`; by default the two-step student
    splits at SNR 1/3, (999, 374), the others are trailing). ``workers`` > 1: the paths and the students are shared out
    over that many spawned processes of one thread each (the thread policy per model; the students are
    independent, so the result is the same as with one worker). ``resume``: a student whose checkpoint exists is
    loaded (and finished if it stopped early). ``on_student(index, steps, student, checkpoint)`` after each
    student finishes (its EMA weights, loaded; 1-based index in ``students``)."""
    from image_track.loaded import default_checkpoint, load_model

    settings = settings or DistillSettings()
    workers = check_int(workers, "workers", min=1)
    students, steps_per_student, init_from = _check_students(students, steps_per_student, init_from, settings)
    source = Path(checkpoint) if checkpoint is not None else default_checkpoint(conditional=False)
    m = load_model(source)
    if m.conditional:
        raise ValueError(f"checkpoint {source} is class-conditional; distillation here takes unconditional models")
    grid_of = student_grids(m.process, students, grids, teacher_steps=teacher_steps)
    student_network(m.model, m.process, grid_of[students[0]], experts=experts)  # a refusal before minutes of paths
    sha = file_sha256(source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        paths, record = mnist_teacher_paths(m.model, m.process, out=out, students=list(grid_of.values()), pool=pool,
                                            teacher_steps=teacher_steps, teacher_method=teacher_method,
                                            pool_seed=pool_seed, teacher_sha256=sha, progress=progress,
                                            source=source, workers=workers)
        info = {k: record[k] for k in ("teacher_sha256", "pool", "pool_seed", "teacher_sampler")}
        jobs = [{"source": str(source), "steps": n, "grid": grid_of[n], "times": record["times"], "weighting": weighting,
                 "info": info | {"start": f"the {init_from[n]}-step student" if n in init_from else "the teacher",
                                 "experts": bool(experts)},
                 "settings": DistillSettings(**(vars(settings) | {"steps": k})), "checkpoint": str(out / f"map_{n}steps.safetensors"), "resume": resume,
                 "experts": bool(experts), "progress": progress, "position": i % workers,
                 "paths_file": str(out / PATHS_FILE), "paths": paths if workers == 1 else None}
                for i, (n, k) in enumerate(zip(students, steps_per_student))]

        def done(i: int, written: str) -> None:
            if on_student is not None:
                on_student(i + 1, students[i], load_model(written).model, Path(written))

        _run_students(jobs, {i: students.index(init_from[n]) for i, n in enumerate(students) if n in init_from},
                      workers, done)
    return [Path(j["checkpoint"]) for j in jobs]


def _check_students(students, steps_per_student, init_from, settings) -> tuple[list[int], list[int], dict]:
    """:func:`map_distill_mnist`'s students, their steps and ``init_from`` (default ``{1: 2}``, kept to the students
    trained here), checked."""
    students = [check_int(n, "students", min=1) for n in students]
    if not students or len(set(students)) != len(students):
        raise ValueError(f"students must be distinct step counts, got {students}")
    init_from = {1: 2} if init_from is None else dict(init_from)
    init_from = {n: k for n, k in init_from.items() if n in students and k in students}
    if any(n == k for n, k in init_from.items()) or any(k in init_from for k in init_from.values()):
        raise ValueError(f"init_from must map a student to another student that starts from the teacher, got {init_from}")
    steps = [settings.steps] * len(students) if steps_per_student is None else steps_per_student
    steps = [check_int(n, "steps_per_student", min=1) for n in steps]
    if len(steps) != len(students):
        raise ValueError(f"steps_per_student must give one count per student {students}, got {steps}")
    return students, steps, init_from


def _run_students(jobs: list[dict], source_of: dict[int, int], workers: int, done: Callable) -> None:
    """Train ``jobs`` (here, or on ``workers`` spawned processes as they free up); job k of ``source_of`` waits for
    job ``source_of[k]`` and starts from its checkpoint; ``done(i, path)`` as each finishes."""
    ready = [i for i in range(len(jobs)) if i not in source_of]  # students that start from the teacher

    def release(i: int) -> list[int]:  # the students waiting for student i, now that it is written
        nxt = [k for k, src in source_of.items() if src == i]
        for k in nxt:
            jobs[k]["init"] = jobs[i]["checkpoint"]
        return nxt

    if workers == 1:
        while ready:
            i = ready.pop(0)
            done(i, _train_student(jobs[i]))
            ready += release(i)
        return
    from concurrent.futures import FIRST_COMPLETED, wait

    with _spawn_pool(workers) as ex:
        running = {ex.submit(_train_student, jobs[i]): i for i in ready}
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = running.pop(fut)
                done(i, fut.result())
                running.update({ex.submit(_train_student, jobs[k]): k for k in release(i)})
