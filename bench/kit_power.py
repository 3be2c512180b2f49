"""The calibration and the power of the kit's two-sample test (``toydiff.testing.twosample``), as a markdown table.

    python bench/kit_power.py                 # n = 2000 samples, 100 repetitions per row (~6 minutes on 1 core)
    python bench/kit_power.py --reps 40       # quicker, coarser

Each row draws ``n`` samples from a distribution, runs the test of ``check_sampler``'s 'distribution' row
(log-density Welch z at α/2 and energy-distance permutation at α/2, α = 0.01) against the exact mixture of
``default_problem()`` and counts rejections: on the exact distribution that is the false-alarm rate, on the
altered ones the power. "variance x1.1, whole" scales every sample about the data mean by √1.1 (the covariance
grows by 10 %); "per component" scales each sample about its own component's mean (every component's covariance
grows by 10 %, the weights and means stay). Nothing is asserted here.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from toydiff.testing import default_problem
from toydiff.testing.twosample import ALPHA, _z_crit, energy_permutation_p, log_density_z, PERMUTATION_POINTS


def draw(mixture, n: int, g: torch.Generator, kind: str, factor: float) -> torch.Tensor:
    x, comp = mixture.sample(n, g, return_components=True)
    centre = mixture.mean() if kind == "whole" else mixture.means[comp]
    return centre + math.sqrt(factor) * (x - centre)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    mix = default_problem().mixture
    g = torch.Generator().manual_seed(args.seed)
    z_crit = _z_crit(ALPHA / 2)
    rows = [("exact (false alarms)", "whole", 1.0), ("variance x1.1, whole", "whole", 1.1),
            ("variance x0.9, whole", "whole", 0.9), ("variance x1.1, per component", "comp", 1.1),
            ("variance x0.9, per component", "comp", 0.9)]
    print(f"n = {args.n} samples (energy distance on {min(args.n, PERMUTATION_POINTS)}), {args.reps} repetitions, "
          f"alpha = {ALPHA} (each test at {ALPHA / 2})\n")
    print("| samples | log-density z rejects | energy-distance rejects | test rejects (either) | s / test |")
    print("|---|---|---|---|---|")
    for label, kind, factor in rows:
        start, rz, rp, both = time.time(), 0, 0, 0
        for _ in range(args.reps):
            x = draw(mix, args.n, g, kind, factor)
            z = abs(log_density_z(mix, x, g)) > z_crit
            k = min(args.n, PERMUTATION_POINTS)
            p = energy_permutation_p(x[:k], mix.sample(k, g), g) <= ALPHA / 2
            rz, rp, both = rz + z, rp + p, both + (z or p)
        r = args.reps
        print(f"| {label} | {rz / r:.0%} | {rp / r:.0%} | {both / r:.0%} | {(time.time() - start) / r:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
