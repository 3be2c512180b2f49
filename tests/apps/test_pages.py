"""Every page of the Streamlit app through AppTest: widgets set, no exception, no error box, and the key
elements (figures, metrics, tables) present and changing when an input changes. Plus ``toydiff app``'s
argument handling.

MNIST pages run on random-weight ``tiny`` checkpoints written here (found through ``TOYDIFF_RUNS_DIR``),
so they do not depend on committed weights.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

MAIN = Path(__file__).resolve().parents[2] / "apps" / "main.py"
TIMEOUT = 90

TOY_MODULES = ("toydiff.toy.datasets", "toydiff.toy.models", "toydiff.training", "toydiff.toy.plots", "toydiff.toy.metrics")
needs_toy = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in TOY_MODULES),
                               reason="the toy-track modules (datasets, models, training, plots, metrics) have not landed")


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    """apps.common pins torch to one thread (fast on a shared CPU); give other test modules theirs back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Random-weight tiny UNets (conditional and not) in the shipped checkpoint format."""
    import toydiff as td
    from image_track.models import build_model
    from toydiff.checkpoint import save_checkpoint

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
    from apps.common import mnist_test

    return mnist_test()


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.switch_page(f"pages/{page}.py")
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


@needs_toy
def test_schedules_page(warm_mnist):
    at = open_page("schedules")
    assert_clean(at)
    assert len(images(at)) >= 4  # curves, forward process, noised digits, embedding
    assert "A: ᾱ at the last step" in metrics(at)
    (plan,) = tables(at)
    assert len(plan.splitlines()) == 2 + 10  # header, rule, 10 pairs

    before = images(at)
    at.selectbox(key="fwd_dataset").set_value("8gaussians").run()
    assert_clean(at)
    assert images(at)[1] != before[1] and images(at)[0] == before[0]  # only the forward figure changed

    at.number_input(key="plan_steps").set_value(4).run()
    assert len(tables(at)[0].splitlines()) == 2 + 4

    m_before = metrics(at)["A: ᾱ at the last step"]
    at.selectbox(key="sched_a_kind").set_value("cosine").run()
    assert_clean(at)
    assert metrics(at)["A: ᾱ at the last step"] != m_before


def test_schedules_page_reports_a_bad_schedule_readably():
    at = open_page("schedules")
    at.selectbox(key="sched_a_kind").set_value("constant").run()
    at.select_slider(key="sched_a_constant_T").set_value(50).run()
    at.number_input(key="sched_a_constant_b").set_value(0.001).run()  # alpha_bar stays near 0.95 at T
    assert not at.exception
    assert any("alpha_bar" in w.value for w in at.warning)


@pytest.mark.parametrize("page, missing", [("toy", "toydiff.training"), ("schedules", "toydiff.toy.plots"),
                                           ("mnist", "image_track.sampling"), ("image_lab", "image_track.lab")])
def test_a_module_that_has_not_landed_is_a_message_not_a_traceback(monkeypatch, page, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # import now fails as for a module not yet written
    at = open_page(page)
    assert_clean(at)
    assert any("not available yet" in i.value for i in at.info)


# --- toy sandbox and sampler lab -------------------------------------------------------------------------


def train_small(at: AppTest) -> AppTest:
    at.slider(key="toy_epochs").set_value(3)
    at.select_slider(key="toy_ntrain").set_value(1000)
    return at.button(key="toy_train").click().run()


@needs_toy
def test_toy_page_trains_samples_and_scores():
    at = open_page("toy")
    assert_clean(at)
    assert len(images(at)) == 1  # the data, before training
    assert any("Press **Train**" in i.value for i in at.info)

    train_small(at)
    assert_clean(at)
    m = metrics(at)
    assert {"Final held-out loss", "Bayes-optimal floor", "Network evaluations"} <= set(m)
    assert m["Network evaluations"] == "250"  # every step of the seed exercise's T = 250
    assert len(images(at)) >= 5  # data, loss curves, eps comparison, samples, trajectories
    (report,) = tables(at)
    assert "wasserstein1" in report and "noise floor" in report

    before = images(at)
    at.selectbox(key="toy_method").set_value("heun").run()
    assert_clean(at)
    assert metrics(at)["Network evaluations"] == str(2 * 250 - 1)
    assert images(at)[-2:] != before[-2:]

    gap = [v for k, v in metrics(at).items() if k.startswith("E‖ε̂ − ε*‖²")]
    at.slider(key="toy_tcmp_250").set_value(200).run()
    assert [v for k, v in metrics(at).items() if k.startswith("E‖ε̂ − ε*‖²")] != gap


@needs_toy
def test_toy_page_draws_low_noise_steps_for_2d_data():
    at = open_page("toy")
    assert at.radio(key="toy_tsampling_two_gaussians").value == "uniform"
    at.selectbox(key="toy_dataset").set_value("8gaussians").run()
    assert at.radio(key="toy_tsampling_8gaussians").value == "low-noise"
    train_small(at)
    assert_clean(at)
    assert "Final held-out loss" in metrics(at)


@needs_toy
def test_sampler_lab_on_the_oracle_and_on_a_trained_model():
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.switch_page("pages/samplers.py")
    at.session_state["lab_steps_1000"] = [5, 20]  # a short sweep (the widget reads its value from here)
    at.run()
    assert_clean(at)
    assert len(images(at)) == 4  # convergence + three side-by-side panels
    m = metrics(at)
    assert {"ddpm: distance to the truth", "ddpm-no-noise: distance to the truth", "ddim: distance to the truth"} <= set(m)
    # without sigma z the spread collapses: far worse than ancestral sampling on the exact denoiser
    assert float(m["ddpm-no-noise: distance to the truth"]) > 3 * float(m["ddpm: distance to the truth"])
    (table,) = tables(at)
    assert "noise floor" in table and "dpm++2m" in table

    before = images(at)
    at.multiselect(key="lab_methods").set_value(["ddim", "heun"]).run()
    assert_clean(at)
    assert images(at)[0] != before[0] and images(at)[1:] == before[1:]
    assert "dpm++2m" not in tables(at)[0]

    # a model trained on the toy page shows up as a second denoiser
    at.switch_page("pages/toy.py").run()
    train_small(at)
    at.switch_page("pages/samplers.py").run()
    at.radio(key="lab_source").set_value("Trained model (Toy sandbox)").run()
    assert_clean(at)
    assert len(images(at)) == 4


# --- MNIST and the image lab ---------------------------------------------------------------------------


def test_mnist_page_committed_checkpoint_or_a_clear_message():
    from image_track.sampling import default_checkpoint

    at = open_page("mnist")
    assert_clean(at)
    if default_checkpoint(conditional=True).is_file():
        assert images(at)
    else:
        assert any("not available yet" in i.value.lower() for i in at.info)


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
    assert len(images(at)) >= 3  # grid, progression strip, GIF

    at.slider(key="mnist_w").set_value(0.0).run()
    assert_clean(at)
    assert images(at)[0] != grid_before

    at.select_slider(key="mnist_neval").set_value(50)
    at.toggle(key="mnist_eval_on").set_value(True).run()
    assert_clean(at)
    assert {"FID (classifier features)", "FID floor (real vs real)", "Requested class recognised"} <= set(metrics(at))


def test_mnist_page_rejects_a_bad_upload(runs_dir):
    at = open_page("mnist")
    at.radio(key="mnist_source").set_value("Upload a checkpoint").run()
    at.file_uploader(key="mnist_upload").set_value(("weights.safetensors", b"not a checkpoint", "application/octet-stream"))
    at.run()
    assert not at.exception
    assert any("not a usable MNIST checkpoint" in e.value for e in at.error)

    at.file_uploader(key="mnist_upload").set_value(
        ("mine.safetensors", runs_dir["uncond"].read_bytes(), "application/octet-stream")).run()
    assert_clean(at)
    assert metrics(at)["Classes"] == "none"
    assert images(at)


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

    calls = []
    monkeypatch.setattr(stcli, "main", lambda args, **kw: calls.append(args))
    return calls


def test_launch_binds_localhost_by_default(captured):
    from apps.launch import MAIN as LAUNCHED
    from apps.launch import main

    assert main(["--port", "8642"]) == 0
    (args,) = captured
    assert args[:2] == ["run", str(LAUNCHED)] and LAUNCHED == MAIN
    opts = dict(zip(args[2::2], args[3::2]))
    assert opts == {"--server.address": "127.0.0.1", "--server.port": "8642", "--server.headless": "true",
                    "--browser.gatherUsageStats": "false"}


def test_launch_address_and_bad_input(captured, capsys):
    from toydiff.cli import main as toydiff_main

    assert toydiff_main(["app", "--address", "0.0.0.0"]) == 0
    assert captured[0][captured[0].index("--server.address") + 1] == "0.0.0.0"
    assert "other machines" in capsys.readouterr().err
    assert toydiff_main(["app", "--port", "http"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("toydiff app: error:") and "\n" not in err
