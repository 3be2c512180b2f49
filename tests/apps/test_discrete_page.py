"""The Discrete diffusion page through AppTest: it opens on the exact denoiser (no training), draws the forward
grid and the step-by-step bars, trains a small model behind its button, computes the KL chart, and keeps its
settings in the URL."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from app_harness import charts, metrics, open_page  # noqa: E402
from app_harness import clean as assert_clean  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_discrete_page_opens_on_the_exact_denoiser_and_trains_a_model():
    at = assert_clean(open_page("discrete", data="words", steps="4", kl="2"))
    assert at.selectbox(key="dc_data").value == "words"
    assert any("exact denoiser" in i.value for i in at.info)
    figs = charts(at)
    assert len(figs) == 2  # the forward grid and the bars (the KL chart waits for its button)
    bars = [t for t in figs[1]["data"] if t["type"] == "bar"]
    assert len(bars) == 2 * 5  # exact and model per position (L = 5)
    at.select_slider(key="dc_train_steps").set_value(50)
    at.button(key="dc_train").click().run()
    assert_clean(at)
    m = metrics(at)
    assert float(m["Ratio"]) > 0.99 and "Bayes floor (exact denoiser, same draws)" in m
    at.select_slider(key="dc_kl_n").set_value(250)
    at.button(key="dc_kl_go").click().run()
    assert_clean(at)
    kl = charts(at)[-1]
    names = {t["name"] for t in kl["data"]}
    assert {"ancestral (model)", "ancestral (exact)", "maskgit (exact)"} <= names
    at.selectbox(key="dc_proc").set_value("uniform").run()
    assert_clean(at)
    assert at.query_params["proc"] == "uniform" and "maskgit" not in at.selectbox(key="dc_method").options


def test_a_bad_url_value_falls_back_with_a_note():
    at = assert_clean(open_page("discrete", steps="7", data="nope"))
    assert at.selectbox(key="dc_data").value == "shapes"
