"""The figure checks (toydiff.toy.figures.lint) over every figure of toydiff.toy.figures, drawn from small
synthetic inputs (toydiff.toy.figures.gallery): titles and tick labels inside the canvas, no empty panel, equal
aspect for points in a plane, readable log ticks. Each check is shown to fail on a deliberately bad figure."""

import importlib
import inspect

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from toydiff.toy.figures.gallery import mpl_cases  # noqa: E402
from toydiff.toy.figures.lint import mpl_problems, plotly_problems  # noqa: E402

FAMILIES = ("samples", "training", "schedules", "sampling", "motion", "guidance", "flow", "likelihood", "memorisation",
            "few_step")
MPL = mpl_cases()


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _renderers(suffix: str) -> set[str]:
    names = set()
    for fam in FAMILIES:
        mod = importlib.import_module(f"toydiff.toy.figures.{fam}")
        names |= {n for n, f in inspect.getmembers(mod, inspect.isfunction)
                  if f.__module__ == mod.__name__ and n.endswith(suffix) and not n.startswith("_")}
    return names


def test_every_matplotlib_figure_has_a_case():
    assert _renderers("_mpl") <= {n.split("/")[0] for n in MPL}


@pytest.mark.parametrize("name", sorted(MPL))
def test_matplotlib_figure_passes_the_checks(name):
    make, plane = MPL[name]
    assert mpl_problems(make(), plane=plane) == []


def test_image_track_figures_pass_the_checks():
    import torch

    from image_track.plots import class_histogram, noised_digits
    from toydiff.processes import schedules

    x0 = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert mpl_problems(noised_digits(x0, schedules.linear(), [100, 500, 999],
                                      generator=torch.Generator().manual_seed(0))) == []
    assert mpl_problems(class_histogram([0.1] * 10, n=100)) == []


def test_references_alone_make_an_empty_panel_and_bars_do_not():
    fig, (a, b) = plt.subplots(1, 2)
    a.axhspan(0, 1)
    a.axvline(0.5)
    b.bar([0, 1], [1, 2])
    assert mpl_problems(fig) == ["axes 0 ('') is empty"]


def test_the_matplotlib_checks_can_fail():
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(6, 2.5))
    a.scatter(np.cos(np.linspace(0, 6, 50)), np.sin(np.linspace(0, 6, 50)))  # a ring at auto aspect
    a.set_title("a title far too long for a panel of a narrow figure, so it runs off both ends of the canvas")
    b.axhline(0)  # a reference line and nothing else: an empty panel
    c.plot([0, 1], [0, 1])
    c.set_xticks([0, 1], ["0", "a tick label that is far too long to fit"])
    problems = " | ".join(mpl_problems(fig, plane=True))
    assert "axes 0 title" in problems and "outside the canvas" in problems
    assert "axes 1 ('') is empty" in problems
    assert "aspect 'auto'" in problems
    assert "x tick 'a tick label" in problems


def test_every_plotly_figure_passes_the_checks():
    pytest.importorskip("plotly")
    from toydiff.toy.figures.gallery import plotly_cases

    cases = plotly_cases()
    assert _renderers("_plotly") <= {n.split("/")[0] for n in cases}
    bad = {}
    for name, (make, plane) in cases.items():
        fig = make()
        if p := plotly_problems(fig, plane=plane):
            bad[name] = p
        assert "<html>" in fig.to_html(include_plotlyjs="cdn", full_html=True)  # the pages' HTML download
    assert bad == {}


def test_the_plotly_checks_can_fail():
    go = pytest.importorskip("plotly.graph_objects")
    from toydiff.toy.figures.plotly_kit import log_axis, plane_axes

    fig = go.Figure(go.Scatter(x=[10, 20, 50], y=[0.1, 0.03, 0.02]))
    fig.update_layout(xaxis_type="log")  # Plotly's default ticks: "2" means 20
    ring = go.Figure(go.Scatter(x=np.cos(np.arange(8)), y=np.sin(np.arange(8)), mode="markers"))
    assert any("log axis" in p for p in plotly_problems(fig))
    assert any("unequal aspect" in p for p in plotly_problems(ring, plane=True))
    fig.update_xaxes(**log_axis([10, 20, 50]))
    plane_axes(ring)
    assert plotly_problems(fig) == [] and plotly_problems(ring, plane=True) == []


def test_log_ticks_are_full_numbers():
    from toydiff.toy.figures.plotly_kit import log_ticks

    vals, text = log_ticks([9, 40])
    assert [t for v, t in zip(vals, text) if 9 <= v <= 40] == ["10", "20"]
    assert log_ticks([1e-4, 1])[1] == ["1e-4", "0.001", "0.01", "0.1", "1"]
    assert len([v for v in log_ticks([0.031, 0.045])[0] if 0.031 <= v <= 0.045]) >= 2


def test_elbo_of_the_reference_alone_has_no_empty_panel():
    fig = MPL["elbo_mpl/oracle"][0]()
    assert len(fig.axes) == 1 and len(MPL["elbo_mpl"][0]().axes) == 2


def test_convergence_note_states_the_data():
    from toydiff.toy.figures.sampling import convergence_note

    curves = {"ddpm": ([10, 100], [0.2, 0.05]), "ddim": ([10, 100], [0.12, 0.11])}
    note = convergence_note(curves, (0.05, 0.005))
    assert "ddim 2.2×" in note and "ddpm 1.0×" in note
    assert "ODE samplers levelled off" in note and "ddim, above the floor" in note and "ddpm ends below them" in note
    assert "levelled" not in convergence_note({"ddim": ([10, 100], [0.5, 0.1])}, 0.05)
