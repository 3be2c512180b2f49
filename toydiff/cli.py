"""The ``toydiff`` command and the small pieces every subcommand shares.

    toydiff demo                 samplers on the exact oracle; writes figures (no training, no download)
    toydiff app [--port P]       the Streamlit sandbox (binds 127.0.0.1 unless --address is given)
    toydiff toy  {train,sample,report} ...
    toydiff mnist {train,sample,eval,lab} ...

Subcommands register themselves in the ``toydiff.commands`` entry-point group (see ``pyproject.toml``):
each entry names a ``main(argv) -> int`` function, so this module imports nothing of the layers above it
and a plug-in package can add a command without touching toydiff. Bad input prints one line on stderr
and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Callable, Sequence

__all__ = ["main", "OneLineParser", "run_guarded", "fail", "int_list", "float_list"]

#: the entry-point group subcommands register in: ``name = "package.module:main"``
COMMAND_GROUP = "toydiff.commands"


def commands() -> dict[str, EntryPoint]:
    """The registered subcommands, by name (sorted)."""
    return {ep.name: ep for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda ep: ep.name)}


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(f"{self.prog}: error: {message}")


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


def fail(message: str) -> None:
    """Abort a command with a usage error (one line on stderr, exit 2)."""
    raise UsageError(message)


def run_guarded(fn: Callable[[], int | None], prog: str) -> int:
    """Run ``fn``; turn usage errors and the API's ValueError/TypeError into one stderr line and exit 2."""
    from .checkpoint import CheckpointError

    try:
        return int(fn() or 0)
    except UsageError as e:
        msg = str(e)
    except (ValueError, TypeError, CheckpointError, FileNotFoundError) as e:
        msg = f"{prog}: error: {e}"
    print(" ".join(msg.split()), file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[1])
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    registered = commands()
    if cmd not in registered:
        known = ", ".join(registered) or f"none: reinstall toydiff so the {COMMAND_GROUP!r} entry points exist"
        print(f"toydiff: error: unknown command {cmd!r} (choose from {known})", file=sys.stderr)
        return 2
    return int(registered[cmd].load()(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
