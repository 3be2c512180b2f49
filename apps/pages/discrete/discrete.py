"""Discrete diffusion, exactly: masked (absorbing) and uniform diffusion on small categorical tables, where the
exact denoiser p(x₀ⁱ | x_t) is known by enumeration. The forward masking over time, one sequence unmasked step
by step with the exact posterior bars beside the model's, and KL against steps for each sampler, model vs exact.
All maths from :mod:`toydiff.discrete`; figures from :mod:`toydiff.discrete.figures`."""

from __future__ import annotations

import streamlit as st

from apps.charts import section_notes, show_chart
from apps.common import url_state
from apps.common.ui import readable_errors, session_memo
from apps.pages.discrete import work
from toydiff.discrete.data import DATASETS
from toydiff.discrete.figures import forward_grid_plotly, kl_steps_plotly, unmasking_plotly
from toydiff.discrete.processes import DISCRETE_PROCESSES
from toydiff.discrete.samplers import DISCRETE_METHODS

STEPS = (4, 8, 16, 32, 64)
KL_STEPS = (1, 2, 4, 8, 16, 32, 64)
#: the page's URL settings (apps.common.url_state)
URL_SPEC = (url_state.Param("dc_data", str, "shapes", choices=tuple(DATASETS), url="data"),
            url_state.Param("dc_proc", str, "masked", choices=tuple(DISCRETE_PROCESSES), url="proc"),
            url_state.Param("dc_seed", int, 0, bounds="seed", url="seed"),
            url_state.Param("dc_method", str, "ancestral", choices=tuple(DISCRETE_METHODS), url="method"),
            url_state.Param("dc_steps", int, 16, choices=STEPS, url="steps"),
            url_state.Param("dc_train_steps", int, 300, choices=work.PAGE_STEPS, url="train"),
            url_state.Param("dc_kl_steps", "int_list", [1, 2, 4, 8, 16, 32], choices=KL_STEPS, url="kl"))
url_state.restore("discrete", URL_SPEC)
url_state.defaults(URL_SPEC)

st.title("Discrete diffusion, exactly")
st.caption("Every data set here is a table: the probability of each of its V^L sequences is known, so the "
           "denoiser p(x₀ⁱ | x_t), the Bayes floor of the loss and the KL of a sampler's output are exact.")
c1, c2, c3 = st.columns(3)
dataset = c1.selectbox("Data set", tuple(DATASETS), key="dc_data",
                       help="shapes: 3 × 3 binary pictures; words: four 5-letter words with typos; markov: a chain")
process = c2.selectbox("Process", tuple(DISCRETE_PROCESSES), key="dc_proc",
                       help="masked (absorbing, MDLM) or uniform (D3PM), continuous time, linear schedule")
seed = int(c3.number_input("Seed", *url_state.BOUNDS["seed"], key="dc_seed"))

# --- the model: trained in the page, or the exact denoiser until then ---------------------------------------
with st.form("dc_train_form", border=False):
    t1, t2 = st.columns([3, 1])
    train_steps = t1.select_slider("Training steps (MLP 2 × 64 on one-hot tokens, MDLM / D3PM loss)",
                                   work.PAGE_STEPS, key="dc_train_steps")
    go = t2.form_submit_button("Train a small model", key="dc_train")
run = work.trained(dataset, process)
if go:
    with st.spinner("Training…"), readable_errors("Training"):
        run = work.train(dataset, process, train_steps)
if run is None:
    base = work.untrained(dataset, process)
    st.info("No model trained yet: the sections use the **exact denoiser** as the model. Press *Train a small "
            "model* (a few seconds) to put a trained one beside it.", icon="ℹ️")
else:
    base = run
    h = run.history
    m1, m2, m3 = st.columns(3)
    m1.metric("Held-out loss (nats / sequence)", f"{h.val_loss[-1]:.4f}")
    m2.metric("Bayes floor (exact denoiser, same draws)", f"{h.floor:.4f}")
    m3.metric("Ratio", f"{h.val_loss[-1] / h.floor:.3f}")
label = "model" if run is not None else "exact (as the model)"

st.subheader("(a) Forward process: data → noise")
section_notes(r"q(x_t^i \mid x_0^i) = \bar\alpha_t\,\delta_{x_0^i} + (1-\bar\alpha_t)\,m,\qquad \bar\alpha_t = 1 - t",
              "Each token is replaced independently, with probability 1 − ᾱ_t, by a draw from m: the mask ▢ "
              "(absorbing) or a uniform symbol. Each row keeps its own uniforms, so a masked token stays masked.",
              "Austin et al. 2021 (D3PM); Sahoo et al. 2024 (MDLM)")
with readable_errors("The forward process"):
    show_chart(forward_grid_plotly(work.forward(dataset, process, 6, seed),
                                   title=f"{dataset}: six sequences at five times"), key="dc_fwd_chart")

st.subheader("(b) One sequence, step by step")
section_notes(r"p(x_s \mid x_t) = \sum_v p(x_0^i = v \mid x_t)\, q(x_s^i \mid x_t^i, x_0^i = v)",
              "The bars are p(x₀ⁱ | x_t) at each position: the exact posterior (blue) beside the model's (orange) "
              "on the very same x_t. Masked positions carry the uncertainty; an unmasked one is certain.",
              "Austin et al. 2021; Sahoo et al. 2024; Campbell et al. 2022; Chang et al. 2022 (MaskGIT)")
with st.form("dc_unmask_form", border=False):
    u1, u2 = st.columns(2)
    methods = base.process.methods
    if st.session_state["dc_method"] not in methods:
        st.session_state["dc_method"] = "ancestral"
    method = u1.selectbox("Sampler", methods, key="dc_method")
    steps = int(u2.select_slider("Steps", STEPS, key="dc_steps"))
    st.form_submit_button("Sample a sequence", key="dc_unmask_go")
with readable_errors("The unmasking"):
    path = session_memo("dc_path", (dataset, process, id(run), method, steps, seed),
                        lambda: work.unmasking(base, run is not None, method, steps, seed))
    k = st.slider("Step", 1, len(path.t), 1, key=f"dc_step_{len(path.t)}") - 1
    show_chart(unmasking_plotly(path, k, model_label=label), key="dc_unmask_chart")

st.subheader("(c) KL to the table against steps, per sampler")
section_notes(r"\mathrm{KL}(\hat p \,\|\, p) = \sum_x \hat p(x)\log\frac{\hat p(x)}{p(x)}",
              "Solid: the model; dashed: the exact denoiser under the same sampler and steps; grey: the count floor "
              "(KL of n true draws, ± 2 sd). MaskGIT's confidence ordering stalls above the floor even when exact.",
              "Chang et al. 2022; Campbell et al. 2022")
with st.form("dc_kl_form", border=False):
    k1, k2 = st.columns([2, 1])
    kl_steps = k1.multiselect("Sampler steps", KL_STEPS, key="dc_kl_steps")
    n_kl = k2.select_slider("Samples per point", (250, 500, 1000, 2000), value=500, key="dc_kl_n")
    kl_go = st.form_submit_button("Compute KL against steps", key="dc_kl_go")
if kl_go:
    with st.spinner("Sampling every sampler at every step count…"), readable_errors("The KL chart"):
        st.session_state["dc_kl"] = (dataset, process, id(run), work.kl_curves(base, run is not None, tuple(sorted(kl_steps)) or (16,),
                                                                               n_kl, seed))
kl = st.session_state.get("dc_kl")
if kl is not None and kl[:3] == (dataset, process, id(run)):
    show_chart(kl_steps_plotly(kl[3], title=f"{dataset}, {process}: KL against steps ({label} vs exact)"),
               key="dc_kl_chart")
else:
    st.caption("Press *Compute KL against steps* (a few seconds).")

url_state.publish(URL_SPEC)
