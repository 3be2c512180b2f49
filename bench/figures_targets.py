"""Why a trained flow-matching model misses its exact oracle, and what the stable target field changes (one figure).

    noise = target_noise("8gaussians")                  # per t: E‖target − u*(x_t, t)‖², conditional vs stf
    errors = {"conditional": field_errors(run_c), "stf": field_errors(run_s)}   # trained velocity vs exact, per t
    fig = targets_figure({"8gaussians": noise}, {"8gaussians": errors})

The regression target of conditional flow matching (Lipman et al. 2023) is one pair's velocity ε − x_0; what the
network should learn is its mean given x_t, the exact velocity u* of the mixture. Their squared distance is
noise in every gradient step, largest in the middle of the path where x_t could have come from several modes.
The stable target field (Xu et al. 2023; :func:`toydiff.training.flow_losses.stable_target`) averages the target over
the batch by posterior weight, which removes most of that noise at the same cost in steps. Top row: that noise
per t, exactly (no training). Bottom row: what is left in a trained model, E‖u_θ − u*‖² per t.
All in the normalised units the models train in, linear interpolant (rectified flow), velocity prediction.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from toydiff.processes import interpolants
from toydiff.checks import check_int
from toydiff.training.flow_losses import stable_target
from toydiff.toy.datasets import get_dataset
from toydiff.toy.recipes import default_recipe
from toydiff.toy.run import Normalizer

__all__ = ["T_GRID", "T_BINS", "target_noise", "field_errors", "targets_figure"]

#: the times of :func:`target_noise` and the bin edges of :func:`field_errors`
T_GRID = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.98)
T_BINS = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0)
COLOURS = {"conditional": "tab:red", "stf": "tab:blue"}
LABELS = {"conditional": "conditional target (ε − x₀)", "stf": "stable target field (batch)"}


def target_noise(name: str, *, t: Sequence[float] = T_GRID, batch: int | None = None, n_batches: int = 8,
                 seed: int = 0) -> dict:
    """Per time ``t``: the mean squared distance (summed over coordinates) of each training target to the exact
    velocity at the same x_t, over ``n_batches`` batches of ``batch`` (default the recipe's) fresh points.

    Returns ``{"t": [T], "conditional": [T], "stf": [T]}`` (numpy, normalised units)."""
    ds = get_dataset(name)
    if ds.mixture is None:
        raise ValueError(f"{name!r} has no exact oracle (a Gaussian mixture data set is needed)")
    batch = check_int(batch if batch is not None else default_recipe(ds).batch_size, "batch", min=1)
    gm, interp = Normalizer.from_mixture(ds.mixture).oracle(ds.mixture), interpolants.linear()
    g = torch.Generator().manual_seed(seed)
    out = {"t": np.asarray(t, dtype=float), "conditional": [], "stf": []}
    for ti in out["t"]:
        tt = torch.full((batch,), float(ti), dtype=torch.float64)
        sums = {"conditional": 0.0, "stf": 0.0}
        for _ in range(check_int(n_batches, "n_batches", min=1)):
            x0 = gm.sample(batch, g)
            eps = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
            exact = gm.velocity(interp.q_sample(x0, tt, eps), tt, interp)
            sums["conditional"] += float((interp.target(x0, eps, "velocity", tt) - exact).square().sum(1).mean())
            sums["stf"] += float((stable_target(interp, x0, eps, tt) - exact).square().sum(1).mean())
        for k, v in sums.items():
            out[k].append(v / n_batches)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def field_errors(run, *, bins: Sequence[float] = T_BINS, n: int = 100_000, seed: int = 777) -> np.ndarray:
    """E‖u_θ(x_t, t) − u*(x_t, t)‖² of a trained flow run (linear, velocity) per bin of t ~ U[0, 1], over ``n``
    draws of (x_0, ε, t) in its normalised units; ``[len(bins) − 1]``."""
    if getattr(run, "flow", None) is None or run.model is None or run.oracle is None:
        raise ValueError("run must be a trained flow run of a data set with an exact oracle")
    g = torch.Generator().manual_seed(seed)
    x0 = run.oracle.sample(check_int(n, "n", min=1), g)
    t = torch.rand(n, generator=g, dtype=torch.float64)
    x_t = run.flow.interp.q_sample(x0, t, torch.randn(x0.shape, generator=g, dtype=x0.dtype))
    with torch.no_grad():
        err = (run.flow_fn(False)(x_t.float(), t.float()).double() - run.flow_fn(True)(x_t, t)).square().sum(1)
    edges = list(bins)
    return np.array([float(err[(t >= lo) & (t < hi)].mean()) for lo, hi in zip(edges[:-1], edges[1:])])


def targets_figure(noise: dict, errors: dict, *, bins: Sequence[float] = T_BINS) -> Figure:
    """Top: :func:`target_noise` per data set; bottom: :func:`field_errors` of models trained on each target."""
    if not noise or set(noise) != set(errors):
        raise ValueError("noise and errors must name the same, non-empty data sets")
    names = list(noise)
    fig, axes = plt.subplots(2, len(names), figsize=(5.2 * len(names), 7.4), squeeze=False)
    mid = 0.5 * (np.asarray(bins[:-1]) + np.asarray(bins[1:]))
    for col, name in enumerate(names):
        top, bottom = axes[0, col], axes[1, col]
        for key in ("conditional", "stf"):
            top.plot(noise[name]["t"], noise[name][key], "o-", color=COLOURS[key], label=LABELS[key])
            if key in errors[name]:
                bottom.plot(mid, errors[name][key], "o-", color=COLOURS[key], label=f"trained on the {LABELS[key]}")
        top.set(yscale="log", xlabel="t  (0 = data, 1 = noise)", ylabel="E‖target − u*(x_t)‖²",
                title=f"{name}: noise in the regression target")
        bottom.set(yscale="log", xlabel="t", ylabel="E‖u_θ − u*‖²", title=f"{name}: error left in the trained velocity")
        for ax in (top, bottom):
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
    fig.suptitle("Flow matching regresses on a noisy target; averaging it over the batch leaves less error "
                 "(same steps)", fontsize=11)
    fig.tight_layout()
    return fig
