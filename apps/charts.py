"""Page helpers around the Plotly figures of :mod:`toydiff.toy.figures`: show one, offer downloads, keep settings
in the URL.

Every page shows interactive figures with :func:`show_chart` and offers the matplotlib export (PNG), the figure
itself (standalone HTML) and the data behind it (CSV) with :func:`downloads`. :func:`url_setting` gives a
widget its default from ``st.query_params`` and :func:`share_settings` writes the current values back, so a
view can be shared as a link.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
import streamlit as st

__all__ = ["PLOTLY_CONFIG", "readable_widgets", "show_chart", "downloads", "csv_bytes", "url_setting", "share_settings", "section_notes",
           "mixture_section"]

#: the mode bar keeps zoom / pan / reset and the PNG button; no Plotly logo
PLOTLY_CONFIG = {"displaylogo": False, "scrollZoom": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


#: multiselect chips wrap onto more lines instead of running off the box's right edge (Streamlit keeps them on
#: one line: in a narrow column the last chips were cut off), and a chip shows its whole label
_WIDGET_CSS = """<style>
[data-testid="stMultiSelect"] .react-aria-ComboBox > div { max-height: none !important; height: auto !important; }
[data-testid="stMultiSelect"] .react-aria-ComboBox > div > div:first-child,
[data-testid="stMultiSelect"] .react-aria-ComboBox > div > div:first-child > * {
  flex-wrap: wrap !important; overflow: visible !important; height: auto !important; max-height: none !important; }
[data-testid="stMultiSelect"] .react-aria-ComboBox > div > div:first-child { mask-image: none !important; }
</style>"""


def readable_widgets() -> None:
    """Once per page run (the router calls it): the CSS that keeps every chip of a multiselect readable."""
    st.html(_WIDGET_CSS)


def show_chart(fig, *, key: str, container=None, on_select: str = "ignore", selection_mode=("points",)):
    """``st.plotly_chart`` at the container's width with the shared config; returns the selection event when
    ``on_select="rerun"`` (else None)."""
    c = container or st
    config = dict(PLOTLY_CONFIG)
    if on_select != "ignore":
        config["modeBarButtonsToRemove"] = []
        return c.plotly_chart(fig, key=key, width="stretch", config=config, on_select=on_select,
                              selection_mode=selection_mode)
    c.plotly_chart(fig, key=key, width="stretch", config=config)
    return None


def csv_bytes(array, header: Sequence[str]) -> bytes:
    """``[N, len(header)]`` numbers as CSV bytes with a header row."""
    a = np.asarray(array, dtype=float).reshape(len(array), -1)
    if a.shape[1] != len(header):
        raise ValueError(f"header names {len(header)} columns but the array has {a.shape[1]}")
    buf = io.StringIO()
    np.savetxt(buf, a, delimiter=",", header=",".join(header), comments="", fmt="%.6g")
    return buf.getvalue().encode()


def downloads(stem: str, *, key: str, png=None, fig=None, csv=None,
              container=None) -> None:
    """A row of download buttons: ``stem.png`` (matplotlib export), ``stem.html`` (the interactive figure,
    Plotly loaded from its CDN) and ``stem.csv`` (the data); each only when given. ``png`` / ``csv`` are bytes
    or a callable returning them (deferred: built when the button is clicked, so a page run does not pay for it)."""
    # short labels ("⬇ HTML"): in a narrow column "⬇ interactive (HTML)" was cut to "⬇ interactiv…"; the
    # tooltip says what each file is
    items = [(png, "png", "image/png", "PNG", "the figure as an image (matplotlib)"),
             (csv, "csv", "text/csv", "CSV", "the data behind the figure")]
    if fig is not None:
        items.insert(1, (lambda: fig.to_html(include_plotlyjs="cdn", full_html=True).encode(), "html", "text/html",
                         "HTML", "the interactive figure (opens in a browser)"))
    items = [it for it in items if it[0] is not None]
    cols = (container or st).columns(max(1, len(items)))
    for col, (data, ext, mime, label, what) in zip(cols, items):
        col.download_button(f"⬇ {label}", data=data, file_name=f"{stem}.{ext}", mime=mime, key=f"{key}_{ext}",
                            on_click="ignore", help=f"{stem}.{ext}: {what}")


def url_setting(name: str, default: Any, choices: Sequence | None = None, cast=None) -> Any:
    """The value of setting ``name`` from the page URL (``?name=value``), else ``default``.

    ``choices`` restricts it to known values; ``cast`` (default: the type of ``default``) converts the text;
    anything unreadable falls back to ``default``.
    """
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        value = (cast or type(default))(raw)
    except (TypeError, ValueError):
        return default
    if choices is not None and value not in choices:
        return default
    return value


def share_settings(values: dict[str, Any]) -> None:
    """Write the page's current settings into the URL (``st.query_params``) so the view can be shared."""
    for k, v in values.items():
        text = str(v)
        if st.query_params.get(k) != text:
            st.query_params[k] = text


def section_notes(latex: str, look_at: str, paper: str) -> None:
    """A section's equation (``st.latex``), two lines on what to look at, and the paper it comes from."""
    st.latex(latex)
    st.markdown(f"**What to look at.** {look_at}")
    st.caption(f"Paper: {paper}")


def mixture_section(title: str, latex: str, look_at: str, paper: str, *, key: str):
    """A Labs section's opening: its header, its notes (:func:`section_notes`) and the "Data set (exact
    mixture)" select box (widget ``key``) on the left of a ``[1, 3]`` row. Returns the chosen data set's name
    and the row's right-hand column (for a caption)."""
    from apps.pages.toy.data import dataset_names

    st.header(title)
    section_notes(latex, look_at, paper)
    c1, c2 = st.columns([1, 3])
    return c1.selectbox("Data set (exact mixture)", dataset_names(oracle_only=True), key=key), c2
