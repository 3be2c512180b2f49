"""``toydiff discrete train``: train a denoiser of a categorical table into a run folder.

    toydiff discrete train --out runs/discrete                   # the default recipe: shapes, masked, MDLM loss
    toydiff discrete train --process uniform --T 32 --out runs/u  # D3PM's hybrid loss
    toydiff discrete train --out runs/discrete --steps 3000 --resume

Flags left out take :data:`~toydiff.discrete.training.DEFAULT_RECIPE`'s values (a ``--resume`` takes the run's own).
The folder gets ``checkpoint.safetensors`` (the engine's: atomic, content-hashed) and ``history.json``.
"""

from __future__ import annotations

import json
from dataclasses import fields

from toydiff.cli import check_writable, fail
from toydiff.discrete.cli.common import CHECKPOINT_NAME, PROG
from toydiff.options import positive, seed_arg

__all__ = ["HELP", "add_parser", "run"]

HELP = "train a denoiser (MDLM loss for masked, D3PM hybrid for uniform); exit 3 if it diverges"


def _type(name: str, default):
    if name == "seed":
        return seed_arg
    if name in ("T", "ema_decay", "hybrid"):
        return float if name != "T" else positive(int)
    return positive(type(default))


def add_parser(sub) -> None:
    from toydiff.discrete.training import DEFAULT_RECIPE, Recipe
    from toydiff.discrete.data import DATASETS
    from toydiff.discrete.processes import DISCRETE_PROCESSES
    from toydiff.discrete.schedules import SCHEDULES

    t = sub.add_parser("train", help=HELP, description=HELP + ".")
    t.add_argument("--out", default="runs/discrete", help="run folder (checkpoint.safetensors, history.json)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out (--steps may be raised)")
    t.add_argument("--overwrite", action="store_true", help="replace the run --out holds")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    choices = {"dataset": tuple(DATASETS), "process": tuple(DISCRETE_PROCESSES), "schedule": tuple(SCHEDULES)}
    g = t.add_argument_group("recipe (default: the default recipe's value; with --resume, the run's)")
    for f in fields(Recipe):
        default = getattr(DEFAULT_RECIPE, f.name)
        kw = {"choices": choices[f.name]} if f.name in choices else {"type": _type(f.name, default)}
        extra = " (continuous time if not given)" if f.name == "T" else " (0: no EMA)" if f.name == "ema_decay" else ""
        g.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                       help=f"default {default}{extra}", **kw)


def run(a) -> int:
    """Run ``toydiff discrete train``: train into ``--out``, write history.json, print the loss next to its floor."""
    from toydiff.discrete.training import DEFAULT_RECIPE, Recipe, read_recipe, summary, train_discrete, with_overrides
    from toydiff.outputs import atomic_write_text
    from toydiff.training.checkpoint import run_lock

    if a.resume and a.overwrite:
        fail(f"{PROG} train: error: --resume and --overwrite exclude each other")
    out = check_writable(a.out, "--out", folder=True)
    path = out / CHECKPOINT_NAME
    if a.resume and not path.exists():
        fail(f"{PROG} train: error: --resume: --out {out} holds no run ({path} is missing)")
    if path.exists() and not (a.resume or a.overwrite):
        fail(f"{PROG} train: error: --out {out} already holds a run; pass --resume, --overwrite or another --out")
    values = {f.name: getattr(a, f.name) for f in fields(Recipe)}
    base = read_recipe(path) if a.resume else DEFAULT_RECIPE
    if a.resume:
        changed = [k for k, v in values.items() if v is not None and k != "steps" and v != getattr(base, k)]
        if changed:
            fail(f"{PROG} train: error: --resume continues the run's own recipe; --{changed[0].replace('_', '-')} "
                 "differs from it (only --steps may change)")
    no_ema = values.pop("ema_decay") == 0  # --ema-decay 0: no EMA
    recipe = with_overrides(base, **values, **({} if a.ema_decay is None or no_ema else {"ema_decay": a.ema_decay}))
    if no_ema:
        recipe = Recipe.from_dict(recipe.to_dict() | {"ema_decay": None})
    recipe.build(), recipe.train_config()  # a bad value: exit 2 before --out is touched
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        result = train_discrete(recipe, checkpoint=path, resume=a.resume, progress=not a.quiet)
    s = summary(result)
    atomic_write_text(out / "history.json", json.dumps(result.history.to_dict(), indent=1))
    print(f"{result.process.describe()} on {recipe.dataset}: held-out loss {s['val_loss']:.4f} nats, Bayes floor "
          f"{s['floor']:.4f} (exact denoiser, same draws), ratio {s['ratio']:.3f}"
          + ("" if s["exact_floor"] is None else f"; closed-form floor {s['exact_floor']:.4f}") + f"; checkpoint {path}")
    return 0
