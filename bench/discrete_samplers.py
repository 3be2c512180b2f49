"""Every discrete sampler × steps on the exact denoiser: the exact KL and TV of its samples to the table, next to
the count floor (what n true samples give), and the Bayes floors of the MDLM loss by T.

    python bench/discrete_samplers.py                       # shapes (V = 2, L = 9), n = 2000, 3 seeds, 1 thread (~3 min)
    python bench/discrete_samplers.py --dataset words --steps 1 4 16 64
    python bench/discrete_samplers.py --methods maskgit --temperatures 1 4.5 20 --steps 4 16 64
    python bench/discrete_samplers.py --quick               # a smoke run

Issue #26's framing: on a table the denoiser p(x₀ⁱ | x_t) is exact (:meth:`TableDistribution.denoiser`), so the
only error left in a sampler's output is the sampler's own: drawing the positions of one step independently
(ancestral, D3PM / MDLM), the first-order leap of the reverse CTMC (Euler, τ-leaping; Campbell et al. 2022) or
confidence ordering (MaskGIT, Chang et al. 2022). Per row, mean ± sd over ``--seeds`` seeds (each seed: fresh x_T
and sampler noise) of KL(p̂ ‖ p) (nats; inf if a sequence of probability 0 was drawn) and TV from the counts of
n samples; the floor row is the same statistic for n true draws (mean ± sd over 10 sets). "reaches" is the
fewest steps whose KL mean is within the floor's mean + 2 sd. Tables are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import toydiff as td
from toydiff.discrete import judge
from toydiff.threads import configure_threads

STEPS = (1, 2, 4, 8, 16, 32, 64)


def run_cell(dist, proc, method: str, steps: int, n: int, seeds: int, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """KL and TV ``[seeds]`` of ``method`` at ``steps`` on the exact denoiser of ``dist`` under ``proc``."""
    fn, kls, tvs = dist.denoiser(proc), [], []
    for seed in range(seeds):
        g = torch.Generator().manual_seed(1000 + seed)
        x0 = td.sample(fn, proc.prior(n, dist.L, generator=g), proc, method=method, steps=steps, generator=g,
                       **options)
        kl, tv = judge.kl_tv(dist, x0)
        kls.append(kl)
        tvs.append(tv)
    return torch.tensor(kls, dtype=torch.float64), torch.tensor(tvs, dtype=torch.float64)


def fmt(x: torch.Tensor) -> str:
    return "inf" if not bool(torch.isfinite(x).all()) else f"{float(x.mean()):.4f} ± {float(x.std()):.4f}"


def rows(processes, methods, temperatures):
    """(process, method, options, label) for every row: each method, and maskgit at each choice temperature."""
    for proc in processes:
        for method in proc.methods:
            if methods and method not in methods:
                continue
            yield proc, method, {}, method
            if method == "maskgit":
                for temp in temperatures:
                    yield proc, method, {"temperature": temp}, f"maskgit, temperature {temp:g}"


def sampler_table(dist, processes, steps_list, n: int, seeds: int, floor: dict, methods=None,
                  temperatures=()) -> list[str]:
    lines = ["| process | method | " + " | ".join(f"{s} steps" for s in steps_list) + " | reaches |",
             "|---|---|" + "---|" * (len(steps_list) + 1)]
    bar = floor["kl"] + 2 * floor["kl_sd"]
    print("\n".join(lines), flush=True)
    for proc, method, options, label in rows(processes, methods, temperatures):
        cells, reach = [], "—"
        for steps in steps_list:
            kl, tv = run_cell(dist, proc, method, steps, n, seeds, **options)
            cells.append(f"{fmt(kl)} (TV {float(tv.mean()):.3f})")
            if reach == "—" and bool(torch.isfinite(kl).all()) and float(kl.mean()) <= bar:
                reach = str(steps)
        lines.append(f"| {proc.name} ({proc.schedule}) | {label} | " + " | ".join(cells) + f" | {reach} |")
        print(lines[-1], flush=True)
    return lines


def floor_table(dist, Ts) -> list[str]:
    """The exact Bayes floor of MDLM's loss (nats per sequence) with T steps and in continuous time."""
    lines = ["| schedule | " + " | ".join(f"T = {T}" for T in Ts) + " | continuous |", "|---|" + "---|" * (len(Ts) + 1)]
    for schedule in ("linear", "cosine"):
        vals = [judge.mdlm_floor(dist, td.discrete.masked(T, dist.V, schedule=schedule)) for T in (*Ts, None)]
        lines.append(f"| {schedule} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="shapes", choices=tuple(td.discrete.DATASETS))
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    p.add_argument("--schedule", default="linear", choices=tuple(td.discrete.SCHEDULES))
    p.add_argument("--methods", nargs="+", default=None, choices=tuple(td.discrete.DISCRETE_METHODS),
                   help="only these samplers (default: every one)")
    p.add_argument("--temperatures", type=float, nargs="+", default=[],
                   help="extra maskgit rows at these choice temperatures (Chang et al. 2022 use 4.5)")
    p.add_argument("--no-floors", action="store_true", help="skip the MDLM floor table")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="n = 500, 2 seeds, steps 1 4 16")
    a = p.parse_args(argv)
    configure_threads(a.threads)
    if a.quick:
        a.n, a.seeds, a.steps = 500, 2, [1, 4, 16]
    dist = td.discrete.dataset(a.dataset)
    start = time.time()
    floor = judge.count_floor(dist, a.n, draws=10, generator=torch.Generator().manual_seed(7))
    print(f"{a.dataset}: V = {dist.V}, L = {dist.L}, {dist.n_states} sequences, H = {dist.entropy():.4f} nats; "
          f"n = {a.n}, {a.seeds} seeds")
    print(f"count floor (n true draws, 10 sets): KL {floor['kl']:.4f} ± {floor['kl_sd']:.4f}, "
          f"TV {floor['tv']:.3f} ± {floor['tv_sd']:.3f}\n")
    processes = [td.discrete.masked(None, dist.V, schedule=a.schedule),
                 td.discrete.uniform(None, dist.V, schedule=a.schedule)]
    sampler_table(dist, processes, a.steps, a.n, a.seeds, floor, a.methods, a.temperatures)
    if not a.no_floors:
        print("\nBayes floor of MDLM's loss (exact; H(X) in continuous time):")
        print("\n".join(floor_table(dist, (1, 2, 4, 16, 64))))
    print(f"\nwall time {time.time() - start:.0f} s (shared CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
