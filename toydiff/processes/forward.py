"""The forward (noising) process of a discrete VP diffusion, for tensors of any rank.

Shapes: ``x0``, ``x_t``, ``eps`` are ``[B, *event]`` (``[B, D]`` points or ``[B, C, H, W]`` images);
``t`` is a LongTensor ``[B]`` (one step per sample) or a Python int (the same step for all). ``t = -1``
denotes the clean sample (ᾱ = 1) where a function accepts it. Coefficients are float64 and cast to
the data's dtype on use; they broadcast over trailing dimensions (never a reshape to a fixed rank).
"""

from __future__ import annotations

import numbers
from typing import Sequence

import torch

from toydiff.checks import check_finite, check_int
from toydiff.processes.schedules import NoiseSchedule

__all__ = [
    "expand_to",
    "alpha_bar_at",
    "q_sample",
    "q_step",
    "eps_to_x0",
    "x0_to_eps",
    "v_target",
    "v_to_eps",
    "v_to_x0",
    "q_posterior",
    "posterior_coefficients",
    "randn_like",
    "per_sample_generators",
]


def expand_to(c: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor | float:
    """Give a per-sample coefficient ``[B]`` trailing singleton dims to broadcast against ``x`` ``[B, ...]``."""
    if isinstance(c, torch.Tensor):
        return c.to(dtype=x.dtype, device=x.device).reshape(c.shape + (1,) * (x.ndim - c.ndim))
    return c


def _check_batch(x: torch.Tensor, name: str, finite: bool = True) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 1:
        raise ValueError(f"{name} must have a batch dimension, got a scalar")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if finite:
        check_finite(x, name)


def _check_like(x: torch.Tensor, name: str, ref: torch.Tensor, ref_name: str, finite: bool = True) -> None:
    """``x`` a (finite) floating tensor of ``ref``'s shape (no silent broadcasting between the two)."""
    _check_batch(x, name, finite)
    if x.shape != ref.shape:
        raise ValueError(f"{name} has shape {tuple(x.shape)} but {ref_name} has {tuple(ref.shape)}")


def alpha_bar_at(schedule: NoiseSchedule, t: torch.Tensor | int, x: torch.Tensor | None = None,
                 *, allow_clean: bool = False, name: str = "t") -> torch.Tensor | float:
    """ᾱ_t as a float (int ``t``) or a float64 tensor ``[B]`` (LongTensor ``t``), range-checked.

    If ``x`` is given, a tensor ``t`` must have ``x.shape[0]`` entries.
    """
    lo = -1 if allow_clean else 0
    if isinstance(t, bool):
        raise TypeError(f"{name} must be an int or a LongTensor, not bool")
    if isinstance(t, numbers.Integral):
        t = int(t)
        if not lo <= t < schedule.T:
            raise ValueError(f"{name} must be in [{lo}, {schedule.T - 1}], got {t}")
        return schedule.alpha_bar(t)
    if not isinstance(t, torch.Tensor) or t.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"{name} must be an int or an integer (Long) tensor, got {getattr(t, 'dtype', type(t).__name__)}")
    if t.ndim != 1:
        raise ValueError(f"{name} must have shape [B], got {tuple(t.shape)}")
    if x is not None and t.shape[0] != x.shape[0]:
        raise ValueError(f"{name} has {t.shape[0]} entries but the batch has {x.shape[0]}")
    if t.numel() and (int(t.min()) < lo or int(t.max()) >= schedule.T):
        raise ValueError(f"{name} must be in [{lo}, {schedule.T - 1}], got values in [{int(t.min())}, {int(t.max())}]")
    ab = torch.cat([torch.ones(1, dtype=torch.float64), schedule._alpha_bars])  # index 0 is t = -1
    return ab[t.long().cpu() + 1]


def randn_like(x: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``.

    ``generator`` may be one ``torch.Generator`` for the batch, or a list of ``B`` generators, one per
    sample, so that sample ``i`` draws the same noise whatever the batch size (per-sample seeds).
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != x.shape[0]:
            raise ValueError(f"generator: got {len(generator)} generators for a batch of {x.shape[0]}")
        return torch.stack([torch.randn(x.shape[1:], generator=g, dtype=x.dtype).to(x.device) for g in generator])
    if generator is not None and generator.device != x.device:
        return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device).to(x.device)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def per_sample_generators(seed: int, n_or_indices: int | Sequence[int], device: str | torch.device = "cpu"
                          ) -> list[torch.Generator]:
    """One ``torch.Generator`` per sample, sample ``i`` seeded ``seed + i``.

    ``n_or_indices``: a count ``n`` (samples ``0 .. n-1``) or the sample indices themselves (e.g. the
    ``range(500, 1000)`` of a second batch), so sample ``i`` draws the same numbers in any batch and at any
    batch size when the list is passed to :func:`randn_like` or a sampler's ``generator=``.
    """
    seed = check_int(seed, "seed")
    if isinstance(n_or_indices, Sequence):
        indices = [check_int(i, "n_or_indices", min=0) for i in n_or_indices]
    else:
        indices = range(check_int(n_or_indices, "n_or_indices", min=0))
    top = max(indices, default=0)
    if seed < -2**63 or seed + top > 2**64 - 1:  # what torch.Generator.manual_seed takes
        raise ValueError(f"seed must be in [-2**63, 2**64 - 1 - {top}] (sample i is seeded seed + i, up to i = {top}), "
                         f"got {seed}")
    return [torch.Generator(device=device).manual_seed(seed + i) for i in indices]


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor | int,
             noise: torch.Tensor | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1 − ᾱ_t) I) in closed form (Ho et al. 2020, eq. 4).

    Args:
        schedule: the noise schedule.
        x0: clean data ``[B, *event]``.
        t: LongTensor ``[B]`` of steps in ``[0, T-1]`` (or an int for all; ``-1`` returns ``x0``).
        noise: ε ``[B, *event]``; drawn from ``generator`` if omitted.

    Returns:
        x_t ``[B, *event]``.
    """
    _check_batch(x0, "x0", finite=False)  # training data: the engine reports a non-finite loss at its step
    if noise is None:
        noise = randn_like(x0, generator)
    else:
        _check_like(noise, "noise", x0, "x0", finite=False)
    ab = alpha_bar_at(schedule, t, x0, allow_clean=True)
    sa = ab ** 0.5
    s1 = (1.0 - ab) ** 0.5
    return expand_to(sa, x0) * x0 + expand_to(s1, x0) * noise


def q_step(schedule: NoiseSchedule, x_prev: torch.Tensor, t: torch.Tensor | int,
           noise: torch.Tensor | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """One Markov step of q(x_t | x_{t−1}) = N(sqrt(α_t) x_{t−1}, β_t I) (Ho et al. 2020, eq. 2).

    ``x_prev`` is x_{t−1} (the clean sample for ``t = 0``), ``[B, *event]``; returns x_t.
    """
    _check_batch(x_prev, "x_prev", finite=False)  # training data: the engine reports a non-finite loss at its step
    if noise is None:
        noise = randn_like(x_prev, generator)
    else:
        _check_like(noise, "noise", x_prev, "x_prev", finite=False)
    alpha_bar_at(schedule, t, x_prev)  # range check
    beta = schedule._betas[t] if isinstance(t, int) else schedule._betas[t.long().cpu()]
    beta = float(beta) if isinstance(t, int) else beta
    return expand_to((1.0 - beta) ** 0.5, x_prev) * x_prev + expand_to(beta ** 0.5, x_prev) * noise


# --- parameterisations -------------------------------------------------------------------------
# The coefficient-level functions take ᾱ as a float or a per-sample tensor [B]; the samplers call
# them directly, so this is the one place the maths lives.

def _eps_to_x0(x_t, eps, ab):
    if isinstance(ab, float):  # one fused pass and one allocation: the samplers' hot path
        return torch.add(x_t, eps, alpha=-((1.0 - ab) ** 0.5)).div_(ab**0.5)
    return (x_t - expand_to((1.0 - ab) ** 0.5, x_t) * eps) / expand_to(ab ** 0.5, x_t)


def _x0_to_eps(x_t, x0, ab):
    if isinstance(ab, float):
        return torch.add(x_t, x0, alpha=-(ab**0.5)).div_((1.0 - ab) ** 0.5)
    return (x_t - expand_to(ab ** 0.5, x_t) * x0) / expand_to((1.0 - ab) ** 0.5, x_t)


def eps_to_x0(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t − sqrt(1 − ᾱ_t) ε) / sqrt(ᾱ_t), ``[B, *event]``."""
    _check_batch(x_t, "x_t")
    _check_like(eps, "eps", x_t, "x_t")
    return _eps_to_x0(x_t, eps, alpha_bar_at(schedule, t, x_t))


def x0_to_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor | int, x0: torch.Tensor) -> torch.Tensor:
    """ε = (x_t − sqrt(ᾱ_t) x_0) / sqrt(1 − ᾱ_t), ``[B, *event]``."""
    _check_batch(x_t, "x_t")
    _check_like(x0, "x0", x_t, "x_t")
    return _x0_to_eps(x_t, x0, alpha_bar_at(schedule, t, x_t))


def v_target(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """The v-prediction target v = sqrt(ᾱ_t) ε − sqrt(1 − ᾱ_t) x_0 (Salimans & Ho 2022) of a clean ``x0`` and its
    noise ``eps``, ``[B, *event]`` (:meth:`~toydiff.processes.interpolants.Interpolant.to_v` instead converts a
    network's prediction into v)."""
    _check_batch(x0, "x0")
    _check_like(eps, "eps", x0, "x0")
    ab = alpha_bar_at(schedule, t, x0)
    return expand_to(ab ** 0.5, x0) * eps - expand_to((1.0 - ab) ** 0.5, x0) * x0


def v_to_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor | int, v: torch.Tensor) -> torch.Tensor:
    """ε = sqrt(1 − ᾱ_t) x_t + sqrt(ᾱ_t) v."""
    _check_batch(x_t, "x_t")
    _check_like(v, "v", x_t, "x_t")
    ab = alpha_bar_at(schedule, t, x_t)
    return expand_to((1.0 - ab) ** 0.5, x_t) * x_t + expand_to(ab ** 0.5, x_t) * v


def v_to_x0(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor | int, v: torch.Tensor) -> torch.Tensor:
    """x_0 = sqrt(ᾱ_t) x_t − sqrt(1 − ᾱ_t) v."""
    _check_batch(x_t, "x_t")
    _check_like(v, "v", x_t, "x_t")
    ab = alpha_bar_at(schedule, t, x_t)
    return expand_to(ab ** 0.5, x_t) * x_t - expand_to((1.0 - ab) ** 0.5, x_t) * v


# --- posterior ---------------------------------------------------------------------------------

def posterior_coefficients(ab_t, ab_prev):
    """Coefficients of q(x_{t'} | x_t, x_0) for any t' < t, from ᾱ_t and ᾱ_{t'} (floats or tensors).

    With α = ᾱ_t / ᾱ_{t'} and β = 1 − α (the strided step's effective β):
    mean = c0 · x_0 + ct · x_t with c0 = sqrt(ᾱ_{t'}) β / (1 − ᾱ_t), ct = sqrt(α) (1 − ᾱ_{t'}) / (1 − ᾱ_t);
    variance = β (1 − ᾱ_{t'}) / (1 − ᾱ_t). Returns ``(c0, ct, variance)``.
    """
    alpha = ab_t / ab_prev
    beta = 1.0 - alpha
    c0 = ab_prev ** 0.5 * beta / (1.0 - ab_t)
    ct = alpha ** 0.5 * (1.0 - ab_prev) / (1.0 - ab_t)
    var = beta * (1.0 - ab_prev) / (1.0 - ab_t)
    return c0, ct, var


def q_posterior(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int,
                t_prev: torch.Tensor | int | None = None) -> tuple[torch.Tensor, torch.Tensor | float]:
    """Mean and variance of q(x_{t'} | x_t, x_0) for any ``t_prev`` = t' < t (default t − 1; −1 = clean).

    Ho et al. 2020 eq. 6–7 for t' = t − 1; the same Gaussian conditioning for a strided step (DDIM, Song
    et al. 2021, with η = 1). Returns ``(mean [B, *event], variance)`` with variance a float or ``[B]``.
    """
    _check_batch(x_t, "x_t")
    _check_like(x0, "x0", x_t, "x_t")
    if t_prev is None:
        t_prev = t - 1
    ab_t = alpha_bar_at(schedule, t, x_t)
    ab_p = alpha_bar_at(schedule, t_prev, x_t, allow_clean=True, name="t_prev")
    if isinstance(t, int) != isinstance(t_prev, int):
        ab_t, ab_p = torch.as_tensor(ab_t, dtype=torch.float64), torch.as_tensor(ab_p, dtype=torch.float64)
    if (torch.as_tensor(ab_p) <= torch.as_tensor(ab_t)).any():
        raise ValueError("t_prev must be earlier (less noisy) than t")
    c0, ct, var = posterior_coefficients(ab_t, ab_p)
    return expand_to(c0, x0) * x0 + expand_to(ct, x_t) * x_t, var
