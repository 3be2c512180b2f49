"""End to end in a real browser: ``toydiff app`` (``python -m apps.launch``) on 127.0.0.1 and Debian's Chromium
driven by Playwright. Every page is visited, a widget moved and the figure it feeds seen to change, and the
rendered plots and the absence of error boxes checked; one screenshot per page lands in the test's folder (and
in ``docs/screenshots/`` with TOYDIFF_SCREENSHOTS=1). Every wait is for a condition (the script run an action
started has finished, images have loaded), never a fixed sleep.

Never runs ``playwright install``: it uses /usr/bin/chromium and skips where that is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]

APP = '[data-testid="stApp"]'
IMG = '[data-testid="stImage"] img'
EXCEPTION = '[data-testid="stException"]'
ERROR_ALERT = '[data-testid="stAlertContentError"]'

# Streamlit marks its root with data-test-script-state ("running", then "notRunning" when a script run ends).
# ARM starts watching before an action; RAN_AND_DONE holds once a run has started and ended since then.
ARM = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  window.__ran = false;
  if (window.__watch) window.__watch.disconnect();
  window.__watch = new MutationObserver(records => {
    if (records.some(r => r.oldValue === 'running') || app.getAttribute('data-test-script-state') === 'running')
      window.__ran = true;
  });
  window.__watch.observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
}"""
RAN_AND_DONE = """() => window.__ran &&
  document.querySelector('[data-testid="stApp"]').getAttribute('data-test-script-state') === 'notRunning'"""
IMAGES_LOADED = """() => {
  const imgs = [...document.querySelectorAll('[data-testid="stImage"] img')];
  return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""
TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``toydiff app`` on a free port of 127.0.0.1 (the committed checkpoints serve the MNIST pages)."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("server") / "streamlit.log", "w")
    env = {**os.environ, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "apps.launch", "--port", str(port)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # poll the health endpoint until the server answers
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start (exit code {proc.poll()}); see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM),
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()


@contextmanager
def rerun(page, timeout_ms: int = 60_000):
    """Wrap an action that makes the app rerun: on exit, that run has finished and its images have loaded."""
    page.evaluate(ARM)
    yield
    page.wait_for_function(RAN_AND_DONE, timeout=timeout_ms)
    page.wait_for_function(IMAGES_LOADED, timeout=timeout_ms)


def image_sources(page) -> list[str]:
    return page.eval_on_selector_all(IMG, "els => els.map(e => e.src)")


def nudge_slider(page, label: str, key: str = "ArrowRight") -> None:
    """Move the slider whose label is exactly ``label`` one step with the keyboard; some figure must change."""
    exact = page.locator('[data-testid="stWidgetLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    slider = page.locator('[data-testid="stSlider"]').filter(has=exact).get_by_role("slider").first
    before = image_sources(page)
    slider.focus()
    with rerun(page):
        slider.press(key)
    assert image_sources(page) != before, f"moving {label!r} changed no figure"


def _labelled(page, testid: str, label: str):
    exact = page.locator('[data-testid="stWidgetLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return page.locator(f'[data-testid="{testid}"]').filter(has=exact)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box whose label is exactly ``label``."""
    with rerun(page):
        _labelled(page, "stSelectbox", label).first.click()
        page.get_by_role("option", name=option, exact=True).click()


def slider_to_min(page, label: str) -> None:
    """Move the slider whose label is exactly ``label`` to its smallest value with the keyboard."""
    slider = _labelled(page, "stSlider", label).get_by_role("slider").first
    slider.focus()
    with rerun(page):
        slider.press("Home")


def open_via_nav(page, title: str) -> None:
    with rerun(page, timeout_ms=120_000):
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()


def check_and_shoot(page, name: str, out: Path) -> None:
    from PIL import Image

    assert page.locator(EXCEPTION).count() == 0, f"{name}: {page.locator(EXCEPTION).first.inner_text()}"
    assert page.locator(ERROR_ALERT).count() == 0, f"{name}: {page.locator(ERROR_ALERT).first.inner_text()}"
    assert page.locator(IMG).count() >= 1, f"{name}: no plot rendered"
    # Streamlit scrolls inside its main container, not the document: grow the viewport to the content first
    height = max(1000, min(int(page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")), 7000))
    page.set_viewport_size({"width": 1400, "height": height})
    page.wait_for_function(IMAGES_LOADED)
    page.evaluate(TWO_FRAMES)  # the resized layout has been painted
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1000})
    with Image.open(path) as im:
        assert im.size == (1400, height)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 500, f"{name}: the screenshot is nearly blank"
    if os.environ.get("TOYDIFF_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SHOTS / f"{name}.png")


def test_every_page_in_chromium(server, browser, tmp_path):
    t0 = time.monotonic()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(server)
    page.locator('[data-testid="stSidebarNav"]').wait_for()
    page.wait_for_function(f"() => document.querySelector('{APP}').getAttribute('data-test-script-state') === 'notRunning'")
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
