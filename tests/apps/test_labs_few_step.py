"""The Labs page's few-step section through AppTest: the seeded x_1 cloud moved in one jump by the exact oracle's
solvers and by the exact map (coloured by the error to the exact map), the error-against-t chart, the form and
the URL settings."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from app_harness import charts, open_page, plotly_array  # noqa: E402
from app_harness import clean as assert_clean  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_few_step_section_jumps_colours_by_error_and_resubmits():
    from apps.pages.labs.few_step import TRAIN_HINT, checkpoints

    at = open_page("labs", labs_section="few-step", fs_n="200", fs_methods="Euler · 1 NFE,DPM++(2M) · 2 NFE")
    assert_clean(at)
    cloud, curve = charts(at)
    names = [t["name"] for t in cloud["data"]]
    assert names == ["exact map", "Euler · 1 NFE", "DPM++(2M) · 2 NFE"]
    colour = {t["name"]: plotly_array(t["marker"]["color"]) for t in cloud["data"]}
    assert len(colour["exact map"]) == 200 and not colour["exact map"].any()
    # one Euler step from pure noise is the data mean (0 in model units), far from the exact map
    e1 = cloud["data"][1]
    assert np.abs(plotly_array(e1["x"])).max() < 1e-9 and colour["Euler · 1 NFE"].min() > 0.3
    assert colour["DPM++(2M) · 2 NFE"].mean() < colour["Euler · 1 NFE"].mean()
    assert {t["marker"]["cmax"] for t in cloud["data"]} == {cloud["data"][0]["marker"]["cmax"]}  # one scale
    ys = {t["name"]: plotly_array(t["y"]) for t in curve["data"]}
    assert set(ys) == {"Euler · 1 NFE", "DPM++(2M) · 2 NFE"} and ys["Euler · 1 NFE"][-1] > ys["Euler · 1 NFE"][0]
    assert "exact map" in curve["layout"]["title"]["text"]
    if not checkpoints("8gaussians"):
        assert any(i.value == TRAIN_HINT for i in at.info)

    at.multiselect(key="fs_methods").set_value(["Heun (Karras) · 2 NFE"])
    at = at.button(key="FormSubmitter:fs_form-Jump").click().run()
    assert_clean(at)
    assert [t["name"] for t in charts(at)[0]["data"]] == ["exact map", "Heun (Karras) · 2 NFE"]
    assert at.query_params["fs_methods"] == "Heun (Karras) · 2 NFE" and at.query_params["labs_section"] == "few-step"
    assert "mem_n" not in at.query_params


def test_the_shipped_distilled_run_is_shown_by_default_and_beats_the_solvers():
    from apps.pages.labs.few_step import SHIPPED_LABEL, checkpoints

    assert SHIPPED_LABEL in checkpoints("8gaussians") and SHIPPED_LABEL not in checkpoints("two_gaussians")
    at = open_page("labs", labs_section="few-step", fs_n="200")
    assert_clean(at)
    cloud, curve = charts(at)
    colour = {t["name"]: plotly_array(t["marker"]["color"]) for t in cloud["data"]}
    assert SHIPPED_LABEL in colour and SHIPPED_LABEL in {t["name"] for t in curve["data"]}
    # one learned jump lands closer to the exact map than any solver on the exact field at 1-2 evaluations
    assert colour[SHIPPED_LABEL].mean() < 0.5 * min(colour[m].mean() for m in colour if "NFE" in m)


def test_a_flow_run_is_listed_and_jumps_by_one_euler_step(tmp_path, monkeypatch):
    from apps.pages.labs import few_step as page
    from toydiff.toy.models import MLPConfig
    from toydiff.toy.run import train_toy
    from toydiff.training.engine import TrainConfig

    train_toy("two_gaussians", process="flow", model_config=MLPConfig(dim=1, width=8, depth=1),
              config=TrainConfig(epochs=1, batch_size=32, warmup_steps=1), n_train=64, n_val=32,
              out=tmp_path / "rf", progress=False)
    from toydiff.training.checkpoint import save_checkpoint

    # a distillation's path cache (hundreds of MB in a real run) is not a toy run: its header says so, and it is
    # never loaded
    save_checkpoint(tmp_path / "cache" / "teacher_paths.safetensors", {"x": torch.zeros(8)},
                    {"kind": "image_track.teacher_paths/1"})
    loaded: list[str] = []
    real_load = page._load
    monkeypatch.setattr(page, "_load", lambda path, stamp: loaded.append(path) or real_load(path, stamp))
    monkeypatch.setenv("TOYDIFF_RUNS_DIR", str(tmp_path))
    found = page.checkpoints("two_gaussians")
    assert not [p for p in loaded if "teacher_paths" in p] and any(p.endswith("checkpoint.safetensors") for p in loaded)
    assert "flow (rf) · Euler" in found and "flow (rf) · Euler" not in page.checkpoints("8gaussians")
    r = page.one_jump("two_gaussians", (), 50, 0, (("flow (rf) · Euler", found["flow (rf) · Euler"]),))
    assert r["jumps"]["flow (rf) · Euler"].shape == (50, 1) and len(r["errors"]["flow (rf) · Euler"]) == len(page.TS)
