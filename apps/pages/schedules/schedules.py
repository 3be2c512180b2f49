"""Schedules & forward process: β, ᾱ and SNR of two schedules, the exact forward marginals, noised digits,
the respaced (t, t_prev) pairs and the sinusoidal time embedding."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

import toydiff as td
from apps.common import url_state
from apps.charts import downloads, section_notes, show_chart
from apps.common.models import mnist_test
from apps.pages.schedules.widgets import ScheduleSpec, build_schedule, schedule_or_error, schedule_picker, spec_label, spec_of
from apps.pages.toy.data import dataset_names, describe_dataset, mixture_of
from apps.common.ui import fig_png, markdown_table, readable_errors, show_png
from image_track import plots as image_plots
from toydiff.toy.figures.schedules import (embedding_plotly, forward_density_mpl, schedule_curves_mpl,
                                           schedule_curves_plotly)


@st.cache_data(max_entries=32, show_spinner="Drawing the schedule curves…")
def curves_png(specs: tuple[ScheduleSpec, ...]) -> bytes:
    return fig_png(schedule_curves_mpl(*[build_schedule(s)[0] for s in specs], labels=[spec_label(s) for s in specs]))


@st.cache_data(max_entries=32, show_spinner="Computing the exact marginals q(x_t)…")
def forward_png(dataset: str, spec: ScheduleSpec, n_samples: int, n_panels: int, seed: int) -> bytes:
    fig = forward_density_mpl(mixture_of(dataset), build_schedule(spec)[0], n_samples=n_samples, n_panels=n_panels,
                                generator=torch.Generator().manual_seed(seed), units="data units")
    return fig_png(fig)


@st.cache_data(max_entries=32, show_spinner="Noising digits…")
def mnist_forward_png(spec: ScheduleSpec, ts: tuple[int, ...], n_digits: int, seed: int) -> bytes:
    images, labels = mnist_test()
    idx = [int(torch.nonzero(labels == d)[0]) for d in range(n_digits)]  # the first test image of digits 0, 1, ...
    title = (f"q_sample(x_0, t, ε) = √ᾱ_t x_0 + √(1 − ᾱ_t) ε on {spec_label(spec)} "
             "(gray scale clipped to [-1, 1])")
    return fig_png(image_plots.noised_digits(images[idx], build_schedule(spec)[0], ts,
                                             generator=torch.Generator().manual_seed(seed), title=title))


@st.cache_data(max_entries=64, show_spinner=False)
def plan_table(spec: ScheduleSpec, steps: int, spacing: str) -> list[dict]:
    s = build_schedule(spec)[0]
    sigmas = s.sigmas
    return [{"step": i, "t": t, "t_prev": tp, "ᾱ_t": s.alpha_bar(t), "ᾱ_prev": s.alpha_bar(tp),
             "σ_t (Karras)": float(sigmas[t])} for i, (t, tp) in enumerate(s.respace(steps, spacing).pairs)]


@st.cache_data(max_entries=32, show_spinner=False)
def curves_chart(specs: tuple[ScheduleSpec, ...]):
    series = []
    for spec in specs:
        s = build_schedule(spec)[0]
        series.append((spec_label(spec), s.betas.numpy(), s.alpha_bars.numpy(), s.snr.numpy()))
    return schedule_curves_plotly(series)


def plan_csv(table: list[dict]) -> bytes:
    keys = list(table[0])
    return ("\n".join([",".join(keys)] + [",".join(f"{r[k]}" for k in keys) for r in table]) + "\n").encode()


st.title("Schedules & forward process")
section_notes(r"q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\;(1-\bar\alpha_t)\,I\big),\qquad "
              r"\bar\alpha_t = \prod_{s \le t}(1-\beta_s),\qquad \mathrm{SNR}_t = \frac{\bar\alpha_t}{1-\bar\alpha_t}",
              "a schedule is data: β_t fixes ᾱ_t, the share of signal x_t keeps. Hover the curves to read ᾱ at any t: "
              "the linear schedule's ᾱ falls below ½ at t/T ≈ 0.26, the cosine one's at ≈ 0.5, so linear spends "
              "most of its steps on nearly pure noise.",
              "Ho et al. 2020 (linear, DDPM); Nichol & Dhariwal 2021 (cosine); Lin et al. 2024 (terminal SNR, trailing)")

_names = dataset_names(oracle_only=True)
#: the page's URL settings (apps.common.url_state)
URL_SPEC = (
    url_state.Param("sched_compare", bool, True),
    url_state.Param("fwd_dataset", str, "two_gaussians" if "two_gaussians" in _names else _names[0], choices=_names),
    url_state.Param("fwd_n", int, 2000, choices=tuple(range(500, 5001, 500))),
    url_state.Param("fwd_panels", int, 5, bounds="fwd_panels"),
    url_state.Param("plan_steps", int, 10, bounds="plan_steps"),
    url_state.Param("plan_spacing", str, td.schedules.SPACINGS[0], choices=td.schedules.SPACINGS),
    url_state.Param("emb_dim", int, 64, choices=(8, 16, 32, 64, 128, 256)),
)
url_state.restore("schedules", URL_SPEC)
url_state.defaults(URL_SPEC)

# --- two schedules side by side ---------------------------------------------------------------
st.subheader("β, ᾱ and SNR")
col_a, col_b = st.columns(2)
with col_a:
    spec_a = schedule_picker("sched_a", label="Schedule A", default=spec_of("linear", T=1000, beta_start=1e-4,
                                                                              beta_end=0.02))
with col_b:
    compare = st.toggle("Compare with a second schedule", key="sched_compare")
    spec_b = schedule_picker("sched_b", label="Schedule B", default=spec_of("cosine", T=1000, s=0.008)) if compare else None

sched_a = schedule_or_error(spec_a, "Schedule A")
sched_b = schedule_or_error(spec_b, "Schedule B") if spec_b is not None else None

if sched_a is not None:
    m1, m2, m3 = st.columns(3)
    m1.metric("A: ᾱ at the last step", f"{sched_a.alpha_bar(sched_a.T - 1):.2e}")
    if sched_b is not None:
        m2.metric("B: ᾱ at the last step", f"{sched_b.alpha_bar(sched_b.T - 1):.2e}")
    m3.metric("A: step where ᾱ falls below ½", int(np.searchsorted(-sched_a.alpha_bars.numpy(), -0.5)))
    with readable_errors("Drawing the schedule curves"):
        specs = (spec_a,) + ((spec_b,) if sched_b is not None else ())
        fig = curves_chart(specs)
        show_chart(fig, key="sched_chart")
        downloads("schedules", key="sched_dl", png=curves_png(specs), fig=fig)

# --- the forward process on a toy distribution ---------------------------------------------------
st.subheader("The forward process on a toy distribution")
section_notes(r"q(x_t) = \sum_k w_k\,\mathcal N\big(\sqrt{\bar\alpha_t}\,\mu_k,\; \bar\alpha_t \Sigma_k + "
              r"(1-\bar\alpha_t) I\big)",
              "the exact marginal of x_t is again a Gaussian mixture (GaussianMixture.noised): the heatmap is exact, "
              "the histograms are q_sample draws. The modes shrink towards 0 and blur into one N(0, I).",
              "Sohl-Dickstein et al. 2015; Ho et al. 2020 (eq. 4, the closed-form q(x_t | x_0))")
c1, c2, c3, c4 = st.columns(4)
names = dataset_names(oracle_only=True)
dataset = c1.selectbox("Distribution", names, key="fwd_dataset")
which = c2.radio("Schedule", ["A", "B"] if sched_b is not None else ["A"], horizontal=True, key="fwd_which")
n_samples = c3.slider("q_sample draws", 500, 5000, step=500, key="fwd_n")
n_panels = c4.slider("Panels (steps shown)", *url_state.BOUNDS["fwd_panels"], key="fwd_panels")
st.caption(describe_dataset(dataset))
fwd_spec = spec_a if which == "A" else spec_b
if (sched_a if which == "A" else sched_b) is not None:
    with readable_errors("Drawing the forward process"):
        fwd = forward_png(dataset, fwd_spec, n_samples, n_panels, 0)
        show_png(fwd)
        downloads(f"forward_{dataset}", key="fwd_dl", png=fwd)

# --- the forward process on MNIST digits ----------------------------------------------------------
st.subheader("The forward process on MNIST digits")
if sched_a is not None:
    T = (sched_a if which == "A" else sched_b).T
    c1, c2 = st.columns([3, 1])
    options = sorted({min(t, T - 1) for t in (0, 10, 25, 50, 100, 150, 250, 400, 500, 600, 750, 900, 999, 1999)})
    default_ts = sorted({min(t, T - 1) for t in (50, 250, 500, 750, T - 1)})
    ts = c1.multiselect("Steps t", options, default=default_ts, key=f"mnist_ts_{T}")
    n_digits = c2.slider("Digits", 1, 6, 3, key="mnist_n_digits")
    if ts:
        with readable_errors("Noising MNIST digits"):
            noised = mnist_forward_png(fwd_spec, tuple(sorted(ts)), n_digits, 0)
            show_png(noised, container=st.columns([3, 1])[0])
            downloads("noised_digits", key="mnist_fwd_dl", png=noised)
    else:
        st.info("Pick at least one step t.")

# --- respacing ---------------------------------------------------------------------------------------
st.subheader("Respacing: the (t, t_prev) pairs a sampler visits")
st.markdown("**What to look at.** a 10-step sampler visits 10 of the T timesteps; the spacing decides which. "
            "`trailing` starts at T − 1, `leading` (the DDIM paper's) never reaches it, `logsnr` spends its steps "
            "evenly in log signal-to-noise. Papers: Song et al. 2021 (DDIM); Lin et al. 2024; Lu et al. 2022.")
if sched_a is not None:
    c1, c2 = st.columns(2)
    st.session_state["plan_steps"] = min(int(st.session_state["plan_steps"]), sched_a.T)
    steps = int(c1.number_input("Sampler steps", 1, sched_a.T, key="plan_steps"))
    spacing = c2.selectbox("Spacing", td.schedules.SPACINGS, key="plan_spacing",
                           help="linspace: rounded linspace(T−1, 0); leading: floor(i·T/steps) (DDIM paper); "
                                "trailing: starts at T−1 (Lin et al. 2024)")
    with readable_errors("Respacing"):
        table = plan_table(spec_a, steps, spacing)
        downloads(f"plan_{steps}_{spacing}", key="plan_dl", csv=plan_csv(table))
        st.caption(f"Schedule A, {steps} steps, {spacing!r} spacing; t_prev = −1 is the clean sample (ᾱ = 1).")
        if len(table) > 60:
            st.caption(f"Showing the first 30 and last 30 of {len(table)} pairs.")
            table = table[:30] + table[-30:]
        markdown_table(table)

# --- time embedding ------------------------------------------------------------------------------------
st.subheader("The sinusoidal time embedding")
if sched_a is not None:
    st.caption("Each channel is sin or cos of t at its own frequency, from a period of 2π ≈ 6 steps down to periods "
               "of tens of thousands of steps; shown over the first 200 steps, where every frequency is resolved (over all of T the fast "
               "channels alias into a solid block). Hover a cell for its value.")
    dim = st.select_slider("Embedding width", [8, 16, 32, 64, 128, 256], key="emb_dim")
    with readable_errors("Drawing the embedding"):
        emb = embedding_plotly(int(dim), sched_a.T)
        show_chart(emb, key="emb_chart")
        downloads(f"embedding_{dim}", key="emb_dl", fig=emb)
url_state.publish(URL_SPEC)
