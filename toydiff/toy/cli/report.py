"""``toydiff toy report``: figures and metrics (each next to its noise floor) of a run or the oracle, into a folder.

    toydiff toy report --run runs/toy --out report/          # samples, trajectories (1-D), loss, metrics.json
    toydiff toy report --oracle --dataset 8gaussians --process flow --out report/
"""

from __future__ import annotations

import json

import torch

from toydiff.cli import check_writable
from toydiff.options import positive
from toydiff.outputs import atomic_write_text, save_figure, save_npy, staged_folder
from toydiff.toy.cli.common import (add_denoiser_flags, add_sampling_flags, run_for, sampler_kwargs, sampler_label,
                                    steps_of)

__all__ = ["HELP", "add_parser", "run"]

HELP = "figures and metrics (each with its noise floor) into a folder"


def add_parser(sub) -> None:
    r = sub.add_parser("report", help=HELP)
    add_denoiser_flags(r)
    add_sampling_flags(r)
    r.add_argument("--out", required=True, help="output folder (written whole at the end; its files rewritten)")
    r.add_argument("--track", type=positive(int), default=200, help="trajectories drawn (1-D)")


def run(a) -> int:
    """Run ``toydiff toy report``."""
    import matplotlib

    matplotlib.use("Agg")
    from toydiff.toy import metrics
    from toydiff.toy.figures.samples import kde_vs_histogram_mpl, scatter_with_density_mpl, trajectories_1d_mpl
    from toydiff.toy.figures.schedules import forward_density_mpl
    from toydiff.toy.figures.training import loss_curves_mpl, vector_fields_mpl
    from toydiff.sampling.trajectory import TrajectoryRecorder

    out = check_writable(a.out, "--out", folder=True)
    run = run_for(a)
    ds, mixture = run.dataset, run.dataset.mixture
    n_track = min(a.track, a.n)
    rec = TrajectoryRecorder(indices=range(n_track))
    x = run.sample(a.n, **sampler_kwargs(run, a), seed=a.seed, exact=a.oracle, callback=rec, progress=True)
    figures = {}
    true = ds.sample(a.n, torch.Generator().manual_seed(a.seed + 1))
    label = f"{ds.name}: {sampler_label(run, a)}, {'exact oracle' if a.oracle else 'model'}"
    if ds.dim == 1:
        figures["samples"] = kde_vs_histogram_mpl(x, mixture=mixture, true_samples=None if mixture else true,
                                                    title=label)
        path = run.normalizer.inverse(rec.path().double())
        figures["trajectories"] = trajectories_1d_mpl(path, rec.timesteps, mixture=mixture)
    else:
        figures["samples"] = scatter_with_density_mpl(x, mixture=mixture, true_samples=None if mixture else true,
                                                        title=label)
    if ds.dim == 2 and run.schedule is not None:  # the ε field over a noise schedule (a flow path has none)
        fns = {} if (a.oracle or run.model is None) else {"learned ε̂": run.denoiser_fn()}
        if run.oracle is not None:
            fns["exact ε*"] = run.denoiser_fn(exact=True)
        figures["vector_field"] = vector_fields_mpl(fns, run.schedule, t=run.schedule.T // 10)
    if run.history is not None and run.history.records:
        figures["loss"] = loss_curves_mpl(run.history, title=ds.name, meta=run.metadata)
    if run.oracle is not None and run.schedule is not None:  # the forward marginals over a noise schedule
        figures["forward"] = forward_density_mpl(run.oracle, run.schedule)
    m = metrics.report(x, ds, seed=a.seed + 2)
    summary = {"dataset": ds.name, "denoiser": "oracle" if a.oracle else str(a.run), "process": run.process.name,
               "method": sampler_kwargs(run, a)["method"], "steps": steps_of(run.process, a.steps),
               "sampler": sampler_label(run, a), "n": a.n, "seed": a.seed, "metrics": m}
    with staged_folder(out) as tmp:  # a failure leaves no partial report
        for name, fig in figures.items():
            save_figure(fig, tmp / f"{name}.png", dpi=110)
        atomic_write_text(tmp / "metrics.json", json.dumps(summary, indent=1))
        save_npy(tmp / "samples.npy", x)
    width = max(len(k) for k in m)
    print(f"{label}\n  {'metric':<{width}}  {'value':>10}  {'reference':>11}")
    for k, v in m.items():
        print(f"  {k:<{width}}  {v['value']:>10.4g}  {v['floor']:>11.4g}  {metrics.reference_name(k)}")
    print(f"wrote {', '.join(sorted(f'{n}.png' for n in figures))}, metrics.json and samples.npy to {out}")
    return 0
