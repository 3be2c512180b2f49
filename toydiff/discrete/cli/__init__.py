"""``toydiff discrete``: masked / uniform diffusion on small categorical data, one module per subcommand.

    toydiff discrete train --out runs/discrete                          # the default recipe (shapes, masked), ~1 min
    toydiff discrete train --process uniform --T 32 --out runs/d-uni     # D3PM's hybrid loss on the uniform process
    toydiff discrete sample --run runs/discrete --method ancestral --steps 64 --n 4000 --out samples.npy
    toydiff discrete sample --exact --dataset words --steps 32           # the exact denoiser, no training
    toydiff discrete report --run runs/discrete --out report/            # loss.png, kl_vs_steps.png, metrics.json

This module is the router: :data:`SUBCOMMANDS` lists each subcommand's module (``HELP``, ``add_parser(sub)``,
``run(args) -> exit status``). Bad input prints one line on stderr and exits with status 2; a diverged training
run exits 3. Every subcommand takes ``--threads N`` (default 1, :mod:`toydiff.threads`).
"""

from __future__ import annotations

import sys
from typing import Sequence

from toydiff.cli import OneLineParser, run_subcommand, subcommand_parser
from toydiff.discrete.cli import report, sample, train
from toydiff.discrete.cli.common import PROG

__all__ = ["main", "build_parser", "SUBCOMMANDS", "HELP"]

HELP = "discrete diffusion on small categorical tables: train, sample and judge against the exact denoiser"

#: subcommand name -> its module
SUBCOMMANDS = {"train": train, "sample": sample, "report": report}


def build_parser() -> OneLineParser:
    """The ``toydiff discrete`` parser: one sub-parser per entry of :data:`SUBCOMMANDS`."""
    return subcommand_parser(PROG, "Masked and uniform diffusion on small categorical data whose every "
                             "probability is known: train a model, sample it, judge it exactly.",
                             __doc__.split("\n\n")[1], SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the subcommand; its exit status."""
    return run_subcommand(build_parser, SUBCOMMANDS, PROG, argv)


if __name__ == "__main__":
    sys.exit(main())
