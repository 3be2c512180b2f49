"""Labs page, section "Memorisation": the exact optimal denoiser of a finite training set
(:class:`toydiff.exact.EmpiricalDistribution`, a softmax over the training points) samples only training points;
the copy rate (:func:`toydiff.evaluation.memorisation.copy_stats`) of its samples against n, next to the metric's chance
level (fresh true samples). Figures from :mod:`toydiff.toy.figures.memorisation`."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

import toydiff as td
from apps.common import url_state
from apps.charts import csv_bytes, downloads, mixture_section, show_chart
from apps.pages.toy.data import dataset_names
from apps.common.ui import fig_png, readable_errors
from toydiff.evaluation.memorisation import COPY_RATIO, copy_stats
from toydiff.toy.figures.memorisation import copies_plotly, copy_rate_plotly, memorisation_mpl
from toydiff.toy.run import oracle_run

__all__ = ["URL_SPEC", "DEFAULTS", "N_TRAIN", "section", "empirical_samples"]

N_TRAIN = (4, 16, 64, 256, 1024, 4096)
STEPS, SAMPLES = (10, 25, 50, 250), (250, 500, 1000)
#: the section's URL settings (apps.common.url_state)
URL_SPEC = (url_state.Param("mem_ds", str, "8gaussians", choices=tuple(dataset_names(oracle_only=True))),
            url_state.Param("mem_n_train", int, 64, choices=N_TRAIN),
            url_state.Param("mem_method", str, "ddpm", choices=td.METHODS),
            url_state.Param("mem_steps", int, 50, choices=STEPS),
            url_state.Param("mem_n", int, 500, choices=SAMPLES))
#: the section's other widgets' defaults
DEFAULTS: dict = {}

@st.cache_data(max_entries=64, show_spinner=False)
def empirical_samples(dataset: str, n_train: int, method: str, steps: int, n: int, seed: int) -> dict:
    """``n_train`` training points (model units), ``n`` samples of their exact ε* (same sampler settings), and
    the copy statistics of those samples and of ``n`` fresh true points (the chance level)."""
    run = oracle_run(dataset)
    g = torch.Generator().manual_seed(seed)
    train = run.normalizer.forward(run.dataset.sample(n_train, g).double())       # [n_train, D]
    emp = td.exact.EmpiricalDistribution(train)
    x_T = torch.randn(n, train.shape[1], generator=g, dtype=torch.float64)
    x = td.sample(emp.eps_fn(run.schedule), x_T, run.schedule, method=method, steps=steps, generator=g)
    fresh = run.normalizer.forward(run.dataset.sample(n, g).double())
    st_x, st_f = copy_stats(x, train), copy_stats(fresh, train)
    return {"train": train.numpy(), "samples": x.numpy(), "is_copy": st_x.is_copy.numpy(), "rate": st_x.rate,
            "unique": st_x.unique, "median_nn": float(st_x.distance.median()), "chance": st_f.rate,
            "T": run.schedule.T}


def _form() -> tuple:
    with st.form("mem_form"):
        c1, c2, c3, c4, c5 = st.columns(5)
        n_train = int(c1.select_slider("Training points n", N_TRAIN, key="mem_n_train"))
        method = c2.selectbox("Sampler", td.METHODS, key="mem_method")
        steps = int(c3.select_slider("Steps", STEPS, key="mem_steps"))
        n = int(c4.select_slider("Samples", SAMPLES, key="mem_n"))
        seed = int(c5.number_input("Seed", 0, 10_000, 0, key="mem_seed"))
        st.form_submit_button("Sample", type="primary")
    return n_train, method, steps, n, seed


def _one(dataset: str, n_train: int, method: str, steps: int, n: int, seed: int) -> None:
    r = empirical_samples(dataset, n_train, method, steps, n, seed)
    cols = st.columns(4)
    cols[0].metric("copy rate, empirical ε*", f"{r['rate']:.1%}")
    cols[1].metric("training points copied", f"{r['unique']} of {n_train}")
    cols[2].metric("median distance to the nearest", f"{r['median_nn']:.3g}")
    cols[3].metric("copy rate of fresh true points", f"{r['chance']:.1%}", help="the metric's chance level: true "
                   "samples that happen to sit near one training point")
    fig = copies_plotly(r["train"], r["samples"], r["is_copy"])
    show_chart(fig, key="mem_chart")
    d = r["samples"].shape[1]
    downloads(f"memorisation_{dataset}_n{n_train}", key="mem_dl", fig=fig,
              csv=csv_bytes(np.column_stack([r["samples"], r["is_copy"]]), [f"x{i}" for i in range(d)] + ["copy"]),
              png=lambda: fig_png(memorisation_mpl(r["train"], {"empirical ε*": r["samples"]},
                                                                   {"empirical ε*": r["is_copy"]})))


def _sweep(dataset: str, method: str, steps: int, n: int, seed: int) -> None:
    st.markdown("**Copy rate against n** (same sampler, steps and seed)")
    rows = [empirical_samples(dataset, k, method, steps, n, seed) for k in N_TRAIN]
    sigma0 = float((1 - oracle_run(dataset).schedule.alpha_bars[0]).sqrt())
    rates = {f"empirical ε*, {method} {steps} steps": [r["rate"] for r in rows],
             "fresh true points (chance level)": [r["chance"] for r in rows]}
    fig = copy_rate_plotly(N_TRAIN, rates, ratio=COPY_RATIO)
    show_chart(fig, key="mem_curve")
    st.caption(f"Smallest noise level of this schedule: σ_0 = {sigma0:.3g} (model units). Training points closer "
               "together than that are not told apart by the last step, so samples land between them.")
    downloads(f"copy_rate_{dataset}", key="mem_curve_dl", fig=fig,
              csv=csv_bytes(np.column_stack([N_TRAIN, *rates.values()]), ["n_train", "empirical", "chance"]))


def section() -> None:
    """The whole section (widgets keyed ``mem_*``)."""
    dataset, c2 = mixture_section(
        "Memorisation",
        r"\varepsilon^*_{\text{emp}}(x_t, t) = \frac{x_t - \sqrt{\bar\alpha_t}\,\sum_i w_i(x_t)\,y_i}"
        r"{\sqrt{1-\bar\alpha_t}},\quad w_i \propto \exp\!\Big(-\frac{\|x_t - \sqrt{\bar\alpha_t}\,y_i\|^2}"
        r"{2(1-\bar\alpha_t)}\Big)",
        "the exact denoiser of n training points y_i is a softmax over them, so its samples are training "
        "points — as long as the smallest noise level σ_0 = √(1 − ᾱ_0) separates them. As n grows the "
        "points crowd closer than σ_0, the last step averages neighbours and the copy rate falls toward "
        "the chance level. This curve is the ceiling a network trained on those n points can reach.",
        "Kadkhodaie et al. 2024 (generalisation in diffusion models); Bonnaire et al. 2025 (memorisation "
        "vs generalisation); Yoon et al. 2023, Gu et al. 2023 (the 1/3 nearest-neighbour copy test)",
        key="mem_ds")
    c2.caption("Training points are drawn from the data set and normalised as a model sees them; the schedule is the "
               f"data set's default recipe's. A sample copies when its nearest training point is closer than "
               f"{COPY_RATIO:.2g} × the second nearest.")
    n_train, method, steps, n, seed = _form()
    with readable_errors("Memorisation"):
        _one(dataset, n_train, method, steps, n, seed)
        _sweep(dataset, method, steps, n, seed)
