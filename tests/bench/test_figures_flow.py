"""The flow-vs-diffusion figure (bench/figures_flow.py): its data and its panels."""

from __future__ import annotations


import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import torch  # noqa: E402

from toydiff.toy.flow_compare import straightness  # noqa: E402


import figures_flow as _fig  # noqa: E402  (bench/, on sys.path by conftest.py)
CURVES, distance_curves, figure_paths, flow_vs_diffusion_figure = (
    _fig.CURVES, _fig.distance_curves, _fig.figure_paths, _fig.flow_vs_diffusion_figure)


@pytest.fixture(scope="module")
def curves():
    return distance_curves("two_gaussians", n=300, seeds=1, budgets=(2, 16))


def test_distance_curves_fall_with_nfe_towards_the_floor(curves):
    assert set(curves["curves"]) == {c[0] for c in CURVES} and curves["metric"] == "W1"
    for label, (d2, d16) in curves["curves"].items():
        assert d16 < d2, label  # more evaluations, closer to the truth
    assert curves["curves"]["linear · heun"][1] < 3 * curves["floor"][0]


def test_figure_paths_start_together_and_bend_as_measured():
    p = figure_paths("8gaussians", n=5, flow_steps=20, vp_steps=40)
    xl, xv = p["linear"], p["VP"]
    assert xl.shape == (21, 5, 2) and xv.shape == (41, 5, 2) and p["dim"] == 2
    assert np.allclose(xl[0], xv[0])  # the same x_1
    sl, sv = straightness(torch.from_numpy(xl)), straightness(torch.from_numpy(xv))
    assert 0 < sl < sv <= 1  # the linear path's marginal ODE bends more than the VP flow (README table)


def test_figure_has_distance_and_path_panels(curves):
    fig = flow_vs_diffusion_figure([curves], figure_paths("two_gaussians", n=3, flow_steps=10, vp_steps=10))
    titles = [ax.get_title() for ax in fig.axes]
    assert any("distance vs NFE" in t for t in titles) and sum("exact ODE paths" in t for t in titles) == 2
    ax = fig.axes[0]
    assert ax.get_xlabel() == "network evaluations (NFE)" and len(ax.lines) == 1 + len(CURVES)
    with pytest.raises(ValueError, match="curves"):
        flow_vs_diffusion_figure([])
