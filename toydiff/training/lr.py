"""Learning-rate schedules: linear warm-up, then cosine (to a floor), exponential or constant.

One function serves both tracks: ``lr_k = lr · lr_factor(k, total_steps, ...)`` at optimiser step ``k``
(0-based). Warm-up is linear, ``(k + 1) / warmup_steps`` (Goyal et al. 2017); the cosine decay is SGDR's
half cosine without restarts (Loshchilov & Hutter 2017) from 1 down to ``min_lr_ratio`` at ``total_steps``.
"""

from __future__ import annotations

import math

from toydiff.checks import check_choice, check_int, check_number

__all__ = ["LR_SCHEDULES", "lr_factor"]

LR_SCHEDULES = ("cosine", "exponential", "constant")


def lr_factor(step: int, total_steps: int, *, warmup_steps: int = 0, schedule: str = "cosine",
              min_lr_ratio: float = 0.0, gamma: float = 0.9995) -> float:
    """The multiplier of the peak learning rate at optimiser step ``step`` of ``total_steps``.

    Args:
        warmup_steps: steps of linear warm-up to 1 (0: none).
        schedule: after warm-up, ``"cosine"`` (1 → ``min_lr_ratio`` at ``total_steps``, flat after),
            ``"exponential"`` (``gamma ** (step − warmup_steps)``) or ``"constant"`` (1).
        min_lr_ratio: the cosine floor, a fraction of the peak.
        gamma: the exponential decay per step.
    """
    check_int(step, "step", min=0)
    check_int(total_steps, "total_steps", min=1)
    check_int(warmup_steps, "warmup_steps", min=0)
    check_choice(schedule, "lr_schedule", LR_SCHEDULES)
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    after = step - warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "exponential":
        return check_number(gamma, "lr_gamma", min=0.0, max=1.0) ** after
    floor = check_number(min_lr_ratio, "min_lr_ratio", min=0.0, max=1.0)
    progress = min(after / max(total_steps - warmup_steps, 1), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
