"""Toy sandbox: a trained MLP noise predictor on a 1-D / 2-D toy set from the first paint (shipped checkpoints
of the default recipe), retrained live on any set — including one you draw; ε̂ against the exact ε*; samples
from any sampler scored against the truth (each metric beside its two-true-sets reference)."""

from __future__ import annotations

import streamlit as st

import toydiff as td
from apps.charts import csv_bytes, downloads, section_notes, show_chart
from apps.pages.schedules.widgets import schedule_or_error, schedule_picker, spec_of
from apps.pages.toy.data import DRAWN, dataset_names, drawn_points, get_data, recipe_for, recipe_widget_values
from apps.pages.toy.draw import draw_section
from apps.pages.toy.notes import loss_gap_note
from apps.pages.toy.state import TOY_RUN_KEY, run_for, toy_run
from apps.pages.toy.work import data_png, data_view, eps_compare, report_rows, sample_figures, toy_samples, train
from apps.common.ui import markdown_table, readable_errors
from toydiff.toy.figures.training import loss_curves_plotly
from apps.common import url_state
from toydiff.toy.models import MLPConfig

METHODS, SPACINGS = list(td.METHODS), ["method's default"] + list(td.schedules.SPACINGS)
SAMPLES = (500, 1000, 2000, 5000, 10000)
NAMES = dataset_names() + [DRAWN]
#: the page's URL settings (apps.common.url_state): short query names. The steps' default depends on the
#: model's T (every step for T ≤ 250, else 50), so the page sets it, and its slider is keyed by T.
URL_SPEC = (url_state.Param("toy_dataset", str, "two_gaussians", choices=NAMES, url="data"),
            url_state.Param("toy_method", str, "ddpm", choices=METHODS, url="method"),
            url_state.Param("toy_steps", int, None, bounds="toy_steps", url="steps"),
            url_state.Param("toy_n", int, 1000, choices=SAMPLES, url="n"),
            url_state.Param("toy_sseed", int, 0, bounds="seed", url="sseed"))

st.title("Toy sandbox")
st.caption("A small MLP ε̂(x_t, t) on a 1-D or 2-D toy set: its loss against the Bayes-optimal floor, its ε̂ against "
           "the exact ε*, and samples from any sampler. The default data sets open with a shipped model (the line "
           "above its loss says how it was trained); **Train** retrains with the settings below, which start at the "
           "default recipe (the one `toydiff toy train` uses).")


def with_recipe_defaults(dataset: str) -> None:
    """Put the data set's default recipe into the widgets when the data set changes (edits stay until then)."""
    if st.session_state.get("toy_recipe_of") != dataset:
        st.session_state.update(recipe_widget_values(dataset))
        st.session_state["toy_recipe_of"] = dataset


def default_steps(T: int) -> int:
    """The sampler's default steps for a model of ``T`` steps: every step for T ≤ 250, else 50 respaced."""
    return T if T <= 250 else 50


def reset_sampler_for(run_id: int, T: int) -> None:
    """Put the sampler settings back to their defaults (ddpm, every step up to 250, the method's spacing) when
    the model (and so possibly the data set and T) changed since the last run of the page: settings tuned for
    one model — dpm++2m at 4 steps, say — can send another model's samples far off the chart."""
    seen = st.session_state.get("toy_sampler_of")
    st.session_state["toy_sampler_of"] = run_id
    if seen is None or seen == run_id:
        return
    st.session_state.update({"toy_method": "ddpm", f"toy_steps_{T}": default_steps(T), "toy_steps": default_steps(T),
                             "toy_spacing": SPACINGS[0], "toy_eta": 0.0, "toy_var": "beta"})


# --- 1 · data, model, schedule ---------------------------------------------------------------------------
st.subheader("1 · Data, model, schedule")
url_state.restore("toy", URL_SPEC)
url_state.defaults(URL_SPEC)
dataset = st.selectbox("Data set", NAMES, key="toy_dataset", help="'drawn': draw your own 2-D points below; they become a Gaussian KDE")
recipe = recipe_for(dataset)
with_recipe_defaults(dataset)
c1, c2 = st.columns([3, 2])
with c1:
    if dataset == DRAWN:
        draw_section()
    ds = None
    if dataset != DRAWN or len(drawn_points()) > 2:
        with readable_errors("Making the data set"):
            ds = get_data(dataset)
            st.caption(ds.description)
            if dataset != DRAWN:
                fig, x = data_view((dataset,), ds, 2000, 0)
                show_chart(fig, key="toy_data_chart")
                downloads(f"{dataset}_data", key="toy_data_dl", png=lambda: data_png(ds, x),
                          csv=csv_bytes(x, ["x", "y"][: ds.dim]))
with c2:
    spec = schedule_picker(f"toy_sched_{dataset}", label="Schedule",
                           default=spec_of(recipe.schedule_name, **dict(recipe.schedule_params)))
    schedule = schedule_or_error(spec, "Schedule")

# --- 2 · train (every setting in one form: editing is not a rerun) --------------------------------------
st.subheader("2 · Train")
section_notes(r"\min_\theta\ \mathbb E_{t,\,x_0,\,\varepsilon}\big\|\varepsilon - \hat\varepsilon_\theta\big("
              r"\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\ t\big)\big\|^2",
              "Edit the settings freely (nothing runs until Train). The held-out curve should fall onto the dashed "
              "Bayes-optimal floor; the right panel shows which t still cost the most.",
              "Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models (Algorithm 1)")
with st.form("toy_train_form"):
    c1, c2, c3, c4 = st.columns(4)
    width = c1.select_slider("Hidden width", [16, 32, 64, 128, 256, 512], key="toy_width")
    depth = c2.slider("Hidden layers", 1, 4, key="toy_depth")
    activation = c3.selectbox("Activation", ["silu", "tanh", "relu", "gelu"], key="toy_act")
    time_input = c4.radio("Time input", ["sinusoidal", "raw"], horizontal=True, key="toy_time",
                          help="sinusoidal: a 32-channel embedding; raw: t as one number concatenated to x")
    c1, c2, c3, c4, c5 = st.columns(5)
    epochs = c1.slider("Epochs", 1, 400, key="toy_epochs", help="each epoch draws fresh training points")
    n_train = c2.select_slider("Training points", [1000, 2000, 5000, 10000, 20000, 40000], key="toy_ntrain")
    batch_size = c3.select_slider("Batch size", [32, 64, 128, 256, 512, 1024], key="toy_batch")
    lr = c4.select_slider("Peak learning rate", [3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2], key="toy_lr")
    seed = int(c5.number_input("Seed", 0, 10_000, 0, key="toy_seed"))
    t_sampling = st.radio(
        "Training steps t", ["uniform", "low-noise"], horizontal=True, key="toy_tsampling",
        help="uniform: t ~ U{0, …, T−1} (Ho et al. 2020). low-noise: P(t) ∝ 1/√(t+1), three times more of the last "
             "tenth of the steps (both families' default): narrow 2-D modes need it, and in 1-D the last "
             "steps set the modes' means and spread.")
    go_train = st.form_submit_button("Train", type="primary", key="toy_train", disabled=schedule is None or ds is None)
if go_train:
    st.session_state["toy_training"] = True
    with readable_errors("Training"):
        model_config = MLPConfig(dim=ds.dim, width=width, depth=depth, activation=activation, time_input=time_input)
        cfg = recipe.train_config(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, t_sampling=t_sampling)
        st.session_state[TOY_RUN_KEY] = train(ds, spec, model_config, cfg, n_train)
    st.session_state["toy_training"] = False
elif st.session_state.get("toy_training"):
    st.session_state["toy_training"] = False
    st.warning("Training was stopped; the previous model is kept.", icon="⏹️")

trained = run_for(dataset) or toy_run()
if trained is None:
    st.info("No model for this data set yet: press **Train** (the default recipe is filled in).")
    url_state.publish(URL_SPEC[:1])
    st.stop()
st.success(f"Model #{trained.run_id}: {trained.summary}" + (f"; trained in {trained.seconds:.1f} s." if trained.seconds
           else ".") + " It is also available on the Motion page.", icon="✅")
if trained.dataset != dataset or trained.schedule_spec != spec:
    st.caption("The settings above differ from this model's; press Train to retrain. Everything below uses this model.")

# --- loss --------------------------------------------------------------------------------------------------
h = trained.run.history
m1, m2, m3, m4 = st.columns(4)
m1.metric("Final train loss", f"{h.train_loss[-1]:.4f}", help="averaged over the training t-distribution, live weights")
m2.metric("Final held-out loss", f"{h.val_loss[-1]:.4f}", help="averaged over uniform t, EMA weights: comparable with the floor")
m3.metric("Bayes-optimal floor", "—" if h.floor is None else f"{h.floor:.4f}", help="E_t E‖ε − ε*‖² / D under uniform t")
m4.metric("Held-out − floor", "—" if h.floor is None else f"{h.val_loss[-1] - h.floor:+.4f}")
st.caption(loss_gap_note(trained.run.metadata, h.train_loss[-1], h.val_loss[-1], h.records[-1].get("val_by_bucket")))
with readable_errors("Drawing the loss curves"):
    show_chart(loss_curves_plotly(h, title=trained.dataset), key="toy_loss_chart")

# --- 3 · ε̂ vs ε* ------------------------------------------------------------------------------------------
st.subheader("3 · Learned ε̂ against the exact ε*")
section_notes(r"\mathcal L(\theta) = \mathbb E_{t,x_0,\varepsilon}\,\|\varepsilon - \hat\varepsilon_\theta(x_t,t)\|^2"
              r" \;\ge\; \mathbb E_{t,x_t}\,\|\varepsilon^* - \varepsilon\|^2,\quad \varepsilon^* = \mathbb E[\varepsilon\mid x_t]",
              "The loss can only reach the floor by matching ε* where x_t lives (shaded): far from the data the "
              "network is free to be wrong. Slide t to see where the gap is largest.",
              "Ho, Jain & Abbeel 2020 (eq. 14); Vincent 2011 (denoising score matching)")
if trained.oracle is None:
    st.caption("This data set has no closed-form density, so only the learned field is shown.")
T = trained.run.schedule.T
t_cmp = st.slider("Step t", 0, T - 1, min(T - 1, T // 10), key=f"toy_tcmp_{T}")
with readable_errors("Comparing ε̂ with ε*"):
    fig_e, gap = eps_compare(trained.run_id, trained, int(t_cmp))
    c1, c2 = st.columns([1, 3])
    if gap is not None:
        c1.metric(f"E‖ε̂ − ε*‖² / D over x_t ~ p_t at t = {t_cmp}", f"{gap:.4g}")
        c1.caption("How far the learned noise prediction is from the optimal one, averaged over where x_t "
                   "actually lives at this step.")
    show_chart(fig_e, key="toy_eps_chart", container=c2)

# --- 4 · sample (settings in a form: one rerun per Sample press) ------------------------------------------
st.subheader("4 · Sample")
section_notes(r"x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\hat\varepsilon(x_t,t)\Big)"
              r" + \sigma_t z",
              "Red samples over the blue exact density; hover to read points. The table puts each metric beside the "
              "same metric between two true sets of this size: single runs scatter around that reference.",
              "Ho et al. 2020 (Algorithm 2); Song, Meng & Ermon 2021 (DDIM); Karras et al. 2022; Lu et al. 2022 (DPM-Solver++)")
reset_sampler_for(trained.run_id, T)
with st.form("toy_sample_form"):
    c1, c2, c3, c4, c5 = st.columns(5)
    method = c1.selectbox("Sampler", METHODS, key="toy_method")
    st.session_state.setdefault(f"toy_steps_{T}", min(T, st.session_state.get("toy_steps") or default_steps(T)))
    steps = int(c2.slider("Steps", 1, T, key=f"toy_steps_{T}",
                          help="Default: every step for T ≤ 250 (the seed exercise), else 50 respaced steps"))
    spacing_choice = c3.selectbox("Spacing", SPACINGS, key="toy_spacing",
                                  help="the method's own default: logsnr for dpm++2m, linspace for the others")
    n = int(c4.select_slider("Samples", SAMPLES, key="toy_n"))
    sample_seed = int(c5.number_input("Sampling seed", *url_state.BOUNDS["seed"], key="toy_sseed"))
    c1, c2 = st.columns(2)
    eta = float(c1.slider("DDIM η (ddim only; 0 = deterministic)", 0.0, 1.0, 0.0, 0.1, key="toy_eta"))
    variance = c2.radio("DDPM variance (ddpm only)", ["beta", "posterior"], horizontal=True, key="toy_var")
    st.form_submit_button("Sample", key="toy_sample")
spacing = td.sampling.REGISTRY[method].default_spacing if spacing_choice == SPACINGS[0] else spacing_choice
eta = eta if method == "ddim" else 0.0
variance = variance if method == "ddpm" else "beta"

with readable_errors("Sampling"):
    res = toy_samples(trained.run_id, trained, method, steps, spacing, eta, variance, n, sample_seed)
    key = (method, steps, spacing, eta, variance, n, sample_seed)
    f_samples, png_samples, f_traj, png_traj = sample_figures(trained.run_id, res, trained.run.dataset, key)
    m1, m2, m3 = st.columns(3)
    m1.metric("Network evaluations", res["nfe"])
    m2.metric("Sampling time", f"{res['seconds'] * 1000:.0f} ms")
    rep = res["report"]
    if rep is not None:
        head = "wasserstein1" if "wasserstein1" in rep else "sliced_wasserstein"
        m3.metric(f"{head} (two true sets: {rep[head]['floor']:.3g})", f"{rep[head]['value']:.3g}")
    c1, c2 = st.columns(2)
    show_chart(f_samples, key="toy_samples_chart", container=c1)
    show_chart(f_traj, key="toy_traj_chart", container=c2)
    downloads(f"{trained.dataset}_{method}_samples", key="toy_samples_dl", png=png_samples,
              csv=csv_bytes(res["samples"], ["x", "y"][: trained.run.dataset.dim]), container=c1)
    downloads(f"{trained.dataset}_{method}_trajectories", key="toy_traj_dl", png=png_traj, container=c2)
    st.markdown(f"**Metrics against the truth.** Each reference is the same metric between two independent true sets "
                f"of {n:,} points: a sampler matches the truth when its value sits near it (one seed: expect scatter "
                "of the size of the reference itself for the distances).")
    if rep is not None:
        markdown_table(report_rows(rep))
    else:
        st.info(f"Metrics not available yet: {res['report_error']}", icon="⏳")

st.session_state["toy_steps"] = steps  # the slider's key names T; the URL's "steps" does not
url_state.publish(URL_SPEC)
