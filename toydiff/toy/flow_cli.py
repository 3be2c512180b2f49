"""The flow-matching parts of ``toydiff toy``: ``train --process flow``, sampling a flow run, ``reflow``.

    toydiff toy train  --dataset 8gaussians --process flow --out runs/8g-fm          # rectified flow
    toydiff toy train  --process flow --interpolant cosine --prediction eps --out runs/cos-eps
    toydiff toy sample --run runs/8g-fm --method euler --steps 4 --out x.npy         # default heun, 16 steps
    toydiff toy reflow --run runs/8g-fm --out runs/8g-rf2 --epochs 60                # one round of reflow
    toydiff toy sample --oracle --process flow --dataset 8gaussians --out exact.npy  # the exact velocity

A checkpoint records its process (``process``, ``interpolant``, ``prediction``, ``time_scale``); ``sample``
and ``report`` read them and refuse, in one line with exit status 2, what only a DDPM run can do (``ddpm``,
``ddim``, ``--eta``, ``--variance``, ``--spacing``) and a flow-only ``--shift`` or ``midpoint`` of a DDPM run.
"""

from __future__ import annotations

from pathlib import Path

from toydiff.cli import fail

from toydiff.options import positive, seed_arg
from toydiff.sampling.flow_steps import FLOW_METHODS
from toydiff.processes.interpolants import BUILDERS as INTERPOLANTS, PREDICTIONS
from toydiff.processes import PROCESSES
from toydiff.sampling.loop import METHODS
from toydiff.training.stable_target import TARGETS

__all__ = ["add_train_flags", "flow_settings", "add_oracle_flags", "oracle_objective", "sampler_kwargs", "add_reflow_parser", "reflow_cmd", "ALL_METHODS"]

PROG = "toydiff toy"
ALL_METHODS = tuple(dict.fromkeys(METHODS + FLOW_METHODS))


def add_train_flags(t) -> None:
    """``--process``, ``--interpolant``, ``--prediction``, ``--target`` of ``toydiff toy train``."""
    g = t.add_argument_group("process")
    g.add_argument("--process", choices=PROCESSES, default="vp",
                   help="vp: DDPM's ε-prediction (default); flow: flow matching under --interpolant")
    g.add_argument("--interpolant", choices=tuple(INTERPOLANTS), default=None,
                   help="flow only: the path x_t = α x_0 + σ ε (default linear, rectified flow)")
    g.add_argument("--prediction", choices=PREDICTIONS, default=None,
                   help="flow only: what the network predicts (default velocity, conditional flow matching)")
    g.add_argument("--target", choices=TARGETS, default=None,
                   help="regress on each pair's own target (conditional) or on the stable target field averaged over "
                        "the batch (stf, Xu et al. 2023: less gradient noise); default stf for flow, conditional for vp")


def flow_settings(a) -> dict:
    """The ``process`` / ``interpolant`` / ``prediction`` / ``target`` keywords of :func:`~toydiff.toy.run.train_toy`."""
    if a.process == "vp":
        given = [f for f, v in (("--interpolant", a.interpolant), ("--prediction", a.prediction)) if v is not None]
        if given:
            fail(f"{PROG} train: error: {', '.join(given)} apply to --process flow, not vp (DDPM predicts ε over "
                 "its noise schedule)")
        return {} if a.target is None else {"target": a.target}
    if a.schedule is not None or a.T is not None or a.loss_weighting != "uniform":
        fail(f"{PROG} train: error: --schedule, --T and --loss-weighting apply to --process vp; a flow run's path "
             "is --interpolant")
    return {"process": "flow", "interpolant": a.interpolant or "linear", "prediction": a.prediction or "velocity",
            "target": a.target}


def add_sampling_flags(p) -> None:
    """The sampler flags of ``sample`` / ``report`` for either process."""
    p.add_argument("--method", choices=ALL_METHODS, default=None,
                   help="default: ddpm for a DDPM run, heun for a flow run (flow runs: " + ", ".join(FLOW_METHODS) + ")")
    p.add_argument("--steps", type=positive(int), default=None,
                   help="respaced steps (DDPM default: every step; flow default: 16)")
    p.add_argument("--shift", type=float, default=None, help="flow runs: SD3's time shift of the grid (>1: nearer noise)")


def add_oracle_flags(p) -> None:
    """``--process`` / ``--interpolant`` / ``--prediction`` of ``sample`` / ``report --oracle`` without ``--run``."""
    g = p.add_argument_group("exact oracle without --run")
    g.add_argument("--process", choices=PROCESSES, default=None,
                   help="vp: the exact ε* over the data set's recipe schedule (default); flow: the exact prediction "
                        "under --interpolant (default linear, rectified flow), sampled with the flow samplers")
    g.add_argument("--interpolant", choices=tuple(INTERPOLANTS), default=None, help="--process flow only")
    g.add_argument("--prediction", choices=PREDICTIONS, default=None,
                   help="--process flow only: the exact prediction the sampler is given (default velocity)")


def oracle_objective(a):
    """The :class:`~toydiff.processes.FlowObjective` an ``--oracle`` without ``--run`` samples under (``None``: the
    VP ε*); exit 2 for the flags with ``--run`` (the run fixes its process) or without ``--process flow``."""
    from toydiff.processes.interpolants import BUILDERS
    from toydiff.processes import FlowObjective

    cmd = f"{PROG} {a.command}: error:"
    given = [f for f, v in (("--process", a.process), ("--interpolant", a.interpolant),
                            ("--prediction", a.prediction)) if v is not None]
    if a.run is not None and given:
        fail(f"{cmd} {', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --oracle without --run; a run's "
             "checkpoint fixes its process")
    if a.process != "flow":
        if a.interpolant is not None or a.prediction is not None:
            fail(f"{cmd} --interpolant and --prediction apply to --process flow")
        return None
    return FlowObjective(BUILDERS[a.interpolant or "linear"](), a.prediction or "velocity")


def sampler_kwargs(run, a) -> dict:
    """``ToyRun.sample`` keywords from the flags, refusing (exit 2) options of the other process."""
    cmd = f"{PROG} {a.command}: error:"
    if run.process == "flow":
        if a.method is not None and a.method not in FLOW_METHODS:
            fail(f"{cmd} --method {a.method} is a DDPM sampler; a flow run samples with {', '.join(FLOW_METHODS)}")
        vp_only = [f for f, v in (("--spacing", a.spacing), ("--eta", a.eta), ("--variance", a.variance)) if v is not None]
        if vp_only:
            fail(f"{cmd} {', '.join(vp_only)} apply to DDPM runs; a flow run's time grid is --steps / --shift")
        kw = {"method": a.method or "heun", "steps": a.steps}
        return kw | ({"shift": a.shift} if a.shift is not None else {})
    if a.method is not None and a.method not in METHODS:
        fail(f"{cmd} --method {a.method} samples a flow run; a DDPM run samples with {', '.join(METHODS)}")
    if a.shift is not None:
        fail(f"{cmd} --shift applies to flow runs (--process flow)")
    method = a.method or "ddpm"
    kw = {"method": method, "steps": a.steps, "spacing": a.spacing}
    if method == "ddim":
        kw["eta"] = 0.0 if a.eta is None else a.eta
    elif a.eta is not None:
        fail(f"{cmd} --eta applies to --method ddim")
    if method == "ddpm":
        kw["variance"] = a.variance or "beta"
    elif a.variance is not None:
        fail(f"{cmd} --variance applies to --method ddpm")
    return kw


def add_reflow_parser(sub) -> None:
    r = sub.add_parser("reflow", help="one round of reflow (Liu et al. 2023) of a flow run",
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


def reflow_cmd(a) -> int:
    from toydiff.cli import check_writable
    from toydiff.toy.reflow import reflow
    from toydiff.toy.run import CHECKPOINT_NAME, load_toy

    out = check_writable(a.out, "--out", folder=True)
    if (out / CHECKPOINT_NAME).exists():
        fail(f"{PROG} reflow: error: {out / CHECKPOINT_NAME} exists; choose another --out")
    run = load_toy(a.run)
    if run.process != "flow":
        fail(f"{PROG} reflow: error: --run {a.run} is a DDPM run; reflow needs a flow run (--process flow)")
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
