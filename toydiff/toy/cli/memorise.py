"""``toydiff toy memorise``: copy rates of a ``--fixed-data`` run and of its training set's exact (empirical) ε*.

    toydiff toy memorise --run runs/mem64 --out mem/                      # a --fixed-data run: copy rates
    toydiff toy memorise --dataset 8gaussians --n-train 64 --out mem/     # the empirical ε* alone

Writes memorise.png and memorise.json into ``--out``; bad input is one stderr line, exit 2.
"""

from __future__ import annotations

import json

import torch

from toydiff.bounds import size_arg
from toydiff.cli import check_writable, fail
from toydiff.options import seed_arg
from toydiff.outputs import atomic_write_text, save_figure, staged_folder
from toydiff.sampling.loop import METHODS
from toydiff.toy.cli.common import PROG
from toydiff.toy.datasets import DATASETS

__all__ = ["HELP", "add_parser", "run"]

HELP = "copy rates of a --fixed-data run and of its training set's exact eps*"


def add_parser(sub) -> None:
    mm = sub.add_parser("memorise", help=HELP)
    mm.add_argument("--run", help="a run trained with --fixed-data (its training points are replayed)")
    mm.add_argument("--dataset", choices=DATASETS, default="two_gaussians", help="without --run")
    mm.add_argument("--n-train", type=size_arg("n_train"), default=None, help="without --run: training points drawn")
    mm.add_argument("--n", type=size_arg("n"), default=2000, help="samples (default 2000)")
    mm.add_argument("--method", choices=METHODS, default="ddpm", help="sampler")
    mm.add_argument("--steps", type=size_arg("steps"), default=None, help="respaced sampling steps (default: every step)")
    mm.add_argument("--seed", type=seed_arg, default=0, help="seed of the samples (and, without --run, of the training points)")
    mm.add_argument("--out", required=True, help="output folder (memorise.png, memorise.json)")



def run(a) -> int:
    """Run ``toydiff toy memorise``."""
    import matplotlib

    matplotlib.use("Agg")
    from toydiff.toy import labs
    from toydiff.toy.figures.memorisation import memorisation_mpl
    from toydiff.toy.run import load_toy, oracle_run

    if (a.run is None) == (a.n_train is None):
        fail(f"{PROG} memorise: error: give exactly one of --run RUN or --n-train N")
    out = check_writable(a.out, "--out", folder=True)
    if a.run is not None:
        run = load_toy(a.run)
        train = labs.training_points(run)
    else:
        run = oracle_run(a.dataset)
        if a.n_train < 2:
            fail(f"{PROG} memorise: error: --n-train must be at least 2 (a copy needs a second-nearest point)")
        train = run.normalizer.forward(run.dataset.sample(a.n_train, torch.Generator().manual_seed(a.seed)).double())
    summary, arr = labs.memorisation_report(run, train, n=a.n, seed=a.seed, method=a.method, steps=a.steps)
    who = [w for w in ("model", "empirical") if w in summary]
    fig = memorisation_mpl(train, {w: arr[w] for w in who}, {w: arr[f"{w}_copy"] for w in who},
                           title=f"{run.dataset.name}, {train.shape[0]} training points (copy: nearest/second < 1/3)")
    with staged_folder(out) as tmp:  # a failure leaves no partial report
        save_figure(fig, tmp / "memorise.png", dpi=110)
        atomic_write_text(tmp / "memorise.json", json.dumps(summary, indent=1))
    for w in who:
        print(f"{w:>9}: copy rate {summary[w]['copy_rate']:.1%} of {a.n} samples "
              f"({summary[w]['unique_copied']} of {train.shape[0]} training points copied)")
    print(f"wrote memorise.png and memorise.json to {out}")
    return 0
