"""Distil the committed ``tiny_uncond`` to 4, 2 and 1 DDIM steps on CPU and score every student (issue 24).

    python bench/mnist_distill.py                                  # flow-map distillation, the default recipe
    python bench/mnist_distill.py --method progressive             # progressive distillation, 64 → 32 → … → 1
    python bench/mnist_distill.py --pool 512 --steps-per-round 100 --eval-n 300 --out /tmp/map   # a short check

``--method map`` (:func:`image_track.training.distill.map_distill_mnist`): the teacher's DPM-Solver++(2M) paths
(16 trailing steps) from ``--pool`` noises, computed once, and one student per step count, each from the teacher's
weights, trained ``--steps-per-round`` steps of batch ``--batch-size`` on its own grid's jumps (the error where
each jump lands). ``--method progressive`` (:func:`~image_track.training.distill.distill_mnist`, Salimans & Ho 2022):
halving rounds from ``--start-steps``. One table: the teacher at 50 DDIM steps (its usual sampler), at 16 DPM++
steps (the paths' sampler), and with the students' sampler (deterministic DDIM, trailing spacing) and DPM++
at 4, 2, 1 steps; each student with its own sampler (DDIM on its grid: the 2-step student's splits at SNR 1/3,
(999, 374), unless ``--grid 2=999,499``); every row scored by :func:`image_track.evaluate.mnist_metrics` on
``--eval-n`` samples (FID-MNIST, KID, precision / recall with k = 3, the confident share) beside the real-vs-real
floors at the same n. Then, for the map students, each jump's RMS path error against 512 held-out teacher paths
(another seed), beside the teacher's own DDIM jump: where along t the error sits. Last, the goal's ratio: each
student's FID over the teacher's DDIM 50 FID on ``--draws`` independent draws (draw d: samples seeded from
``seed + d``, n real test and training digits drawn with that seed), mean ± sd.

Goal (issue 24): the student at 4 NFE within 1.2× the teacher's FID at 50 NFE, at 2 NFE within 1.5×; ≤ 30 min.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from toydiff.threads import configure_threads

from image_track import evaluate
from image_track.loaded import default_checkpoint, load_model
from image_track.sampling import generate
from image_track.training.distill_cli import MAP_STEPS, _grid
from image_track.training.distill import (DistillSettings, distill_mnist, map_distill_mnist, mnist_teacher_paths,
                                          sampler_keywords, student_grids)
from toydiff.training.distill import GridMapDistillation, file_sha256


def _row(name: str, nfe: int, r: dict) -> str:
    return (f"| {name} | {nfe} | {r['fid']:.2f} | {r['kid']:.3g} ± {r['kid_sd']:.2g} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {r['confident']:.3f} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="the teacher (default: the committed tiny_uncond)")
    p.add_argument("--method", choices=("map", "progressive"), default="map")
    p.add_argument("--out", default=None, help="folder for the checkpoints (default runs/mnist_distill_METHOD)")
    p.add_argument("--students", default="4,2,1", help="map: the students' steps")
    p.add_argument("--pool", type=int, default=16384, help="map: teacher paths")
    p.add_argument("--teacher-steps", type=int, default=16, help="map: the teacher's DPM++ steps per path")
    p.add_argument("--start-steps", type=int, default=64, help="progressive")
    p.add_argument("--rounds", type=int, default=6, help="progressive")
    p.add_argument("--steps-per-round", default=None,
                   help="per student (map: 4000,4000,2500 for students 4,2,1; one count or one per student) / per "
                        "round (progressive: 3500)")
    p.add_argument("--workers", type=int, default=2, help="map: processes of one thread each")
    p.add_argument("--grid", type=_grid, action="append", default=None, metavar="N=T1,T2,...",
                   help="map: student N's own grid (default: trailing, the 2-step split at SNR 1/3: 2=999,374)")
    p.add_argument("--experts", action=argparse.BooleanOptionalAction, default=True,
                   help="map: one copy of the teacher per jump (the CLI's default)")
    p.add_argument("--batch-size", type=int, default=None, help="map: 64, progressive: 32")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weighting", default=None, choices=("landing", "truncated-snr", "snr"))
    p.add_argument("--eval-n", type=int, default=1000)
    p.add_argument("--draws", type=int, default=5,
                   help="independent draws (sample seeds and reference sets) for the FID ratio to the teacher")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the policy, 1)")
    p.add_argument("--resume", action="store_true")
    a = p.parse_args(argv)
    n_threads = configure_threads(a.threads)
    source = Path(a.checkpoint) if a.checkpoint else default_checkpoint(conditional=False)
    out = Path(a.out or f"runs/mnist_distill_{a.method}")
    teacher = load_model(source)
    ref = evaluate.MnistReference(a.eval_n, seed=a.seed)
    f = ref.floors
    rows = [f"| real vs real (the floor: {a.eval_n} train vs {a.eval_n} test digits) | – | {f['fid_floor']:.2f} | "
            f"{f['kid_floor']:.3g} ± {f['kid_floor_sd']:.2g} | {f['precision_floor']:.3f} | {f['recall_floor']:.3f} | "
            f"{f['confident_floor']:.3f} |"]

    def score(model, **kw) -> dict:
        return evaluate.mnist_metrics(generate(model, teacher.process, a.eval_n, seed=a.seed, **kw), ref)

    if a.method == "map":
        finals = [int(v) for v in a.students.split(",")]
    else:
        finals = [a.start_steps >> (r + 1) for r in range(a.rounds)]
    own_grid = student_grids(teacher.process, finals, dict(a.grid or {}), teacher_steps=a.teacher_steps) \
        if a.method == "map" else {}
    rows.append(_row("teacher, DDIM 50 (linspace)", 50, score(teacher.model, method="ddim", steps=50)))
    rows.append(_row("teacher, DPM++(2M) 16 (trailing: the paths' sampler)", 16,
                     score(teacher.model, method="dpm++2m", steps=16, options={"spacing": "trailing"})))
    for n in finals:
        rows.append(_row(f"teacher, DDIM {n} (trailing)", n, score(teacher.model, **sampler_keywords(teacher.process, n))))
        if not isinstance(own_grid.get(n, n), int):  # the student's own grid, where it is not trailing
            rows.append(_row(f"teacher, DDIM {n} (grid {own_grid[n]})", n,
                             score(teacher.model, **sampler_keywords(teacher.process, own_grid[n]))))
        if n > 1:
            rows.append(_row(f"teacher, DPM++(2M) {n} (trailing)", n,
                             score(teacher.model, method="dpm++2m", steps=n, options={"spacing": "trailing"})))
    t0, times, scoring, students, done = time.perf_counter(), {}, [0.0], {}, {}

    def on_student(r, steps, student, written):  # written: map's checkpoint, progressive's trainer
        t1 = time.perf_counter()
        times[steps] = t1 - t0 - scoring[0]  # distillation alone: the scoring of earlier students taken out
        own = load_model(written).sampler if isinstance(written, Path) else sampler_keywords(teacher.process, steps)
        students[steps] = (student, own)
        name = f"student round {r}" if a.method == "progressive" else "flow-map student"
        grid = "trailing" if isinstance(own["steps"], int) else f"grid {tuple(own['steps'])}"
        done[steps] = _row(f"{name}, DDIM {steps} ({grid})", steps, score(student, **own))
        scoring[0] += time.perf_counter() - t1
        print(done[steps], f"({times[steps] / 60:.1f} min of distillation so far)", flush=True)

    lr, seed = a.lr, a.seed
    if a.method == "map":
        per = [int(v) for v in a.steps_per_round.split(",")] if a.steps_per_round else \
            [MAP_STEPS.get(n, 6000) for n in finals]  # the CLI's defaults
        per = per * len(finals) if len(per) == 1 else per
        settings = DistillSettings(batch_size=a.batch_size or 64, lr=lr, seed=seed)
        map_distill_mnist(source, out=out, students=finals, pool=a.pool, teacher_steps=a.teacher_steps,
                          settings=settings, weighting=a.weighting or "landing", pool_seed=seed, resume=a.resume,
                          workers=a.workers, steps_per_student=per, experts=a.experts,
                          grids=dict(a.grid) if a.grid else None, on_student=on_student)
        recipe = (f"flow-map distillation of {source.name}: {a.pool} DPM++(2M) {a.teacher_steps}-step teacher paths, "
                  f"students {finals} trained {per} steps (batch {settings.batch_size}, lr {lr:g}, "
                  f"{a.weighting or 'landing'}, {'one expert per jump' if a.experts else 'one network'}) on "
                  f"{a.workers} worker(s)")
    else:
        settings = DistillSettings(steps=int(a.steps_per_round or 3500), batch_size=a.batch_size or 32, lr=lr, seed=seed)
        distill_mnist(source, out=out, rounds=a.rounds, start_steps=a.start_steps, settings=settings,
                      weighting=a.weighting or "truncated-snr", resume=a.resume, on_round=on_student)
        recipe = (f"progressive distillation of {source.name}: {a.start_steps} → {finals[-1]} steps, {a.rounds} rounds "
                  f"of {settings.steps} steps (batch {settings.batch_size}, lr {lr:g}, {a.weighting or 'truncated-snr'})")
    print(f"\n{recipe}, {n_threads} thread(s); distillation wall time {max(times.values()) / 60:.1f} min (scoring not "
          f"included); n = {a.eval_n}\n")
    print("| model | NFE | FID-MNIST | KID | precision | recall | confident |\n|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows + [done[n] for n in sorted(done, reverse=True)]))
    if a.method == "map":
        grids = [students[n][1]["steps"] for n in finals]  # each student's step count or explicit grid
        held, record = mnist_teacher_paths(teacher.model, teacher.process, out=out / "held_out", students=grids,
                                           pool=512, teacher_steps=a.teacher_steps, pool_seed=seed + 1,
                                           teacher_sha256=file_sha256(source))
        print("\nRMS path error of each jump (pixels in [−1, 1]) on 512 held-out teacher paths (seed "
              f"{seed + 1}), the student's one step against the teacher's DDIM step from the same z_t:\n")
        print("| steps | jump (t → s) | teacher DDIM | student |\n|---:|---|---:|---:|")
        for n, grid in zip(finals, grids):
            obj = GridMapDistillation(teacher.process, grid, record["times"])
            mine, theirs = obj.jump_errors(students[n][0], held), obj.jump_errors(teacher.model, held)
            for j in range(n):
                print(f"| {n} | {int(obj.starts[j])} → {int(obj.ends[j])} | {float(theirs[j]):.4f} | {float(mine[j]):.4f} |")

    _ratios(teacher, students, a)


def _ratios(teacher, students: dict, a) -> None:
    """The FID of each student over the teacher's DDIM 50 FID on ``a.draws`` independent draws (table)."""
    import statistics

    if a.draws < 1:
        return
    fids: dict = {"teacher": []} | {n: [] for n in students}
    for d in range(a.draws):
        ref = evaluate.MnistReference(a.eval_n, seed=a.seed + d)
        for key, model, kw in [("teacher", teacher.model, {"method": "ddim", "steps": 50})] + \
                [(n, *students[n]) for n in students]:
            x = generate(model, teacher.process, a.eval_n, seed=a.seed + d, **kw)
            fids[key].append(evaluate.mnist_metrics(x, ref)["fid"])
    sd = (lambda v: statistics.stdev(v) if len(v) > 1 else float("nan"))
    print(f"\nFID over {a.draws} independent draws (n = {a.eval_n} each; floor {ref.floors['fid_floor']:.2f} at the "
          f"last), and each student's FID over the teacher's DDIM 50 FID on the same draw:\n")
    print("| model | NFE | FID mean ± sd | FID / teacher's, mean ± sd |\n|---|---:|---:|---:|")
    t = fids["teacher"]
    print(f"| teacher, DDIM 50 | 50 | {statistics.mean(t):.2f} ± {sd(t):.2f} | 1 |")
    for n in sorted(students, reverse=True):
        r = [f / g for f, g in zip(fids[n], t)]
        print(f"| student | {n} | {statistics.mean(fids[n]):.2f} ± {sd(fids[n]):.2f} | "
              f"{statistics.mean(r):.3f} ± {sd(r):.3f} |")


if __name__ == "__main__":
    main()
