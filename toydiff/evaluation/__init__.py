"""Measures of a model: log-likelihood by the probability-flow ODE, the discrete-time ELBO, memorisation."""

from toydiff.evaluation import elbo, likelihood, memorisation
from toydiff.evaluation.likelihood import log_likelihood

__all__ = ["elbo", "likelihood", "memorisation", "log_likelihood"]
