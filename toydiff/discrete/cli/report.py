"""``toydiff discrete report``: a run's held-out loss curve next to its Bayes floor, and the sample KL against
sampler steps for every sampler, model beside the exact denoiser, into a folder.

    toydiff discrete report --run runs/discrete --out report/     # loss.png, kl_vs_steps.png, metrics.json
"""

from __future__ import annotations

import json

import torch

from toydiff.cli import check_writable
from toydiff.discrete.cli.common import add_denoiser_flags, run_for
from toydiff.options import positive, seed_arg

__all__ = ["HELP", "add_parser", "run", "kl_by_steps"]

HELP = "loss vs its floor and KL vs steps per sampler (model and exact) into a folder"


def add_parser(sub) -> None:
    r = sub.add_parser("report", help=HELP, description=HELP + ".")
    add_denoiser_flags(r)
    r.add_argument("--out", default="report-discrete", help="output folder (written whole at the end)")
    r.add_argument("--steps", default="4,16,64", help="comma-separated sampler steps")
    r.add_argument("--n", type=positive(int), default=2000, help="sequences per point")
    r.add_argument("--seed", type=seed_arg, default=0, help="seeds the samplers")


def kl_by_steps(run, steps: list[int], n: int, seed: int, *, exact: bool) -> dict[str, list[float]]:
    """method -> KL to the table at each of ``steps`` (``n`` draws; the model, or the exact denoiser)."""
    from toydiff.discrete import judge

    out = {}
    for m in run.process.methods:
        out[m] = [judge.kl_tv(run.dist, run.sample(n, method=m, steps=k, exact=exact,
                                                   generator=torch.Generator().manual_seed(seed)))[0] for k in steps]
    return out


def _steps(text: str) -> list[int]:
    try:
        steps = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise ValueError(f"--steps must be comma-separated integers, got {text!r}") from None
    if not steps or steps[0] < 1:
        raise ValueError(f"--steps must be positive integers, got {text!r}")
    return steps


def run(a) -> int:
    """Run ``toydiff discrete report``."""
    steps = _steps(a.steps)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toydiff.discrete import judge
    from toydiff.outputs import atomic_write_text, save_figure, staged_folder

    out = check_writable(a.out, "--out", folder=True)
    r = run_for(a)
    for k in steps:
        r.process.time_grid(k)  # more steps than T: a ValueError naming steps, before any work
    curves = {"exact": kl_by_steps(r, steps, a.n, a.seed, exact=True)}
    if not a.exact:
        curves["model"] = kl_by_steps(r, steps, a.n, a.seed, exact=False)
    floor = judge.count_floor(r.dist, a.n, draws=10, generator=torch.Generator().manual_seed(a.seed + 1))
    fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
    for who, style in (("exact", "--"), ("model", "-")):
        for i, (m, kls) in enumerate(curves.get(who, {}).items()):
            ax.plot(steps, kls, style, marker="o", color=f"C{i}", label=f"{m} ({who})")
    ax.axhline(floor["kl"], color="gray", lw=1, label=f"count floor (n = {a.n})")
    ax.set(xscale="log", yscale="log", xlabel="sampler steps", ylabel="KL(samples ‖ table), nats",
           title=f"{r.recipe.dataset}: {r.process.describe()}")
    ax.set_xticks(steps, [str(k) for k in steps], minor=False)
    ax.set_xticks([], minor=True)
    ax.legend(fontsize=7)
    figures = {"kl_vs_steps": fig}
    h = r.history
    if h is not None and h.records:
        fig2, ax2 = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
        ax2.plot(h.column("step"), h.val_loss, label="held-out loss (EMA model)")
        ax2.plot(h.column("step"), h.train_loss, alpha=0.5, label="training loss")
        ax2.axhline(h.floor, color="k", ls="--", label=f"Bayes floor {h.floor:.4f} (exact denoiser, same draws)")
        exact = r.objective.exact_floor(r.dist)
        if exact is not None:
            ax2.axhline(exact, color="gray", ls=":", label=f"closed-form floor {exact:.4f} (judge.mdlm_floor)")
        ax2.set(xlabel="step", ylabel="loss, nats per sequence", ylim=(h.floor * 0.95, h.floor * 1.6))
        ax2.legend(fontsize=7)
        figures["loss"] = fig2
    metrics = {"dataset": r.recipe.dataset, "process": r.process.to_dict(), "steps": steps, "n": a.n,
               "kl": curves, "count_floor": floor,
               "held_out": None if h is None or not h.records else {"loss": h.val_loss[-1], "floor": h.floor,
                                                                   "exact_floor": r.objective.exact_floor(r.dist)}}
    with staged_folder(out) as tmp:
        for name, f in figures.items():
            save_figure(f, tmp / f"{name}.png", dpi=110)
        atomic_write_text(tmp / "metrics.json", json.dumps(metrics, indent=1))
    print(json.dumps({"kl": curves, "count_floor_kl": floor["kl"], "held_out": metrics["held_out"]}))
    return 0
