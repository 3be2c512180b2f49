"""``toydiff toy distill``: progressive distillation (Salimans & Ho 2022) of a trained toy run, round by round.

    toydiff toy distill runs/8g-fm --rounds 3 --out runs/8g-pd          # 8 → 4 → 2 → 1 steps

Writes ``round{r}_{N}steps.safetensors`` per round into ``--out`` (each an ordinary toy run:
``toydiff toy sample --run FILE --method euler --steps N``; its metadata's ``distilled`` record gives the
sampler keywords, the teacher's hash and the round) and prints, per round, the distance to fresh data of
the student at N steps next to the teacher at N and 2N steps (1-D: W1; 2-D: sliced W, data units).
"""

from __future__ import annotations

from pathlib import Path

from toydiff.cli import check_writable, fail
from toydiff.options import positive, seed_arg
from toydiff.toy.cli.common import PROG

__all__ = ["HELP", "add_parser", "run"]

HELP = "progressive distillation (Salimans & Ho 2022) of a trained run to few steps"


def add_parser(sub) -> None:
    d = sub.add_parser("distill", help=HELP,
                       description="Distil a trained run (VP or linear-path flow) into students that take half "
                                   "the deterministic steps of their teacher, round after round; each student "
                                   "starts from its teacher's weights. Writes one run file per round into --out.")
    d.add_argument("checkpoint", help="the teacher: a run folder or its checkpoint.safetensors (toydiff toy train)")
    d.add_argument("--out", required=True, help="folder for the rounds' run files")
    d.add_argument("--rounds", type=positive(int), default=3, help="halving rounds (default %(default)s)")
    d.add_argument("--start-steps", type=positive(int), default=None,
                   help="the teacher's steps in round 1 (default 2**rounds: the last student takes 1 step)")
    d.add_argument("--steps-per-round", type=positive(int), default=1500, help="optimiser steps per round")
    d.add_argument("--weighting", choices=("truncated-snr", "snr"), default="truncated-snr",
                   help="loss weight of the x-space error: max(SNR, 1) (the paper's) or SNR (the ε-space loss)")
    d.add_argument("--n", type=positive(int), default=5_000, help="samples per distance (default %(default)s)")
    d.add_argument("--seed", type=seed_arg, default=0, help="seed of the data, the training and the samples")
    d.add_argument("--resume", action="store_true", help="load the rounds --out already holds instead of retraining")
    d.add_argument("--overwrite", action="store_true", help="replace the rounds --out holds (default: refused)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")


def run(a) -> int:
    """Run ``toydiff toy distill``."""
    from toydiff.toy.distill import distill_toy, few_step_distances
    from toydiff.toy.run import CHECKPOINT_NAME, load_toy

    out = check_writable(a.out, "--out", folder=True)
    held = sorted(out.glob("round*_*steps.safetensors")) if out.exists() else []
    if held and not (a.resume or a.overwrite):
        fail(f"{PROG} distill: error: --out {out} already holds distillation rounds ({held[0].name}); pass --resume "
             "to continue them, --overwrite to replace them, or choose another --out")
    if a.resume and a.overwrite:
        fail(f"{PROG} distill: error: --resume and --overwrite exclude each other")
    start = a.start_steps if a.start_steps is not None else 2 ** a.rounds
    if start % 2 ** a.rounds:
        fail(f"{PROG} distill: error: --start-steps must be divisible by 2**rounds = {2 ** a.rounds}, got {start}")
    source = Path(a.checkpoint)
    teacher = load_toy(source)
    teacher.process.step_options(1)  # a process without a DDIM-equivalent step is refused here (ValueError)
    if a.overwrite:
        for f in held:
            f.unlink()
    runs = distill_toy(teacher, rounds=a.rounds, start_steps=start, steps_per_round=a.steps_per_round, seed=a.seed,
                       out=out, resume=a.resume, progress=not a.quiet, weighting=a.weighting,
                       source=source / CHECKPOINT_NAME if source.is_dir() else source)
    print(f"progressive distillation of {a.checkpoint} ({teacher.dataset.name}, {teacher.process.describe()}): "
          f"wrote {out}; distance to {a.n} fresh data points (lower is better)")
    print("| round | steps N | student @ N | teacher @ N | teacher @ 2N |\n|---:|---:|---:|---:|---:|")
    for r, student in enumerate(runs, start=1):
        n_steps = student.metadata["distilled"]["steps"]
        row = [few_step_distances(student, n_steps, n=a.n, seed=a.seed),
               few_step_distances(teacher, n_steps, n=a.n, seed=a.seed),
               few_step_distances(teacher, 2 * n_steps, n=a.n, seed=a.seed)]
        print(f"| {r} | {n_steps} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    return 0
