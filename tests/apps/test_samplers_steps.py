"""The Sampler lab's optimal-steps section (apps/pages/samplers/steps.py) through AppTest: nothing runs until its
form button is pressed; then the levels chart (each grid's levels on the log-SNR axis and its error), the table
(fixed spacings and the optimised levels) and the margin; kept across an unrelated rerun."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from app_harness import charts, clean, metrics, open_page  # noqa: E402
from app_harness import plotly_array as arr  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
#: the smallest sweep above the section (one line, one step count, one seed), so the test pays for the search only
SMALL = {"lab_steps_1000": [5], "lab_seeds": 1, "lab_n": 500, "lab_methods": ["ddim"], "lab_flows": [],
         "lab_side_steps_1000": 5}


def steps_table(at) -> dict[str, list[str]]:
    (md,) = [m.value for m in at.markdown if m.value.lstrip().startswith("| grid")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()[2:]]
    return {r[0]: r[1:] for r in rows}


def test_optimal_steps_form_shows_levels_chart_table_and_margin():
    at = clean(open_page("samplers", timeout=120, state=SMALL))
    assert len(charts(at)) == 1 and any("Optimise the levels" in i.value for i in at.info)  # not run yet
    at.selectbox(key="steps_method").set_value("dpm++2m")
    at.select_slider(key="steps_n").set_value(3)
    next(b for b in at.button if b.label == "Optimise the levels").click().run()
    clean(at)
    _, spec = charts(at)
    lines = {t["name"]: arr(t["x"]) for t in spec["data"] if t["type"] == "scatter"}
    assert set(lines) == {"linspace", "trailing", "karras", "logsnr", "optimised"}
    assert all(len(x) == 3 and (x[1:] > x[:-1]).all() for x in lines.values())  # N levels, noise -> data in λ
    rows = steps_table(at)
    assert set(rows) == set(lines) and all("±" in r[0] for r in rows.values())
    assert rows["optimised"][1].startswith("999,")
    (margin,) = [v for k, v in metrics(at).items() if k.startswith("dpm++2m, 3 levels")]
    assert float(margin.rstrip("×")) > 1.0  # the optimised levels beat the best fixed spacing on held-out x_T

    at.toggle(key="lab_nfe").set_value(False).run()  # another widget: the section stays, from the cache
    assert len(charts(clean(at))) == 2 and steps_table(at) == rows
