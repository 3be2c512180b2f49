"""The Discrete diffusion page in a real Chromium (the shared harness, browser_harness.py: ``toydiff app`` on
127.0.0.1, Debian's /usr/bin/chromium, every wait for a condition, never a fixed sleep). The other pages:
test_browser_labs.py (Schedules, Sampler lab, MNIST, Image lab), test_browser_labs_page.py (Labs) and
test_browser_toy_motion.py (Toy sandbox, Motion).
"""

from __future__ import annotations

import time

import browser_harness as H
from browser_harness import MARKS, press

pytestmark = MARKS


DISCRETE_CHART_DATA = "n => JSON.stringify(document.querySelectorAll('.js-plotly-plot')[n].data.map(t => [t.x, t.y, t.z]))"


def test_discrete_page_in_chromium(server, browser, tmp_path):
    """The Discrete diffusion page, opened by URL with a short training and one KL point: train behind the button,
    move the step slider (the bars redraw), compute the KL chart; saves ``discrete.png``."""
    timings: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    page = H.open_app(browser, server.rstrip("/") + "/discrete?train=50&kl=4&steps=8")
    page.wait_for_function(H.plots_drawn(2))
    if page.locator('[role="dialog"]').count():  # Streamlit's "Page not found" on a cold deep link; the page runs
        page.keyboard.press("Escape")
        page.locator('[role="dialog"]').wait_for(state="detached")
    timings.append(("Discrete: first paint (cold server; exact denoiser as the model)", time.perf_counter() - t0))
    H.clean(page)
    assert page.locator(".stPlotlyChart").count() == 2
    H.timed(page, timings, "Discrete: train a small model (50 steps)",
            lambda: page.get_by_role("button", name="Train a small model").click(), ready=(H.plots_drawn(2),))
    H.clean(page)
    assert page.get_by_text("Bayes floor (exact denoiser, same draws)").count() == 1
    before = page.evaluate(DISCRETE_CHART_DATA, 1)
    H.timed(page, timings, "Discrete: step slider +1", press(page, "Step", "ArrowRight"),
            ready=(H.plots_drawn(2),))
    assert page.evaluate(DISCRETE_CHART_DATA, 1) != before, "moving the step did not redraw the bars"
    H.timed(page, timings, "Discrete: KL against steps (4 samplers × 1 step count, model + exact, n = 500)",
            lambda: page.get_by_role("button", name="Compute KL against steps").click(), ready=(H.plots_drawn(3),))
    H.clean(page)
    assert page.locator(".stPlotlyChart").count() == 3 and "train=50" in page.url
    H.screenshot(page, "discrete", tmp_path, ready=H.PLOTLY_LAID_OUT)
    H.print_timings(timings)
    page.close()
