"""toydiff.toy.figures as a whole: one name per figure, Plotly only imported by the ``*_plotly`` renderers, and
both renderings of a figure drawing the same prepared data."""

import importlib
import inspect
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest

from toydiff.toy.figures.sampling import convergence_data, convergence_mpl
from toydiff.training.engine import History

FAMILIES = ("samples", "training", "schedules", "sampling", "motion", "guidance", "flow", "likelihood", "memorisation")


def test_no_figure_name_is_defined_twice():
    seen: dict[str, str] = {}
    for fam in FAMILIES + ("base", "plotly_kit"):
        if fam == "plotly_kit":
            pytest.importorskip("plotly")
        mod = importlib.import_module(f"toydiff.toy.figures.{fam}")
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ == mod.__name__ and not name.startswith("_"):
                assert name not in seen, f"{name} in both {seen[name]} and {fam}"
                seen[name] = fam
    renderers = [n for n in seen if n.endswith(("_mpl", "_plotly"))]
    assert "loss_curves_mpl" in renderers and "loss_curves_plotly" in renderers and len(renderers) > 25


def test_importing_the_figures_does_not_import_plotly():
    code = ("import sys\n" + "".join(f"import toydiff.toy.figures.{f}\n" for f in FAMILIES)
            + "import toydiff.toy.cli\nassert 'plotly' not in sys.modules, sorted(m for m in sys.modules if 'plotly' in m)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_convergence_data_reads_both_curve_forms():
    lines, floor = convergence_data({"a": ([1, 2], [0.5, 0.2]),
                                     "b": {"x": [2, 4], "mean": [0.3, 0.1], "std": [0.01, 0.02], "steps": [1, 2]}}, 0.05)
    assert floor == (0.05, 0.0) and lines["a"].std is None and lines["a"].steps == [1, 2]
    assert lines["b"].steps == [1, 2] and lines["b"].std == [0.01, 0.02]
    with pytest.raises(ValueError, match="curve 'a'"):
        convergence_data({"a": ([1, 2], [0.5])})
    fig = convergence_mpl({"b": {"x": [2, 4], "mean": [0.3, 0.1]}}, (0.05, 0.01))
    assert fig.axes[0].lines[-1].get_ydata()[0] == 0.05  # the floor's mean
    plt.close(fig)


def test_both_renderings_draw_the_same_data():
    pytest.importorskip("plotly")
    from toydiff.toy.figures.guidance import guidance_curves_mpl, guidance_curves_plotly
    from toydiff.toy.figures.training import loss_curves_mpl, loss_curves_plotly

    h = History(records=[{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "val_by_bucket": [0.5 / e] * 10}
                         for e in (1, 2)], floor=0.2, floor_by_bucket=[0.1] * 10)
    m, p = loss_curves_mpl(h), loss_curves_plotly(h)
    np.testing.assert_allclose(m.axes[1].lines[1].get_ydata(), p.data[4].y)  # the last epoch by bucket
    np.testing.assert_allclose(m.axes[0].lines[0].get_ydata(), p.data[0].y)  # train loss
    row = dict(source="exact", interval="full", w=1.0, sw_tilted=0.1, sw_tilted_floor=0.05, sw_cond=0.2,
               sw_cond_floor=0.05, off_data=0.0, modes_covered=4, n_modes=4, class_share=1.0)
    rows = [{**row, "w": 2.0, "sw_tilted": 0.3}, row]
    m, p = guidance_curves_mpl(rows), guidance_curves_plotly(rows)
    for col in range(3):  # sorted by w in both
        np.testing.assert_allclose(m.axes[col].lines[0].get_ydata(), p.data[col].y)
    plt.close("all")
