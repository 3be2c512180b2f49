"""The Toy sandbox and Motion pages through AppTest: a shipped model on load, interactive (Plotly) figures,
forms, URL settings, downloads, drawing your own data and training on it, and the three animations."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from app_harness import MAIN, charts, metrics, open_page  # noqa: E402
from app_harness import clean as assert_clean  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 120
pytestmark = pytest.mark.usefixtures("one_thread")


def tables(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.lstrip().startswith("|")]


def train_small(at: AppTest) -> AppTest:
    at.slider(key="toy_epochs").set_value(2)
    at.select_slider(key="toy_ntrain").set_value(1000)
    return at.button(key="toy_train").click().run()


@pytest.mark.slow
def test_toy_page_opens_on_the_shipped_model_and_samples():
    at = open_page("toy")
    assert_clean(at)
    assert "shipped checkpoint" in at.success[0].value  # instant start: no Train press needed
    m = metrics(at)
    assert {"Final held-out loss", "Bayes-optimal floor", "Network evaluations"} <= set(m)
    assert m["Network evaluations"] == "250"
    assert len(charts(at)) == 5 and len(at.get("download_button")) >= 4 and len(at.latex) >= 2
    assert any("Why train and held-out losses differ" in c.value for c in at.caption)
    (report,) = tables(at)
    assert "two true sets (reference)" in report and "entropy" in report and "expectation is 0" in report

    before = charts(at)[-1]
    at.selectbox(key="toy_method").set_value("heun")
    at.button(key="toy_sample").click().run()
    assert_clean(at)
    assert metrics(at)["Network evaluations"] == str(2 * 250 - 1)
    assert charts(at)[-1] != before
    assert at.query_params["method"] == "heun"

    gap = [v for k, v in metrics(at).items() if k.startswith("E‖ε̂ − ε*‖²")]
    at.slider(key="toy_tcmp_250").set_value(200).run()
    assert [v for k, v in metrics(at).items() if k.startswith("E‖ε̂ − ε*‖²")] != gap


def test_toy_page_defaults_are_the_recipe_and_the_url_picks_the_data():
    """The page's widgets start at each data set's default recipe, the one train_toy and the CLI use."""
    from apps.pages.toy.data import RECIPE_WIDGETS
    from toydiff.toy.recipes import default_recipe

    at = open_page("toy", data="8gaussians")
    assert at.selectbox(key="toy_dataset").value == "8gaussians"
    recipe = default_recipe("8gaussians")
    assert {key: at.session_state[key] for key in RECIPE_WIDGETS} == {
        key: getattr(recipe, field) for key, field in RECIPE_WIDGETS.items()}
    assert at.session_state["toy_sched_8gaussians_kind"] == recipe.schedule_name
    assert len(charts(at)) >= 5  # data, loss, eps arrows, samples, trajectories


@pytest.mark.slow
def test_toy_page_draws_data_and_trains_on_it():
    at = open_page("toy")
    at.selectbox(key="toy_dataset").set_value("drawn").run()
    assert_clean(at)
    assert any("at least 3 points" in i.value for i in at.info)
    at.text_area(key="toy_canvas_text").set_value("1, 2\n2 x")
    at.button(key="toy_canvas_add").click().run()
    assert any("line 2" in e.value for e in at.error)
    at.text_area(key="toy_canvas_text").set_value("0,0\n1,0.2\n0.3,1\n-1,0.5\n2,2\n-0.5,-1")
    at.button(key="toy_canvas_add").click().run()
    assert_clean(at)
    assert metrics(at)["Points drawn"] == "6"
    assert any("No model for this data set" in i.value for i in at.info)
    train_small(at)
    assert_clean(at)
    assert "drawn" in at.success[0].value
    assert float(metrics(at)["Bayes-optimal floor"]) > 0  # the KDE mixture gives an exact floor
    (report,) = tables(at)
    assert "mmd2" in report and "nll" in report
    at.button(key="toy_canvas_undo").click().run()
    assert metrics(at)["Points drawn"] == "0"


def test_motion_page_animates_against_the_truth():
    at = open_page("motion")
    assert_clean(at)
    figs = charts(at)
    assert len(figs) == 3
    for f in figs:
        assert len(f["frames"]) >= 2 and f["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    names = {tr.get("name") for tr in figs[1]["frames"][0]["data"]}
    assert {"−ε learned ε̂", "−ε exact ε*", "particles x_t"} <= names
    assert len(figs[1]["frames"]) == 51  # 50 steps and the end

    at.selectbox(key="mo_rm").set_value("ddpm")
    at.slider(key="mo_rs").set_value(10)
    at.button(key="mo_rev_go").click().run()
    assert_clean(at)
    after = charts(at)
    assert len(after[1]["frames"]) == 11 and after[0] == figs[0] and after[2] == figs[2]
    assert at.query_params["rm"] == "ddpm"


def test_motion_page_in_one_dimension_from_the_url():
    at = open_page("motion", data="two_gaussians", rs="20", cs="20")
    assert_clean(at)
    figs = charts(at)
    assert len(figs) == 3 and len(figs[1]["frames"]) == 21
    assert figs[2]["layout"]["xaxis"]["title"]["text"] == "sampler step"


def test_run_on_disk_lists_no_toy_runs(tmp_path, monkeypatch):
    """The MNIST pages' "Run on disk" list skips toy-track checkpoints, which cannot serve them."""
    import shutil

    from apps.common.models import find_runs

    root = MAIN.parents[1]
    shutil.copy(root / "toydiff/toy/weights/8gaussians/checkpoint.safetensors", tmp_path / "toy.safetensors")
    shutil.copy(root / "image_track/weights/tiny_uncond.safetensors", tmp_path / "image.safetensors")
    monkeypatch.setenv("TOYDIFF_RUNS_DIR", str(tmp_path))
    found = {p.name for p in find_runs(tmp_path)}
    assert "image.safetensors" in found and "toy.safetensors" not in found


def test_motion_page_animates_drawn_data_on_its_exact_kde():
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.switch_page("pages/motion/motion.py")
    at.session_state["toy_drawn_points"] = [[0.0, 0.0], [1.0, 0.2], [0.3, 1.0], [-1.0, 0.5], [2.0, 2.0]]
    at.query_params["data"] = "drawn"
    at.query_params["rs"] = "10"
    at.run()
    assert_clean(at)
    assert at.selectbox(key="mo_dataset").value == "drawn"
    assert any("exact ε* only" in c.value for c in at.caption)  # no model trained on these points yet
    figs = charts(at)
    assert len(figs) == 3 and len(figs[1]["frames"]) == 11


def test_a_stopped_training_keeps_the_previous_model():
    """Stop interrupts the run that trains (a rerun); the next run says so and still shows the previous model."""
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.switch_page("pages/toy/toy.py")
    at.session_state["toy_training"] = True  # what a run interrupted mid-training leaves behind
    at.run()
    assert_clean(at)
    assert any("Training was stopped" in w.value for w in at.warning)
    assert "shipped checkpoint" in at.success[0].value
