"""Labs: the exact answers toydiff can give that pictures alone cannot — what guidance samples against its tilted
target, flow matching against diffusion on the same x_1, a model's likelihood against the exact one, and what
the optimal denoiser of a finite training set does (it copies), and few-step methods against the exact flow map.
Each section is a module (``apps/pages/labs/*.py``); all maths comes from ``toydiff``. The page's settings travel in the URL."""

from __future__ import annotations

import streamlit as st

from apps.common import url_state
from apps.pages.labs import few_step, flow, guidance, likelihood, memorise

#: section name (the URL's ``labs_section``) → its module; only the chosen section runs
NAMES = {"guidance": guidance, "flow vs diffusion": flow, "likelihood": likelihood, "memorisation": memorise,
         "few-step": few_step}
SECTIONS = tuple(NAMES.values())
#: the page's URL settings: the section, then every section's own (apps.common.url_state)
URL_SPEC = (url_state.Param("labs_section", str, "guidance", choices=tuple(NAMES)),
            *(p for m in SECTIONS for p in m.URL_SPEC))

st.title("Labs")
st.caption("Exact answers on toy data: every number here comes from the closed-form oracle of a Gaussian mixture, "
           "so what you see is the method itself, with no learning error.")
url_state.restore("labs", URL_SPEC)
url_state.defaults(URL_SPEC)
for m in SECTIONS:
    url_state.defaults(m.DEFAULTS)

section = st.segmented_control("Section", list(NAMES), key="labs_section", required=True) or "guidance"
NAMES[section].section()
# the URL names the view: this section's settings
url_state.publish((URL_SPEC[0], *NAMES[section].URL_SPEC))
