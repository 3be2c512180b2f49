"""What the ``toydiff toy`` subcommands share: the process flags (from the process registry), run loading,
the sampler flags and their translation to :meth:`~toydiff.toy.run.ToyRun.sample` keywords.

Each buildable process (:func:`~toydiff.toy.process_options.buildable`) brings its flags (:data:`PROCESS_FLAGS`);
``--process`` picks one, and a flag of another process is one stderr line and exit status 2.
"""

from __future__ import annotations

from argparse import Namespace
from dataclasses import dataclass
from typing import Callable

from toydiff.bounds import size_arg
from toydiff.cli import fail

from toydiff.options import positive, seed_arg
from toydiff.processes.base import Process
from toydiff.processes.interpolants import BUILDERS as INTERPOLANTS, PREDICTIONS
from toydiff.processes.consistency import CONSISTENCY_OBJECTIVES
from toydiff.processes.jump import JUMP_OBJECTIVES
from toydiff.processes.registry import all_methods
from toydiff.processes.schedules import SPACINGS, from_name
from toydiff.sampling.loop import REGISTRY
from toydiff.toy.datasets import DATASETS
from toydiff.toy.process_options import build_process, buildable
from toydiff.toy.recipes import Recipe, default_recipe

__all__ = ["PROG", "PROCESS_FLAGS", "add_process_flags", "process_from_args", "add_denoiser_flags", "run_for",
           "sampler_kwargs", "sampler_label", "steps_of", "SCHEDULES"]

PROG = "toydiff toy"
SCHEDULES = ("constant", "linear", "cosine", "sigmoid")


@dataclass(frozen=True)
class ProcessFlags:
    """A process's flags (``(flag, add_argument keywords)``) and ``options(args, recipe)``: the keywords of
    :func:`~toydiff.toy.process_options.build_process` they give (``None``: left out)."""

    flags: tuple[tuple[str, dict], ...]
    options: Callable[[Namespace, Recipe], dict]


def _schedule(a: Namespace, recipe: Recipe):
    """``--schedule`` / ``--T`` over the recipe's: another builder gets its paper defaults and the recipe's T."""
    if a.schedule is None and a.T is None:
        return None
    kind = a.schedule or recipe.schedule_name
    params = dict(recipe.schedule_params) if kind == recipe.schedule_name else {"T": dict(recipe.schedule_params)["T"]}
    return from_name(kind, **params | ({} if a.T is None else {"T": a.T}))


#: ``--objective``, one flag shared by the processes trained by more than one objective (each checks its own)
OBJECTIVE_FLAG = ("--objective", {"metavar": "OBJECTIVE", "help": "how the process is trained (default: "
                  "jump shortcut, Frans et al. 2024; consistency ct, improved consistency training); jump: shortcut, "
                  "meanflow (Geng et al. 2025) or distill (flow-map distillation from --teacher, Boffi et al. 2024); "
                  "consistency: ct or cd (consistency distillation from --teacher)"})
#: ``--teacher``, shared by the distillation objectives (jump distill, consistency cd)
TEACHER_FLAG = ("--teacher", {"help": "jump --objective distill, consistency --objective cd: 'exact' (the data's exact "
                "velocity, default) or a trained toy flow run (folder or checkpoint)"})


def _objective(a: Namespace, process: str, choices: tuple[str, ...]) -> str | None:
    """``--objective`` checked against ``process``'s objectives (exit 2 naming the choices)."""
    if a.objective is not None and a.objective not in choices:
        fail(f"{PROG} {a.command}: error: argument --objective: invalid choice for --process {process}: "
             f"{a.objective!r} (choose from {', '.join(map(repr, choices))})")
    return a.objective


#: process name -> its flags (a flag may be shared: it is added once and belongs to every process that lists it)
PROCESS_FLAGS = {
    "vp": ProcessFlags((
        ("--schedule", {"choices": SCHEDULES, "help": "vp: default the data set's recipe's (1-D: constant beta 0.02, "
                        "the seed exercise's); another builder gets its paper defaults and the recipe's T"}),
        ("--T", {"type": positive(int), "help": "vp: diffusion steps (default: the recipe's)"})),
        lambda a, recipe: {"schedule": _schedule(a, recipe)}),
    "flow": ProcessFlags((
        ("--interpolant", {"choices": tuple(INTERPOLANTS), "help": "flow: the path x_t = α x_0 + σ ε (default "
                           "linear, rectified flow)"}),
        ("--prediction", {"choices": PREDICTIONS, "help": "flow: what the network predicts (default velocity, "
                          "conditional flow matching)"})),
        lambda a, recipe: {"interpolant": a.interpolant, "prediction": a.prediction}),
    "jump": ProcessFlags((OBJECTIVE_FLAG, TEACHER_FLAG), lambda a, recipe: {
        "objective": _objective(a, "jump", tuple(JUMP_OBJECTIVES)), "teacher": a.teacher}),
    "consistency": ProcessFlags((OBJECTIVE_FLAG, TEACHER_FLAG),
        lambda a, recipe: {"objective": _objective(a, "consistency", CONSISTENCY_OBJECTIVES), "teacher": a.teacher}),
}


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def add_process_flags(parser, title: str = "process") -> None:
    """``--process`` (the registered processes the toy track builds) and every process's own flags."""
    names = tuple(n for n in PROCESS_FLAGS if n in buildable())
    g = parser.add_argument_group(title)
    g.add_argument("--process", choices=names, default=None,
                   help="vp: DDPM's ε-prediction over a noise schedule (default); flow: flow matching under "
                        "--interpolant; jump: few-step jumps of an average velocity (--objective); consistency: "
                        "consistency models (--objective, --teacher)")
    added = set()
    for name in names:
        for flag, kw in PROCESS_FLAGS[name].flags:
            if flag not in added:
                g.add_argument(flag, default=None, **kw)
                added.add(flag)


def given_process_flags(a: Namespace) -> list[str]:
    """The process flags given on the command line (``--process`` included)."""
    flags = ["--process"] + list(dict.fromkeys(f for pf in PROCESS_FLAGS.values() for f, _ in pf.flags))
    return [f for f in flags if getattr(a, _dest(f), None) is not None]


def process_from_args(a: Namespace, recipe: Recipe) -> Process:
    """The process ``--process`` (default vp) and its flags describe; exit 2 for a flag of another process."""
    name = a.process or "vp"
    own = {f for f, _ in PROCESS_FLAGS[name].flags}
    for other, pf in PROCESS_FLAGS.items():
        given = [f for f, _ in pf.flags if other != name and f not in own and getattr(a, _dest(f)) is not None]
        if given:
            fail(f"{PROG} {a.command}: error: {', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                 f"--process {other}, not {name}")
    return build_process(name, recipe, **PROCESS_FLAGS[name].options(a, recipe))


def add_denoiser_flags(p) -> None:
    """``--run`` / ``--oracle`` / ``--dataset`` and the process flags of an oracle without a run."""
    src = p.add_argument_group("denoiser (one of)")
    src.add_argument("--run", help="a run folder or checkpoint written by 'toydiff toy train'")
    src.add_argument("--oracle", action="store_true",
                     help="use the exact oracle of the data set's mixture (no training); with --run, that run's "
                          "process and normalisation")
    p.add_argument("--dataset", choices=DATASETS, default="two_gaussians", help="for --oracle without --run")
    add_process_flags(p, "exact oracle without --run")


def run_for(a: Namespace):
    """The :class:`~toydiff.toy.run.ToyRun` of ``--run`` (its checkpoint's process) or of ``--oracle``."""
    from toydiff.toy.run import load_toy, oracle_run

    if a.run is None and not a.oracle:
        fail(f"{PROG} {a.command}: error: give --run RUN or --oracle")
    given = given_process_flags(a)
    if a.run is not None:
        if given:
            fail(f"{PROG} {a.command}: error: {', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --oracle "
                 "without --run; a run's checkpoint fixes its process")
        run = load_toy(a.run)
    else:
        run = oracle_run(a.dataset, process_from_args(a, default_recipe(a.dataset, a.process)))
    if a.oracle and not run.dataset.has_oracle:
        fail(f"{PROG} {a.command}: error: --oracle: dataset {run.dataset.name!r} has no exact mixture")
    return run


def add_sampling_flags(p) -> None:
    """The sampler flags of ``sample`` / ``report``: each process reads its own (:attr:`Process.options`)."""
    p.add_argument("--method", choices=all_methods(), default=None,
                   help="default: the run's process's (ddpm for DDPM, heun for flow)")
    p.add_argument("--steps", type=size_arg("steps"), default=None,
                   help="sampler steps (default: the process's; DDPM: every step, flow: 16)")
    p.add_argument("--shift", type=float, default=None, help="flow runs: SD3's time shift of the grid (>1: nearer noise)")
    p.add_argument("--spacing", choices=SPACINGS, default=None,
                   help="DDPM runs: respacing of --steps (default: the method's: " + ", ".join(
                       f"{k} {v.default_spacing}" for k, v in REGISTRY.items()) + ")")
    p.add_argument("--eta", type=float, default=None, help="ddim only: 0 deterministic (default), 1 DDPM-like")
    p.add_argument("--variance", choices=("beta", "posterior"), default=None, help="ddpm only (default beta)")
    p.add_argument("--n", type=size_arg("n"), default=10_000, help="number of samples")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the initial noise and the sampler's noise")


#: sampler flags -> the method that reads them, where only one does
_METHOD_ONLY = {"eta": "ddim", "variance": "ddpm"}


def sampler_kwargs(run, a: Namespace) -> dict:
    """:meth:`ToyRun.sample` keywords from the flags, refusing (exit 2) a method or option the run's process lacks."""
    cmd, proc = f"{PROG} {a.command}: error:", run.process
    if a.method is not None and a.method not in proc.methods:
        fail(f"{cmd} --method {a.method} is not a sampler of this run ({proc.describe()}); it samples with "
             f"{', '.join(proc.methods)}")
    method = a.method or proc.default_method
    options = {k: getattr(a, k) for k in ("spacing", "eta", "variance", "shift") if getattr(a, k) is not None}
    foreign = [f"--{k}" for k in options if k not in proc.options]
    if foreign:
        fail(f"{cmd} {', '.join(foreign)} appl{'ies' if len(foreign) == 1 else 'y'} to another process, not this "
             f"run's ({proc.describe()})")
    for k, m in _METHOD_ONLY.items():
        if k in options and method != m:
            fail(f"{cmd} --{k} applies to --method {m}")
    return {"method": method, "steps": a.steps} | options


def steps_of(process: Process, steps: int | None) -> int:
    """The steps a sampling call takes: ``steps``, else the process's default, else every step of its schedule."""
    return steps or process.default_steps or process.schedule.T


def sampler_label(run, a: Namespace) -> str:
    """``"<process>: <method>, <steps> steps"`` for figure titles and messages."""
    kw = sampler_kwargs(run, a)
    return f"{run.process.describe()}: {kw['method']}, {steps_of(run.process, a.steps)} steps"
