"""The processes by name: a checkpoint's metadata, a CLI's ``--process`` and the app's choice all resolve here.

Adding a process is one module implementing :class:`~toydiff.processes.base.Process` (with its objective) and one
line in :data:`PROCESSES`.
"""

from __future__ import annotations

from types import MappingProxyType

from toydiff.checks import check_choice
from toydiff.processes.base import Process, process_of
from toydiff.processes.flow import FlowObjective, InterpolantProcess
from toydiff.processes.vp import VPObjective, VPProcess

__all__ = ["PROCESSES", "register", "process_from_dict", "objective_from_meta", "process_of", "all_methods"]

_REGISTRY: dict[str, type] = {"vp": VPProcess, "flow": InterpolantProcess}
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
    if name in ("vp", "flow"):
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
