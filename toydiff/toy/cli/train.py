"""``toydiff toy train``: train an MLP denoiser under a process, into a run folder.

    toydiff toy train --dataset two_gaussians --out runs/toy                      # the seed exercise, seconds
    toydiff toy train --dataset 8gaussians --process flow --interpolant cosine --out runs/cos
    toydiff toy train --out runs/toy --epochs 120 --resume                        # continue a run
    toydiff toy train --out runs/toy --overwrite                                  # replace it

Flags left out take the data set's default recipe (:mod:`toydiff.toy.recipes`). Exit status 2: bad input, or
``--out`` held by another train; 3: the run diverged (the checkpoint stays the last finite one).
"""

from __future__ import annotations

from dataclasses import fields

from toydiff.cli import check_writable, fail

from toydiff.options import flag_names, positive
from toydiff.options import add_dataclass_arguments, dataclass_values, flag_of
from toydiff.outputs import save_figure
from toydiff.training.checkpoint import run_lock
from toydiff.training.engine import TrainConfig
from toydiff.training.stable_target import TARGETS
from toydiff.toy.cli.common import PROG, add_process_flags, process_from_args
from toydiff.toy.datasets import DATASETS, get_dataset
from toydiff.toy.models import ACTIVATIONS, TIME_INPUTS, MLPConfig, exercise_config
from toydiff.toy.recipes import default_recipe

__all__ = ["HELP", "add_parser", "run", "train_settings"]

HELP = "train an MLP denoiser (exit status 3 if it diverges)"
_NOT_FLAGS = ("checkpoint_every",)
#: TrainConfig fields whose flag defaults to the data set's recipe (toydiff.toy.recipes)
_RECIPE_FIELDS = ("epochs", "batch_size", "lr", "t_sampling", "ema_decay", "ema_warmup", "lr_schedule", "min_lr_ratio")
_FROM_RECIPE = "default: the data set's recipe"


def add_parser(sub) -> None:
    t = sub.add_parser("train", help=HELP,
                       description="Train an MLP denoiser. Exit status 2: bad input, or --out is held by "
                                   "another train; 3: the run diverged (NaN/inf loss or weights; the checkpoint "
                                   "stays the last finite one).")
    t.add_argument("--dataset", choices=DATASETS, default="two_gaussians", help="the data set (its recipe sets the defaults below)")
    t.add_argument("--out", required=True, help="run folder (checkpoint.safetensors, history.json, loss.png)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out (--epochs may be raised)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run --out holds (default: a run folder holding a checkpoint is refused)")
    t.add_argument("--preset", choices=("default", "exercise"), default="default",
                   help="'exercise': the seed notebook's concat(x, t) -> 128 -> 128 tanh network")
    t.add_argument("--width", type=positive(int), help=f"hidden units per layer ({_FROM_RECIPE})")
    t.add_argument("--depth", type=positive(int), help=f"hidden layers ({_FROM_RECIPE})")
    t.add_argument("--activation", choices=tuple(ACTIVATIONS), help=f"activation ({_FROM_RECIPE})")
    t.add_argument("--time-input", choices=TIME_INPUTS, help=f"how t enters the network ({_FROM_RECIPE})")
    t.add_argument("--n-train", type=positive(int), help=f"points per epoch ({_FROM_RECIPE})")
    t.add_argument("--n-val", type=positive(int), default=2_000,
                   help="held-out points of the loss (scored next to the oracle's floor on the same draws)")
    t.add_argument("--fixed-data", action="store_true",
                   help="revisit the same --n-train points every epoch (the seed exercise) instead of fresh ones")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_process_flags(t)
    t.add_argument("--target", choices=TARGETS, default=None,
                   help="regress on each pair's own target (conditional) or on the stable target field averaged over "
                        "the batch (stf, Xu et al. 2023: less gradient noise); default: the recipe's for the process "
                        "(stf for flow, conditional for vp)")
    # one flag per TrainConfig field (--epochs, --lr, --t-sampling, --seed ...); checkpoints at epoch ends
    add_dataclass_arguments(t.add_argument_group("optimisation"), TrainConfig, skip=_NOT_FLAGS)
    t.set_defaults(**dict.fromkeys(_RECIPE_FIELDS))
    for action in t._actions:  # their help says where the default comes from
        if action.dest in _RECIPE_FIELDS:
            action.help = action.help.replace("(default %(default)s)", f"({_FROM_RECIPE})")


def train_settings(a) -> dict:
    """The keyword arguments of :func:`~toydiff.toy.run.train_toy` that parsed ``train`` flags give: each flag
    left out takes the data set's default recipe (:func:`~toydiff.toy.recipes.default_recipe`); ``process`` is
    the process object (:func:`~toydiff.toy.cli.common.process_from_args`)."""
    recipe, dim = default_recipe(a.dataset, a.process), get_dataset(a.dataset).dim
    pick = lambda value, default: default if value is None else value
    if a.preset == "exercise":
        model_config = exercise_config(dim)
    else:
        model_config = MLPConfig(dim=dim, width=pick(a.width, recipe.width), depth=pick(a.depth, recipe.depth),
                                 activation=pick(a.activation, recipe.activation),
                                 time_input=pick(a.time_input, recipe.time_input))
    values = dataclass_values(a, TrainConfig, skip=_NOT_FLAGS)  # a given --ema-decay 0 is None: no EMA
    if a.n_train is not None and a.n_train < 2:  # before --out is touched: the normalisation needs a spread
        raise ValueError(f"--n-train must be at least 2 (the data are normalised by their mean and std), got {a.n_train}")
    process = process_from_args(a, recipe)
    base = recipe.train_config(process)
    values |= {k: getattr(base, k) for k in _RECIPE_FIELDS if getattr(a, k) is None}  # flags left out
    config = TrainConfig(**values)
    # the process's objective refuses what it cannot train (a flow's --loss-weighting min-snr ...) before any work
    process.objective(t_sampling=config.t_sampling, loss_weighting=config.loss_weighting,
                      min_snr_gamma=config.min_snr_gamma)
    return {"model_config": model_config, "config": config, "process": process,
            "n_train": pick(a.n_train, recipe.n_train), "fresh": False if a.fixed_data else recipe.fresh,
            **({} if a.target is None else {"target": a.target})}


def _refuse_finished(out, a) -> None:
    """Exit 2 if ``out`` holds a run and neither ``--resume`` nor ``--overwrite`` was given, saying which to pass."""
    from toydiff.toy.run import CHECKPOINT_NAME

    if (out / CHECKPOINT_NAME).exists() and not (a.resume or a.overwrite):
        fail(f"{PROG} train: error: --out {out} already holds a run ({out / CHECKPOINT_NAME}); pass --resume to "
             "continue it, --overwrite to replace it, or choose another --out")


def run(a) -> int:
    """Run ``toydiff toy train``: train into ``--out``, write ``loss.png``, print the held-out loss."""
    from toydiff.toy.run import CHECKPOINT_NAME, load_toy, train_toy

    ds = get_dataset(a.dataset)
    try:
        settings = train_settings(a)
    except (TypeError, ValueError) as e:
        flags = {f.name: flag_of(f) for f in fields(TrainConfig)} | {"T": "--T"}
        fail(f"{PROG} train: error: {flag_names(str(e), flags)}")
    out = check_writable(a.out, "--out", folder=True)
    if a.resume and a.overwrite:
        fail(f"{PROG} train: error: give --resume (continue the run in --out) or --overwrite (replace it), not both")
    _refuse_finished(out, a)
    if a.resume:  # checked (exists, intact, finite, a toy run) before the folder is touched
        load_toy(out)
    with run_lock(out):  # held until the figures are written; train_toy takes it again (re-entrant)
        _refuse_finished(out, a)  # a run that ended just before
        if a.overwrite:  # the old run's files go first: no stale history.json / loss.png beside the new checkpoint
            for name in (CHECKPOINT_NAME, "history.json", "loss.png"):
                (out / name).unlink(missing_ok=True)
        run_ = train_toy(ds, **settings, n_val=a.n_val, seed=a.seed, out=out, resume=a.resume, progress=not a.quiet)
        from toydiff.toy.figures.training import loss_curves_mpl

        save_figure(loss_curves_mpl(run_.history, title=ds.name, meta=run_.metadata), out / "loss.png", dpi=110)
    last = run_.history.records[-1]
    floor = run_.history.floor
    reference = getattr(run_.process, "loss_reference", "the Bayes floor")  # consistency: a reference, not a floor
    ratio = f" = {last['val_loss'] / floor:.4f} x {reference} {floor:.4f}" if floor else ""
    epochs = f"{last['epoch']} epoch{'' if last['epoch'] == 1 else 's'}"
    print(f"{ds.name}: {epochs}, held-out loss {last['val_loss']:.4f}{ratio}; wrote {out}")
    return 0
