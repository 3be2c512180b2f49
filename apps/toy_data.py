"""The toy data sets as the pages use them: names, cached data sets and their exact mixtures."""

from __future__ import annotations

import streamlit as st

import toydiff as td
from toydiff.toy import datasets

__all__ = ["dataset_names", "load_dataset", "mixture_of", "describe_dataset"]


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
