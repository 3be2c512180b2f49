"""Labs page, section "Few-step": a seeded cloud of x_1 moved in ONE jump by each few-step method and by the
exact probability-flow map Φ_{1→0}, every point coloured by its distance to the exact map (one colour scale for
all panels), and the RMS error of one jump x_t → 0 against t. Methods: the exact oracle's Euler / Heun / DPM++(2M)
at 1 and 2 evaluations (what a perfect model gives at that budget) and every trained few-step toy checkpoint
found (a process with ``.jump``; under ``runs/``, ``TOYDIFF_RUNS_DIR`` or the shipped weights). Metrics from
:mod:`toydiff.evaluation.few_step`; figures from :mod:`toydiff.toy.figures.few_step`."""

from __future__ import annotations

from dataclasses import replace

import os
from pathlib import Path

import numpy as np
import streamlit as st
import torch

import toydiff as td
from apps.charts import csv_bytes, downloads, mixture_section, show_chart
from apps.common import url_state
from apps.common.models import REPO_ROOT
from apps.common.ui import fig_png, readable_errors
from apps.pages.toy.data import dataset_names
from toydiff.evaluation import few_step as fs
from toydiff.toy.datasets import Normalizer, get_dataset
from toydiff.toy.figures.few_step import jump_error_mpl, jump_error_plotly, one_jump_mpl, one_jump_plotly
from toydiff.toy.training import KIND as TOY_KIND
from toydiff.training.checkpoint import checkpoint_kind, read_metadata

__all__ = ["URL_SPEC", "DEFAULTS", "ORACLE", "section", "checkpoints", "one_jump"]

#: the exact oracle's methods: label → (solver, evaluations); Heun spends 2 a step, so it has no 1-evaluation jump
ORACLE = {f"{lab} · {b} NFE": (m, b) for b in (1, 2) for m, lab in fs.SOLVERS.items()
          if fs.solver_steps(m, b, td.interpolants.linear()) is not None}
SAMPLES = (200, 500, 1000)
TS = tuple(np.round(np.linspace(0.1, 1.0, 10), 2))  # the error-against-t chart's starting times
N_CURVE = 200  # draws of x_t per t
#: the shipped few-step run's label (toydiff/toy/weights/few_step/8gaussians: flow-map distillation from the exact
#: teacher), shown by default where its data set is picked (a default method absent from the options is dropped)
SHIPPED_LABEL = "jump/distill (8gaussians)"
#: the section's URL settings (apps.common.url_state); trained checkpoints are named in fs_methods by their label
URL_SPEC = (url_state.Param("fs_ds", str, "8gaussians", choices=tuple(dataset_names(oracle_only=True))),
            url_state.Param("fs_methods", "str_list",
                            ["Euler · 1 NFE", "Heun (Karras) · 2 NFE", "DPM++(2M) · 2 NFE", SHIPPED_LABEL]),
            url_state.Param("fs_n", int, 500, choices=SAMPLES),
            url_state.Param("fs_seed", int, 0, bounds="seed"))
#: the section's other widgets' defaults
DEFAULTS: dict = {}
TRAIN_HINT = ("No trained few-step checkpoint of this data set was found (under `runs/`, `TOYDIFF_RUNS_DIR` or "
              "the shipped weights), so only the exact oracle's solvers are shown. Train one and it is listed here: a "
              "process with `.jump` (shortcut / MeanFlow / flow-map distillation, consistency), e.g. `toydiff toy "
              "train --dataset two_gaussians --process jump --objective distill --out runs/map`, or a flow run "
              "(after `toydiff toy reflow`), moved by one Euler step; `python bench/few_step_judge.py --checkpoint "
              "runs/map` gives its table.")


def _roots() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("TOYDIFF_RUNS_DIR", "").split(os.pathsep) if p]
    shipped = Path(td.__file__).resolve().parent / "toy" / "weights"
    return [*extra, Path(os.getcwd()) / "runs", REPO_ROOT / "runs", shipped]


@st.cache_resource(max_entries=64, show_spinner=False)
def _load(path: str, stamp: float):
    """A toy run if ``path`` is one the judge can move in one jump (:func:`fs.method_of_run`: a process with
    ``.jump``, or a flow run by Euler on its field), else None."""
    from toydiff.toy.run import load_toy

    try:
        run = load_toy(path)
        fs.method_of_run(run)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return run


def checkpoints(dataset: str) -> dict[str, str]:
    """``{label: path}`` of the few-step toy checkpoints of ``dataset`` found under :func:`_roots`."""
    found: dict[str, str] = {}
    for root in _roots():
        for p in sorted(root.rglob("*.safetensors")) if root.is_dir() else ():
            meta = read_metadata(p)  # the header alone: an MNIST model or a distillation's path cache is skipped
            if meta is None or checkpoint_kind(meta) != TOY_KIND:  # unread, however large
                continue
            run = _load(str(p.resolve()), p.stat().st_mtime)
            if run is not None and run.dataset.name == dataset:
                found.setdefault(fs.method_of_run(run, p).label, str(p.resolve()))
    return found


def _to_display(x: torch.Tensor, run, norm: Normalizer) -> np.ndarray:
    """A checkpoint's model units → the oracle's (both through data units)."""
    return norm.forward(run.normalizer.inverse(x.double())).numpy()


def _oracle(dataset: str):
    ds = get_dataset(dataset)
    norm = Normalizer.from_mixture(ds.mixture)
    return norm, norm.oracle(ds.mixture), td.interpolants.linear()


@st.cache_data(max_entries=16, show_spinner="The exact map to tolerance (scipy DOP853)…")
def _exact(dataset: str, n: int, seed: int) -> tuple:
    """``(x_1 [n, D], Φ_{1→0}(x_1) [n, D], exact_jumps over TS)`` of the oracle, shared by every choice of
    methods."""
    _, gm, interp = _oracle(dataset)
    x_1 = torch.randn(n, gm.D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x_1, fs.ExactMap(gm, interp).jump(x_1, 1.0, 0.0), fs.exact_jumps(gm, interp, TS, n=N_CURVE, seed=seed)


@st.cache_data(max_entries=16, show_spinner="Jumping: one call per method…")
def one_jump(dataset: str, methods: tuple, n: int, seed: int, ckpts: tuple) -> dict:
    """The cloud (``x_1``, ``exact``, ``jumps``, ``references``) and the curves (``errors`` over ``TS``) for the
    oracle ``methods`` and the checkpoints ``ckpts`` ``((label, path), ...)``, in the oracle's model units."""
    norm, gm, interp = _oracle(dataset)
    x_1, exact, ref = _exact(dataset, n, seed)
    oracle = [fs.OracleSolver(gm, interp, *ORACLE[m], label=m) for m in methods]
    out = {"x_1": x_1.numpy(), "exact": exact.numpy(), "references": {},
           "jumps": {m.label: m.jump(x_1, 1.0, 0.0).numpy() for m in oracle}}
    out["errors"] = fs.jump_error_curves(oracle, gm, interp, TS, reference=ref) if oracle else {}
    for label, path in ckpts:
        run = _load(path, Path(path).stat().st_mtime)
        method, cgm = replace(fs.method_of_run(run, path), label=label), run.oracle
        out["jumps"][label] = _to_display(method.jump(x_1, 1.0, 0.0), run, norm)
        out["references"][label] = _to_display(fs.ExactMap(cgm, method.process).jump(x_1, 1.0, 0.0), run, norm)
        out["errors"].update(fs.jump_error_curves([method], cgm, method.process, TS, n=N_CURVE, seed=seed))
    return out


def _form(options: list[str]) -> tuple:
    st.session_state["fs_methods"] = [m for m in st.session_state.get("fs_methods", []) if m in options]
    with st.form("fs_form"):
        c1, c2, c3 = st.columns([4, 1, 1])
        methods = c1.multiselect("Methods (one jump from t = 1 each)", options, key="fs_methods")
        n = int(c2.select_slider("Points x_1", SAMPLES, key="fs_n"))
        seed = int(c3.number_input("Seed", *url_state.BOUNDS["seed"], key="fs_seed"))
        st.form_submit_button("Jump", type="primary")
    return methods, n, seed


def _show(dataset: str, r: dict, n: int, seed: int) -> None:
    fig = one_jump_plotly(r["x_1"], r["jumps"], r["exact"], r["references"])
    show_chart(fig, key="fs_cloud")
    st.caption(f"{n:,} points x_1 ~ N(0, I) (seed {seed}) in model units (the data normalised by the mixture's exact "
               "mean and std), each moved by ONE call of the method's jump from t = 1 to 0; colour: the distance "
               "to the exact map Φ(x_1, 1 → 0) (scipy DOP853, tolerance 1e-10), one scale for every panel (top: the "
               "98th percentile). On a linear path one Euler step from pure noise lands on the data mean, and "
               "DPM++(2M) equals Euler at 1 and 2 evaluations.")
    downloads(f"one_jump_{dataset}", key="fs_cloud_dl", fig=fig,
              png=lambda: fig_png(one_jump_mpl(r["x_1"], r["jumps"], r["exact"], r["references"])))
    errs = {**r["errors"], fs.ExactMap.label: np.zeros(len(TS))}
    curve = jump_error_plotly(TS, errs)
    show_chart(curve, key="fs_curve")
    st.caption(f"RMS error of one jump x_t → 0 against Φ(x_t, t → 0), in units of the data's std; {N_CURVE} draws "
               "of the marginal x_t per t (the same draws for every oracle method). Where a method's error sits in "
               "t is where its training (or its solver) is weakest.")
    header = ["t", *errs]
    downloads(f"few_step_{dataset}", key="fs_dl", fig=curve,
              csv=csv_bytes(np.column_stack([TS, *errs.values()]), header),
              png=lambda: fig_png(jump_error_mpl(TS, errs, title=f"{dataset}: one jump x_t → 0")))


def section() -> None:
    """The whole section (widgets keyed ``fs_*``)."""
    dataset, c2 = mixture_section(
        "Few-step",
        r"\hat x_0 = \mathrm{jump}(x_1,\,1 \to 0)\quad\text{vs}\quad \Phi(x_1,\,1\to 0),\qquad "
        r"\frac{dx_t}{dt} = \mathbb{E}[\varepsilon - x_0 \mid x_t]",
        "every few-step generator approximates the flow map Φ; on a Gaussian mixture Φ is exact, so each point's "
        "colour is the method's own error, with no sampling noise. The exact oracle's solvers at 1–2 evaluations "
        "are the bar: a trained one-step model should beat them.",
        "Song et al. 2023 (consistency models); Frans et al. 2024 (shortcut models); Geng et al. 2025 (Mean Flows); "
        "Boffi et al. 2024 (flow map matching); Liu et al. 2023 (rectified flow)",
        key="fs_ds")
    found = checkpoints(dataset)
    if found:
        c2.caption("Trained few-step checkpoints: " + ", ".join(found) + " (each judged against its own exact map, "
                   "in its own normalisation).")
    else:
        c2.info(TRAIN_HINT)
    methods, n, seed = _form([*ORACLE, *found])
    if not methods:
        st.info("Pick at least one method, then press **Jump**.")
        return
    with readable_errors("Few-step"):
        r = one_jump(dataset, tuple(m for m in methods if m in ORACLE), n, seed,
                     tuple((m, found[m]) for m in methods if m in found))
        _show(dataset, r, n, seed)
