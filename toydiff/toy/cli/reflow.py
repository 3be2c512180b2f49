"""``toydiff toy reflow``: one round of reflow (Liu et al. 2023) of a flow run, with straightness and few-step
distances before and after.

    toydiff toy reflow --run runs/8g-fm --out runs/8g-rf2 --epochs 60

A run whose process is not a flow (a DDPM run) is refused by :func:`toydiff.toy.reflow.reflow` in one line, exit 2.
"""

from __future__ import annotations

from pathlib import Path

from toydiff.cli import check_writable, fail, positive, seed_arg
from toydiff.toy.cli.common import PROG

__all__ = ["HELP", "add_parser", "run", "compare", "print_comparison"]

HELP = "one round of reflow (Liu et al. 2023) of a flow run"


def add_parser(sub) -> None:
    r = sub.add_parser("reflow", help=HELP,
                       description="Retrain a flow run on (x_0, x_1) pairs of its own ODE (the 2-rectified flow), "
                                   "starting from its weights, and print straightness and few-step distances before "
                                   "and after.")
    r.add_argument("--run", required=True, help="a flow run folder (toydiff toy train --process flow)")
    r.add_argument("--out", required=True, help="the new run folder")
    r.add_argument("--pairs", type=positive(int), default=40_000, help="coupled pairs drawn with the run's ODE")
    r.add_argument("--pair-steps", type=positive(int), default=32, help="Heun steps of the ODE drawing the pairs")
    r.add_argument("--epochs", type=positive(int), default=None, help="default: a third of the recipe's")
    r.add_argument("--n", type=positive(int), default=10_000, help="samples for the before/after distances")
    r.add_argument("--seed", type=seed_arg, default=1)
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--overwrite", action="store_true", help="replace the run --out holds (default: refused)")


def run(a) -> int:
    """Run ``toydiff toy reflow``."""
    from toydiff.toy.reflow import reflow
    from toydiff.toy.run import CHECKPOINT_NAME, load_toy

    out = check_writable(a.out, "--out", folder=True)
    if (out / CHECKPOINT_NAME).exists() and not a.overwrite:
        fail(f"{PROG} reflow: error: --out {out} already holds a run ({out / CHECKPOINT_NAME}); pass --overwrite to "
             "replace it, or choose another --out")
    run = load_toy(a.run)
    if a.overwrite:
        for name in (CHECKPOINT_NAME, "history.json"):
            (out / name).unlink(missing_ok=True)
    new = reflow(run, n_pairs=a.pairs, epochs=a.epochs, seed=a.seed, steps=a.pair_steps, out=out,
                 progress=not a.quiet, source=str(Path(a.run)))
    rows = compare(run, new, n=a.n, seed=a.seed + 1)
    print(f"reflow of {a.run} ({run.dataset.name}, {a.pairs} pairs): wrote {out}")
    print_comparison(rows)
    return 0


def compare(before, after, *, n: int, seed: int, budgets=(1, 2, 4)) -> dict:
    """Straightness and distance to the truth (Euler at each budget) of two flow runs, in data units."""
    import torch

    from toydiff.toy import metrics
    from toydiff.toy.reflow import straightness

    ref = before.dataset.sample(n, torch.Generator().manual_seed(seed + 10_000))
    dist = metrics.wasserstein1 if before.dataset.dim == 1 else metrics.sliced_wasserstein
    rows = {}
    for name, r in (("before (1-rectified)", before), ("after reflow (2-rectified)", after)):
        rows[name] = {"straightness": straightness(r, min(n, 2_000), seed=seed)}
        for b in budgets:
            rows[name][f"{b} NFE"] = dist(r.sample(n, method="euler", steps=b, seed=seed), ref)
    return rows


def print_comparison(rows: dict) -> None:
    keys = list(next(iter(rows.values())))
    print("| model | " + " | ".join(keys) + " |\n|---|" + "---:|" * len(keys))
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + " |")
