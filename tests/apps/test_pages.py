"""Every page of the Streamlit app through AppTest: widgets set, no exception, no error box, and the key
elements (figures, metrics, tables) present and changing when an input changes. Plus ``toydiff app``'s
argument handling.

MNIST pages run on random-weight ``tiny`` checkpoints written here (found through ``TOYDIFF_RUNS_DIR``),
so they do not depend on committed weights.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import toydiff as td

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

MAIN = Path(__file__).resolve().parents[2] / "apps" / "main.py"
TIMEOUT = 90

ROOT = MAIN.parents[1]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Random-weight tiny UNets (conditional and not) in the shipped checkpoint format."""
    from image_track.models import build_model
    from toydiff.training.checkpoint import save_checkpoint

    folder = tmp_path_factory.mktemp("runs")
    out = {}
    for name, classes in (("cond", 10), ("uncond", None)):
        torch.manual_seed(0)
        model = build_model("tiny", num_classes=classes)
        path = folder / f"tiny_{name}.safetensors"
        save_checkpoint(path, {f"model.{k}": v for k, v in model.state_dict().items()},
                        {"model_config": model.config, "schedule": td.schedules.linear(1000).to_dict()})
        out[name] = path
    out["folder"] = folder
    return out


@pytest.fixture
def runs_dir(checkpoints, monkeypatch):
    monkeypatch.setenv("TOYDIFF_RUNS_DIR", str(checkpoints["folder"]))
    return checkpoints


@pytest.fixture(scope="module")
def warm_mnist():
    """Decode the MNIST test set once for the module (the app caches it per server process as well)."""
    from apps.common.models import mnist_test

    return mnist_test()


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.switch_page(f"pages/{page}/{page}.py")
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def images(at: AppTest) -> list[str]:
    return [url for im in at.image for url in im.value]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def tables(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.lstrip().startswith("|")]


# --- schedules ---------------------------------------------------------------------------------------


def test_schedules_page(warm_mnist):
    at = open_page("schedules")
    assert_clean(at)
    assert len(images(at)) == 2  # forward process, noised digits (the curves and the embedding are Plotly)
    assert len(at.get("plotly_chart")) == 2
    assert "A: ᾱ at the last step" in metrics(at)
    (plan,) = tables(at)
    assert len(plan.splitlines()) == 2 + 10  # header, rule, 10 pairs
    first = [c.strip() for c in plan.splitlines()[2].strip("|").split("|")]
    assert first[:3] == ["0", "999", "888"]
    assert first[-1] == f"{float(td.schedules.linear().sigmas[999]):.4g}"  # the schedule's Karras σ

    before = images(at)
    at.selectbox(key="fwd_dataset").set_value("8gaussians").run()
    assert_clean(at)
    assert images(at)[0] != before[0] and images(at)[1] == before[1]  # only the forward figure changed

    at.number_input(key="plan_steps").set_value(4).run()
    assert len(tables(at)[0].splitlines()) == 2 + 4

    m_before = metrics(at)["A: ᾱ at the last step"]
    at.selectbox(key="sched_a_kind").set_value("cosine").run()
    assert_clean(at)
    assert metrics(at)["A: ᾱ at the last step"] != m_before


def test_schedules_page_reports_a_bad_schedule_readably():
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.switch_page("pages/schedules/schedules.py")
    # widgets read their first value from the session: one run instead of four
    for key, value in {"sched_a_kind": "constant", "sched_a_constant_T": 50, "sched_a_constant_b": 0.001,
                       "sched_compare": False}.items():
        at.session_state[key] = value
    at.run()
    assert_clean(at)
    (warning,) = [w.value for w in at.warning]
    assert "alpha_bar = 0.9512 > 0.01" in warning  # (1 - 0.001)^50: x_T keeps most of the signal
    assert metrics(at)["A: ᾱ at the last step"] == "9.51e-01"


# --- toy sandbox and sampler lab -------------------------------------------------------------------------


def train_small(at: AppTest) -> AppTest:
    at.slider(key="toy_epochs").set_value(3)
    at.select_slider(key="toy_ntrain").set_value(1000)
    return at.button(key="toy_train").click().run()


# the Toy page's own tests: tests/apps/test_toy_motion.py


def test_sampler_lab_on_the_oracle_and_on_a_trained_model():
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.switch_page("pages/samplers/samplers.py")
    at.session_state["lab_steps_1000"] = [5, 20]  # a short sweep (the widget reads its value from here)
    at.session_state["lab_seeds"] = 1
    at.session_state["lab_flows"] = ["euler"]
    at.run()
    assert_clean(at)
    assert len(images(at)) == 3 and len(at.get("plotly_chart")) == 1  # convergence (Plotly) + three panels
    m = metrics(at)
    assert {"ddpm: distance to the truth", "ddpm-no-noise: distance to the truth", "ddim: distance to the truth"} <= set(m)
    # without sigma z the spread collapses: far worse than ancestral sampling on the exact denoiser
    assert float(m["ddpm-no-noise: distance to the truth"]) > 3 * float(m["ddpm: distance to the truth"])
    (table,) = tables(at)
    assert "two true sets (floor)" in table and "dpm++2m" in table

    before = images(at)
    at.multiselect(key="lab_methods").set_value(["ddim", "heun"])
    at.button[0].click().run()  # the sweep's settings form applies on its submit button
    assert_clean(at)
    assert images(at) == before  # the side-by-side panels do not depend on the sweep
    assert "dpm++2m" not in tables(at)[0] and "heun (linspace)" in tables(at)[0]

    # a model trained on the toy page shows up as a second denoiser
    at.switch_page("pages/toy/toy.py").run()
    train_small(at)
    at.switch_page("pages/samplers/samplers.py").run()
    at.radio(key="lab_source").set_value("Trained model (Toy sandbox)").run()
    assert_clean(at)
    assert len(images(at)) == 3 and "flow euler" not in tables(at)[0]  # flow samplers need the exact velocity


# --- MNIST and the image lab ---------------------------------------------------------------------------


def test_mnist_page_opens_on_the_committed_conditional_checkpoint():
    at = open_page("mnist")
    assert_clean(at)
    assert at.radio(key="mnist_source").value == "Committed: class-conditional"
    assert metrics(at)["Classes"] == "10 + null"
    assert len(images(at)) == 1 and len(at.get("plotly_chart")) == 1  # grid; the denoising animation
    assert any("tiny_cond.safetensors" in c.value for c in at.caption)


def test_mnist_page_says_so_when_the_committed_checkpoint_is_missing(monkeypatch, tmp_path):
    from image_track import sampling

    monkeypatch.setattr(sampling, "default_checkpoint", lambda conditional: tmp_path / "gone.safetensors")
    at = open_page("mnist")
    assert_clean(at)
    assert any("gone.safetensors" in i.value and "missing" in i.value for i in at.info)
    assert not images(at) and not at.metric


def test_mnist_page_autoguides_the_committed_unconditional_model():
    from image_track.sampling import default_guide

    at = open_page("mnist")
    at.radio(key="mnist_source").set_value("Committed: unconditional").run()
    assert_clean(at)
    assert metrics(at)["Classes"] == "none"
    assert default_guide().is_file()  # committed with the unconditional weights
    plain = images(at)[0]
    at.slider(key="mnist_ag_w").set_value(3.0).run()
    assert_clean(at)
    assert images(at)[0] != plain
    assert any("autoguidance w = 3" in c for im in at.image for c in im.captions)


def test_mnist_page_generates_and_reacts(runs_dir, warm_mnist):
    at = open_page("mnist")
    at.radio(key="mnist_source").set_value("Run on disk").run()
    at.selectbox(key="mnist_run").set_value(str(runs_dir["cond"])).run()
    assert_clean(at)
    assert metrics(at)["Classes"] == "10 + null"
    grid_before = images(at)[0]
    assert len(images(at)) == 1 and len(at.get("plotly_chart")) == 1  # grid; the denoising animation

    at.slider(key="mnist_w").set_value(0.0).run()
    assert_clean(at)
    assert images(at)[0] != grid_before

    at.select_slider(key="mnist_neval").set_value(50)
    at.toggle(key="mnist_eval_on").set_value(True).run()
    assert_clean(at)
    assert {"FID (classifier features)", "FID floor (real vs real)", "Requested class recognised"} <= set(metrics(at))


def test_mnist_page_rejects_a_bad_upload_and_keeps_no_uploaded_file(runs_dir, monkeypatch):
    from apps.common.models import _load_bytes
    from image_track import sampling

    _load_bytes.clear()
    read = []
    real = sampling.load_model

    def spy(path, *args, **kw):
        read.append(Path(path))
        assert Path(path).is_file()  # the upload is on disk while it is read
        return real(path, *args, **kw)

    monkeypatch.setattr(sampling, "load_model", spy)
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.switch_page("pages/mnist/mnist.py")
    at.session_state["mnist_source"] = "Upload a checkpoint"  # no committed model is loaded first
    at.run()
    assert not read and not at.metric
    at.file_uploader(key="mnist_upload").set_value(("weights.safetensors", b"not a checkpoint", "application/octet-stream"))
    at.run()
    assert not at.exception
    (err,) = [e.value for e in at.error]
    assert "not a usable MNIST checkpoint" in err and "'weights.safetensors'" in err and tempfile.gettempdir() not in err

    at.file_uploader(key="mnist_upload").set_value(
        ("mine.safetensors", runs_dir["uncond"].read_bytes(), "application/octet-stream")).run()
    assert_clean(at)
    assert metrics(at)["Classes"] == "none"
    assert images(at)
    assert len(read) == 2 and all(p.is_relative_to(tempfile.gettempdir()) for p in read)
    assert not any(p.exists() or p.parent.exists() for p in read)  # file and folder removed once loaded


@pytest.mark.parametrize("experiment", ["SDEdit", "Inpainting", "Anagrams", "Hybrids"])
def test_image_lab_experiments(runs_dir, warm_mnist, experiment):
    at = open_page("image_lab")
    at.radio(key="ilab_source").set_value("Run on disk").run()
    at.selectbox(key="ilab_run").set_value(str(runs_dir["cond"])).run()
    at.radio(key="ilab_experiment").set_value(experiment).run()
    assert_clean(at)
    (before,) = images(at)
    at.number_input(key="ilab_seed").set_value(1).run()
    assert_clean(at)
    (after,) = images(at)
    assert after != before


def test_image_lab_uploads(runs_dir, warm_mnist):
    from PIL import Image

    at = open_page("image_lab")
    at.radio(key="ilab_source").set_value("Run on disk").run()
    at.selectbox(key="ilab_run").set_value(str(runs_dir["uncond"])).run()
    assert not at.exception
    assert any("unconditional" in e.value for e in at.error)  # the lab needs a conditional model

    at.selectbox(key="ilab_run").set_value(str(runs_dir["cond"])).run()
    at.radio(key="ilab_sd_input").set_value("Upload an image").run()
    at.file_uploader(key="ilab_sd_upload").set_value(("digit.png", b"\x89PNG garbage", "image/png")).run()
    assert not at.exception
    assert any("cannot be used" in e.value for e in at.error)

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buf, format="PNG")
    at.file_uploader(key="ilab_sd_upload").set_value(("digit.png", buf.getvalue(), "image/png")).run()
    assert_clean(at)
    assert len(images(at)) == 1


# --- `toydiff app` ----------------------------------------------------------------------------------------


@pytest.fixture
def captured(monkeypatch):
    from streamlit.web import cli as stcli

    import apps.launch

    calls = []
    monkeypatch.setattr(apps.launch, "configure_process", lambda: calls.append("configured"))
    monkeypatch.setattr(stcli, "main", lambda args, **kw: calls.append(args))
    return calls


def test_launch_binds_localhost_by_default(captured):
    from apps.launch import MAIN as LAUNCHED
    from apps.launch import main

    assert main(["--port", "8642"]) == 0
    configured, args = captured  # process settings first, then the server
    assert configured == "configured"
    assert args[:2] == ["run", str(LAUNCHED)] and LAUNCHED == MAIN
    opts = dict(zip(args[2::2], args[3::2]))
    assert opts == {"--server.address": "127.0.0.1", "--server.port": "8642", "--server.headless": "true",
                    "--browser.gatherUsageStats": "false"}


def test_launch_address_and_bad_input(captured, capsys):
    from toydiff.cli import main as toydiff_main

    assert toydiff_main(["app", "--address", "0.0.0.0"]) == 0
    args = captured[1]
    assert args[args.index("--server.address") + 1] == "0.0.0.0"
    assert "other machines" in capsys.readouterr().err
    assert toydiff_main(["app", "--port", "http"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("toydiff app: error:") and "\n" not in err


def test_importing_the_app_changes_no_process_state_and_launch_sets_it():
    """Importing every apps module leaves torch's threads and matplotlib's backend alone; only
    ``configure_process`` (called by ``toydiff app``) sets them."""
    code = """
import torch, matplotlib
n = torch.get_num_threads()
torch.set_num_threads(3)
import apps.common.ui, apps.common.models, apps.pages.schedules.widgets, apps.pages.toy.data, apps.pages.toy.state, apps.launch
import image_track.plots, toydiff.toy.figures.samples
assert torch.get_num_threads() == 3, torch.get_num_threads()
assert matplotlib.get_backend().lower() == "svg", matplotlib.get_backend()
assert apps.launch.configure_process() == 1
assert torch.get_num_threads() == 1 and matplotlib.get_backend().lower() == "agg"
assert apps.launch.configure_process(2) == 2 and torch.get_num_threads() == 2
try:
    apps.launch.configure_process(0)
except ValueError as e:
    assert "threads" in str(e)
else:
    raise AssertionError("threads=0 accepted")
print("ok")
"""
    env = {**os.environ, "MPLBACKEND": "svg", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("TOYDIFF_APP_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_session_memo_is_bounded_and_keeps_the_most_recent():
    from apps.common.ui import session_memo

    script = """
import streamlit as st
from apps.common.ui import session_memo
calls = st.session_state.setdefault("calls", [])
for k in [1, 2, 3, 1, 4]:
    session_memo("m", k, lambda k=k: calls.append(k) or k * 10, max_entries=3)
"""
    at = AppTest.from_string(script).run()
    assert not at.exception
    assert at.session_state["calls"] == [1, 2, 3, 4]  # 1 again was remembered, not recomputed
    assert list(at.session_state["_memo_m"]) == [3, 1, 4]  # 2, the least recently used, was dropped
    with pytest.raises(ValueError, match="max_entries"):
        session_memo("m", 0, lambda: 0, max_entries=0)
