"""``toydiff toy``: train, sample and report on the 1-D / 2-D toy track.

    toydiff toy train  --dataset two_gaussians --out runs/toy            # the seed exercise, seconds
    toydiff toy train  --dataset 8gaussians --out runs/8g                # the 2-D default recipe
    toydiff toy train  --out runs/toy --epochs 120 --resume              # continue a run
    toydiff toy sample --run runs/toy --method ddim --steps 50 --n 10000 --out samples.npy
    toydiff toy sample --oracle --dataset 8gaussians --method heun --steps 20 --out exact.npy
    toydiff toy report --run runs/toy --out report/                      # figures + metrics.json
    toydiff toy train  --dataset 8gaussians --process flow --out runs/8g-fm   # flow matching (rectified flow)
    toydiff toy sample --run runs/8g-fm --method euler --steps 4 --out fm.npy  # a flow run: flow samplers
    toydiff toy reflow --run runs/8g-fm --out runs/8g-rf                  # one round of reflow
    toydiff toy guidance --out runs/guidance                             # CFG vs the exact tilted target

Bad input prints one line on stderr and exits with status 2. ``train`` exits with status 3 if the run
diverges (a NaN or infinite loss or weight): one line names the step, and the run's checkpoint stays the last
finite one. A run folder is locked while ``train`` writes it: a second ``train`` into it exits 2 at once.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from toydiff.training.checkpoint import run_lock
from toydiff.toy import cli_labs
from toydiff.cli import OneLineParser, check_writable, fail, run_guarded
from toydiff.options import flag_names, positive, seed_arg
from toydiff.toy import cli_guidance
from toydiff.toy.datasets import DATASETS
from toydiff.toy.models import ACTIVATIONS, TIME_INPUTS, MLPConfig, exercise_config
from toydiff.toy.recipes import default_recipe
from toydiff.sampling.loop import REGISTRY
from toydiff.toy.flow_cli import (add_oracle_flags, add_reflow_parser, add_sampling_flags, oracle_objective, add_train_flags,
                       flow_settings, reflow_cmd, sampler_kwargs)
from toydiff.processes.schedules import SPACINGS, from_name
from toydiff.toy.run import CHECKPOINT_NAME, ToyRun, load_toy, oracle_run, train_toy
from toydiff.options import add_dataclass_arguments, dataclass_values, flag_of
from toydiff.training.engine import TrainConfig

__all__ = ["main", "build_parser", "train_settings"]

PROG = "toydiff toy"
SCHEDULES = ("constant", "linear", "cosine", "sigmoid")
_NOT_FLAGS = ("checkpoint_every",)
#: TrainConfig fields whose flag defaults to the data set's recipe (toydiff.toy.recipes)
_RECIPE_FIELDS = ("epochs", "batch_size", "lr", "t_sampling", "ema_decay", "ema_warmup", "lr_schedule", "min_lr_ratio")
_FROM_RECIPE = "default: the data set's recipe"


def _add_sampling(p: OneLineParser) -> None:
    src = p.add_argument_group("denoiser (one of)")
    src.add_argument("--run", help="a run folder or checkpoint written by 'toydiff toy train'")
    src.add_argument("--oracle", action="store_true",
                     help="use the exact eps* of the data set's mixture (no training); with --run, that run's "
                          "schedule and normalisation")
    p.add_argument("--dataset", choices=DATASETS, default="two_gaussians", help="for --oracle without --run")
    add_oracle_flags(p)
    add_sampling_flags(p)
    p.add_argument("--spacing", choices=SPACINGS, default=None,
                   help="DDPM runs: respacing of --steps (default: the method's: " + ", ".join(
                       f"{k} {v.default_spacing}" for k, v in REGISTRY.items()) + ")")
    p.add_argument("--eta", type=float, default=None, help="ddim only: 0 deterministic (default), 1 DDPM-like")
    p.add_argument("--variance", choices=("beta", "posterior"), default=None, help="ddpm only (default beta)")
    p.add_argument("--n", type=positive(int), default=10_000, help="number of samples")
    p.add_argument("--seed", type=seed_arg, default=0)


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="The 1-D / 2-D toy track.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    t = sub.add_parser("train", help="train an MLP noise predictor (exit status 3 if it diverges)",
                       description="Train an MLP noise predictor. Exit status 2: bad input, or --out is held by "
                                   "another train; 3: the run diverged (NaN/inf loss or weights; the checkpoint "
                                   "stays the last finite one).")
    t.add_argument("--dataset", choices=DATASETS, default="two_gaussians")
    t.add_argument("--out", required=True, help="run folder (checkpoint.safetensors, history.json, loss.png)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out (--epochs may be raised)")
    t.add_argument("--preset", choices=("default", "exercise"), default="default",
                   help="'exercise': the seed notebook's concat(x, t) -> 128 -> 128 tanh network")
    # flags left out take the data set's default recipe (toydiff.toy.recipes.default_recipe)
    t.add_argument("--width", type=positive(int), help=_FROM_RECIPE)
    t.add_argument("--depth", type=positive(int), help=_FROM_RECIPE)
    t.add_argument("--activation", choices=tuple(ACTIVATIONS), help=_FROM_RECIPE)
    t.add_argument("--time-input", choices=TIME_INPUTS, help=_FROM_RECIPE)
    t.add_argument("--n-train", type=positive(int), help=f"points per epoch ({_FROM_RECIPE})")
    t.add_argument("--n-val", type=positive(int), default=2_000)
    t.add_argument("--fixed-data", action="store_true",
                   help="revisit the same --n-train points every epoch (the seed exercise) instead of fresh ones")
    t.add_argument("--schedule", choices=SCHEDULES,
                   help=f"{_FROM_RECIPE} (1-D: constant beta 0.02, the seed exercise's); another builder gets its "
                        "paper defaults and the recipe's T")
    t.add_argument("--T", type=positive(int), help=f"diffusion steps ({_FROM_RECIPE})")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_train_flags(t)
    # the optimisation flags, one per TrainConfig field (--epochs, --lr, --t-sampling, --seed ...); checkpoints
    # come at epoch ends, where a toy run can resume
    add_dataclass_arguments(t.add_argument_group("optimisation"), TrainConfig, skip=_NOT_FLAGS)
    t.set_defaults(**dict.fromkeys(_RECIPE_FIELDS))
    for action in t._actions:  # their help says where the default comes from
        if action.dest in _RECIPE_FIELDS:
            action.help = action.help.replace("(default %(default)s)", f"({_FROM_RECIPE})")

    s = sub.add_parser("sample", help="draw samples with any sampler, from a run or the exact oracle")
    _add_sampling(s)
    s.add_argument("--out", required=True, help="a .npy file ([n, D], data units)")

    r = sub.add_parser("report", help="figures and metrics (each with its noise floor) into a folder")
    _add_sampling(r)
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--track", type=positive(int), default=200, help="trajectories drawn (1-D)")
    add_reflow_parser(sub)
    cli_guidance.add_parser(sub)
    cli_labs.add_parsers(sub)  # likelihood, memorise
    return p


def train_settings(a) -> dict:
    """The keyword arguments of :func:`train_toy` that parsed ``train`` flags give: each flag left out takes
    the data set's default recipe (:func:`~toydiff.toy.recipes.default_recipe`)."""
    from toydiff.toy.datasets import get_dataset

    recipe, dim = default_recipe(a.dataset), get_dataset(a.dataset).dim
    pick = lambda value, default: default if value is None else value
    if a.preset == "exercise":
        model_config = exercise_config(dim)
    else:
        model_config = MLPConfig(dim=dim, width=pick(a.width, recipe.width), depth=pick(a.depth, recipe.depth),
                                 activation=pick(a.activation, recipe.activation),
                                 time_input=pick(a.time_input, recipe.time_input))
    values = dataclass_values(a, TrainConfig, skip=_NOT_FLAGS)  # a given --ema-decay 0 is None: no EMA
    base = recipe.train_config()
    values |= {k: getattr(base, k) for k in _RECIPE_FIELDS if getattr(a, k) is None}  # flags left out
    kind = pick(a.schedule, recipe.schedule_name)
    params = dict(recipe.schedule_params) if kind == recipe.schedule_name else {"T": dict(recipe.schedule_params)["T"]}
    if a.T is not None:
        params["T"] = a.T
    return {"model_config": model_config, "config": TrainConfig(**values), "schedule": from_name(kind, **params),
            "n_train": pick(a.n_train, recipe.n_train), "fresh": False if a.fixed_data else recipe.fresh}


def _train(a) -> int:
    from toydiff.toy.datasets import get_dataset

    ds = get_dataset(a.dataset)
    try:
        settings = train_settings(a) | flow_settings(a)
    except (TypeError, ValueError) as e:
        fail(f"{PROG} train: error: {flag_names(str(e), {f.name: flag_of(f) for f in fields(TrainConfig)} | {'T': '--T'})}")
    out = check_writable(a.out, "--out", folder=True)
    if (out / CHECKPOINT_NAME).exists() and not a.resume:
        fail(f"{PROG} train: error: {out / CHECKPOINT_NAME} exists; pass --resume to continue it or choose another --out")
    if a.resume:  # checked (exists, intact, finite, a toy run) before the folder is touched
        load_toy(out)
    with run_lock(out):  # held until the figures are written; train_toy takes it again (re-entrant)
        if (out / CHECKPOINT_NAME).exists() and not a.resume:  # by a run that ended just before
            fail(f"{PROG} train: error: {out / CHECKPOINT_NAME} exists; pass --resume or choose another --out")
        run = train_toy(ds, **settings, n_val=a.n_val, seed=a.seed, out=out, resume=a.resume, progress=not a.quiet)
        from toydiff.toy import plots

        plots.loss_curves(run.history, title=ds.name, meta=run.metadata).savefig(out / "loss.png", dpi=110)
    last = run.history.records[-1]
    floor = run.history.floor
    ratio = f" = {last['val_loss'] / floor:.4f} x the Bayes floor {floor:.4f}" if floor else ""
    print(f"{ds.name}: {last['epoch']} epochs, held-out loss {last['val_loss']:.4f}{ratio}; wrote {out}")
    return 0


def _run_for(a) -> ToyRun:
    if a.run is None and not a.oracle:
        fail(f"{PROG} {a.command}: error: give --run RUN or --oracle")
    flow = oracle_objective(a)
    run = load_toy(a.run) if a.run is not None else oracle_run(a.dataset, flow=flow)
    if a.oracle and not run.dataset.has_oracle:
        fail(f"{PROG} {a.command}: error: --oracle: dataset {run.dataset.name!r} has no exact mixture")
    return run


def _sample(run: ToyRun, a, callback=None) -> torch.Tensor:
    return run.sample(a.n, **sampler_kwargs(run, a), seed=a.seed, exact=a.oracle, callback=callback, progress=True)


def _sampler_label(run: ToyRun, a) -> str:
    kw = sampler_kwargs(run, a)
    if run.process == "flow":
        return f"flow {run.flow.interp.name}/{run.flow.prediction}, {kw['method']}, {kw['steps'] or 16} steps"
    return f"{kw['method']}, {a.steps or run.schedule.T} steps"


def _sample_cmd(a) -> int:
    out = Path(a.out)
    if out.suffix != ".npy":
        fail(f"{PROG} sample: error: --out must end in .npy, got {a.out!r}")
    check_writable(out, "--out")  # before the sampling, writing nothing
    run = _run_for(a)
    x = _sample(run, a)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, x.numpy())
    src = "exact oracle" if a.oracle else f"run {a.run}"
    print(f"{a.n} samples of {run.dataset.name} [{a.n}, {run.dataset.dim}] from the {src} "
          f"({_sampler_label(run, a)}): mean {x.mean(0).tolist()}, std {x.std(0).tolist()}; "
          f"wrote {out}")
    return 0


def _report(a) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from toydiff.toy import metrics, plots
    from toydiff.sampling.trajectory import TrajectoryRecorder

    out = check_writable(a.out, "--out", folder=True)
    run = _run_for(a)
    ds, mixture = run.dataset, run.dataset.mixture
    n_track = min(a.track, a.n)
    rec = TrajectoryRecorder(indices=range(n_track))
    x = _sample(run, a, callback=rec)
    figures = {}
    true = ds.sample(a.n, torch.Generator().manual_seed(a.seed + 1))
    label = f"{ds.name}: {_sampler_label(run, a)}, {'exact oracle' if a.oracle else 'model'}"
    if ds.dim == 1:
        figures["samples"] = plots.kde_vs_histogram(x, mixture=mixture, true_samples=None if mixture else true,
                                                    title=label)
        path = run.normalizer.inverse(rec.path().double())
        figures["trajectories"] = plots.trajectories(path, rec.timesteps, mixture=mixture)
    else:
        figures["samples"] = plots.scatter_with_density(x, mixture=mixture, true_samples=None if mixture else true,
                                                        title=label)
    if ds.dim == 2 and run.process == "vp":  # the ε field over a noise schedule (a flow run has none)
        fns = {} if (a.oracle or run.model is None) else {"learned ε̂": run.eps_fn()}
        if run.oracle is not None:
            fns["exact ε*"] = run.eps_fn(exact=True)
        figures["vector_field"] = plots.vector_fields(fns, run.schedule, t=run.schedule.T // 10)
    if run.history is not None and run.history.records:
        figures["loss"] = plots.loss_curves(run.history, title=ds.name, meta=run.metadata)
    if run.oracle is not None and run.process == "vp":
        figures["forward"] = plots.forward_density(run.oracle, run.schedule)
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        fig.savefig(out / f"{name}.png", dpi=110)
    m = metrics.report(x, ds, seed=a.seed + 2)
    summary = {"dataset": ds.name, "denoiser": "oracle" if a.oracle else str(a.run), "process": run.process,
               "method": sampler_kwargs(run, a)["method"], "steps": a.steps or (run.schedule.T if run.schedule else 16),
               "sampler": _sampler_label(run, a), "n": a.n, "seed": a.seed, "metrics": m}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    np.save(out / "samples.npy", x.numpy())
    width = max(len(k) for k in m)
    print(f"{label}\n  {'metric':<{width}}  {'value':>10}  {'noise floor':>11}")
    for k, v in m.items():
        print(f"  {k:<{width}}  {v['value']:>10.4g}  {v['floor']:>11.4g}")
    print(f"wrote {', '.join(sorted(f'{n}.png' for n in figures))}, metrics.json and samples.npy to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    def run() -> int:
        a = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        return ({"train": _train, "sample": _sample_cmd, "report": _report, "reflow": reflow_cmd,
                "guidance": cli_guidance.run} | cli_labs.HANDLERS)[a.command](a)

    return run_guarded(run, PROG)


if __name__ == "__main__":
    sys.exit(main())
