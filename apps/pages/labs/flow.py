"""Labs page, section "Flow vs diffusion": on the exact oracle (no learning error), the same x_1 through the
linear-path flow ODE (rectified flow) and the VP probability-flow ODE — distance to the truth against network
evaluations, path straightness, and the paths of a few particles. Numerics from :mod:`apps.pages.samplers.sweep` and
:mod:`toydiff.toy.flow_compare`; figures from :mod:`toydiff.toy.figures.flow` and :mod:`toydiff.toy.figures.sampling`."""

from __future__ import annotations

import csv
import io

import streamlit as st
import torch

import toydiff as td
from apps.common import url_state
from apps.charts import csv_bytes, downloads, mixture_section, show_chart
from apps.pages.samplers.sweep import Line, distance, line_label, mean_spread, nfe, run_line
from apps.pages.toy.data import dataset_names
from apps.common.ui import fig_png, readable_errors
from toydiff.toy import flow_compare
from toydiff.toy.figures import base as figure_base
from toydiff.toy.figures.flow import paths_plotly
from toydiff.toy.figures.sampling import convergence_mpl, convergence_plotly
from toydiff.toy.datasets import Normalizer, get_dataset

__all__ = ["URL_SPEC", "DEFAULTS", "BUDGETS", "section", "steps_within", "curves_csv"]

BUDGETS = (1, 2, 4, 8, 16, 32)
FLOW, VP = ("euler", "heun"), ("ddim", "dpm++2m")
SAMPLES = (250, 500, 1000, 2000)
PATHS_N = 200  # particles whose paths set the straightness
T_VP = 1000  # the VP schedule: linear β 1e-4 → 0.02 over 1000 steps (Ho et al. 2020)

CHOICES = [f"flow {m}" for m in FLOW] + [f"vp {m}" for m in VP]
#: the section's URL settings (apps.common.url_state)
URL_SPEC = (url_state.Param("flow_ds", str, "8gaussians", choices=tuple(dataset_names(oracle_only=True))),
            url_state.Param("flow_methods", "str_list", ["flow euler", "flow heun", "vp ddim", "vp dpm++2m"],
                            choices=CHOICES),
            url_state.Param("flow_budgets", "int_list", list(BUDGETS), choices=BUDGETS),
            url_state.Param("flow_n", int, 500, choices=SAMPLES),
            url_state.Param("flow_seeds", int, 2, bounds="flow_seeds"))
#: the section's other widgets' defaults
DEFAULTS = {"flow_particles": 12}

def _line(choice: str) -> Line:
    process, method = choice.split(" ", 1)  # "flow euler", "vp ddim": a process name, one of its methods
    return Line.default(process, method)


def steps_within(line: Line, budget: int) -> int:
    """The most steps of ``line`` whose network evaluations fit ``budget`` (0: not even one step fits)."""
    return next((s for s in range(budget, 0, -1) if nfe(line, s) <= budget), 0)


def _oracle(dataset: str):
    """The mixture in normalised units (mean 0, covariance I, as a model sees the data) and the VP schedule."""
    gm = get_dataset(dataset).mixture
    return Normalizer.from_mixture(gm).oracle(gm), td.schedules.linear(T=T_VP)


@st.cache_data(max_entries=32, show_spinner="Sampling every budget…")
def nfe_sweep(dataset: str, choices: tuple, budgets: tuple, n: int, seeds: int) -> tuple[str, dict, tuple]:
    """``(metric, {label: curve}, floor (mean, sd))`` with curves as :func:`toydiff.toy.figures.sampling.convergence_plotly`."""
    gm, schedule = _oracle(dataset)
    truths = [gm.sample(n, torch.Generator().manual_seed(1000 + k)) for k in range(seeds)]
    metric, curves = "distance", {}
    for choice in choices:
        line, c = _line(choice), {"steps": [], "x": [], "mean": [], "std": []}
        for b in budgets:
            steps = steps_within(line, b)
            if steps == 0:
                continue
            vals = []
            for k in range(seeds):  # run_line draws x_1 from seed k: the same x_1 for every line
                x = run_line(line, steps, n, k, eps_fn=gm.eps_fn(schedule), schedule=schedule, mixture=gm, dim=gm.D)
                metric, d = distance(x, truths[k])
                vals.append(d)
            m, sd = mean_spread(vals)
            for field, v in (("steps", steps), ("x", nfe(line, steps)), ("mean", m), ("std", sd)):
                c[field].append(v)
        curves[line_label(line)] = c
    floor = mean_spread([distance(gm.sample(n, torch.Generator().manual_seed(2000 + k)), truths[k])[1]
                         for k in range(seeds)])
    return metric, curves, floor


@st.cache_data(max_entries=16, show_spinner="Integrating both ODEs…")
def paths(dataset: str, n: int, seed: int) -> dict:
    """The exact flow (Heun, 64 steps) and VP (DDIM, every step) paths from the same x_1 ``[n, D]``."""
    gm, schedule = _oracle(dataset)
    x_1 = torch.randn(n, gm.D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    flow = flow_compare.ode_paths(gm, x_1, "flow", method="heun", steps=64)
    vp = flow_compare.ode_paths(gm, x_1, "vp", method="ddim", steps=None, schedule=schedule)
    return {"flow": flow, "vp": vp}


def curves_csv(curves: dict, floor: tuple[float, float], metric: str) -> bytes:
    """One row per (sampler, budget) and the floor, as CSV bytes."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["sampler", "steps", "network_evaluations", f"{metric}_mean", f"{metric}_sd"])
    for lab, c in curves.items():
        w.writerows([lab, *r] for r in zip(c["steps"], c["x"], c["mean"], c["std"]))
    w.writerow(["two true sets (floor)", "", "", *floor])
    return buf.getvalue().encode()


def _sweep_part(dataset: str) -> None:
    with st.form("flow_form"):
        c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
        choices = c1.multiselect("Processes · samplers", CHOICES, key="flow_methods")
        budgets = c2.multiselect("Network evaluations", BUDGETS, key="flow_budgets")
        n = int(c3.select_slider("Samples", SAMPLES, key="flow_n"))
        seeds = int(c4.slider("Seeds", *url_state.BOUNDS["flow_seeds"], key="flow_seeds"))
        st.form_submit_button("Run", type="primary")
    if not choices or not budgets:
        st.info("Pick at least one sampler and one budget, then press **Run**.")
        return
    metric, curves, floor = nfe_sweep(dataset, tuple(choices), tuple(sorted(budgets)), n, seeds)
    fig = convergence_plotly(curves, floor, metric=metric, xlabel="network evaluations")
    show_chart(fig, key="flow_chart")
    st.caption(f"{metric} (normalised units) between {n:,} samples and {n:,} true points, mean ± sd over {seeds} "
               "seed(s); every line starts from the same x_1 per seed. Heun costs two evaluations per step (so it "
               "has no 1-evaluation point); the VP lines use the linear schedule, T = 1000, DPM-Solver++ on logsnr "
               "spacing. Floor: two true sets of this size.")

    def png() -> bytes:
        return fig_png(convergence_mpl({k: (c["x"], c["mean"]) for k, c in curves.items()}, floor[0], metric=metric,
                                         xlabel="network evaluations"))

    downloads(f"flow_vs_diffusion_{dataset}", key="flow_dl", fig=fig, png=png, csv=curves_csv(curves, floor, metric))


def _paths_part(dataset: str) -> None:
    c1, c2 = st.columns([1, 3])
    k = int(c1.slider("Particles drawn", 4, 40, key="flow_particles"))
    seed = int(c1.number_input("Seed for x_1", 0, 10_000, 0, key="flow_seed"))
    p = paths(dataset, PATHS_N, seed)
    s_flow, s_vp = flow_compare.straightness(p["flow"]), flow_compare.straightness(p["vp"])
    c1.metric("straightness, linear flow", f"{s_flow:.3f}")
    c1.metric("straightness, VP (DDIM)", f"{s_vp:.3f}")
    gap = float((p["flow"][-1] - p["vp"][-1]).norm(dim=1).mean())
    c1.metric("mean ‖x_0 flow − x_0 VP‖", f"{gap:.3f}", help="Same x_1, same end point (up to discretisation): for Gaussian "
              "interpolants the two ODEs are one transport map in different coordinates, x/α_t against σ_t/α_t "
              "(Karras et al. 2022); only the paths between the ends differ.")
    gm, _ = _oracle(dataset)
    density = None
    if gm.D == 2:
        lo, hi = figure_base.extent(mixture=gm)
        lo, hi = [min(lo[i], -3.0) for i in range(2)], [max(hi[i], 3.0) for i in range(2)]
        density = figure_base.density_grid(gm, 1.0, lo, hi, n=70)
    fig = paths_plotly({"linear flow (Heun, 64 steps)": p["flow"][:, :k],
                                    "VP probability-flow ODE (DDIM, 1000 steps)": p["vp"][:, :k]}, density=density)
    with c2:
        show_chart(fig, key="flow_paths")
    st.caption(f"Straightness = mean ‖x_1 − x_0‖ / path length over {PATHS_N} particles (1 = straight). With the exact "
               "fields neither process is straight on multimodal data. Much of the linear flow's bending is in and out "
               "rather than sideways: its x_t = (1 − t)x_0 + tε has variance (1 − t)² + t² per unit-variance "
               "direction, ½ at t = ½, so particles move inwards and back out (the VP process keeps it at 1). "
               "Reflow (Liu et al. 2023) straightens the flow.")
    ends = torch.cat([p["flow"][0], p["flow"][-1], p["vp"][-1]], 1).numpy()
    d = gm.D
    header = [f"x1_{i}" for i in range(d)] + [f"flow_x0_{i}" for i in range(d)] + [f"vp_x0_{i}" for i in range(d)]
    downloads(f"flow_vs_vp_paths_{dataset}", key="flow_paths_dl", fig=fig, csv=csv_bytes(ends, header))


def section() -> None:
    """The whole section (widgets keyed ``flow_*``)."""
    dataset, c2 = mixture_section(
        "Flow vs diffusion",
        r"\text{flow: } \frac{dx}{dt} = \mathbb E[\varepsilon - x_0 \mid x_t],\ x_t = (1-t)x_0 + t\varepsilon"
        r"\qquad\text{VP: } \frac{d\tilde x}{d\sigma} = \varepsilon^*(x_t, t),\ \tilde x = x_t/\sqrt{\bar\alpha_t}",
        "with exact fields every gap to the floor is discretisation error, so the lines compare the two "
        "processes per network evaluation. The same x_1 ends at the same x_0 under both ODEs (one transport "
        "map, two clocks and scalings); what differs is how bent the paths are on the way.",
        "Lipman et al. 2023 (flow matching); Liu et al. 2023 (rectified flow); Song et al. 2021 (DDIM, "
        "PF-ODE); Lu et al. 2022 (DPM-Solver++); Karras et al. 2022",
        key="flow_ds")
    c2.caption(get_dataset(dataset).description + ". Everything in normalised units (mean 0, covariance I).")
    with readable_errors("Flow vs diffusion"):
        st.markdown("**Distance to the truth against network evaluations**")
        _sweep_part(dataset)
        st.markdown("**The paths of a few particles, same x_1**")
        _paths_part(dataset)
