"""Sampling: one entry point :func:`sample` over a registry of step functions (VP and interpolant methods),
trajectories, and the denoiser combinators of guidance and editing.

Layers, lowest first: :mod:`.context` (what a step shares), :mod:`.vp_steps` / :mod:`.flow_steps` (one function
per method; the flow registry beside its steps), :mod:`.loop` (the VP registry and the entry point, which routes an
Interpolant to the flow samplers); :mod:`.trajectory`, :mod:`.guidance`, :mod:`.editing` beside them."""

from toydiff.sampling.context import StepContext
from toydiff.sampling.editing import inpaint_projection, sdedit
from toydiff.sampling.flow_steps import FLOW_METHODS, FLOW_REGISTRY, flow_evaluations, sample_interpolant, time_grid
from toydiff.sampling.guidance import (autoguidance, classifier_free_guidance, classifier_guidance,
                                       conditional_eps_fn, guidance_combine, guidance_interval)
from toydiff.sampling.loop import METHODS, REGISTRY, function_evaluations, sample
from toydiff.sampling.trajectory import TrajectoryRecorder, chain_callbacks

__all__ = ["sample", "METHODS", "REGISTRY", "StepContext", "function_evaluations", "FLOW_METHODS", "FLOW_REGISTRY",
           "flow_evaluations", "sample_interpolant", "time_grid", "TrajectoryRecorder", "chain_callbacks", "sdedit",
           "inpaint_projection", "guidance_combine", "classifier_free_guidance", "classifier_guidance",
           "autoguidance", "conditional_eps_fn", "guidance_interval"]
