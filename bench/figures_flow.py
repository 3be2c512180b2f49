"""Flow matching vs diffusion on the exact oracle, as one figure (README; ``bench/flow_vs_diffusion.py --figure``,
which imports this module from its own folder).

    curves = {name: distance_curves(name, n=2000, seeds=2) for name in ("two_gaussians", "8gaussians")}
    fig = flow_vs_diffusion_figure(curves, figure_paths("8gaussians", n=12))

No learning error anywhere: the linear interpolant's exact velocity (rectified flow, Liu et al. 2023; Lipman et
al. 2023) integrated by Euler / Heun, against the exact ε* of the VP schedule (Ho et al. 2020, linear β, T = 1000)
integrated by DDIM (Song et al. 2021, η = 0) and DPM-Solver++(2M) (Lu et al. 2022). Heun spends two network
evaluations (NFE) a step, so it gets NFE / 2 steps. Distances are W1 (1-D) or sliced W1 (2-D) to fresh true
samples in data units, next to the noise floor (true vs true at the same n).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from toydiff.processes import interpolants

from toydiff.processes import schedules
from toydiff.checks import check_int
from toydiff.sampling.loop import sample
from toydiff.toy import metrics
from toydiff.toy.flow_compare import ode_paths, straightness
from toydiff.toy.run import oracle_run

__all__ = ["CURVES", "distance_curves", "figure_paths", "flow_vs_diffusion_figure"]

#: (label, process, method): the four samplers the figure compares
CURVES = (("linear · euler", "flow", "euler"), ("linear · heun", "flow", "heun"),
          ("VP · ddim", "vp", "ddim"), ("VP · dpm++2m", "vp", "dpm++2m"))
_STYLE = {"linear · euler": ("tab:orange", "o", "--"), "linear · heun": ("tab:red", "s", "-"),
          "VP · ddim": ("tab:cyan", "^", "--"), "VP · dpm++2m": ("tab:blue", "D", "-")}


def _distance(x, ref, dim: int) -> float:
    return metrics.wasserstein1(x, ref) if dim == 1 else metrics.sliced_wasserstein(x, ref)


def _draw(run, process: str, method: str, nfe: int, n: int, seed: int) -> torch.Tensor:
    """``n`` exact-oracle samples in data units from the x_1 = x_T of ``seed`` (``ToyRun.sample``'s draw)."""
    g = torch.Generator().manual_seed(seed)
    x_1 = torch.randn(n, run.dataset.dim, generator=g, dtype=torch.float64)
    if process == "flow":
        fm = interpolants.linear()
        x0 = sample(run.oracle.velocity_fn(fm), x_1, fm, method=method, steps=nfe // 2 if method == "heun" else nfe,
                    generator=g)
    else:
        x0 = sample(run.oracle.eps_fn(run.schedule), x_1, run.schedule, method=method, steps=nfe, generator=g,
                    **({"eta": 0.0} if method == "ddim" else {}))
    return run.normalizer.inverse(x0)


def distance_curves(name: str, *, n: int = 2000, seeds: int = 2, budgets: Sequence[int] = (2, 4, 8, 16, 32)) -> dict:
    """Distance to the truth per NFE of the :data:`CURVES` samplers on the exact oracle of data set ``name``.

    Returns ``{"name", "metric", "budgets", "curves": {label: [mean over seeds per budget]}, "floor": [per seed]}``;
    seed ``s`` draws x_1 with ``s`` and the reference / floor sets with 50 000 + s / 60 000 + s.
    """
    check_int(n, "n", min=2), check_int(seeds, "seeds", min=1)
    run = oracle_run(name, schedules.linear(T=1000))
    dim = run.dataset.dim
    refs = [run.dataset.sample(n, torch.Generator().manual_seed(50_000 + s)) for s in range(seeds)]
    floor = [_distance(run.dataset.sample(n, torch.Generator().manual_seed(60_000 + s)), refs[s], dim)
             for s in range(seeds)]
    curves = {label: [float(np.mean([_distance(_draw(run, proc, method, b, n, s), refs[s], dim)
                                     for s in range(seeds)])) for b in budgets]
              for label, proc, method in CURVES}
    return {"name": name, "metric": "W1" if dim == 1 else "sliced W1", "budgets": list(budgets), "curves": curves,
            "floor": floor}


def figure_paths(name: str = "8gaussians", *, n: int = 12, seed: int = 0, flow_steps: int = 100,
                 vp_steps: int | None = None) -> dict:
    """The exact ODE paths of ``n`` particles from the same x_1 ~ N(0, I) (drawn with ``seed``), normalised units,
    by :func:`toydiff.toy.flow_compare.ode_paths`: the linear interpolant's velocity (Heun, ``flow_steps`` steps)
    and the VP ε* of the linear T = 1000 schedule (DDIM η = 0 over ``vp_steps`` respaced steps; default all).

    Returns ``{"name", "dim", "linear": paths [S + 1, n, D], "VP": paths [S' + 1, n, D]}`` (numpy). Only the
    *conditional* paths of the linear interpolant are straight; its marginal ODE on a mixture bends where the
    posterior picks a mode (straightness ≈ 0.5 on 8gaussians against ≈ 0.9 for the VP flow), which is what
    reflow (Liu et al. 2023) straightens.
    """
    check_int(n, "n", min=1)
    run = oracle_run(name, schedules.linear(T=1000))
    x_1 = torch.randn(n, run.dataset.dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return {"name": name, "dim": run.dataset.dim,
            "linear": ode_paths(run.oracle, x_1, "flow", method="heun", steps=flow_steps).numpy(),
            "VP": ode_paths(run.oracle, x_1, "vp", method="ddim", steps=vp_steps, schedule=run.schedule).numpy()}


def _distance_panel(ax, c: dict) -> None:
    lo, hi = min(c["floor"]), max(c["floor"])
    mean = float(np.mean(c["floor"]))
    ax.axhspan(lo, hi if hi > lo else lo * 1.02, color="0.85", zorder=0)
    ax.axhline(mean, color="0.4", lw=1, ls=":", label="noise floor (true vs true; band: spread over seeds)")
    for label, ys in c["curves"].items():
        color, marker, ls = _STYLE[label]
        ax.plot(c["budgets"], ys, color=color, marker=marker, ls=ls, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(c["budgets"], [str(b) for b in c["budgets"]])
    ax.set_xlabel("network evaluations (NFE)")
    ax.set_ylabel(f"{c['metric']} to the truth (data units)")
    ax.set_title(f"{c['name']}: distance vs NFE (exact oracle)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)


def _path_panel(ax, paths: dict, key: str, color: str) -> None:
    xs = paths[key]
    if paths["dim"] == 1:
        ax.plot(np.linspace(1, 0, len(xs)), xs[:, :, 0], color=color, lw=1)
        ax.set_xlim(1, 0)
        ax.set_xlabel("1 − step / steps (noise → data)")
        ax.set_ylabel("x (normalised)")
    else:
        for i in range(xs.shape[1]):
            ax.plot(xs[:, i, 0], xs[:, i, 1], color=color, lw=1)
            ax.plot(xs[[0, -1], i, 0], xs[[0, -1], i, 1], color="0.5", lw=0.8, ls=":")
        ax.scatter(xs[0, :, 0], xs[0, :, 1], s=12, color="0.3", zorder=3, label="x_1 (noise)")
        ax.scatter(xs[-1, :, 0], xs[-1, :, 1], s=18, marker="*", color="k", zorder=3, label="x_0 (sample)")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("x₁ (normalised)")
        ax.set_ylabel("x₂ (normalised)")
        ax.legend(loc="lower left", fontsize=7, framealpha=0.8)
    what = "linear interpolant (rectified flow), Heun" if key == "linear" else "VP (DDPM, linear β), DDIM η = 0"
    ax.set_title(f"{paths['name']}: exact ODE paths, {what}\nstraightness ‖x_1 − x_0‖ / length = "
                 f"{straightness(torch.from_numpy(xs)):.2f} (dotted: the straight chord)", fontsize=9)


def flow_vs_diffusion_figure(curves: Sequence[dict] | dict, paths: dict | None = None) -> Figure:
    """Distance-to-truth vs NFE panels (one per :func:`distance_curves` result, noise-floor band shaded: the spread
    of the floor over seeds, dotted: its mean) and, with ``paths``, the exact ODE paths of the
    same particles under the linear interpolant and the VP process (:func:`figure_paths`)."""
    curves = list(curves.values()) if isinstance(curves, dict) else list(curves)
    if not curves:
        raise ValueError("curves must hold at least one distance_curves() result")
    n_top = len(curves)
    n_cols = max(n_top, 2 if paths is not None else 1)
    rows = 2 if paths is not None else 1
    fig, axes = plt.subplots(rows, n_cols, figsize=(5.6 * n_cols, 4.6 * rows), squeeze=False)
    for ax, c in zip(axes[0], curves):
        _distance_panel(ax, c)
    for ax in axes[0][n_top:]:
        ax.axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    if paths is not None:
        _path_panel(axes[1][0], paths, "linear", "tab:red")
        _path_panel(axes[1][1], paths, "VP", "tab:blue")
        for ax in axes[1][2:]:
            ax.axis("off")
    fig.suptitle("Flow matching vs diffusion on the exact oracle (no learning error)", y=1.04, fontsize=12)
    fig.tight_layout()
    return fig
