"""What every page shares: cached loaders, the schedule picker, figure display and readable errors.

Pages do layout, widgets and caching only; every number comes from ``toydiff`` or ``image_track``.
Heavy results are cached on hashable specs (``st.cache_data`` for values and PNG bytes,
``st.cache_resource`` for models and data sets), so a widget that does not feed a result recomputes nothing.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import itertools
import tempfile
import threading
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import streamlit as st  # noqa: E402
import torch  # noqa: E402

import toydiff as td  # noqa: E402

__all__ = [
    "REPO_ROOT",
    "SCHEDULE_KINDS",
    "ScheduleSpec",
    "optional_module",
    "need",
    "readable_errors",
    "show_error",
    "fig_png",
    "show_png",
    "build_schedule",
    "schedule_picker",
    "dataset_names",
    "load_dataset",
    "mixture_of",
    "mnist_test",
    "markdown_table",
    "find_runs",
    "ToyRun",
    "toy_run",
    "TOY_RUN_KEY",
    "checkpoint_picker",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

# Small MLPs and CPU UNets on a shared 2-core machine: one intra-op thread is faster than two that wait on each
# other (measured: 10 toy epochs 0.9 s with 1 thread, 33 s with 2 under load). TOYDIFF_APP_THREADS overrides.
torch.set_num_threads(max(1, int(os.environ.get("TOYDIFF_APP_THREADS", "1"))))

# --- optional modules ------------------------------------------------------------------------------


def optional_module(name: str) -> tuple[ModuleType | None, str | None]:
    """``(module, None)`` if ``name`` imports, else ``(None, reason)``; a module another engineer has not
    landed yet (or left half-written) is reported, never raised."""
    try:
        return importlib.import_module(name), None
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + ".")):
            return None, f"`{name}` has not landed yet"
        return None, f"`{name}` cannot be imported: {e}"
    except Exception as e:  # a module being written right now may not even parse
        return None, f"`{name}` cannot be imported ({type(e).__name__}: {e})"


def need(name: str, feature: str) -> ModuleType | None:
    """The module ``name``, or ``None`` after an info box saying ``feature`` is not available yet."""
    module, reason = optional_module(name)
    if module is None:
        st.info(f"**{feature}: not available yet.** {reason}; this part of the page appears once it does.",
                icon="⏳")
    return module


# --- errors ----------------------------------------------------------------------------------------


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


# --- figures ---------------------------------------------------------------------------------------


def fig_png(fig, dpi: int = 90) -> bytes:
    """Render a matplotlib Figure to PNG bytes and close it (cacheable, and no pyplot state leaks)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
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


# --- schedules -------------------------------------------------------------------------------------

SCHEDULE_KINDS = ("linear", "constant", "cosine", "sigmoid")

#: a schedule as hashable data: (builder name, ((param, value), ...))
ScheduleSpec = tuple[str, tuple[tuple[str, float | int], ...]]

_DEFAULTS: dict[str, dict] = {
    "linear": {"T": 1000, "beta_start": 1e-4, "beta_end": 0.02},
    "constant": {"T": 250, "beta": 0.02},
    "cosine": {"T": 1000, "s": 0.008},
    "sigmoid": {"T": 1000, "beta_start": 1e-4, "beta_end": 0.02, "steepness": 6.0},
}


def spec_of(kind: str, **params) -> ScheduleSpec:
    return kind, tuple(sorted(params.items()))


@st.cache_resource(max_entries=64, show_spinner=False)
def build_schedule(spec: ScheduleSpec) -> tuple[td.NoiseSchedule, tuple[str, ...]]:
    """The schedule a spec describes and the warnings its builder raised (e.g. a terminal ᾱ far from 0)."""
    kind, params = spec
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"schedule must be one of {SCHEDULE_KINDS}, got {kind!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", td.TerminalSNRWarning)
        s = getattr(td.schedules, kind)(**dict(params))
    return s, tuple(str(w.message) for w in caught if issubclass(w.category, td.TerminalSNRWarning))


def schedule_picker(key: str, *, label: str = "Schedule", default: ScheduleSpec | None = None,
                    container=None, fixed_T: int | None = None) -> ScheduleSpec:
    """Widgets for a schedule's builder and parameters; returns its spec.

    ``fixed_T`` pins T (e.g. to a trained model's); otherwise T is a widget.
    """
    c = container or st
    d_kind, d_params = default if default is not None else ("linear", ())
    kind = c.selectbox(f"{label}: builder", SCHEDULE_KINDS, index=SCHEDULE_KINDS.index(d_kind), key=f"{key}_kind",
                       help="linear: Ho et al. 2020; constant: the seed exercise; cosine: Nichol & Dhariwal 2021; "
                            "sigmoid: slow at both ends")
    p = {**_DEFAULTS[kind], **(dict(d_params) if kind == d_kind else {})}
    out: dict = {}
    if fixed_T is None:
        out["T"] = int(c.select_slider(f"{label}: T (diffusion steps)", options=[50, 100, 250, 500, 1000, 2000],
                                       value=p["T"] if p["T"] in (50, 100, 250, 500, 1000, 2000) else 1000,
                                       key=f"{key}_{kind}_T"))
    else:
        out["T"] = int(fixed_T)
    if kind in ("linear", "sigmoid"):
        out["beta_start"] = float(c.number_input(f"{label}: β start", 1e-5, 0.1, float(p["beta_start"]), step=1e-4,
                                                 format="%.5f", key=f"{key}_{kind}_b0"))
        out["beta_end"] = float(c.number_input(f"{label}: β end", 1e-4, 0.5, float(p["beta_end"]), step=1e-3,
                                               format="%.4f", key=f"{key}_{kind}_b1"))
        if kind == "sigmoid":
            out["steepness"] = float(c.slider(f"{label}: steepness", 1.0, 12.0, float(p["steepness"]), 0.5,
                                              key=f"{key}_{kind}_k"))
    elif kind == "constant":
        out["beta"] = float(c.number_input(f"{label}: β", 1e-4, 0.5, float(p["beta"]), step=1e-3, format="%.4f",
                                           key=f"{key}_{kind}_b"))
    else:
        out["s"] = float(c.number_input(f"{label}: offset s", 0.0, 0.5, float(p["s"]), step=0.001, format="%.3f",
                                        key=f"{key}_{kind}_s"))
    return spec_of(kind, **out)


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


# --- data ------------------------------------------------------------------------------------------

#: the seed exercise's mixture, used only while ``toydiff.toy.datasets`` has not landed
_FALLBACK = {"two_gaussians": (1, "1-D: weights 1:2, means -4 / +4, std 1 (the seed exercise)")}


def dataset_names(dim: int | None = None, *, oracle_only: bool = False) -> list[str]:
    """Registered toy data sets (those with an exact mixture only, if asked)."""
    ds, _ = optional_module("toydiff.toy.datasets")
    if ds is None:
        return [n for n, (d, _) in _FALLBACK.items() if dim is None or d == dim]
    names = ds.list_datasets(dim)
    return [n for n in names if not oracle_only or load_dataset(n).mixture is not None]


@st.cache_resource(show_spinner=False)
def load_dataset(name: str):
    """The ``toydiff.toy.datasets`` data set ``name`` (cached: its mixture is built once)."""
    ds, reason = optional_module("toydiff.toy.datasets")
    if ds is None:
        raise RuntimeError(reason)
    return ds.get_dataset(name)


@st.cache_resource(show_spinner=False)
def mixture_of(name: str) -> td.GaussianMixture | None:
    """The exact mixture of a data set (``None`` if it has none); works before ``toydiff.toy.datasets`` lands."""
    ds, _ = optional_module("toydiff.toy.datasets")
    if ds is None:
        if name != "two_gaussians":
            raise ValueError(f"unknown data set {name!r}")
        return td.GaussianMixture([1.0, 2.0], [[-4.0], [4.0]], [[[1.0]], [[1.0]]])
    return load_dataset(name).mixture


def describe_dataset(name: str) -> str:
    ds, _ = optional_module("toydiff.toy.datasets")
    return _FALLBACK[name][1] if ds is None else load_dataset(name).description


@st.cache_resource(show_spinner="Loading the MNIST test set…")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST test images ``[10000, 1, 28, 28]`` in [-1, 1] and labels (``image_track.data``)."""
    from image_track.data import load_mnist

    return load_mnist("test")


def find_runs(root: Path | None = None) -> list[Path]:
    """Checkpoints (``*.safetensors``) under the folders listed in ``TOYDIFF_RUNS_DIR`` (``os.pathsep``-separated,
    listed first), then under ``runs/`` of the working directory and of the repository."""
    seen: dict[Path, None] = {}
    extra = [Path(p) for p in os.environ.get("TOYDIFF_RUNS_DIR", "").split(os.pathsep) if p]
    for base in [*extra, Path(os.getcwd()) / "runs", (root or REPO_ROOT) / "runs"]:
        if base.is_dir():
            for p in sorted(base.rglob("*.safetensors")):
                seen[p.resolve()] = None
    return list(seen)


# --- the toy sandbox's trained model, shared with the sampler lab ----------------------------------


_RUN_IDS = itertools.count(1)
_RUN_IDS_LOCK = threading.Lock()


def new_run_id() -> int:
    """A model number unique in this server process: the cached figures and samples are keyed by it, and
    ``st.cache_data`` is shared by every browser session, so a per-session counter would hand one session's
    cached samples to another session's model #1."""
    with _RUN_IDS_LOCK:
        return next(_RUN_IDS)


@dataclass
class ToyRun:
    """A model trained in this browser session (``st.session_state["toy_run"]``).

    The model sees normalised data: ``normalizer.forward`` maps raw points to its space and
    ``normalizer.inverse`` maps samples back; ``oracle`` is the exact law of the *normalised* data (or None).
    """

    run_id: int
    dataset: str
    model: Any
    schedule_spec: ScheduleSpec
    schedule: td.NoiseSchedule
    normalizer: Any
    oracle: td.GaussianMixture | None
    history: Any
    summary: str
    seconds: float

    def eps_fn(self):
        return self.model


TOY_RUN_KEY = "toy_run"


def toy_run() -> ToyRun | None:
    """The model trained on the Toy sandbox page in this session, if any."""
    run = st.session_state.get(TOY_RUN_KEY)
    return run if isinstance(run, ToyRun) else None


# --- MNIST checkpoints -------------------------------------------------------------------------------

UPLOAD_DIR = Path(tempfile.gettempdir()) / "toydiff_app_uploads"


@st.cache_resource(max_entries=8, show_spinner="Loading the checkpoint…")
def load(path: str, stamp: tuple):
    """``image_track.sampling.load_model`` (cached per file version: ``stamp`` is its mtime and size)."""
    from image_track.sampling import load_model

    return load_model(path)


def load_path(path: Path):
    stat = path.stat()
    return load(str(path), (stat.st_mtime_ns, stat.st_size))


def load_upload(data: bytes, name: str):
    """Write an upload to a content-addressed temp file and load it; CheckpointError if it is not one."""
    from toydiff.checkpoint import CheckpointError

    digest = hashlib.sha256(data).hexdigest()[:16]
    UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    path = UPLOAD_DIR / f"{digest}.safetensors"
    if not path.exists():
        path.write_bytes(data)
    try:
        return load_path(path)
    except CheckpointError as e:
        raise CheckpointError(str(e).replace(str(path), f"'{name}'")) from None


def model_key(lm) -> str:
    """A cache key for a loaded model: the id of the object ``load`` keeps alive, plus its weights' checksum."""
    first = next(iter(lm.model.state_dict().values()))
    return f"{id(lm)}:{float(first.double().sum()):.10g}"


CHECKPOINT_SOURCES = ("Committed: class-conditional", "Committed: unconditional", "Run on disk", "Upload a checkpoint")


def checkpoint_picker(key: str, *, conditional_only: bool = False):
    """Radio + selector for an image_track checkpoint: committed, found under runs/, or uploaded.

    Returns ``(LoadedModel, caption, cache_key)`` or ``None`` (after an info or error box saying why).
    """
    from toydiff.checkpoint import CheckpointError

    sampling = need("image_track.sampling", "MNIST checkpoints")
    if sampling is None:
        return None
    sources = [s for s in CHECKPOINT_SOURCES if not (conditional_only and s == CHECKPOINT_SOURCES[1])]
    source = st.radio("Checkpoint", sources, horizontal=True, key=f"{key}_source")
    lm, label = None, ""
    with readable_errors("Loading the checkpoint"):
        if source.startswith("Committed"):
            path = sampling.default_checkpoint(conditional=source == CHECKPOINT_SOURCES[0])
            if path.is_file():
                lm, label = load_path(path), f"committed `{path.name}`"
            else:
                st.info(f"**Not available yet:** the committed checkpoint `{path.name}` has not landed. "
                        "Pick a run on disk or upload a checkpoint.", icon="⏳")
        elif source == "Run on disk":
            runs = find_runs()
            if not runs:
                st.info("No checkpoints (`*.safetensors`) found under `runs/`.", icon="ℹ️")
            else:
                chosen = st.selectbox("Run", [str(p) for p in runs], key=f"{key}_run")
                lm, label = load_path(Path(chosen)), f"`{chosen}`"
        else:
            up = st.file_uploader("A checkpoint (.safetensors written by image_track.train, or its export)",
                                  key=f"{key}_upload")
            if up is not None:
                try:
                    lm, label = load_upload(up.getvalue(), up.name), f"uploaded `{up.name}`"
                except CheckpointError as e:
                    st.error(f"**{up.name} is not a usable MNIST checkpoint.** {e}", icon="🚫")
    if lm is not None and conditional_only and not lm.conditional:
        st.error("This checkpoint is unconditional; the image lab needs a class-conditional model "
                 "(classifier-free guidance, anagrams and hybrids condition on digits).", icon="🚫")
        return None
    return None if lm is None else (lm, label, model_key(lm))
