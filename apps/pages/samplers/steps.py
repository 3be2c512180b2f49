"""The Sampler lab's "optimal steps" section: the N levels :func:`toydiff.sampling.optimal_steps.optimal_steps`
finds on the exact oracle (Align Your Steps' idea, Sabour et al. 2024, with the exact flow map as the judge),
beside linspace / trailing / karras / logsnr: where each puts its levels on the log-SNR axis and the pathwise
error each gives on fresh x_T (seeds the search never saw). The search takes seconds, so it runs behind a form
button and is cached by its arguments."""

from __future__ import annotations

import statistics

import streamlit as st

from apps.charts import show_chart
from apps.common.ui import markdown_table, readable_errors
from apps.pages.toy.data import mixture_of
from toydiff.sampling.optimal_steps import START_SPACINGS, exact_targets, optimal_steps, start_draws, steps_error
from toydiff.toy.figures.steps import levels_plotly

#: the deterministic samplers offered, and the budgets
STEP_METHODS = ("ddim", "dpm++2m", "heun", "euler")
BUDGETS = (3, 5, 10, 20)
#: the search's draws and budget, and the held-out check (seeds 1..HELD_SEEDS of HELD_N points)
SEARCH_N, SEARCH_EVALUATIONS, HELD_N, HELD_SEEDS = 128, 200, 256, 3


@st.cache_data(max_entries=32, show_spinner="Searching the levels (seconds)…")
def levels_result(key: tuple, _schedule, dataset: str, method: str, n_steps: int) -> dict:
    """``{"grids": {label: {"timesteps", "log_snr", "error": (mean, sd)}}, "evaluations", "search_error"}``:
    every fixed spacing and the optimised levels, errors on held-out draws. ``key`` names the schedule."""
    gm = mixture_of(dataset)
    opt = optimal_steps(gm, _schedule, method, n_steps, n=SEARCH_N, seed=0, max_evaluations=SEARCH_EVALUATIONS)
    draws = [(x, exact_targets(gm, _schedule, x)) for x in (start_draws(gm, HELD_N, s)
                                                           for s in range(1, HELD_SEEDS + 1))]
    plans = {s: tuple(_schedule.respace(n_steps, s).timesteps) for s in START_SPACINGS}
    plans["optimised"] = opt.timesteps
    lam = _schedule.log_snr
    grids = {}
    for label, ts in plans.items():
        errs = [steps_error(gm, _schedule, method, ts, x, ex) for x, ex in draws]
        grids[label] = {"timesteps": list(ts), "log_snr": [float(lam[t]) for t in ts],
                        "error": (statistics.mean(errs), statistics.stdev(errs))}
    return {"grids": grids, "evaluations": opt.evaluations, "search_error": opt.error}


def show_optimal_steps(key: tuple, dataset: str, schedule) -> None:
    """The section: a form (sampler, N) and, once pressed, the levels chart and table (kept across reruns)."""
    budgets = [b for b in BUDGETS if b <= schedule.T]
    with st.form("steps_form"):
        c1, c2 = st.columns(2)
        method = c1.selectbox("Sampler", STEP_METHODS, key="steps_method")
        n_steps = int(c2.select_slider("Levels N", budgets, value=10 if 10 in budgets else budgets[-1],
                                       key="steps_n"))
        if st.form_submit_button("Optimise the levels", type="primary"):
            st.session_state["steps_args"] = (method, n_steps)
    args = st.session_state.get("steps_args")
    if args is None:
        st.info("Pick a sampler and a budget, then press **Optimise the levels** (a search of a few seconds).")
        return
    method, n_steps = args
    with readable_errors("Optimising the levels"):
        res = levels_result(key, schedule, dataset, method, n_steps)
        grids = res["grids"]
        show_chart(levels_plotly(grids), key="steps_chart")
        best = min(START_SPACINGS, key=lambda s: grids[s]["error"][0])
        margin = grids[best]["error"][0] / grids["optimised"]["error"][0]
        st.metric(f"{method}, {n_steps} levels: best fixed spacing ({best}) / optimised", f"{margin:.2f}×")
        st.caption(f"Pathwise error: RMS of x̂_0 − Φ(x_T) against the exact flow map from the same x_T, in data "
                   f"standard deviations, mean ± sd over {HELD_SEEDS} held-out seeds of {HELD_N} x_T. The search "
                   f"(compass search in log-SNR, {res['evaluations']} sampler runs) saw only its own {SEARCH_N} "
                   "quasi-random x_T.")
        markdown_table([{"grid": lab, "error": f"{g['error'][0]:.4f} ± {g['error'][1]:.4f}",
                         "levels t": ", ".join(map(str, g["timesteps"]))} for lab, g in grids.items()])
