"""The Labs page in a real Chromium (the shared harness, browser_harness.py: ``toydiff app`` on 127.0.0.1, Debian's
/usr/bin/chromium, every wait for a condition, never a fixed sleep).

Opens the page (guidance section), moves the class-posterior step and resubmits the guidance form, switches to
the flow-vs-diffusion, likelihood, memorisation and few-step sections and checks that each action draws its chart; times
each interaction (printed, never asserted) and saves ``labs.png`` (guidance) and one screenshot per other section
(to ``docs/screenshots/`` with TOYDIFF_SCREENSHOTS=1).
"""

from __future__ import annotations

import time

import browser_harness as H
from browser_harness import MARKS, nav, press

pytestmark = MARKS

PLOTS_DRAWN = """() => { const c = [...document.querySelectorAll('.stPlotlyChart')];
  return c.length > 0 && c.every(p => p.querySelector('.main-svg')); }"""
# the Plotly data of chart n, as a string: what a figure shows
CHART_DATA = "n => JSON.stringify(document.querySelectorAll('.js-plotly-plot')[n].data.map(t => [t.x, t.y, t.z]))"


def timed(page, timings: list, what: str, action, charts: int | None = None, timeout_ms: int = 120_000) -> float:
    """:func:`H.timed`, ready once every chart is drawn (exactly ``charts`` of them where given)."""
    ready = H.plots_drawn(charts) if charts is not None else PLOTS_DRAWN
    return H.timed(page, timings, what, action, ready=(ready,), timeout_ms=timeout_ms)


def shoot(page, name: str, out) -> None:
    H.screenshot(page, name, out, ready=H.PLOTLY_LAID_OUT)


def test_labs_page_in_chromium(server, browser, tmp_path):
    timings: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    page = H.open_app(browser, server)
    timings.append(("Schedules: first paint (cold server)", time.perf_counter() - t0))
    timed(page, timings, "Labs: open, guidance section (exact CFG, w sweep, class posterior; cold)",
          nav(page, "Labs"), charts=3)
    H.clean(page)
    assert page.locator(".stPlotlyChart").count() == 3 and page.locator(".katex").count() >= 1

    before = page.evaluate(CHART_DATA, 2)
    timed(page, timings, "Guidance: class-posterior step t +1", press(page, "Step t", "ArrowRight"))
    assert page.evaluate(CHART_DATA, 2) != before, "moving t did not redraw the class posterior"

    before = page.evaluate(CHART_DATA, 0)
    timed(page, timings, "Guidance: w +0.5, Sample (500 DDPM samples, 50 steps)",
          lambda: (press(page, "Guidance weight w", "ArrowRight")(),
                   page.get_by_role("button", name="Sample").click()))
    assert page.evaluate(CHART_DATA, 0) != before and "guide_w=3.5" in page.url
    H.clean(page)
    shoot(page, "labs", tmp_path)

    timed(page, timings, "Flow vs diffusion: open the section (NFE sweep + paths, cold)",
          lambda: page.locator('[data-testid="stButtonGroup"]').get_by_text("flow vs diffusion").click())
    H.clean(page)
    assert page.get_by_text("straightness, linear flow").count() == 1
    before = page.evaluate(CHART_DATA, 1)
    timed(page, timings, "Flow vs diffusion: particles drawn +1", press(page, "Particles drawn", "ArrowRight"))
    assert page.evaluate(CHART_DATA, 1) != before
    shoot(page, "labs_flow", tmp_path)

    timed(page, timings, "Likelihood: open the section (PF-ODE of 50 points, model + oracle; ELBO of 500)",
          lambda: page.locator('[data-testid="stButtonGroup"]').get_by_text("likelihood").click())
    H.clean(page)
    assert page.get_by_text("KL(p ‖ p_θ), model").count() == 1
    timed(page, timings, "Likelihood: map log p over a 16 × 16 grid (PF-ODE, model + oracle), Compute",
          lambda: (page.locator('[data-testid="stCheckbox"]').filter(has_text="Map log p over a grid").first
                   .locator("label").click(), page.get_by_role("button", name="Compute").click()), charts=3)
    H.clean(page)
    assert page.locator(".stPlotlyChart").count() == 3 and "lik_grid=1" in page.url
    shoot(page, "labs_likelihood", tmp_path)

    timed(page, timings, "Memorisation: open the section (empirical ε*, 6 training-set sizes)",
          lambda: page.locator('[data-testid="stButtonGroup"]').get_by_text("memorisation").click())
    H.clean(page)
    assert "labs_section=memorisation" in page.url
    shoot(page, "labs_memorisation", tmp_path)

    timed(page, timings, "Few-step: open the section (one-jump cloud, the exact map, error against t)",
          lambda: page.locator('[data-testid="stButtonGroup"]').get_by_text("few-step").click(), charts=2)
    H.clean(page)
    assert page.locator(".stPlotlyChart").count() == 2 and "labs_section=few-step" in page.url
    shoot(page, "labs_few_step", tmp_path)  # resubmitting the form: tests/apps/test_labs_few_step.py (AppTest)
    page.close()

    H.print_timings(timings)
