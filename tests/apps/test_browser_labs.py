"""The Schedules, Sampler lab, MNIST and Image lab pages in a real Chromium (the shared harness, browser_harness.py:
``toydiff app`` on 127.0.0.1, Debian's /usr/bin/chromium, every wait for a condition, never a fixed sleep).

Every page here is visited, a widget moved and the figure it feeds seen to change, the rendered plots and the
absence of error boxes checked. It plays the MNIST denoising animation and checks its frames change in the browser without a rerun of the
script, times each interaction with the page defaults (printed as a table; the issue asks ≤ 2 s on 2 cores,
measured, never asserted), and saves one screenshot per page (to ``docs/screenshots/`` with
TOYDIFF_SCREENSHOTS=1).
"""

from __future__ import annotations

import re
import time

import browser_harness as H
from browser_harness import IMAGES_LOADED, MARKS, PLOTS_DRAWN, nav, press

pytestmark = MARKS


def timed(page, timings: list, what: str, action, timeout_ms: int = 120_000) -> float:
    return H.timed(page, timings, what, action, ready=(IMAGES_LOADED, PLOTS_DRAWN), timeout_ms=timeout_ms)


def toggle(page, label: str):
    return lambda: page.locator('[data-testid="stCheckbox"]').filter(has_text=label).first.locator("label").click()


CURRENT = "(plot) => plot.querySelector('.slider-group .slider-label').textContent"  # the slider's current value


def play_animation(page) -> tuple[str, str]:
    """Press ▶ Play on the MNIST animation; returns the slider's current label before and once it has moved
    twice (two frames drawn), checking that playback reran no script."""
    plot = page.locator(".js-plotly-plot").filter(has=page.locator(".updatemenu-button")).first
    handle = plot.element_handle()
    before = page.evaluate(CURRENT, handle)
    page.evaluate(H.ARM)  # playback must not rerun the script
    plot.locator(".updatemenu-button", has_text="Play").click()
    moved = "([plot, old]) => plot.querySelector('.slider-group .slider-label').textContent !== old"
    page.wait_for_function(moved, arg=[handle, before])
    later = page.evaluate(CURRENT, handle)
    page.wait_for_function(moved, arg=[handle, later])
    assert not page.evaluate("() => window.__ran"), "playing the animation reran the page"
    plot.locator(".updatemenu-button", has_text="Pause").click()
    return before, later


def test_lab_pages_in_chromium(server, browser, tmp_path):
    timings: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    page = H.open_app(browser, server)
    page.wait_for_function(H.IMAGES_LOADED)
    page.wait_for_function(PLOTS_DRAWN)
    timings.append(("Schedules: first paint (cold server)", time.perf_counter() - t0))

    # Schedules
    before = H.image_sources(page)
    timed(page, timings, "Schedules: q_sample draws +1", press(page, "q_sample draws", "ArrowRight"))
    assert H.image_sources(page) != before, "moving q_sample draws changed no figure"
    timed(page, timings, "Schedules: compare toggle off", toggle(page, "Compare with a second schedule"))
    assert re.search(r"sched_compare=0", page.url)  # the setting is in the URL
    timed(page, timings, "Schedules: compare toggle on", toggle(page, "Compare with a second schedule"))
    H.check_and_shoot(page, "schedules", tmp_path)

    # Sampler lab: its default sweep (9 lines x 4 step counts x 3 seeds), then cheap interactions
    timed(page, timings, "Sampler lab: open (default sweep, cold)",
          nav(page, "Sampler lab"))
    timed(page, timings, "Sampler lab: x axis to sampler steps", toggle(page, "x axis: network evaluations"))
    before = H.image_sources(page)
    timed(page, timings, "Sampler lab: side-by-side steps −1", press(page, "Steps", "ArrowLeft"))
    assert H.image_sources(page) != before, "moving the side-by-side steps changed no panel"
    timed(page, timings, "Sampler lab: seeds 3 → 4, Run the sweep",
          lambda: (press(page, "Seeds", "ArrowRight")(),
                   page.get_by_role("button", name="Run the sweep").click()))
    assert page.get_by_text("two true sets of this size sit here on average").count() >= 1
    timed(page, timings, "Sampler lab: x axis back to network evaluations", toggle(page, "x axis: network evaluations"))
    H.check_and_shoot(page, "samplers", tmp_path)

    # MNIST: the committed class-conditional model, a 10-image grid with the default sampler
    timed(page, timings, "MNIST: open (10-image grid + animation, cold)",
          nav(page, "MNIST"))
    grid_before = H.image_sources(page)
    timed(page, timings, "MNIST: guidance w +0.5 (10-image grid, ddim 25 steps)",
          press(page, "Guidance scale w (0 = unconditional, 1 = conditional)", "ArrowRight"))
    assert H.image_sources(page) != grid_before
    timed(page, timings, "MNIST: seed +1 (10-image grid + animation)",
          lambda: H.labelled(page, "stNumberInput", "Seed").locator("button").last.click())
    t = time.perf_counter()
    before, later = play_animation(page)
    timings.append(("MNIST: play the animation (client side, two frames)", time.perf_counter() - t))
    assert before != later
    page.mouse.move(0, 0)  # no hover toolbar over the chart in the screenshot
    H.check_and_shoot(page, "mnist", tmp_path)

    # Image lab: SDEdit on a test digit, then the hybrids
    timed(page, timings, "Image lab: open (SDEdit, 6 starts, cold)",
          nav(page, "Image lab"))
    before = H.image_sources(page)
    timed(page, timings, "Image lab: next test image", press(page, "Which one (n-th test image of that digit)",
                                                              "ArrowRight"))
    assert H.image_sources(page) != before, "the next test image changed no figure"
    timed(page, timings, "Image lab: switch to Hybrids",
          lambda: page.locator('[data-testid="stRadio"]').get_by_text("Hybrids", exact=True).click())
    H.check_and_shoot(page, "image_lab", tmp_path)
    page.close()

    H.print_timings(timings)
