"""The stable target field (Xu et al. 2023, ICLR, "Stable target field for reduced variance score estimation in
diffusion models"), for any Gaussian corruption x_t = α_t x_0 + σ_t ε.

    x0_hat, eps_hat = stable_pair(x0 [B, *event], noise [B, *event], alpha [B], sigma [B])

A denoising loss regresses on one pair (x0_i, ε_i) per x_t; what the network should learn is the pair's mean given
x_t (the exact denoiser), so the pair's spread around that mean is pure noise in every gradient. The stable target
replaces x0_i by the self-normalised posterior estimate x̂_0 = Σ_j w_ij r_j, w_ij ∝ N(x_t; α_t r_j, σ_t² I), over
the reference ``{x0_i} ∪ reference`` (the batch itself always; the own point is in it, which keeps the estimate
consistent), and ε_i by the ε̂ that gives the same x_t. Where the reference points are far apart relative to σ_t
(low noise, or high dimension) the weights sit on the own point and nothing changes; at mid / high noise the
pair approaches the posterior mean as the reference grows (bias O(1 / batch)). Every target of a Gaussian
process (ε, x_0, v, the flow velocity) is linear in the pair, so one function serves them all:
:func:`toydiff.training.flow_losses.stable_target` (the interpolants' targets) and :func:`toydiff.training.losses.eps_prediction_loss`
(DDPM's ε) call it. Cost: O(B · R · D) time, one [B, R] buffer.
"""

from __future__ import annotations

import torch

from toydiff.checks import check_choice, check_tensor

__all__ = ["TARGETS", "check_target", "stable_pair"]

#: the regression targets a training loss offers: each pair's own (``"conditional"``) or the stable target (``"stf"``)
TARGETS = ("conditional", "stf")


def check_target(target: str, model_kwargs: dict) -> str:
    """``target`` if it is one of :data:`TARGETS` and usable with these model keywords (the stable target averages
    over the whole batch, so a model conditioned per sample, e.g. on labels, cannot have it)."""
    if check_choice(target, "target", TARGETS) == "stf" and model_kwargs:
        raise ValueError(f"target='stf' averages over the whole batch, so it needs an unconditional model; got "
                         f"model keywords {sorted(model_kwargs)}")
    return target


def stable_pair(x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
                reference: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x̂_0, ε̂), each ``[B, *event]`` in the dtype of ``x0``, with α x̂_0 + σ ε̂ = α x0 + σ ε per row.

    Args:
        x0, noise: the batch and its noise (drawn independently of x0: a coupled batch, e.g. reflow's, has
            another posterior).
        alpha, sigma: the corruption's coefficients per row ``[B]`` (σ = 0: the own point only).
        reference: extra data points ``[R, *event]`` (default none).
    """
    check_tensor(x0, "x0")
    if check_tensor(noise, "noise").shape != x0.shape:
        raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
    if reference is not None and check_tensor(reference, "reference").shape[1:] != x0.shape[1:]:
        raise ValueError(f"reference must have event shape {tuple(x0.shape[1:])}, got {tuple(reference.shape[1:])}")
    ref = x0 if reference is None else torch.cat([x0, reference.to(x0)])
    a, s = (_coefficient(v, name, x0) for v, name in ((alpha, "alpha"), (sigma, "sigma")))
    x, e, r = x0.flatten(1), noise.flatten(1).to(x0.dtype), ref.flatten(1)         # [B, D], [B, D], [R, D]
    c = a / s.clamp_min(1e-12)                                                        # α/σ
    p = e + c * x                                                                     # x_t / σ
    # w_ij ∝ exp(−‖x_t − α r_j‖² / 2σ²) = exp(−½ ‖p_i − c_i r_j‖²), in one [B, R] buffer updated in place
    if x.shape[1] <= 8:  # per coordinate, exact differences: no cancellation, however close two points are
        sq = torch.addcmul(p[:, :1], c, r[:, 0], value=-1).square_()
        for d in range(1, x.shape[1]):
            sq.add_(torch.addcmul(p[:, d:d + 1], c, r[:, d], value=-1).square_())
    else:  # expanded, up to ‖p_i‖² (the same along the row); adequate unless points are near-duplicates
        sq = (p @ r.T).mul_(-2 * c).add_(c.square() * r.square().sum(1))
    w = sq.sub_(sq.amin(1, keepdim=True)).mul_(-0.5).exp_()                          # unnormalised, max 1 per row
    shift = (w @ r) / w.sum(1, keepdim=True) - x                                      # x̂_0 − x0_i
    return (x + shift).view_as(x0), (e - c * shift).view_as(x0)                      # the pair keeps x_t


def _coefficient(v, name: str, x0: torch.Tensor) -> torch.Tensor:
    """A per-row coefficient ``[B, 1]`` from a number or a tensor of 1 or B finite, non-negative entries."""
    c = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
    if c.numel() not in (1, x0.shape[0]):
        raise ValueError(f"{name} must be a number or have {x0.shape[0]} entries (one per row), got {c.numel()}")
    if not bool(torch.isfinite(c).all()) or bool((c < 0).any()):
        raise ValueError(f"{name} must be finite and non-negative")
    return c.to(device=x0.device, dtype=x0.dtype).reshape(-1, 1).expand(x0.shape[0], 1)
