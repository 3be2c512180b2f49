"""End to end in a real browser: ``toydiff app`` (``python -m apps.launch``) on 127.0.0.1 and Debian's Chromium
driven by Playwright. Every page is visited, a widget moved and the figure it feeds seen to change, and the
rendered plots and the absence of error boxes checked; one screenshot per page lands in the test's folder (and
in ``docs/screenshots/`` with TOYDIFF_SCREENSHOTS=1). Every wait is for a condition (the script run an action
started has finished, images have loaded), never a fixed sleep.

Never runs ``playwright install``: it uses /usr/bin/chromium and skips where that is missing.
"""

from __future__ import annotations

import time

from browser_harness import IMAGES_LOADED, MARKS, check_and_shoot, image_sources, nav, open_app, rerun, slider

pytestmark = MARKS


def nudge_slider(page, label: str, key: str = "ArrowRight") -> None:
    """Move the slider whose label is exactly ``label`` one step with the keyboard; some figure must change."""
    s = slider(page, label)
    before = image_sources(page)
    s.focus()
    with rerun(page):
        s.press(key)
    assert image_sources(page) != before, f"moving {label!r} changed no figure"


def open_via_nav(page, title: str) -> None:
    with rerun(page, timeout_ms=120_000):
        nav(page, title)()


def test_every_page_in_chromium(server, browser, tmp_path):
    t0 = time.monotonic()
    page = open_app(browser, server, timeout_ms=60_000)
    page.wait_for_function(IMAGES_LOADED)

    # 1. schedules: the default page
    nudge_slider(page, "q_sample draws")
    check_and_shoot(page, "schedules", tmp_path)

    # 2. toy sandbox and motion: tests/apps/test_browser_toy_motion.py (Plotly charts, not images)

    # 3. sampler lab: the oracle's convergence sweep; move the side-by-side step count
    open_via_nav(page, "Sampler lab")
    nudge_slider(page, "Steps", "ArrowLeft")
    check_and_shoot(page, "samplers", tmp_path)

    # 4. MNIST: the committed class-conditional checkpoint; move the guidance scale
    open_via_nav(page, "MNIST")
    nudge_slider(page, "Guidance scale w (0 = unconditional, 1 = conditional)")
    check_and_shoot(page, "mnist", tmp_path)

    # 5. image lab: SDEdit on a test digit; pick another test image of that digit
    open_via_nav(page, "Image lab")
    nudge_slider(page, "Which one (n-th test image of that digit)")
    check_and_shoot(page, "image_lab", tmp_path)

    page.close()
    print(f"browser walk through 4 pages: {time.monotonic() - t0:.1f} s")


# --- the Discrete diffusion page (issue #26) ---------------------------------------------------------------


DISCRETE_CHART_DATA = "n => JSON.stringify(document.querySelectorAll('.js-plotly-plot')[n].data.map(t => [t.x, t.y, t.z]))"


def test_discrete_page_in_chromium(server, browser, tmp_path):
    """The Discrete diffusion page, opened by URL with a short training and one KL point: train behind the button,
    move the step slider (the bars redraw), compute the KL chart; saves ``discrete.png``."""
    import browser_harness as H
    from browser_harness import press

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
