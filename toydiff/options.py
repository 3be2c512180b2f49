"""Command-line flags generated from a config dataclass: each field carries its flag, written once.

    @dataclass
    class Config:
        lr: float = option(2e-3, "peak learning rate")
        amp: bool = option(True, "bf16 autocast", flag="--no-amp")

    add_dataclass_arguments(parser, Config)         # --lr LR, --no-amp
    Config(**dataclass_values(parser.parse_args(), Config))

A field gets ``--field-name`` (a bool that defaults to True: ``--no-field-name``, which turns it off), its
default, and its help; ``dest`` is the field's name, so the parsed values map back without a table.

The argparse ``type``s every command shares live here too (below :mod:`toydiff.cli` and
:mod:`toydiff.training.config`, which both use them): ``int_list`` / ``float_list`` (``--ws 0,5,10``),
``positive(int)``, ``seed_arg`` (0..``MAX_SEED``), ``device_arg``, and :func:`flag_names`; and the help
formatter every ``toydiff`` parser uses (:class:`HelpFormatter`: each option's default shown, reST made plain).
"""

from __future__ import annotations

import argparse
import copy
import re
from dataclasses import MISSING, Field, field, fields
from typing import Any, Callable, Iterable

__all__ = ["option", "flag_of", "add_dataclass_arguments", "dataclass_values", "MAX_SEED", "int_list", "float_list",
           "positive", "seed_arg", "device_arg", "flag_names", "HelpFormatter", "plain_text", "format_default",
           "shows_default"]

#: the largest seed a flag takes (torch generators take 64-bit seeds; the tracks add offsets to them)
MAX_SEED = 2**32 - 1


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
            kw["help"] = plain_text(f"turn off: {m['help']}" if default else m["help"])
        else:
            kw["type"] = m["type"] or type(default)
            kw["default"] = list(default) if isinstance(default, tuple) else default
            kw["help"] = plain_text(m["help"]) + ("" if m["required"] or default is None else " (default %(default)s)")
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


# --- argparse types -------------------------------------------------------------------------------
def _number_list(kind: type, what: str) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            vals = [kind(p) for p in text.split(",") if p.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}s, got {text!r}") from None
        if not vals:
            raise argparse.ArgumentTypeError(f"expected at least one {what}")
        return vals

    parse.__name__ = f"{what} list"
    return parse


#: argparse types for comma-separated lists: ``--ws 0,5,10``, ``--t 250,500,750``
int_list = _number_list(int, "integer")
float_list = _number_list(float, "number")


def positive(kind: type) -> Callable[[str], int | float]:
    """An argparse ``type``: ``kind(text)``, refused unless > 0 (argparse names it "positive int" in the error)."""
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise ValueError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not v > 0:
            raise ValueError(f"expected a positive {kind.__name__}, got {text!r}")
        return v

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def seed_arg(text: str) -> int:
    """argparse type of ``--seed``: an integer in ``[0, 2**32 - 1]``."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed in 0..{MAX_SEED}, got {text}")
    return v


seed_arg.__name__ = "seed"


def device_arg(text: str) -> str:
    """argparse type of ``--device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (CUDA must be there) or another
    device torch knows."""
    if text == "auto":
        return text
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r} was asked for but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return text


device_arg.__name__ = "device"


def flag_names(message: str, flags: dict[str, str]) -> str:
    """``message`` with a leading parameter name replaced by its flag (``"warmup_steps must ..."`` ->
    ``"--warmup-steps must ..."``), so an API check's message speaks the command line's language."""
    for name in sorted(flags, key=len, reverse=True):
        for sep in (" ", "[", "="):
            if message.startswith(name + sep):
                return flags[name] + message[len(name):]
    return message


# --- help text ------------------------------------------------------------------------------------
_REST_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj|exc):`~?([^`<]*?)\s*(?:<[^`>]*>)?`")


def plain_text(text: str) -> str:
    """``text`` (help or a docstring) with its reST markup made plain: ````x```` -> ``x``, ``:func:`~a.b.f``` ->
    ``f``, ``:class:`Name <a.b.Name>``` -> ``Name``, ``:mod:`a.b``` -> ``a.b``."""
    def role(m: re.Match) -> str:
        target = m.group(1)
        return target.rsplit(".", 1)[-1] if m.group(0).split("`", 1)[1].startswith("~") else target

    return _REST_ROLE.sub(role, text).replace("``", "")


def format_default(value: Any) -> str:
    """A default as a user types it: a list ``0,5,10`` (numbers in ``%g``), a float ``0.001``, else ``str``."""
    if isinstance(value, (list, tuple)):
        return ",".join(format_default(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def shows_default(action: argparse.Action) -> bool:
    """Whether :class:`HelpFormatter` states ``action``'s default: an option that takes a value and has a
    default other than None or "" (a switch's default, off, goes without saying)."""
    return (bool(action.option_strings) and action.nargs != 0 and action.default not in (None, "")
            and action.default is not argparse.SUPPRESS)


class HelpFormatter(argparse.HelpFormatter):
    """The help of every ``toydiff`` parser: each option's default stated (``(default X)`` appended unless the
    help names it: ``%(default)s`` or ``default X``), lists as ``0,5,10``, reST made plain (:func:`plain_text`);
    a description's paragraphs filled, an indented line (an example) kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain_text(action.help or "")
        if shows_default(action) and "%(default)" not in text:
            shown = format_default(action.default)
            if not re.search(r"\bdefault:?\s+" + re.escape(shown) + r"(?![\w.])", text):
                text += f" (default {shown.replace('%', '%%')})"
        return text

    def _expand_help(self, action: argparse.Action) -> str:
        if action.default is not None and action.default is not argparse.SUPPRESS:
            action = copy.copy(action)
            action.default = format_default(action.default)
        return super()._expand_help(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in plain_text(text).strip("\n").split("\n\n"):
            lines = para.split("\n")
            if any(line.startswith(" ") for line in lines[1:]) or para.startswith(" "):
                out.append("\n".join(indent + line for line in lines))  # examples: as written
            else:
                out.append(super()._fill_text(" ".join(line.strip() for line in lines), width, indent))
        return "\n\n".join(out)
