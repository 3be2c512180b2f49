"""``toydiff toy``: the 1-D / 2-D toy track, one module per subcommand.

    toydiff toy train  --dataset two_gaussians --out runs/toy            # the seed exercise, seconds
    toydiff toy train  --dataset 8gaussians --process flow --out runs/8g-fm   # flow matching (rectified flow)
    toydiff toy sample --run runs/toy --method ddim --steps 50 --n 10000 --out samples.npy
    toydiff toy sample --oracle --dataset 8gaussians --method heun --steps 20 --out exact.npy
    toydiff toy report --run runs/toy --out report/                      # figures + metrics.json
    toydiff toy reflow --run runs/8g-fm --out runs/8g-rf                  # one round of reflow
    toydiff toy guidance --out runs/guidance                             # CFG vs the exact tilted target
    toydiff toy likelihood --oracle --dataset 8gaussians --out lik/
    toydiff toy memorise --dataset 8gaussians --n-train 64 --out mem/
    toydiff toy distill runs/8g-fm --rounds 3 --out runs/8g-pd           # progressive distillation to 1 step

This module is the router: :data:`SUBCOMMANDS` lists each subcommand's module, which offers ``HELP`` (its
one-line summary), ``add_parser(sub)`` and ``run(args) -> exit status``. Bad input prints one line on stderr
and exits with status 2; ``train`` exits 3 if the run diverges. Every subcommand takes ``--threads N`` (torch CPU
threads; default 1, :mod:`toydiff.threads`). A file ``--out`` is rewritten atomically; a report folder is written
whole at the end (:mod:`toydiff.outputs`); a run folder holding a run needs ``--resume`` or ``--overwrite``.
"""

from __future__ import annotations

import sys
from typing import Sequence

from toydiff.cli import OneLineParser, run_subcommand, subcommand_parser
from toydiff.toy.cli import distill, guidance, likelihood, memorise, reflow, report, sample, train
from toydiff.toy.cli.common import PROG

__all__ = ["main", "build_parser", "SUBCOMMANDS", "HELP"]

HELP = "the 1-D / 2-D toy track: train MLP denoisers, sample, report, and labs against the exact oracle"

#: subcommand name -> its module (``HELP``, ``add_parser(sub)``, ``run(args)``)
SUBCOMMANDS = {"train": train, "sample": sample, "report": report, "reflow": reflow, "guidance": guidance,
               "likelihood": likelihood, "memorise": memorise, "distill": distill}


def build_parser() -> OneLineParser:
    """The ``toydiff toy`` parser: one sub-parser per entry of :data:`SUBCOMMANDS`."""
    return subcommand_parser(PROG, "The 1-D / 2-D toy track: train MLP denoisers under a process, sample "
                             "them, and measure them against the exact oracle of the data's mixture.",
                             __doc__.split("\n\n")[1], SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the subcommand; its exit status."""
    return run_subcommand(build_parser, SUBCOMMANDS, PROG, argv)


if __name__ == "__main__":
    sys.exit(main())
