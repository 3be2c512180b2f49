"""The toy data sets as the pages use them: names, cached data sets, their exact mixtures and the Toy page's
widget values of each data set's default recipe (:mod:`toydiff.toy.recipes`)."""

from __future__ import annotations

import streamlit as st

import toydiff as td
from toydiff.toy import datasets
from toydiff.toy.recipes import default_recipe

__all__ = ["dataset_names", "load_dataset", "mixture_of", "describe_dataset", "RECIPE_WIDGETS", "recipe_widget_values"]

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
    recipe = default_recipe(name)
    return {key: getattr(recipe, field) for key, field in RECIPE_WIDGETS.items()}
