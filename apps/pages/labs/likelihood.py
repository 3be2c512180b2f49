"""Labs page, section "Likelihood": the probability-flow ODE's log p of held-out points against the exact
log p, KL(p ‖ p_θ) = NLL − H of the toy model (the session's, else the shipped one) next to the oracle's, and the
ELBO's terms by step. Maths from :func:`toydiff.toy.labs.likelihood_report` (``toydiff.evaluation.likelihood``,
``toydiff.evaluation.elbo``); figures from :mod:`toydiff.toy.figures.likelihood`."""

from __future__ import annotations

import csv
import io

import numpy as np
import streamlit as st
import torch

import toydiff as td

from apps.common import url_state
from apps.charts import csv_bytes, downloads, mixture_section, show_chart
from apps.pages.toy.data import dataset_names
from apps.pages.toy.state import TrainedToy, run_for
from apps.common.ui import fig_png, readable_errors
from toydiff.toy import labs
from toydiff.toy.figures import base as figure_base
from toydiff.toy.figures.likelihood import (elbo_mpl, elbo_plotly, likelihood_check_mpl, likelihood_grid_plotly,
                                            likelihood_points_plotly)
from toydiff.toy.run import ToyRun, oracle_run

__all__ = ["URL_SPEC", "DEFAULTS", "section", "arrays_csv", "grid_report"]

POINTS, ELBO_POINTS = (20, 50, 100, 200), (250, 500, 1000, 2000)
GRID_1D, GRID_2D = 80, 16
#: the section's URL settings (apps.common.url_state)
URL_SPEC = (url_state.Param("lik_ds", str, "8gaussians", choices=tuple(dataset_names(oracle_only=True))),
            url_state.Param("lik_n", int, 50, choices=POINTS),
            url_state.Param("lik_n_elbo", int, 500, choices=ELBO_POINTS),
            url_state.Param("lik_grid", bool, False))
#: the section's other widgets' defaults
DEFAULTS: dict = {}

def source(dataset: str) -> tuple[ToyRun, TrainedToy | None]:
    """The model measured: the session's trained run of ``dataset``, else the shipped one, else the oracle alone."""
    trained = run_for(dataset)
    return (trained.run, trained) if trained is not None else (oracle_run(dataset), None)


@st.cache_data(max_entries=8, show_spinner="Integrating the probability-flow ODE over a grid…")
def grid_report(key: tuple, _run: ToyRun, n: int) -> dict:
    """log p over ``n`` points (1-D) or an ``n × n`` grid (2-D) around the data, in model units: exact, and by
    the PF-ODE for the oracle and the model. Arrays ``[n]`` or ``[n, n]`` (rows = y)."""
    oracle, s = _run.oracle, _run.schedule
    lo, hi = figure_base.extent(mixture=oracle)
    xs = np.linspace(lo[0], hi[0], n)
    ys = None if oracle.D == 1 else np.linspace(lo[1], hi[1], n)
    pts = xs[:, None] if ys is None else np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    x = torch.from_numpy(pts)
    fns = {"oracle (PF-ODE)": oracle.eps_fn(s)}
    if _run.model is not None:
        fns["model (PF-ODE)"] = labs.differentiable_eps(_run)
    shape = (n,) if ys is None else (n, n)
    out = {"exact log p": oracle.log_prob(x).numpy().reshape(shape)}
    for label, fn in fns.items():
        out[label] = td.log_likelihood(fn, x, s, rtol=1e-4, atol=1e-4).numpy().reshape(shape)
    return {"xs": xs, "ys": ys, "values": out}


@st.cache_data(max_entries=16, show_spinner="Integrating the probability-flow ODE…")
def report(key: tuple, _run: ToyRun, n: int, n_elbo: int, seed: int) -> tuple[dict, dict]:
    return labs.likelihood_report(_run, n=n, n_elbo=n_elbo, seed=seed)


def arrays_csv(arr: dict, who: list[str]) -> bytes:
    """Held-out points with their exact and PF-ODE log p, one row per point."""
    x = np.asarray(arr["x"])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([f"x{i}" for i in range(x.shape[1])] + ["exact_log_p"] + [f"{k}_log_p" for k in who])
    cols = [np.asarray(arr["exact_log_p"])] + [np.asarray(arr[f"{k}_log_p"]) for k in who]
    w.writerows([*row, *(c[i] for c in cols)] for i, row in enumerate(x.tolist()))
    return buf.getvalue().encode()


def _metrics(summary: dict, who: list[str]) -> None:
    cols = st.columns(1 + 2 * len(who))
    cols[0].metric("entropy H = −E log p", f"{summary['entropy']:.4f}", help="nats per sample, from the exact log p")
    for i, k in enumerate(who):
        s = summary[k]
        cols[1 + i].metric(f"KL(p ‖ p_θ), {k}", f"{s['kl']:+.4f}",
                           help="PF-ODE NLL − H in nats per sample, ± its standard error over the points")
        cols[1 + i].caption(f"± {s['kl_stderr']:.4f} · {s['nfe']} ODE evaluations")
        cols[1 + len(who) + i].metric(f"ELBO − H, {k}", f"{s['elbo_minus_entropy']:+.4f}",
                                      help="the discrete-time bound (reverse variance β_t) above the entropy")


def _form() -> tuple[int, int, int, bool]:
    with st.form("lik_form"):
        c1, c2, c3, c4 = st.columns(4)
        n = int(c1.select_slider("Held-out points (PF-ODE)", POINTS, key="lik_n"))
        n_elbo = int(c2.select_slider("Points for the ELBO", ELBO_POINTS, key="lik_n_elbo"))
        seed = int(c3.number_input("Seed", 0, 10_000, 0, key="lik_seed"))
        grid = c4.toggle("Map log p over a grid", key="lik_grid", help=f"PF-ODE at {GRID_2D} × {GRID_2D} points "
                         f"(2-D) or {GRID_1D} points (1-D) around the data: a few seconds")
        st.form_submit_button("Compute", type="primary")
    return n, n_elbo, seed, grid


def _grid(dataset: str, run: ToyRun, trained: TrainedToy | None) -> None:
    n = GRID_1D if run.dataset.dim == 1 else GRID_2D
    g = grid_report((dataset, None if trained is None else trained.run_id, n), run, n)
    fig = likelihood_grid_plotly(g["xs"], g["ys"], g["values"])
    show_chart(fig, key="lik_grid_chart")
    st.caption("The colour scale (or the y axis) is clipped 15 nats below the top; hover shows the true value. Off "
               "the data the model's PF-ODE log p can be wrong by orders of magnitude: a network is only trained "
               "where x_t lands, and the ODE carries that error in.")
    cols = [g["values"][k].ravel() for k in g["values"]]
    xy = g["xs"][:, None] if g["ys"] is None else np.stack(np.meshgrid(g["xs"], g["ys"]), -1).reshape(-1, 2)
    downloads(f"likelihood_grid_{dataset}", key="lik_grid_dl", fig=fig,
              csv=csv_bytes(np.column_stack([xy, *cols]), [f"x{i}" for i in range(xy.shape[1])] +
                            [k.replace(" ", "_") for k in g["values"]]))


def _results(dataset: str, run: ToyRun, trained: TrainedToy | None, n: int, n_elbo: int, seed: int) -> None:
    key = (dataset, None if trained is None else trained.run_id, n, n_elbo, seed)
    summary, arr = report(key, run, n, n_elbo, seed)
    who = [k for k in ("model", "oracle") if k in summary]
    _metrics(summary, who)
    c1, c2 = st.columns([2, 3])
    with c1:
        fig = likelihood_points_plotly(arr["x"], arr["exact_log_p"], {k: arr[f"{k}_log_p"] for k in who})
        show_chart(fig, key="lik_chart")
        downloads(f"likelihood_{dataset}", key="lik_dl", fig=fig, csv=arrays_csv(arr, who), png=lambda: fig_png(
            likelihood_check_mpl(arr["exact_log_p"], {k: arr[f"{k}_log_p"] for k in who})))
    with c2:
        terms = {k: arr[f"{k}_elbo"] for k in who}
        fig = elbo_plotly(terms)
        show_chart(fig, key="lik_elbo")
        downloads(f"elbo_by_step_{dataset}", key="lik_elbo_dl", fig=fig,
                  png=lambda: fig_png(elbo_mpl(terms)))
    st.caption(f"{n} held-out points (model units: the data normalised by its exact mean and covariance, which "
               f"leaves every KL unchanged); schedule {summary['schedule']} T = {summary['T']}, ᾱ at the last step "
               f"{summary['terminal_alpha_bar']:.3g} (the N(0, I) prior costs even the oracle a little). The "
               "oracle's KL is the ODE solver's error alone; the ELBO of even the exact ε* sits above H — the "
               "price of fixed reverse variances and finitely many steps.")


def section() -> None:
    """The whole section (widgets keyed ``lik_*``)."""
    dataset, c2 = mixture_section(
        "Likelihood",
        r"\log p_\theta(x_0) = \log \mathcal N(x_1; 0, I) + \int_0^1 \nabla\!\cdot u_\theta(x_t, t)\,dt,"
        r"\qquad \mathrm{KL}(p\,\|\,p_\theta) = \mathbb E_p[-\log p_\theta] - H(p)",
        "the oracle's points sit on the exact log p (KL ≈ 0: only the solver's error); the model's "
        "spread around it and its KL is what training left. The ELBO panel shows at which steps t the "
        "model's bound exceeds the oracle's — mostly the low-noise end.",
        "Song et al. 2021 (probability-flow ODE likelihood); Chen et al. 2018 and Grathwohl et al. 2019 "
        "(the divergence integral); Ho et al. 2020 (the ELBO's terms L_t)",
        key="lik_ds")
    run, trained = source(dataset)
    c2.caption(f"Model: {trained.summary}." if trained is not None else
               "No trained model for this data set (train one on the Toy sandbox page): the oracle alone.")
    n, n_elbo, seed, grid = _form()
    with readable_errors("The likelihood"):
        _results(dataset, run, trained, n, n_elbo, seed)
        if grid:
            _grid(dataset, run, trained)
