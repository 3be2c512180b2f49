"""The processes by name: a checkpoint's metadata, a CLI's ``--process`` and the app's choice all resolve here.

Adding a process is one module implementing :class:`~toydiff.processes.base.Process` (with its objective) and one
line in :data:`PROCESSES`.
"""

from __future__ import annotations

from types import MappingProxyType

from toydiff.checks import check_choice
from toydiff.processes.base import Process, process_of
from toydiff.processes.consistency import ConsistencyProcess
from toydiff.processes.flow import FlowObjective, InterpolantProcess
from toydiff.processes.interpolants import PREDICTIONS, Interpolant
from toydiff.processes.jump import JumpProcess
from toydiff.processes.schedules import NoiseSchedule
from toydiff.processes.vp import VPObjective, VPProcess

__all__ = ["PROCESSES", "register", "process_from_dict", "objective_from_meta", "process_of", "all_methods",
           "as_process"]

_REGISTRY: dict[str, type] = {"vp": VPProcess, "flow": InterpolantProcess, "jump": JumpProcess,
                             "consistency": ConsistencyProcess}
#: name -> process class (read-only view; :func:`register` adds one)
PROCESSES = MappingProxyType(_REGISTRY)


def register(cls: type) -> type:
    """Add a process class under ``cls.name`` (usable as a decorator); a name already taken is refused."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"a process class needs a string `name`, got {name!r}")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"process {name!r} is registered already ({_REGISTRY[name].__name__})")
    _REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a process added by :func:`register` (the built-in ``vp`` and ``flow`` stay)."""
    if name in ("vp", "flow", "consistency"):
        raise ValueError(f"process {name!r} is built in")
    _REGISTRY.pop(name, None)


def process_from_dict(meta: dict) -> Process:
    """The process a checkpoint's metadata (or :meth:`Process.to_dict`) describes."""
    name = check_choice(process_of(meta), "process", tuple(_REGISTRY))
    return _REGISTRY[name].from_dict(meta)


def objective_from_meta(meta: dict):
    """The objective a checkpoint was trained under (its process and regression target)."""
    return process_from_dict(meta).objective(target=meta.get("target", "conditional"))


def all_methods() -> tuple[str, ...]:
    """Every sampling method of every registered process, each once, in registry order."""
    return tuple(dict.fromkeys(m for cls in _REGISTRY.values() for m in cls.methods))


def as_process(process, prediction: str | None = None) -> Process:
    """A process object: ``process`` itself (a registered process; ``prediction`` None or its own), or the process a
    bare :class:`NoiseSchedule` (:class:`VPProcess`; ``prediction`` None or ``"eps"``) or :class:`Interpolant`
    (:class:`InterpolantProcess` with ``prediction``, default ``"velocity"``) stands for. The one place a schedule
    or path is told from a process, so callers (likelihood, ELBO) ask the process and never branch on its kind."""
    if isinstance(process, NoiseSchedule):
        if prediction not in (None, "eps"):
            raise ValueError(f"prediction must be 'eps' (or None) with a NoiseSchedule, got {prediction!r}")
        return VPProcess(process)
    if isinstance(process, Interpolant):
        return InterpolantProcess(process, check_choice(prediction or "velocity", "prediction", PREDICTIONS))
    if isinstance(process, tuple(_REGISTRY.values())):
        if prediction not in (None, process.prediction):
            raise ValueError(f"prediction={prediction!r} differs from the process's own ({process.prediction!r})")
        return process
    raise TypeError(f"process must be a process object ({', '.join(_REGISTRY)}), a NoiseSchedule or an Interpolant, "
                    f"got {type(process).__name__}")
