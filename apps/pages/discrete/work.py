"""The Discrete page's heavy work, cached: the runs (the exact denoiser as the "model" until one is trained in the
page) and the figures' data (:mod:`toydiff.discrete.figures`)."""

from __future__ import annotations

import streamlit as st
import torch

from toydiff.discrete import figures as F
from toydiff.discrete.model import DenoiserMLP
from toydiff.discrete.training import DEFAULT_RECIPE, DiscreteRun, Recipe, train_discrete, with_overrides

#: the in-page recipe: the default recipe, shortened to train in seconds on a shared CPU
PAGE_STEPS = (50, 300, 600)


def recipe_for(dataset: str, process: str, steps: int = 300) -> Recipe:
    return with_overrides(DEFAULT_RECIPE, dataset=dataset, process=process, T=None, width=64, depth=2, steps=steps,
                          n_train=2048, n_val=500)


def untrained(dataset: str, process: str) -> DiscreteRun:
    """The run of the page's recipe with untrained weights (its data, process and exact denoiser are all used)."""
    recipe = recipe_for(dataset, process)
    return DiscreteRun(recipe, DenoiserMLP(recipe.build()[3]), None, {})


def trained_key(dataset: str, process: str) -> str:
    return f"dc_model::{dataset}::{process}"


def train(dataset: str, process: str, steps: int) -> DiscreteRun:
    """Train the page's recipe and keep it in the session (one per data set and process)."""
    run = train_discrete(recipe_for(dataset, process, steps))
    st.session_state[trained_key(dataset, process)] = run
    return run


def trained(dataset: str, process: str) -> DiscreteRun | None:
    return st.session_state.get(trained_key(dataset, process))


@st.cache_data(max_entries=16, show_spinner="Noising sequences…")
def forward(dataset: str, process: str, n: int, seed: int) -> dict:
    run = untrained(dataset, process)
    return F.forward_grid_data(run.dist, run.process, n=n, generator=torch.Generator().manual_seed(seed))


def unmasking(run: DiscreteRun, use_model: bool, method: str, steps: int, seed: int) -> F.Unmasking:
    fn = run.denoiser() if use_model else run.exact()
    return F.unmasking_data(fn, run.exact(), run.process, run.dist.L, run.dist.V, method=method, steps=steps,
                            generator=torch.Generator().manual_seed(seed))


def kl_curves(run: DiscreteRun, use_model: bool, steps: tuple[int, ...], n: int, seed: int) -> dict:
    return F.kl_steps_data(run, list(steps), n=n, seed=seed, model=use_model)
