"""Optimised sampling levels against the fixed spacings, on the exact oracle (issue #25, part 4).

For each data set, method and budget N: :func:`toydiff.sampling.optimal_steps.optimal_steps` searches the N levels on
256 quasi-random x_T (``search_draws``, seed 0), then the pathwise error (RMS of x̂_0 − Φ(x_T) in data standard
deviations, :func:`toydiff.evaluation.few_step.pathwise_error`) of the optimised levels and of linspace / trailing /
karras / logsnr is measured on FRESH x_T (i.i.d. draws of seeds 1..S, never seen by the search): mean ± sd over
those seeds, the margin best fixed / optimised (> 1: the optimised levels win) and, paired on the same x_T, on how
many seeds they win. Schedule: linear, T = 1000. One torch thread.

    python bench/optimal_steps.py          # 8gaussians, two_gaussians; ddim, dpm++2m, heun; N = 10, 5, 20
    python bench/optimal_steps.py --steps 10 --methods ddim dpm++2m
    python bench/optimal_steps.py --process flow --methods euler heun dpm++2m   # the linear interpolant
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import toydiff as td  # noqa: E402
from toydiff.evaluation.few_step import data_std, pathwise_error  # noqa: E402
from toydiff.sampling.optimal_steps import (exact_targets, fixed_levels, optimal_steps, start_draws,  # noqa: E402
                                            steps_error)
from toydiff.threads import configure_threads  # noqa: E402
from toydiff.toy.datasets import get_dataset  # noqa: E402


#: --process: how to build it and how the table names it
PROCESS_CHOICES = {"vp": (lambda: td.schedules.linear(1000), "linear T = 1000"),
                   "flow": (td.interpolants.linear, "linear interpolant")}


def held_out_errors(gm, process, method: str, levels, draws) -> list[float]:
    """The pathwise error of ``method`` on ``levels`` for each of ``draws`` (``[(x_T, exact)]``): the search's own
    objective, which tests/toydiff/test_optimal_steps.py checks equals ``toydiff.evaluation.few_step.pathwise_error``."""
    return [steps_error(gm, process, method, levels, x, ex) for x, ex in draws]


def mean_sd(v: list[float]) -> tuple[float, float]:
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def bench_one(gm, process, method: str, n_steps: int, draws, args) -> dict:
    t0 = time.perf_counter()
    opt = optimal_steps(gm, process, method, n_steps, n=args.search_n, seed=0, max_evaluations=args.max_evaluations)
    row = {"search_s": time.perf_counter() - t0, "levels": opt.timesteps, "evaluations": opt.evaluations}
    fixed = fixed_levels(process, n_steps)
    for name, levels in fixed.items():
        row[name] = held_out_errors(gm, process, method, levels, draws)
    row["optimised"] = held_out_errors(gm, process, method, opt.timesteps, draws)
    best = min(fixed, key=lambda s: statistics.mean(row[s]))
    row["best"], row["margin"] = best, statistics.mean(row[best]) / statistics.mean(row["optimised"])
    row["wins"] = sum(o < b for o, b in zip(row["optimised"], row[best]))  # paired: the same x_T per seed
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["8gaussians", "two_gaussians"])
    p.add_argument("--methods", nargs="+", default=["ddim", "dpm++2m", "heun"])
    p.add_argument("--steps", nargs="+", type=int, default=[10, 5, 20])
    p.add_argument("--seeds", type=int, default=5, help="held-out seeds (1..S)")
    p.add_argument("--n", type=int, default=512, help="held-out draws per seed")
    p.add_argument("--search-n", type=int, default=256, help="draws the search optimises on (seed 0)")
    p.add_argument("--max-evaluations", type=int, default=400)
    p.add_argument("--process", choices=tuple(PROCESS_CHOICES), default="vp",
                   help="vp: linear schedule, T = 1000 (default); flow: the linear interpolant (exact velocity; "
                        "methods euler / heun / midpoint / dpm++2m)")
    args = p.parse_args(argv)
    configure_threads(1)
    build, described = PROCESS_CHOICES[args.process]
    process = build()
    cols = (*fixed_levels(process, 2), "optimised")
    print(f"pathwise error (data std), mean ± sd over {args.seeds} held-out seeds of {args.n} x_T; search on "
          f"{args.search_n} quasi-random x_T; {described}")
    print("| data | method | N | " + " | ".join(cols) + " | best fixed | margin (seeds won) | levels (optimised) |")
    print("|" + "---|" * (len(cols) + 6))
    levels_out = []
    for name in args.datasets:
        gm = get_dataset(name).mixture
        draws = [(x, exact_targets(gm, process, x)) for x in (start_draws(gm, args.n, s) for s in
                                                              range(1, args.seeds + 1))]
        for method in args.methods:
            for n_steps in args.steps:
                r = bench_one(gm, process, method, n_steps, draws, args)
                cells = " | ".join("{:.4f} ± {:.4f}".format(*mean_sd(r[c])) for c in cols)
                print(f"| {name} | {method} | {n_steps} | {cells} | {r['best']} | {r['margin']:.2f}× "
                      f"({r['wins']}/{len(draws)}) | "
                      f"{','.join(f'{v:.4g}' for v in r['levels'])} |", flush=True)
                levels_out.append(f"{name} {method} {n_steps}: search {r['search_s']:.1f} s, "
                                  f"{r['evaluations']} runs")
    print("\n".join(levels_out))


if __name__ == "__main__":
    main()
