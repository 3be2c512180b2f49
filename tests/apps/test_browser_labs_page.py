"""The Labs page in a real Chromium (the harness of test_browser.py: ``toydiff app`` on 127.0.0.1, Debian's
/usr/bin/chromium, every wait for a condition, never a fixed sleep).

Opens the page (guidance section), moves the class-posterior step and resubmits the guidance form, switches to
the flow-vs-diffusion, likelihood and memorisation sections and checks that each action redraws its chart; times
each interaction (printed, never asserted) and saves ``labs.png`` (guidance) and one screenshot per other section
(to ``docs/screenshots/`` with TOYDIFF_SCREENSHOTS=1).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path


_spec = importlib.util.spec_from_file_location("_browser_harness", Path(__file__).with_name("test_browser.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)

pytestmark = H.pytestmark
server, browser = H.server, H.browser  # the same module-scoped fixtures

SCRIPT_IDLE = "() => document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state') === 'notRunning'"
PLOTS_DRAWN = """() => { const c = [...document.querySelectorAll('.stPlotlyChart')];
  return c.length > 0 && c.every(p => p.querySelector('.main-svg')); }"""
# the Plotly data of chart n, as a string: what a figure shows
CHART_DATA = "n => JSON.stringify(document.querySelectorAll('.js-plotly-plot')[n].data.map(t => [t.x, t.y, t.z]))"


def timed(page, timings: list, what: str, action, timeout_ms: int = 120_000) -> float:
    """Run ``action`` (which makes the app rerun); wait until that run ended and its Plotly charts are drawn."""
    t0 = time.perf_counter()
    page.evaluate(H.ARM)
    action()
    page.wait_for_function(H.RAN_AND_DONE, timeout=timeout_ms)
    page.wait_for_function(PLOTS_DRAWN, timeout=timeout_ms)
    timings.append((what, time.perf_counter() - t0))
    return timings[-1][1]


def press(page, label: str, key: str):
    s = H._labelled(page, "stSlider", label).get_by_role("slider").first
    return lambda: (s.focus(), s.press(key))


def clean(page) -> None:
    for sel in (H.EXCEPTION, H.ERROR_ALERT):
        assert page.locator(sel).count() == 0, page.locator(sel).first.inner_text()


def shoot(page, name: str, out: Path) -> Path:
    from PIL import Image

    height = max(1000, min(int(page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")), 7000))
    page.set_viewport_size({"width": 1400, "height": height})
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].every(g => g._fullLayout)")
    page.evaluate(H.TWO_FRAMES)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1000})
    with Image.open(path) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 500, f"{name}: the screenshot is nearly blank"
    if os.environ.get("TOYDIFF_SCREENSHOTS") == "1":
        H.SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, H.SHOTS / f"{name}.png")
    return path


def test_labs_page_in_chromium(server, browser, tmp_path):
    timings: list[tuple[str, float]] = []
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    t0 = time.perf_counter()
    page.goto(server)
    page.locator('[data-testid="stSidebarNav"]').wait_for()
    page.wait_for_function(SCRIPT_IDLE)
    timings.append(("Schedules: first paint (cold server)", time.perf_counter() - t0))
    timed(page, timings, "Labs: open, guidance section (exact CFG, w sweep, class posterior; cold)",
          lambda: page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Labs").first.click())
    clean(page)
    assert page.locator(".stPlotlyChart").count() == 3 and page.locator(".katex").count() >= 1

    before = page.evaluate(CHART_DATA, 2)
    timed(page, timings, "Guidance: class-posterior step t +1", press(page, "Step t", "ArrowRight"))
    assert page.evaluate(CHART_DATA, 2) != before, "moving t did not redraw the class posterior"

    before = page.evaluate(CHART_DATA, 0)
    timed(page, timings, "Guidance: w +0.5, Sample (500 DDPM samples, 50 steps)",
          lambda: (press(page, "Guidance weight w", "ArrowRight")(),
                   page.get_by_role("button", name="Sample").click()))
    assert page.evaluate(CHART_DATA, 0) != before and "guide_w=3.5" in page.url
    clean(page)
    shoot(page, "labs", tmp_path)

    timed(page, timings, "Flow vs diffusion: open the section (NFE sweep + paths, cold)",
          lambda: page.locator('[data-testid="stButtonGroup"]').get_by_text("flow vs diffusion").click())
    clean(page)
    assert page.get_by_text("straightness, linear flow").count() == 1
    before = page.evaluate(CHART_DATA, 1)
    timed(page, timings, "Flow vs diffusion: particles drawn +1", press(page, "Particles drawn", "ArrowRight"))
    assert page.evaluate(CHART_DATA, 1) != before
    shoot(page, "labs_flow", tmp_path)

    timed(page, timings, "Likelihood: open the section (PF-ODE of 50 points, model + oracle; ELBO of 500)",
          lambda: page.locator('[data-testid="stButtonGroup"]').get_by_text("likelihood").click())
    clean(page)
    assert page.get_by_text("KL(p ‖ p_θ), model").count() == 1
    timed(page, timings, "Likelihood: map log p over a 16 × 16 grid (PF-ODE, model + oracle), Compute",
          lambda: (page.locator('[data-testid="stCheckbox"]').filter(has_text="Map log p over a grid").first
                   .locator("label").click(), page.get_by_role("button", name="Compute").click()))
    clean(page)
    assert page.locator(".stPlotlyChart").count() == 3 and "lik_grid=1" in page.url
    shoot(page, "labs_likelihood", tmp_path)

    timed(page, timings, "Memorisation: open the section (empirical ε*, 6 training-set sizes)",
          lambda: page.locator('[data-testid="stButtonGroup"]').get_by_text("memorisation").click())
    clean(page)
    assert "labs_section=memorisation" in page.url
    shoot(page, "labs_memorisation", tmp_path)
    page.close()

    width = max(len(w) for w, _ in timings)
    print(f"\nload average over the last minute at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| interaction (page defaults) | seconds |\n|---|---:|")
    for what, dt in timings:
        print(f"| {what:<{width}} | {dt:.2f} |")
