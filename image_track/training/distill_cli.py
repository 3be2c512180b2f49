"""``toydiff mnist distill``: an unconditional MNIST model distilled to few DDIM steps.

    toydiff mnist distill --out runs/map                       # flow-map distillation: students at 4, 2, 1 steps
    toydiff mnist distill --method progressive --out runs/pd --rounds 2 --start-steps 8   # 8 → 4 → 2 (Salimans & Ho)
    toydiff mnist eval --checkpoint runs/map/map_2steps.safetensors   # a student runs its own sampler and grid

``--method map`` (the default; :func:`image_track.training.distill.map_distill_mnist`): the teacher's DPM-Solver++
paths are computed once (``--pool``) and each student of ``--students`` learns its own grid's jumps from them;
``--method progressive``: halving rounds. Every checkpoint (``map_{N}steps`` / ``round{r}_{N}steps.safetensors`` in
``--out``) is an ordinary model of the teacher's process; its metadata's ``distilled`` record names the method, the
teacher's SHA-256 and the student's sampler (DDIM on its grid: trailing spacing, the 2-step student split at SNR 1/3,
(999, 374); ``--grid 2=999,499`` another). Prints each student with its sampler by
:func:`image_track.evaluate.mnist_metrics` (``--eval-n``, 0: none).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toydiff.cli import check_writable, fail
from toydiff.options import positive, seed_arg

__all__ = ["HELP", "add_distill_arguments", "run_distill"]

HELP = "distil an unconditional model to few DDIM steps (flow-map distillation, or progressive)"

#: flow-map students' optimiser steps by their step count when not given (the measured recipe: the 4- and 2-step
#: students train side by side on two workers, the 1-step after the 2-step; 26 min on 2 cores, the paths' 3
#: included, python bench/mnist_distill.py); other counts: 6000
MAP_STEPS = {4: 7000, 2: 5500, 1: 2500}
#: progressive distillation's optimiser steps per round when not given
PROGRESSIVE_STEPS = 2000


def _counts(text: str, distinct: bool) -> list[int]:
    try:
        out = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers like 4,2,1, got {text!r}") from None
    if not out or min(out) < 1 or (distinct and len(set(out)) != len(out)):
        raise argparse.ArgumentTypeError(f"must be {'distinct ' if distinct else ''}positive integers like 4,2,1, "
                                         f"got {text!r}")
    return out


def _students(text: str) -> list[int]:
    return _counts(text, distinct=True)


def _step_counts(text: str) -> list[int]:
    return _counts(text, distinct=False)


def _grid(text: str) -> tuple[int, tuple[int, ...]]:
    n, sep, times = text.partition("=")
    try:
        return int(n), tuple(int(v) for v in times.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be N=T1,T2,... like 2=999,374, got {text!r}") from None


def add_distill_arguments(p) -> None:
    p.add_argument("--checkpoint", default=None, help="the teacher (default: the committed tiny_uncond)")
    p.add_argument("--out", required=True, help="folder for the students' checkpoints")
    p.add_argument("--method", choices=("map", "progressive"), default="map",
                   help="map: flow-map distillation onto each student's grid (Boffi et al. 2024; the default, it "
                        "beat progressive at every step count, docs/measurements.md); progressive: halving rounds "
                        "(Salimans & Ho 2022)")
    p.add_argument("--students", type=_students, default=[4, 2, 1], help="map: the students' steps (default 4,2,1)")
    p.add_argument("--grid", type=_grid, action="append", default=None, metavar="N=T1,T2,...",
                   help="map: student N's own grid, descending timesteps on the teacher's grid from T-1 (repeatable; "
                        "default: trailing spacing, the 2-step student split at SNR 1/3: 2=999,374)")
    p.add_argument("--pool", type=positive(int), default=16384, help="map: teacher paths (default %(default)s)")
    p.add_argument("--teacher-steps", type=positive(int), default=16,
                   help="map: the teacher's DPM-Solver++(2M) steps per path (default %(default)s)")
    p.add_argument("--experts", action=argparse.BooleanOptionalAction, default=True,
                   help="map: give each of a student's jumps its own copy of the teacher's network (eDiff-I's "
                        "experts; default on: N x the parameters, the same cost per step; --no-experts: one network)")
    p.add_argument("--workers", type=positive(int), default=2,
                   help="map: processes (one thread each) that share out the paths and the students (default "
                        "%(default)s: the 2-core machine's cores)")
    p.add_argument("--rounds", type=positive(int), default=2, help="progressive: halving rounds (default %(default)s)")
    p.add_argument("--start-steps", type=positive(int), default=8,
                   help="progressive: the teacher's steps in round 1 (default 8)")
    p.add_argument("--steps-per-round", type=_step_counts, default=None,
                   help="optimiser steps per student (map: one count, or one per student; default 7000, 5500, 2500 "
                        f"for 4, 2, 1 steps) or per round (progressive, default {PROGRESSIVE_STEPS})")
    p.add_argument("--batch-size", type=positive(int), default=None, help="images per step (default 64)")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="peak AdamW learning rate (default %(default)s: it beat 2e-4 in a 300-step round)")
    p.add_argument("--weighting", choices=("landing", "truncated-snr", "snr"), default=None,
                   help="the loss weight: landing (map's default: the error where each jump lands), truncated-snr "
                        "(progressive's default: max(SNR, 1) on the x-space error, the paper's) or snr (the ε loss)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the training draws and the samples")
    p.add_argument("--eval-n", type=int, default=1000, help="samples scored per round (0: no scoring)")
    p.add_argument("--resume", action="store_true", help="continue the rounds --out holds")
    p.add_argument("--overwrite", action="store_true", help="replace the rounds --out holds (default: refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _steps_per_student(a, prog: str) -> list[int] | None:
    """``--steps-per-round`` as one count per student (map; the :data:`MAP_STEPS` defaults) or as given (progressive:
    one count or None); a wrong number of counts fails in one line."""
    per = a.steps_per_round
    if a.method == "map":
        per = [MAP_STEPS.get(n, 6000) for n in a.students] if per is None else per * len(a.students) \
            if len(per) == 1 else per
        if len(per) != len(a.students):
            fail(f"{prog} distill: error: --steps-per-round must give one count or one per student "
                 f"({len(a.students)} for --students {','.join(map(str, a.students))}), got {len(per)}")
    elif per is not None and len(per) != 1:
        fail(f"{prog} distill: error: --steps-per-round takes one count with --method progressive, got {len(per)}")
    return per


def _grids(a, prog: str) -> dict | None:
    """``--grid`` as ``{N: timesteps}``, checked against the teacher's process before anything is written or
    deleted (:func:`image_track.training.distill.student_grids`); a bad one fails in one line."""
    if not a.grid:
        return None
    from image_track.loaded import default_checkpoint, load_model
    from image_track.training.distill import student_grids

    grids = dict(a.grid)
    if a.method != "map" or len(grids) != len(a.grid):
        fail(f"{prog} distill: error: --grid applies to --method map, once per student")
    process = load_model(a.checkpoint or default_checkpoint(conditional=False)).process  # its own errors: --checkpoint
    try:
        student_grids(process, a.students, grids, teacher_steps=a.teacher_steps)
    except ValueError as e:
        fail(f"{prog} distill: error: --grid: {e}")
    return grids


def run_distill(a, prog: str = "toydiff mnist") -> int:
    """Run ``toydiff mnist distill``."""
    from image_track import evaluate
    from image_track.loaded import default_checkpoint, load_model
    from image_track.sampling import generate
    from image_track.training.distill import DistillSettings, distill_mnist, map_distill_mnist, sampler_keywords

    out = check_writable(a.out, "--out", folder=True)
    held = sorted([*out.glob("round*_*steps.safetensors"), *out.glob("map_*steps.safetensors")]) \
        if out.exists() else []
    if a.resume and a.overwrite:
        fail(f"{prog} distill: error: --resume and --overwrite exclude each other")
    if held and not (a.resume or a.overwrite):
        fail(f"{prog} distill: error: --out {out} already holds distilled students ({held[0].name}); pass --resume "
             "to continue them, --overwrite to replace them, or choose another --out")
    if a.method == "progressive" and a.weighting == "landing":
        fail(f"{prog} distill: error: --weighting landing is flow-map distillation's (--method map); progressive takes "
             "truncated-snr or snr")
    weighting = a.weighting or ("landing" if a.method == "map" else "truncated-snr")
    if a.method == "progressive" and a.start_steps % 2 ** a.rounds:
        fail(f"{prog} distill: error: --start-steps must be divisible by 2**rounds = {2 ** a.rounds}, "
             f"got {a.start_steps}")
    if a.eval_n != 0 and not 4 <= a.eval_n <= 10_000:
        fail(f"{prog} distill: error: --eval-n must be 0 or in 4..10000, got {a.eval_n}")
    per = _steps_per_student(a, prog)
    grids = _grids(a, prog)
    settings = DistillSettings(steps=per[0] if per else PROGRESSIVE_STEPS, batch_size=a.batch_size or 64, lr=a.lr,
                               seed=a.seed)
    refs: list = []  # the reference digits and floors, built at the first report
    if a.overwrite:
        for f in held:
            f.unlink()

    def report(r, steps, student, written):  # written: map's checkpoint path, progressive's trainer
        if not a.eval_n:
            return
        if not refs:
            refs.append(evaluate.MnistReference(a.eval_n, seed=a.seed))
        ref = refs[0]
        process = load_model(a.checkpoint or default_checkpoint(conditional=False)).process
        own = load_model(written).sampler if isinstance(written, Path) else sampler_keywords(process, steps)
        x = generate(student, process, a.eval_n, seed=a.seed, **own)
        what = f"round {r}" if a.method == "progressive" else "flow-map distillation"
        print(f"{what}, student at {steps} steps: {evaluate.format_metrics(evaluate.mnist_metrics(x, ref))}",
              flush=True)

    if a.method == "map":
        paths = map_distill_mnist(a.checkpoint, out=out, students=a.students, pool=a.pool,
                                  teacher_steps=a.teacher_steps, settings=settings, weighting=weighting,
                                  pool_seed=a.seed, resume=a.resume, progress=not a.quiet, workers=a.workers,
                                  steps_per_student=per, experts=a.experts, grids=grids, on_student=report)
    else:
        paths = distill_mnist(a.checkpoint, out=out, rounds=a.rounds, start_steps=a.start_steps, settings=settings,
                              weighting=weighting, resume=a.resume, progress=not a.quiet, on_round=report)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
