"""The exact denoiser of a table: p(x₀ⁱ = v | x_t) by enumeration over every clean sequence.

Every position is noised independently, so by Bayes

    p(x₀ | x_t) ∝ p(x₀) ∏ⱼ q(x_tʲ | x₀ʲ),

and the per-position marginals p(x₀ⁱ = v | x_t) are sums of that posterior over the other positions. With every
sequence one-hot per position (a matrix E ``[V^L, L·V]``), Σⱼ log q(x_tʲ | x₀ʲ) over all sequences is one matrix
product log_lik ``[B, L·V]`` · Eᵀ, and the marginals are softmax(log p + that) · E: O(B · V^L · L · V) in chunks
of at most ``chunk`` entries, over the distinct rows of the batch only.
This is the minimiser of the cross-entropy losses of MDLM and D3PM (Sahoo et al. 2024; Austin et al. 2021) and
the denoiser every sampler is judged on in :mod:`toydiff.discrete.judge`.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["table_denoiser", "posterior_marginals"]


#: log 0 stands in as this (finite, so that a zero of the one-hot matrix times it is 0, not NaN)
_LOG_ZERO = -1e30


def posterior_marginals(log_table: torch.Tensor, log_lik: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """Per-position marginals of p(x₀ | x_t) ∝ table · ∏ⱼ lik[:, j, x₀ʲ].

    Args:
        log_table: log p(x₀) flat, ``[N]`` float64 (N = V^L).
        log_lik: log q(x_tʲ | x₀ʲ = v), ``[b, L, V]`` float64 (−inf allowed).
        onehot: every sequence one-hot per position, ``[N, L·V]`` float64.

    Returns:
        ``[b, L, V]`` float64. A row whose x_t has probability zero under the table (a factorised sampler can
        reach one: two positions drawn independently in one step) gets the limit of the table smoothed toward
        uniform, (1 − ε) p + ε / V^L as ε → 0: the posterior of the likelihood alone (under the masked process:
        the unmasked symbols kept, the masked ones uniform).
    """
    b, L, V = log_lik.shape
    lik = log_lik.clamp_min(_LOG_ZERO).reshape(b, L * V) @ onehot.T  # [b, N]: Σⱼ log q(x_tʲ | x₀ʲ)
    joint = log_table + lik
    off = joint.max(dim=1).values < _LOG_ZERO / 2  # x_t that no sequence of the table leads to
    if bool(off.any()):
        joint = torch.where(off[:, None], lik, joint)
    post = torch.softmax(joint, dim=1)
    return (post @ onehot).reshape(b, L, V)


def table_denoiser(probs: torch.Tensor, process, *, chunk: int = 1 << 22
                   ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``fn(x_t [B, L] long, t [B] (or a number)) -> p(x₀ⁱ = v | x_t) [B, L, V]`` float64 for the table ``probs``
    ``[V] * L`` under ``process`` (a :mod:`toydiff.discrete` process: its :meth:`likelihood` gives q(x_tʲ | x₀ʲ))."""
    V, L = int(probs.shape[0]), int(probs.ndim)
    process.vocab(V)  # a process built for another V is refused here, not at the first call
    log_table = probs.to(torch.float64).reshape(-1).log().clamp_min(_LOG_ZERO)
    index = torch.arange(probs.numel())
    states = (index[:, None] // V ** torch.arange(L - 1, -1, -1)) % V  # [N, L], the table's order
    onehot = torch.nn.functional.one_hot(states, V).reshape(-1, L * V).to(torch.float64)
    rows = max(1, chunk // probs.numel())

    def fn(x_t: torch.Tensor, t) -> torch.Tensor:
        if not isinstance(x_t, torch.Tensor) or x_t.ndim != 2 or x_t.shape[1] != L:
            raise ValueError(f"x_t must be [B, {L}], got {tuple(getattr(x_t, 'shape', ()))}")
        log_lik = process.likelihood(x_t, t, V).log().clamp_min(_LOG_ZERO)
        uniq, inverse = torch.unique(log_lik.reshape(x_t.shape[0], -1), dim=0, return_inverse=True)
        uniq = uniq.reshape(-1, L, V)  # each distinct (x_t, t) once: a sampler's batch repeats many
        out = torch.cat([posterior_marginals(log_table, uniq[i:i + rows], onehot) for i in range(0, len(uniq), rows)])
        return out[inverse]

    return fn
