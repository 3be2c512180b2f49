"""``toydiff check-sampler SAMPLER [--config k=v,...] [--steps 12,24,48,96] [--timeout 60]``: the kit's report.

    toydiff check-sampler toydiff:heun --steps 10,20,40
    toydiff check-sampler diffusers:DPMSolverMultistepScheduler --config algorithm_type=dpmsolver++,solver_order=2
    toydiff check-sampler k-diffusion:sample_dpmpp_2m --config sigmas=karras --order 2

Prints the table of :func:`toydiff.testing.check_sampler` — runs, denoiser t, timesteps, calls at levels,
determinism, batch invariance, clean end, edge steps (1, 2 and T steps), pathwise, order, efficiency (error within
4x a reference method of the same order on the same levels), distribution (a calibrated two-sample test, false
alarms <= 1 %), duplicate levels — exit status 0 when every property holds, 1 when one
fails (the sampler raised, returned NaN or the wrong shape, ran past ``--timeout`` seconds, or broke a property),
2 on bad input (one line on stderr: an unknown sampler, a library that is not installed or fails to import, a bad
flag such as ``--order nan``, a configuration the sampler refuses such as ``toydiff:heun --config eta=0.5``).
"""

from __future__ import annotations

from typing import Sequence

from toydiff.cli import OneLineParser, run_guarded

from toydiff.options import int_list, positive, seed_arg

__all__ = ["main", "build_parser", "parse_config", "HELP"]

HELP = "check a sampler (toydiff, diffusers or k-diffusion) against the exact oracle: a table of its properties"

EXIT_FAILED = 1


def _value(text: str):
    """``"2"`` -> 2, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, anything else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_config(text: str) -> dict:
    """``"algorithm_type=dpmsolver++,solver_order=2"`` -> ``{"algorithm_type": "dpmsolver++", "solver_order": 2}``."""
    out = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, val = part.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"--config expects key=value pairs separated by commas, got {part!r}")
        out[key.strip()] = _value(val.strip())
    return out


def build_parser() -> OneLineParser:
    """The ``toydiff check-sampler`` parser."""
    p = OneLineParser(prog="toydiff check-sampler", description=__doc__.split("\n\n", 1)[1])
    p.add_argument("sampler", help="toydiff:METHOD, diffusers:SCHEDULER_CLASS or k-diffusion:SAMPLE_FN")
    p.add_argument("--config", default="", help="comma-separated key=value options for the sampler (default: none)")
    p.add_argument("--steps", type=int_list, default=None, help="step counts (default 12,24,48,96)")
    p.add_argument("--order", type=float, default=None,
                   help="the convergence order the sampler claims (default: none, the order is only measured)")
    p.add_argument("--sweep", type=int, default=None, metavar="N",
                   help="also check the timesteps of every step count 1..N (default: 1..64 and a few larger)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the noise and the oracle's samples")
    p.add_argument("--timeout", type=positive(float), default=None, metavar="SECONDS",
                   help="time limit of one sampler run; a run over it fails, the rows it skipped say 'timed out' "
                        "(default 60)")
    p.add_argument("--edges", type=int_list, default=None, metavar="N,N,...",
                   help="step counts of the 'edge steps' row (default 1,2 and the schedule's full T)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    def go() -> int:
        from toydiff.testing.check import DEFAULT_STEPS, DEFAULT_SWEEP, DEFAULT_TIMEOUT, check_sampler

        args = build_parser().parse_args(argv)
        if args.steps is not None and any(n < 1 for n in args.steps):
            raise ValueError(f"--steps must be positive step counts, got {args.steps}")
        if args.sweep is not None and args.sweep < 0:
            raise ValueError(f"--sweep must be >= 0, got {args.sweep}")
        sweep = DEFAULT_SWEEP if args.sweep is None else range(1, args.sweep + 1)
        timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
        rep = check_sampler(args.sampler, args.steps or DEFAULT_STEPS, order=args.order, seed=args.seed, sweep=sweep,
                            timeout=timeout, edges=args.edges, **parse_config(args.config))
        print(rep.table())
        return 0 if rep.passed else EXIT_FAILED

    return run_guarded(go, "toydiff check-sampler")


if __name__ == "__main__":
    import sys

    sys.exit(main())
