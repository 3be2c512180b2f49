"""A page's settings in its URL (``st.query_params``), so a view can be shared: one declarative spec per page, one
validating function, read once per session into the widgets' ``st.session_state`` keys and written back after
every run.

    SPEC = (Param("mo_fn", int, 1000, choices=(200, 500, 1000, 2000), url="fn"),
            Param("mo_fs", int, 0, bounds="seed", url="fs"))
    url_state.restore("motion", SPEC)   # first run of the session: valid URL values into session_state
    url_state.defaults(SPEC)            # every other key gets its default (one source of truth for the widgets)
    ...
    url_state.publish(SPEC)             # the current values back into the URL

A URL value that does not parse, is not among the allowed values or lies outside the range falls back to the
default with a visible note naming the key and the value (:func:`validate` returns the notes; :func:`restore`
shows them): never an exception, never a huge allocation. The ranges the URL may ask for are in one table,
:data:`BOUNDS`, sized by what a value costs in memory and time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import streamlit as st

from toydiff.bounds import SIZE_LIMITS

__all__ = ["BOUNDS", "Param", "bool_param", "int_list", "str_list", "validate", "restore", "defaults", "publish"]

def _within(key: str, lo: int, hi: int) -> tuple[int, int]:
    """The page's range ``[lo, hi]``, never wider than the library's own bound (:data:`toydiff.bounds.SIZE_LIMITS`)."""
    limit = SIZE_LIMITS[key]
    return max(lo, limit.min), min(hi, limit.max)


#: the inclusive range a URL may ask for, by what the value costs; the pages' widgets use the same ranges
BOUNDS: dict[str, tuple[int | float, int | float]] = {
    # any seed costs the same; the number inputs' range
    "seed": (0, 10_000),
    # Toy sampler steps: one MLP call on [n ≤ 10k, 2] each (~1 ms); no toy schedule has T > 1000 (the page
    # clamps to the model's T)
    "toy_steps": _within("steps", 1, 1000),
    # Motion keeps every frame of the cloud, [frames, n ≤ 2000, 2] float64, and ships it to the browser in the
    # Plotly figure: 60 frames ≈ 2 MB of JSON; its samplers' steps are frames too
    "motion_frames": _within("frames", 10, 60),
    "motion_steps": _within("steps", 5, 100),
    # MNIST: a CPU UNet step on 40 images ≈ 0.1 s, so 200 steps ≈ 20 s per grid (the page clamps to T)
    "mnist_steps": _within("steps", 1, 200),
    # Schedules: sampler steps are clamped to the schedule's T (≤ 2000 in the picker); panels of one figure
    "plan_steps": _within("steps", 1, 2000),
    "fwd_panels": (3, 8),
    # seeds averaged over: every seed reruns every sampler line of the sweep
    "lab_seeds": (1, 10),
    "flow_seeds": (1, 5),
    # guidance scales: beyond these the samples only saturate; the labelled toy sets have at most 4 classes
    "mnist_w": (0, 10),
    "guide_w": (-1, 8),
    "guide_y": _within("class_id", 0, 3),
}

_MAX_TEXT = 400  # a longer URL value is malformed, whatever the key (no parser sees it)
_MAX_ITEMS = 32  # list values: more items than any multiselect of the app offers


def bool_param(s: str) -> bool:
    """``"1"``/``"true"`` → True, ``"0"``/``"false"`` → False; anything else is a ValueError."""
    v = str(s).strip().lower()
    if v in ("1", "true"):
        return True
    if v in ("0", "false"):
        return False
    raise ValueError(f"not a boolean: {s!r}")


def int_list(s: str) -> list[int]:
    """``"5,10,20"`` → [5, 10, 20]."""
    return [int(p) for p in str(s).split(",") if p.strip()]


def str_list(s: str) -> list[str]:
    """``"ddim,heun"`` → ["ddim", "heun"]."""
    return [p.strip() for p in str(s).split(",") if p.strip()]


_PARSERS = {int: int, float: float, str: str, bool: bool_param, "int_list": int_list, "str_list": str_list}


@dataclass(frozen=True)
class Param:
    """One URL setting of a page.

    Args:
        key: the widget's ``st.session_state`` key.
        kind: ``int``, ``float``, ``str``, ``bool``, ``"int_list"`` or ``"str_list"``.
        default: the value when the URL has none, or a bad one (None: the page sets it; :func:`defaults` skips it).
        choices: the allowed values (of each item, for a list); None: any (within ``bounds``).
        bounds: a key of :data:`BOUNDS` (inclusive range of a number, or of each item of an int list).
        url: the query name, when it differs from ``key`` (e.g. ``n`` for ``toy_n``).
    """

    key: str
    kind: Any
    default: Any
    choices: Sequence | None = None
    bounds: str | None = None
    url: str | None = None

    def __post_init__(self):
        if self.kind not in _PARSERS:
            raise ValueError(f"kind must be one of {list(_PARSERS)}, got {self.kind!r}")
        if self.bounds is not None and self.bounds not in BOUNDS:
            raise ValueError(f"bounds must be a key of BOUNDS, got {self.bounds!r}")

    @property
    def name(self) -> str:
        """The query-string name."""
        return self.url or self.key

    def check(self, raw: str) -> Any:
        """The value of URL text ``raw``, or a ValueError saying why it is refused."""
        text = str(raw)
        if len(text) > _MAX_TEXT:
            raise ValueError(f"longer than {_MAX_TEXT} characters")
        try:
            value = _PARSERS[self.kind](text)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"not a{'n' if self.kind is int else ''} {getattr(self.kind, '__name__', self.kind)}") from None
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list):
            if not value or len(value) > _MAX_ITEMS:
                raise ValueError(f"expected 1 to {_MAX_ITEMS} items")
            value = list(dict.fromkeys(value))  # a repeated item would break a multiselect
        for v in items:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError("not a finite number")
            if self.bounds is not None:
                lo, hi = BOUNDS[self.bounds]
                if not lo <= v <= hi:
                    raise ValueError(f"outside {lo:g}..{hi:g}")
            if self.choices is not None and v not in self.choices:
                raise ValueError("not one of " + ", ".join(map(str, self.choices)))
        return value


def validate(spec: Sequence[Param], query: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The value of every ``Param`` of ``spec`` (by ``key``) from the URL ``query``, and one note per URL value
    refused (which then gives way to the default). Pure: no Streamlit call."""
    values, notes = {}, []
    for p in spec:
        values[p.key] = p.default
        if p.name not in query:
            continue
        raw = query[p.name]
        try:
            values[p.key] = p.check(raw)
        except ValueError as e:
            shown = str(raw) if len(str(raw)) <= 40 else str(raw)[:40] + "…"
            default = "" if p.default is None else f" {_dump(p.default)!r}"
            notes.append(f"URL setting `{p.name}={shown}` ignored ({e}); using the default{default}.")
    return values, notes


def restore(page: str, spec: Sequence[Param]) -> dict[str, Any]:
    """On a session's first run of ``page``, put the valid URL values of ``spec`` into ``st.session_state`` and
    show a note (``st.warning``) for each refused one. Returns the values read (defaults where the URL has none
    or a bad one); on later runs, the defaults."""
    flag = f"_url_restored_{page}"
    if st.session_state.get(flag):
        return {p.key: p.default for p in spec}
    st.session_state[flag] = True
    query = {k: st.query_params[k] for k in st.query_params}
    values, notes = validate(spec, query)
    for p in spec:
        if p.name in query:
            try:
                st.session_state[p.key] = p.check(query[p.name])
            except ValueError:
                pass  # noted by validate; the default stands
    for note in notes:
        st.warning(note, icon="🔗")
    return values


def defaults(spec: Sequence[Param] | Mapping[str, Any]) -> None:
    """Give each widget key its default in ``st.session_state`` unless the URL (or the user) already set it; the
    widgets are then created without a default of their own, so Streamlit has one source of truth."""
    items = spec.items() if isinstance(spec, Mapping) else ((p.key, p.default) for p in spec)
    for key, value in items:
        if value is not None:  # None: the page sets the default itself
            st.session_state.setdefault(key, value)


def _dump(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def publish(spec: Sequence[Param]) -> None:
    """Write the current values of the widgets of ``spec`` (those set) into the URL's query string."""
    for p in spec:
        if p.key in st.session_state:
            value = _dump(st.session_state[p.key])
            if st.query_params.get(p.name) != value:
                st.query_params[p.name] = value
