"""The shared AppTest helpers of the page tests (tests/apps/test_pages_labs.py, test_toy_motion.py,
test_labs_page.py): open a page of apps/main.py, check it ran clean, read its Plotly charts and metrics."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

MAIN = Path(__file__).resolve().parents[2] / "apps" / "main.py"


def open_page(name: str, /, *, timeout: float = 120, state: dict | None = None, **query) -> AppTest:
    """Run ``pages/<name>.py`` of the app with ``state`` in its session state and ``query`` in its URL."""
    at = AppTest.from_file(str(MAIN), default_timeout=timeout)
    at.switch_page(f"pages/{name}/{name}.py")
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.query_params.update(query)
    return at.run()


def clean(at: AppTest) -> AppTest:
    """No exception and no error box; returns ``at``."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def charts(at: AppTest) -> list[dict]:
    """The Plotly figures of the page, as their JSON specs."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def plotly_array(v) -> np.ndarray:
    """A Plotly JSON array: a list, or a typed binary block ``{"bdata", "dtype", "shape"}``."""
    if isinstance(v, dict) and "bdata" in v:
        out = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return out.reshape([int(n) for n in str(v.get("shape", out.size)).split(",")])
    return np.asarray(v)
