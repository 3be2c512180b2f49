"""A page's settings in its URL (``st.query_params``), so a view can be shared: read once per session into the
widgets' ``st.session_state`` keys, written back after every run.

Only the keys a page names travel, each with a parser (``int``, ``float``, ``str``, ``bool_param``,
``int_list``); a value that does not parse or is not among a widget's options is ignored, not an error.
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

__all__ = ["bool_param", "int_list", "str_list", "restore", "defaults", "publish"]


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


def defaults(values: dict[str, Any]) -> None:
    """Give each widget key its default in ``st.session_state`` unless the URL (or the user) already set it; the
    widgets are then created without a default of their own, so Streamlit has one source of truth."""
    for key, value in values.items():
        st.session_state.setdefault(key, value)


def _dump(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def restore(page: str, params: dict[str, Callable[[str], Any]],
            allowed: dict[str, Callable[[Any], bool]] | None = None) -> None:
    """On a session's first run of ``page``, set ``st.session_state[key]`` from ``st.query_params[key]`` for each
    key of ``params`` (parsed by its function, and kept only if ``allowed[key](value)`` holds, where given)."""
    flag = f"_url_restored_{page}"
    if st.session_state.get(flag):
        return
    st.session_state[flag] = True
    allowed = allowed or {}
    for key, parse in params.items():
        if key not in st.query_params:
            continue
        try:
            value = parse(st.query_params[key])
        except (TypeError, ValueError):
            continue
        if allowed.get(key, lambda _v: True)(value):
            st.session_state[key] = value


def publish(keys) -> None:
    """Write the current values of the widgets ``keys`` (those set) into the URL's query string."""
    for key in keys:
        if key in st.session_state:
            value = _dump(st.session_state[key])
            if st.query_params.get(key) != value:
                st.query_params[key] = value
