"""The ``tiny`` preset (~145k parameters) trained on a CPU within a time budget, then judged by the classifier.

    python bench/mnist_cpu_tiny.py --minutes 15 --guide-at 0.025,0.05 --ag-ws 3 --eval-method ddpm \\
        --eval-steps 250 --export image_track/weights/tiny_uncond.safetensors \\
        --guide-export image_track/weights/tiny_uncond_guide.safetensors
    python bench/mnist_cpu_tiny.py --conditional --minutes 15 --out runs/cpu_tiny_cond \\
        --export image_track/weights/tiny_cond.safetensors
    python bench/mnist_cpu_tiny.py --eval-only --out runs/cpu_tiny ...     # re-score a finished run

Recipe: batch 32, AdamW lr 2e-3 (200 warm-up steps, cosine to 5%), EMA 0.999, gradient clipping at 1,
channels_last, bf16 autocast where the CPU has AMX (``--no-amp`` for float32), Min-SNR-γ loss weights (Hang
et al. 2023, γ = 5; ``--loss-weighting uniform`` for the plain loss), linear schedule T = 1000; the step
count is sized from a short throughput probe so the cosine ends near the budget, and ``--minutes`` stops the
run regardless. An unconditional run also keeps the EMA weights at the ``--guide-at`` fractions of its steps:
each is tried as the weak model of autoguidance (Karras et al. 2024) at the ``--ag-ws`` scales, guiding only
steps t < ``--guide-t-max``, and the best is exported with ``--guide-export``. Evaluation samples use
``--eval-method`` / ``--eval-steps`` (default DDIM 50) with clipped x̂_0. At a fixed budget, small batches won
on this CPU (4-minute float32 runs, one thread each, 300 samples: confident fraction 0.31 at batch 128, 0.36
at 64, 0.41 at 32; at batch 128, lr 5e-3 did worse, 0.22, and the cosine noise schedule made no difference).

Prints a table: minutes, steps, images/s, confident fraction (top probability > 0.9), FID-MNIST of
``--n-eval`` samples against the test set, and the floor (train vs test at the same N), per weak model and
scale; for a conditional model accuracy per guidance scale. Timings on a shared CPU are noisy: say so when
quoting them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from image_track import evaluate
from image_track.data import load_mnist
from image_track.models import build_model
from image_track.sampling import digit_labels, generate, grid_image, load_model
from image_track.training import TrainConfig, bf16_autocast, export_weights, snapshot_path, train
from toydiff.training.checkpoint import load_checkpoint
from toydiff.threads import configure_threads


def probe_images_per_s(config: TrainConfig, n_steps: int = 12) -> float:
    """Forward+backward throughput of the preset at the run's batch size (a few throw-away steps)."""
    model = build_model(config.preset, num_classes=config.num_classes, **config.model_overrides)
    x = torch.randn(config.batch_size, 1, 28, 28)
    if config.channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    t = torch.randint(0, config.T, (config.batch_size,))
    y = None if config.num_classes is None else torch.randint(0, config.num_classes, (config.batch_size,))
    for i in range(n_steps):
        if i == 2:
            t0 = time.perf_counter()
        with bf16_autocast("cpu", config.amp):
            loss = (model(x, t, y).float() - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return config.batch_size * (n_steps - 2) / (time.perf_counter() - t0)


def guide_steps(fractions: str, max_steps: int) -> tuple[int, ...]:
    """The steps of the weak-model snapshots: ``fractions`` ("0.05,0.1") of the run's length."""
    return tuple(max(int(float(f) * max_steps), 1) for f in fractions.split(",") if float(f) > 0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=14.0, help="training wall-clock budget (incl. per-epoch grids)")
    p.add_argument("--max-steps", type=int, default=None, help="default: sized from a throughput probe")
    p.add_argument("--conditional", action="store_true")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--schedule", choices=("linear", "cosine"), default="linear")
    p.add_argument("--widths", default=None, help="override the preset's widths, e.g. 32,64,128")
    p.add_argument("--no-amp", action="store_true", help="float32 only (default: bf16 autocast on an AMX CPU)")
    p.add_argument("--loss-weighting", choices=("uniform", "min-snr"), default="min-snr")
    p.add_argument("--min-snr-gamma", type=float, default=5.0)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--n-eval", type=int, default=1000)
    p.add_argument("--eval-method", default="ddim", help="sampler for the evaluation (default %(default)s)")
    p.add_argument("--eval-steps", type=int, default=50)
    p.add_argument("--eval-only", action="store_true", help="score the run already in --out (no training)")
    p.add_argument("--ws", default="0,1,3,5", help="guidance scales for the conditional accuracy")
    p.add_argument("--guide-at", default="0.05",
                   help="unconditional: keep the EMA weights at these fractions of the steps as weak models for "
                        "autoguidance (Karras et al. 2024), each evaluated; 0: none")
    p.add_argument("--ag-ws", default="2,3", help="autoguidance scales to evaluate (w = 1, the model alone, always is)")
    p.add_argument("--guide-t-max", type=int, default=600, help="guide only at steps t below this (0: at every step)")
    p.add_argument("--guide-export", default=None, help="write the best weak model's float16 weights here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/cpu_tiny")
    p.add_argument("--export", default=None, help="write EMA-only float16 weights here")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: toydiff.threads' policy, 1)")
    a = p.parse_args(argv)
    configure_threads(a.threads)

    config = TrainConfig(preset="tiny", num_classes=10 if a.conditional else None, batch_size=a.batch_size,
                         schedule=a.schedule,
                         model_overrides={} if a.widths is None else {"widths": [int(w) for w in a.widths.split(",")]},
                         lr=a.lr, ema_decay=a.ema_decay, amp=not a.no_amp, loss_weighting=a.loss_weighting, min_snr_gamma=a.min_snr_gamma, warmup_steps=200, lr_decay="cosine", grad_clip=1.0,
                         seed=a.seed, out_dir=a.out, minutes=a.minutes, val_size=1000, sample_steps=25,
                         epochs=1000, progress=True, device="cpu")
    ckpt = Path(a.out) / "checkpoint.safetensors"
    if a.eval_only:
        if not ckpt.is_file():
            p.error(f"--eval-only: no checkpoint at {ckpt}")
        meta = load_checkpoint(ckpt)[1]
        config, summary, wall_min = TrainConfig.from_dict(meta["config"]), meta["history"], float("nan")
    else:
        if a.max_steps is None:
            ips = probe_images_per_s(config)
            # leave ~10% for per-epoch validation and grids
            config.max_steps = max(int(0.9 * a.minutes * 60 * ips / a.batch_size), 300)
            print(f"probe: {ips:.0f} img/s -> max_steps {config.max_steps}", flush=True)
        else:
            config.max_steps = a.max_steps
        if not a.conditional:
            config.snapshot_steps = guide_steps(a.guide_at, config.max_steps)
        t0 = time.perf_counter()
        summary = train(config).to_dict()
        wall_min = (time.perf_counter() - t0) / 60
    if a.export:
        export_weights(ckpt, a.export, dtype=torch.float16)
        ckpt = Path(a.export)  # evaluate exactly what is shipped
    m = load_model(ckpt)

    clf_n = a.n_eval
    x_test, _ = load_mnist("test")
    ref = x_test[torch.randperm(len(x_test), generator=torch.Generator().manual_seed(1))[:clf_n]]
    floor = evaluate.fid_floor(clf_n)
    sample_kw = dict(method=a.eval_method, steps=a.eval_steps, seed=10_000 + a.seed)
    rows = {"minutes (wall, incl. grids)": wall_min, "train minutes": summary["train_seconds"] / 60,
            "steps": summary["step"], "images/s (train)": summary["images_per_s"], "stopped": summary["stopped"]}
    result: dict = {"config": config.to_dict(), "checkpoint": str(ckpt), "fid_floor": floor, "n_eval": clf_n}
    t_s = time.perf_counter()
    n_imgs = 0
    if not m.conditional:
        guides = {0: None} | {k: snapshot_path(a.out, k) for k in guide_steps(a.guide_at, config.max_steps)
                              if snapshot_path(a.out, k).exists()}  # steps not reached in the budget are skipped
        per_w, best = {}, None
        for k, guide_path in guides.items():
            guide = None if guide_path is None else load_model(guide_path).model
            for w in [1.0] if guide is None else [float(w) for w in a.ag_ws.split(",")]:
                x = generate(m.model, m.process, clf_n, guide=guide, w=None if guide is None else w,
                             guide_t_max=a.guide_t_max or None,
                             **sample_kw)
                n_imgs += clf_n * (1 if guide is None else 2)
                hist = evaluate.class_histogram(x)
                key = "alone" if guide is None else f"guide step {k}, w={w:g}"
                per_w[key] = {"confident": evaluate.confident_fraction(x, 0.9), "fid": evaluate.fid_mnist(x, ref),
                              "kl_uniform": evaluate.kl_to_uniform(hist), "class_histogram": hist.tolist(),
                              "guide": None if guide_path is None else str(guide_path), "w": w}
                rows[f"{key}: confident / FID / KL"] = (f"{per_w[key]['confident']:.3f} / {per_w[key]['fid']:.2f}"
                                                        f" / {per_w[key]['kl_uniform']:.4f}")
                if best is None or per_w[key]["confident"] > per_w[best[0]]["confident"]:
                    best = (key, x)
        if a.guide_export and per_w[best[0]]["guide"]:
            Path(a.guide_export).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(per_w[best[0]]["guide"], a.guide_export)
        rows["FID floor"] = floor
        rows["best"] = best[0]
        result["per_w"] = per_w
        grid = best[1][:100]
    else:
        ws = [float(w) for w in a.ws.split(",")]
        labels = torch.arange(clf_n) % 10
        per_w = {}
        for w in ws:
            x = generate(m.model, m.process, clf_n, labels=labels, w=w, **sample_kw)
            per_w[w] = {"accuracy": evaluate.conditional_accuracy(x, labels),
                        "confident": evaluate.confident_fraction(x, 0.9), "fid": evaluate.fid_mnist(x, ref)}
            rows[f"w={w:g}: accuracy / confident / FID"] = (
                f"{per_w[w]['accuracy']:.3f} / {per_w[w]['confident']:.3f} / {per_w[w]['fid']:.2f}")
        rows["FID floor"] = floor
        result["per_w"] = per_w
        n_imgs = clf_n * len(ws)
        grid = generate(m.model, m.process, 100, labels=digit_labels(), w=3.0, **sample_kw)
    rows[f"images/s (sampling, {a.eval_method} {a.eval_steps}, one model)"] = n_imgs / (time.perf_counter() - t_s)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    grid_image(grid, nrow=10, scale=2).save(Path(a.out) / "eval_grid.png")
    result["rows"] = rows
    result["history"] = {"epochs": summary["epochs"]}
    (Path(a.out) / "bench.json").write_text(json.dumps(result, indent=1, default=str))

    print(f"\ntiny preset, {'class-conditional' if m.conditional else 'unconditional'}, CPU "
          f"({torch.get_num_threads()} threads, shared machine: timings are noisy)")
    for k, v in rows.items():
        print(f"  {k:<38} {v:.4g}" if isinstance(v, float) else f"  {k:<38} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
