"""The shared harness of the browser tests (tests/apps/test_browser*.py): ``toydiff app``
(``python -m apps.launch``) on a free port of 127.0.0.1 and Debian's Chromium driven by Playwright. Every wait
is for a condition (the script run an action started has finished, images loaded, charts drawn), never a fixed
sleep. Never runs ``playwright install``: it uses /usr/bin/chromium and the tests skip where that is missing.

The ``server`` and ``browser`` fixtures are re-exported by tests/apps/conftest.py (session scope: one server and one
Chromium per test process, shared by every browser test file it runs; each test opens its own pages, so its own
Streamlit sessions).
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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"

MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]

APP = '[data-testid="stApp"]'
IMG = '[data-testid="stImage"] img'
CHART = '[data-testid="stPlotlyChart"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_ALERT = '[data-testid="stAlertContentError"]'

# Streamlit marks its root with data-test-script-state ("running", then "notRunning" when a script run ends).
# ARM starts watching before an action; RAN_AND_DONE holds once a run has started and ended since then. It also
# notes any change under the main container (__changed): React may fold a fast run's "running" into the same render
# as its "notRunning", so the flag never shows; wait_ran() then takes an idle, changed page as a missed run.
ARM = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  window.__ran = false;
  window.__changed = false;
  if (window.__watch) window.__watch.disconnect();
  if (window.__dom) window.__dom.disconnect();
  window.__watch = new MutationObserver(records => {
    if (records.some(r => r.oldValue === 'running') || app.getAttribute('data-test-script-state') === 'running')
      window.__ran = true;
  });
  window.__watch.observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
  window.__dom = new MutationObserver(() => { window.__changed = true; });
  window.__dom.observe(document.querySelector('[data-testid="stMain"]') || app,
                       {subtree: true, childList: true, characterData: true});
}"""
RAN_AND_DONE = """() => window.__ran &&
  document.querySelector('[data-testid="stApp"]').getAttribute('data-test-script-state') === 'notRunning'"""
CHANGED_AND_IDLE = """() => window.__changed &&
  document.querySelector('[data-testid="stApp"]').getAttribute('data-test-script-state') === 'notRunning'"""
#: how long wait_ran waits for the "running" flag before it takes an idle page that changed as a missed fast run
MISSED_RUN_MS = 15_000
SCRIPT_IDLE = "() => document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state') === 'notRunning'"
IMAGES_LOADED = """() => {
  const imgs = [...document.querySelectorAll('[data-testid="stImage"] img')];
  return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""
PLOTS_DRAWN = "() => [...document.querySelectorAll('.stPlotlyChart')].every(c => c.querySelector('.main-svg'))"


def plots_drawn(n: int) -> str:
    """A page condition: exactly ``n`` Plotly charts, each drawn. A page streams its charts one by one, and the
    script-state flag can read "not running" before a first run starts, so a condition on "every chart there is"
    can hold while later ones are on their way; a count cannot."""
    return f"""() => {{ const c = [...document.querySelectorAll('.stPlotlyChart')];
  return c.length === {int(n)} && c.every(p => p.querySelector('.main-svg')); }}"""
PLOTLY_LAID_OUT = "() => [...document.querySelectorAll('.js-plotly-plot')].every(g => g._fullLayout)"
TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"
MAIN_HEIGHT = "document.querySelector('[data-testid=\"stMain\"]').scrollHeight"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, url: str, log_name: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:  # poll the health endpoint until the server answers
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not start (exit code {proc.poll()}); see {log_name}")
        time.sleep(0.3)


@pytest.fixture(scope="session")
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
        _wait_healthy(proc, url, log.name)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM),
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()


def open_app(browser, server: str, timeout_ms: int = 120_000):
    """A new 1400 × 1000 page on the app, once the sidebar is there and the first script run has ended."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(timeout_ms)
    page.goto(server)
    page.locator('[data-testid="stSidebarNav"]').wait_for()
    page.wait_for_function(SCRIPT_IDLE)
    return page


def wait_ran(page, timeout_ms: int = 120_000) -> None:
    """Wait until the run started by the action after :data:`ARM` has ended. Where no "running" flag was seen within
    :data:`MISSED_RUN_MS` but the page changed and the app is idle, the run came and went inside one render (a fast
    one); otherwise keep waiting for the flag up to ``timeout_ms`` (a run that never starts fails here)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(RAN_AND_DONE, timeout=min(timeout_ms, MISSED_RUN_MS))
    except PlaywrightTimeout:
        if timeout_ms <= MISSED_RUN_MS:
            raise
        if page.evaluate(CHANGED_AND_IDLE):
            return
        page.wait_for_function(RAN_AND_DONE, timeout=timeout_ms - MISSED_RUN_MS)


def timed(page, timings: list, what: str, action, ready: tuple[str, ...] = (PLOTS_DRAWN,),
          timeout_ms: int = 120_000) -> float:
    """Run ``action`` (which makes the app rerun); wait until that run ended and each of the ``ready``
    conditions holds; append ``(what, seconds)`` to ``timings`` and return the seconds."""
    t0 = time.perf_counter()
    page.evaluate(ARM)
    action()
    wait_ran(page, timeout_ms)
    for condition in ready:
        page.wait_for_function(condition, timeout=timeout_ms)
    timings.append((what, time.perf_counter() - t0))
    return timings[-1][1]


def image_sources(page) -> list[str]:
    return page.eval_on_selector_all(IMG, "els => els.map(e => e.src)")


def labelled(page, testid: str, label: str):
    """The widgets of kind ``testid`` (e.g. stSlider) whose label is exactly ``label``."""
    exact = page.locator('[data-testid="stWidgetLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return page.locator(f'[data-testid="{testid}"]').filter(has=exact)


def slider(page, label: str):
    return labelled(page, "stSlider", label).get_by_role("slider").first


def press(page, label: str, key: str):
    """An action: press ``key`` on the slider labelled exactly ``label``."""
    s = slider(page, label)
    return lambda: (s.focus(), s.press(key))


def nav(page, title: str):
    """An action: click the sidebar link to the page titled ``title``."""
    return lambda: page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()


def clean(page, name: str = "") -> None:
    """No exception box and no error alert on the page (``name`` prefixes the message)."""
    for sel in (EXCEPTION, ERROR_ALERT):
        assert page.locator(sel).count() == 0, f"{name}: {page.locator(sel).first.inner_text()}"


def screenshot(page, name: str, out: Path, max_height: int = 7000, ready: str = IMAGES_LOADED,
               min_colours: int = 500) -> Path:
    """Grow the viewport to the content (Streamlit scrolls inside its main container), wait for ``ready``, save
    ``out/name.png``, check it is not nearly blank (more than ``min_colours`` colours; 0: no check) and copy it
    to docs/screenshots with TOYDIFF_SCREENSHOTS=1; returns its path."""
    from PIL import Image

    height = max(1000, min(int(page.evaluate(MAIN_HEIGHT)), max_height))
    page.set_viewport_size({"width": 1400, "height": height})
    page.wait_for_function(ready)
    page.evaluate(TWO_FRAMES)  # the resized layout has been painted
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1000})
    if min_colours:
        with Image.open(path) as im:
            assert im.size == (1400, height)
            colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > min_colours, f"{name}: the screenshot is nearly blank"
    if os.environ.get("TOYDIFF_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SHOTS / f"{name}.png")
    return path


def check_and_shoot(page, name: str, out: Path) -> None:
    """No error on the page, at least one image rendered; then :func:`screenshot` it."""
    clean(page, name)
    assert page.locator(IMG).count() >= 1, f"{name}: no plot rendered"
    screenshot(page, name, out)


def print_timings(timings: list[tuple[str, float]]) -> None:
    """Print the (interaction, seconds) pairs as a Markdown table, after the load average."""
    width = max(len(w) for w, _ in timings)
    print(f"\nload average over the last minute at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| interaction (page defaults) | seconds |\n|---|---:|")
    for what, dt in timings:
        print(f"| {what:<{width}} | {dt:.2f} |")
