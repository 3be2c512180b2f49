"""MNIST ``tiny`` trained with each process for the same CPU budget, for bench/flow_vs_diffusion.py ``--mnist``.

Both runs: the ``tiny`` UNet, unconditional, batch 32, AdamW lr 2e-3 (200 warm-up steps, cosine to 5 %), EMA
0.999, gradient clipping 1, the step count sized from a throughput probe so the cosine ends near the budget
(``--minutes`` stops the run regardless), as bench/mnist_cpu_tiny.py trains the committed model. DDPM: linear
schedule T = 1000 with Min-SNR-γ weights (the committed recipe); flow: rectified flow (linear interpolant,
velocity prediction, uniform t, the UNet fed 1000 t). Scored like bench/mnist_cpu_tiny.py: FID-MNIST of
``--eval-n`` samples against the test set (with its floor, train vs test at the same n) and the confident
share (classifier top probability > 0.9), at the NFE each needs: DDPM by DDIM 50 steps (50 NFE), flow by Heun
10 steps (20 NFE) and Euler 20 steps (20 NFE), x̂_0 clipped to [-1, 1].

Goal (issue 13): at ≤ 20 NFE, the flow model's confident share no worse than the DDPM model's at 50 NFE.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from toydiff.threads import configure_threads

from image_track import evaluate
from image_track.data import load_mnist
from image_track.sampling import generate, load_model
from image_track.training import TrainConfig, train

SAMPLERS = {"vp": (("ddim", 50, 50),), "flow": (("heun", 10, 20), ("euler", 20, 20))}


def _config(process: str, minutes: float, out: Path) -> TrainConfig:
    return TrainConfig(preset="tiny", batch_size=32, lr=2e-3, ema_decay=0.999, warmup_steps=200, lr_decay="cosine",
                       grad_clip=1.0, process=process, loss_weighting="min-snr" if process == "vp" else "uniform",
                       seed=0, out_dir=str(out), minutes=minutes, val_size=500, sample_every_epoch=False,
                       epochs=1000, progress=False, device="cpu")


def _train(process: str, minutes: float, out: Path) -> dict:
    from mnist_cpu_tiny import probe_images_per_s

    config = _config(process, minutes, out)
    ips = probe_images_per_s(config)
    config.max_steps = max(int(0.9 * minutes * 60 * ips / config.batch_size), 20)
    t0 = time.perf_counter()
    summary = train(config).to_dict()
    return {"steps": summary["step"], "train min": summary["train_seconds"] / 60,
            "wall min": (time.perf_counter() - t0) / 60, "img/s": summary["images_per_s"]}


def run_mnist(a) -> None:
    configure_threads(max(1, os.cpu_count() or 1))  # a GPU bench: the CPU feeds it
    root = Path(a.runs or "runs/flow_mnist")
    n = a.eval_n
    x_test, _ = load_mnist("test")
    ref = x_test[torch.randperm(len(x_test), generator=torch.Generator().manual_seed(1))[:n]]
    floor = evaluate.fid_floor(n)
    print(f"\nMNIST tiny, unconditional, {a.minutes:g} CPU minutes per process; FID-MNIST of {n} samples "
          f"(floor {floor:.2f}: train vs test at n = {n}) and confident share (top p > 0.9)\n")
    print("| process | steps trained | train min | sampler | NFE | FID-MNIST | confident share |")
    print("|---|---:|---:|---|---:|---:|---:|")
    best = {}
    # LABEL=PATH pairs: runs already trained (same preset, batch and step count = the same compute), any number
    given = dict(kv.split("=", 1) for kv in a.checkpoints.split(",")) if getattr(a, "checkpoints", None) else {}
    for label, path in (given.items() if given else (("vp", None), ("flow", None))):
        if path is not None:
            m = load_model(path)
            summary = m.metadata.get("train_summary", {})
            stats = {"steps": m.metadata.get("step", "?"),
                     "train min": summary.get("train_seconds", float("nan")) / 60}
        else:
            stats = _train(label, a.minutes, root / label)
            m = load_model(root / label / "checkpoint.safetensors")
        process = m.process.name  # the recipe table is keyed by process name
        for method, steps, nfe in SAMPLERS[process]:
            x = generate(m.model, m.process, n, method=method, steps=steps, seed=10_000)
            fid, conf = evaluate.fid_mnist(x, ref), evaluate.confident_fraction(x, 0.9)
            best[process] = max(best.get(process, 0.0), conf)
            name = ("DDPM (ε, min-snr)" if process == "vp" else "flow (linear, velocity)") + \
                (", stable target" if m.metadata.get("target") == "stf" else "")
            print(f"| {name} | {stats['steps']} | {stats['train min']:.1f} | {method} {steps} steps | {nfe} | "
                  f"{fid:.2f} | {conf:.3f} |", flush=True)
    if not {"vp", "flow"} <= set(best):
        return
    ok = best["flow"] >= best["vp"]
    print(f"\ngoal: flow at ≤ 20 NFE confident share {best['flow']:.3f} vs DDPM at 50 NFE {best['vp']:.3f} -> "
          f"{'met' if ok else 'not met'}")
