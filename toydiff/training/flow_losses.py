"""Training losses under a Gaussian interpolant: conditional flow matching and the ε / x_0 / v regressions.

    loss = ‖target − f_θ(α_t x_0 + σ_t ε, t)‖²,   t ~ p(t) on [0, 1],   ε ~ N(0, I)

with the target of the prediction type (:data:`toydiff.processes.interpolants.PREDICTIONS`): the conditional velocity
u = α̇ x_0 + σ̇ ε (conditional flow matching, Lipman et al. 2023; ε − x_0 on the linear path, rectified flow,
Liu et al. 2023), ε, x_0 or v = α ε − σ x_0 (Salimans & Ho 2022). Each is minimised by the conditional mean
E[target | x_t], which the exact oracle gives in closed form (:meth:`toydiff.GaussianMixture.denoiser`), so
:func:`interpolant_loss_floor` is the Bayes floor of the loss as :meth:`GaussianMixture.bayes_optimal_loss`
is of the VP ε-loss. Averaged over event dims (as ``nn.MSELoss``); any tensor rank ``[B, *event]``.

:class:`toydiff.processes.FlowObjective` puts these into the training engine (:class:`toydiff.training.Trainer`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import torch

from toydiff.checks import check_choice, check_int, check_tensor
from toydiff.exact.mixture import LossFloor
from toydiff.processes.forward import randn_like
from toydiff.processes.interpolants import PREDICTIONS, Interpolant, linear, time_tensor
from toydiff.training.losses import LossTerms
from toydiff.training.stable_target import TARGETS, check_target, stable_pair

if TYPE_CHECKING:
    from toydiff.exact.mixture import GaussianMixture

__all__ = ["TIME_SAMPLINGS", "TARGETS", "sample_times", "stable_target", "interpolant_loss", "flow_matching_loss",
           "interpolant_loss_floor", "unit_bucket_sums", "unit_held_out_draws"]

TIME_SAMPLINGS = ("uniform", "logit-normal", "low-noise")


def sample_times(batch: int, *, generator: torch.Generator | None = None, device=None, dtype=torch.float32,
                 distribution: str = "uniform") -> torch.Tensor:
    """Training times ``[batch]`` in [0, 1] drawn from ``generator``: ``"uniform"``, ``"logit-normal"``
    (t = sigmoid(n), n ~ N(0, 1): more weight on the middle of the path, Esser et al. 2024 §3.1), or
    ``"low-noise"`` (t = u², u ~ U[0, 1]: density 1/(2√t), the continuous analogue of the VP ``low-noise``
    step distribution of :func:`toydiff.training.losses.sample_timesteps`: a third of the draws in the cleanest tenth)."""
    check_int(batch, "batch", min=1)
    check_choice(distribution, "distribution", TIME_SAMPLINGS)
    gen_device = generator.device if generator is not None else (device or "cpu")
    if distribution == "uniform":
        t = torch.rand(batch, generator=generator, device=gen_device, dtype=torch.float64)
    elif distribution == "low-noise":
        t = torch.rand(batch, generator=generator, device=gen_device, dtype=torch.float64).square()
    else:
        t = torch.sigmoid(torch.randn(batch, generator=generator, device=gen_device, dtype=torch.float64))
    return t.to(device=device or gen_device, dtype=dtype)


def stable_target(interp: Interpolant, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, kind: str = "velocity",
                  reference: torch.Tensor | None = None) -> torch.Tensor:
    """The ``kind`` target of each x_t = α_t x0_i + σ_t ε_i under ``interp``, averaged over the batch (and
    ``reference [R, *event]``) by posterior weight: the stable target field of Xu et al. 2023
    (:func:`toydiff.training.stable_target.stable_pair`). ``x0, noise [B, *event]``, ``t [B]`` in [0, 1] -> ``[B, *event]``."""
    check_choice(kind, "kind", PREDICTIONS)
    tt = time_tensor(t).to(device=x0.device, dtype=torch.float64)
    a, s = interp.coefs(tt)[:2]
    x0_hat, eps_hat = stable_pair(x0, noise, a, s, reference)
    return interp.target(x0_hat, eps_hat, kind, tt.to(x0.dtype))


def interpolant_loss(model: Callable[..., torch.Tensor], interp: Interpolant, x0: torch.Tensor, *,
                     kind: str = "velocity", generator: torch.Generator | None = None, t: torch.Tensor | None = None,
                     noise: torch.Tensor | None = None, t_sampling: str = "uniform", target: str = "conditional",
                     **model_kwargs) -> LossTerms:
    """One Monte-Carlo draw of the regression loss of a ``kind`` predictor under ``interp`` on ``x0 [B, *event]``.

    Args:
        model: ``model(x_t, t float [B], **model_kwargs) -> [B, *event]``.
        t, noise: fixed times ``[B]`` in [0, 1] / noise ``[B, *event]``; drawn from ``generator`` when omitted.
        target: ``"conditional"`` (each pair's own target) or ``"stf"`` (:func:`stable_target` over the batch:
            the same minimiser, less gradient noise; unconditional batches with independent noise only).

    Returns:
        :class:`~toydiff.training.losses.LossTerms` with ``t`` the float times; ``.loss`` is the scalar to back-propagate.
    """
    if not isinstance(interp, Interpolant):
        raise TypeError(f"interp must be an Interpolant, got {type(interp).__name__}")
    check_choice(kind, "kind", PREDICTIONS)
    check_tensor(x0, "x0")
    if t is None:
        t = sample_times(x0.shape[0], generator=generator, device=x0.device, dtype=x0.dtype, distribution=t_sampling)
    elif time_tensor(t).shape != (x0.shape[0],):
        raise ValueError(f"t must have shape [B={x0.shape[0]}], got {tuple(t.shape)}")
    check_target(target, model_kwargs)
    if noise is None:
        noise = randn_like(x0, generator)
    x_t = interp.q_sample(x0, t, noise)
    goal = interp.target(x0, noise, kind, t) if target == "conditional" else stable_target(interp, x0, noise, t, kind)
    pred = model(x_t, t, **model_kwargs)
    if not isinstance(pred, torch.Tensor) or pred.shape != x0.shape:
        raise ValueError(f"model returned shape {tuple(getattr(pred, 'shape', ()))}; expected {tuple(x0.shape)}")
    per = (pred.float() - goal.float()).pow(2).flatten(1).mean(dim=1)
    return LossTerms(per_sample=per, t=t)


def flow_matching_loss(model: Callable[..., torch.Tensor], x0: torch.Tensor, **kwargs) -> LossTerms:
    """Conditional flow matching on the linear path (Lipman et al. 2023; Liu et al. 2023):
    ‖(ε − x_0) − u_θ((1 − t) x_0 + t ε, t)‖², t ~ U[0, 1]; keywords as :func:`interpolant_loss`."""
    return interpolant_loss(model, linear(), x0, kind="velocity", **kwargs)


def interpolant_loss_floor(gm: GaussianMixture, interp: Interpolant, kind: str = "velocity", *,
                           t: torch.Tensor | None = None, n: int = 4096,
                           generator: torch.Generator | None = None) -> LossFloor:
    """The Bayes-optimal value of :func:`interpolant_loss` at each time ``t`` (default 20 midpoints of [0, 1]):
    E‖target − E[target | x_t]‖² / D by Monte Carlo with ``n`` fresh samples per time, float64."""
    check_int(n, "n", min=2)
    ts = (torch.arange(20, dtype=torch.float64) + 0.5) / 20 if t is None else time_tensor(t).flatten()
    fn = gm.denoiser(interp, kind)
    means, errs = [], []
    for ti in ts.tolist():
        x0 = gm.sample(n, generator)
        tt = torch.full((n,), ti, dtype=torch.float64)
        se = interpolant_loss(fn, interp, x0, kind=kind, t=tt, noise=randn_like(x0, generator)).per_sample.double()
        means.append(se.mean())
        errs.append(se.std() / math.sqrt(n))
    return LossFloor(t=ts, per_t=torch.stack(means), stderr=torch.stack(errs), n=n)


def unit_bucket_sums(values: torch.Tensor, t: torch.Tensor, n_buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per equal-width bucket of t ∈ [0, 1] ``(sum, count)`` of ``values [B]`` at times ``t [B]``, float64 (the
    objectives over continuous time share it)."""
    b = (t.double() * n_buckets).long().clamp_(0, n_buckets - 1)
    v = values.detach().double()
    s = torch.zeros(n_buckets, dtype=torch.float64, device=v.device).index_add_(0, b.to(v.device), v)
    return s, torch.zeros_like(s).index_add_(0, b.to(v.device), torch.ones_like(v))


def unit_held_out_draws(shape, *, seed: int, noise_dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed times ``t [N]`` ~ U[0, 1] (float32) then noise ``[N, *event]`` from a CPU generator seeded ``seed``."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(shape[0], generator=g, dtype=torch.float64).float()
    return t, torch.randn(tuple(shape), generator=g, dtype=noise_dtype)
