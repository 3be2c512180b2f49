"""The ``toydiff`` command and the small pieces every subcommand shares.

    toydiff demo                 samplers on the exact oracle; writes figures (no training, no download)
    toydiff app [--port P]       the Streamlit sandbox (binds 127.0.0.1 unless --address is given)
    toydiff toy  {train,sample,report} ...
    toydiff mnist {train,sample,eval,lab} ...
    toydiff check-sampler SAMPLER [--config k=v,...] [--steps 12,24,48]   a sampler's properties on the exact oracle

Subcommands register themselves in the ``toydiff.commands`` entry-point group (see ``pyproject.toml``):
each entry names a ``main(argv) -> int`` function, so this module imports nothing of the layers above it
and a plug-in package can add a command without touching toydiff. Bad input (a bad flag, a file that is
missing, unreadable, unwritable or not what the command needs) prints one line on stderr and exits with
status 2; a training run that diverges (a NaN or infinite loss or weight) prints one line naming the step and
exits with status 3, its last checkpoint left as the last finite one.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from importlib.metadata import EntryPoint, entry_points
from typing import Callable, Sequence

__all__ = ["main", "OneLineParser", "run_guarded", "fail", "int_list", "float_list", "seed_arg", "device_arg",
           "flag_names", "check_writable", "EXIT_USAGE", "EXIT_DIVERGED"]

#: exit status of bad input (one stderr line)
EXIT_USAGE = 2
#: exit status of a training run stopped by a NaN / infinite loss or weight (one stderr line naming the step)
EXIT_DIVERGED = 3
#: the largest seed a flag takes (torch generators take 64-bit seeds; the tracks add offsets to them)
MAX_SEED = 2**32 - 1

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


def check_writable(path: str | os.PathLike, flag: str, *, folder: bool = False) -> Path:
    """``path`` if it (a file, or with ``folder`` a folder) can be created or rewritten, judged without writing
    anything: its nearest existing ancestor must be a writable folder (a file is rewritten atomically, by a
    rename in its folder: :mod:`toydiff.outputs`). A ValueError naming ``flag`` otherwise."""
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        kinds = ("a file", "a folder") if folder else ("a folder", "a file")
        raise ValueError(f"{flag} {path} is {kinds[0]}, not {kinds[1]}")
    base = path if folder and path.exists() else path.parent
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise ValueError(f"{flag} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: {base} is not writable")
    return path


def fail(message: str) -> None:
    """Abort a command with a usage error (one line on stderr, exit 2)."""
    raise UsageError(message)


def run_guarded(fn: Callable[[], int | None], prog: str) -> int:
    """Run ``fn``; turn usage errors, the API's ValueError/TypeError, unreadable or unwritable files (OSError)
    and unusable images into one stderr line and exit 2, and a diverged training run into one line and exit 3."""
    from toydiff.training.checkpoint import CheckpointError
    from toydiff.training.hooks import NonFiniteLossError

    status = EXIT_USAGE
    try:
        return int(fn() or 0)
    except UsageError as e:
        msg = str(e)
    except NonFiniteLossError as e:
        msg, status = f"{prog}: error: {e}", EXIT_DIVERGED
    except (ValueError, TypeError, CheckpointError) as e:
        msg = f"{prog}: error: {e}"
    except OSError as e:  # FileNotFoundError, PermissionError, a read-only file system, a path under a file...
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        msg = f"{prog}: error: {e}" if e.errno is None else f"{prog}: error: cannot write or read{where}: {e.strerror}"
    except Exception as e:  # noqa: BLE001 - pillow's DecompressionBombError and the like: still one line
        if type(e).__name__ != "DecompressionBombError":
            raise
        msg = f"{prog}: error: {e}"
    print(" ".join(msg.split()), file=sys.stderr)
    return status


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
