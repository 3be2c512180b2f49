"""``toydiff demo``: every sampler on the exact oracle of the seed exercise's 1-D mixture; writes figures.

No training and no download: the denoiser is the closed-form ε* of the Gaussian mixture, so what the
figures show is pure discretisation error. Writes ``samplers.png`` (histograms against the exact density)
and ``w1_vs_steps.png`` (Wasserstein-1 to the truth against network evaluations, 5 to 50 steps, with the
two-sample noise floor and a caption computed from the curves) into ``--out``. About 5 s of CPU time, imports
included (~800 oracle calls on [n, 1] tensors, in one torch thread).
"""

from __future__ import annotations

from pathlib import Path

import torch

from toydiff.cli import OneLineParser, check_writable, run_guarded
from toydiff.options import seed_arg
from toydiff.outputs import save_figure

__all__ = ["HELP", "run", "build_parser", "main"]

#: the step counts of the W1-against-NFE sweep
STEPS = (5, 10, 20, 50)

HELP = "every sampler on the exact oracle of a 1-D mixture, figures in seconds (no training, no download)"


def run(out: Path, n: int, seed: int) -> dict[str, dict[int, float]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy.stats import wasserstein_distance

    from toydiff.exact.mixture import GaussianMixture
    from toydiff.sampling.loop import METHODS, function_evaluations, sample

    from toydiff.processes import schedules
    from toydiff.toy.figures.sampling import convergence_mpl, convergence_note

    s = schedules.linear(T=1000)
    gm = GaussianMixture([1.0, 2.0], [[-4.0], [4.0]], [[[1.0]], [[1.0]]])
    truth = gm.sample(50_000, torch.Generator().manual_seed(seed + 1)).squeeze(1).numpy()
    x_T = torch.randn(n, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    grid = torch.linspace(-9, 9, 400, dtype=torch.float64)[:, None]
    density = gm.log_prob(grid).exp().numpy()

    fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True)
    for ax, method in zip(axes.flat, METHODS):
        x = sample(gm.eps_fn(s), x_T, s, method=method, steps=50, generator=torch.Generator().manual_seed(seed))
        ax.hist(x.squeeze(1).numpy(), bins=80, range=(-9, 9), density=True, alpha=0.6, color="tab:red", label="samples")
        ax.plot(grid.squeeze(1), density, color="tab:blue", label="exact density")
        ax.set_title(f"{method}, 50 steps")
    axes[0, 0].legend()
    fig.suptitle("Samplers on the exact denoiser ε* (weights 1:2, means ±4, std 1)")
    fig.supxlabel("x")
    fig.tight_layout()
    save_figure(fig, out / "samplers.png", dpi=120)  # atomically: a re-run rewrites it

    results: dict[str, dict[int, float]] = {}
    for method in ("ddpm", "ddim", "heun", "dpm++2m"):
        results[method] = {}
        for steps in STEPS:
            x = sample(gm.eps_fn(s), x_T, s, method=method, steps=steps, generator=torch.Generator().manual_seed(seed))
            results[method][function_evaluations(method, steps)] = wasserstein_distance(x.squeeze(1).numpy(), truth)
    # the noise floor: W1 of n fresh true draws to the same truth set, over 5 draws: no sampler can beat it
    g = torch.Generator().manual_seed(seed + 2)
    fl = [wasserstein_distance(gm.sample(n, g).squeeze(1).numpy(), truth) for _ in range(5)]
    floor = (float(np.mean(fl)), float(np.std(fl)))
    curves = {m: (list(r), list(r.values())) for m, r in results.items()}
    fig = convergence_mpl(curves, floor, metric="Wasserstein-1", xlabel="network evaluations",
                          title=f"Discretisation error on the exact oracle (n = {n})",
                          floor_label=f"n = {n} true draws vs the {len(truth):,} truth; ± sd of 5",
                          note=convergence_note(curves, floor))
    save_figure(fig, out / "w1_vs_steps.png", dpi=120)
    return results


def build_parser() -> OneLineParser:
    """The ``toydiff demo`` parser."""
    ap = OneLineParser(prog="toydiff demo", description=__doc__.split("\n", 1)[1])
    ap.add_argument("--out", type=Path, default=Path("demo_out"), help="folder for the figures")
    ap.add_argument("--n", type=int, default=5000, help="samples per sampler, at least 10")
    ap.add_argument("--seed", type=seed_arg, default=0, help="seed of the initial noise and the sampler noise")
    return ap


def main(argv: list[str]) -> int:
    ap = build_parser()

    def go() -> int:
        args = ap.parse_args(argv)
        if args.n < 10:
            ap.error("--n must be at least 10")
        check_writable(args.out, "--out", folder=True)  # before the sampling, writing nothing
        # [n, 1] tensors: more threads only wait on each other (measured on a 2-core machine under load: 102 s
        # with 2 threads, 17-20 s with 1; 5 s of CPU time, 2.7 s of it imports). The sweep stops at 50 steps,
        # where every sampler has reached the W1 noise floor of n = 5000 samples.
        torch.set_num_threads(1)
        results = run(args.out, args.n, args.seed)
        for method, row in results.items():
            print(f"{method:>8}: " + "  ".join(f"{nfe} NFE W1={w:.3f}" for nfe, w in row.items()))
        print(f"figures written to {args.out}/samplers.png and {args.out}/w1_vs_steps.png")
        return 0

    return run_guarded(go, "toydiff demo")
