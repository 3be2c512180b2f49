"""Image lab: SDEdit (a test digit or your PNG), inpainting a rectangle, visual anagrams and hybrid images,
each an ``image_track.lab`` experiment on a class-conditional MNIST checkpoint."""

from __future__ import annotations

import hashlib
import math
import tempfile
from pathlib import Path

import streamlit as st
import torch

import toydiff as td
from apps.common import url_state
from apps.charts import downloads, section_notes
from apps.common.models import checkpoint_picker, mnist_test, model_process
from apps.common.ui import fig_png, readable_errors, show_png
from image_track.lab.common import strided_timesteps

EXPERIMENTS = ("SDEdit", "Inpainting", "Anagrams", "Hybrids")
STRIDES = (10, 20, 30, 50, 100)
NOTES = {
    "SDEdit": (r"x_{t_0} = \sqrt{\bar\alpha_{t_0}}\,x + \sqrt{1-\bar\alpha_{t_0}}\,\varepsilon,\quad "
               r"\text{then sample } t_0 \to 0",
               "the higher the starting t, the more of the picture is noise and the freer the edit: low t keeps your "
               "digit, high t keeps only its rough layout and becomes the target class.",
               "Meng et al. 2022, SDEdit: Guided Image Synthesis and Editing with Stochastic Differential Equations"),
    "Inpainting": (r"x_{t'} \leftarrow m \odot q(x_{t'} \mid x) + (1-m) \odot x_{t'}",
                   "the known pixels are re-noised and pasted back after every step, so the model only invents the "
                   "hole; the fills differ but all join the kept strokes.",
                   "Lugmayr et al. 2022, RePaint: Inpainting using Denoising Diffusion Probabilistic Models"),
    "Anagrams": (r"\hat\varepsilon = \tfrac12\big(\varepsilon(x_t, a) + T^{-1}\varepsilon(T x_t, b)\big)",
                 "each sample reads as the first digit upright and as the second after the transform; the "
                 "classifier's verdict under each view says whether both readings landed.",
                 "Geng et al. 2024, Visual Anagrams: Generating Multi-View Optical Illusions with Diffusion Models"),
    "Hybrids": (r"\hat\varepsilon = \mathrm{lowpass}\big(\varepsilon(x_t, a)\big) + "
                r"\mathrm{highpass}\big(\varepsilon(x_t, b)\big)",
                "close up (top row) the fine strokes of one digit; the small copies below (seen from afar) keep only "
                "the low frequencies, which belong to the other.",
                "Geng et al. 2024, Factorized Diffusion: Perceptual Illusions by Noise Decomposition"),
}
NO_CLASS = "none (unconditional)"


# --- inputs --------------------------------------------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner=False)
def upload_tensor(data: bytes, name: str, size: int) -> torch.Tensor:
    """A user's image as an MNIST-like digit ``[1, 1, size, size]`` (image_track.images.load_png)."""
    from image_track.images import load_png

    suffix = Path(name).suffix or ".png"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return load_png(path, size=size)
        except ValueError as e:
            raise ValueError(f"{name} is not an image file that can be read ({e})".replace(str(path), name)) from None


def input_picker(key: str, size: int) -> tuple[str, torch.Tensor, str] | None:
    """A test digit or an uploaded image: ``(cache key, image [1, 1, size, size], caption)``."""
    c1, c2 = st.columns([1, 2])
    kind = c1.radio("Input", ["Test digit", "Upload an image"], key=f"{key}_input")
    if kind == "Test digit":
        digit = int(c2.selectbox("Digit", list(range(10)), index=3, key=f"{key}_digit"))
        nth = int(c2.slider("Which one (n-th test image of that digit)", 0, 20, 0, key=f"{key}_nth"))
        images, labels = mnist_test()
        idx = int(torch.nonzero(labels == digit)[nth])
        x = images[idx: idx + 1]
        if x.shape[-1] != size:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return f"test:{idx}", x.clone(), f"test image #{idx} ({digit})"
    up = c2.file_uploader("A picture of a digit (PNG, JPEG, …; dark on white is inverted automatically)",
                          key=f"{key}_upload")
    if up is None:
        st.info("Upload an image to edit it.", icon="ℹ️")
        return None
    data = up.getvalue()
    try:
        x = upload_tensor(data, up.name, size)
    except ValueError as e:
        st.error(f"**That upload cannot be used.** {e}", icon="🚫")
        return None
    return f"upload:{hashlib.sha256(data).hexdigest()[:16]}", x, up.name


def class_choice(label: str, key: str, default, container=None):
    c = container or st
    options = [NO_CLASS] + list(range(10))
    v = c.selectbox(label, options, index=options.index(default), key=key)
    return None if v == NO_CLASS else int(v)


# --- cached experiments (PNG bytes of the lab's own figures) -------------------------------------------


@st.cache_data(max_entries=32, show_spinner="Running SDEdit…")
def run_sdedit(mkey: str, _lm, ikey: str, _x: torch.Tensor, caption: str, target, w, i_starts: tuple, method: str,
               stride: int, seed: int) -> bytes:
    from image_track.lab.sdedit import plot_sdedit, sdedit

    res = sdedit(_lm, image=_x, target=target, w=w, i_starts=i_starts, method=method, stride=stride,
                 seed=seed)
    res.caption = caption
    return fig_png(plot_sdedit(res))


@st.cache_data(max_entries=32, show_spinner="Inpainting…")
def run_inpaint(mkey: str, _lm, ikey: str, _x: torch.Tensor, caption: str, rect: tuple, label, w, n: int,
                method: str, stride: int, seed: int) -> bytes:
    from image_track.lab.inpaint import inpaint, plot_inpaint

    res = inpaint(_lm, image=_x, rect=rect, label=label, w=w, n=n, method=method, stride=stride, seed=seed)
    res.caption = caption
    return fig_png(plot_inpaint(res))


@st.cache_data(max_entries=32, show_spinner="Sampling anagrams…")
def run_anagram(mkey: str, _lm, a: int, b: int, transform: str, w, n: int, method: str, stride: int, seed: int) -> bytes:
    from image_track.lab.anagram import anagram, plot_anagram

    return fig_png(plot_anagram(anagram(_lm, a=a, b=b, transform=transform, w=w, n=n, method=method,
                                        stride=stride, seed=seed)))


@st.cache_data(max_entries=32, show_spinner="Sampling hybrids…")
def run_hybrid(mkey: str, _lm, low: int, high: int, w, n: int, method: str, stride: int, seed: int,
               sigma: float) -> bytes:
    from image_track.lab.hybrid import hybrid, plot_hybrid

    kernel = min(27, 2 * math.ceil(3 * sigma) + 1)  # odd, ±3σ
    return fig_png(plot_hybrid(hybrid(_lm, low=low, high=high, w=w, n=n, method=method, stride=stride,
                                      seed=seed, sigma=sigma, kernel=kernel)))


# --- the page ------------------------------------------------------------------------------------------

st.title("Image lab")
st.caption("Editing with a diffusion model, composed from toydiff's sampler layer: SDEdit noises a picture part-way "
           "and denoises it; inpainting projects the known pixels at every step; anagrams and hybrids combine two "
           "class-conditional denoisers.")

#: the page's URL settings (apps.common.url_state)
URL_SPEC = (url_state.Param("ilab_experiment", str, EXPERIMENTS[0], choices=EXPERIMENTS),
            url_state.Param("ilab_method", str, "ddpm", choices=td.METHODS),
            url_state.Param("ilab_stride", int, 30, choices=STRIDES),
            url_state.Param("ilab_seed", int, 0, bounds="seed"))
url_state.restore("image_lab", URL_SPEC)
url_state.defaults(URL_SPEC)

picked = checkpoint_picker("ilab", conditional_only=True, needs_schedule=True)
if picked is None:
    st.stop()
lm, label, mkey = picked
st.caption(f"Checkpoint: {label} ({lm.schedule.name} schedule, T = {lm.schedule.T}).")

experiment = st.radio("Experiment", EXPERIMENTS, horizontal=True, key="ilab_experiment")
section_notes(*NOTES[experiment])
c1, c2, c3, c4 = st.columns(4)
method = c1.selectbox("Sampler", model_process(lm).methods, key="ilab_method")
stride = int(c2.select_slider("Stride between timesteps", STRIDES, key="ilab_stride",
                              help="The sampler visits T−1 rounded down to the stride, then every stride-th step to 0"))
seed = int(c3.number_input("Seed", *url_state.BOUNDS["seed"], key="ilab_seed"))
w_on = c4.toggle("Classifier-free guidance", value=True, key="ilab_w_on")
url_state.publish(URL_SPEC)

strided = strided_timesteps(lm.schedule.T, stride)


def show_figure(png: bytes, stem: str) -> None:
    show_png(png)
    downloads(stem, key=f"ilab_dl_{stem.split('_')[0]}", png=png)


if experiment == "SDEdit":
    st.subheader("SDEdit")
    picked_input = input_picker("ilab_sd", lm.image_size)
    c1, c2, c3 = st.columns(3)
    target = class_choice("Edit towards class", "ilab_sd_target", 8, c1)
    w = float(c2.slider("Guidance scale w", 0.0, 10.0, 5.0, 0.5, key="ilab_sd_w")) if w_on else None
    t_options = sorted(int(t) for t in strided)  # the strided timesteps, small (little noise) to large
    default_ts = sorted({int(strided[i]) for i in (1, 3, 5, 7, 10, 20) if i < len(strided)})
    start_ts = c3.multiselect("Start from noise level t (larger t = more noise, a bigger edit)", t_options,
                              default=default_ts, key=f"ilab_sd_ts_{stride}")
    index_of = {int(t): i for i, t in enumerate(strided)}
    if picked_input is not None and start_ts:
        ikey, x, caption = picked_input
        with readable_errors("SDEdit"):
            i_starts = tuple(sorted(index_of[t] for t in start_ts))  # noisiest first, as the lab's figure reads
            show_figure(run_sdedit(mkey, lm, ikey, x, caption, target, w, i_starts, method, stride, seed), "sdedit")
    elif not start_ts:
        st.info("Pick at least one starting noise level t.")

elif experiment == "Inpainting":
    st.subheader("Inpainting a rectangle (RePaint-style projection)")
    picked_input = input_picker("ilab_in", lm.image_size)
    size = lm.image_size
    c1, c2, c3, c4 = st.columns(4)
    top = int(c1.slider("Top", 0, size - 1, 0, key="ilab_in_top"))
    left = int(c2.slider("Left", 0, size - 1, 0, key="ilab_in_left"))
    height = int(c3.slider("Height", 1, size, size // 2, key="ilab_in_h"))
    width = int(c4.slider("Width", 1, size, size, key="ilab_in_w"))
    h_fit, w_fit = min(height, size - top), min(width, size - left)
    if (h_fit, w_fit) != (height, width):
        st.caption(f"The rectangle is clipped to the image: {h_fit} × {w_fit} pixels.")
    c1, c2, c3 = st.columns(3)
    label_in = class_choice("Fill the hole as class", "ilab_in_label", NO_CLASS, c1)
    w = float(c2.slider("Guidance scale w", 0.0, 10.0, 3.0, 0.5, key="ilab_in_w_scale")) \
        if w_on and label_in is not None else None
    n = int(c3.slider("Inpaintings", 1, 6, 4, key="ilab_in_n"))
    if picked_input is not None:
        ikey, x, caption = picked_input
        with readable_errors("Inpainting"):
            show_figure(run_inpaint(mkey, lm, ikey, x, caption, (top, left, h_fit, w_fit), label_in, w, n, method,
                                    stride, seed), "inpainting")

elif experiment == "Anagrams":
    st.subheader("Visual anagrams: one picture, two digits")
    c1, c2, c3, c4, c5 = st.columns(5)
    a = int(c1.selectbox("Reads as", list(range(10)), index=6, key="ilab_an_a"))
    b = int(c2.selectbox("…and when transformed as", list(range(10)), index=9, key="ilab_an_b"))
    transform = c3.selectbox("Transform", ["rot180", "hflip", "identity"], key="ilab_an_t")
    w = float(c4.slider("Guidance scale w", 0.0, 10.0, 3.0, 0.5, key="ilab_an_w")) if w_on else None
    n = int(c5.slider("Samples", 1, 6, 4, key="ilab_an_n"))
    with readable_errors("Anagrams"):
        show_figure(run_anagram(mkey, lm, a, b, transform, w, n, method, stride, seed), f"anagram_{a}_{b}")

else:
    st.subheader("Hybrid images: one digit from afar, another close up")
    c1, c2, c3, c4, c5 = st.columns(5)
    low = int(c1.selectbox("From afar (low frequencies)", list(range(10)), index=1, key="ilab_hy_low"))
    high = int(c2.selectbox("Close up (high frequencies)", list(range(10)), index=7, key="ilab_hy_high"))
    sigma = float(c3.slider("Low-pass blur σ (pixels)", 0.5, 4.0, 2.0, 0.25, key="ilab_hy_sigma",
                            help="The split between the two digits. At the lab's own 0.875 px almost everything is "
                                 "'low', and the far digit wins close up too (four plain 1s for 1 / 7)."))
    w = float(c4.slider("Guidance scale w", 0.0, 10.0, 3.0, 0.5, key="ilab_hy_w")) if w_on else None
    n = int(c5.slider("Samples", 1, 6, 4, key="ilab_hy_n"))
    with readable_errors("Hybrids"):
        show_figure(run_hybrid(mkey, lm, low, high, w, n, method, stride, seed, sigma), f"hybrid_{low}_{high}")
