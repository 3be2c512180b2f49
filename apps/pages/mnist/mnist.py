"""MNIST: pick a checkpoint (committed, found under runs/, or uploaded), generate a grid with class and guidance
controls, watch the denoising progression (figure and GIF), sweep the guidance scale, and evaluate samples."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import streamlit as st
import torch

import numpy as np
from toydiff.processes.registry import all_methods

from apps.common import url_state
from apps.common.models import checkpoint_picker, load_path, mnist_test, model_process, process_facts
from apps.common.ui import fig_png, readable_errors, session_memo, show_png
from toydiff.toy.figures.motion import denoising_animation_plotly
from image_track import plots as image_plots

# --- cached work ---------------------------------------------------------------------------------------


def labels_for(lm, digits: tuple[int, ...], n: int) -> torch.Tensor | None:
    if not lm.conditional:
        return None
    return torch.tensor(digits, dtype=torch.long).repeat(-(-n // len(digits)))[:n]


def guide_kw(guide, ag_w: float | None) -> dict:
    """Autoguidance arguments for ``generate``: none at w = 1 or without a guide model."""
    from image_track.sampling import AUTOGUIDANCE_T_MAX

    if guide is None or ag_w is None or ag_w == 1:
        return {}
    return {"guide": guide, "w": ag_w, "guide_t_max": AUTOGUIDANCE_T_MAX}


@st.cache_data(max_entries=32, show_spinner="Generating…")
def grid(key: str, _lm, n: int, digits: tuple[int, ...], w: float | None, method: str, steps: int, eta: float,
         seed: int, ag_w: float | None = None, _guide=None) -> tuple[bytes, bytes]:
    """The samples as a PNG grid and as a ``.npy`` array ``[n, 1, 28, 28]`` in [-1, 1]."""
    from image_track.sampling import generate, grid_image

    x = generate(_lm.model, _lm.process, n, labels=labels_for(_lm, digits, n), method=method, steps=steps,
                 eta=eta, seed=seed, **(guide_kw(_guide, ag_w) or {"w": w}))
    nrow = len(digits) if _lm.conditional and len(digits) > 1 else min(10, n)
    buf, arr = io.BytesIO(), io.BytesIO()
    grid_image(x, nrow=nrow, scale=4).save(buf, format="PNG")
    np.save(arr, x.numpy())
    return buf.getvalue(), arr.getvalue()


@st.cache_data(max_entries=16, show_spinner="Recording the denoising…")
def denoise_frames(key: str, _lm, digit: int | None, w: float | None, method: str, steps: int, eta: float,
                   seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """x_t and x̂_0 ``[S + 1, 28, 28]`` of one sample at every sampler step, then the final sample (t = −1 marks
    it), for the client-side animation."""
    from image_track import sampling

    labels = None if digit is None else torch.full((1,), digit)
    rec = sampling.record_progression(_lm.model, _lm.process, 1, labels=labels, w=w, method=method, steps=steps,
                                      seed=seed)
    final = rec.final[0, 0].numpy()
    xt = np.concatenate([rec.x_t[:, 0, 0].numpy(), final[None]])
    x0 = np.concatenate([rec.x0_hat[:, 0, 0].clamp(-1, 1).numpy(), final[None]])
    steps_are_ints = model_process(_lm).schedule is not None  # a schedule's steps; a path's t is a float in [0, 1]
    return xt, x0, [int(t) if steps_are_ints else round(float(t), 3) for t in rec.timesteps] + [-1]


@st.cache_data(max_entries=16, show_spinner="Sweeping the guidance scale…")
def sweep(key: str, _lm, ws: tuple[float, ...], method: str, steps: int, seed: int) -> bytes:
    from image_track.sampling import guidance_sweep_figure

    return fig_png(guidance_sweep_figure(_lm.model, _lm.process, ws, per_digit=2, seed=seed, method=method,
                                         steps=steps))


@st.cache_data(max_entries=16, show_spinner="Drawing the progression strip and GIF…")
def progression(key: str, _lm, digit: int | None, w: float | None, method: str, steps: int, seed: int,
                frames: int) -> tuple[bytes, bytes]:
    """The exported forms of the denoising: a strip of ``frames`` steps (PNG) and every step (GIF)."""
    from image_track import sampling

    labels = None if digit is None else torch.full((4,), digit)
    keep = sampling.evenly_spaced_steps(steps, frames)
    sub = sampling.record_progression(_lm.model, _lm.process, 4, labels=labels, w=w, method=method, steps=steps,
                                      seed=seed, keep_steps=keep)
    fig = sampling.progression_figure(sub, 0)
    fig.suptitle("x_t (top) and the model's estimate x̂_0 (bottom) as sampling proceeds", fontsize=10)
    png = fig_png(fig)
    rec = sampling.record_progression(_lm.model, _lm.process, 4, labels=labels, w=w, method=method, steps=steps,
                                      seed=seed)  # every step, for a smooth GIF
    with tempfile.TemporaryDirectory() as d:
        gif = sampling.progression_gif(rec, Path(d) / "progression.gif", scale=3).read_bytes()
    return png, gif


@st.cache_data(max_entries=8, show_spinner="Measuring the FID floor (train vs test digits)…")
def fid_floor(n: int) -> float:
    from image_track.evaluate import fid_floor as floor

    return floor(n)


def evaluate(key: str, lm, n: int, w: float | None, method: str, steps: int, seed: int,
             ag_w: float | None = None, guide=None) -> dict:
    """FID, its floor, class accuracy and histogram of ``n`` samples (remembered for this session's last few
    settings: the progress widgets it draws would not replay from ``st.cache_data``)."""
    return session_memo("mnist_eval", (key, n, w, method, steps, seed, ag_w),
                        lambda: _evaluate(lm, n, w, method, steps, seed, ag_w, guide), max_entries=8)


def _evaluate(lm, n: int, w: float | None, method: str, steps: int, seed: int, ag_w: float | None, guide) -> dict:
    from image_track import evaluate as ev
    from image_track.sampling import generate

    labels = labels_for(lm, tuple(range(10)), n)
    with st.status(f"Evaluating {n} samples…", expanded=True) as status:
        bar = st.progress(0.0)
        total = [0]
        per_batch = steps  # sampler steps (callbacks) per batch
        n_batches = -(-n // 50)

        def tick(info: dict) -> None:
            total[0] += 1
            bar.progress(min(1.0, total[0] / (per_batch * n_batches)), text=f"sampling: step {total[0]}")

        x = generate(lm.model, lm.process, n, labels=labels, method=method, steps=steps, seed=seed,
                     batch_size=50, callback=tick, **(guide_kw(guide, ag_w) or {"w": w}))
        st.write("scoring with the MNIST classifier…")
        ref, _ = mnist_test()
        hist = ev.class_histogram(x)
        out = {"fid": ev.fid_mnist(x, ref[:n]), "floor": fid_floor(n), "confident": ev.confident_fraction(x),
               "accuracy": None if labels is None else ev.conditional_accuracy(x, labels),
               "hist": hist.numpy(), "kl": ev.kl_to_uniform(hist)}
        status.update(label=f"Evaluated {n} samples", state="complete", expanded=False)
    return out


# --- the page ------------------------------------------------------------------------------------------

st.title("MNIST")
st.latex(r"\tilde\varepsilon(x_t, t, c) = \varepsilon(x_t, t, \varnothing) + w\,\big(\varepsilon(x_t, t, c) - "
         r"\varepsilon(x_t, t, \varnothing)\big),\qquad \hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,"
         r"\tilde\varepsilon}{\sqrt{\bar\alpha_t}}")
st.markdown("**What to look at:** the image track's UNets go through the same toydiff samplers as the 1-D toys; play "
            "the denoising and watch x̂_0 settle on a digit long before x_t stops looking like noise, and raise w "
            "to trade variety for legibility.  \n**Papers:** Ho et al. 2020 (DDPM), Song et al. 2021 (DDIM), "
            "Ho & Salimans 2022 (classifier-free guidance), Karras et al. 2024 (autoguidance).")

#: the page's URL settings (apps.common.url_state); the sampler is checked again against the model's process
URL_SPEC = (url_state.Param("mnist_method", str, "ddim", choices=all_methods()),
            url_state.Param("mnist_steps", int, 25, bounds="mnist_steps"),
            url_state.Param("mnist_n", int, 10, choices=(10, 20, 30, 40)),
            url_state.Param("mnist_seed", int, 0, bounds="seed"),
            url_state.Param("mnist_w", float, 3.0, bounds="mnist_w"))
url_state.restore("mnist", URL_SPEC)

picked = checkpoint_picker("mnist")
if picked is None:
    st.stop()
lm, label, key = picked
process = model_process(lm)
cfg = lm.model.config
n_params = sum(p.numel() for p in lm.model.parameters())
m1, m2, m3, m4, m5, m6 = st.columns(6)
m1.metric("Model", cfg.get("name", "?"))
m2.metric("Parameters", f"{n_params / 1e3:.0f}k")
m3.metric("Classes", f"{lm.num_classes} + null" if lm.conditional else "none")
for col, (name, value) in zip((m4, m5), process_facts(process).items()):
    col.metric(name, value)
m6.metric("Trained steps", lm.metadata.get("step", "—"))
st.caption(f"Checkpoint: {label}; {process.describe()}. It samples with its process's samplers: "
           f"{', '.join(process.methods)}.")

st.subheader("Generate")
methods = process.methods
# a schedule bounds the steps by its T; a continuous path does not (its ODE samplers converge well within 50)
hi = min(url_state.BOUNDS["mnist_steps"][1], process.schedule.T) if process.schedule is not None else 50
url_state.defaults({**{p.key: p.default for p in URL_SPEC}, "mnist_steps": min(25, hi)})
if st.session_state.get("mnist_method") not in methods:  # e.g. ddim kept from a DDPM checkpoint
    st.session_state["mnist_method"] = "ddim" if "ddim" in methods else process.default_method
if st.session_state.get("mnist_steps", 1) > hi:
    st.session_state["mnist_steps"] = min(process.default_steps or hi, hi)
c1, c2, c3, c4 = st.columns(4)
method = c1.selectbox("Sampler", methods, key="mnist_method")
steps = int(c2.slider("Steps", 1, hi, key="mnist_steps")) if hi > 1 else 1
n = int(c3.select_slider("Images", [10, 20, 30, 40], key="mnist_n"))
seed = int(c4.number_input("Seed", *url_state.BOUNDS["seed"], key="mnist_seed"))
eta = 0.0
if method == "ddim":
    eta = float(st.slider("DDIM η", 0.0, 1.0, 0.0, 0.1, key="mnist_eta"))
digits: tuple[int, ...] = tuple(range(10))
w = None
if lm.conditional:
    c1, c2 = st.columns([2, 1])
    digits = tuple(sorted(c1.multiselect("Classes", list(range(10)), default=list(range(10)), key="mnist_digits"))) \
        or tuple(range(10))
    w = float(c2.slider("Guidance scale w (0 = unconditional, 1 = conditional)", 0.0, 10.0, step=0.5, key="mnist_w"))
guide, ag_w = None, None
if not lm.conditional and label.startswith("committed"):
    from image_track.sampling import AUTOGUIDANCE_T_MAX, default_guide

    if default_guide().is_file():
        ag_w = float(st.slider(
            "Autoguidance w (1 = off): extrapolate away from an early snapshot of the same training run "
            f"(Karras et al. 2024), at steps t < {AUTOGUIDANCE_T_MAX}", 1.0, 5.0, 1.0, 0.5, key="mnist_ag_w"))
        guide = load_path(default_guide()).model if ag_w != 1 else None
url_state.publish(URL_SPEC)
with readable_errors("Generating"):
    png, npy = grid(key, lm, n, digits, w, method, steps, eta, seed, ag_w, guide)
    st.image(png, caption=f"{n} samples, {method}, {steps} steps" + ("" if w is None else f", w = {w:g}")
             + ("" if not guide else f", autoguidance w = {ag_w:g}")
             + (f"; each column cycles through classes {list(digits)}" if lm.conditional else ""))
    c1, c2 = st.columns(2)
    c1.download_button("Download the grid (PNG)", png, "mnist_samples.png", "image/png", key="mnist_grid_dl")
    c2.download_button("Download the samples (.npy, [n, 1, 28, 28] in [-1, 1])", npy, "mnist_samples.npy",
                       "application/octet-stream", key="mnist_npy_dl")

st.subheader("Denoising, step by step")
st.markdown("**What to look at:** press ▶ Play (it runs in your browser, no recomputation): on the left the sample "
            "x_t the sampler holds, on the right its current guess of the clean digit x̂_0. The slider scrubs t.")
c1, c2 = st.columns([1, 3])
prog_digit = None
if lm.conditional:
    prog_digit = int(c1.selectbox("Digit", list(range(10)), index=3, key="mnist_prog_digit"))
with readable_errors("Recording the denoising"):
    xt, x0, ts = denoise_frames(key, lm, prog_digit, w, method, steps, eta, seed)
    c2.plotly_chart(denoising_animation_plotly(xt, x0, ts), key="mnist_anim")
if st.toggle("The same as a still strip and a GIF (for export)", value=False, key="mnist_strip_on"):
    frames = int(st.slider("Frames in the strip", 4, 12, 8, key="mnist_frames"))
    with readable_errors("Recording the progression"):
        strip, gif = progression(key, lm, prog_digit, w, method, steps, seed, frames)
        c1, c2 = st.columns([3, 1])
        show_png(strip, container=c1)
        c1.download_button("Download the strip (PNG)", strip, "progression.png", "image/png", key="mnist_strip_dl")
        c2.image(gif, caption="x_t above x̂_0, every step (GIF)")
        c2.download_button("Download the GIF", gif, file_name="progression.gif", mime="image/gif", key="mnist_gif_dl")

if lm.conditional:
    st.subheader("Guidance sweep")
    st.caption("Two samples of each digit (columns) per guidance scale (rows), the same seeds in every row.")
    with st.form("mnist_sweep_form"):
        ws = st.multiselect("Guidance scales", [0.0, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0], default=[0.0, 1.0, 3.0, 7.0],
                            key="mnist_ws")
        run_sweep = st.form_submit_button("Run the sweep")
    if run_sweep or st.session_state.get("mnist_sweep_done") == (key, tuple(ws)):
        if ws:
            st.session_state["mnist_sweep_done"] = (key, tuple(ws))
            with readable_errors("The guidance sweep"):
                sweep_png = sweep(key, lm, tuple(sorted(ws)), method, steps, seed)
                show_png(sweep_png)
                st.download_button("Download the sweep (PNG)", sweep_png, "guidance_sweep.png", "image/png",
                                   key="mnist_sweep_dl")
        else:
            st.info("Pick at least one guidance scale.")

st.subheader("Evaluation")
st.caption("Fréchet distance in the committed MNIST classifier's feature space (comparable within toydiff only), "
           "next to its floor: the same distance between as many real training and test digits.")
c1, c2 = st.columns([1, 3])
n_eval = int(c1.select_slider("Samples to score", [50, 100, 200, 500], value=100, key="mnist_neval"))
if c2.toggle("Evaluate (samples all ten digits; takes a while on a CPU)", value=False, key="mnist_eval_on"):
    with readable_errors("Evaluation"):
        r = evaluate(key, lm, n_eval, w, method, steps, seed, ag_w, guide)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("FID (classifier features)", f"{r['fid']:.2f}", help="lower is better")
        m2.metric("FID floor (real vs real)", f"{r['floor']:.2f}")
        m3.metric("Requested class recognised", "—" if r["accuracy"] is None else f"{r['accuracy']:.0%}")
        m4.metric("Confident (p > 0.9)", f"{r['confident']:.0%}")
        if lm.conditional:
            st.caption("The class histogram of a conditional model follows the requested labels (all ten digits "
                       "equally), so its distance to uniform says nothing; *requested class recognised* is the test.")
        else:
            st.metric("KL(class histogram ‖ uniform)", f"{r['kl']:.3f} nats",
                      help="0 when all ten digits are equally common: mode coverage of an unconditional model")
        hist_png = fig_png(image_plots.class_histogram(r["hist"], n_eval))
        show_png(hist_png)
        st.download_button("Download the histogram (PNG)", hist_png, "class_histogram.png", "image/png",
                           key="mnist_hist_dl")
