"""The toy sandbox's trained model, kept in the browser session and shared with the sampler lab.

The model itself is a :class:`toydiff.toy.run.ToyRun` (trained by :func:`toydiff.toy.run.train_toy`); the
session record adds what the pages need around it: a process-wide model number for cache keys, the
schedule's widget spec, a one-line summary and the training time.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from pathlib import Path

import streamlit as st

import toydiff as td
from apps.pages.schedules.widgets import ScheduleSpec, spec_of
from apps.pages.toy.notes import plural, recipe_phrase
from toydiff.training.checkpoint import CheckpointError
from toydiff.toy.recipes import default_recipe
from toydiff.toy.run import ToyRun, load_toy

__all__ = ["TrainedToy", "TOY_RUN_KEY", "SHIPPED_DIR", "new_run_id", "toy_run", "shipped_run", "run_for"]

#: small checkpoints for the default data sets, shipped with the package (instant start)
SHIPPED_DIR = Path(td.__file__).resolve().parent / "toy" / "weights"

TOY_RUN_KEY = "toy_run"

_RUN_IDS = itertools.count(1)
_RUN_IDS_LOCK = threading.Lock()


def new_run_id() -> int:
    """A model number unique in this server process: the cached figures and samples are keyed by it, and
    ``st.cache_data`` is shared by every browser session, so a per-session counter would hand one session's
    cached samples to another session's model #1."""
    with _RUN_IDS_LOCK:
        return next(_RUN_IDS)


@dataclass
class TrainedToy:
    """A model trained in this browser session (``st.session_state[TOY_RUN_KEY]``).

    ``run.model`` sees normalised data: ``run.normalizer.forward`` maps raw points to its space and
    ``.inverse`` maps samples back; ``oracle`` is the exact law of the *normalised* data (or None).
    """

    run_id: int
    run: ToyRun
    schedule_spec: ScheduleSpec
    summary: str
    seconds: float
    oracle: td.GaussianMixture | None = field(init=False)

    def __post_init__(self) -> None:
        self.oracle = self.run.oracle  # built once: ToyRun.oracle rebuilds it on every access

    @property
    def dataset(self) -> str:
        return self.run.dataset.name


def toy_run() -> TrainedToy | None:
    """The model trained on the Toy sandbox page in this session, if any."""
    run = st.session_state.get(TOY_RUN_KEY)
    return run if isinstance(run, TrainedToy) else None



@st.cache_resource(max_entries=16, show_spinner=False)
def shipped_run(dataset: str) -> TrainedToy | None:
    """The shipped checkpoint of ``dataset`` (``toydiff/toy/weights/<dataset>``), or None; its summary says how
    its recorded settings differ from the default recipe (:func:`apps.pages.toy.notes.recipe_phrase`)."""
    path = SHIPPED_DIR / dataset
    if not (path / "checkpoint.safetensors").is_file():
        return None
    try:
        run = load_toy(path)
    except (CheckpointError, OSError, ValueError):
        return None
    recipe = default_recipe(dataset)
    m = run.model.config
    epochs = int(run.metadata.get("config", {}).get("epochs", len(run.history.records)))
    summary = (f"{dataset}, shipped checkpoint ({recipe_phrase(run.metadata, recipe)}): MLP {m.width}×{m.depth} "
               f"{m.activation}, {run.schedule.name} schedule T={run.schedule.T}, {plural(epochs, 'epoch')}")
    return TrainedToy(run_id=new_run_id(), run=run, schedule_spec=spec_of(recipe.schedule_name,
                                                                          **dict(recipe.schedule_params)),
                      summary=summary, seconds=0.0)


def run_for(dataset: str) -> TrainedToy | None:
    """The model to show for ``dataset``: this session's trained one if it is of that data set, else the shipped one."""
    run = toy_run()
    if run is not None and run.dataset == dataset:
        return run
    return shipped_run(dataset)
