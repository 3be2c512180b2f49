"""Progressive distillation (Salimans & Ho 2022) of the committed ``tiny_uncond`` to 4, 2 and 1 DDIM steps on CPU.

    python bench/mnist_distill.py                                  # the full recipe (goal: ≤ 30 min on 2 cores; 1 thread by the policy)
    python bench/mnist_distill.py --start-steps 8 --rounds 2 --steps-per-round 300 --eval-n 300 --out /tmp/pd  # short

Rounds 64 → 32 → … → 2 → 1 by default (:func:`image_track.training.distill.distill_mnist`; each student starts from its teacher's
weights, trains ``--steps-per-round`` steps of batch ``--batch-size`` on the 55k training digits with bf16
autocast where the CPU has AMX), then one table: the teacher at 50 DDIM steps (its usual sampler), the teacher
with the students' own sampler (deterministic DDIM, trailing spacing) at 4, 2, 1 steps, and each student at its
steps; every row scored by :func:`image_track.evaluate.mnist_metrics` on ``--eval-n`` samples (FID-MNIST, KID,
precision / recall with k = 3, the confident share) next to the real-vs-real floors at the same n.

Goal (issue 24): the student at 4 NFE within 1.2× the teacher's FID at 50 NFE, at 2 NFE within 1.5×.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from toydiff.threads import configure_threads

from image_track import evaluate
from image_track.loaded import default_checkpoint, load_model
from image_track.sampling import generate
from image_track.training.distill import DistillSettings, distill_mnist, sampler_keywords

COLUMNS = ("fid", "kid", "precision", "recall", "confident")


def _row(name: str, nfe: int, r: dict) -> str:
    return (f"| {name} | {nfe} | {r['fid']:.2f} | {r['kid']:.3g} ± {r['kid_sd']:.2g} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {r['confident']:.3f} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="the teacher (default: the committed tiny_uncond)")
    p.add_argument("--out", default="runs/mnist_distill", help="folder for the rounds' checkpoints")
    p.add_argument("--start-steps", type=int, default=64)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps-per-round", type=int, default=3500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weighting", default="truncated-snr", choices=("truncated-snr", "snr"))
    p.add_argument("--eval-n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the policy, 1)")
    p.add_argument("--resume", action="store_true")
    a = p.parse_args(argv)
    n_threads = configure_threads(a.threads)
    source = Path(a.checkpoint) if a.checkpoint else default_checkpoint(conditional=False)
    teacher = load_model(source)
    ref = evaluate.MnistReference(a.eval_n, seed=a.seed)
    f = ref.floors
    rows = [f"| real vs real (the floor: {a.eval_n} train vs {a.eval_n} test digits) | – | {f['fid_floor']:.2f} | "
            f"{f['kid_floor']:.3g} ± {f['kid_floor_sd']:.2g} | {f['precision_floor']:.3f} | {f['recall_floor']:.3f} | "
            f"{f['confident_floor']:.3f} |"]

    def score(model, **kw) -> dict:
        return evaluate.mnist_metrics(generate(model, teacher.process, a.eval_n, seed=a.seed, **kw), ref)

    rows.append(_row("teacher, DDIM 50 (linspace)", 50, score(teacher.model, method="ddim", steps=50)))
    finals = [a.start_steps >> (r + 1) for r in range(a.rounds)]
    for n in finals:
        x = score(teacher.model, **sampler_keywords(teacher.process, n))
        rows.append(_row(f"teacher, DDIM {n} (trailing)", n, x))
    t0, times, scoring = time.perf_counter(), {}, [0.0]

    def on_round(r, steps, student, trainer):
        t1 = time.perf_counter()
        times[steps] = t1 - t0 - scoring[0]  # distillation alone: the scoring of earlier rounds taken out
        rows.append(_row(f"student round {r}, DDIM {steps} (trailing)", steps,
                         score(student, **sampler_keywords(teacher.process, steps))))
        scoring[0] += time.perf_counter() - t1
        print(rows[-1], f"({times[steps] / 60:.1f} min of distillation so far)", flush=True)

    settings = DistillSettings(steps=a.steps_per_round, batch_size=a.batch_size, lr=a.lr, seed=a.seed)
    distill_mnist(source, out=a.out, rounds=a.rounds, start_steps=a.start_steps, settings=settings,
                  weighting=a.weighting, resume=a.resume, progress=False, on_round=on_round)
    print(f"\nprogressive distillation of {source.name}: {a.start_steps} → {finals[-1]} steps, {a.rounds} rounds of "
          f"{a.steps_per_round} steps (batch {a.batch_size}, lr {a.lr:g}, {a.weighting}), {n_threads} thread(s); "
          f"distillation wall time {max(times.values()) / 60:.1f} min (scoring not included); n = {a.eval_n}\n")
    print("| model | NFE | FID-MNIST | KID | precision | recall | confident |\n|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
