"""toydiff: diffusion maths written once, for any tensor rank, and checked against an exact oracle.

    import toydiff as td
    s = td.schedules.linear(T=1000)
    gm = td.GaussianMixture(weights=[1.0, 2.0], means=[[-4.0], [4.0]], covs=[[[1.0]], [[1.0]]])
    x0 = td.sample(gm.eps_fn(s), torch.randn(1000, 1), s, method="ddim", steps=50)

The concepts are packages: :mod:`~toydiff.processes` (schedules, interpolants, the forward process, the process
objects), :mod:`~toydiff.sampling` (one entry point over a registry of methods, guidance, editing),
:mod:`~toydiff.exact` (the oracles), :mod:`~toydiff.training`, :mod:`~toydiff.evaluation`; the sampler-testing
kit is :mod:`toydiff.testing` and the toy track :mod:`toydiff.toy` (imported on their own). This module
re-exports what a user reaches for first and nothing else.
"""

from toydiff import discrete, evaluation, exact, processes, sampling, training
from toydiff.evaluation.likelihood import log_likelihood
from toydiff.exact.mixture import GaussianMixture, LossFloor
from toydiff.processes import forward, interpolants, schedules
from toydiff.processes.forward import (eps_to_x0, per_sample_generators, q_posterior, q_sample, q_step, randn_like,
                                      v_target, v_to_eps, v_to_x0, x0_to_eps)
from toydiff.processes.interpolants import Interpolant
from toydiff.processes.schedules import NoiseSchedule, StepPlan, TerminalSNRWarning
from toydiff.sampling.editing import inpaint_projection, sdedit
from toydiff.sampling.guidance import (autoguidance, classifier_free_guidance, classifier_guidance, conditional_eps_fn,
                                       guidance_combine, guidance_interval)
from toydiff.sampling.loop import METHODS, function_evaluations, sample
from toydiff.sampling.trajectory import TrajectoryRecorder, chain_callbacks

__version__ = "0.1.0"

__all__ = [
    # the concepts
    "processes", "sampling", "exact", "training", "evaluation", "schedules", "interpolants", "forward", "discrete",
    # processes: the schedule and the forward process q(x_t | x_0)
    "NoiseSchedule", "StepPlan", "TerminalSNRWarning", "Interpolant", "q_sample", "q_step", "q_posterior", "eps_to_x0", "x0_to_eps", "v_target",
    "v_to_eps", "v_to_x0", "randn_like", "per_sample_generators",
    # sampling: the entry point, its methods, trajectories, guidance and editing combinators
    "sample", "METHODS", "function_evaluations", "TrajectoryRecorder", "chain_callbacks",
    "guidance_combine", "classifier_free_guidance", "classifier_guidance", "autoguidance", "conditional_eps_fn",
    "guidance_interval", "sdedit", "inpaint_projection",
    # exact and evaluation
    "GaussianMixture", "LossFloor", "log_likelihood",
]
