"""The app's MNIST pages on a flow-matching checkpoint (``toydiff mnist train --process flow``): the MNIST page
samples it with the flow samplers (no crash on the missing noise schedule), the image lab refuses it in words."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from toydiff.sampling.flow_steps import FLOW_METHODS  # noqa: E402

MAIN = Path(__file__).resolve().parents[2] / "apps" / "main.py"


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory) -> Path:
    """A class-conditional tiny flow UNet trained for 3 steps through the command line."""
    from toydiff.cli import main as toydiff_main

    folder = tmp_path_factory.mktemp("flow_runs")
    code = toydiff_main(["mnist", "train", "--process", "flow", "--max-steps", "3", "--subset", "64", "--batch-size",
                         "32", "--no-val", "--no-samples", "--no-progress", "--conditional", "--out",
                         str(folder / "fm")])
    assert code in (0, None)
    return folder / "fm" / "checkpoint.safetensors"


def open_on(page: str, key: str, ckpt: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("TOYDIFF_RUNS_DIR", str(ckpt.parent))
    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.switch_page(f"pages/{page}/{page}.py")
    at.session_state[f"{key}_source"] = "Run on disk"  # skip loading the committed DDPM model first
    at.run()
    at.selectbox(key=f"{key}_run").set_value(str(ckpt)).run()
    return at


def test_mnist_page_samples_a_flow_checkpoint_with_the_flow_samplers(flow_run, monkeypatch):
    at = open_on("mnist", "mnist", flow_run, monkeypatch)
    at.slider(key="mnist_steps").set_value(3).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Process"] == "flow (linear)" and metrics["Prediction"] == "velocity"
    assert "T" not in metrics and "Schedule" not in metrics
    assert tuple(at.selectbox(key="mnist_method").options) == FLOW_METHODS
    assert at.selectbox(key="mnist_method").value == "heun"  # not the DDPM default, ddim
    grid = [u for im in at.image for u in im.value]
    assert len(grid) == 1 and len(at.get("plotly_chart")) == 1  # the grid; the denoising animation
    assert any("flow matching on the linear path" in c.value for c in at.caption)
    at.selectbox(key="mnist_method").set_value("euler").run()
    assert not at.exception and not at.error
    assert [u for im in at.image for u in im.value] != grid  # another sampler, other samples


def test_image_lab_refuses_a_flow_checkpoint_in_words(flow_run, monkeypatch):
    at = open_on("image_lab", "ilab", flow_run, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and "has no noise schedule (flow matching" in at.error[0].value
    assert not at.image
