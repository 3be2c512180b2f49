"""Choose the discrete track's default recipe by measurement: train each candidate, then print its held-out loss
next to the Bayes floor (same draws) and its sample KL next to the exact denoiser's under the same sampler and
steps (mean ± sd over seeds, with the count floor at that n).

    python bench/discrete_recipe.py                          # the candidates below, 1 thread
    python bench/discrete_recipe.py --candidates w128-s1500 --n 4000 --seeds 3

Goals (issue #26): held-out loss ≤ 1.05× the floor; sample KL ≤ 1.25× the exact denoiser's; training ≤ 2 min.
Wall times are of a shared CPU (inflated when other jobs run).
"""

from __future__ import annotations

import argparse
import time

import torch

from toydiff.discrete import judge
from toydiff.discrete.training import DEFAULT_RECIPE, train_discrete, with_overrides
from toydiff.threads import configure_threads

#: name -> overrides of the default recipe
CANDIDATES = {
    "w128-s800": dict(width=128, steps=800),
    "w128-s1500": dict(width=128, steps=1500),
    "w256-s800": dict(width=256, steps=800),
    "w256-s1500": dict(width=256, steps=1500),
    "w64-s300": dict(width=64, steps=300, n_train=2048),
}


def kl_stats(run, *, exact: bool, n: int, seeds: int, method: str, steps: int) -> tuple[float, float]:
    kls = torch.tensor([judge.kl_tv(run.dist, run.sample(n, method=method, steps=steps, exact=exact,
                                                         generator=torch.Generator().manual_seed(100 + s)))[0]
                        for s in range(seeds)])
    return float(kls.mean()), float(kls.std())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", default=",".join(CANDIDATES))
    p.add_argument("--dataset", default=DEFAULT_RECIPE.dataset)
    p.add_argument("--process", default=DEFAULT_RECIPE.process)
    p.add_argument("--T", type=int, default=None, help="discrete steps of the process (default: continuous time)")
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--method", default="ancestral")
    p.add_argument("--steps", type=int, default=64)
    a = p.parse_args()
    configure_threads(1)
    exact_kl = None
    print(f"{a.dataset}, {a.process} (T = {a.T}); KL at n = {a.n}, {a.seeds} seeds, {a.method} {a.steps} steps")
    print("| candidate | train s | held-out | floor | ratio | KL model | KL exact | KL ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name in a.candidates.split(","):
        recipe = with_overrides(DEFAULT_RECIPE, dataset=a.dataset, process=a.process, T=a.T,
                                      **CANDIDATES[name])
        t0 = time.perf_counter()
        run = train_discrete(recipe)
        secs = time.perf_counter() - t0
        val, floor = run.history.val_loss[-1], run.history.floor
        km = kl_stats(run, exact=False, n=a.n, seeds=a.seeds, method=a.method, steps=a.steps)
        if exact_kl is None:
            exact_kl = kl_stats(run, exact=True, n=a.n, seeds=a.seeds, method=a.method, steps=a.steps)
        print(f"| {name} | {secs:.0f} | {val:.4f} | {floor:.4f} | {val / floor:.3f} | {km[0]:.4f} ± {km[1]:.4f} | "
              f"{exact_kl[0]:.4f} ± {exact_kl[1]:.4f} | {km[0] / exact_kl[0]:.2f} |", flush=True)
    cf = judge.count_floor(run.dist, a.n, draws=10, generator=torch.Generator().manual_seed(7))
    print(f"count floor at n = {a.n}: KL {cf['kl']:.4f} ± {cf['kl_sd']:.4f}")


if __name__ == "__main__":
    main()
