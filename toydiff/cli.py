"""The ``toydiff`` command.

    toydiff demo                 samplers on the exact oracle; writes figures (no training, no download)
    toydiff app [--port P]       the Streamlit sandbox (binds 127.0.0.1 unless --address is given)
    toydiff toy  {train,sample,report} ...
    toydiff mnist {train,sample,eval,lab} ...

Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

__all__ = ["main", "OneLineParser", "run_guarded", "fail", "int_list", "float_list"]

#: subcommand -> "module:function" taking argv (the rest of the command line) and returning an exit code
COMMANDS = {
    "demo": "toydiff.demo:main",
    "app": "apps.launch:main",
    "toy": "toydiff.toy_cli:main",
    "mnist": "image_track.cli:main",
}


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
        print(__doc__.strip())
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"toydiff: error: unknown command {cmd!r} (choose from {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module, func = COMMANDS[cmd].split(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
