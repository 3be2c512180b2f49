"""The toy track's process options: how ``train_toy(process="flow", interpolant="cosine")`` and the CLI's
``--process`` flags become a process object (:mod:`toydiff.processes`).

    build_process("vp", recipe)                                    # VPProcess(recipe.schedule())
    build_process("flow", recipe, interpolant="cosine", prediction="eps")
    build_process("flow", recipe, schedule=s)                      # ValueError: schedule applies to process 'vp'

Each registered process class names the keywords it is built from (``keywords``) and builds itself
(``from_keywords``), the data set's recipe supplying the default schedule; an option of another process is refused
by name. A process class without ``from_keywords`` (an experiment) is passed as the object itself:
``train_toy(process=MyProcess(...))``.
"""

from __future__ import annotations

from typing import Any

from toydiff.checks import check_choice
from toydiff.processes.base import Process
from toydiff.processes.registry import PROCESSES

__all__ = ["buildable", "build_process", "owner_of"]


def buildable() -> tuple[str, ...]:
    """The registered processes a track can build from keywords (the choices of ``--process``)."""
    return tuple(n for n, cls in PROCESSES.items() if hasattr(cls, "from_keywords"))


def owner_of(keyword: str) -> str | None:
    """The process whose option ``keyword`` is (``None``: no process reads it)."""
    return next((n for n, cls in PROCESSES.items() if keyword in getattr(cls, "keywords", ())), None)


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
    cls = PROCESSES[check_choice(process, "process", buildable())]
    for k in given:
        if k not in cls.keywords:
            raise ValueError(f"{k} applies to process {owner_of(k)!r}, not {process!r}")
    return cls.from_keywords(recipe.schedule, **given)
