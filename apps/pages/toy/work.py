"""The Toy page's cached work and its trainer with live progress: figures (Plotly for the page, matplotlib PNG
for export, made only when downloaded), samples with their metrics, and :func:`toydiff.toy.run.train_toy`
wrapped in a status box that can be stopped."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st
import torch

import toydiff as td
from apps.pages.schedules.widgets import build_schedule
from apps.pages.toy.state import TrainedToy, new_run_id
from apps.pages.toy.notes import plural
from apps.common.ui import fig_png
from toydiff.toy import metrics
from toydiff.toy.figures.samples import (samples_vs_truth_mpl, samples_vs_truth_plotly, trajectories_1d_mpl,
                                         trajectories_1d_plotly, trajectories_2d_mpl, trajectories_2d_plotly)
from toydiff.toy.figures.training import eps_comparison_plotly, loss_curves_plotly
from toydiff.toy.datasets import ToyDataset
from toydiff.toy.models import MLPConfig
from toydiff.toy.run import train_toy
from toydiff.training.engine import History, TrainConfig

__all__ = ["data_view", "data_png", "eps_compare", "toy_samples", "sample_figures", "report_rows", "train", "METRIC_NOTES"]

#: how to read each metric's floor (the same metric between two independent true sets of the same size)
METRIC_NOTES = {
    "mmd2": "unbiased estimate: its expectation is 0 for true samples, so a single floor (and a value) can be "
            "negative; read |value − floor| against the scatter of the floor",
    "nll": "not a floor but a reference: the NLL of true samples estimates the entropy H(p); samples can score "
           "below it by piling up at the modes",
    "kl_true_kde": "KDE smoothing alone makes this positive; compare with the floor",
    "modes_covered": "number of mixture components holding at least a quarter of their expected share",
}


@st.cache_resource(max_entries=16, show_spinner=False)
def data_view(key: tuple, _ds: ToyDataset, n: int, seed: int) -> tuple:
    """The data as an interactive figure, its points [n, D] and a PNG export maker's inputs."""
    x = _ds.sample(n, torch.Generator().manual_seed(seed))
    fig = samples_vs_truth_plotly(x, mixture=_ds.mixture, title=f"The data: {n:,} draws from {_ds.name}")
    return fig, x.numpy()


def data_png(ds: ToyDataset, x: np.ndarray) -> bytes:
    return fig_png(samples_vs_truth_mpl(x, mixture=ds.mixture, title=f"The data: {len(x):,} draws from {ds.name}"))


@st.cache_resource(max_entries=32, show_spinner="Comparing ε̂ with ε*…")
def eps_compare(run_id: int, _rec: TrainedToy, t: int) -> tuple:
    """The learned ε̂ and the exact ε* at step t (normalised space), and E_{x_t ~ p_t} |ε̂ − ε*|² / D."""
    s, model, oracle = _rec.run.schedule, _rec.run.model, _rec.oracle
    gap = None if oracle is None else metrics.eps_gap(model, oracle, s.alpha_bar(t), t)
    return eps_comparison_plotly(model, s, t, oracle=oracle), gap


@st.cache_data(max_entries=32, show_spinner="Sampling…")
def toy_samples(run_id: int, _rec: TrainedToy, method: str, steps: int, spacing: str, eta: float, variance: str,
                n: int, seed: int) -> dict:
    """Samples in data space, 200 tracked trajectories and the metrics report."""
    run = _rec.run
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, run.dataset.dim, generator=g)
    rec = td.TrajectoryRecorder(indices=range(min(n, 200)))
    t0 = time.perf_counter()
    x = td.sample(run.model, x_T, run.schedule, method=method, steps=steps, spacing=spacing, eta=eta,
                  variance=variance, generator=g, callback=rec)
    secs = time.perf_counter() - t0
    raw = run.normalizer.inverse(x.double())
    out = {"samples": raw.numpy(), "path": run.normalizer.inverse(rec.path().double()).numpy(),
           "timesteps": list(rec.timesteps), "seconds": secs,
           "nfe": td.function_evaluations(method, len(rec.timesteps)), "report": None, "report_error": None}
    try:
        out["report"] = metrics.report(raw, run.dataset, seed=seed)
    except (ValueError, RuntimeError) as e:
        out["report_error"] = str(e)
    return out


@st.cache_resource(max_entries=32, show_spinner=False)
def sample_figures(run_id: int, _res: dict, _ds: ToyDataset, key: tuple) -> tuple:
    """Samples vs truth and the reverse trajectories (Plotly), with makers of their PNG exports."""
    x, path, ts = _res["samples"], _res["path"], _res["timesteps"]
    truth = None if _ds.mixture is not None else _ds.sample(len(x), torch.Generator().manual_seed(1)).numpy()
    title = f"{key[0]}, {len(ts)} steps: samples vs truth"
    f1 = samples_vs_truth_plotly(x, mixture=_ds.mixture, true_samples=truth, title=title)
    png1 = lambda: fig_png(samples_vs_truth_mpl(x, mixture=_ds.mixture, true_samples=truth, title=title))  # noqa: E731
    if _ds.dim == 1:
        f2 = trajectories_1d_plotly(path, ts, mixture=_ds.mixture, title=f"{key[0]} trajectories")
        png2 = lambda: fig_png(trajectories_1d_mpl(path, ts, mixture=_ds.mixture, title=f"{key[0]} trajectories"))  # noqa: E731
    else:
        f2 = trajectories_2d_plotly(path, n=40, title=f"{key[0]}: reverse trajectories")
        png2 = lambda: fig_png(trajectories_2d_mpl(path, n=40, title=f"{key[0]}: reverse trajectories"))  # noqa: E731
    return f1, png1, f2, png2


def report_rows(report: dict) -> list[dict]:
    """The metrics table: value, the two-true-sets reference, their difference and how to read it."""
    rows = []
    for name, v in report.items():
        val, floor = float(v["value"]), float(v["floor"])
        rows.append({"metric": name, "value": val, "two true sets (reference)": floor, "value − reference": val - floor,
                     "note": METRIC_NOTES.get(name, "")})
    return rows


def live_progress(epochs: int):
    """An ``on_epoch`` callback for :func:`train_toy`: a progress bar and a loss chart every quarter."""
    bar, live = st.progress(0.0, text="epoch 0"), st.empty()
    seen = History()
    every = max(2, epochs // 4)

    def on_epoch(rec: dict) -> None:
        seen.records.append(rec)
        bar.progress(rec["epoch"] / epochs, text=f"epoch {rec['epoch']}/{epochs}: train {rec['train_loss']:.4f}, "
                                                 f"held-out {rec['val_loss']:.4f}")
        if rec["epoch"] % every == 0 and rec["epoch"] < epochs:
            live.plotly_chart(loss_curves_plotly(seen, title="live"), key=f"toy_live_{rec['epoch']}")

    return on_epoch, live


def train(ds: ToyDataset, spec, model_config: MLPConfig, cfg: TrainConfig, n_train: int) -> TrainedToy:
    """:func:`toydiff.toy.run.train_toy` with a live status box and a Stop button; the session record."""
    schedule = build_schedule(spec)[0]
    status = st.status(f"Training on {ds.name} for {plural(cfg.epochs, 'epoch')}…", expanded=True)
    with status:
        st.button("Stop training", key="toy_stop", help="stops at once; the previous model is kept")
        st.write("The held-out loss is compared with the Bayes-optimal floor of the exact mixture." if ds.has_oracle
                 else "No exact mixture for this data set: no loss floor.")
        on_epoch, live = live_progress(cfg.epochs)
        t0 = time.perf_counter()
        try:
            run = train_toy(ds, model_config=model_config, config=cfg, schedule=schedule, n_train=n_train,
                            n_val=max(1000, n_train // 5), seed=cfg.seed, progress=False, on_epoch=on_epoch)
        except Exception:
            status.update(label="Training failed", state="error", expanded=False)
            raise
        live.empty()
        secs = time.perf_counter() - t0
    status.update(label=f"Trained {plural(cfg.epochs, 'epoch')} in {secs:.1f} s", state="complete", expanded=False)
    m = model_config
    summary = (f"{ds.name}, MLP {m.width}×{m.depth} {m.activation} ({m.time_input} t), {spec[0]} schedule "
               f"T={schedule.T}, {plural(cfg.epochs, 'epoch')} on {plural(n_train, 'point')}")
    return TrainedToy(run_id=new_run_id(), run=run, schedule_spec=spec, summary=summary, seconds=secs)
