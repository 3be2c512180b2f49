"""The toy data sets as the pages use them: names, cached data sets, their exact mixtures and the Toy page's
widget values of each data set's default recipe (:mod:`toydiff.toy.recipes`)."""

from __future__ import annotations

import streamlit as st

import toydiff as td
from toydiff.toy import datasets
from toydiff.toy.drawn import drawn_dataset, nearest_neighbour_width
from toydiff.toy.recipes import default_recipe

__all__ = ["dataset_names", "load_dataset", "mixture_of", "describe_dataset", "RECIPE_WIDGETS", "recipe_widget_values",
           "DRAWN", "DRAWN_KEY", "drawn_points", "get_data", "recipe_for", "WIDTH_KEY", "WIDTHS", "drawn_width",
           "kernel_std_of"]

#: the name of the data set a person draws on the Toy page, and the session key of its points ([x, y] lists)
DRAWN, DRAWN_KEY = "drawn", "toy_drawn_points"

#: the Toy page's widget keys and the :class:`~toydiff.toy.recipes.Recipe` field each one shows
RECIPE_WIDGETS = {"toy_width": "width", "toy_depth": "depth", "toy_act": "activation", "toy_time": "time_input",
                  "toy_epochs": "epochs", "toy_ntrain": "n_train", "toy_batch": "batch_size", "toy_lr": "lr",
                  "toy_tsampling": "t_sampling"}


def dataset_names(dim: int | None = None, *, oracle_only: bool = False) -> list[str]:
    """Registered toy data sets (those with an exact mixture only, if asked)."""
    return [n for n in datasets.list_datasets(dim) if not oracle_only or load_dataset(n).has_oracle]


@st.cache_resource(max_entries=32, show_spinner=False)
def load_dataset(name: str) -> datasets.ToyDataset:
    """The ``toydiff.toy.datasets`` data set ``name`` (cached: its mixture is built once)."""
    return datasets.get_dataset(name)


def mixture_of(name: str) -> td.GaussianMixture | None:
    """The exact mixture of a data set, ``None`` if it has none."""
    return load_dataset(name).mixture


def describe_dataset(name: str) -> str:
    return load_dataset(name).description


def recipe_widget_values(name: str) -> dict:
    """``{widget key: value}`` of the data set's default recipe, for the Toy page's widgets."""
    recipe = recipe_for(name)
    return {key: getattr(recipe, field) for key, field in RECIPE_WIDGETS.items()}


def drawn_points() -> list[list[float]]:
    """The points drawn in this session (``[[x, y], ...]``)."""
    return st.session_state.setdefault(DRAWN_KEY, [])


#: the drawn data's kernel-width widget (session key) and its choices: "auto" (a quarter of the points' median
#: nearest-neighbour distance, at least the canvas grid spacing), a fixed std in canvas units, or Scott's rule
WIDTH_KEY, WIDTHS = "toy_canvas_bw", ("auto", 0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, "Scott")
#: the canvas's grid spacing (apps.pages.toy.draw): the smallest automatic kernel std
CANVAS_GRID = 0.25


def drawn_width():
    """The kernel width chosen for drawn data (one of :data:`WIDTHS`)."""
    w = st.session_state.get(WIDTH_KEY, "auto")
    return w if w in WIDTHS else "auto"


def kernel_std_of(points, width) -> float | None:
    """The isotropic kernel std of ``width`` for ``points`` (None: Scott's rule, the points' own covariance)."""
    if width == "Scott":
        return None
    return nearest_neighbour_width(points, min_std=CANVAS_GRID) if width == "auto" else float(width)


@st.cache_resource(max_entries=16, show_spinner=False)
def _drawn(points: tuple[tuple[float, float], ...], width) -> datasets.ToyDataset:
    return drawn_dataset(list(points), name=DRAWN, kernel_std=kernel_std_of(points, width))


def get_data(name: str) -> datasets.ToyDataset:
    """A registered data set, or for :data:`DRAWN` the KDE mixture of this session's drawn points with the
    chosen kernel width (``ValueError`` while they are fewer than 3)."""
    if name != DRAWN:
        return load_dataset(name)
    pts = tuple(tuple(float(v) for v in p) for p in drawn_points())
    if len(pts) < 3:
        raise ValueError(f"points: need at least 3 drawn points, got {len(pts)}")
    return _drawn(pts, drawn_width())


def recipe_for(name: str):
    """The default recipe of a data set (drawn data: the 2-D family's)."""
    return default_recipe("8gaussians" if name == DRAWN else name)
