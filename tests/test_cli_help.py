"""Every ``toydiff`` parser's help: each subcommand has a summary, each option a help text that states its
default, no reST markup; ``toydiff --help`` has a usage line and lists every command and subcommand.

The parsers are built through their build functions and walked through their subparsers (top level, ``toy``,
``mnist``, ``mnist lab``, ``check-sampler``, ``demo``, ``app``), so a new option or subcommand is checked too.
"""

from __future__ import annotations

import argparse

import pytest

from toydiff.cli import OneLineParser, build_parser, command_parsers, main, subcommands
from toydiff.options import format_default, shows_default

REST = ("``", ":func:`", ":class:`", ":meth:`", ":mod:`", ":attr:`", ":data:`")


def walk(parser: argparse.ArgumentParser, path: str):
    """``(path, parser)`` for ``parser`` and every sub-parser below it."""
    yield path, parser
    for name, (_, sub) in subcommands(parser).items():
        yield from walk(sub, f"{path} {name}")


def all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    from image_track.lab.cli import build_parser as lab_parser

    out = []
    for name, (_, parser) in command_parsers().items():
        if parser is not None:
            out += list(walk(parser, f"toydiff {name}"))
    return out + list(walk(lab_parser(), "toydiff mnist lab"))


def option_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help line of ``action`` as ``--help`` prints it (defaults and reST handled by the formatter)."""
    return parser._get_formatter()._expand_help(action)


def problems(path: str, parser: argparse.ArgumentParser) -> list[str]:
    """What is wrong with ``parser``'s help: a subcommand without summary, an option without help or without
    its default, reST markup anywhere in its help."""
    out = [f"{path} {name}: no summary" for name, (summary, _) in subcommands(parser).items() if not summary.strip()]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        text = option_help(parser, action) if action.help is not None else ""
        flag = "/".join(action.option_strings) or action.dest
        if not text.strip():
            out.append(f"{path} {flag}: no help")
        elif shows_default(action) and format_default(action.default) not in text:
            out.append(f"{path} {flag}: default {format_default(action.default)!r} not in {text!r}")
        elif text.count("(default") > 1:
            out.append(f"{path} {flag}: its default twice in {text!r}")
    full = parser.format_help()
    out += [f"{path}: {mark!r} in its help" for mark in REST if mark in full]
    return out


PARSERS = all_parsers()


def test_every_command_and_subcommand_is_walked():
    paths = {p for p, _ in PARSERS}
    expected = {"toydiff demo", "toydiff app", "toydiff check-sampler", "toydiff toy", "toydiff mnist",
                "toydiff mnist lab"} | {f"toydiff toy {c}" for c in ("train", "sample", "report", "reflow", "guidance",
                                                                  "likelihood", "memorise")} \
        | {f"toydiff mnist {c}" for c in ("train", "sample", "eval", "lab")} \
        | {f"toydiff mnist lab {c}" for c in ("denoise", "sdedit", "inpaint", "anagram", "hybrid", "denoiser",
                                              "guidance")}
    assert expected <= paths, sorted(expected - paths)


@pytest.mark.parametrize("path, parser", PARSERS, ids=[p for p, _ in PARSERS])
def test_help_is_complete(path, parser):
    assert problems(path, parser) == []


def test_the_check_catches_a_bare_option_a_hidden_default_and_rest():
    p = OneLineParser(prog="tiny")
    p.add_argument("--bare", type=int, default=3)
    p.add_argument("--rest", default=None, help="see :func:`toydiff.sample`")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("quiet")
    found = problems("tiny", p)
    assert "tiny --bare: no help" in found
    assert "tiny quiet: no summary" in found
    assert not any(":func:" in f for f in found)  # the formatter made the reST plain...
    p.add_argument("--raw", default="x", help="a ``literal``")
    assert "tiny --raw: no help" not in problems("tiny", p)
    assert "`" not in p.format_help()  # ...and plain it stays

    hidden = argparse.ArgumentParser(prog="plain")  # argparse's own formatter states no default
    hidden.add_argument("--n", type=int, default=5, help="samples")
    assert problems("plain", hidden) == ["plain --n: default '5' not in 'samples'"]
    hidden.add_argument("--ref", help="see ``x``")
    assert "plain: '``' in its help" in problems("plain", hidden)
    twice = OneLineParser(prog="twice")
    twice.add_argument("--rtol", type=float, default=1e-4, help="tolerance (default 1e-4)")  # not as %g shows it
    assert problems("twice", twice) == ["twice --rtol: its default twice in 'tolerance (default 1e-4) (default 0.0001)'"]


def test_defaults_are_shown_as_typed():
    p = OneLineParser(prog="tiny")
    p.add_argument("--ws", type=float, nargs="+", default=[0.0, 5.0, 10.0], help="scales")
    p.add_argument("--lr", type=float, default=1e-3, help="rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    text = " ".join(p.format_help().split())
    assert "scales (default 0,5,10)" in text and "rate (default 0.001)" in text
    assert "seed (default 0)" in text and "(default 0) (default 0)" not in text


def test_toydiff_help_has_usage_and_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:")
    for name, (summary, parser) in command_parsers().items():
        assert f"  {name}  " in out or f"  {name} " in out, name
        assert summary in out
        for sub, (help_line, _) in (subcommands(parser) if parser is not None else {}).items():
            assert f"    {sub} " in out and help_line in out, (name, sub)
    assert "lab" in out and "reflow" in out and "memorise" in out
    assert out.startswith(build_parser().format_usage())
    assert problems("toydiff", build_parser()) == []


def test_toydiff_without_command_prints_usage_and_exits_2(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.startswith("usage:")
