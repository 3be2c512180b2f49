"""Memorisation → generalisation on a toy: a network trained on n fixed points, against the training set's own
optimal denoiser (toydiff.exact.EmpiricalDistribution) and the true one (the data's exact mixture).

    PYTHONPATH=. python bench/memorisation.py                  # short sweep: n = 16, 256, 4096 x 500 / 2000 steps
    PYTHONPATH=. python bench/memorisation.py --long           # n = 16 ... 16384 (x4) x 3 lengths (long)
    PYTHONPATH=. python bench/memorisation.py --n 64,1024 --steps 2000 --dataset 25gaussians

For every (n, training steps): :func:`toydiff.toy.run.train_toy` with ``fresh=False`` (the same n points every
epoch, ``toydiff toy train --fixed-data --n-train n``), then 2000 DDPM samples (every step) from the network and from the
empirical ε* (same x_T). Columns:

* copy: share of samples whose nearest training point is < 1/3 of the distance to the second nearest
  (Yoon et al. 2023; Gu et al. 2023) — network, and empirical ε* (≈ 100 %: it samples training points only);
* copy fresh data: the same test on 2000 fresh true samples, the metric's chance level on a dense training set;
* train loss vs its empirical floor: ε-loss on the n training points (fixed held-out t, ε draws) of the network
  and of the empirical ε* (the minimum of the training objective);
* held-out loss vs the true floor (the exact mixture's ε*: Bayes-optimal on fresh data) and vs the empirical
  ε*'s held-out loss (what a perfect memoriser scores on fresh data).

A memorising network tracks the empirical columns; a generalising one the true floor.
"""

from __future__ import annotations

import argparse
import time

import torch

from toydiff.exact.empirical import EmpiricalDistribution
from toydiff.training.losses import held_out_loss
from toydiff.evaluation.memorisation import copy_rate
from toydiff.sampling.loop import sample
from toydiff.toy.datasets import get_dataset
from toydiff.toy.run import train_toy
from toydiff.training.engine import TrainConfig
from toydiff.threads import configure_threads

SHORT = {"n": [16, 256, 4096], "steps": [500, 2000]}
N_VAL = 1000  # held-out points (drawn after the training points, as train_toy does)
LONG = {"n": [16, 64, 256, 1024, 4096, 16384], "steps": [1000, 5000, 20000]}


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",")]


def row(dataset: str, n: int, steps: int, seed: int, n_samples: int) -> dict:
    ds = get_dataset(dataset)
    t0 = time.perf_counter()
    run = train_toy(ds, n_train=n, fresh=False, config=TrainConfig(max_steps=steps, batch_size=min(128, n),
                    ema_decay=0.995, seed=seed), n_val=N_VAL, seed=seed, progress=False)
    secs = time.perf_counter() - t0
    g = torch.Generator().manual_seed(seed)  # the draw train_toy made: the first n are the training set
    xn = run.normalizer.forward(ds.sample(n + N_VAL, g).double())
    train, val = xn[:n], xn[n:]
    emp = EmpiricalDistribution(train)
    fns = {"net": run.eps_fn(), "emp": emp.eps_fn(run.schedule), "true": run.oracle.eps_fn(run.schedule)}
    out = {"n": n, "steps": steps, "seconds": secs}
    for who in ("net", "emp"):
        g = torch.Generator().manual_seed(seed + 1)
        x_T = torch.randn(n_samples, ds.dim, generator=g, dtype=torch.float64)
        out[f"copy_{who}"] = copy_rate(sample(fns[who], x_T, run.schedule, method="ddpm", generator=g), train)
    fresh = run.normalizer.forward(ds.sample(n_samples, torch.Generator().manual_seed(seed + 4)).double())
    out["copy_fresh"] = copy_rate(fresh, train)  # the metric's chance level: true samples that look like copies
    for who in ("net", "emp", "true"):
        out[f"train_{who}"] = held_out_loss(fns[who], run.schedule, train, seed=seed + 2)[0]
        out[f"val_{who}"] = held_out_loss(fns[who], run.schedule, val, seed=seed + 3)[0]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description="memorisation sweep (prints a markdown table)")
    p.add_argument("--dataset", default="8gaussians")
    p.add_argument("--long", action="store_true", help="n = 16 ... 16384 and 1k / 5k / 20k steps (tens of minutes)")
    p.add_argument("--n", type=_ints, default=None, help="comma-separated training-set sizes")
    p.add_argument("--steps", type=_ints, default=None, help="comma-separated training lengths (optimiser steps)")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    configure_threads(a.threads)
    sweep = LONG if a.long else SHORT
    ns, lengths = a.n or sweep["n"], a.steps or sweep["steps"]
    print(f"{a.dataset}: the recipe's MLP, TrainConfig defaults (AdamW 3e-3, cosine, EMA 0.995, uniform t), batch "
          f"min(128, n), on n fixed points, seed {a.seed}; losses per element; copies: DDPM, 2000 samples\n")
    print("| n | steps | copy net | copy emp ε* | copy fresh data | train loss net | empirical floor (train) | held-out net | "
          "true floor | emp ε* held-out | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in ns:
        for steps in lengths:
            r = row(a.dataset, n, steps, a.seed, a.samples)
            print(f"| {n} | {steps} | {r['copy_net']:.1%} | {r['copy_emp']:.1%} | {r['copy_fresh']:.1%} | {r['train_net']:.4f} | "
                  f"{r['train_emp']:.4f} | {r['val_net']:.4f} | {r['val_true']:.4f} | {r['val_emp']:.4f} | "
                  f"{r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
