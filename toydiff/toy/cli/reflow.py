"""``toydiff toy reflow``: one round of reflow (Liu et al. 2023) of a flow run, with straightness and few-step
distances before and after.

    toydiff toy reflow --run runs/8g-fm --out runs/8g-rf2 --epochs 60

Prints both held-out losses, before and after (see :mod:`toydiff.toy.reflow`): on independent pairs, next
to its floor (it rises: reflow leaves that objective on purpose), and on coupled pairs, the reflow objective
(it falls); writes ``loss.png`` into ``--out``. A run whose process is not a flow (a DDPM run) is refused by
:func:`toydiff.toy.reflow.reflow` in one line, exit 2.
"""

from __future__ import annotations

from pathlib import Path

from toydiff.cli import check_writable, fail

from toydiff.outputs import save_figure
from toydiff.options import positive, seed_arg
from toydiff.toy.cli.common import PROG

__all__ = ["HELP", "add_parser", "run", "compare", "print_comparison", "print_losses", "loss_figure"]

HELP = "one round of reflow (Liu et al. 2023) of a flow run"


def add_parser(sub) -> None:
    r = sub.add_parser("reflow", help=HELP,
                       description="Retrain a flow run on (x_0, x_1) pairs of its own ODE (the 2-rectified flow), "
                                   "starting from its weights, and print straightness and few-step distances before "
                                   "and after, and the held-out losses: on independent pairs next to their floor "
                                   "(it rises: reflow trains another objective) and on coupled pairs (the reflow "
                                   "objective: it falls). Writes the run and loss.png into --out.")
    r.add_argument("--run", required=True, help="a flow run folder (toydiff toy train --process flow)")
    r.add_argument("--out", required=True, help="the new run folder")
    r.add_argument("--pairs", type=positive(int), default=40_000, help="coupled pairs drawn with the run's ODE")
    r.add_argument("--pair-steps", type=positive(int), default=32, help="Heun steps of the ODE drawing the pairs")
    r.add_argument("--epochs", type=positive(int), default=None, help="training epochs (default: a third of the recipe's)")
    r.add_argument("--n", type=positive(int), default=10_000, help="samples for the before/after distances")
    r.add_argument("--seed", type=seed_arg, default=1, help="seed of the pairs' noise x_1 and of the training")
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
    losses: dict = {}
    new = reflow(run, n_pairs=a.pairs, epochs=a.epochs, seed=a.seed, steps=a.pair_steps, out=out,
                 progress=not a.quiet, source=str(Path(a.run)), losses=losses)
    save_figure(loss_figure(new, losses, title=f"{run.dataset.name}: reflow"), out / "loss.png", dpi=110)
    rows = compare(run, new, n=a.n, seed=a.seed + 1)
    print(f"reflow of {a.run} ({run.dataset.name}, {a.pairs} pairs): wrote {out} (checkpoint, history.json, loss.png)")
    print_losses(losses)
    print_comparison(rows)
    return 0


def print_losses(losses: dict) -> None:
    """The held-out losses of :func:`toydiff.toy.reflow.reflow`'s ``losses``, before and after, and what each is."""
    ind, cou = losses["independent"], losses["coupled"]
    floor = ind["floor"]
    ratio = (lambda v: f" = {v / floor:.3f} x floor") if floor else (lambda v: "")
    print("held-out loss on independent pairs (x_0 from the data, x_1 ~ N(0, I) apart: the 1-rectified objective; "
          + (f"floor {floor:.4f}, the exact marginal field's loss on the same draws):" if floor else "no oracle, no floor):"))
    print(f"  before {ind['before']:.4f}{ratio(ind['before'])}, after {ind['after']:.4f}{ratio(ind['after'])}")
    print("held-out loss on coupled pairs (x_1 and the ODE's x_0 of it: the objective reflow minimises; "
          "no closed-form floor):")
    print(f"  before {cou['before']:.4f}, after {cou['after']:.4f}")
    print("  reflow trades the first for the second: its straighter field predicts each coupled pair's own "
          "x_1 - x_0, not the independent pairs' average, so the independent loss rises above its floor by design.")


def loss_figure(new, losses: dict, *, title: str):
    """:func:`~toydiff.toy.figures.training.loss_curves_mpl` of the reflowed run (train loss: coupled pairs;
    held-out: independent pairs, with its floor), plus the held-out loss on coupled pairs and both losses of
    the starting model at epoch 0."""
    from toydiff.toy.figures.training import loss_curves_mpl

    fig = loss_curves_mpl(new.history, title=title, meta=new.metadata)
    ax = fig.axes[0]
    names = {"train": "train (coupled pairs)", "held-out (EMA weights)": "held-out, independent pairs (EMA weights)"}
    for line in ax.lines:
        label = names.get(line.get_label(), line.get_label())
        line.set_label(label.replace("Bayes-optimal floor", "floor of the independent-pairs loss"))
    epochs = [r["epoch"] for r in new.history.records]
    ax.plot([0] + epochs, [losses["coupled"]["before"]] + losses["coupled_by_epoch"], marker=".",
            label="held-out, coupled pairs (the reflow objective)")
    ax.plot([0], [losses["independent"]["before"]], "o", color=ax.lines[1].get_color(),
            label="epoch 0: the 1-rectified model")
    ax.plot([0], [losses["coupled"]["before"]], "o", color=ax.lines[-2].get_color())
    ax.set_yscale("log")  # the coupled loss sits orders of magnitude below the independent one
    ax.set_title(f"{title}: trained on coupled pairs;\nheld-out on independent pairs rises above its floor by design",
                 fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.axes[1].set_title("held-out loss (independent pairs) by t bucket")
    return fig


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
