"""Sampler overhead per step: toydiff vs the equivalent loop over diffusers' schedulers.

The denoiser is trivial (ε̂ = 0.1·x), so what is timed is the sampler's own work per step: the
coefficient look-ups, the x̂0 / posterior / DDIM update and the noise draw. Both run every step of the
linear schedule (T = 1000; ``--T`` for fewer on a busy machine) on points ``[B, 2]`` in float32, in the
same process, interleaved, and the median of ``--repeats`` runs is reported.

    python bench/sampler_overhead.py            # batch 1 and 100 000, ddpm and ddim
    python bench/sampler_overhead.py --methods ddpm ddim euler heun dpm++2m --batches 1

diffusers is a bench-only dependency (``pip install diffusers``); without it only toydiff's column is
measured. Methods diffusers has no equivalent for here (euler, heun, dpm++2m on this discrete schedule)
get toydiff's column only.

The "no check" column runs the same sampler with the per-step finiteness check of the denoiser's output
switched off (``StepContext.check_finite = False``), interleaved with the others; "check cost" is the
difference in per cent of the unchecked time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import toydiff as td
from toydiff.sampling.context import StepContext
from toydiff.threads import configure_threads


def eps_fn(x, t):
    return 0.1 * x


def toydiff_run(method: str, x_T: torch.Tensor, schedule) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return td.sample(eps_fn, x_T, schedule, method=method, generator=g)  # eta = 0 (the default) for ddim


def diffusers_run(method: str, x_T: torch.Tensor, scheduler) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    scheduler.set_timesteps(scheduler.config.num_train_timesteps)
    x = x_T
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps = eps_fn(x, t)
            x = (scheduler.step(eps, t, x, generator=g) if method == "ddpm" else
                 scheduler.step(eps, t, x, eta=0.0, generator=g)).prev_sample
    return x


def time_interleaved(fns, repeats: int, stat=statistics.median) -> list[float]:
    """Median (or ``stat``) wall times of each of ``fns``, run in turn so that load on the machine hits all alike."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [stat(t) for t in times]


def unchecked(fn):
    """``fn`` run with the samplers' finiteness check switched off."""
    def run():
        StepContext.check_finite = False
        try:
            return fn()
        finally:
            StepContext.check_finite = True
    return run


def _diffusers_schedulers(T: int) -> dict:
    """diffusers' DDPM (σ² = β̃, "fixed_small") and DDIM schedulers on the same linear schedule; {} without diffusers."""
    try:
        from diffusers import DDIMScheduler, DDPMScheduler
    except ImportError:
        return {}
    common = dict(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear", clip_sample=False)
    return {"ddpm": DDPMScheduler(**common, variance_type="fixed_small"),
            "ddim": DDIMScheduler(**common, set_alpha_to_one=True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 100_000])
    ap.add_argument("--methods", nargs="+", default=["ddpm", "ddim"], choices=td.METHODS)
    ap.add_argument("--T", type=int, default=1000, help="schedule length = steps per run")
    ap.add_argument("--best", action="store_true", help="report the fastest run, not the median (a loaded machine)")
    args = ap.parse_args()
    configure_threads(2)
    schedule = td.schedules.linear(T=args.T)
    schedulers = _diffusers_schedulers(args.T)
    us = 1e6 / args.T  # seconds per run -> µs per step
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.T} steps, "
          f"{'fastest' if args.best else 'median'} of {args.repeats}"
          + ("" if schedulers else " (diffusers not installed: toydiff only)") + "\n")
    print("| method | batch | toydiff µs/step | no check µs/step | check cost | diffusers µs/step | diffusers / toydiff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for batch in args.batches:
        x_T = torch.randn(batch, 2, generator=torch.Generator().manual_seed(1))
        for method in args.methods:
            ours_fn = lambda: toydiff_run(method, x_T, schedule)
            fns = [ours_fn, unchecked(ours_fn)]
            if method in schedulers:
                fns.append(lambda: diffusers_run(method, x_T, schedulers[method]))
            # same maths: the deterministic samplers agree to float precision
            if method == "ddim" and method in schedulers:
                a, b = ours_fn(), diffusers_run(method, x_T, schedulers[method])
                assert torch.allclose(a, b, rtol=1e-3, atol=1e-3), (a - b).abs().max()
            ours, bare, *theirs = time_interleaved(fns, args.repeats, min if args.best else statistics.median)
            cols = f"| {method} | {batch:,} | {ours * us:.1f} | {bare * us:.1f} | {100 * (ours / bare - 1):+.1f} % |"
            print(cols + (f" {theirs[0] * us:.1f} | {theirs[0] / ours:.2f}× |" if theirs else " — | — |"), flush=True)


if __name__ == "__main__":
    main()
