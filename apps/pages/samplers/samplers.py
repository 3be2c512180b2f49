"""Sampler lab: every sampler on the exact oracle (or the Toy sandbox's trained model), distance to the truth
against network evaluations over several seeds with error bars, each method on the spacing you pick, the
flow-matching samplers beside the VP ones, and one x_T through ddpm, ddpm-no-noise and ddim side by side."""

from __future__ import annotations

import csv
import io

import streamlit as st
import torch

import toydiff as td
from apps.common import url_state
from apps.charts import downloads, section_notes, show_chart
from apps.pages.samplers.steps import show_optimal_steps
from apps.pages.samplers.sweep import (FLOW_SHIFTS, Line, ddim_euler_gap, distance, line_label, mean_spread, nfe,
                                      run_line, verdict)
from apps.pages.schedules.widgets import schedule_or_error, schedule_picker, spec_of
from apps.pages.toy.data import dataset_names, describe_dataset, load_dataset, mixture_of
from apps.pages.toy.state import TrainedToy, toy_run
from apps.common.ui import fig_png, markdown_table, readable_errors, show_png
from toydiff.toy.figures.samples import samples_vs_truth_mpl
from toydiff.toy.figures.sampling import convergence_mpl, convergence_plotly
from toydiff.processes.registry import PROCESSES

STEP_CHOICES = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)
SAMPLE_CHOICES = (500, 1000, 2000, 5000)
#: the processes whose samplers the page compares (classes: their names and methods)
VP, FLOW = PROCESSES["vp"], PROCESSES["flow"]


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
    def mixture(self):
        return None if self.trained is not None else mixture_of(self.dataset)

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

    def run(self, line: Line, steps: int, n: int, seed: int) -> torch.Tensor:
        return run_line(line, steps, n, seed, eps_fn=self.eps_fn(), schedule=self.schedule, mixture=self.mixture,
                        dim=self.dim, dtype=self.dtype)


@st.cache_data(max_entries=4096, show_spinner=False)
def distance_at(key: tuple, _src: Source, line: Line, steps: int, n: int, seed: int) -> tuple[str, float]:
    """One cell of the sweep: the distance of one seed's samples to fresh true points."""
    x = _src.run(line, steps, n, seed)
    return distance(x.double(), _src.truth(n, seed + 1000))


@st.cache_data(max_entries=256, show_spinner=False)
def floor_at(key: tuple, _src: Source, n: int, seed: int) -> float:
    """The distance between two independent true sets of n points: where perfect samples sit on average."""
    return distance(_src.truth(n, seed + 2000), _src.truth(n, seed + 1000))[1]


@st.cache_data(max_entries=64, show_spinner=False)
def ddim_euler(key: tuple, _src: Source, steps: int) -> float:
    x = torch.randn(500, _src.dim, generator=torch.Generator().manual_seed(0), dtype=_src.dtype)
    return ddim_euler_gap(_src.eps_fn(), _src.schedule, x, steps)


@st.cache_data(max_entries=64, show_spinner="Sampling…")
def side_png(key: tuple, _src: Source, method: str, steps: int, n: int, seed: int) -> tuple[bytes, float]:
    line = Line.default(VP.name, method)
    x = _src.run(line, steps, n, seed)
    d = distance(x.double(), _src.truth(n, seed + 1000))[1]
    ds = load_dataset(_src.dataset)
    truth = None if ds.mixture is not None else ds.sample(n, torch.Generator().manual_seed(1))
    fig = samples_vs_truth_mpl(_src.to_data(x), mixture=ds.mixture, true_samples=truth,
                                 title=f"{method}, {steps} steps")
    if _src.dim == 1:
        fig.set_size_inches(5.5, 4)
    return fig_png(fig), d


def sweep(src: Source, lines: list[Line], steps_list: list[int], n: int, seeds: int) -> tuple[str, dict, tuple]:
    """Every line at every step count over ``seeds`` seeds: ``(metric, {label: curve}, floor (mean, sd))``."""
    bar = st.progress(0.0, text="sampling…")
    total, done, name = len(lines) * len(steps_list) * seeds, 0, "distance"
    curves = {}
    for line in lines:
        c = {"steps": [], "nfe": [], "mean": [], "std": []}
        for s in steps_list:
            vals = []
            for k in range(seeds):
                name, d = distance_at(src.key, src, line, s, n, k)
                vals.append(d)
                done += 1
                bar.progress(done / total, text=f"{line_label(line)}, {s} steps, seed {k}")
            m, sd = mean_spread(vals)
            for field, v in (("steps", s), ("nfe", nfe(line, s)), ("mean", m), ("std", sd)):
                c[field].append(v)
        curves[line_label(line)] = c
    bar.empty()
    return name, curves, mean_spread([floor_at(src.key, src, n, k) for k in range(seeds)])


def table_rows(curves: dict, floor: tuple[float, float]) -> list[dict]:
    steps = sorted({s for c in curves.values() for s in c["steps"]})
    rows = []
    for lab, c in curves.items():
        cells = dict(zip(c["steps"], zip(c["mean"], c["std"])))
        rows.append({"sampler": lab, **{f"{s} steps": (f"{cells[s][0]:.3g} ± {cells[s][1]:.2g}" if s in cells else "—")
                                        for s in steps}})
    rows.append({"sampler": "two true sets (floor)", **{f"{s} steps": f"{floor[0]:.3g} ± {floor[1]:.2g}"
                                                         for s in steps}})
    return rows


def csv_bytes(curves: dict, floor: tuple[float, float], metric: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["sampler", "steps", "network_evaluations", f"{metric}_mean", f"{metric}_sd"])
    for lab, c in curves.items():
        for row in zip(c["steps"], c["nfe"], c["mean"], c["std"]):
            w.writerow([lab, *row])
    w.writerow(["two true sets (floor)", "", "", floor[0], floor[1]])
    return buf.getvalue().encode()


@st.cache_data(max_entries=16, show_spinner=False)
def export_png(curves: dict, floor: tuple[float, float], metric: str, by_nfe: bool) -> bytes:
    xs = "nfe" if by_nfe else "steps"
    return fig_png(convergence_mpl({k: (c[xs], c["mean"]) for k, c in curves.items()}, floor[0], metric=metric,
                                     xlabel="network evaluations" if by_nfe else "sampler steps"))


def settings_form(oracle: bool, T: int) -> tuple[list[Line], list[int], int, int]:
    """The sweep's settings, applied together by one button (no rerun while they are being changed)."""
    step_opts = [s for s in STEP_CHOICES if s <= T]
    with st.form("lab_form"):
        c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
        methods = c1.multiselect("VP samplers", VP.methods, key="lab_methods")
        flows = c2.multiselect("Flow-matching samplers (exact velocity)", FLOW.methods, key="lab_flows",
                               disabled=not oracle, help="Integrate dx/dt = E[u | x_t] of a linear or cosine "
                               "interpolant (toydiff.sampling.flow_steps), on the same mixture; the oracle only.")
        steps_list = c1.multiselect("Step counts", step_opts, key=f"lab_steps_{T}",
                                    default=[s for s in (5, 10, 20, 50) if s <= T])
        interp = c2.radio("Flow interpolant", tuple(td.interpolants.BUILDERS), horizontal=True, key="lab_interp")
        n = int(c3.select_slider("Samples", SAMPLE_CHOICES, key="lab_n"))
        seeds = int(c4.slider("Seeds", *url_state.BOUNDS["lab_seeds"], key="lab_seeds", help="Error bars: ± one standard deviation over seeds"))
        with st.expander("Spacing per method (which timesteps each sampler visits)"):
            cols = st.columns(5)
            spacing = {m: cols[i % 5].selectbox(f"{m} spacing", td.schedules.SPACINGS, key=f"lab_sp_{m}",
                                                index=td.schedules.SPACINGS.index(td.sampling.REGISTRY[m].default_spacing))
                       for i, m in enumerate(VP.methods)}
            grids = {f: cols[(i + len(VP.methods)) % 5].selectbox(f"flow {f} time grid", tuple(FLOW_SHIFTS),
                                                                   key=f"lab_grid_{f}")
                     for i, f in enumerate(FLOW.methods)}
        st.form_submit_button("Run the sweep", type="primary")
    lines = [Line(VP.name, m, spacing[m]) for m in methods]
    lines += [Line(FLOW.name, f, grids[f], interp) for f in flows] if oracle else []
    return lines, sorted(steps_list), n, seeds


def show_sweep(src: Source, lines: list[Line], steps_list: list[int], n: int, seeds: int) -> None:
    by_nfe = st.toggle("x axis: network evaluations (off: sampler steps; Heun and midpoint cost two per step)",
                       key="lab_nfe")
    metric, curves, floor = sweep(src, lines, steps_list, n, seeds)
    xlabel = "network evaluations" if by_nfe else "sampler steps"
    for c in curves.values():
        c["x"] = c["nfe"] if by_nfe else c["steps"]
    fig = convergence_plotly(curves, floor, metric=metric, xlabel=xlabel)
    show_chart(fig, key="lab_chart")
    st.caption(f"{metric} between {n:,} samples and {n:,} fresh true points, mean ± one standard deviation over "
               f"{seeds} seed{'s' * (seeds > 1)}. **Floor:** two true sets of this size sit here on average; single "
               "runs scatter around it (the grey band), so one seed of a good sampler can land below it.")
    st.info(verdict(curves, floor), icon="🎯")
    markdown_table(table_rows(curves, floor))
    if {"ddim", "euler"} <= {ln.method for ln in lines if ln.process == VP.name}:
        gap = ddim_euler(src.key, src, max(steps_list))
        st.caption(f"**DDIM ≡ Euler here.** With η = 0, DDIM's x_t' = √ᾱ_t' x̂_0 + √(1 − ᾱ_t') ε̂ is, in Karras' "
                   "x̃ = x/√ᾱ and σ = √((1 − ᾱ)/ᾱ), exactly the Euler step x̃_t' = x̃_t + (σ_t' − σ_t) ε̂ of the "
                   f"probability-flow ODE dx̃/dσ = ε: on the same spacing their lines coincide (largest difference "
                   f"between their samples at {max(steps_list)} steps: {gap:.1e}).")
    downloads("sampler_lab", key="lab_dl", png=export_png(curves, floor, metric, by_nfe), fig=fig,
              csv=csv_bytes(curves, floor, metric))


# --- the page ------------------------------------------------------------------------------------------

st.title("Sampler lab")
section_notes(r"\frac{d\tilde x}{d\sigma} = \hat\varepsilon(x_t, t),\qquad \tilde x = \frac{x_t}{\sqrt{\bar\alpha_t}},"
              r"\quad \sigma_t = \sqrt{\tfrac{1-\bar\alpha_t}{\bar\alpha_t}}",
              "with the exact denoiser ε*(x_t, t) = E[ε | x_t], a gap to the truth that shrinks as the steps grow is the "
              "sampler's discretisation error; once a line stops changing it has converged, and what is left is the "
              "finite draw of x_T and of the true points. Watch which lines reach the grey floor band first per network evaluation, and how the spacing "
              "moves them (DPM-Solver++ on linspace, Heun on logsnr).",
              "Ho et al. 2020 (DDPM); Song et al. 2021 (DDIM); Karras et al. 2022 (Euler, Heun); Lu et al. 2022 "
              "(DPM-Solver++); Lipman et al. 2023 and Liu et al. 2023 (flow matching, rectified flow)")

_names = dataset_names(oracle_only=True)
#: the page's URL settings (apps.common.url_state)
URL_SPEC = (url_state.Param("lab_dataset", str, "two_gaussians" if "two_gaussians" in _names else _names[0], choices=_names),
            url_state.Param("lab_n", int, 2000, choices=SAMPLE_CHOICES),
            url_state.Param("lab_seeds", int, 3, bounds="lab_seeds"),
            url_state.Param("lab_nfe", bool, True),
            url_state.Param("lab_methods", "str_list", list(VP.methods), choices=VP.methods),
            url_state.Param("lab_flows", "str_list", ["euler", "heun", "dpm++2m"], choices=FLOW.methods))
url_state.restore("samplers", URL_SPEC)
url_state.defaults(URL_SPEC)

trained = toy_run()
sources = ["Exact oracle"] + (["Trained model (Toy sandbox)"] if trained is not None else [])
c1, c2 = st.columns([1, 2])
source = c1.radio("Denoiser", sources, key="lab_source")
if trained is None:
    c1.caption("Train a model on the Toy sandbox page to sample it here too.")

if source == "Exact oracle":
    with c2:
        names = dataset_names(oracle_only=True)
        dataset = st.selectbox("Distribution", names, key="lab_dataset")
        st.caption(describe_dataset(dataset))
        spec = schedule_picker("lab_sched", label="Schedule", default=spec_of("linear", T=1000, beta_start=1e-4,
                                                                              beta_end=0.02))
        schedule = schedule_or_error(spec)
    src = None if schedule is None else Source(("oracle", dataset, spec), dataset, schedule, None)
else:
    c2.markdown(f"**Model #{trained.run_id}**: {trained.summary}.  \nDistances are measured in the model's normalised "
                "space; the flow-matching samplers need the exact velocity and run on the oracle only.")
    src = Source(("run", trained.run_id), trained.dataset, trained.run.schedule, trained)

if src is None:
    st.stop()
T = src.schedule.T

st.subheader("Distance to the truth against cost")
lines, steps_list, n, seeds = settings_form(src.trained is None, T)
if lines and steps_list:
    with readable_errors("Measuring the samplers"):
        show_sweep(src, lines, steps_list, n, seeds)
else:
    st.info("Pick at least one sampler and one step count, then press **Run the sweep**.")
url_state.publish(URL_SPEC)

st.subheader("Optimal steps from the oracle")
if src.trained is None:
    st.caption("Which N levels should a sampler visit? A search moves each level in log-SNR while the exact pathwise "
               "error falls (Align Your Steps' idea, Sabour et al. 2024, judged by the exact flow map), then compares "
               "the levels it found with the fixed spacings on fresh x_T.")
    show_optimal_steps(src.key, src.dataset, src.schedule)
else:
    st.caption("The level search needs the exact flow map: pick the exact oracle as the denoiser.")

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
        downloads(f"{method}_{side_steps}_steps", key=f"lab_side_dl_{method}", png=png)
