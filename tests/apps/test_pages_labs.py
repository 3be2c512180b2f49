"""The issue-15 elements of the Schedules, Sampler lab, MNIST and Image lab pages through AppTest (Plotly charts,
the MNIST animation, error bars and spacings, flow samplers, forms, URL settings, downloads, the fixed figures),
and the helpers behind them (apps.pages.samplers.sweep, apps.common.url_state, apps.common.models)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import toydiff as td

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from app_harness import charts, clean, open_page  # noqa: E402
from app_harness import plotly_array as arr  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 90
pytestmark = pytest.mark.usefixtures("one_thread")


def page(name: str, state: dict | None = None, query: dict | None = None) -> AppTest:
    return open_page(name, timeout=TIMEOUT, state=state, **(query or {}))


def table(at: AppTest) -> list[list[str]]:
    (md,) = [m.value for m in at.markdown if m.value.lstrip().startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()]


def downloads(at: AppTest) -> list[str]:
    return [d.proto.label for d in at.get("download_button")]


# --- the helpers -----------------------------------------------------------------------------------------


def test_ddim_is_euler_on_the_probability_flow_ode():
    from apps.pages.samplers.sweep import ddim_euler_gap

    gm = td.GaussianMixture(weights=[1.0, 2.0], means=[[-4.0], [4.0]], covs=[[[1.0]], [[1.0]]])
    s = td.schedules.linear(1000)
    x = torch.randn(300, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for spacing in ("linspace", "logsnr"):
        assert ddim_euler_gap(gm.eps_fn(s), s, x, 10, spacing) < 1e-10
    # the gap is measured, not assumed: heun against euler is far from 0
    heun = td.sample(gm.eps_fn(s), x, s, method="heun", steps=10)
    assert float((heun - td.sample(gm.eps_fn(s), x, s, method="euler", steps=10)).abs().max()) > 1e-3


def test_sweep_lines_costs_and_spread():
    from apps.pages.samplers.sweep import Line, line_label, mean_spread, nfe, run_line

    assert nfe(Line("vp", "heun", "linspace"), 10) == 19 and nfe(Line("flow", "midpoint", "uniform"), 10) == 20
    assert line_label(Line("flow", "euler", "shift 3 (SD3)", "cosine")) == "flow euler (cosine, shift 3 (SD3))"
    with pytest.raises(ValueError, match="spacing"):
        Line("vp", "ddim", "uniform")
    with pytest.raises(ValueError, match="method"):
        Line("flow", "ddpm", "uniform")
    m, sd = mean_spread([1.0, 2.0, 3.0])
    assert m == 2.0 and sd == pytest.approx(1.0)
    assert mean_spread([0.5]) == (0.5, 0.0)
    gm = td.GaussianMixture(weights=[1.0], means=[[2.0, -1.0]], covs=[[[1.0, 0.0], [0.0, 1.0]]])
    x = run_line(Line("flow", "heun", "uniform"), 20, 4000, 0, eps_fn=None, schedule=None, mixture=gm, dim=2)
    assert x.shape == (4000, 2) and torch.allclose(x.mean(0), torch.tensor([2.0, -1.0], dtype=x.dtype), atol=0.08)
    with pytest.raises(ValueError, match="mixture"):
        run_line(Line("flow", "heun", "uniform"), 2, 10, 0, eps_fn=None, schedule=None, mixture=None, dim=2)


def test_denoising_animation_and_embedding_figures():
    from toydiff.toy.figures.motion import denoising_animation_plotly
    from toydiff.toy.figures.schedules import embedding_plotly

    xt, x0 = np.random.default_rng(0).uniform(-1, 1, (2, 5, 28, 28))
    fig = denoising_animation_plotly(xt, x0, [40, 30, 20, 10, -1])
    assert len(fig.frames) == 5 and [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ Play", "❚❚ Pause"]
    assert [s.label for s in fig.layout.sliders[0].steps] == ["40", "30", "20", "10", "-1"]
    np.testing.assert_allclose(fig.frames[3].data[1].z, x0[3][::-1])
    with pytest.raises(ValueError, match="len"):
        denoising_animation_plotly(xt, x0, [1, 2])
    emb = embedding_plotly(32, 1000)
    heat = emb.data[0]
    assert len(heat.x) == 200  # the first 200 steps, where the fastest channel is resolved
    assert np.std(np.asarray(heat.z)[0]) > 0.5  # channel 0 oscillates (no solid block)


def test_query_param_parsers():
    from apps.common.url_state import bool_param, int_list, str_list

    assert bool_param("1") is True and bool_param("false") is False
    with pytest.raises(ValueError):
        bool_param("maybe")
    assert int_list("5,10, 20") == [5, 10, 20] and str_list("ddim,,heun") == ["ddim", "heun"]


def test_exported_figures_are_fixed():
    from image_track.models import build_model
    from image_track.sampling import guidance_sweep_figure
    from toydiff.toy.figures.schedules import schedule_curves_mpl

    fig = schedule_curves_mpl(td.schedules.linear(), td.schedules.cosine())
    assert fig.axes[1].get_legend() is None and len(fig.legends) == 1  # under the panels, not over ᾱ
    torch.manual_seed(0)
    cond = build_model("tiny", num_classes=10)
    fig = guidance_sweep_figure(cond, td.schedules.linear(1000), (0, 3), per_digit=1, steps=2)
    (a, b) = fig.axes
    assert a.get_position().y0 > b.get_position().y1  # one row per scale, stacked
    w, h = fig.get_size_inches()
    assert w > h  # a panel is 1 x 10 digits: the figure is wide, not tall and blank


def test_run_on_disk_lists_mnist_checkpoints_only(tmp_path):
    from apps.common.models import is_image_checkpoint
    from image_track.loaded import default_checkpoint
    from toydiff.training.checkpoint import save_checkpoint

    toy = save_checkpoint(tmp_path / "toy.safetensors", {"model.w": torch.zeros(2)}, {"kind": "toydiff.toy/1"})
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    assert is_image_checkpoint(default_checkpoint(True))
    assert not is_image_checkpoint(toy) and not is_image_checkpoint(tmp_path / "junk.safetensors")


# --- the pages -------------------------------------------------------------------------------------------

SMALL_SWEEP = {"lab_steps_1000": [5, 20], "lab_seeds": 3, "lab_n": 500,
               "lab_methods": ["ddim", "euler", "heun", "dpm++2m"], "lab_flows": ["heun"]}


def test_sampler_lab_error_bars_costs_spacings_and_flow_samplers():
    at = clean(page("samplers", SMALL_SWEEP))
    (spec,) = charts(at)
    traces = {t.get("name"): t for t in spec["data"]}
    heun = traces["heun (linspace)"]
    assert arr(heun["x"]).tolist() == [9, 39]  # network evaluations by default: 2n − 1 for heun
    assert arr(heun["error_y"]["array"]).shape == (2,) and (arr(heun["error_y"]["array"]) > 0).all()
    assert "flow heun (linear, uniform)" in traces and any(n.startswith("floor: two true sets") for n in traces)
    rows = {r[0]: r[1:] for r in table(at)[2:]}
    assert rows["ddim (linspace)"] == rows["euler (linspace)"]  # the same method on this ODE
    assert all("±" in v for v in rows["two true sets (floor)"])
    ddim_caption = next(c.value for c in at.caption if c.value.startswith("**DDIM ≡ Euler here.**"))
    assert float(re.search(r"steps: ([0-9.e+-]+)\)", ddim_caption).group(1)) < 1e-10
    assert any("single runs scatter around it" in c.value for c in at.caption)
    assert not any("no sampler can beat" in m.value for m in [*at.markdown, *at.caption])
    assert at.info and ("floor band" in at.info[0].value)
    assert {"⬇ PNG", "⬇ HTML", "⬇ CSV"} <= set(downloads(at))

    at.toggle(key="lab_nfe").set_value(False).run()
    traces = {t.get("name"): t for t in charts(clean(at))[0]["data"]}
    assert arr(traces["heun (linspace)"]["x"]).tolist() == [5, 20]

    before = {r[0]: r[1:] for r in table(at)[2:]}["dpm++2m (logsnr)"]
    at.selectbox(key="lab_sp_dpm++2m").set_value("linspace")
    at.button[0].click().run()  # the settings form applies on its submit button
    rows = {r[0]: r[1:] for r in table(clean(at))[2:]}
    assert "dpm++2m (logsnr)" not in rows and rows["dpm++2m (linspace)"] != before


def test_sampler_lab_settings_come_from_and_go_to_the_url():
    at = clean(page("samplers", {"lab_steps_1000": [5]},
                    {"lab_seeds": "2", "lab_n": "500", "lab_methods": "ddim", "lab_flows": "euler", "lab_nfe": "0",
                     "lab_dataset": "no_such_set"}))
    assert at.session_state["lab_seeds"] == 2 and at.multiselect(key="lab_methods").value == ["ddim"]
    assert at.session_state["lab_dataset"] == "two_gaussians"  # an unknown value is ignored
    assert [r[0] for r in table(at)[2:]] == ["ddim (linspace)", "flow euler (linear, uniform)", "two true sets (floor)"]
    at.slider(key="lab_seeds").set_value(4)
    at.button[0].click().run()
    assert at.query_params["lab_seeds"] == "4" and at.query_params["lab_nfe"] == "0"


def test_schedules_page_charts_and_url():
    at = clean(page("schedules", query={"emb_dim": "32", "fwd_panels": "3", "plan_spacing": "trailing"}))
    sched, emb = charts(at)
    assert sched["layout"]["legend"]["y"] < 0  # the legend sits under the three panels
    assert len([t for t in sched["data"] if t.get("showlegend", True)]) == 2  # schedules A and B, once each
    heat = emb["data"][0]
    assert heat["type"] == "heatmap" and arr(heat["z"]).shape == (32, 200)
    assert at.select_slider(key="emb_dim").value == 32 and at.selectbox(key="plan_spacing").value == "trailing"
    assert at.latex and any(m.value.startswith("**What to look at.**") for m in at.markdown)
    assert "⬇ CSV" in downloads(at)
    at.select_slider(key="emb_dim").set_value(16).run()
    assert arr(charts(clean(at))[1]["data"][0]["z"]).shape == (16, 200) and at.query_params["emb_dim"] == "16"


def test_mnist_animation_downloads_and_sweep():
    at = clean(page("mnist", {"mnist_steps": 6}))
    (anim,) = charts(at)
    frames = anim["frames"]
    assert len(frames) == 6 + 1  # every sampler step, then the final sample
    assert [s["label"] for s in anim["layout"]["sliders"][0]["steps"]][-1] == "-1"
    first, last = (arr(frames[i]["data"][0]["z"]) for i in (0, -1))
    assert np.abs(first - last).mean() > 0.1  # x_t moves from noise to a digit
    np.testing.assert_allclose(arr(frames[-1]["data"][0]["z"]), arr(frames[-1]["data"][1]["z"]))
    assert "Download the samples (.npy, [n, 1, 28, 28] in [-1, 1])" in downloads(at)

    at.selectbox(key="mnist_prog_digit").set_value(7).run()
    assert arr(charts(clean(at))[0]["frames"][-1]["data"][1]["z"]).tolist() != last.tolist()
    assert at.query_params["mnist_steps"] == "6"

    n_images = len(at.image)
    at.multiselect(key="mnist_ws").set_value([0.0, 3.0])
    at.button[0].click().run()  # the sweep form's submit button
    assert len(clean(at).image) == n_images + 1 and "Download the sweep (PNG)" in downloads(at)


def test_image_lab_start_noise_levels_and_hybrid_blur():
    at = clean(page("image_lab"))
    starts = at.multiselect(key="ilab_sd_ts_30")
    assert "larger t = more noise" in starts.label and starts.options == sorted(starts.options, key=int)
    assert [int(v) for v in starts.value] == sorted(int(v) for v in starts.value) and int(starts.value[-1]) > 600
    (before,) = [u for im in at.image for u in im.value]
    starts.set_value([990]).run()
    (after,) = [u for im in clean(at).image for u in im.value]
    assert after != before

    at.radio(key="ilab_experiment").set_value("Hybrids").run()
    (hyb,) = [u for im in clean(at).image for u in im.value]
    assert at.latex and "Factorized Diffusion" in " ".join(c.value for c in at.caption)
    at.slider(key="ilab_hy_sigma").set_value(1.0).run()
    assert [u for im in clean(at).image for u in im.value] != [hyb]
    assert at.query_params["ilab_experiment"] == "Hybrids"
