"""Labs: the exact answers toydiff can give that pictures alone cannot — what guidance samples against its tilted
target, flow matching against diffusion on the same x_1, a model's likelihood against the exact one, and what
the optimal denoiser of a finite training set does (it copies). Each section is a module (``apps.labs_*``); all maths
comes from ``toydiff``. The page's settings travel in the URL."""

from __future__ import annotations

import streamlit as st

from apps import labs_flow, labs_guidance, labs_likelihood, labs_memorise, page_state

#: section name (the URL's ``labs_section``) → its module; only the chosen section runs
NAMES = {"guidance": labs_guidance, "flow vs diffusion": labs_flow, "likelihood": labs_likelihood,
         "memorisation": labs_memorise}
SECTIONS = tuple(NAMES.values())
URL_KEYS = {"labs_section": str, **{k: v for m in SECTIONS for k, v in m.URL_KEYS.items()}}

st.title("Labs")
st.caption("Exact answers on toy data: every number here comes from the closed-form oracle of a Gaussian mixture, "
           "so what you see is the method itself, with no learning error.")
page_state.restore("labs", {k: (page_state.bool_param if v is bool else v) for k, v in URL_KEYS.items()},
                   {"labs_section": lambda v: v in NAMES, **{k: v for m in SECTIONS for k, v in m.ALLOWED.items()}})
page_state.defaults({"labs_section": "guidance"})
for m in SECTIONS:
    page_state.defaults(m.DEFAULTS)

section = st.segmented_control("Section", list(NAMES), key="labs_section", required=True) or "guidance"
NAMES[section].section()
page_state.publish(["labs_section", *NAMES[section].URL_KEYS])  # the URL names the view: this section's settings
