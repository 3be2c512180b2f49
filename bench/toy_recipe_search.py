"""The search behind the toy default recipes: candidate recipes scored on the *search* seeds.

    python bench/toy_recipe_search.py                       # every candidate below (long: one thread each)
    python bench/toy_recipe_search.py --only 3,7            # some of them
    python bench/toy_recipe_search.py --quick               # smoke run
    python bench/toy_recipe_search.py --only 63 --exact-below 5   # and the diagnosis of round 6 (below)

Each candidate is a :class:`toydiff.toy.recipes.Recipe` (changes from the old default) trained with
a training seed (first round: 0, one replicate 2; rounds 2–5, 1-D: each recipe on seeds 10, 11 and 12, judged
by the mean of its ratios; round 6, 1-D: seeds 10–13, judged by the worst; 2-D: 0, the finalists also 2) on one
data set and scored by
``bench/toy_defaults.py``'s :func:`score` on sampling seeds 0… (reference sets 10 000…, floor sets 20 000…).
The final figures (``bench/toy_defaults.py``: training seed 1, sampling seeds 100…) use other seeds
throughout, so the recipes are not scored on the draws they were chosen on.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toy_defaults import score, train  # noqa: E402

from toydiff.sampling.loop import sample  # noqa: E402
from toydiff.toy import metrics  # noqa: E402
from toydiff.toy.recipes import Recipe  # noqa: E402
from toydiff.toy.run import ToyRun  # noqa: E402
from toydiff.threads import configure_threads  # noqa: E402

# the old default: the seed exercise's schedule, MLP 128 × 3 SiLU, 60 epochs of 10 000 fresh points in batches of 256
ONE_D = Recipe(schedule_name="constant", schedule_params=(("T", 250), ("beta", 0.02)), width=128, depth=3,
               activation="silu", time_input="sinusoidal", epochs=60, batch_size=256, lr=3e-3, t_sampling="uniform",
               ema_decay=0.995, n_train=10_000, fresh=True)
TWO_D = replace(ONE_D, t_sampling="low-noise")
LIN1000, COS1000 = ("linear", (("T", 1000),)), ("cosine", (("T", 1000),))
LIN250 = ("linear", (("T", 250), ("beta_end", 0.04)))


def two_d(schedule, **kw) -> Recipe:
    return replace(TWO_D, schedule_name=schedule[0], schedule_params=schedule[1], **kw)


#: (data set, recipe, training seed), in the order they were run
CANDIDATES: list[tuple[str, Recipe, int]] = [
    ("two_gaussians", ONE_D, 0),
    ("8gaussians", two_d(LIN1000, width=256), 0),
    ("8gaussians", two_d(LIN1000, epochs=128, batch_size=128), 0),
    ("two_gaussians", replace(ONE_D, epochs=100, batch_size=128), 0),
    ("8gaussians", two_d(("constant", (("T", 250), ("beta", 0.02))), epochs=128, batch_size=128), 0),
    ("8gaussians", two_d(COS1000, epochs=128, batch_size=128), 0),
    ("two_gaussians", replace(ONE_D, epochs=60, batch_size=64), 0),
    ("8gaussians", two_d(LIN250, epochs=128, batch_size=128), 0),
    ("8gaussians", two_d(COS1000, epochs=200, batch_size=128), 0),
    ("two_gaussians", replace(ONE_D, epochs=150, batch_size=128), 0),
    ("8gaussians", two_d(LIN250, epochs=200, batch_size=128), 0),
    ("two_gaussians", replace(ONE_D, epochs=100, batch_size=128, t_sampling="low-noise"), 0),
    ("two_gaussians", replace(ONE_D, epochs=100, batch_size=128), 2),  # a second training seed
    ("8gaussians", two_d(LIN250, epochs=250, batch_size=128), 0),
    ("8gaussians", two_d(LIN250, epochs=200, batch_size=128, ema_decay=0.999), 0),
    ("two_gaussians", replace(ONE_D, epochs=200, batch_size=256), 0),
]

# second round: training seeds 10, 11, 12 per 1-D candidate (the 1-D ratio is judged by its mean over them), all at
# the old default's step count (100 epochs × 10 000 / 128 ≈ 7 900 steps) or below; batches of 512 or 1024 see 2–3 ×
# the points per second of train time and stay within the 30 s
OLD_1D = replace(ONE_D, epochs=100, batch_size=128)  # the 1-D default before this round
OLD_2D = two_d(LIN250, epochs=250, batch_size=128)  # the 2-D default before this round
SEARCH_SEEDS = (10, 11, 12)
ROUND_2_1D = [
    OLD_1D,
    replace(OLD_1D, ema_decay=0.999, ema_warmup=True),
    replace(OLD_1D, ema_decay=0.999, ema_warmup=True, n_train=50_000, epochs=20),
    replace(OLD_1D, ema_decay=0.999, ema_warmup=True, lr=1e-3),
    replace(OLD_1D, ema_decay=0.999, ema_warmup=True, n_train=40_000, epochs=100, batch_size=512),
]
ROUND_2_2D = [
    (OLD_2D, 0),
    (replace(OLD_2D, ema_decay=0.999, ema_warmup=True), 0),
    (replace(OLD_2D, lr=2e-3), 0),
    (replace(OLD_2D, width=256), 0),
]
CANDIDATES += [("two_gaussians", r, s) for r in ROUND_2_1D for s in SEARCH_SEEDS]
CANDIDATES += [("8gaussians", r, s) for r, s in ROUND_2_2D]
# third round, 1-D: the larger batch (less gradient noise in ε at mid/high noise) was the one lever that helped
BIG_BATCH = replace(OLD_1D, n_train=40_000, batch_size=512)  # 100 epochs × 79 steps of 512: 4 × the points
ROUND_3_1D = [
    BIG_BATCH,
    replace(BIG_BATCH, batch_size=1024, ema_decay=0.999, ema_warmup=True),  # half the steps, same points
    replace(BIG_BATCH, ema_decay=0.999, ema_warmup=True, min_lr_ratio=0.1),
    replace(BIG_BATCH, batch_size=1024, n_train=80_000, epochs=60, ema_decay=0.999, ema_warmup=True),
]
CANDIDATES += [("two_gaussians", r, s) for r in ROUND_3_1D for s in SEARCH_SEEDS]
# third round, 2-D: width 256 helped but at 250 epochs trained too long; fewer epochs of it, or depth 4
ROUND_3_2D = [
    (replace(OLD_2D, width=256, epochs=150), 0),
    (replace(OLD_2D, width=256, epochs=150, ema_decay=0.999, ema_warmup=True), 0),
    (replace(OLD_2D, depth=4, epochs=200), 0),
    (two_d(("linear", (("T", 250), ("beta_end", 0.05))), epochs=250, batch_size=128), 0),
]
CANDIDATES += [("8gaussians", r, s) for r, s in ROUND_3_2D]
# a second training seed for the old 2-D default and the best of round 3 (depth 4, 200 epochs: the same train time)
CANDIDATES += [("8gaussians", OLD_2D, 2), ("8gaussians", replace(OLD_2D, depth=4, epochs=200), 2)]
# fourth round, 1-D: a longer EMA on the winner of round 3 (with warm-up it trains the same weights: the warm-up
# decay (1+k)/(10+k) stays below 0.999 for all 7 900 steps)
CANDIDATES += [("two_gaussians", replace(ROUND_3_1D[2], ema_decay=0.9995), s) for s in SEARCH_SEEDS]
# fifth round, 1-D: the default with a larger batch (60 000 points in batches of 768, 1.5 × its train time), or lr 5e-3
CANDIDATES += [("two_gaussians", replace(ROUND_3_1D[2], n_train=60_000, batch_size=768), s) for s in SEARCH_SEEDS]
CANDIDATES += [("two_gaussians", replace(ROUND_3_1D[2], lr=5e-3), s) for s in SEARCH_SEEDS]
# sixth round, 1-D, on four search seeds (10–13; judged by the worst, not the mean): the default (60–62 above) scored
# 1.31 on the scoring seed. Sampling a seed-1 run with the exact ε* at t < 5 and the network elsewhere took W1 from
# 1.25× to 1.11× the oracle's (mode means 0.04 off at t < 5; the weights within 0.001 throughout), so the last few
# steps, ~2 % of uniform draws, decide the error: draw more of them (low-noise t, P(t) ∝ 1/√(t+1), 8 × the uniform
# share at t = 0)
DEFAULT_1D = replace(ROUND_3_1D[2], lr=5e-3)  # the 1-D default of rounds 2–5 (60–62)
SEARCH_SEEDS_6 = (10, 11, 12, 13)
CANDIDATES += [("two_gaussians", DEFAULT_1D, 13)]
CANDIDATES += [("two_gaussians", replace(DEFAULT_1D, t_sampling="low-noise"), s) for s in SEARCH_SEEDS_6]


def exact_below_ratio(run: ToyRun, k: int, seeds: list[int], ref_base: int, n: int = 10_000) -> float:
    """The 1-D W1 ratio of ``score`` (mean over ``seeds``) when the exact ε* replaces the network at steps t < k:
    how much of the network's excess over the oracle the last k steps make (same x_T and noise as ``run.sample``)."""
    net, exact = run.eps_fn(), run.eps_fn(exact=True)

    def eps(x, t):  # x [n, 1], t a step (scalar or [n])
        return torch.where(torch.as_tensor(t).reshape(-1, 1) < k, exact(x, t), net(x, t))

    values, judges = [], []
    for s in seeds:
        ref = run.dataset.sample(n, torch.Generator().manual_seed(ref_base + s))
        g = torch.Generator().manual_seed(s)
        x_T = torch.randn(n, 1, generator=g, dtype=torch.float64)
        x = run.normalizer.inverse(sample(eps, x_T, run.schedule, method="ddpm", generator=g).double())
        values.append(metrics.wasserstein1(x, ref))
        judges.append(metrics.wasserstein1(run.sample(n, seed=s, exact=True), ref))
    return sum(values) / sum(judges)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated candidate numbers (from 1)")
    p.add_argument("--seeds", type=int, default=None, help="sampling seeds (default: 2 for 1-D, 1 for 2-D)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--exact-below", type=int, default=None, metavar="K",
                   help="1-D: also print the W1 ratio with the exact ε* in place of the network at t < K")
    a = p.parse_args(argv)
    configure_threads(1)
    picked = [int(i) for i in a.only.split(",") if i] or range(1, len(CANDIDATES) + 1)
    print("| # | data set | recipe (training seed) | train s (CPU s) | ratio | value | oracle / floor | modes | max weight error |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for i in picked:
        name, recipe, seed = CANDIDATES[i - 1]
        cpu0 = time.process_time()
        run, train_s, _ = train(name, recipe, seed=seed, epochs=2 if a.quick else None)
        cpu_s = time.process_time() - cpu0
        steps = -(-recipe.n_train // recipe.batch_size) * recipe.epochs
        n_seeds = a.seeds or (2 if run.dataset.dim == 1 else 1)
        s = score(run, list(range(n_seeds)), 10_000, 20_000, 500 if a.quick else None)
        what = (f"{recipe.schedule_name}{dict(recipe.schedule_params)}, {recipe.width}×{recipe.depth}, "
                f"{recipe.epochs} ep × {recipe.n_train} pts, batch {recipe.batch_size} ({steps} steps), lr {recipe.lr:g}"
                f"{'' if recipe.lr_schedule == 'cosine' else ' ' + recipe.lr_schedule}"
                f"{f' floor {recipe.min_lr_ratio:g}' if recipe.min_lr_ratio else ''}, {recipe.t_sampling} t, "
                f"EMA {recipe.ema_decay}{' warm-up' if recipe.ema_warmup else ''} ({seed})")
        modes = f"{s['covered']}/{s['n_modes']}" if "covered" in s else "–"
        werr = f"{s['weight_error']:.4f}" if "weight_error" in s else "–"
        print(f"| {i} | {name} | {what} | {train_s:.1f} ({cpu_s:.1f}) | {s['ratio']:.3f} | {s['value']:.4f} | {s['judge']:.4f} | "
              f"{modes} | {werr} |", flush=True)
        if a.exact_below is not None and run.dataset.dim == 1:
            r = exact_below_ratio(run, a.exact_below, list(range(n_seeds)), 10_000, 500 if a.quick else 10_000)
            print(f"|   | (exact ε* at t < {a.exact_below}) | | | {r:.3f} | | | | |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
