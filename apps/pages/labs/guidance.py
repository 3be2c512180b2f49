"""Labs page, section "Guidance, exactly": classifier-free guidance on a labelled 2-D mixture against the exact
tilted target p(x|y)^w p(x)^(1−w) and against p(x|y), the distance-vs-w curves with their floors, and the exact
class posterior p(y | x_t). All maths from :mod:`toydiff.toy.guidance_eval` / :mod:`toydiff.exact.guidance`;
figures (interactive and exported) from :mod:`toydiff.toy.figures.guidance`."""

from __future__ import annotations

import streamlit as st

from apps.common import url_state
from apps.charts import csv_bytes, downloads, section_notes, show_chart
from apps.common.ui import fig_png, markdown_table, readable_errors
from toydiff.exact.guidance import tilted_target
from toydiff.sampling.guidance import CFG_CONVENTIONS, guidance_interval
from toydiff.toy import guidance_eval as ge
from toydiff.toy.figures.guidance import (LOG_DECADES, class_posterior_mpl, class_posterior_plotly, guidance_curves_mpl,
                                          guidance_curves_plotly, guided_panels_mpl, target_panels_plotly)
from toydiff.toy.datasets import Normalizer
from toydiff.toy.labelled import LABELLED, get_labelled
from toydiff.toy.recipes import RECIPE_2D

__all__ = ["DATASETS", "URL_SPEC", "DEFAULTS", "section"]

DATASETS = tuple(n for n in LABELLED if get_labelled(n).has_oracle)
STEPS, SAMPLES, SWEEP_WS = (20, 50, 100, 250), (250, 500, 1000, 2000), (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
GRID = 128  # cells per axis of the tilted target's grid
KINDS, AUTO_FACTOR = ("CFG", "autoguidance"), 1.5

#: the section's URL settings (apps.common.url_state)
URL_SPEC = (url_state.Param("guide_ds", str, "moons_mixture", choices=DATASETS),
            url_state.Param("guide_kind", str, "CFG", choices=KINDS),
            url_state.Param("guide_y", int, 0, bounds="guide_y"),
            url_state.Param("guide_w", float, 3.0, bounds="guide_w"),
            url_state.Param("guide_conv", str, "scale", choices=CFG_CONVENTIONS),
            url_state.Param("guide_interval", bool, False),
            url_state.Param("guide_steps", int, 50, choices=STEPS),
            url_state.Param("guide_n", int, 500, choices=SAMPLES))
#: the section's other widgets' defaults
DEFAULTS: dict = {}

def _setup(dataset: str):
    ds = get_labelled(dataset)
    schedule = RECIPE_2D.schedule()
    return ds, schedule, Normalizer.from_mixture(ds.mixture)


def denoisers(kind: str, dataset: str) -> ge.Denoisers:
    """The exact good / bad pair of ``kind``: CFG (ε*(x|y), ε*(x)) or autoguidance (ε*(x|y) and the ε* of p(x|y)
    with every covariance widened by ``AUTO_FACTOR``², Karras et al. 2024)."""
    ds, schedule, nz = _setup(dataset)
    if kind == "autoguidance":
        return ge.oracle_autoguidance(ds.mixture, nz, schedule, AUTO_FACTOR)
    return ge.oracle_denoisers(ds.mixture, nz, schedule)


@st.cache_data(max_entries=64, show_spinner="Sampling with exact guidance…")
def guided(dataset: str, y: int, w_scale: float, limited: bool, steps: int, n: int, seed: int, kind: str = "CFG"):
    """Samples ``[n, 2]`` (data units), the tilted target p(x|y)^w p_bad^(1−w), p(x|y), and the row of scores."""
    ds, schedule, nz = _setup(dataset)
    den = denoisers(kind, dataset)
    iv = guidance_interval(schedule) if limited else None
    x = ge.guided_samples(den, schedule, nz, y, w_scale, n=n, seed=seed, interval=iv, steps=steps)
    cond = ds.mixture.condition(y)
    target = tilted_target(cond, den.bad_law(ds.mixture, y), w_scale, n=GRID)
    plain = tilted_target(cond, ds.mixture, 1.0, n=GRID)
    row = ge.guidance_row(x, ds.mixture, y, w_scale, source=den.name, interval="limited" if limited else "full",
                          seed=seed, target=target)
    return x, target, plain, row.to_dict()


@st.cache_data(max_entries=16, show_spinner="Sweeping w…")
def sweep(dataset: str, y: int, ws_scale: tuple, intervals: tuple, steps: int, n: int, seed: int,
          kind: str = "CFG") -> list[dict]:
    """Guidance-table rows (dicts) for every w (``"scale"``) and interval name ("full", "limited")."""
    ds, schedule, nz = _setup(dataset)
    den = denoisers(kind, dataset)
    targets = {float(w): tilted_target(ds.mixture.condition(y), den.bad_law(ds.mixture, y), w, n=GRID)
               for w in ws_scale}
    ivs = {name: (guidance_interval(schedule) if name == "limited" else None) for name in intervals}
    rows = ge.guidance_table(den, schedule, nz, ds.mixture, y=y,
                             ws=ws_scale, intervals=ivs, n=n, seed=seed, steps=steps, targets=targets)
    return [r.to_dict() for r in rows]


def _form(n_classes: int) -> tuple:
    with st.form("guide_form"):
        c1, c2, c3, c4 = st.columns(4)
        y = c1.selectbox("Class y", list(range(n_classes)), key="guide_y")
        w = c2.slider("Guidance weight w", *map(float, url_state.BOUNDS["guide_w"]), step=0.5, key="guide_w")
        conv = c3.radio("Convention", tuple(CFG_CONVENTIONS), key="guide_conv", horizontal=True,
                        help="scale: ε_u + w(ε_c − ε_u) (w = 1 conditional); ho-salimans: (1 + w)ε_c − wε_u "
                             "(w = 0 conditional) — the scale formula at w + 1")
        limited = c4.toggle("Limited interval", key="guide_interval",
                            help="Guide only where σ_t ∈ (0.28, 5.42] (Kynkäänniemi et al. 2024); ε_c alone elsewhere")
        steps = int(c1.select_slider("DDPM steps", STEPS, key="guide_steps"))
        n = int(c2.select_slider("Samples", SAMPLES, key="guide_n"))
        seed = int(c3.number_input("Seed", 0, 10_000, 0, key="guide_seed"))
        st.form_submit_button("Sample", type="primary")
    return y, w, conv, limited, steps, n, seed


def w_label(conv: str, kind: str) -> str:
    """The w axis's label for the CFG convention ``conv`` and the guidance ``kind``: CFG mixes ε_c and ε_u,
    autoguidance the good ε*(x|y) and its widened (bad) twin."""
    good, bad = ("ε_c", "ε_u") if kind == "CFG" else ("ε_good", "ε_bad")
    return f"w ({bad} + w ({good} − {bad}))" if conv == "scale" else f"w ((1 + w) {good} − w {bad})"


def _metrics(row: dict) -> None:
    cols = st.columns(5)
    cols[0].metric("SW₁ → tilted target", f"{row['sw_tilted']:.3f}",
                   help="sliced Wasserstein-1 (data units) between the samples and a draw of the "
                   "target; the floor is the same distance between two draws of the target")
    cols[0].caption(f"floor {row['sw_tilted_floor']:.3f}")
    cols[1].metric("SW₁ → p(x|y)", f"{row['sw_cond']:.3f}")
    cols[1].caption(f"floor {row['sw_cond_floor']:.3f}")
    cols[2].metric("class-y modes", f"{row['modes_covered']}/{row['n_modes']}")
    cols[3].metric("off-data share", f"{row['off_data']:.3f}")
    cols[4].metric("class share", f"{row['class_share']:.3f}")


def _samples_part(dataset: str, n_classes: int, kind: str) -> tuple:
    y, w, conv, limited, steps, n, seed = _form(n_classes)
    w_scale = float(CFG_CONVENTIONS[conv](w))
    x, target, plain, row = guided(dataset, y, w_scale, limited, steps, n, seed, kind)
    bad = "p(x)" if kind == "CFG" else "p_wide(x|y)"
    _metrics(row)
    fig = target_panels_plotly([(f"tilted target p(x|y)^{w_scale:g} {bad}^{1 - w_scale:g}", target),
                                     (f"p(x | y = {y})", plain)], x)
    show_chart(fig, key="guide_chart")
    st.caption(f"{n:,} DDPM samples ({steps} steps, exact {'ε_c and ε_u' if kind == 'CFG' else 'ε*(x|y) and its widened twin'}, {conv} w = {w:g}"
               f"{'' if conv == 'scale' else f' = scale w {w_scale:g}'}"
               f"{', guided only inside the interval' if limited else ''}) over each exact density, shaded as log₁₀ "
               f"density on its own scale ({LOG_DECADES:g} decades below each panel's peak, so sharp modes do not "
               "saturate the colours). Floors: the same "
               "distance between two independent draws of the target of this size.")
    downloads(f"guidance_{dataset}_y{y}_w{w_scale:g}", key="guide_dl", fig=fig, csv=csv_bytes(x.numpy(), ["x", "y"]),
              png=lambda: fig_png(guided_panels_mpl({w_scale: x}, {w_scale: target})))
    return y, conv, steps, n, seed


def _sweep_part(dataset: str, y: int, conv: str, steps: int, n: int, seed: int, kind: str) -> None:
    st.markdown("**Distance against w** (same class, sampler, steps and seed as above)")
    with st.form("guide_sweep_form"):
        c1, c2 = st.columns([3, 1])
        ws = c1.multiselect(f"w ({conv})", SWEEP_WS, default=[0.0, 1.0, 2.0, 4.0, 8.0], key="guide_ws")
        ivs = c2.multiselect("Intervals", ["full", "limited"], default=["full"], key="guide_ivs")
        st.form_submit_button("Sweep w")
    if not ws or not ivs:
        st.info("Pick at least one w and one interval, then press **Sweep w**.")
        return
    shift = CFG_CONVENTIONS[conv](0.0)
    rows = sweep(dataset, y, tuple(sorted(float(w) + shift for w in ws)), tuple(ivs), steps, n, seed, kind)
    rows = [{**r, "w": r["w"] - shift} for r in rows]  # back to the chosen convention's w
    xlabel = w_label(conv, kind)
    fig = guidance_curves_plotly(rows, xlabel=xlabel)
    show_chart(fig, key="guide_curves")
    markdown_table([{"interval": r["interval"], "w": r["w"], "→ tilted": r["sw_tilted"], "floor": r["sw_tilted_floor"],
                     "→ p(x∣y)": r["sw_cond"], "floor ": r["sw_cond_floor"], "off-data": r["off_data"],
                     "modes": f"{r['modes_covered']}/{r['n_modes']}", "class share": r["class_share"]} for r in rows])
    keys = ["w", "sw_tilted", "sw_tilted_floor", "sw_cond", "sw_cond_floor", "off_data", "modes_covered", "class_share"]
    downloads(f"guidance_sweep_{dataset}_y{y}", key="guide_sweep_dl", fig=fig, png=lambda: fig_png(guidance_curves_mpl(rows, xlabel=xlabel)),
              csv=csv_bytes([[r[k] for k in keys] for r in rows], keys))


def _posterior_part(dataset: str, y: int, T: int) -> None:
    st.markdown("**The exact class posterior p(y | x_t)** — what an ideal noisy classifier knows at step t")
    ds, schedule, _ = _setup(dataset)
    t = int(st.slider("Step t", 0, T - 1, key="guide_t"))
    ab = float(schedule.alpha_bars[t])
    fig = class_posterior_plotly(ds.mixture, ab, y, n=90)
    show_chart(fig, key="guide_posterior")
    downloads(f"class_posterior_{dataset}_y{y}_t{t}", key="guide_post_dl", fig=fig,
              png=lambda: fig_png(class_posterior_mpl(ds.mixture, ab, y, n=100)))


def section() -> None:
    """The whole section (widgets keyed ``guide_*``)."""
    st.header("Guidance, exactly")
    section_notes(r"\tilde\varepsilon = \varepsilon^*_{\text{bad}} + w\,(\varepsilon^*_{\text{good}} - "
                  r"\varepsilon^*_{\text{bad}})\quad\text{vs. the tilted target}\quad p_w(x) \propto p(x\mid y)^{w}"
                  r"\,p_{\text{bad}}(x)^{1-w},\qquad \text{CFG: } p_{\text{bad}} = p(x)",
                  "w = 0 and w = 1 land on the floor (p(x) and p(x|y) exactly); for w > 1 exact CFG drifts away from "
                  "the tilted target it is often said to sample, drops modes near the other class and pushes "
                  "samples outward — no learning error involved. The limited interval trades this off; autoguidance "
                  "(bad = a widened p(x|y)) stays far closer to its own tilted target and keeps the modes.",
                  "Ho & Salimans 2022 (CFG); Dhariwal & Nichol 2021 (classifier guidance); Kynkäänniemi et al. "
                  "2024 (guidance interval); Karras et al. 2024 (autoguidance)")
    c1, c2 = st.columns([1, 3])
    dataset = c1.selectbox("Labelled data set (exact mixture)", DATASETS, key="guide_ds")
    kind = c1.radio("Guidance", KINDS, key="guide_kind", horizontal=True,
                    help=f"CFG: bad = the unconditional ε*(x). Autoguidance (Karras et al. 2024): bad = the ε* of "
                         f"p(x|y) with every covariance widened ×{AUTO_FACTOR:g}² — an exact 'weaker model'")
    ds = get_labelled(dataset)
    c2.caption(f"{ds.description}; {ds.n_classes} classes. Schedule: the 2-D recipe's (linear β 1e-4 → 0.04, "
               f"T = 250), data normalised as a model sees it.")
    st.session_state.setdefault("guide_t", 60)
    if st.session_state.get("guide_y", 0) >= ds.n_classes:  # the class of another data set
        st.session_state["guide_y"] = 0
    with readable_errors("Guided sampling"):
        y, conv, steps, n, seed = _samples_part(dataset, ds.n_classes, kind)
        _sweep_part(dataset, y, conv, steps, n, seed, kind)
        _posterior_part(dataset, y, 250)
