"""The Discrete diffusion page in a real Chromium (the shared harness, browser_harness.py): opened by URL with a
short training and two KL points, it trains the small model behind its button, computes the KL chart, moves the
step slider (the bars redraw) and saves ``discrete.png`` (to ``docs/screenshots/`` with TOYDIFF_SCREENSHOTS=1)."""

from __future__ import annotations

import time

import browser_harness as H
from browser_harness import MARKS, press

pytestmark = MARKS

PLOTS_DRAWN = """() => { const c = [...document.querySelectorAll('.stPlotlyChart')];
  return c.length > 0 && c.every(p => p.querySelector('.main-svg')); }"""
CHART_DATA = "n => JSON.stringify(document.querySelectorAll('.js-plotly-plot')[n].data.map(t => [t.x, t.y, t.z]))"


def test_discrete_page_in_chromium(server, browser, tmp_path):
    timings: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    page = H.open_app(browser, server.rstrip("/") + "/discrete?train=50&kl=2,8&steps=8")
    page.wait_for_function(PLOTS_DRAWN)
    if page.locator('[role="dialog"]').count():  # Streamlit's "Page not found" on a cold deep link; the page runs
        page.keyboard.press("Escape")
        page.locator('[role="dialog"]').wait_for(state="detached")
    timings.append(("Discrete: first paint (cold server; exact denoiser as the model)", time.perf_counter() - t0))
    H.clean(page)
    assert page.locator(".stPlotlyChart").count() == 2
    H.timed(page, timings, "Discrete: train a small model (50 steps)",
            lambda: page.get_by_role("button", name="Train a small model").click(), ready=(PLOTS_DRAWN,))
    H.clean(page)
    assert page.get_by_text("Bayes floor (exact denoiser, same draws)").count() == 1
    before = page.evaluate(CHART_DATA, 1)
    H.timed(page, timings, "Discrete: step slider +1", press(page, "Step", "ArrowRight"), ready=(PLOTS_DRAWN,))
    assert page.evaluate(CHART_DATA, 1) != before, "moving the step did not redraw the bars"
    H.timed(page, timings, "Discrete: KL against steps (4 samplers × 2 step counts, model + exact, n = 500)",
            lambda: page.get_by_role("button", name="Compute KL against steps").click(), ready=(PLOTS_DRAWN,))
    H.clean(page)
    assert page.locator(".stPlotlyChart").count() == 3 and "train=50" in page.url
    H.screenshot(page, "discrete", tmp_path, ready=H.PLOTLY_LAID_OUT)
    H.print_timings(timings)
    page.close()
