"""toydiff: diffusion maths written once, for any tensor rank, and checked against an exact oracle.

    import toydiff as td
    s = td.schedules.linear(T=1000)
    gm = td.GaussianMixture(weights=[1.0, 2.0], means=[[-4.0], [4.0]], covs=[[[1.0]], [[1.0]]])
    x0 = td.sample(gm.eps_fn(s), torch.randn(1000, 1), s, method="ddim", steps=50)
"""

from toydiff import evaluation, exact, processes, sampling, training
from toydiff.processes import forward, interpolants, schedules
from toydiff.exact.mixture import GaussianMixture, LossFloor
from toydiff.processes.interpolants import Interpolant
from toydiff.evaluation.likelihood import log_likelihood
from toydiff.processes.forward import (
    eps_to_x0,
    per_sample_generators,
    q_posterior,
    q_sample,
    q_step,
    randn_like,
    to_v,
    v_to_eps,
    v_to_x0,
    x0_to_eps,
)
from toydiff.sampling.editing import inpaint_projection, sdedit
from toydiff.sampling.guidance import (autoguidance, classifier_free_guidance, classifier_guidance, conditional_eps_fn,
                       guidance_combine, guidance_interval)
from toydiff.sampling.loop import METHODS, function_evaluations, sample
from toydiff.processes.schedules import NoiseSchedule, StepPlan, TerminalSNRWarning
from toydiff.sampling.trajectory import TrajectoryRecorder, chain_callbacks

__version__ = "0.1.0"

__all__ = [
    "processes", "sampling", "exact", "training", "evaluation", "schedules", "interpolants", "forward",
    "GaussianMixture", "LossFloor", "Interpolant", "log_likelihood",
    "eps_to_x0", "x0_to_eps", "to_v", "v_to_eps", "v_to_x0", "q_posterior", "q_sample", "q_step", "randn_like",
    "per_sample_generators",
    "METHODS", "sample", "sdedit", "guidance_combine", "classifier_free_guidance", "classifier_guidance", "autoguidance",
    "conditional_eps_fn", "guidance_interval",
    "inpaint_projection", "chain_callbacks", "function_evaluations",
    "NoiseSchedule", "StepPlan", "TerminalSNRWarning", "TrajectoryRecorder",
]
