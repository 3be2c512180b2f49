"""Motion against the truth: the forward process, a particle cloud under any sampler and one particle under
three samplers, each played in the browser (Plotly frames: play / pause without a rerun) over the exact
density of x_t. All maths from :mod:`toydiff.toy.motion`; figures from :mod:`toydiff.toy.figures.motion`."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import streamlit as st
import torch

import toydiff as td
from apps.charts import csv_bytes, downloads, section_notes, show_chart
from apps.pages.toy.data import DRAWN, dataset_names, drawn_points, get_data
from apps.pages.motion.notes import SAMPLER_PARTICLES, race_summary, reverse_look_at
from apps.pages.toy.state import TrainedToy, run_for
from apps.common.ui import fig_png, readable_errors
from toydiff.toy import motion
from toydiff.toy.figures.motion import forward_animation_plotly, race_animation_plotly, reverse_animation_plotly
from toydiff.toy.figures.samples import trajectories_1d_mpl, trajectories_2d_mpl
from toydiff.toy.figures.schedules import forward_density_mpl
from apps.common import url_state
from toydiff.toy.run import ToyRun, oracle_run

METHODS = list(td.METHODS)

# --- what the page animates: a model (trained / shipped) or the oracle, in the model's normalised space -----


def source(dataset: str) -> tuple[ToyRun, TrainedToy | None]:
    """The run whose schedule / normalisation the page uses, and the trained model (None: oracle only)."""
    trained = None if dataset == DRAWN and not drawn_points() else run_for(dataset)
    if trained is not None:
        return trained.run, trained
    return oracle_run(get_data(dataset)), None


def data_key(dataset: str) -> tuple:
    """A cache key for the data set (drawn data: its points)."""
    return (dataset, tuple(map(tuple, drawn_points()))) if dataset == DRAWN else (dataset,)


@st.cache_resource(max_entries=8, show_spinner="Precomputing the forward frames…")
def forward_figure(key: tuple, _run: ToyRun, n: int, frames: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x0 = _run.normalizer.forward(_run.dataset.sample(n, g).double())
    mo = motion.forward_motion(x0, _run.schedule, frames=frames, generator=g)
    return mo, forward_animation_plotly(mo, _run.oracle, title=f"Forward process of {_run.dataset.name}")


@st.cache_resource(max_entries=8, show_spinner="Precomputing the reverse frames…")
def reverse_figure(key: tuple, _run: ToyRun, _trained: TrainedToy | None, method: str, steps: int, n: int,
                   denoiser: str, seed: int):
    oracle, s = _run.oracle, _run.schedule
    learned = _run.eps_fn() if _trained is not None else None
    eps_fn = oracle.eps_fn(s) if denoiser == "exact ε*" or learned is None else learned
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, _run.dataset.dim, generator=g, dtype=torch.float64)
    mo = motion.reverse_motion(eps_fn, x_T, s, method=method, steps=steps, generator=g)
    title = f"{method}, {len(mo.timesteps) - 1} steps with the {denoiser if learned is not None else 'exact ε*'}"
    if _run.dataset.dim == 1:
        return mo, forward_animation_plotly(mo, oracle, title=title, particles=SAMPLER_PARTICLES)
    fields = {**({"learned ε̂": learned} if learned is not None else {}), "exact ε*": oracle.eps_fn(s)}
    return mo, reverse_animation_plotly(mo, mixture=oracle, fields=fields, title=title)


@st.cache_resource(max_entries=8, show_spinner="Solving the exact PF-ODE…")
def race_figure(key: tuple, _run: ToyRun, _trained: TrainedToy | None, steps: int, denoiser: str, seed: int):
    oracle, s = _run.oracle, _run.schedule
    eps_fn = _run.eps_fn() if denoiser == "learned ε̂" and _trained is not None else oracle.eps_fn(s)
    x_T = torch.randn(1, _run.dataset.dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    race = motion.particle_race(oracle, s, x_T, eps_fn=eps_fn, steps=steps, seed=seed)
    return race, race_animation_plotly(race, mixture=oracle,
                                              title=f"One x_T (seed {seed}), {steps} steps; DDIM/DDPM with {denoiser}")


def frames_csv(mo: motion.Motion) -> bytes:
    """Long-form CSV: frame, t, then the coordinates of every particle at every frame."""
    f, n, d = mo.x.shape
    cols = np.column_stack([np.repeat(np.arange(f), n), np.repeat(mo.timesteps, n), mo.x.reshape(f * n, d)])
    return csv_bytes(cols, ["frame", "t"] + ["x", "y"][:d])


@contextmanager
def section_form(title: str, notes: tuple[str, str, str], key: str, n_columns: int, submit: str):
    """A section's subheader and notes (equation, what to look at, paper), then a borderless form ``{key}_form``
    whose ``n_columns`` columns are yielded and whose button ``submit`` (key ``{key}_go``) closes it."""
    st.subheader(title)
    section_notes(*notes)
    with st.form(f"{key}_form", border=False):
        yield st.columns(n_columns)
        st.form_submit_button(submit, key=f"{key}_go")


# --- the page ---------------------------------------------------------------------------------------------

st.title("Motion against the truth")
st.caption("Press ▶ Play under a figure: the frames are computed once and play in your browser. Every figure shows "
           "the exact density of x_t (blue) of the data set's Gaussian mixture, in the model's normalised units.")

names = dataset_names(oracle_only=True) + ([DRAWN] if len(drawn_points()) > 2 else [])
PARTICLES = (200, 500, 1000, 2000)
#: the page's URL settings (apps.common.url_state): short query names
URL_SPEC = (url_state.Param("mo_dataset", str, "8gaussians", choices=names, url="data"),
            url_state.Param("mo_fn", int, 1000, choices=PARTICLES, url="fn"),
            url_state.Param("mo_ff", int, 50, bounds="motion_frames", url="ff"),
            url_state.Param("mo_fs", int, 0, bounds="seed", url="fs"),
            url_state.Param("mo_rm", str, "ddim", choices=METHODS, url="rm"),
            url_state.Param("mo_rs", int, 50, bounds="motion_steps", url="rs"),
            url_state.Param("mo_rn", int, 2000, choices=PARTICLES, url="rn"),
            url_state.Param("mo_rseed", int, 0, bounds="seed", url="rseed"),
            url_state.Param("mo_cs", int, 50, bounds="motion_steps", url="cs"),
            url_state.Param("mo_cseed", int, 1, bounds="seed", url="cseed"))
url_state.restore("motion", URL_SPEC)
url_state.defaults(URL_SPEC)
if st.session_state["mo_dataset"] not in names:  # drawn points gone
    st.session_state["mo_dataset"] = URL_SPEC[0].default
dataset = st.selectbox("Data set", names, key="mo_dataset", help="data sets with an exact mixture; 'drawn' once you draw on the Toy page")
with readable_errors("Loading the data set"):
    run, trained = source(dataset)
    st.caption(("Model: " + trained.summary) if trained is not None else
               "No trained model for this data set: the animations use the exact ε* only.")
    dkey = data_key(dataset) + ((trained.run_id,) if trained else ())

with section_form("(a) Forward process: data → noise",
                  (r"x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\quad "
                   r"p_t(x) = \sum_k w_k\,\mathcal N\!\big(x;\ \sqrt{\bar\alpha_t}\,\mu_k,\ \bar\alpha_t\Sigma_k + (1-\bar\alpha_t) I\big)",
                   "Each particle keeps its own ε, so it slides from its data point to noise; the cloud fills the exact "
                   "density at every frame. The modes blur into one Gaussian well before t = T.",
                   "Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models (eq. 4)"),
                  "mo_fwd", 3, "Show the forward process") as (c1, c2, c3):
    n_fwd = c1.select_slider("Particles", PARTICLES, key="mo_fn")
    fr_fwd = c2.slider("Frames", *url_state.BOUNDS["motion_frames"], key="mo_ff")
    seed_fwd = int(c3.number_input("Seed", *url_state.BOUNDS["seed"], key="mo_fs"))
with readable_errors("The forward animation"):
    mo_f, fig_f = forward_figure(dkey, run, n_fwd, fr_fwd, seed_fwd)
    show_chart(fig_f, key="mo_fwd_chart")
    downloads("forward_process", key="mo_fwd_dl", fig=fig_f, csv=frames_csv(mo_f),
              png=lambda: fig_png(forward_density_mpl(run.oracle, run.schedule)))

with section_form("(b) Reverse process: a cloud under any sampler",
                  (r"\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon(x_t,t)}{\sqrt{\bar\alpha_t}},\qquad "
                   r"\varepsilon^*(x_t,t) = \mathbb E[\varepsilon\mid x_t] = -\sqrt{1-\bar\alpha_t}\,\nabla\log p_t(x_t)",
                   reverse_look_at(run.dataset.dim, (["learned ε̂"] if trained is not None else []) + ["exact ε*"]),
                   "Ho et al. 2020 (Algorithm 2); Song, Meng & Ermon 2021, DDIM; Karras et al. 2022"),
                  "mo_rev", 5, "Run the sampler") as (c1, c2, c3, c4, c5):
    method = c1.selectbox("Sampler", METHODS, key="mo_rm")
    steps = int(c2.slider("Steps", *url_state.BOUNDS["motion_steps"], key="mo_rs"))
    n_rev = c3.select_slider("Particles", PARTICLES, key="mo_rn")
    den_opts = ["learned ε̂", "exact ε*"] if trained is not None else ["exact ε*"]
    denoiser = c4.radio("Sampler uses", den_opts, key="mo_rd")
    seed_rev = int(c5.number_input("Seed", *url_state.BOUNDS["seed"], key="mo_rseed"))
with readable_errors("The reverse animation"):
    mo_r, fig_r = reverse_figure(dkey, run, trained, method, steps, n_rev, denoiser, seed_rev)
    show_chart(fig_r, key="mo_rev_chart")
    downloads("reverse_process", key="mo_rev_dl", fig=fig_r, csv=frames_csv(mo_r),
              png=lambda: fig_png(trajectories_2d_mpl(mo_r.x) if mo_r.x.shape[-1] == 2 else
                                  trajectories_1d_mpl(mo_r.x, list(mo_r.timesteps[:-1]), mixture=run.oracle)))

with section_form("(c) One particle: exact PF-ODE, DDIM and DDPM",
                  (r"\frac{dy}{d\sigma} = \varepsilon^*\!\Big(\frac{y}{\sqrt{1+\sigma^2}},\,t\Big),\quad "
                   r"y = \frac{x_t}{\sqrt{\bar\alpha_t}},\ \sigma = \sqrt{\tfrac{1-\bar\alpha_t}{\bar\alpha_t}}",
                   "DDIM is Euler's method on the PF-ODE of the ε it is given: with the exact ε* and enough steps it "
                   "follows the exact path (solved to 1e-6 by scipy); with the learned ε̂ it follows the network's ODE. "
                   "DDPM adds fresh noise each step. The line under the race says where each one ended.",
                   "Song et al. 2021, Score-Based Generative Modeling through SDEs; Song, Meng & Ermon 2021 (DDIM)"),
                  "mo_race", 3, "Race") as (c1, c2, c3):
    steps_c = int(c1.slider("Steps", *url_state.BOUNDS["motion_steps"], key="mo_cs"))
    den_c = c2.radio("DDIM / DDPM use", den_opts, key="mo_cd")
    seed_c = int(c3.number_input("Particle seed", *url_state.BOUNDS["seed"], key="mo_cseed"))
with readable_errors("The particle race"):
    race, fig_c = race_figure(dkey, run, trained, steps_c, den_c, seed_c)
    show_chart(fig_c, key="mo_race_chart")
    ends = {k: np.round(m.x[-1, 0], 3).tolist() for k, m in race.items()}
    st.caption("End points: " + "; ".join(f"{k} {v}" for k, v in ends.items()))
    st.info(race_summary(race, run.oracle, den_c if trained is not None else "exact ε*"), icon="🏁")
    downloads("particle_race", key="mo_race_dl", fig=fig_c,
              csv=csv_bytes(np.concatenate([m.x[:, 0] for m in race.values()], 1),
                            [f"{k} {c}" for k in race for c in ("x", "y")[: run.dataset.dim]]))

url_state.publish(URL_SPEC)
