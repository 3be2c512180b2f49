"""toydiff.toy.flow_compare: exact flow and VP paths from one x_1, their lengths and straightness; the Plotly
figures of the labs (toydiff.toy.figures)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import toydiff as td
from toydiff.toy import flow_compare as fc
from toydiff.toy.datasets import Normalizer, get_dataset

SCHEDULE = td.schedules.linear(T=1000)
pytestmark = pytest.mark.usefixtures("one_thread")


def x1(n: int = 64, d: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def ring() -> td.GaussianMixture:
    gm = get_dataset("8gaussians").mixture
    return Normalizer.from_mixture(gm).oracle(gm)


def test_paths_start_at_x1_and_record_every_step():
    x = x1()
    flow = fc.ode_paths(ring(), x, "flow", method="heun", steps=16)
    vp = fc.ode_paths(ring(), x, "vp", method="ddim", steps=None, schedule=SCHEDULE)
    assert flow.shape == (17, 64, 2) and vp.shape == (SCHEDULE.T + 1, 64, 2)
    assert torch.equal(flow[0], x) and torch.equal(vp[0], x)


def test_flow_and_vp_odes_are_one_transport_map():
    """Both are the PF-ODE of a Gaussian interpolant: in x/α against σ/α the same ODE, so the same x_1 reaches
    the same x_0 up to discretisation — while the paths in between differ."""
    x = x1(200)
    flow = fc.ode_paths(ring(), x, "flow", method="heun", steps=64)
    vp = fc.ode_paths(ring(), x, "vp", method="ddim", steps=None, schedule=td.schedules.linear(T=1000))
    assert float((flow[-1] - vp[-1]).norm(dim=1).mean()) < 0.02
    assert fc.straightness(flow) < fc.straightness(vp) - 0.2


@given(scale=st.floats(0.2, 3.0), seed=st.integers(0, 1000))
def test_a_centred_isotropic_gaussian_has_radial_paths(scale, seed):
    """For N(0, s² I) the exact fields are radial (E[x_0 | x_t] ∝ x_t): every state is a positive multiple of x_1
    (The linear flow's radius can shrink and grow back — its variance (1 − t)² s² + t² dips mid-way — so radial
    paths need not have straightness 1.)"""
    gm = td.GaussianMixture.diagonal(torch.ones(1), torch.zeros(1, 2), scale)
    x = x1(8, seed=seed)
    for process, kw in (("flow", {"method": "euler", "steps": 8}),
                        ("vp", {"method": "ddim", "steps": 10, "schedule": SCHEDULE})):
        p = fc.ode_paths(gm, x, process, **kw)
        cos = (p * x).sum(-1) / (p.norm(dim=-1) * x.norm(dim=-1))
        assert torch.allclose(cos, torch.ones_like(cos), atol=1e-9)


def test_straightness_of_known_polylines():
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64).unsqueeze(1)  # an L: chord √2, length 2
    assert fc.path_lengths(square).item() == pytest.approx(2.0)
    assert fc.straightness(square) == pytest.approx(2 ** 0.5 / 2)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="process"):
        fc.ode_paths(ring(), x1(), "sde", method="euler", steps=4)
    with pytest.raises(ValueError, match="x_1"):
        fc.ode_paths(ring(), x1(d=1), "flow", method="euler", steps=4)
    with pytest.raises(TypeError, match="schedule"):
        fc.ode_paths(ring(), x1(), "vp", method="ddim", steps=4)
    with pytest.raises(ValueError, match="steps"):
        fc.ode_paths(ring(), x1(), "flow", method="euler", steps=0)
    with pytest.raises(ValueError, match="paths"):
        fc.straightness(torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="zero length"):
        fc.straightness(torch.zeros(3, 2, 2))


def test_lab_figures():
    pytest.importorskip("plotly")
    from toydiff.exact.guidance import tilted_target
    from toydiff.toy.figures.flow import paths_plotly
    from toydiff.toy.figures.guidance import class_posterior_plotly, guidance_curves_plotly, target_panels_plotly
    from toydiff.toy.figures.likelihood import elbo_plotly, likelihood_grid_plotly, likelihood_points_plotly
    from toydiff.toy.figures.memorisation import copies_plotly, copy_rate_plotly
    from toydiff.toy.labelled import get_labelled

    gm = get_labelled("8gaussians_2class").mixture
    tg = tilted_target(gm.condition(0), gm, 2.0, n=32)
    fig = target_panels_plotly([("tilted", tg), ("p(x|y)", tg)], gm.sample(50, torch.Generator().manual_seed(0)))
    assert [t.type for t in fig.data] == ["heatmap", "scattergl"] * 2
    fig = class_posterior_plotly(gm, 0.5, 1, n=20)
    z = torch.tensor(fig.data[0].z)
    assert z.shape == (20, 20) and 0 <= float(z.min()) and float(z.max()) <= 1
    x = x1(5)
    fig = paths_plotly({"a": torch.stack([x, 0.5 * x]), "b": torch.stack([x, x.flip(0)])})
    assert sum(t.mode == "lines" for t in fig.data) == 10
    one_d = paths_plotly({"a": torch.stack([x[:, :1], 0.5 * x[:, :1]])})
    assert list(one_d.data[0].x) == [0.0, 1.0]
    row = dict(source="exact", interval="full", w=1.0, sw_tilted=0.1, sw_tilted_floor=0.05, sw_cond=0.1,
               sw_cond_floor=0.05, off_data=0.0, modes_covered=4, n_modes=4, class_share=1.0)
    fig = guidance_curves_plotly([row, {**row, "w": 2.0, "sw_tilted": 0.3}])
    assert list(fig.data[0].y) == [0.1, 0.3]
    for bad in (lambda: target_panels_plotly([], x), lambda: guidance_curves_plotly([]),
                lambda: paths_plotly({}), lambda: class_posterior_plotly(
                    td.GaussianMixture.diagonal(torch.ones(1), torch.zeros(1, 1), 1.0), 0.5, 0)):
        with pytest.raises(ValueError):
            bad()


def test_likelihood_and_memorisation_figures():
    pytest.importorskip("plotly")
    from toydiff.evaluation.elbo import ELBOTerms
    from toydiff.toy.figures.flow import paths_plotly
    from toydiff.toy.figures.guidance import class_posterior_plotly, guidance_curves_plotly, target_panels_plotly
    from toydiff.toy.figures.likelihood import elbo_plotly, likelihood_grid_plotly, likelihood_points_plotly
    from toydiff.toy.figures.memorisation import copies_plotly, copy_rate_plotly

    x = x1(30)
    lp = -(x**2).sum(1) / 2
    fig = likelihood_points_plotly(x, lp, {"oracle": lp + 0.01})
    assert fig.data[1].name == "oracle (mean gap -0.010)"
    fig = likelihood_points_plotly(x[:, :1], lp, {"oracle": lp})
    assert list(fig.data[0].x) == sorted(fig.data[0].x)
    fig = likelihood_grid_plotly([0.0, 1.0], [0.0, 1.0], {"a": np.array([[0.0, -1.0], [-100.0, -2.0]])}, span=10)
    assert fig.data[0].zmin == -10 and fig.data[0].z.min() == -10 and fig.data[0].customdata.min() == -100
    fig = likelihood_grid_plotly([0.0, 1.0, 2.0], None, {"a": np.array([0.0, -50.0, -1.0])}, span=10)
    assert list(fig.data[0].y) == [0.0, -10.0, -1.0]
    terms = {"oracle": ELBOTerms(torch.full((10,), 0.1), torch.zeros(10), 0.0),
             "model": ELBOTerms(torch.full((10,), 0.3), torch.zeros(10), 0.0)}
    fig = elbo_plotly(terms)
    cum = next(t for t in fig.data if t.name.startswith("cumulative"))
    assert cum.y[-1] == pytest.approx(2.0) and cum.name == "cumulative (+2.000 nats)"
    copies = torch.arange(30) % 3 == 0
    fig = copies_plotly(x[:5], x, copies)
    assert [t.name for t in fig.data] == ["training points", "new (20)", "copies (10)"]
    fig = copy_rate_plotly([4, 16], {"a": [1.0, 0.5]}, ratio=1 / 3)
    assert fig.layout.xaxis.type == "log"
    for bad in (lambda: likelihood_points_plotly(x, lp[:3], {}), lambda: elbo_plotly({}),
                lambda: likelihood_grid_plotly([0.0], None, {}),
                lambda: copies_plotly(x[:, :1], x, copies), lambda: copy_rate_plotly([1], {},
                                                                                                          ratio=0.3)):
        with pytest.raises(ValueError):
            bad()
