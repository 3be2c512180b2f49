"""The flow-vs-diffusion figure (toydiff.toy.plots_flow): its data and its panels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from toydiff.toy.plots_flow import CURVES, distance_curves, flow_vs_diffusion_figure, ode_paths, straightness  # noqa: E402


@pytest.fixture(scope="module")
def curves():
    return distance_curves("two_gaussians", n=300, seeds=1, budgets=(2, 16))


def test_distance_curves_fall_with_nfe_towards_the_floor(curves):
    assert set(curves["curves"]) == {c[0] for c in CURVES} and curves["metric"] == "W1"
    for label, (d2, d16) in curves["curves"].items():
        assert d16 < d2, label  # more evaluations, closer to the truth
    assert curves["curves"]["linear · heun"][1] < 3 * curves["floor"][0]


def test_ode_paths_start_together_and_the_linear_path_ends_on_its_exact_map():
    p = ode_paths("8gaussians", n=5, flow_steps=20, vp_steps=40)
    (tl, xl), (tv, xv) = p["linear"], p["VP"]
    assert xl.shape == (21, 5, 2) and xv.shape == (41, 5, 2)
    assert np.allclose(xl[0], xv[0]) and tl[0] == 1.0 and tl[-1] == 0.0 and abs(tv[-1]) < 1e-12
    assert 0 < straightness(xl) < 1 and 0 < straightness(xv) <= 1


def test_straightness_of_a_line_is_one_and_of_a_detour_less():
    line = np.linspace(0, 1, 5)[:, None, None] * np.ones((1, 1, 2))
    detour = np.array([[[0.0, 0.0]], [[1.0, 1.0]], [[2.0, 0.0]]])
    assert straightness(line) == pytest.approx(1.0) and straightness(detour) == pytest.approx(2 / (2 * 2 ** 0.5))


def test_figure_has_distance_and_path_panels(curves):
    fig = flow_vs_diffusion_figure([curves], ode_paths("two_gaussians", n=3, flow_steps=10, vp_steps=10))
    titles = [ax.get_title() for ax in fig.axes]
    assert any("distance vs NFE" in t for t in titles) and sum("exact ODE paths" in t for t in titles) == 2
    ax = fig.axes[0]
    assert ax.get_xlabel() == "network evaluations (NFE)" and len(ax.lines) == 1 + len(CURVES)
    with pytest.raises(ValueError, match="curves"):
        flow_vs_diffusion_figure([])
