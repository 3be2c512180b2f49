"""Flow matching vs diffusion on the exact oracle: distance to the truth per network evaluation, and path straightness.

    python bench/flow_vs_diffusion.py            # ~17 minutes on 2 busy CPU cores
    python bench/flow_vs_diffusion.py --quick    # n = 1,000, one seed: ~30 s
    python bench/flow_vs_diffusion.py --trained --n 20000 --seeds 3   # trained FM vs DDPM MLPs + reflow, ~15 min
    python bench/flow_vs_diffusion.py --mnist --minutes 15            # MNIST tiny, 15 CPU min per process
    python bench/flow_vs_diffusion.py --figure docs/images/flow_vs_diffusion.png   # the README figure, ~1 min
    python bench/flow_vs_diffusion.py --targets-figure docs/images/flow_targets.png  # conditional vs stable target

No learning error: every sampler runs on the exact field of the (normalised) mixture — the velocity
E[ε − x_0 | x_t] of the linear interpolant (rectified flow, Liu et al. 2023; Lipman et al. 2023) for
``euler`` / ``heun`` / ``midpoint`` / ``dpm++2m`` over t ∈ [1, 0] (uniform grid), and the ε* of the VP
schedule of Ho et al. 2020 (linear, T = 1000) for ``ddim`` (Song et al. 2021, η = 0) and ``dpm++2m``
(Lu et al. 2022; ``linspace`` and ``logsnr`` spacing). Budgets of 1, 2, 4, 8, 16, 32 network evaluations
(NFE): Heun and midpoint make 2n over n steps (Heun corrects its last step too: the linear path's velocity
is finite at t = 0), so they get budget/2 steps and have no 1-evaluation form. Distance: W1 in
1-D, sliced W1 and energy distance in 2-D, each the mean over ``--seeds`` seeds of n samples against fresh
true samples, in data units, next to the noise floor (true vs true at the same n) — the same data, n,
seeds and normalisation as bench/toy_nfe.py (``toydiff.toy.run.oracle_run``); every sampler starts from the
same x_1 = x_T for a seed.

The converged row (64 Heun steps, 128 NFE) is where every flow sampler is heading: the exact ODE maps
x_1 to one sample of the truth, so its distance is the noise floor plus the luck of those n x_1 (in 1-D W1
is dominated by the share of x_1 that lands in each mode: ±0.33 % at n = 20,000 moves W1 by ~0.03).

Straightness: mean over samples of ‖x_1 − x_0‖ / (length of the exact ODE path from x_1 to x_0), in the
normalised units (1 = straight); paths are integrated with 256 Heun steps (flows) or all 1000 DDIM steps (VP).

Goal (issue 13): linear-path Heun at 16 NFE within 1.5× of the noise floor on 8gaussians.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import toydiff as td
from toydiff.processes import interpolants
from toydiff.processes import schedules
from toydiff.toy import flow_compare, metrics
from toydiff.toy.run import oracle_run
from toydiff.threads import configure_threads

BUDGETS = (1, 2, 4, 8, 16, 32)
FLOW = ("euler", "heun", "midpoint", "dpm++2m")
VP = (("ddim", "linspace"), ("dpm++2m", "linspace"), ("dpm++2m", "logsnr"))


def steps_for(method: str, budget: int) -> int:
    """The most steps whose NFE fits the budget (0: none does)."""
    return budget // 2 if method in ("heun", "midpoint") else budget


def nfe(method: str, steps: int) -> int:
    return 2 * steps if method in ("heun", "midpoint") else steps


def distance(x, ref, dim: int) -> dict[str, float]:
    if dim == 1:
        return {"W1": metrics.wasserstein1(x, ref)}
    return {"sliced W1": metrics.sliced_wasserstein(x, ref), "energy": metrics.energy_distance(x, ref)}


def flow_samples(run, interp, n: int, method: str, steps: int, seed: int) -> torch.Tensor:
    """``n`` samples in data units from the exact velocity, x_1 drawn exactly as ``ToyRun.sample`` draws x_T."""
    g = torch.Generator().manual_seed(seed)
    x_1 = torch.randn(n, run.dataset.dim, generator=g, dtype=torch.float64)
    x0 = td.sample(run.oracle.velocity_fn(interp), x_1, interp, method=method, steps=steps, generator=g)
    return run.normalizer.inverse(x0)


def straightness(run, n: int, seed: int) -> dict[str, float]:
    """Mean ‖x_1 − x_0‖ / path length along the exact ODE, per process (normalised units;
    ``toydiff.toy.flow_compare``)."""
    g = torch.Generator().manual_seed(seed)
    x_1 = torch.randn(n, run.dataset.dim, generator=g, dtype=torch.float64)
    out = {}
    for name, interp in (("linear (rectified flow)", interpolants.linear()), ("cosine", interpolants.cosine()),
                         ("vp(linear T=1000) in t", interpolants.vp(run.schedule))):
        length = torch.zeros(n, dtype=torch.float64)

        def add(info):
            length.add_((info["x_prev"] - info["x_t"]).norm(dim=1))

        x0 = td.sample(run.oracle.velocity_fn(interp), x_1, interp, method="heun", steps=256, callback=add)
        out[name] = float(((x0 - x_1).norm(dim=1) / length).mean())
    paths = flow_compare.ode_paths(run.oracle, x_1, "vp", method="ddim", steps=None, schedule=run.schedule)
    out["VP linear T=1000 (DDIM, all steps)"] = flow_compare.straightness(paths)
    return out


def table(title: str, key: str, rows: dict, floor: float) -> None:
    print(f"\n{title}\n")
    print("| sampler | " + " | ".join(f"{b} NFE" for b in BUDGETS) + " |")
    print("|---|" + "---:|" * len(BUDGETS))
    print("| noise floor (true vs true) | " + " | ".join(f"{floor:.4g}" for _ in BUDGETS) + " |")
    for label, cells in rows.items():
        out = []
        for b in BUDGETS:
            if b not in cells:
                out.append("–")
                continue
            d, spent = cells[b]
            out.append(f"{d[key]:.4g}" + ("" if spent == b or spent > max(BUDGETS) else f" [{spent}]"))
        print(f"| {label} | " + " | ".join(out) + " |")


def measure(a, name: str) -> dict:
    run = oracle_run(name, schedules.linear(T=1000))
    dim, fm = run.dataset.dim, interpolants.linear()
    refs = [run.dataset.sample(a.n, torch.Generator().manual_seed(50_000 + s)) for s in range(a.seeds)]
    floors = [distance(run.dataset.sample(a.n, torch.Generator().manual_seed(60_000 + s)), refs[s], dim)
              for s in range(a.seeds)]
    floor = {k: float(np.mean([f[k] for f in floors])) for k in floors[0]}

    def mean_over_seeds(draw) -> dict:
        ds = [distance(draw(s), refs[s], dim) for s in range(a.seeds)]
        return {k: float(np.mean([d[k] for d in ds])) for k in floor}

    rows: dict[str, dict] = {}
    for method in FLOW:
        rows[f"linear · {method}"] = {
            b: (mean_over_seeds(lambda s: flow_samples(run, fm, a.n, method, steps_for(method, b), s)),
                nfe(method, steps_for(method, b))) for b in BUDGETS if steps_for(method, b) > 0}
    rows["linear · heun, 64 steps (converged: the exact map of x_1)"] = {
        b: (conv, 128) for conv in [mean_over_seeds(lambda s: flow_samples(run, fm, a.n, "heun", 64, s))]
        for b in BUDGETS}
    for method, spacing in VP:
        rows[f"VP · {method} ({spacing})"] = {
            b: (mean_over_seeds(lambda s: run.sample(a.n, method=method, steps=b, spacing=spacing, seed=s,
                                                     exact=True)), b) for b in BUDGETS}
    for key in floor:
        table(f"{name}: {key} to the truth vs NFE (exact oracle, n = {a.n:,}, mean of {a.seeds} seeds)", key, rows,
              floor[key])
    return {"floor": floor, "rows": rows, "straight": straightness(run, a.n_paths, 0)}


def write_figure(path: str, n: int = 2000, seeds: int = 2) -> int:
    """The README figure: distance vs NFE on both data sets, and exact ODE paths on 8gaussians."""
    from pathlib import Path

    from figures_flow import distance_curves, figure_paths, flow_vs_diffusion_figure

    curves = [distance_curves(name, n=n, seeds=seeds) for name in ("two_gaussians", "8gaussians")]
    fig = flow_vs_diffusion_figure(curves, figure_paths("8gaussians", n=16))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path} (n = {n:,}, mean of {seeds} seeds)")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--n-paths", type=int, default=2000, help="samples for the straightness table")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--trained", action="store_true", help="only the trained-model tables (bench/flow_trained.py)")
    p.add_argument("--epochs", type=int, default=None, help="--trained: epochs (default: the recipe's)")
    p.add_argument("--runs", default=None, help="--trained: folder to keep / reuse the trained runs in")
    p.add_argument("--reflow-epochs", type=int, default=None, help="--trained: reflow epochs (default recipe / 3)")
    p.add_argument("--reflow-pairs", type=int, default=40_000)
    p.add_argument("--no-reflow", action="store_true", help="--trained: skip the reflow table")
    p.add_argument("--train-seed", type=int, default=0, help="--trained: the models' training seed (default 0)")
    p.add_argument("--figure", default=None, help="only write the README figure (bench/figures_flow.py) to this PNG "
                   "(n = 2,000, 2 seeds: ~1 min)")
    p.add_argument("--targets-figure", default=None, help="only the conditional vs stable-target figure "
                   "(bench/figures_targets.py) to this PNG, with its tables; trains 2 FM models per data set "
                   "(reused from --runs), ~2 min")
    p.add_argument("--mnist", action="store_true", help="only the MNIST tiny table (bench/flow_mnist.py)")
    p.add_argument("--minutes", type=float, default=15.0, help="--mnist: CPU training minutes per process")
    p.add_argument("--eval-n", type=int, default=1000, help="--mnist: samples scored per process")
    p.add_argument("--checkpoints", default=None, metavar="LABEL=PATH,...",
                   help="--mnist: score these runs instead of training (e.g. vp=PATH,flow=PATH,flow-stf=PATH: runs of "
                        "the same step count; each run's process is read from its checkpoint)")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.seeds, a.n_paths = 1000, 1, 200
    configure_threads(1)
    if a.figure:
        return write_figure(a.figure)
    if a.targets_figure:
        from flow_trained import write_targets_figure

        return write_targets_figure(a.targets_figure, Path(a.runs) if a.runs else None, a.train_seed)
    if a.trained or a.mnist:
        if a.trained:
            from flow_trained import run_trained

            run_trained(a)
        if a.mnist:
            from flow_mnist import run_mnist

            run_mnist(a)
        return 0
    results = {name: measure(a, name) for name in ("two_gaussians", "8gaussians")}
    print(f"\npath straightness: mean ‖x_1 − x_0‖ / path length of the exact ODE (1 = straight; n = {a.n_paths:,})\n")
    print("| process | " + " | ".join(results) + " |")
    print("|---|" + "---:|" * len(results))
    for proc in next(iter(results.values()))["straight"]:
        print(f"| {proc} | " + " | ".join(f"{r['straight'][proc]:.4f}" for r in results.values()) + " |")
    r = results["8gaussians"]
    print("\ngoal: linear-path Heun at 16 NFE (8 steps) within 1.5× of the noise floor on 8gaussians")
    for key, f in r["floor"].items():
        ratio = r["rows"]["linear · heun"][16][0][key] / f
        print(f"  {key}: {ratio:.2f}× the floor -> {'met' if ratio <= 1.5 else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
