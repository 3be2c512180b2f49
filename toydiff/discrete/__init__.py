"""Discrete diffusion on small categorical data with exact answers: masked and uniform processes (discrete and
continuous time), the exact denoiser of a table by enumeration, the samplers (ancestral, Euler, τ-leaping,
MaskGIT) through :func:`toydiff.sample`, and the judge (exact KL and total variation from counts, with the
finite-sample floor; ELBOs by t). See docs/discrete.md.

    import toydiff as td
    dist = td.discrete.dataset("words")                 # TableDistribution, V = 5, L = 5
    proc = td.discrete.masked(T=None, V=dist.V)          # continuous time; the mask is symbol V
    x0 = td.sample(dist.denoiser(proc), proc.prior(1000, dist.L), proc, method="ancestral", steps=32,
                   generator=torch.Generator().manual_seed(0))
"""

from toydiff.discrete import judge
from toydiff.discrete.data import DATASETS, SHAPES, TableDistribution, dataset, markov_chain, shapes, words
from toydiff.discrete.exact import table_denoiser
from toydiff.discrete.processes import (DISCRETE_PROCESSES, MaskedProcess, UniformProcess, masked, process_from_dict,
                                        uniform)
from toydiff.discrete.samplers import DISCRETE_METHODS
from toydiff.discrete.schedules import SCHEDULES
from toydiff.discrete.model import DenoiserConfig, DenoiserMLP
from toydiff.discrete.objectives import D3PMObjective, MDLMObjective, objective_for
from toydiff.discrete.training import DEFAULT_RECIPE, DiscreteRun, Recipe, load_run, train_discrete

__all__ = ["judge", "TableDistribution", "DATASETS", "SHAPES", "dataset", "markov_chain", "words", "shapes",
           "table_denoiser", "masked", "uniform", "MaskedProcess", "UniformProcess", "DISCRETE_PROCESSES",
           "process_from_dict", "DISCRETE_METHODS", "SCHEDULES",
           "DenoiserConfig", "DenoiserMLP", "MDLMObjective", "D3PMObjective", "objective_for", "Recipe",
           "DEFAULT_RECIPE", "DiscreteRun", "train_discrete", "load_run"]
