"""MNIST checkpoints for the MNIST and image-lab pages: found under runs/, committed, or uploaded; loaded once.

An upload is written to a temporary folder only while ``image_track.sampling.load_model`` reads it; the
folder is removed as soon as the model is in memory, so no upload outlives its loading.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import streamlit as st
import torch

from apps.common.ui import readable_errors

__all__ = ["REPO_ROOT", "CHECKPOINT_SOURCES", "mnist_test", "find_runs", "is_image_checkpoint", "load_path", "load_upload", "model_key",
           "checkpoint_picker"]

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_SOURCES = ("Committed: class-conditional", "Committed: unconditional", "Run on disk", "Upload a checkpoint")


@st.cache_resource(max_entries=1, show_spinner="Loading the MNIST test set…")
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
                if is_image_checkpoint(p):  # toy-track runs (toydiff toy train) cannot serve the image pages
                    seen[p.resolve()] = None
    return list(seen)


def is_image_checkpoint(path: Path) -> bool:
    """Whether ``path`` is an image_track model (its header's kind tag, and a model config): the MNIST pages list
    only those, not the toy track's runs, without loading any weights."""
    from image_track.loaded import MODEL_KINDS
    from toydiff.training.checkpoint import checkpoint_kind, read_metadata

    meta = read_metadata(path)
    return meta is not None and checkpoint_kind(meta) in MODEL_KINDS + (None,) and "model_config" in meta


@st.cache_resource(max_entries=8, show_spinner="Loading the checkpoint…")
def _load(path: str, stamp: tuple):
    """``image_track.sampling.load_model`` (cached per file version: ``stamp`` is its mtime and size)."""
    from image_track import sampling

    return sampling.load_model(path)


def load_path(path: Path):
    """The checkpoint at ``path``, loaded once per version of the file."""
    stat = path.stat()
    return _load(str(path), (stat.st_mtime_ns, stat.st_size))


@st.cache_resource(max_entries=4, show_spinner="Loading the checkpoint…")
def _load_bytes(digest: str, _data: bytes, _name: str):
    """Load uploaded bytes through a temporary file that is removed as soon as they are read (cached per
    content: ``digest`` is their SHA-256)."""
    from image_track import sampling
    from toydiff.training.checkpoint import CheckpointError

    with tempfile.TemporaryDirectory(prefix="toydiff_upload_") as folder:
        path = Path(folder) / f"{digest}.safetensors"
        path.write_bytes(_data)
        try:
            return sampling.load_model(path)
        except CheckpointError as e:  # the temporary path means nothing to the user: name the upload
            raise CheckpointError(str(e).replace(str(path), f"'{_name}'")) from None


def load_upload(data: bytes, name: str):
    """An uploaded checkpoint, loaded once per content; CheckpointError (naming ``name``) if it is not one."""
    return _load_bytes(hashlib.sha256(data).hexdigest(), data, name)


def model_key(lm) -> str:
    """A cache key for a loaded model: the id of the object the cache keeps alive, plus its weights' checksum."""
    first = next(iter(lm.model.state_dict().values()))
    return f"{id(lm)}:{float(first.double().sum()):.10g}"


def _committed(source: str):
    from image_track import sampling

    path = sampling.default_checkpoint(conditional=source == CHECKPOINT_SOURCES[0])
    if path.is_file():
        return load_path(path), f"committed `{path.name}`"
    st.info(f"**Not available:** the committed checkpoint `{path.name}` is missing from this installation. "
            "Pick a run on disk or upload a checkpoint.", icon="ℹ️")
    return None, ""


def _on_disk(key: str):
    runs = [p for p in find_runs() if is_image_checkpoint(p)]
    if not runs:
        st.info("No MNIST checkpoints (image_track `*.safetensors`) found under `runs/` (toy-track runs are not "
                "listed: they belong to the Toy sandbox).", icon="ℹ️")
        return None, ""
    chosen = st.selectbox("Run", [str(p) for p in runs], key=f"{key}_run")
    return load_path(Path(chosen)), f"`{chosen}`"


def _uploaded(key: str):
    from toydiff.training.checkpoint import CheckpointError

    up = st.file_uploader("A checkpoint (.safetensors written by image_track.train, or its export)",
                          key=f"{key}_upload")
    if up is None:
        return None, ""
    try:
        return load_upload(up.getvalue(), up.name), f"uploaded `{up.name}`"
    except CheckpointError as e:
        st.error(f"**{up.name} is not a usable MNIST checkpoint.** {e}", icon="🚫")
        return None, ""


def checkpoint_picker(key: str, *, conditional_only: bool = False, needs_schedule: bool = False):
    """Radio + selector for an image_track checkpoint: committed, found under runs/, or uploaded. ``needs_schedule``:
    refuse a checkpoint whose process has no noise schedule (flow matching) with a message, for pages that need one.

    Returns ``(LoadedModel, caption, cache_key)`` or ``None`` (after an info or error box saying why).
    """
    sources = [s for s in CHECKPOINT_SOURCES if not (conditional_only and s == CHECKPOINT_SOURCES[1])]
    source = st.radio("Checkpoint", sources, horizontal=True, key=f"{key}_source")
    lm, label = None, ""
    with readable_errors("Loading the checkpoint"):
        if source.startswith("Committed"):
            lm, label = _committed(source)
        elif source == "Run on disk":
            lm, label = _on_disk(key)
        else:
            lm, label = _uploaded(key)
    if lm is not None and conditional_only and not lm.conditional:
        st.error("This checkpoint is unconditional; the image lab needs a class-conditional model "
                 "(classifier-free guidance, anagrams and hybrids condition on digits).", icon="🚫")
        return None
    if lm is not None and needs_schedule and model_process(lm).schedule is None:
        st.error(f"This checkpoint's process has no noise schedule ({model_process(lm).describe()}); this page's "
                 "experiments step through a DDPM schedule's integer steps. Sample it on the MNIST page.", icon="🚫")
        return None
    return None if lm is None else (lm, label, model_key(lm))


def model_process(lm):
    """The process object of a loaded image model (``lm.process``: ``.name``, ``.methods``, ``.default_method``,
    ``.default_steps``, ``.schedule`` (None for a continuous path), ``.interp``, ``.prediction``, ``.describe()``,
    ``.nfe(method, steps)``)."""
    return lm.process


def process_facts(process) -> dict[str, object]:
    """The two metrics that name a model's process: its schedule and T (a process over discrete steps), else the
    process with its path and its prediction (a continuous path, flow matching)."""
    if process.schedule is not None:
        return {"Schedule": process.schedule.name, "T": process.schedule.T}
    return {"Process": f"{process.name} ({process.interp.name})", "Prediction": process.prediction}
