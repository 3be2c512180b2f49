"""Issue #22 (items 3 and 6): every explanatory text that states a fact about what is shown is computed from what
is shown. Each test pins one text and would fail on the old, fixed wording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from app_harness import charts, clean, open_page, plotly_array  # noqa: E402

import toydiff as td  # noqa: E402
from toydiff.toy.motion import Motion  # noqa: E402

WEIGHTS = Path(td.__file__).resolve().parent / "toy" / "weights"


# --- Sampler lab: converged lines are not discretisation error ------------------------------------------------

def _curve(steps, means, sds):
    return {"steps": list(steps), "mean": list(means), "std": list(sds)}


def test_sampler_verdict_calls_a_flat_line_converged_not_discretisation_error():
    from apps.pages.samplers.sweep import converged, verdict

    flat = _curve((10, 20, 50), (0.0532, 0.0532, 0.0532), (0.004, 0.004, 0.004))  # flow heun on 8gaussians
    moving = _curve((10, 20, 50), (0.30, 0.15, 0.09), (0.004, 0.004, 0.004))
    text = verdict({"flow heun (linear, uniform)": flat, "ddpm (linspace)": moving}, (0.030, 0.004))
    assert converged(flat) and not converged(moving)
    assert "every gap above it is discretisation error" not in text
    assert "Converged above the floor band" in text and "flow heun (linear, uniform) (0.0532 at 20" in text
    assert "not discretisation error" in text
    assert "Still changing" in text and "ddpm (linspace)" in text.split("Still changing")[1]
    reached = verdict({"a": _curve((5, 10), (0.05, 0.031), (0.002, 0.002))}, (0.030, 0.004))
    assert reached.startswith("Within the floor band") and "a from 10 steps" in reached
    assert not converged(_curve((10,), (0.05,), (0.0,)))  # one step count: cannot tell


# --- Motion: the race text from the end points; the 1-D notes and legend from what is drawn ------------------

def _two_modes():
    return td.GaussianMixture.diagonal([0.5, 0.5], [[-2.0, 0.0], [2.0, 0.0]], 0.2)


def _motion(end):
    x = np.array([[[0.0, 0.0]], [end]], dtype=float)
    return Motion(x=x, timesteps=np.array([1, -1]), alpha_bars=np.array([0.5, 1.0]))


def test_race_summary_says_ddim_ends_elsewhere_when_it_does():
    from apps.pages.motion.notes import race_summary

    mix = _two_modes()
    race = {"exact PF-ODE": _motion([2.0, 0.0]), "DDIM": _motion([-2.0, 0.1]), "DDPM": _motion([2.1, 0.0])}
    text = race_summary(race, mix, "learned ε̂")
    assert "hugs" not in text and "follows the exact path" not in text
    assert "in another mode" in text and "learned ε̂" in text and "4" in text
    race["DDIM"] = _motion([2.01, 0.0])
    text = race_summary(race, mix, "exact ε*")
    assert "follows the exact path" in text and "DDPM ends 0.1 from it, in the same mode" in text


def test_reverse_notes_describe_what_each_dimension_draws():
    from apps.pages.motion.notes import reverse_look_at

    one = reverse_look_at(1, ["learned ε̂", "exact ε*"])
    assert "Arrows" not in one and "diamonds" not in one and "strip" in one
    two = reverse_look_at(2, ["exact ε*"])  # no model: the exact field is the first, red, colour
    assert "red the exact ε*" in two and "network" not in two and "differ" not in two
    assert "red the learned ε̂; black the exact ε*" in reverse_look_at(2, ["learned ε̂", "exact ε*"])


def test_motion_page_on_1d_data_names_sampler_particles_and_says_where_ddim_ended():
    at = clean(open_page("motion", state={"mo_rn": 200, "mo_rs": 20, "mo_cs": 20}, data="two_gaussians"))
    looks = [m.value for m in at.markdown if m.value.startswith("**What to look at.**")]
    assert not any("Orange diamonds" in v or "Arrows are" in v for v in looks)
    names = {tr.get("name") for c in charts(at) for tr in c.get("data", [])}
    rev = charts(at)[1]
    rev_names = {tr.get("name") for tr in rev["data"]} | {tr.get("name") for f in rev.get("frames", [])
                                                         for tr in f["data"]}
    assert "x_t (sampler)" in rev_names and "x_t (q_sample)" not in rev_names
    assert "x_t (q_sample)" in names  # the forward process keeps its name
    race = [i.value for i in at.info if "DDIM ends" in i.value]
    assert race and "hugs" not in " ".join(looks)


# --- The loss figure: where the loss peaks, read from the history ------------------------------------------

def test_loss_bucket_title_reads_the_peak_from_the_history():
    from toydiff.toy.figures.training import bucket_title, loss_curves_data, loss_curves_plotly
    from toydiff.toy.run import load_toy

    h = load_toy(WEIGHTS / "8gaussians").history
    title = bucket_title(loss_curves_data(h))
    assert "low t is hardest" not in title and "highest at t/T ≈ 0.25" in title
    assert "most above the floor at t/T ≈" in title
    spec = loss_curves_plotly(h).to_dict()
    assert any(a.get("text") == title.replace("; ", "<br>") for a in spec["layout"]["annotations"])


# --- Guidance: the axis follows the mode; the colour scale does not saturate -----------------------------

def test_guidance_axis_label_follows_the_mode():
    from apps.pages.labs.guidance import w_label

    assert w_label("scale", "CFG") == "w (ε_u + w (ε_c − ε_u))"
    auto = w_label("scale", "autoguidance")
    assert "ε_u" not in auto and "ε_c" not in auto and "ε_bad" in auto and "ε_good" in auto
    assert "ε_u" not in w_label("shifted", "autoguidance")


def test_guidance_panels_use_a_per_panel_log_density():
    from toydiff.exact.guidance import TiltedTarget  # noqa: F401  (the panels' type)
    from toydiff.toy.figures.guidance import LOG_DECADES, log_density, target_panels_plotly

    xs = torch.linspace(-3, 3, 40)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    sharp = torch.exp(-((gx - 1) ** 2 + gy ** 2) / 0.02) + 1e-3 * torch.exp(-((gx + 1) ** 2 + gy ** 2) / 0.5)
    z = log_density(sharp)
    assert z.max() == pytest.approx(float(np.log10(sharp.max())))
    assert z.max() - z.min() <= LOG_DECADES + 1e-9
    # the faint mode shows up: well above the clip, not saturated to the background as on a linear scale
    faint = z[20, np.argmin(np.abs(xs.numpy() + 1))]
    assert faint > z.min() + 1

    class Target:
        pass

    tg = Target()
    tg.xs, tg.ys, tg.density = xs, xs, sharp
    spec = target_panels_plotly([("a", tg)], torch.zeros(5, 2)).to_plotly_json()
    assert np.allclose(plotly_array(spec["data"][0]["z"]).astype(float), z)


# --- The metric reference's name ---------------------------------------------------------------------------

def test_nll_reference_is_not_called_a_floor():
    from toydiff.toy.metrics import reference_name

    assert "floor" not in reference_name("nll") and "true law's NLL" in reference_name("nll")
    assert "floor" in reference_name("energy_distance")


# --- The shipped model's texts come from its own metadata -------------------------------------------------

def test_shipped_two_gaussians_texts_come_from_its_metadata():
    from apps.pages.toy.notes import loss_gap_note, recipe_differences, recipe_phrase
    from toydiff.toy.recipes import default_recipe
    from toydiff.toy.run import load_toy

    run = load_toy(WEIGHTS / "two_gaussians")
    recipe = default_recipe("two_gaussians")
    assert recipe_differences(run.metadata, recipe) == {} and recipe_phrase(run.metadata, recipe) == "the default recipe"
    # a checkpoint trained before the recipe changed (uniform t) is named as such, from its own metadata
    stale = {**run.metadata, "config": {**run.metadata["config"], "t_sampling": "uniform"}}
    diff = recipe_differences(stale, recipe)
    assert diff["t_sampling"] == ("uniform", recipe.t_sampling)
    assert recipe_phrase(stale, recipe) != "the default recipe" and "t_sampling" in recipe_phrase(stale, recipe)
    h = run.history
    note = loss_gap_note(stale, h.train_loss[-1], h.val_loss[-1])
    assert "three times more" not in note and "drew t uniformly" in note and f"{abs(h.train_loss[-1] - h.val_loss[-1]):.4f}" in note
    low = loss_gap_note({"config": {"t_sampling": "low-noise"}}, 0.42, 0.287)
    assert "low-noise" in low and "above" in low
    eight = load_toy(WEIGHTS / "8gaussians")
    h8 = eight.history
    note8 = loss_gap_note(eight.metadata, h8.train_loss[-1], h8.val_loss[-1], h8.records[-1]["val_by_bucket"])
    assert "where the loss is largest" not in note8 and "smallest-t bucket" in note8


def test_plurals():
    from apps.pages.toy.notes import plural

    assert plural(1, "epoch") == "1 epoch" and plural(2, "epoch") == "2 epochs" and plural(1000, "point") == "1,000 points"


# --- Drawn data: separate clicks stay separate; a width slider; sampler settings reset --------------------

def test_nearest_neighbour_width_keeps_six_clicks_separate():
    from toydiff.toy.drawn import kde_mixture, nearest_neighbour_width

    clicks = np.array([[-3, -3], [-1, -1], [1, 1], [3, 3], [-3, 3], [3, -3]], dtype=float)  # six clicks
    between = torch.tensor([[-2.0, -2.0], [0.0, 0.0], [2.0, 2.0]], dtype=torch.float64)
    at = torch.tensor(clicks[:4], dtype=torch.float64)
    scott = kde_mixture(clicks)
    nn = kde_mixture(clicks, kernel_std=nearest_neighbour_width(clicks))
    # Scott: one diagonal blob (the density between clicks is as high as on them); nearest-neighbour: bumps
    assert scott.log_prob(between).mean() > scott.log_prob(at).mean() - 0.5
    assert (nn.log_prob(between).max() < nn.log_prob(at).min() - 1).item()
    assert nearest_neighbour_width([[0.0, 0.0]]) == 0.25
    line = kde_mixture([[0, 0], [1, 1], [2, 2]], kernel_std=0.3)  # collinear points are fine with a fixed kernel
    assert line.K == 3
    with pytest.raises(ValueError, match="kernel_std"):
        kde_mixture(clicks, kernel_std=0)


def test_drawn_data_has_a_width_slider_and_the_sampler_resets_on_a_new_model():
    at = open_page("toy")
    at.selectbox(key="toy_method").set_value("dpm++2m")
    at.slider(key="toy_steps_250").set_value(4)
    at.button(key="toy_sample").click().run()
    clean(at)
    assert at.session_state["toy_method"] == "dpm++2m"
    pts = [[-3, -3], [-1, -1], [1, 1], [3, 3], [-3, 3], [3, -3]]
    at.session_state["toy_drawn_points"] = pts
    at.selectbox(key="toy_dataset").set_value("8gaussians").run()
    clean(at)
    assert at.session_state["toy_method"] == "ddpm" and at.session_state["toy_steps_250"] == 250
    at.selectbox(key="toy_dataset").set_value("drawn").run()
    clean(at)
    assert at.select_slider(key="toy_canvas_bw").value == "auto"
    assert any("Kernel std in use" in c.value for c in at.caption)
    assert any("kernel std" in c.value for c in at.caption)  # the data set's description names its kernel
