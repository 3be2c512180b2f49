"""``toydiff mnist distill``: progressive distillation (Salimans & Ho 2022) of an unconditional MNIST model.

    toydiff mnist distill --out runs/pd --rounds 2 --start-steps 8 --steps-per-round 2000   # tiny_uncond: 8 → 4 → 2
    toydiff mnist eval --checkpoint runs/pd/round2_2steps.safetensors --method ddim --steps 2 --spacing trailing

Each round's checkpoint (``round{r}_{N}steps.safetensors`` in ``--out``) is an ordinary model of the teacher's
process; its metadata's ``distilled`` record names the teacher's SHA-256, the round and the sampler keywords.
Prints each round's student at N steps with :func:`image_track.evaluate.mnist_metrics` (``--eval-n``, 0: none).
"""

from __future__ import annotations

from toydiff.cli import check_writable, fail
from toydiff.options import positive, seed_arg

__all__ = ["HELP", "add_distill_arguments", "run_distill"]

HELP = "progressive distillation (Salimans & Ho 2022) of an unconditional model to few DDIM steps"


def add_distill_arguments(p) -> None:
    p.add_argument("--checkpoint", default=None, help="the teacher (default: the committed tiny_uncond)")
    p.add_argument("--out", required=True, help="folder for the rounds' checkpoints")
    p.add_argument("--rounds", type=positive(int), default=2, help="halving rounds (default %(default)s)")
    p.add_argument("--start-steps", type=positive(int), default=8, help="the teacher's steps in round 1 (default 8)")
    p.add_argument("--steps-per-round", type=positive(int), default=2000, help="optimiser steps per round")
    p.add_argument("--batch-size", type=positive(int), default=64, help="images per step (default %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="peak AdamW learning rate (default %(default)s: it beat 2e-4 in a 300-step round)")
    p.add_argument("--weighting", choices=("truncated-snr", "snr"), default="truncated-snr",
                   help="loss weight of the x-space error: max(SNR, 1) (the paper's) or SNR (the ε-space loss)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the training draws and the samples")
    p.add_argument("--eval-n", type=int, default=1000, help="samples scored per round (0: no scoring)")
    p.add_argument("--resume", action="store_true", help="continue the rounds --out holds")
    p.add_argument("--overwrite", action="store_true", help="replace the rounds --out holds (default: refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run_distill(a, prog: str = "toydiff mnist") -> int:
    """Run ``toydiff mnist distill``."""
    from image_track import evaluate
    from image_track.sampling import generate
    from image_track.training.distill import DistillSettings, distill_mnist, sampler_keywords

    out = check_writable(a.out, "--out", folder=True)
    held = sorted(out.glob("round*_*steps.safetensors")) if out.exists() else []
    if a.resume and a.overwrite:
        fail(f"{prog} distill: error: --resume and --overwrite exclude each other")
    if held and not (a.resume or a.overwrite):
        fail(f"{prog} distill: error: --out {out} already holds distillation rounds ({held[0].name}); pass --resume "
             "to continue them, --overwrite to replace them, or choose another --out")
    if a.start_steps % 2 ** a.rounds:
        fail(f"{prog} distill: error: --start-steps must be divisible by 2**rounds = {2 ** a.rounds}, "
             f"got {a.start_steps}")
    if a.eval_n != 0 and not 4 <= a.eval_n <= 10_000:
        fail(f"{prog} distill: error: --eval-n must be 0 or in 4..10000, got {a.eval_n}")
    settings = DistillSettings(steps=a.steps_per_round, batch_size=a.batch_size, lr=a.lr, seed=a.seed)
    refs: list = []  # the reference digits and floors, built at the first report
    if a.overwrite:
        for f in held:
            f.unlink()

    def report(r, steps, student, trainer):
        if not a.eval_n:
            return
        if not refs:
            refs.append(evaluate.MnistReference(a.eval_n, seed=a.seed))
        ref = refs[0]
        x = generate(student, trainer.objective.process, a.eval_n, seed=a.seed,
                     **sampler_keywords(trainer.objective.process, steps))
        print(f"round {r}, student at {steps} steps: {evaluate.format_metrics(evaluate.mnist_metrics(x, ref))}",
              flush=True)

    paths = distill_mnist(a.checkpoint, out=out, rounds=a.rounds, start_steps=a.start_steps, settings=settings,
                          weighting=a.weighting, resume=a.resume, progress=not a.quiet, on_round=report)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
