"""Toy sandbox: train an MLP noise predictor on a 1-D / 2-D toy set live, compare ε̂ with the exact ε*,
sample with any sampler and score the samples against the truth (each metric beside its noise floor)."""

from __future__ import annotations

import time

import streamlit as st
import torch

import toydiff as td
from apps.schedule_widgets import build_schedule, schedule_or_error, schedule_picker, spec_of
from apps.toy_data import dataset_names, describe_dataset, load_dataset, recipe_widget_values
from apps.toy_state import TOY_RUN_KEY, TrainedToy, new_run_id, toy_run
from apps.ui import fig_png, markdown_table, readable_errors, show_png
from toydiff.toy import metrics, plots
from toydiff.toy.models import MLPConfig
from toydiff.toy.recipes import default_recipe
from toydiff.toy.run import train_toy
from toydiff.training import History, TrainConfig

# --- cached work (keyed by the run id; the run itself is not hashed) --------------------------------


@st.cache_data(max_entries=16, show_spinner=False)
def data_png(dataset: str, n: int, seed: int) -> bytes:
    ds = load_dataset(dataset)
    x = ds.sample(n, torch.Generator().manual_seed(seed))
    return fig_png(plots.samples_vs_truth(x, mixture=ds.mixture, title=f"The data: {n:,} draws from {dataset}"))


@st.cache_data(max_entries=8, show_spinner=False)
def loss_png(run_id: int, _rec: TrainedToy) -> bytes:
    return fig_png(plots.loss_curves(_rec.run.history, title=_rec.dataset))


@st.cache_data(max_entries=32, show_spinner="Comparing ε̂ with ε*…")
def eps_compare(run_id: int, _rec: TrainedToy, t: int) -> tuple[bytes, float | None]:
    """The learned ε̂ and the exact ε* at step t (normalised space), and E_{x_t ~ p_t} |ε̂ − ε*|² / D."""
    s, model, oracle = _rec.run.schedule, _rec.run.model, _rec.oracle
    gap = None if oracle is None else metrics.eps_gap(model, oracle, s.alpha_bar(t), t)
    return fig_png(plots.eps_comparison(model, s, t, oracle=oracle)), gap


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


@st.cache_data(max_entries=32, show_spinner=False)
def samples_png(run_id: int, _res: dict, dataset: str, key: tuple) -> tuple[bytes, bytes]:
    ds = load_dataset(dataset)
    x, path, ts = _res["samples"], _res["path"], _res["timesteps"]
    method = key[0]
    truth = None if ds.mixture is not None else ds.sample(len(x), torch.Generator().manual_seed(1))
    f1 = plots.samples_vs_truth(x, mixture=ds.mixture, true_samples=truth,
                                title=f"{method}, {len(ts)} steps: samples vs truth")
    if ds.dim == 1:
        f2 = plots.trajectories(path, ts, mixture=ds.mixture, title=f"{method} trajectories")
    else:
        f2 = plots.trajectories_2d(path, n=40, title=f"{method}: reverse trajectories")
    return fig_png(f1), fig_png(f2)


def report_rows(report: dict) -> list[dict]:
    rows = []
    for name, v in report.items():
        val, floor = float(v["value"]), float(v["floor"])
        rows.append({"metric": name, "value": val, "noise floor (two true sets)": floor,
                     "value − floor": val - floor})
    return rows


# --- training ------------------------------------------------------------------------------------------


def live_progress(epochs: int):
    """An ``on_epoch`` callback for :func:`train_toy`: a progress bar and a loss figure every quarter."""
    bar, live = st.progress(0.0, text="epoch 0"), st.empty()
    seen = History()
    every = max(2, epochs // 4)

    def on_epoch(rec: dict) -> None:
        seen.records.append(rec)
        bar.progress(rec["epoch"] / epochs, text=f"epoch {rec['epoch']}/{epochs}: train {rec['train_loss']:.4f}, "
                                                 f"held-out {rec['val_loss']:.4f}")
        if rec["epoch"] % every == 0 and rec["epoch"] < epochs:
            live.image(fig_png(plots.loss_curves(seen, title="live"), dpi=60))

    return on_epoch, live


def train(dataset: str, spec, model_config: MLPConfig, cfg: TrainConfig, n_train: int) -> TrainedToy:
    """:func:`toydiff.toy.run.train_toy` with a live status box; the session record of the result."""
    ds = load_dataset(dataset)
    schedule = build_schedule(spec)[0]
    status = st.status(f"Training on {dataset} for {cfg.epochs} epochs…", expanded=True)
    with status:
        st.write("The held-out loss is compared with the Bayes-optimal floor of the exact mixture." if ds.has_oracle
                 else "No exact mixture for this data set: no loss floor.")
        on_epoch, live = live_progress(cfg.epochs)
        t0 = time.perf_counter()
        try:
            run = train_toy(ds, model_config=model_config, config=cfg, schedule=schedule, n_train=n_train,
                            n_val=max(1000, n_train // 5), seed=cfg.seed, progress=False, on_epoch=on_epoch)
        except BaseException:
            status.update(label="Training failed", state="error", expanded=False)
            raise
        live.empty()
        secs = time.perf_counter() - t0
    status.update(label=f"Trained {cfg.epochs} epochs in {secs:.1f} s", state="complete", expanded=False)
    m = model_config
    summary = (f"{dataset}, MLP {m.width}×{m.depth} {m.activation} ({m.time_input} t), {spec[0]} schedule "
               f"T={schedule.T}, {cfg.epochs} epochs on {n_train:,} points")
    return TrainedToy(run_id=new_run_id(), run=run, schedule_spec=spec, summary=summary, seconds=secs)


# --- the page ------------------------------------------------------------------------------------------

st.title("Toy sandbox")
st.caption("Train a small MLP ε̂(x_t, t) on a 1-D or 2-D toy set, watch the loss approach the Bayes-optimal floor, "
           "then sample with any sampler. Every setting starts at the data set's default recipe (the one "
           "`toydiff toy train` and `train_toy` use); the default data set is the seed exercise.")


def with_recipe_defaults(dataset: str) -> None:
    """Put the data set's default recipe into the widgets when the data set changes (edits stay until then)."""
    if st.session_state.get("toy_recipe_of") != dataset:
        st.session_state.update(recipe_widget_values(dataset))
        st.session_state["toy_recipe_of"] = dataset


st.subheader("1 · Data, model, schedule")
c1, c2, c3 = st.columns(3)
with c1:
    names = dataset_names()
    dataset = st.selectbox("Data set", names, index=names.index("two_gaussians"), key="toy_dataset")
    recipe = default_recipe(dataset)
    with_recipe_defaults(dataset)
    st.caption(describe_dataset(dataset))
    with readable_errors("Drawing the data"):
        show_png(data_png(dataset, 2000, 0))
with c2:
    width = st.select_slider("Hidden width", [16, 32, 64, 128, 256, 512], key="toy_width")
    depth = st.slider("Hidden layers", 1, 4, key="toy_depth",
                      help="the seed exercise's network: 2 layers of 128, tanh, raw t")
    activation = st.selectbox("Activation", ["silu", "tanh", "relu", "gelu"], key="toy_act")
    time_input = st.radio("Time input", ["sinusoidal", "raw"], horizontal=True, key="toy_time",
                          help="sinusoidal: a 32-channel embedding (shared with the image track's UNets); "
                               "raw: t as one number concatenated to x (the seed exercise)")
with c3:
    spec = schedule_picker(f"toy_sched_{dataset}", label="Schedule",
                           default=spec_of(recipe.schedule_name, **dict(recipe.schedule_params)))
    schedule = schedule_or_error(spec, "Schedule")

st.subheader("2 · Train")
c1, c2, c3, c4, c5 = st.columns(5)
epochs = c1.slider("Epochs", 1, 400, key="toy_epochs", help="each epoch draws fresh training points")
n_train = c2.select_slider("Training points", [1000, 2000, 5000, 10000, 20000, 40000], key="toy_ntrain")
batch_size = c3.select_slider("Batch size", [32, 64, 128, 256, 512, 1024], key="toy_batch")
lr = c4.select_slider("Peak learning rate", [3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2], key="toy_lr")
seed = int(c5.number_input("Seed", 0, 10_000, 0, key="toy_seed"))
t_sampling = st.radio(
    "Training steps t", ["uniform", "low-noise"], horizontal=True, key="toy_tsampling",
    help="uniform: t ~ U{0, …, T−1} (Ho et al. 2020). low-noise: P(t) ∝ 1/√(t+1), three times more of the last "
         "tenth of the steps (both families' default). Narrow 2-D modes need it: with uniform t a network leaves "
         "~20 % of its 8-Gaussians samples between the modes, at a held-out loss only 1.5 % above the floor; in 1-D "
         "the last steps set the modes' means and spread.")

if st.button("Train", type="primary", key="toy_train", disabled=schedule is None):
    with readable_errors("Training"):
        model_config = MLPConfig(dim=load_dataset(dataset).dim, width=width, depth=depth, activation=activation,
                                 time_input=time_input)
        cfg = recipe.train_config(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, t_sampling=t_sampling)
        st.session_state[TOY_RUN_KEY] = train(dataset, spec, model_config, cfg, n_train)

trained = toy_run()
if trained is None:
    st.info("Press **Train** to fit a model; its loss curves, ε̂ vs ε* and samples appear below.")
    st.stop()

st.success(f"Model #{trained.run_id}: {trained.summary}; trained in {trained.seconds:.1f} s. "
           "It is also available on the Sampler lab page.", icon="✅")
if trained.dataset != dataset or trained.schedule_spec != spec:
    st.caption("The settings above differ from the trained model's; press Train to retrain. "
               "Everything below uses the trained model.")

h = trained.run.history
m1, m2, m3, m4 = st.columns(4)
m1.metric("Final train loss", f"{h.train_loss[-1]:.4f}")
m2.metric("Final held-out loss", f"{h.val_loss[-1]:.4f}")
m3.metric("Bayes-optimal floor", "—" if h.floor is None else f"{h.floor:.4f}")
m4.metric("Excess over the floor", "—" if h.floor is None else f"{h.val_loss[-1] - h.floor:+.4f}")
with readable_errors("Drawing the loss curves"):
    show_png(loss_png(trained.run_id, trained))

st.subheader("3 · Learned ε̂ against the exact ε*")
if trained.oracle is None:
    st.caption("This data set has no closed-form density, so only the learned field is shown.")
T = trained.run.schedule.T
t_cmp = st.slider("Step t", 0, T - 1, min(T - 1, T // 10), key=f"toy_tcmp_{T}")
with readable_errors("Comparing ε̂ with ε*"):
    png, gap = eps_compare(trained.run_id, trained, int(t_cmp))
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
spacing = c3.selectbox("Spacing", td.schedules.SPACINGS, key=f"toy_spacing_{method}",
                       index=td.schedules.SPACINGS.index(td.samplers.REGISTRY[method].default_spacing),
                       help="Default: the method's own (td.samplers.REGISTRY[method].default_spacing): logsnr for "
                            "dpm++2m, linspace for the others (heun diverges on logsnr / karras at 10–20 steps)")
n = int(c4.select_slider("Samples", [500, 1000, 2000, 5000, 10000], value=2000, key="toy_n"))
sample_seed = int(c5.number_input("Sampling seed", 0, 10_000, 0, key="toy_sseed"))
eta, variance = 0.0, "beta"
if method == "ddim":
    eta = float(st.slider("DDIM η (0 = deterministic, 1 = ancestral)", 0.0, 1.0, 0.0, 0.1, key="toy_eta"))
if method == "ddpm":
    variance = st.radio("DDPM variance", ["beta", "posterior"], horizontal=True, key="toy_var")

with readable_errors("Sampling"):
    res = toy_samples(trained.run_id, trained, method, steps, spacing, eta, variance, n, sample_seed)
    key = (method, steps, spacing, eta, variance, n, sample_seed)
    f_samples, f_traj = samples_png(trained.run_id, res, trained.dataset, key)
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
