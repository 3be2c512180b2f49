"""Sampler lab: every sampler on the exact oracle (or the Toy sandbox's trained model), distance to the truth
against the number of steps, and one x_T through ddpm, ddpm-no-noise and ddim side by side."""

from __future__ import annotations

import streamlit as st
import torch

import toydiff as td
from apps.schedule_widgets import schedule_or_error, schedule_picker, spec_of
from apps.toy_data import dataset_names, describe_dataset, load_dataset, mixture_of
from apps.toy_state import TrainedToy, toy_run
from apps.ui import fig_png, markdown_table, readable_errors, show_png
from toydiff.toy import metrics, plots

STEP_CHOICES = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)


class Source:
    """What is sampled: the exact denoiser of a data set's mixture, or the session's trained model.

    Everything happens in the denoiser's space (the trained model's is the normalised one); ``to_data``
    maps samples back to data space for figures.
    """

    def __init__(self, key: tuple, dataset: str, schedule: td.NoiseSchedule, trained: TrainedToy | None):
        self.key, self.dataset, self.schedule, self.trained = key, dataset, schedule, trained
        self.dim = load_dataset(dataset).dim

    def eps_fn(self):
        return self.trained.run.model if self.trained is not None else mixture_of(self.dataset).eps_fn(self.schedule)

    @property
    def dtype(self):
        return torch.float32 if self.trained is not None else torch.float64

    def truth(self, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        if self.trained is None:
            return mixture_of(self.dataset).sample(n, g)
        return self.trained.run.normalizer.forward(load_dataset(self.dataset).sample(n, g).double())

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        return x.double() if self.trained is None else self.trained.run.normalizer.inverse(x.double())


def distance(a: torch.Tensor, b: torch.Tensor) -> tuple[str, float]:
    """Wasserstein-1 in 1-D, sliced Wasserstein in 2-D (``toydiff.toy.metrics``)."""
    if a.shape[1] == 1:
        return "Wasserstein-1", metrics.wasserstein1(a, b)
    return "sliced Wasserstein", metrics.sliced_wasserstein(a, b)


def run_sampler(src: Source, method: str, steps: int, n: int, seed: int, eta: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, src.dim, generator=g, dtype=src.dtype)  # the same x_T for every method and step count
    return td.sample(src.eps_fn(), x_T, src.schedule, method=method, steps=steps, eta=eta,
                     generator=torch.Generator().manual_seed(seed + 1))


@st.cache_data(max_entries=512, show_spinner=False)
def distance_at(key: tuple, _src: Source, method: str, steps: int, n: int, seed: int) -> tuple[str, float]:
    x = run_sampler(_src, method, steps, n, seed)
    return distance(x.double(), _src.truth(n, seed + 1000))


@st.cache_data(max_entries=64, show_spinner=False)
def noise_floor(key: tuple, _src: Source, n: int, seed: int) -> float:
    """The distance between two independent true sets of n points: what perfect samples would score."""
    return distance(_src.truth(n, seed + 2000), _src.truth(n, seed + 1000))[1]


@st.cache_data(max_entries=32, show_spinner=False)
def convergence_png(key: tuple, table: dict, floor: float, name: str, by_nfe: bool) -> bytes:
    curves = {}
    for method, row in table.items():
        steps = sorted(row)
        xs = [td.function_evaluations(method, s) for s in steps] if by_nfe else steps
        curves[method] = (xs, [row[s] for s in steps])
    return fig_png(plots.convergence(curves, floor, metric=name,
                                     xlabel="network evaluations" if by_nfe else "sampler steps"))


@st.cache_data(max_entries=64, show_spinner="Sampling…")
def side_png(key: tuple, _src: Source, method: str, steps: int, n: int, seed: int) -> tuple[bytes, float]:
    x = run_sampler(_src, method, steps, n, seed)
    d = distance(x.double(), _src.truth(n, seed + 1000))[1]
    ds = load_dataset(_src.dataset)
    truth = None if ds.mixture is not None else ds.sample(n, torch.Generator().manual_seed(1))
    fig = plots.samples_vs_truth(_src.to_data(x), mixture=ds.mixture, true_samples=truth,
                                 title=f"{method}, {steps} steps")
    if _src.dim == 1:
        fig.set_size_inches(5.5, 4)
    return fig_png(fig), d


# --- the page ------------------------------------------------------------------------------------------

st.title("Sampler lab")
st.caption("The exact oracle ε*(x_t, t) = E[ε | x_t] turns sampler comparison into pure numerics: with the true "
           "denoiser, any gap to the truth is the sampler's discretisation error. Each method respaces its steps "
           "with its default spacing (td.samplers.REGISTRY[method].default_spacing: logsnr for dpm++2m, "
           "linspace for the others).")

trained = toy_run()
sources = ["Exact oracle"] + (["Trained model (Toy sandbox)"] if trained is not None else [])
c1, c2 = st.columns([1, 2])
source = c1.radio("Denoiser", sources, key="lab_source")
if trained is None:
    c1.caption("Train a model on the Toy sandbox page to sample it here too.")

if source == "Exact oracle":
    with c2:
        names = dataset_names(oracle_only=True)
        dataset = st.selectbox("Distribution", names, index=names.index("two_gaussians") if "two_gaussians" in names
                               else 0, key="lab_dataset")
        st.caption(describe_dataset(dataset))
        spec = schedule_picker("lab_sched", label="Schedule", default=spec_of("linear", T=1000, beta_start=1e-4,
                                                                              beta_end=0.02))
        schedule = schedule_or_error(spec)
    src = None if schedule is None else Source(("oracle", dataset, spec), dataset, schedule, None)
else:
    c2.markdown(f"**Model #{trained.run_id}**: {trained.summary}.  \nDistances are measured in the model's normalised space.")
    src = Source(("run", trained.run_id), trained.dataset, trained.run.schedule, trained)

if src is None:
    st.stop()
T = src.schedule.T

st.subheader("Distance to the truth against the number of steps")
c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
methods = c1.multiselect("Samplers", td.METHODS, default=list(td.METHODS), key="lab_methods")
step_opts = [s for s in STEP_CHOICES if s <= T]
steps_list = c2.multiselect("Step counts", step_opts, default=[s for s in (5, 10, 20, 50) if s <= T],
                            key=f"lab_steps_{T}")
n = int(c3.select_slider("Samples", [500, 1000, 2000, 5000], value=2000, key="lab_n"))
seed = int(c4.number_input("Seed", 0, 10_000, 0, key="lab_seed"))
by_nfe = st.toggle("x axis: network evaluations (Heun costs two per step)", value=False, key="lab_nfe")

if methods and steps_list:
    with readable_errors("Measuring the samplers"):
        todo = [(m, s) for m in methods for s in sorted(steps_list)]
        bar = st.progress(0.0, text="sampling…")
        table: dict[str, dict[int, float]] = {m: {} for m in methods}
        name = "distance"
        for i, (m, s) in enumerate(todo):
            name, table[m][s] = distance_at(src.key, src, m, s, n, seed)
            bar.progress((i + 1) / len(todo), text=f"{m}, {s} steps")
        bar.empty()
        floor = noise_floor(src.key, src, n, seed)
        show_png(convergence_png(src.key, table, floor, name, by_nfe))
        rows = [{"sampler": m, **{f"{s} steps": table[m][s] for s in sorted(steps_list)}} for m in methods]
        rows.append({"sampler": "noise floor", **{f"{s} steps": floor for s in sorted(steps_list)}})
        st.caption(f"{name} between {n:,} samples and {n:,} fresh true points; the last row is the same distance between "
                   "two true sets: no sampler can beat it.")
        markdown_table(rows)
else:
    st.info("Pick at least one sampler and one step count.")

st.subheader("One x_T, three samplers")
st.caption("The same starting noise through ancestral DDPM, DDPM without its σ·z term (every step jumps to the "
           "posterior mean, so the spread collapses) and deterministic DDIM.")
c1, c2 = st.columns(2)
side_steps = int(c1.slider("Steps", 1, T, min(50, T), key=f"lab_side_steps_{T}"))
side_seed = int(c2.number_input("Seed for x_T", 0, 10_000, 0, key="lab_side_seed"))
cols = st.columns(3)
for col, method in zip(cols, ("ddpm", "ddpm-no-noise", "ddim")):
    with col, readable_errors(f"Sampling with {method}"):
        png, d = side_png(src.key, src, method, side_steps, n, side_seed)
        st.metric(f"{method}: distance to the truth", f"{d:.3g}")
        show_png(png)
