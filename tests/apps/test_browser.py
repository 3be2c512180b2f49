"""End to end in a real browser: ``streamlit run apps/main.py`` on 127.0.0.1 and Debian's Chromium driven by
Playwright. Every page is visited, a widget moved, and a rendered plot and the absence of error boxes checked;
one screenshot per page lands in the test's folder (and in ``docs/screenshots/`` with TOYDIFF_SCREENSHOTS=1).

Never runs ``playwright install``: it uses /usr/bin/chromium and skips where that is missing.
"""

from __future__ import annotations

import importlib.util
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
MAIN = ROOT / "apps" / "main.py"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"

TOY_MODULES = ("toydiff.toy.datasets", "toydiff.toy.models", "toydiff.training", "toydiff.toy.plots", "toydiff.toy.metrics")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in TOY_MODULES),
                       reason="the toy-track modules (datasets, models, training, plots, metrics) have not landed"),
]

STATUS = '[data-testid="stStatusWidget"]'
PLOT = '[data-testid="stImage"] img, [data-testid="stPlotlyChart"], [data-testid="stPyplot"] img'
EXCEPTION = '[data-testid="stException"]'
ERROR_ALERT = '[data-testid="stAlertContentError"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free port of 127.0.0.1; a random-weight conditional checkpoint is offered under runs."""
    import torch

    import toydiff as td
    from image_track.models import build_model
    from toydiff.checkpoint import save_checkpoint

    runs = tmp_path_factory.mktemp("browser_runs")
    torch.manual_seed(0)
    model = build_model("tiny", num_classes=10)
    save_checkpoint(runs / "tiny_cond_random.safetensors", {f"model.{k}": v for k, v in model.state_dict().items()},
                    {"model_config": model.config, "schedule": td.schedules.linear(1000).to_dict()})

    port = free_port()
    log = open(tmp_path_factory.mktemp("server") / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(MAIN), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TOYDIFF_RUNS_DIR": str(runs)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
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


def settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the script run an interaction started has finished (the status widget is gone)."""
    try:
        page.locator(STATUS).wait_for(state="attached", timeout=1_500)
    except Exception:  # noqa: BLE001 - a fast rerun may finish before the widget appears
        pass
    page.locator(STATUS).wait_for(state="detached", timeout=timeout_ms)
    page.wait_for_timeout(300)


def nudge_slider(page, label: str, key: str = "ArrowRight") -> None:
    """Move the slider whose label is exactly ``label`` one step with the keyboard."""
    exact = page.locator('[data-testid="stWidgetLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    slider = page.locator('[data-testid="stSlider"]').filter(has=exact).get_by_role("slider").first
    slider.focus()
    slider.press(key)
    settle(page)


def open_via_nav(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    page.wait_for_timeout(500)
    settle(page)


def use_disk_checkpoint_if_needed(page) -> None:
    """Pick the offered run when the committed checkpoint has not landed (the page says so)."""
    if page.get_by_text("Not available yet").count():
        page.get_by_text("Run on disk", exact=True).click()
        settle(page)


def check_and_shoot(page, name: str, out: Path) -> None:
    page.locator(PLOT).first.wait_for(state="visible", timeout=30_000)
    imgs = page.locator(PLOT)
    assert imgs.count() >= 1
    width = page.evaluate("(el) => el.naturalWidth", imgs.first.element_handle())
    assert width > 0, f"{name}: the plot did not render"
    assert page.locator(EXCEPTION).count() == 0, f"{name}: {page.locator(EXCEPTION).first.inner_text()}"
    assert page.locator(ERROR_ALERT).count() == 0, f"{name}: {page.locator(ERROR_ALERT).first.inner_text()}"
    # Streamlit scrolls inside its main container, not the document: grow the viewport to the content first
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height), 7000))})
    page.wait_for_timeout(400)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1000})
    assert path.stat().st_size > 10_000
    if os.environ.get("TOYDIFF_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SHOTS / f"{name}.png")


def test_every_page_in_chromium(server, browser, tmp_path):
    t0 = time.monotonic()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(server)
    page.locator('[data-testid="stSidebarNav"]').wait_for()
    settle(page)

    # 1. schedules: the default page
    nudge_slider(page, "q_sample draws")
    check_and_shoot(page, "schedules", tmp_path)

    # 2. toy sandbox: train the default (the seed exercise), then change the sampler's step count
    open_via_nav(page, "Toy sandbox")
    page.get_by_role("button", name="Train", exact=True).click()
    settle(page, timeout_ms=120_000)
    page.get_by_text("Bayes-optimal floor").first.wait_for()
    nudge_slider(page, "Steps", "ArrowLeft")
    check_and_shoot(page, "toy", tmp_path)

    # 3. sampler lab: the oracle's convergence sweep; move the side-by-side step count
    open_via_nav(page, "Sampler lab")
    nudge_slider(page, "Steps", "ArrowLeft")
    check_and_shoot(page, "samplers", tmp_path)

    # 4. MNIST: the committed checkpoint (or the offered run until it lands); move the guidance scale
    open_via_nav(page, "MNIST")
    use_disk_checkpoint_if_needed(page)
    nudge_slider(page, "Guidance scale w (0 = unconditional, 1 = conditional)")
    check_and_shoot(page, "mnist", tmp_path)

    # 5. image lab: SDEdit on a test digit; pick another test image of that digit
    open_via_nav(page, "Image lab")
    use_disk_checkpoint_if_needed(page)
    nudge_slider(page, "Which one (n-th test image of that digit)")
    check_and_shoot(page, "image_lab", tmp_path)

    page.close()
    print(f"browser walk through 5 pages: {time.monotonic() - t0:.1f} s")  # ~55 s on a shared 2-core CPU
