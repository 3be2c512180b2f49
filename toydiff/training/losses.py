"""The ε-prediction training loss (Ho et al. 2020, Algorithm 1), shared by the toy and image tracks.

    loss = ‖ε − ε_θ(sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε, t)‖²,   t ~ U{0, …, T−1},  ε ~ N(0, I)

averaged over the event dimensions (as ``nn.MSELoss`` does), so it is comparable with
:meth:`toydiff.GaussianMixture.bayes_optimal_loss`.
"""

from __future__ import annotations

import math

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch

from toydiff.processes.forward import q_sample, randn_like
from toydiff.processes.schedules import NoiseSchedule
from toydiff.training.stable_target import check_target, stable_pair

__all__ = ["LossTerms", "LOSS_WEIGHTINGS", "T_SAMPLINGS", "eps_prediction_loss", "loss_weights", "sample_timesteps",
           "bucket_of", "bucket_sums", "held_out_draws", "held_out_loss",
           "batched_held_out", "NonFiniteLossError"]

LOSS_WEIGHTINGS = ("uniform", "min-snr")
T_SAMPLINGS = ("uniform", "low-noise")


@dataclass
class LossTerms:
    """``per_sample [B]`` squared error averaged over event dims, and the steps ``t [B]`` it was taken at."""

    per_sample: torch.Tensor
    t: torch.Tensor

    @property
    def loss(self) -> torch.Tensor:
        return self.per_sample.mean()


class NonFiniteLossError(FloatingPointError):
    """Training diverged: the loss (no hook handled it), the held-out loss
    (:func:`batched_held_out`, every objective's) or the weights became NaN or infinite at ``step``; the
    last checkpoint is the last good one. The command line reports it in one line with exit status 3."""

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


def sample_timesteps(schedule: NoiseSchedule, batch: int, *, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None, distribution: str = "uniform") -> torch.Tensor:
    """Steps for a training batch, LongTensor ``[batch]``, drawn from ``generator`` (on its device).

    ``distribution``: ``"uniform"``, t ~ U{0, …, T−1} (Ho et al. 2020); or ``"low-noise"``,
    P(t) ∝ 1/√(t + 1), which gives the lowest tenth of the steps about three times its uniform share
    (29 % for T = 250). Drawing t non-uniformly and not re-weighting changes which steps the network's
    capacity goes to, not the per-step optimum ε*. On the toy mixtures, whose modes are narrower than the
    smallest noise level, the last steps decide the samples' shape, and a network trained on uniform t
    leaves many samples between the modes (see ``bench/toy_2d.py``). In 1-D the last few steps (t < 5 of 250,
    2 % of uniform draws; P(0) is 8 × its uniform share here) set the modes' means and spread, while the mode
    weights are decided at mid noise and come out right either way (``bench/toy_recipe_search.py``, round 6).
    """
    if distribution not in T_SAMPLINGS:
        raise ValueError(f"distribution must be one of {T_SAMPLINGS}, got {distribution!r}")
    gen_device = generator.device if generator is not None else (device or "cpu")
    if distribution == "uniform":
        t = torch.randint(0, schedule.T, (batch,), generator=generator, device=gen_device)
    else:
        p = torch.arange(1, schedule.T + 1, dtype=torch.float64, device=gen_device).rsqrt()
        t = torch.multinomial(p, batch, replacement=True, generator=generator)
    return t.to(device) if device is not None else t


def eps_prediction_loss(model: Callable[..., torch.Tensor], schedule: NoiseSchedule, x0: torch.Tensor, *,
                        generator: torch.Generator | None = None, t: torch.Tensor | None = None,
                        noise: torch.Tensor | None = None, t_sampling: str = "uniform", target: str = "conditional",
                        **model_kwargs) -> LossTerms:
    """One Monte-Carlo draw of the DDPM loss on a batch ``x0 [B, *event]``.

    Args:
        model: ``model(x_t, t, **model_kwargs) -> eps_hat [B, *event]`` (e.g. ``y=labels`` for a conditional net).
        t, noise: fixed steps ``[B]`` / noise ``[B, *event]``; drawn from ``generator`` when omitted (t from
            the ``t_sampling`` distribution of :func:`sample_timesteps`).
        target: ``"conditional"`` regresses on each pair's own ε (Ho et al. 2020); ``"stf"`` on the ε̂ of the
            stable target field over the batch (Xu et al. 2023, :func:`toydiff.training.stable_target.stable_pair`):
            the same minimiser, less gradient noise; unconditional batches only.

    Returns:
        :class:`LossTerms`; ``.loss`` is the scalar to back-propagate.
    """
    if t is None:
        t = sample_timesteps(schedule, x0.shape[0], generator=generator, device=x0.device, distribution=t_sampling)
    check_target(target, model_kwargs)
    if noise is None:
        noise = randn_like(x0, generator)
    x_t = q_sample(schedule, x0, t, noise)
    goal = noise
    if target == "stf":
        ab = schedule.alpha_bars.to(x0.device)[t]
        goal = stable_pair(x0, noise, ab.sqrt(), (1 - ab).sqrt())[1]
    eps_hat = model(x_t, t, **model_kwargs)
    if eps_hat.shape != x0.shape:
        raise ValueError(f"model returned shape {tuple(eps_hat.shape)}; expected {tuple(x0.shape)}")
    per = (eps_hat.float() - goal.float()).pow(2).flatten(1).mean(dim=1)
    return LossTerms(per_sample=per, t=t)


def loss_weights(schedule: NoiseSchedule, t: torch.Tensor, weighting: str = "uniform", *,
                 gamma: float = 5.0) -> torch.Tensor | None:
    """Per-sample weights ``[B]`` for the ε-loss at steps ``t [B]``, or None for the plain (uniform) loss.

    ``"min-snr"``: Min-SNR-γ weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting
    Strategy"), ``min(SNR_t, γ) / SNR_t`` for ε-prediction. It keeps weight 1 on the noisy steps
    (SNR ≤ γ), where the global shape is decided, and lowers the weight of the nearly clean steps, whose
    large ε-errors otherwise dominate the gradient. The weighted loss no longer has the Bayes floor's scale,
    so report the unweighted ``per_sample`` mean next to it.
    """
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {LOSS_WEIGHTINGS}, got {weighting!r}")
    if weighting == "uniform":
        return None
    if not gamma > 0:
        raise ValueError(f"gamma must be positive, got {gamma!r}")
    snr = schedule.snr.to(t.device)[t.long()]
    return (snr.clamp(max=gamma) / snr).float()


def bucket_of(t: torch.Tensor, T: int, n_buckets: int) -> torch.Tensor:
    """Index of the equal-width step bucket each ``t`` falls in, ``[B]`` in ``[0, n_buckets)``."""
    return (t.long() * n_buckets // T).clamp_(0, n_buckets - 1)


def bucket_sums(values: torch.Tensor, t: torch.Tensor, T: int, n_buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bucket ``(sum, count)`` of ``values [B]`` taken at steps ``t [B]``, both float64 ``[n_buckets]``."""
    b = bucket_of(t, T, n_buckets)
    v = values.detach().double()
    s = torch.zeros(n_buckets, dtype=torch.float64, device=v.device).index_add_(0, b, v)
    return s, torch.zeros_like(s).index_add_(0, b, torch.ones_like(v))


def held_out_draws(schedule: NoiseSchedule, shape: tuple[int, ...] | torch.Size, *, seed: int,
                   noise_dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed steps ``t [N]`` then noise ``ε [N, *event]`` (of ``noise_dtype``) drawn from a CPU generator
    seeded with ``seed``: the same draws at every epoch, so held-out losses compare exactly."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, schedule.T, (shape[0],), generator=g)
    return t, torch.randn(tuple(shape), generator=g, dtype=noise_dtype)


def held_out_loss(model: Callable[..., torch.Tensor], schedule: NoiseSchedule, x0: torch.Tensor, *,
                  t: torch.Tensor | None = None, noise: torch.Tensor | None = None, seed: int = 1,
                  n_buckets: int = 10, batch_size: int = 65_536, model_kwargs: dict | None = None,
                  context: Callable[[], ContextManager] | None = None) -> tuple[float, list[float]]:
    """The ε-prediction loss of ``model`` on held-out ``x0 [N, *event]`` at fixed ``(t [N], noise [N, *event])``.

    Returns ``(mean loss, mean loss per equal-width t bucket)`` (NaN for an empty bucket), accumulated in
    float64. Without ``t`` / ``noise`` they come from :func:`held_out_draws` with ``seed`` (noise drawn in
    float64, so the draws are the same at any dtype). With the exact ε* as ``model`` this is the
    Bayes-optimal floor on the very same draws, a paired comparison free of the held-out set's own
    sampling noise. ``model_kwargs`` hold per-sample tensors ``[N, ...]`` (e.g. ``y`` labels), sliced with
    the batches; ``context()`` wraps each forward pass (e.g. bf16 autocast).
    """
    if (t is None) != (noise is None):
        raise ValueError("give both t and noise, or neither")
    if t is None:
        t, noise = held_out_draws(schedule, x0.shape, seed=seed)
        noise = noise.to(x0.dtype)
    return batched_held_out(
        lambda sl, kw: eps_prediction_loss(model, schedule, x0[sl], t=t[sl], noise=noise[sl], **kw).per_sample,
        t, lambda v, tt, nb: bucket_sums(v, tt, schedule.T, nb), n_buckets=n_buckets, batch_size=batch_size,
        model_kwargs=model_kwargs, context=context)


def batched_held_out(per_sample: Callable[[slice, dict], torch.Tensor], t: torch.Tensor,
                     bucket: Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]], *,
                     n_buckets: int, batch_size: int, model_kwargs: dict | None = None,
                     context: Callable[[], ContextManager] | None = None) -> tuple[float, list[float]]:
    """The batched, gradient-free loop of every held-out loss: ``per_sample(sl, kw) -> [b]`` for the slices
    ``sl`` of ``batch_size`` over ``t [N]`` (``kw``: ``model_kwargs`` sliced alike; ``context()`` around each
    call), then ``(mean, mean per bucket)`` in float64 from ``bucket(values [N], t [N], n_buckets) -> (sums,
    counts)`` (NaN for an empty bucket)."""
    per = []
    with torch.no_grad():
        for i in range(0, t.shape[0], batch_size):
            sl = slice(i, i + batch_size)
            kw = {k: v[sl] for k, v in (model_kwargs or {}).items()}
            with (context or nullcontext)():
                per.append(per_sample(sl, kw))
    values = torch.cat(per).double()
    s, c = bucket(values, t.to(values.device), n_buckets)
    by_bucket = torch.where(c > 0, s / c.clamp(min=1), torch.full_like(s, float("nan")))
    mean = float(values.mean())
    if not math.isfinite(mean):
        bad = int((~torch.isfinite(values)).sum())
        raise NonFiniteLossError(f"training diverged: the held-out loss is {mean} ({bad} of {values.numel()} held-out "
                                 "draws non-finite: the network's output overflowed)")
    return mean, by_bucket.tolist()
