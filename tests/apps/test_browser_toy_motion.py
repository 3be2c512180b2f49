"""The Toy sandbox and Motion pages in a real browser (``toydiff app`` + Debian's Chromium through Playwright).

Checks what only a browser shows: an animation plays client-side (its frame index advances and the chart's
pixels change, with no script run), points clicked on the drawing canvas are added and a model trains on them.
Every interaction is timed (script run started → finished and charts drawn); the table is written to
``$TMPDIR/toydiff_toy_motion_timings.{json,md}`` and printed. Screenshots ``toy.png`` and ``motion.png`` land in the
test's folder (and in ``docs/screenshots/`` with TOYDIFF_SCREENSHOTS=1). Waits are for conditions, never sleeps.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from browser_harness import (ARM, CHART, MARKS, PLOTLY_LAID_OUT, PLOTS_DRAWN, clean, labelled, nav,
                             open_app, screenshot, wait_ran)

pytestmark = [*MARKS, pytest.mark.slow]

# the frame index of the n-th animated chart (Plotly keeps the slider's active step on the graph div)
ACTIVE = "n => { const gd = document.querySelectorAll('.js-plotly-plot')[n]; return gd.layout.sliders[0].active || 0; }"


@pytest.fixture(scope="module")
def page(server, browser):
    pg = open_app(browser, server)
    try:
        yield pg
    finally:
        pg.close()


TIMINGS: dict[str, float] = {}


def timed(page, name: str, action, timeout_ms: int = 120_000) -> float:
    """Run ``action`` (which makes the app rerun); wait until the run is done and every chart is drawn."""
    page.evaluate(ARM)
    t0 = time.perf_counter()
    action()
    try:
        wait_ran(page, timeout_ms)
        page.wait_for_function(PLOTS_DRAWN, timeout=timeout_ms)
    except Exception:
        page.screenshot(path=str(Path(tempfile.gettempdir()) / "toydiff_toy_motion_failed.png"))
        raise
    TIMINGS[name] = time.perf_counter() - t0
    return TIMINGS[name]


def pick(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled exactly ``label`` (no waiting: inside a form it is no rerun)."""
    box = labelled(page, "stSelectbox", label).first
    box.scroll_into_view_if_needed()
    box.get_by_role("combobox").click()
    page.get_by_role("option", name=option, exact=True).click()


def choose(page, label: str, option: str):
    return lambda: pick(page, label, option)


def shoot(page, name: str, out: Path) -> Path:
    return screenshot(page, name, out, max_height=9000, ready=PLOTLY_LAID_OUT, min_colours=0)


def click_canvas(page, x: float, y: float) -> None:
    """Click the canvas marker at data coordinates (x, y) (the canvas is the first chart of the drawn view)."""
    gd = page.locator(".js-plotly-plot").first
    gd.scroll_into_view_if_needed()
    px = gd.evaluate("(gd, p) => [gd._fullLayout.xaxis.l2p(p[0]) + gd._fullLayout._size.l,"
                     " gd._fullLayout.yaxis.l2p(p[1]) + gd._fullLayout._size.t]", [x, y])
    box = gd.bounding_box()
    page.mouse.click(box["x"] + px[0], box["y"] + px[1])


def points_drawn(page) -> int:
    m = page.locator('[data-testid="stMetric"]').filter(has_text="Points drawn")
    return int(m.locator('[data-testid="stMetricValue"]').inner_text())


def test_toy_page_draw_and_train(page, tmp_path):
    timed(page, "open Toy sandbox (shipped model, 1 000 samples × 250 steps, metrics)", nav(page, "Toy sandbox"))
    clean(page)
    assert page.get_by_text("shipped checkpoint").count() >= 1
    timed(page, "data set → 8gaussians", choose(page, "Data set", "8gaussians"))
    clean(page)

    def resample():
        pick(page, "Sampler", "ddim")
        page.get_by_role("button", name="Sample", exact=True).click()
    timed(page, "Sample form: sampler → ddim", resample)
    clean(page)
    slider = labelled(page, "stSlider", "Step t").get_by_role("slider").first
    slider.focus()
    timed(page, "ε̂ vs ε* step t slider", lambda: slider.press("ArrowRight"))
    shoot(page, "toy", tmp_path)

    timed(page, "data set → drawn", choose(page, "Data set", "drawn"))
    for i, (x, y) in enumerate([(-2.0, -2.0), (2.0, -1.5), (0.0, 2.0), (1.0, 1.0), (-1.5, 0.5)]):
        timed(page, f"canvas click {i + 1}", lambda x=x, y=y: click_canvas(page, x, y))
        assert points_drawn(page) == i + 1
    clean(page)
    epochs = labelled(page, "stSlider", "Epochs").get_by_role("slider").first
    epochs.focus()
    epochs.press("Home")  # inside the Train form: no rerun
    timed(page, "Train 1 epoch on the drawn points (training)",
          lambda: page.get_by_role("button", name="Train", exact=True).click(), timeout_ms=300_000)
    clean(page)
    assert page.get_by_text("drawn, MLP").count() >= 1
    assert page.get_by_text("Bayes-optimal floor").count() >= 1


def test_motion_page_plays_without_a_rerun(page, tmp_path):
    timed(page, "open Motion (3 animations precomputed)", nav(page, "Motion"))
    clean(page)
    assert page.locator(CHART).count() == 3

    def rerun_sampler():
        pick(page, "Sampler", "ddpm")
        page.get_by_role("button", name="Run the sampler", exact=True).click()
    timed(page, "Motion: reverse cloud, sampler → ddpm (2 000 × 50)", rerun_sampler)
    clean(page)

    chart = page.locator(CHART).nth(1)
    chart.scroll_into_view_if_needed()
    before_png = chart.screenshot()
    assert page.evaluate(ACTIVE, 1) == 0
    page.evaluate(ARM)
    t0 = time.perf_counter()
    chart.locator(".updatemenu-button").filter(has_text="Play").first.click()
    page.wait_for_function(f"() => ({ACTIVE})(1) >= 20", timeout=60_000)
    played = page.evaluate(ACTIVE, 1)
    TIMINGS["Motion: play 20 frames client-side (frames/s)"] = played / (time.perf_counter() - t0)
    chart.locator(".updatemenu-button").filter(has_text="Pause").first.click()
    assert not page.evaluate("() => window.__ran"), "playing made the app rerun"
    assert chart.screenshot() != before_png, "the animation's pixels did not change"
    shoot(page, "motion", tmp_path)
    report_timings()


def report_timings() -> None:
    out = Path(os.environ.get("TMPDIR", tempfile.gettempdir()))
    rows = ["| interaction | seconds (frames/s for playback) |", "|---|---:|"] + [f"| {k} | {v:.2f} |" for k, v in TIMINGS.items()]
    (out / "toydiff_toy_motion_timings.md").write_text("\n".join(rows) + "\n")
    (out / "toydiff_toy_motion_timings.json").write_text(json.dumps(TIMINGS, indent=1))
    print("\n".join(rows))
