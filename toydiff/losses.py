"""The ε-prediction training loss (Ho et al. 2020, Algorithm 1), shared by the toy and image tracks.

    loss = ‖ε − ε_θ(sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε, t)‖²,   t ~ U{0, …, T−1},  ε ~ N(0, I)

averaged over the event dimensions (as ``nn.MSELoss`` does), so it is comparable with
:meth:`toydiff.GaussianMixture.bayes_optimal_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .forward import q_sample, randn_like
from .schedules import NoiseSchedule

__all__ = ["LossTerms", "eps_prediction_loss", "sample_timesteps", "bucket_of"]


@dataclass
class LossTerms:
    """``per_sample [B]`` squared error averaged over event dims, and the steps ``t [B]`` it was taken at."""

    per_sample: torch.Tensor
    t: torch.Tensor

    @property
    def loss(self) -> torch.Tensor:
        return self.per_sample.mean()


def sample_timesteps(schedule: NoiseSchedule, batch: int, *, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """Uniform steps t ~ U{0, …, T−1}, LongTensor ``[batch]``, drawn from ``generator`` (on its device)."""
    gen_device = generator.device if generator is not None else (device or "cpu")
    t = torch.randint(0, schedule.T, (batch,), generator=generator, device=gen_device)
    return t.to(device) if device is not None else t


def eps_prediction_loss(model: Callable[..., torch.Tensor], schedule: NoiseSchedule, x0: torch.Tensor, *,
                        generator: torch.Generator | None = None, t: torch.Tensor | None = None,
                        noise: torch.Tensor | None = None, **model_kwargs) -> LossTerms:
    """One Monte-Carlo draw of the DDPM loss on a batch ``x0 [B, *event]``.

    Args:
        model: ``model(x_t, t, **model_kwargs) -> eps_hat [B, *event]`` (e.g. ``y=labels`` for a conditional net).
        t, noise: fixed steps ``[B]`` / noise ``[B, *event]``; drawn from ``generator`` when omitted.

    Returns:
        :class:`LossTerms`; ``.loss`` is the scalar to back-propagate.
    """
    if t is None:
        t = sample_timesteps(schedule, x0.shape[0], generator=generator, device=x0.device)
    if noise is None:
        noise = randn_like(x0, generator)
    x_t = q_sample(schedule, x0, t, noise)
    eps_hat = model(x_t, t, **model_kwargs)
    if eps_hat.shape != x0.shape:
        raise ValueError(f"model returned shape {tuple(eps_hat.shape)}; expected {tuple(x0.shape)}")
    per = (eps_hat.float() - noise.float()).pow(2).flatten(1).mean(dim=1)
    return LossTerms(per_sample=per, t=t)


def bucket_of(t: torch.Tensor, T: int, n_buckets: int) -> torch.Tensor:
    """Index of the equal-width step bucket each ``t`` falls in, ``[B]`` in ``[0, n_buckets)``."""
    return (t.long() * n_buckets // T).clamp_(0, n_buckets - 1)
