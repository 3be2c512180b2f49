"""Editing an existing input with any sampler: SDEdit's partial noising, and inpainting as a projection.

:func:`sdedit` starts :func:`toydiff.sample` part-way down the noise schedule; :func:`inpaint_projection`
builds the ``project=`` hook of :func:`toydiff.sample` that pins the known region.
"""

from __future__ import annotations

from typing import Sequence

import torch

from toydiff.checks import check_int, check_tensor
from toydiff.processes.forward import q_sample, randn_like
from toydiff.sampling.loop import EpsFn, Projection, sample
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["sdedit", "inpaint_projection"]


def _sdedit_timesteps(schedule: NoiseSchedule, start: int | None, steps, spacing: str) -> tuple[int, ...]:
    """The descending timesteps SDEdit visits: from ``start`` (or ``steps[0]``) down to 0."""
    if start is None:
        if steps is None or isinstance(steps, int):
            raise ValueError("sdedit needs start=, or steps= as an explicit descending sequence of timesteps")
        return schedule.respace(steps).timesteps
    start = check_int(start, "start", min=0, max=schedule.T - 1)
    if steps is None or isinstance(steps, int):
        n = start + 1 if steps is None else check_int(steps, "steps", min=1, max=start + 1)
        sub = NoiseSchedule(schedule._betas[: start + 1])  # same alpha_bars on [0, start]
        return sub.respace(n, spacing).timesteps
    timesteps = schedule.respace(steps).timesteps
    if timesteps[0] != start:
        raise ValueError(f"steps[0] = {timesteps[0]} does not match start = {start}")
    return timesteps


def sdedit(
    eps_fn: EpsFn,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    *,
    start: int | None = None,
    steps: int | Sequence[int] | None = None,
    spacing: str = "linspace",
    noise: torch.Tensor | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
    **sample_kwargs,
) -> torch.Tensor:
    """SDEdit (Meng et al. 2022, "SDEdit: Guided Image Synthesis and Editing with Stochastic Differential
    Equations"): noise ``x0`` to an intermediate step with q_sample, then denoise with :func:`toydiff.sample`.

    Args:
        x0: the image or points to edit, ``[B, *event]``.
        start: the timestep to noise to (``0 <= start < T``); with an int ``steps`` the plan is respaced
            over ``[start, 0]``. Omit it when ``steps`` is an explicit sequence: its first element is the start.
        noise: the ε ``[B, *event]`` of the noising (drawn from ``generator`` if omitted).
        steps, spacing, generator, **sample_kwargs: as in :func:`toydiff.sample`.

    Returns:
        The edited sample ``[B, *event]``. Starting at ``T - 1`` is ordinary sampling from (almost) pure noise.
    """
    check_tensor(x0, "x0")
    timesteps = _sdedit_timesteps(schedule, start, steps, spacing)
    if noise is None:
        noise = randn_like(x0, generator)
    t0 = torch.full((x0.shape[0],), timesteps[0], dtype=torch.long, device=x0.device)
    x_t = q_sample(schedule, x0, t0, noise)
    return sample(eps_fn, x_t, schedule, steps=list(timesteps), generator=generator, **sample_kwargs)


def inpaint_projection(schedule: NoiseSchedule, x_orig: torch.Tensor, mask: torch.Tensor,
                       generator: torch.Generator | list[torch.Generator] | None = None) -> Projection:
    """RePaint-style masked projection (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion
    Probabilistic Models", without its resampling jumps).

    Returns ``project(x, t)`` = m · x + (1 − m) · q_sample(x_orig, t): the known region (m = 0) is replaced
    by the original noised to the current step, and by the original itself at ``t = -1``, so the final
    sample equals ``x_orig`` exactly outside the mask. ``mask`` is 1 where content is generated, broadcastable
    to ``x_orig`` ``[B, *event]``.
    """
    check_tensor(x_orig, "x_orig")
    check_tensor(mask, "mask", min_ndim=0, floating=False)
    try:
        torch.broadcast_shapes(mask.shape, x_orig.shape)
    except RuntimeError:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not broadcast to x_orig {tuple(x_orig.shape)}") from None
    m = mask.to(x_orig.dtype)

    def project(x: torch.Tensor, t: int) -> torch.Tensor:
        known = x_orig if t < 0 else q_sample(schedule, x_orig, t, randn_like(x_orig, generator))
        return m * x + (1 - m) * known

    return project
