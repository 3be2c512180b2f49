"""Display helpers every page shares: readable error boxes, figures as PNG bytes, Markdown tables and a
bounded per-session memo."""

from __future__ import annotations

import io
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterator

import matplotlib.pyplot as plt
import streamlit as st

from toydiff.checks import check_int

__all__ = ["show_error", "readable_errors", "fig_png", "show_png", "markdown_table", "session_memo"]


def show_error(what: str, e: BaseException) -> None:
    """One readable error box (no traceback)."""
    msg = " ".join(str(e).split()) or type(e).__name__
    st.error(f"**{what} failed.** {msg}", icon="🚫")


@contextmanager
def readable_errors(what: str) -> Iterator[None]:
    """Run a block; an exception becomes an ``st.error`` box naming ``what`` and the rest of the block is skipped.

    Streamlit's own control flow (``st.stop``, reruns) derives from ``BaseException`` and passes through.
    """
    try:
        yield
    except Exception as e:  # noqa: BLE001 - the point is to show any failure as a message
        show_error(what, e)


def fig_png(fig, dpi: int = 90) -> bytes:
    """Render a matplotlib Figure to PNG bytes and close it (cacheable, and no pyplot state leaks)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def show_png(png: bytes, caption: str | None = None, container=None) -> None:
    """Show a rendered figure at the container's width."""
    (container or st).image(png, caption=caption, width="stretch")


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if v == v else "—"
    return str(v).replace("|", "\\|")


def markdown_table(rows: list[dict], container=None) -> None:
    """Show rows of equal keys as a Markdown table (pyarrow-free: st.dataframe needs NumPy 2 for its pyarrow)."""
    c = container or st
    if not rows:
        c.caption("(empty table)")
        return
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "|".join("---:" for _ in keys) + "|"]
    lines += ["| " + " | ".join(_cell(r[k]) for k in keys) + " |" for r in rows]
    c.markdown("\n".join(lines))


def session_memo(name: str, key: Hashable, compute: Callable[[], Any], *, max_entries: int = 8) -> Any:
    """``compute()`` remembered in this browser session under ``key``, keeping the ``max_entries`` most recent.

    For work that draws its own progress widgets (which ``st.cache_data`` would replay) and that belongs to
    one session; the least recently used entry is dropped first.
    """
    max_entries = check_int(max_entries, "max_entries", min=1)
    memo = st.session_state.setdefault(f"_memo_{name}", OrderedDict())
    if key in memo:
        memo.move_to_end(key)
        return memo[key]
    value = compute()
    memo[key] = value
    while len(memo) > max_entries:
        memo.popitem(last=False)
    return value
