"""The exact flow map with per-sample times: one ODE system for every row against one solve per distinct (t, s) pair.

    python bench/flow_map.py              # 8gaussians, linear path, median of 3 interleaved repeats
    python bench/flow_map.py --repeats 5

:func:`toydiff.exact.flow_map.flow_map` carries every row on its own clock in one scipy ``solve_ivp`` system (at most
four solves: the noise and data sides, toward and away from the data). The "per pair" column calls it once per
distinct pair on that pair's rows: the cost of solving pair by pair. Cases: one pair (the Labs cloud), 10 start
times x 200 draws (the error-against-t curve, :func:`toydiff.evaluation.few_step.exact_jumps`) and 256 random pairs
(r < t; an exact-teacher training batch of MeanFlow's average velocity). "max |diff|" is the largest difference
between the two columns' outputs (both solved to rtol = atol = 1e-10). Single-threaded (toydiff.threads).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import toydiff as td
from toydiff.threads import configure_threads
from toydiff.toy.datasets import Normalizer, get_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_overhead import time_interleaved  # noqa: E402


def cases(gm, seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``{name: (x [B, D], t [B], s [B])}``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2000, gm.D, generator=g, dtype=torch.float64)
    t10 = torch.linspace(0.1, 1.0, 10, dtype=torch.float64).repeat_interleave(200)
    t = torch.rand(256, generator=g, dtype=torch.float64)
    return {"1 pair x 500 rows (1 -> 0)": (x[:500], torch.ones(500, dtype=torch.float64), torch.zeros(500)),
            "10 pairs x 200 rows (t -> 0)": (x, t10, torch.zeros(2000, dtype=torch.float64)),
            "256 random pairs (t -> r < t)": (x[:256], t, t * torch.rand(256, generator=g, dtype=torch.float64))}


def per_pair(gm, x, t, s, interp) -> torch.Tensor:
    out = torch.empty_like(x)
    pairs, inv = torch.unique(torch.stack([t, s], 1), dim=0, return_inverse=True)
    for g, (tg, sg) in enumerate(pairs.tolist()):
        rows = inv == g
        out[rows] = gm.flow_map(x[rows], tg, sg, interp)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="8gaussians")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    configure_threads()
    mix = get_dataset(args.dataset).mixture
    gm, interp = Normalizer.from_mixture(mix).oracle(mix), td.interpolants.linear()
    print(f"{args.dataset}, linear path, median of {args.repeats} interleaved runs, one thread\n")
    print("| case | one system (s) | per pair (s) | per pair / one system | max abs diff |")
    print("|---|---:|---:|---:|---:|")
    for name, (x, t, s) in cases(gm).items():
        joint, split = gm.flow_map(x, t, s, interp), per_pair(gm, x, t, s, interp)
        a, b = time_interleaved([lambda: gm.flow_map(x, t, s, interp), lambda: per_pair(gm, x, t, s, interp)],
                                args.repeats)
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.1f}x | {float((joint - split).abs().max()):.1e} |")


if __name__ == "__main__":
    main()
