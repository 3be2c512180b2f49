"""Command-line flags generated from a config dataclass: each field carries its flag, written once.

    @dataclass
    class Config:
        lr: float = option(2e-3, "peak learning rate")
        amp: bool = option(True, "bf16 autocast", flag="--no-amp")

    add_dataclass_arguments(parser, Config)         # --lr LR, --no-amp
    Config(**dataclass_values(parser.parse_args(), Config))

A field gets ``--field-name`` (a bool that defaults to True: ``--no-field-name``, which turns it off), its
default, and its help; ``dest`` is the field's name, so the parsed values map back without a table.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import MISSING, Field, field, fields
from typing import Any, Callable, Iterable

__all__ = ["option", "flag_of", "add_dataclass_arguments", "dataclass_values"]


def option(default: Any, help: str, *, flag: str | None = None, type: Callable | None = None,
           choices: tuple | None = None, zero_is_none: bool = False, required: bool = False) -> Any:
    """A dataclass field with its flag's metadata.

    Args:
        flag: the flag's name when not ``--field-name`` / ``--no-field-name``.
        type: parses the flag's text (needed when the default is None or a tuple).
        choices: the allowed values.
        zero_is_none: the flag's value 0 means None (``--grad-clip 0``: no clipping).
        required: the flag must be given.
    """
    meta = {"help": help, "flag": flag, "type": type, "choices": choices, "zero_is_none": zero_is_none,
            "required": required}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def _default(f: Field) -> Any:
    return f.default if f.default is not MISSING else f.default_factory()


def flag_of(f: Field) -> str:
    """The flag of field ``f``."""
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    prefix = "--no-" if _default(f) is True else "--"
    return prefix + f.name.replace("_", "-")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: Iterable[str] = ()) -> None:
    """One flag per field of ``cls`` (fields without :func:`option` metadata and ``skip`` are left out)."""
    skip = set(skip)
    for f in fields(cls):
        m = f.metadata
        if "help" not in m or f.name in skip:
            continue
        default, flag = _default(f), flag_of(f)
        kw: dict[str, Any] = {"dest": f.name}
        if isinstance(default, bool):
            kw["action"] = "store_false" if default else "store_true"
            kw["help"] = f"turn off: {m['help']}" if default else m["help"]
        else:
            kw["type"] = m["type"] or type(default)
            kw["default"] = list(default) if isinstance(default, tuple) else default
            kw["help"] = m["help"] + ("" if m["required"] else " (default %(default)s)")
            if m["choices"]:
                kw["choices"] = m["choices"]
            else:
                kw["metavar"] = flag.lstrip("-").upper().replace("-", "_")
            if m["required"]:
                kw["required"] = True
        parser.add_argument(flag, **kw)


def dataclass_values(args: argparse.Namespace, cls: type, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The parsed values of :func:`add_dataclass_arguments`'s flags, by field name."""
    skip = set(skip)
    values = {}
    for f in fields(cls):
        if "help" not in f.metadata or f.name in skip:
            continue
        v = getattr(args, f.name)
        values[f.name] = None if f.metadata["zero_is_none"] and not v else v
    return values
