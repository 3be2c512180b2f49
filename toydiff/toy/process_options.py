"""The toy track's process options: how ``train_toy(process="flow", interpolant="cosine")`` and the CLI's
``--process`` flags become a process object (:mod:`toydiff.processes`).

    build_process("vp", recipe)                                    # VPProcess(recipe.schedule())
    build_process("flow", recipe, interpolant="cosine", prediction="eps")
    build_process("flow", recipe, schedule=s)                      # ValueError: schedule applies to process 'vp'

Each built-in process lists the keywords it reads and builds itself from them and the data set's recipe (which
supplies what is left out); an option of another process is refused by name. A process without an entry here
(a registered experiment) is passed as the object itself: ``train_toy(process=MyProcess(...))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from toydiff.checks import check_choice
from toydiff.processes import InterpolantProcess, VPProcess
from toydiff.processes.base import Process
from toydiff.processes.interpolants import BUILDERS as INTERPOLANTS, PREDICTIONS
from toydiff.processes.registry import PROCESSES
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["ProcessOptions", "TOY_PROCESSES", "build_process", "owner_of"]


@dataclass(frozen=True)
class ProcessOptions:
    """The keywords one process reads and ``build(recipe, **given) -> Process`` (``given``: the non-``None`` ones)."""

    keywords: tuple[str, ...]
    build: Callable[..., Process]


def _vp(recipe, schedule: NoiseSchedule | None = None) -> VPProcess:
    """DDPM over ``schedule`` (default: the recipe's)."""
    return VPProcess(recipe.schedule() if schedule is None else schedule)


def _flow(recipe, interpolant: str = "linear", prediction: str = "velocity") -> InterpolantProcess:
    """A ``prediction`` network on the ``interpolant`` path (default: rectified flow, velocity)."""
    interp = INTERPOLANTS[check_choice(interpolant, "interpolant", tuple(INTERPOLANTS))]()
    return InterpolantProcess(interp, check_choice(prediction, "prediction", PREDICTIONS))


#: process name -> its toy-track options (the processes ``--process`` offers)
TOY_PROCESSES: dict[str, ProcessOptions] = {
    "vp": ProcessOptions(("schedule",), _vp),
    "flow": ProcessOptions(("interpolant", "prediction"), _flow),
}


def owner_of(keyword: str) -> str | None:
    """The process whose option ``keyword`` is (``None``: no process reads it)."""
    return next((name for name, o in TOY_PROCESSES.items() if keyword in o.keywords), None)


def build_process(process: str | Process, recipe: Any, **options) -> Process:
    """The process ``process`` names, built from ``options`` (``None`` values: left out, the recipe's default).

    ``process`` may be a process object: then no option may be given (they are its own). Raises ValueError
    naming the first option that belongs to another process.
    """
    given = {k: v for k, v in options.items() if v is not None}
    if isinstance(process, Process):
        if given:
            raise ValueError(f"{', '.join(given)}: a process object carries its own options; pass them to it, "
                             f"not to train_toy (process is {process.describe()})")
        return process
    name = check_choice(process, "process", tuple(n for n in TOY_PROCESSES if n in PROCESSES))
    for k in given:
        if k not in TOY_PROCESSES[name].keywords:
            raise ValueError(f"{k} applies to process {owner_of(k)!r}, not {name!r}")
    return TOY_PROCESSES[name].build(recipe, **given)
