"""Quality per network evaluation on the exact oracle: pure discretisation error, no learning error.

    python bench/toy_nfe.py            # ~1 minute on 2 CPU cores
    python bench/toy_nfe.py --quick

Every sampler runs on the true ε* of the (normalised) mixture under the linear schedule of Ho et al. 2020
(T = 1000): ``ddpm`` at all 1000 steps (Ho et al. 2020), and ``ddim`` (Song et al. 2021, η = 0),
``euler`` / ``heun`` (the probability-flow ODE, Karras et al. 2022) and ``dpm++2m`` (Lu et al. 2022) at
budgets of 10, 20 and 50 evaluations (Heun makes 2 per step but one at the last, so it gets the odd count
just below the budget). Distance to the truth (data units): W1 in 1-D, sliced W1 and energy distance in
2-D, each the mean over ``--seeds`` seeds of n samples against fresh true samples, printed next to the
noise floor (true vs true at the same n). One table per data set and spacing of the few-step samplers'
timesteps (default: ``linspace`` and ``logsnr``, uniform in log-SNR as Lu et al. 2022 do for DPM-Solver),
and one for ``--window``: the first step from T−1 and the last at 0 kept, the steps between uniform in
log-SNR over the window only (``NoiseSchedule.respace(..., log_snr_range=...)``). The default window
(−5, 7) was picked on the 1-D mixture from ten windows tried (λ_lo from −6 to −3, λ_hi from 4 to 8;
dpm++2m at 20 evaluations: 1.27–1.61× ddpm-1000 for λ_lo in [−6, −4] with λ_hi in [6, 8], up to 3.9× for
narrow windows, 1.93× on the whole range), a choice in the middle of the good region rather than the
best one; its 1-D figure is therefore not out-of-sample, the 8 Gaussians one is. Goal: a second-order method at 20 evaluations within 1.5× of
ddpm-1000.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from toydiff.processes import schedules

from toydiff.toy import metrics
from toydiff.sampling.loop import function_evaluations
from toydiff.toy.run import oracle_run

BUDGETS = (10, 20, 50)
FEW_STEP = ("ddim", "euler", "heun", "dpm++2m")


def steps_for(method: str, budget: int) -> int:
    return (budget + 1) // 2 if method == "heun" else budget


def distance(x, ref, dim: int) -> dict[str, float]:
    if dim == 1:
        return {"W1": metrics.wasserstein1(x, ref)}
    return {"sliced W1": metrics.sliced_wasserstein(x, ref), "energy": metrics.energy_distance(x, ref)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--spacings", default="linspace,logsnr",
                   help=f"comma-separated, from {', '.join(schedules.SPACINGS)}: one table each")
    p.add_argument("--window", default="-5,7",
                   help="one more table: logsnr spacing with its inner steps in this log-SNR window ('' for none)")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.seeds = 1000, 1
    schedule = schedules.linear(T=1000)
    spacings = a.spacings.split(",")
    if any(sp not in schedules.SPACINGS for sp in spacings):
        p.error(f"--spacings: choose from {schedules.SPACINGS}")
    if a.window:
        window = tuple(float(v) for v in a.window.split(","))
        spacings.append(window)
    for name in ("two_gaussians", "8gaussians"):
        run = oracle_run(name, schedule)
        dim = run.dataset.dim
        refs = [run.dataset.sample(a.n, torch.Generator().manual_seed(50_000 + s)) for s in range(a.seeds)]
        floors = [distance(run.dataset.sample(a.n, torch.Generator().manual_seed(60_000 + s)), refs[s], dim)
                  for s in range(a.seeds)]
        floor = {k: float(np.mean([f[k] for f in floors])) for k in floors[0]}
        keys = list(floor)

        def measure(method: str, steps: int, spacing: str | tuple) -> tuple[dict, int, float]:
            if isinstance(spacing, tuple):  # a log-SNR window: explicit timesteps
                steps, spacing = schedule.respace(steps, "logsnr", log_snr_range=spacing).timesteps, "linspace"
            t0 = time.perf_counter()
            ds = [distance(run.sample(a.n, method=method, steps=steps, spacing=spacing, seed=s, exact=True),
                           refs[s], dim) for s in range(a.seeds)]
            secs = (time.perf_counter() - t0) / a.seeds
            nfe = function_evaluations(method, steps if isinstance(steps, int) else len(steps))
            return {k: float(np.mean([d[k] for d in ds])) for k in keys}, nfe, secs

        base = measure("ddpm", 1000, "linspace")
        for spacing in spacings:
            results = {("ddpm", 1000): base}
            for budget in BUDGETS:
                for method in FEW_STEP:
                    results[(method, budget)] = measure(method, steps_for(method, budget), spacing)
            label = (f"{spacing} spacing" if isinstance(spacing, str)
                     else f"logsnr spacing in the window λ ∈ [{spacing[0]:g}, {spacing[1]:g}]")
            print(f"\n{name} (exact oracle, linear T = 1000, few-step samplers on {label}, n = {a.n:,}, "
                  f"mean of {a.seeds} seeds)\n")
            print("| method | NFE | " + " | ".join(keys) + f" | {keys[0]} / ddpm-1000 | s per run |")
            print("|---|---:|" + "---:|" * (len(keys) + 2))
            print("| noise floor (true vs true) | – | " + " | ".join(f"{floor[k]:.4g}" for k in keys) + " | – | – |")
            for (method, budget), (d, nfe, secs) in results.items():
                print(f"| {method} | {nfe} | " + " | ".join(f"{d[k]:.4g}" for k in keys) +
                      f" | {d[keys[0]] / base[0][keys[0]]:.2f} | {secs:.2f} |")
            best = min(((m, results[(m, 20)][0][keys[0]]) for m in ("heun", "dpm++2m")), key=lambda r: r[1])
            print(f"\nbest second-order method at 20 evaluations: {best[0]}, {keys[0]} "
                  f"{best[1] / base[0][keys[0]]:.2f}× ddpm-1000 (goal ≤ 1.5×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
