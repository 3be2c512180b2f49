"""Toy sandbox: train an MLP noise predictor on a 1-D / 2-D toy set live, compare ε̂ with the exact ε*,
sample with any sampler and score the samples against the truth (each metric beside its noise floor)."""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import streamlit as st
import torch

import toydiff as td
from apps.common import (TOY_RUN_KEY, ToyRun, build_schedule, dataset_names, describe_dataset, fig_png,
                         load_dataset, markdown_table, need, new_run_id, readable_errors, schedule_or_error, schedule_picker,
                         show_png, spec_of, toy_run)

# --- cached work (keyed by the run id; the run itself is not hashed) --------------------------------


@st.cache_data(max_entries=16, show_spinner=False)
def data_png(dataset: str, n: int, seed: int) -> bytes:
    from toydiff.toy import plots

    ds = load_dataset(dataset)
    x = ds.sample(n, torch.Generator().manual_seed(seed))
    if ds.dim == 1:
        fig = plots.kde_vs_histogram(x, mixture=ds.mixture, title=f"The data: {n:,} draws from {dataset}")
    else:
        fig = plots.scatter_with_density(x, mixture=ds.mixture, title=f"The data: {n:,} draws from {dataset}")
    return fig_png(fig)


@st.cache_data(max_entries=8, show_spinner=False)
def loss_png(run_id: int, _run: ToyRun) -> bytes:
    from toydiff.toy import plots

    return fig_png(plots.loss_curves(_run.history, title=f"{_run.dataset}"))


@st.cache_data(max_entries=32, show_spinner="Comparing ε̂ with ε*…")
def eps_compare(run_id: int, _run: ToyRun, t: int) -> tuple[bytes, float | None]:
    """The learned ε̂ and the exact ε* at step t (normalised space), and E_{x_t ~ p_t} |ε̂ − ε*|² / D."""
    s, model, oracle = _run.schedule, _run.model, _run.oracle
    ab = s.alpha_bar(t)
    gap = None
    if oracle is not None:
        xt = oracle.noised(ab).sample(4000, torch.Generator().manual_seed(0)).float()
        with torch.no_grad():
            e_hat = model(xt, torch.full((len(xt),), t))
        gap = float(((e_hat.double() - oracle.eps_star(xt, ab)) ** 2).mean())
    D = model.config.dim
    if D == 1:
        grid = torch.linspace(-3.5, 3.5, 400)[:, None]
        with torch.no_grad():
            e_hat = model(grid, torch.full((len(grid),), t)).numpy()[:, 0]
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.plot(grid[:, 0], e_hat, color="tab:red", lw=2, label="learned ε̂(x_t, t)")
        if oracle is not None:
            ax.plot(grid[:, 0], oracle.eps_star(grid.double(), ab).numpy()[:, 0], "k--", lw=1.5,
                    label="exact ε*(x_t, t) = E[ε | x_t]")
            ax2 = ax.twinx()
            ax2.fill_between(grid[:, 0], oracle.log_prob(grid.double(), ab).exp().numpy(), color="tab:blue",
                             alpha=0.15, label="p_t(x_t) (exact)")
            ax2.set_ylabel("density of x_t", color="tab:blue")
            ax2.set_ylim(bottom=0)
            ax2.legend(loc="lower right", fontsize=8)
        ax.set(xlabel="x_t (normalised)", ylabel="noise prediction",
               title=f"ε̂ vs ε* at t = {t} (ᾱ = {ab:.3f})")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
    else:
        from toydiff.toy import plots

        fns = {"learned ε̂": model}
        if oracle is not None:
            fns["exact ε*"] = oracle.eps_fn(s)
        fig = plots.vector_fields(fns, s, t, extent=(-3.0, 3.0), n=21)
    return fig_png(fig), gap


@st.cache_data(max_entries=32, show_spinner="Sampling…")
def toy_samples(run_id: int, _run: ToyRun, method: str, steps: int, spacing: str, eta: float, variance: str,
                n: int, seed: int) -> dict:
    """Samples in data space, 200 tracked trajectories and the metrics report."""
    g = torch.Generator().manual_seed(seed)
    D = _run.model.config.dim
    x_T = torch.randn(n, D, generator=g)
    rec = td.TrajectoryRecorder(indices=range(min(n, 200)))
    t0 = time.perf_counter()
    x = td.sample(_run.model, x_T, _run.schedule, method=method, steps=steps, spacing=spacing, eta=eta,
                  variance=variance, generator=g, callback=rec)
    secs = time.perf_counter() - t0
    raw = _run.normalizer.inverse(x.double())
    path = _run.normalizer.inverse(rec.path().double())
    out = {"samples": raw.numpy(), "path": path.numpy(), "timesteps": list(rec.timesteps), "seconds": secs,
           "nfe": td.function_evaluations(method, len(rec.timesteps)), "report": None, "report_error": None}
    metrics, reason = _optional("toydiff.toy.metrics")
    if metrics is None:
        out["report_error"] = reason
    else:
        try:
            out["report"] = metrics.report(raw, load_dataset(_run.dataset), seed=seed)
        except (ValueError, RuntimeError) as e:
            out["report_error"] = str(e)
    return out


def _optional(name):
    from apps.common import optional_module

    return optional_module(name)


@st.cache_data(max_entries=32, show_spinner=False)
def samples_png(run_id: int, _res: dict, dataset: str, key: tuple) -> tuple[bytes, bytes]:
    from toydiff.toy import plots

    ds = load_dataset(dataset)
    x, path, ts = _res["samples"], _res["path"], _res["timesteps"]
    method = key[0]
    if ds.dim == 1:
        truth = None if ds.mixture is not None else ds.sample(len(x), torch.Generator().manual_seed(1))
        f1 = plots.kde_vs_histogram(x, mixture=ds.mixture, true_samples=truth,
                                    title=f"{method}, {len(ts)} steps: samples vs truth")
        f2 = plots.trajectories(path, ts, mixture=ds.mixture, title=f"{method} trajectories")
    else:
        truth = None if ds.mixture is not None else ds.sample(len(x), torch.Generator().manual_seed(1))
        f1 = plots.scatter_with_density(x, mixture=ds.mixture, true_samples=truth,
                                        title=f"{method}, {len(ts)} steps: samples vs truth")
        f2, ax = plt.subplots(figsize=(5.5, 5.5))
        for i in range(min(40, path.shape[1])):
            ax.plot(path[:, i, 0], path[:, i, 1], lw=0.6, alpha=0.5)
        ax.scatter(path[-1, :40, 0], path[-1, :40, 1], s=10, color="tab:red", zorder=3, label="x_0 (end)")
        ax.scatter(path[0, :40, 0], path[0, :40, 1], s=10, color="0.5", zorder=3, label="x_T (start)")
        ax.set(title=f"{method}: 40 reverse trajectories", aspect="equal", xlabel="x", ylabel="y")
        ax.legend(fontsize=8)
        f2.tight_layout()
    return fig_png(f1), fig_png(f2)


def report_rows(report: dict) -> list[dict]:
    rows = []
    for name, v in report.items():
        val, floor = float(v["value"]), float(v["floor"])
        rows.append({"metric": name, "value": val, "noise floor (two true sets)": floor,
                     "value − floor": val - floor})
    return rows


# --- training ------------------------------------------------------------------------------------------


def train(dataset: str, spec, width: int, depth: int, activation: str, time_input: str, epochs: int,
          n_train: int, batch_size: int, lr: float, seed: int, t_sampling: str = "uniform") -> ToyRun:
    from toydiff.toy.models import MLPConfig
    from toydiff.toy.run import toy_trainer
    from toydiff.training import TrainConfig

    ds = load_dataset(dataset)
    schedule = build_schedule(spec)[0]
    model_config = MLPConfig(dim=ds.dim, width=width, depth=depth, activation=activation, time_input=time_input)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, t_sampling=t_sampling)
    status = st.status(f"Training on {dataset} for {epochs} epochs…", expanded=True)
    with status:
        st.write("Estimating the Bayes-optimal loss floor from the exact mixture…" if ds.has_oracle
                 else "No exact mixture for this data set: no loss floor.")
        trainer, norm = toy_trainer(ds, schedule, model_config, cfg, n_train, max(1000, n_train // 5), seed)
        oracle = norm.oracle(ds.mixture) if ds.has_oracle else None
        bar = st.progress(0.0, text="epoch 0")
        live = st.empty()
        every = max(2, epochs // 4)
        t0 = time.perf_counter()

        def on_epoch(rec: dict) -> None:
            floor = trainer.history.floor
            ftxt = "" if floor is None else f", floor {floor:.4f}"
            bar.progress(rec["epoch"] / epochs,
                         text=f"epoch {rec['epoch']}/{epochs}: train {rec['train_loss']:.4f}, "
                              f"held-out {rec['val_loss']:.4f}{ftxt}")
            if rec["epoch"] % every == 0 and rec["epoch"] < epochs:
                from toydiff.toy import plots

                live.image(fig_png(plots.loss_curves(trainer.history, title="live"), dpi=60))

        try:
            trainer.fit(progress=False, on_epoch=on_epoch)
        except BaseException:
            status.update(label="Training failed", state="error", expanded=False)
            raise
        live.empty()
        secs = time.perf_counter() - t0
    status.update(label=f"Trained {epochs} epochs in {secs:.1f} s", state="complete", expanded=False)
    trainer.eval_model.eval()
    run_id = new_run_id()
    summary = (f"{dataset}, MLP {width}×{depth} {activation} ({time_input} t), {spec[0]} schedule T={schedule.T}, "
               f"{epochs} epochs on {n_train:,} points")
    return ToyRun(run_id=run_id, dataset=dataset, model=trainer.eval_model, schedule_spec=spec, schedule=schedule,
                  normalizer=norm, oracle=oracle, history=trainer.history, summary=summary, seconds=secs)


# --- the page ------------------------------------------------------------------------------------------

st.title("Toy sandbox")
st.caption("Train a small MLP ε̂(x_t, t) on a 1-D or 2-D toy set, watch the loss approach the Bayes-optimal floor, "
           "then sample with any sampler. The default is the seed exercise and trains in a few seconds.")

mods = [need(m, f) for m, f in (("toydiff.toy.datasets", "Toy data sets"), ("toydiff.toy.models", "The MLP noise predictor"),
                                ("toydiff.training", "Training"), ("toydiff.toy.plots", "Toy-track figures"))]
if any(m is None for m in mods):
    st.stop()

st.subheader("1 · Data, model, schedule")
c1, c2, c3 = st.columns(3)
with c1:
    names = dataset_names()
    dataset = st.selectbox("Data set", names, index=names.index("two_gaussians"), key="toy_dataset")
    st.caption(describe_dataset(dataset))
    with readable_errors("Drawing the data"):
        show_png(data_png(dataset, 2000, 0))
with c2:
    width = st.select_slider("Hidden width", [16, 32, 64, 128, 256], value=128, key="toy_width")
    depth = st.slider("Hidden layers", 1, 4, 3, key="toy_depth",
                      help="the seed exercise's network: 2 layers of 128, tanh, raw t")
    activation = st.selectbox("Activation", ["silu", "tanh", "relu", "gelu"], key="toy_act")
    time_input = st.radio("Time input", ["sinusoidal", "raw"], horizontal=True, key="toy_time",
                          help="sinusoidal: a 32-channel embedding (shared with the image track's UNets); "
                               "raw: t as one number concatenated to x (the seed exercise)")
with c3:
    spec = schedule_picker("toy_sched", label="Schedule", default=spec_of("constant", T=250, beta=0.02))
    schedule = schedule_or_error(spec, "Schedule")

st.subheader("2 · Train")
c1, c2, c3, c4, c5 = st.columns(5)
epochs = c1.slider("Epochs", 1, 200, 60, key="toy_epochs", help="each epoch draws fresh training points")
n_train = c2.select_slider("Training points", [1000, 2000, 5000, 10000, 20000], value=10000, key="toy_ntrain")
batch_size = c3.select_slider("Batch size", [64, 128, 256, 512, 1024], value=256, key="toy_batch")
lr = c4.select_slider("Peak learning rate", [3e-4, 1e-3, 3e-3, 1e-2], value=3e-3, key="toy_lr")
seed = int(c5.number_input("Seed", 0, 10_000, 0, key="toy_seed"))
t_sampling = st.radio(
    "Training steps t", ["uniform", "low-noise"], index=1 if load_dataset(dataset).dim == 2 else 0, horizontal=True,
    key=f"toy_tsampling_{dataset}",
    help="uniform: t ~ U{0, …, T−1} (Ho et al. 2020). low-noise: P(t) ∝ 1/√(t+1), three times more of the last "
         "tenth of the steps. Narrow 2-D modes need it: with uniform t a network leaves ~20 % of its 8-Gaussians "
         "samples between the modes, at a held-out loss only 1.5 % above the floor.")

if st.button("Train", type="primary", key="toy_train", disabled=schedule is None):
    with readable_errors("Training"):
        st.session_state[TOY_RUN_KEY] = train(dataset, spec, width, depth, activation, time_input, epochs, n_train,
                                              batch_size, lr, seed, t_sampling)

run = toy_run()
if run is None:
    st.info("Press **Train** to fit a model; its loss curves, ε̂ vs ε* and samples appear below.")
    st.stop()

st.success(f"Model #{run.run_id}: {run.summary}; trained in {run.seconds:.1f} s. "
           "It is also available on the Sampler lab page.", icon="✅")
if run.dataset != dataset or run.schedule_spec != spec:
    st.caption("The settings above differ from the trained model's; press Train to retrain. "
               "Everything below uses the trained model.")

h = run.history
m1, m2, m3, m4 = st.columns(4)
m1.metric("Final train loss", f"{h.train_loss[-1]:.4f}")
m2.metric("Final held-out loss", f"{h.val_loss[-1]:.4f}")
m3.metric("Bayes-optimal floor", "—" if h.floor is None else f"{h.floor:.4f}")
m4.metric("Excess over the floor", "—" if h.floor is None else f"{h.val_loss[-1] - h.floor:+.4f}")
with readable_errors("Drawing the loss curves"):
    show_png(loss_png(run.run_id, run))

st.subheader("3 · Learned ε̂ against the exact ε*")
if run.oracle is None:
    st.caption("This data set has no closed-form density, so only the learned field is shown.")
T = run.schedule.T
t_cmp = st.slider("Step t", 0, T - 1, min(T - 1, T // 10), key=f"toy_tcmp_{T}")
with readable_errors("Comparing ε̂ with ε*"):
    png, gap = eps_compare(run.run_id, run, int(t_cmp))
    c1, c2 = st.columns([1, 3])
    if gap is not None:
        c1.metric(f"E‖ε̂ − ε*‖² / D over x_t ~ p_t at t = {t_cmp}", f"{gap:.4g}")
        c1.caption("How far the learned noise prediction is from the optimal one, averaged over where x_t "
                   "actually lives at this step. It is largest where the data's modes still overlap.")
    show_png(png, container=c2)

st.subheader("4 · Sample")
c1, c2, c3, c4, c5 = st.columns(5)
method = c1.selectbox("Sampler", td.METHODS, key="toy_method")
steps = int(c2.slider("Steps", 1, T, T if T <= 250 else 50, key=f"toy_steps_{T}",
                      help="Default: every step for T ≤ 250 (the seed exercise), else 50 respaced steps"))
spacing = c3.selectbox("Spacing", td.schedules.SPACINGS, key="toy_spacing")
n = int(c4.select_slider("Samples", [500, 1000, 2000, 5000, 10000], value=2000, key="toy_n"))
sample_seed = int(c5.number_input("Sampling seed", 0, 10_000, 0, key="toy_sseed"))
eta, variance = 0.0, "beta"
if method == "ddim":
    eta = float(st.slider("DDIM η (0 = deterministic, 1 = ancestral)", 0.0, 1.0, 0.0, 0.1, key="toy_eta"))
if method == "ddpm":
    variance = st.radio("DDPM variance", ["beta", "posterior"], horizontal=True, key="toy_var")

with readable_errors("Sampling"):
    res = toy_samples(run.run_id, run, method, steps, spacing, eta, variance, n, sample_seed)
    key = (method, steps, spacing, eta, variance, n, sample_seed)
    f_samples, f_traj = samples_png(run.run_id, res, run.dataset, key)
    m1, m2, m3 = st.columns(3)
    m1.metric("Network evaluations", res["nfe"])
    m2.metric("Sampling time", f"{res['seconds'] * 1000:.0f} ms")
    rep = res["report"]
    if rep is not None:
        head = "wasserstein1" if "wasserstein1" in rep else "sliced_wasserstein"
        m3.metric(f"{head} (floor {rep[head]['floor']:.3g})", f"{rep[head]['value']:.3g}")
    c1, c2 = st.columns(2)
    show_png(f_samples, container=c1)
    show_png(f_traj, container=c2)
    st.markdown("**Metrics against the truth**, each next to its noise floor: the same metric between two independent "
                f"true sets of {n:,} points. A sampler matches the truth when its value sits at the floor.")
    if rep is not None:
        markdown_table(report_rows(rep))
    else:
        st.info(f"Metrics not available yet: {res['report_error']}", icon="⏳")
