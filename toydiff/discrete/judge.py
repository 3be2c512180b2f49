"""The judge of discrete samplers and denoisers, exact where a table allows it.

- :func:`kl_tv`: KL(p̂ ‖ p) and total variation ½ Σ |p̂ − p| of a sampled set's counts p̂ against the table p.
- :func:`count_floor`: the same two statistics for ``n`` true draws (mean ± sd over ``draws`` sets): a sampler
  whose KL is within the floor's spread is indistinguishable from the truth at that n (KL(p̂ ‖ p) ≈ (S − 1) / 2n
  for S sequences of non-negligible mass, not 0).
- :func:`marginal_error`: per-position marginals of the samples against the table's.
- :func:`masked_ce_curve` and :func:`mdlm_floor`: the Bayes-optimal cross-entropy of the masked process at
  every ᾱ, exactly, from the entropies of the table's marginals over every subset of positions; MDLM's
  continuous-time loss (Sahoo et al. 2024; Shi et al. 2024) of the exact denoiser is H(X) exactly (its ELBO is
  tight: Ou et al. 2024), the T-step one is larger.
- :func:`mdlm_loss` and :func:`d3pm_elbo`: Monte Carlo estimates (mean, standard error) of a denoiser's
  MDLM loss by t and of the D3PM bound (Austin et al. 2021) over a step grid, for any ``fn``; on the exact
  denoiser they are the Bayes floors of those losses.
"""

from __future__ import annotations

import math

import torch

from toydiff.checks import check_int
from toydiff.discrete.schedules import alpha_bar, alpha_bar_rate

__all__ = ["kl_tv", "count_floor", "marginal_error", "masked_ce_curve", "mdlm_floor", "mdlm_loss", "d3pm_elbo"]


def kl_tv(dist, x: torch.Tensor) -> tuple[float, float]:
    """(KL(p̂ ‖ p) in nats, total variation) of the empirical distribution of ``x [n, L]`` against ``dist``'s
    table (KL is inf if a sequence of probability zero was drawn)."""
    counts = dist.counts(x)
    p_hat, p = counts / counts.sum(), dist.probs.reshape(-1)
    seen = p_hat > 0
    kl = float((p_hat[seen] * (p_hat[seen] / p[seen]).log()).sum()) if bool((p[seen] > 0).all()) else math.inf
    return kl, float(0.5 * (p_hat - p).abs().sum())


def count_floor(dist, n: int, *, draws: int = 20, generator: torch.Generator | None = None) -> dict[str, float]:
    """KL and TV of ``n`` true draws from ``dist``, ``{"kl", "kl_sd", "tv", "tv_sd"}`` over ``draws`` sets."""
    n, draws = check_int(n, "n", min=1), check_int(draws, "draws", min=2)
    kls, tvs = torch.tensor([kl_tv(dist, dist.sample(n, generator)) for _ in range(draws)], dtype=torch.float64).T
    return {"kl": float(kls.mean()), "kl_sd": float(kls.std()), "tv": float(tvs.mean()), "tv_sd": float(tvs.std())}


def marginal_error(dist, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(the samples' per-position marginals ``[L, V]``, their largest absolute difference from the table's)."""
    emp = torch.nn.functional.one_hot(dist._check_x(x), dist.V).to(torch.float64).mean(0)
    return emp, float((emp - dist.marginals()).abs().max())


def _subset_entropies(dist) -> torch.Tensor:
    """H(X_S) for every subset S of positions (bit i of the index = position i in S): ``[2^L]`` float64."""
    L = dist.L
    H = torch.zeros(1 << L, dtype=torch.float64)
    for S in range(1, 1 << L):
        out = [d for d in range(L) if not (S >> d) & 1]
        p = dist.probs.sum(dim=out) if out else dist.probs
        p = p[p > 0]
        H[S] = -(p * p.log()).sum()
    return H


def masked_ce_curve(dist, max_L: int = 12) -> torch.Tensor:
    """c_k, k = 0 … L: Σ over the masks M of k positions of Σ_{i∈M} H(Xⁱ | X_{not M}) (nats), so that the
    exact denoiser's expected cross-entropy over masked positions at ᾱ is f(ᾱ) = Σ_k c_k (1 − ᾱ)^k ᾱ^{L−k}.
    Enumerates the 2^L masks (``L <= max_L``). ``[L + 1]`` float64."""
    L = dist.L
    if L > max_L:
        raise ValueError(f"masked_ce_curve enumerates 2^L masks; L = {L} is more than max_L = {max_L}")
    H, full = _subset_entropies(dist), (1 << L) - 1
    c = torch.zeros(L + 1, dtype=torch.float64)
    for M in range(1, 1 << L):
        U = full ^ M
        c[bin(M).count("1")] += sum(H[U | (1 << i)] - H[U] for i in range(L) if (M >> i) & 1)
    return c


def mdlm_floor(dist, process) -> float:
    """The Bayes floor of MDLM's loss for a masked ``process`` (nats per sequence): in continuous time
    Σ_k c_k B(k, L − k + 1), which equals H(X) for every schedule; with T steps Σ_j (ᾱ_{j−1} − ᾱ_j)/(1 − ᾱ_j) f(ᾱ_j)
    (the D3PM bound of the absorbing process, Austin et al. 2021; Sahoo et al. 2024 eq. 8)."""
    if not process.has_mask:
        raise ValueError(f"process: MDLM's loss is for a masked process, got {process.name}")
    c, L = masked_ce_curve(dist), dist.L
    k = torch.arange(L + 1, dtype=torch.float64)
    if process.continuous:
        beta = torch.exp(torch.lgamma(k[1:]) + torch.lgamma(L - k[1:] + 1) - math.lgamma(L + 1))
        return float((c[1:] * beta).sum())
    a = alpha_bar(process.schedule, torch.arange(process.T + 1, dtype=torch.float64) / process.T)
    f = (c[None, :] * (1 - a[1:, None]) ** k * a[1:, None] ** (L - k)).sum(1)
    return float(((a[:-1] - a[1:]) / (1 - a[1:]) * f).sum())


def _clean_probs(fn, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """fn(x_t, t)[b, i, x₀ⁱ], ``[B, L]`` float64."""
    return fn(x_t, t).to(torch.float64).gather(-1, x0[..., None])[..., 0]


def mdlm_loss(dist, process, fn, t, *, n: int = 4096, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """MDLM's weighted cross-entropy of ``fn`` at each continuous time ``t [m]`` (Sahoo et al. 2024, eq. 10):
    E[−ᾱ'(t)/(1 − ᾱ(t)) Σ_{i masked} −log fn(x_t, t)[i, x₀ⁱ]] over ``n`` draws of x₀ and x_t. Its integral over
    t ∈ [0, 1] is the loss; for the exact denoiser it is H(X). Returns (mean ``[m]``, standard error ``[m]``)."""
    if not (process.has_mask and process.continuous):
        raise ValueError("process: mdlm_loss needs a continuous-time masked process")
    means, ses = [], []
    for tk in torch.as_tensor(t, dtype=torch.float64).reshape(-1):
        x0 = dist.sample(n, generator)
        tt = tk.expand(n)
        x_t = process.q_sample(x0, tt, generator, V=dist.V)
        ce = -(_clean_probs(fn, x_t, tt, x0).clamp_min(1e-300).log() * (x_t == dist.V)).sum(1)
        u = process.times(tt)
        w = -alpha_bar_rate(process.schedule, u) / (1 - alpha_bar(process.schedule, u)).clamp_min(1e-12)
        vals = w * ce
        means.append(vals.mean())
        ses.append(vals.std() / math.sqrt(n))
    return torch.stack(means), torch.stack(ses)


def d3pm_elbo(dist, process, fn, *, steps: int | None = None, n: int = 4096,
              generator: torch.Generator | None = None) -> tuple[float, float, torch.Tensor]:
    """The D3PM bound −log p(x₀) ≤ Σ_k E KL(q(x_{s_k} | x_{t_k}, x₀) ‖ p(x_{s_k} | x_{t_k})) + E[−log p(x₀ | x_{t_1})]
    over the process's time grid of ``steps`` steps (Austin et al. 2021, eq. 1; the prior term is 0: ᾱ = 0 at the
    noise end), with p the ancestral step of ``fn`` and ``n`` draws per step. Returns (the bound, its standard
    error, the per-step terms ``[steps]`` from the noise end to the data)."""
    steps = process.default_steps if steps is None else steps
    grid, V = process.time_grid(steps), dist.V
    terms, var = [], 0.0
    for i in range(steps):
        t, s = grid[i].expand(n), grid[i + 1].expand(n)
        x0 = dist.sample(n, generator)
        x_t = process.q_sample(x0, t, generator, V=V)
        p0 = fn(x_t, t).to(torch.float64)
        if i == steps - 1:  # reconstruction: p(x₀ | x_{t_1}) per position is p0 itself
            vals = -p0.gather(-1, x0[..., None])[..., 0].clamp_min(1e-300).log().sum(1)
        else:
            q = process.posterior(x_t, x0, s, t, V=V)
            p = process.reverse_probs(x_t, p0, s, t)
            ratio = torch.where(q > 0, q / p.clamp_min(1e-300), torch.ones_like(q))
            vals = (q * ratio.log()).sum((1, 2))
        terms.append(vals.mean())
        var += float(vals.var()) / n
    terms = torch.stack(terms)
    return float(terms.sum()), math.sqrt(var), terms
