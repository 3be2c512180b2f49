"""The ``toydiff`` command and the small pieces every subcommand shares.

    toydiff demo                 samplers on the exact oracle; writes figures (no training, no download)
    toydiff app [--port P]       the Streamlit sandbox (binds 127.0.0.1 unless --address is given)
    toydiff toy  {train,sample,report,reflow,guidance,likelihood,memorise} ...
    toydiff mnist {train,sample,eval,lab} ...
    toydiff discrete {train,sample,report} ...   masked / uniform diffusion on small categorical tables
    toydiff check-sampler SAMPLER [--config k=v,...] [--steps 12,24,48]   a sampler's properties on the exact oracle

``toydiff --help`` is built from the commands' own parsers (:func:`build_parser`): each command's module offers
``HELP`` (its one-line summary; else its docstring's first line) and ``build_parser()``, whose subcommands are
listed under it. Every parser is a :class:`OneLineParser`, whose help (:class:`toydiff.options.HelpFormatter`)
states each option's default.

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
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Callable, Sequence

from toydiff.options import HelpFormatter, plain_text

__all__ = ["main", "build_parser", "command_parsers", "OneLineParser", "run_guarded", "subcommand_parser", "run_subcommand", "fail", "check_writable", "EXIT_USAGE", "EXIT_DIVERGED"]

#: exit status of bad input (one stderr line)
EXIT_USAGE = 2
#: exit status of a training run stopped by a NaN / infinite loss or weight (one stderr line naming the step)
EXIT_DIVERGED = 3
#: the entry-point group subcommands register in: ``name = "package.module:main"``
COMMAND_GROUP = "toydiff.commands"


def commands() -> dict[str, EntryPoint]:
    """The registered subcommands, by name (sorted)."""
    return {ep.name: ep for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda ep: ep.name)}


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2, and whose help states every
    option's default in plain text (:class:`toydiff.options.HelpFormatter`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(f"{self.prog}: error: {message}")


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


def subcommand_parser(prog: str, description: str, examples: str, modules: dict) -> OneLineParser:
    """A track's parser (``toydiff toy``, ``toydiff discrete``): one sub-parser per module of ``modules`` (name ->
    module offering ``HELP``, ``add_parser(sub)``, ``run(args)``), each with ``--threads`` (:mod:`toydiff.threads`)."""
    from toydiff.threads import add_threads_flag

    p = OneLineParser(prog=prog, description=description, epilog="examples:\n" + examples)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser, metavar="SUBCOMMAND",
                           title=f"subcommands ({prog} SUBCOMMAND --help: its options)")
    for name, module in modules.items():
        module.add_parser(sub)
        add_threads_flag(sub.choices[name])  # every subcommand: the one thread policy (toydiff.threads)
    return p


def run_subcommand(build: Callable[[], argparse.ArgumentParser], modules: dict, prog: str,
                   argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) with ``build()``, set the thread count, run the chosen module's
    ``run(args)`` under :func:`run_guarded`; the exit status."""
    from toydiff.threads import configure_threads

    def run() -> int:
        a = build().parse_args(list(sys.argv[1:] if argv is None else argv))
        configure_threads(a.threads)
        return modules[a.command].run(a)

    return run_guarded(run, prog)


def _summary(module) -> str:
    """A command module's one-line summary: its ``HELP``, else its docstring's first line without the
    leading ``toydiff NAME:``."""
    text = getattr(module, "HELP", None) or plain_text((module.__doc__ or "").strip().split("\n")[0])
    head, sep, rest = text.partition(": ")
    text = rest if sep and head.startswith("toydiff") else text
    return text.rstrip(".")


def command_parsers() -> dict[str, tuple[str, argparse.ArgumentParser | None]]:
    """Each registered command's ``(summary, parser)``: the parser of its module's ``build_parser()`` (None
    when it has none). Imports every command's module."""
    out = {}
    for name, ep in commands().items():
        module = import_module(ep.module)
        build = getattr(module, "build_parser", None)
        out[name] = (_summary(module), build() if build is not None else None)
    return out


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """The subcommands of ``parser``, by name: ``(one-line help, sub-parser)`` (empty for a parser without)."""
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            out.update({name: (helps.get(name) or "", p) for name, p in action.choices.items()})
    return out


#: the order of ``toydiff --help`` (other registered commands follow, by name)
ORDER = ("demo", "toy", "mnist", "app", "check-sampler", "discrete")


def build_parser() -> OneLineParser:
    """The parser of ``toydiff --help``: its usage line, and each registered command with its summary and, under
    it, its subcommands with theirs (the arguments after COMMAND go to the command's own parser)."""
    parsers = command_parsers()
    names = [n for n in ORDER if n in parsers] + [n for n in parsers if n not in ORDER]
    width = max([len(n) for n in names] + [len(s) + 2 for n in names if parsers[n][1] is not None
                                           for s in subcommands(parsers[n][1])])
    lines = []
    for name in names:
        summary, parser = parsers[name]
        lines.append(f"  {name:<{width}}  {summary}")
        subs = subcommands(parser) if parser is not None else {}
        lines += [f"    {n:<{width - 2}}  {h}" for n, (h, _) in subs.items()]
    return OneLineParser(
        prog="toydiff", usage="toydiff [-h] COMMAND [SUBCOMMAND] [ARGS ...]",
        description="A diffusion-model sandbox: exact oracles, a 1-D / 2-D toy track, MNIST, a Streamlit app and "
                    "a sampler-testing kit.",
        epilog="commands (toydiff COMMAND [SUBCOMMAND] --help: their options and defaults):\n" + "\n".join(lines)
               + "\n\nBad input: one line on stderr, exit status 2; a training run that diverges: exit status 3.")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        text = build_parser().format_help()
        print(text, file=sys.stdout if argv else sys.stderr)
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
