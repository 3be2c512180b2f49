"""The Labs page through AppTest: guidance against the exact tilted target (form, conventions, the w sweep, the
class posterior), flow vs diffusion on the exact oracle (form, paths), URL settings and downloads."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from streamlit.testing.v1 import AppTest  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

MAIN = Path(__file__).resolve().parents[2] / "apps" / "main.py"


@pytest.fixture(autouse=True)
def one_thread():
    """As ``toydiff app`` runs the pages (apps.launch.configure_process): one torch thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def open_labs(**query) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.switch_page("pages/labs.py")
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def values(v) -> list[float]:
    """A Plotly data array from the JSON spec: a list, or numpy's base64 form (``{"bdata", "dtype"}``)."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_guidance_section_opens_on_exact_cfg_with_notes_and_downloads():
    at = open_labs()
    assert_clean(at)
    m = metrics(at)
    assert {"SW₁ → tilted target", "SW₁ → p(x|y)", "class-y modes"} <= set(m)
    assert len(at.get("plotly_chart")) == 3 and len(at.latex) == 1 and len(at.get("download_button")) >= 7
    panels = charts(at)[0]
    assert [t["type"] for t in panels["data"]] == ["heatmap", "scattergl"] * 2
    assert at.query_params["labs_section"] == "guidance" and at.query_params["guide_w"] == "3.0"
    sweep = charts(at)[1]
    assert sorted(sweep["data"][0]["x"]) == [0.0, 1.0, 2.0, 4.0, 8.0]


def test_both_cfg_conventions_give_the_same_samples_one_apart():
    """scale w = 1 and ho-salimans w = 0 are both the conditional ε*: the same samples, the same scores."""
    at = open_labs(guide_w="1.0")
    assert_clean(at)
    scale = metrics(at)
    at.radio(key="guide_conv").set_value("ho-salimans")
    at.slider(key="guide_w").set_value(0.0)
    at = at.button(key="FormSubmitter:guide_form-Sample").click().run()
    assert_clean(at)
    assert metrics(at) == scale and at.query_params["guide_conv"] == "ho-salimans"
    # w = 1 samples p(x | y): both distances sit near their floors (a few floors at most, not the w = 3 gap)
    caps = [c.value for c in at.caption if c.value.startswith("floor")]
    assert float(scale["SW₁ → p(x|y)"]) < 3 * float(caps[1].split()[1])


def test_autoguidance_tracks_its_tilted_target_where_cfg_does_not():
    at = open_labs(guide_w="2.0")
    cfg = float(metrics(at)["SW₁ → tilted target"])
    at = at.radio(key="guide_kind").set_value("autoguidance").run()
    assert_clean(at)
    m = metrics(at)
    assert float(m["SW₁ → tilted target"]) < cfg / 2 and m["class-y modes"] == "12/12"
    assert "p_wide(x|y)" in charts(at)[0]["layout"]["annotations"][0]["text"]
    assert at.query_params["guide_kind"] == "autoguidance"


def test_guidance_settings_from_the_url_and_a_class_of_another_data_set():
    at = open_labs(guide_ds="8gaussians_4class", guide_y="3", guide_w="2.0", guide_interval="1")
    assert_clean(at)
    assert at.selectbox(key="guide_ds").value == "8gaussians_4class" and at.selectbox(key="guide_y").value == 3
    assert at.toggle(key="guide_interval").value is True
    assert metrics(at)["class-y modes"].endswith("/2")   # class 3 of 4: two opposite modes
    at = at.selectbox(key="guide_ds").set_value("8gaussians_2class").run()
    assert_clean(at)
    assert at.selectbox(key="guide_y").value == 0 and metrics(at)["class-y modes"].endswith("/4")


def test_guidance_sweep_and_class_posterior_respond():
    at = open_labs()
    at.multiselect(key="guide_ws").set_value([0.0, 2.0])
    at.multiselect(key="guide_ivs").set_value(["full", "limited"])
    at = at.button(key="FormSubmitter:guide_sweep_form-Sweep w").click().run()
    assert_clean(at)
    table = next(m.value for m in at.markdown if m.value.lstrip().startswith("| interval"))
    assert table.count("| full |") == 2 and table.count("| limited |") == 2
    before = charts(at)[2]["data"][0]["z"]
    at = at.slider(key="guide_t").set_value(200).run()
    assert_clean(at)
    after = charts(at)[2]["data"][0]["z"]
    assert before != after and "ᾱ" in charts(at)[2]["layout"]["title"]["text"]


def test_flow_section_sweeps_nfe_and_draws_paths():
    at = open_labs(labs_section="flow vs diffusion", flow_n="250", flow_seeds="1")
    assert_clean(at)
    m = metrics(at)
    assert float(m["straightness, linear flow"]) < float(m["straightness, VP (DDIM)"]) <= 1
    assert float(m["mean ‖x_0 flow − x_0 VP‖"]) < 0.05     # one transport map
    nfe_chart, paths = charts(at)[0], charts(at)[1]
    names = [t.get("name", "") for t in nfe_chart["data"]]
    assert any(n.startswith("flow heun") for n in names) and any(n.startswith("ddim") for n in names)
    n_lines = sum(t.get("mode") == "lines" and t["type"] == "scatter" and "particle" in t.get("hovertemplate", "")
                  for t in paths["data"])
    at.multiselect(key="flow_methods").set_value(["flow euler"])
    at.multiselect(key="flow_budgets").set_value([1, 4])
    at = at.button(key="FormSubmitter:flow_form-Run").click().run()
    at = at.slider(key="flow_particles").set_value(at.slider(key="flow_particles").value + 4).run()
    assert_clean(at)
    euler = [t for t in charts(at)[0]["data"] if t.get("name", "").startswith("flow euler")]
    assert len(euler) == 1 and euler[0]["x"] == [1, 4]
    assert sum("particle" in t.get("hovertemplate", "") for t in charts(at)[1]["data"]) == n_lines + 8
    assert at.query_params["flow_methods"] == "flow euler" and at.query_params["flow_budgets"] == "1,4" and len(at.get("download_button")) >= 5


def test_likelihood_section_reports_the_models_kl_next_to_the_oracles():
    at = open_labs(labs_section="likelihood", lik_n="20", lik_n_elbo="250")
    assert_clean(at)
    m = metrics(at)
    oracle, model = float(m["KL(p ‖ p_θ), oracle"]), float(m["KL(p ‖ p_θ), model"])   # the shipped 8gaussians model
    assert abs(oracle) < 0.05 and float(m["ELBO − H, model"]) > float(m["ELBO − H, oracle"])
    lik, elbo = charts(at)
    exact_vs_ode = [t for t in lik["data"] if t.get("mode") == "markers"]
    assert {t["name"].split(" (")[0] for t in exact_vs_ode} == {"model", "oracle"}
    oracle_pts = next(t for t in exact_vs_ode if t["name"].startswith("oracle"))
    assert max(abs(a - b) for a, b in zip(values(oracle_pts["x"]), values(oracle_pts["y"]))) < 0.1     # on the diagonal
    assert any("cumulative" in t.get("name", "") for t in elbo["data"])
    at.number_input(key="lik_seed").set_value(1)
    at.select_slider(key="lik_n_elbo").set_value(500)
    at = at.button(key="FormSubmitter:lik_form-Compute").click().run()
    assert_clean(at)
    assert len(values(next(t for t in charts(at)[0]["data"] if t.get("mode") == "markers")["x"])) == 20
    assert at.query_params["lik_n_elbo"] == "500" and model != float(metrics(at)["KL(p ‖ p_θ), model"])


def test_likelihood_section_in_one_dimension_without_a_model():
    at = open_labs(labs_section="likelihood", lik_ds="three_gaussians", lik_n="20", lik_n_elbo="250")
    assert_clean(at)
    assert "KL(p ‖ p_θ), model" not in metrics(at) and at.query_params["lik_ds"] == "three_gaussians"
    exact = charts(at)[0]["data"][0]
    assert exact["name"] == "exact log p(x)" and values(exact["x"]) == sorted(values(exact["x"]))   # a curve over x
    at.toggle(key="lik_grid").set_value(True)
    at = at.button(key="FormSubmitter:lik_form-Compute").click().run()
    assert_clean(at)
    exact, ode = charts(at)[2]["data"]          # the grid: 80 points, exact log p and the oracle's PF-ODE
    e, o = np.array(values(exact["customdata"])), np.array(values(ode["customdata"]))
    assert exact["name"] == "exact log p" and len(e) == 80
    # weighted by where the data lives, the ODE reproduces the exact log p (the recipe's coarse constant-β
    # schedule, T = 250, ᾱ_T ≈ 0.006 against the N(0, I) prior, costs the tails a few tenths of a nat)
    p = np.exp(e)
    assert (p * np.abs(e - o)).sum() / p.sum() < 0.05 and at.query_params["lik_grid"] == "1"


def test_memorisation_section_copies_and_sweeps_n():
    at = open_labs(labs_section="memorisation", mem_n="250", mem_n_train="16")
    assert_clean(at)
    m = metrics(at)
    assert float(m["copy rate, empirical ε*"].rstrip("%")) > 90 > float(m["copy rate of fresh true points"].rstrip("%"))
    curve = charts(at)[1]
    emp, chance = curve["data"][0]["y"], curve["data"][1]["y"]
    assert len(emp) == 6 and emp[0] > emp[-1] and all(e >= c for e, c in zip(emp[:3], chance[:3]))
    at.select_slider(key="mem_n_train").set_value(4)
    at = at.button(key="FormSubmitter:mem_form-Sample").click().run()
    assert_clean(at)
    assert metrics(at)["training points copied"].endswith("of 4") and at.query_params["mem_n_train"] == "4"
    assert "guide_w" not in at.query_params     # the URL holds this section's settings only
