"""The URL-state convention (apps/common/url_state.py): one spec per page validated by one function; on every page a
malformed and an out-of-range URL value fall back to the default with a visible note naming the key and the
value, and no exception."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from app_harness import clean, open_page  # noqa: E402

from apps.common.url_state import BOUNDS, Param, validate  # noqa: E402

TIMEOUT = 120
pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = (Param("n", int, 1000, choices=(500, 1000, 2000)),
        Param("seed", int, 0, bounds="seed"),
        Param("w", float, 3.0, bounds="guide_w"),
        Param("on", bool, True),
        Param("ms", "str_list", ["ddim"], choices=("ddim", "heun")),
        Param("bs", "int_list", [1, 2], choices=(1, 2, 4)),
        Param("st_key", int, 5, bounds="fwd_panels", url="p"))


def test_valid_values_are_read_and_absent_ones_default():
    values, notes = validate(SPEC, {"n": "2000", "seed": "7", "w": "-0.5", "on": "0", "ms": "heun,ddim,heun",
                                    "bs": "4", "p": "8"})
    assert notes == []
    assert values == {"n": 2000, "seed": 7, "w": -0.5, "on": False, "ms": ["heun", "ddim"], "bs": [4], "st_key": 8}
    assert validate(SPEC, {})[0] == {p.key: p.default for p in SPEC}


@pytest.mark.parametrize("name, raw", [
    ("n", "-5"), ("n", "abc"), ("seed", "1000000000000"), ("seed", "-5"), ("seed", "1e12"), ("seed", "9" * 5000),
    ("w", "nan"), ("w", "inf"), ("w", "1e308"), ("on", "maybe"), ("ms", "ddim,euler"), ("ms", ","),
    ("bs", "1,x"), ("bs", ",".join(["1"] * 100)), ("p", "2"), ("p", "1000000000000")])
def test_a_bad_value_falls_back_to_the_default_with_a_note_naming_it(name, raw):
    values, notes = validate(SPEC, {name: raw})
    assert values == {p.key: p.default for p in SPEC}
    assert len(notes) == 1 and f"`{name}=" in notes[0] and raw[:20] in notes[0] and "default" in notes[0]


def test_the_spec_is_checked():
    with pytest.raises(ValueError, match="kind"):
        Param("x", list, [])
    with pytest.raises(ValueError, match="bounds"):
        Param("x", int, 0, bounds="no such bound")
    assert all(lo <= hi for lo, hi in BOUNDS.values())


#: per page: a malformed and an out-of-range URL value, and the widget (kind, key) each lands in with its default
CASES = {
    "schedules": ({"fwd_panels": "abc", "plan_steps": "1000000000000"},
                  {("slider", "fwd_panels"): 5, ("number_input", "plan_steps"): 10}),
    "toy": ({"n": "-5", "sseed": "1000000000000"},
            {("select_slider", "toy_n"): 1000, ("number_input", "toy_sseed"): 0}),
    "motion": ({"fn": "-5", "fs": "1000000000000", "ff": "1000000000000", "rn": "1e12", "rseed": "-5",
                "cseed": "1e12", "rs": "x"},
               {("select_slider", "mo_fn"): 1000, ("number_input", "mo_fs"): 0, ("slider", "mo_ff"): 50,
                ("select_slider", "mo_rn"): 2000, ("number_input", "mo_rseed"): 0, ("number_input", "mo_cseed"): 1,
                ("slider", "mo_rs"): 50}),
    "samplers": ({"lab_n": "lots", "lab_seeds": "1000000000000"},
                 {("select_slider", "lab_n"): 2000, ("slider", "lab_seeds"): 3}),
    "labs": ({"guide_y": "abc", "guide_w": "1e12", "guide_kind": "[]"},
             {("selectbox", "guide_y"): 0, ("slider", "guide_w"): 3.0, ("radio", "guide_kind"): "CFG"}),
    "mnist": ({"mnist_seed": "1e12", "mnist_steps": "-5"},
              {("number_input", "mnist_seed"): 0, ("slider", "mnist_steps"): 25}),
    "image_lab": ({"ilab_seed": "seven", "ilab_stride": "1000000000000"},
                  {("number_input", "ilab_seed"): 0, ("select_slider", "ilab_stride"): 30}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_page_refuses_bad_url_values_visibly(name):
    query, widgets = CASES[name]
    at = clean(open_page(name, timeout=TIMEOUT, **query))
    notes = " ".join(w.value for w in at.warning)
    for key, raw in query.items():
        assert f"`{key}={raw}`" in notes, (key, notes)
    for (kind, key), default in widgets.items():
        assert getattr(at, kind)(key=key).value == default, key
