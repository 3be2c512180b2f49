"""The schedule picker: a schedule as hashable data (a spec), its widgets, and building it with its warnings."""

from __future__ import annotations

import warnings

import streamlit as st

import toydiff as td
from apps.common.ui import show_error

__all__ = ["SCHEDULE_KINDS", "ScheduleSpec", "spec_of", "spec_label", "build_schedule", "schedule_picker",
           "schedule_or_error"]

SCHEDULE_KINDS = tuple(td.schedules.BUILDERS)

#: a schedule as hashable data: (builder name, ((param, value), ...))
ScheduleSpec = tuple[str, tuple[tuple[str, float | int], ...]]

_DEFAULTS: dict[str, dict] = {
    "linear": {"T": 1000, "beta_start": 1e-4, "beta_end": 0.02},
    "constant": {"T": 250, "beta": 0.02},
    "cosine": {"T": 1000, "s": 0.008},
    "sigmoid": {"T": 1000, "beta_start": 1e-4, "beta_end": 0.02, "steepness": 6.0},
}
_T_OPTIONS = (50, 100, 250, 500, 1000, 2000)
_HELP = ("linear: Ho et al. 2020; constant: the seed exercise; cosine: Nichol & Dhariwal 2021; "
         "sigmoid: slow at both ends")


def spec_of(kind: str, **params) -> ScheduleSpec:
    """The spec of ``td.schedules.from_name(kind, **params)``."""
    return kind, tuple(sorted(params.items()))


def spec_label(spec: ScheduleSpec) -> str:
    """``linear(T=1000, beta_end=0.02, ...)``."""
    kind, params = spec
    return f"{kind}(" + ", ".join(f"{k}={v:g}" for k, v in params) + ")"


@st.cache_resource(max_entries=64, show_spinner=False)
def build_schedule(spec: ScheduleSpec) -> tuple[td.NoiseSchedule, tuple[str, ...]]:
    """The schedule a spec describes and the warnings its builder raised (e.g. a terminal ᾱ far from 0)."""
    kind, params = spec
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", td.TerminalSNRWarning)
        s = td.schedules.from_name(kind, **dict(params))
    return s, tuple(str(w.message) for w in caught if issubclass(w.category, td.TerminalSNRWarning))


def _param_widgets(c, label: str, key: str, kind: str, p: dict) -> dict:
    """The widgets of one builder's parameters besides T."""
    if kind in ("linear", "sigmoid"):
        out = {"beta_start": c.number_input(f"{label}: β start", 1e-5, 0.1, float(p["beta_start"]), step=1e-4,
                                            format="%.5f", key=f"{key}_{kind}_b0"),
               "beta_end": c.number_input(f"{label}: β end", 1e-4, 0.5, float(p["beta_end"]), step=1e-3,
                                          format="%.4f", key=f"{key}_{kind}_b1")}
        if kind == "sigmoid":
            out["steepness"] = c.slider(f"{label}: steepness", 1.0, 12.0, float(p["steepness"]), 0.5,
                                        key=f"{key}_{kind}_k")
    elif kind == "constant":
        out = {"beta": c.number_input(f"{label}: β", 1e-4, 0.5, float(p["beta"]), step=1e-3, format="%.4f",
                                      key=f"{key}_{kind}_b")}
    else:
        out = {"s": c.number_input(f"{label}: offset s", 0.0, 0.5, float(p["s"]), step=0.001, format="%.3f",
                                   key=f"{key}_{kind}_s")}
    return {k: float(v) for k, v in out.items()}


def schedule_picker(key: str, *, label: str = "Schedule", default: ScheduleSpec | None = None,
                    container=None, fixed_T: int | None = None) -> ScheduleSpec:
    """Widgets for a schedule's builder and parameters; returns its spec.

    ``fixed_T`` pins T (e.g. to a trained model's); otherwise T is a widget.
    """
    c = container or st
    d_kind, d_params = default if default is not None else ("linear", ())
    kind = c.selectbox(f"{label}: builder", SCHEDULE_KINDS, index=SCHEDULE_KINDS.index(d_kind), key=f"{key}_kind",
                       help=_HELP)
    p = {**_DEFAULTS[kind], **(dict(d_params) if kind == d_kind else {})}
    if fixed_T is None:
        T = c.select_slider(f"{label}: T (diffusion steps)", options=_T_OPTIONS,
                            value=p["T"] if p["T"] in _T_OPTIONS else 1000, key=f"{key}_{kind}_T")
    else:
        T = fixed_T
    return spec_of(kind, T=int(T), **_param_widgets(c, label, key, kind, p))


def schedule_or_error(spec: ScheduleSpec, what: str = "Building the schedule") -> td.NoiseSchedule | None:
    """Build (cached) and show the builder's warnings; ``None`` after an error box if the spec is invalid."""
    try:
        s, warns = build_schedule(spec)
    except (ValueError, TypeError) as e:
        show_error(what, e)
        return None
    for w in warns:
        st.warning(w, icon="⚠️")
    return s
