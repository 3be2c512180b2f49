"""Training objectives of the discrete processes, in the shape the engine (:class:`toydiff.training.Trainer`) takes:
``loss(model, x0, generator=) -> (scalar, LossTerms)``, held-out draws and loss, ``bucket_sums``, ``metadata``,
``check_resume``.

- :class:`MDLMObjective` (masked process): MDLM's ELBO-weighted cross-entropy on the masked positions (Sahoo et
  al. 2024, eq. 10; Shi et al. 2024) with the carry-over ("SUBS") parameterisation: an unmasked token is its
  own prediction, a masked one gets softmax over the V data symbols (never the mask). Per sequence,

      continuous time:  w(t) Σ_{i: x_tⁱ = mask} −log p_θ(x₀ⁱ | x_t),   w = −ᾱ'(t) / (1 − ᾱ(t)),  t ~ U(0, 1]
      T steps:          T (ᾱ_{k−1} − ᾱ_k) / (1 − ᾱ_k) × the same sum,                            k ~ U{1 … T}

  whose expectation is the (negative) ELBO; its Bayes floor is :func:`toydiff.discrete.judge.mdlm_floor`
  (H(X) in continuous time). Training draws t stratified over the batch (MDLM's low-discrepancy sampler).
- :class:`D3PMObjective` (uniform process, or any): D3PM's hybrid loss (Austin et al. 2021, eq. 5)
  L_vb + λ L_ce on a grid of ``steps`` steps (the process's T in discrete time): for a step k drawn uniformly,
  ``steps`` · Σᵢ KL(q(x_s | x_t, x₀) ‖ p_θ(x_s | x_t)) (at the last step −log p_θ(x₀ | x_t)) plus
  λ Σᵢ −log p̃_θ(x₀ⁱ | x_t), with p_θ the ancestral step of the x₀ prediction p̃_θ. Its floor is the exact
  denoiser's value (:func:`toydiff.discrete.judge.d3pm_elbo` for λ = 0).

A held-out loss takes the sampler's view ``fn(x_t, t) -> p(x₀ⁱ | x_t) [B, L, V]`` (:meth:`network_fn` of a
model, or ``dist.denoiser(process)``), so the exact denoiser's held-out loss is the Bayes floor on the very same
draws. Held-out draws are ``t [N]`` and ``noise [N, L, 2]`` uniforms (whether each token is replaced, and by which
symbol of the stationary distribution), so x_t is a function of (x₀, t, noise).
"""

from __future__ import annotations

from typing import Callable, ContextManager

import torch

from toydiff.checks import check_choice, check_int, check_number
from toydiff.discrete.schedules import alpha_bar_rate
from toydiff.processes.base import CheckpointMismatch
from toydiff.training.losses import LossTerms, batched_held_out

__all__ = ["MDLMObjective", "D3PMObjective", "OBJECTIVES", "objective_for"]

Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: the smallest continuous time drawn (the MDLM weight 1/t is finite there)
T_MIN = 1e-4


class _Objective:
    """What both objectives share: the process, corruption from fixed uniforms, buckets, checkpoint keys."""

    name: str = ""

    def __init__(self, process):
        if not hasattr(process, "q_sample") or not hasattr(process, "reverse_probs"):
            raise TypeError(f"process must be a toydiff.discrete process, got {type(process).__name__}")
        self.process, self.V = process, process.vocab()
        self.K, self.schedule = process.n_states(), None

    # --- the forward process from fixed uniforms --------------------------------------------------------
    def corrupt(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t ``[B, L]`` from ``x0 [B, L]``, times ``t [B]`` and uniforms ``noise [B, L, 2]``: token i is replaced
        when noise[i, 0] ≥ ᾱ_t, by the stationary symbol at quantile noise[i, 1] (the law of q_sample)."""
        a = self.process.alpha_bar(t, x0.shape[0])[:, None]
        cdf = self.process.stationary(self.V).cumsum(0)
        draw = torch.searchsorted(cdf, noise[..., 1].contiguous(), right=True).clamp_max(self.K - 1)
        return torch.where(noise[..., 0] >= a, draw, x0)

    def draw_times(self, n: int, generator, *, stratified: bool) -> torch.Tensor:
        """Times ``[n]`` in process time: u ∈ (0, 1], i.i.d. or stratified ((r + i/n) mod 1 for one uniform r:
        MDLM's low-discrepancy sampler), mapped by :meth:`_time_of`."""
        r = torch.rand(1 if stratified else n, generator=generator, dtype=torch.float64)
        u = torch.remainder(r + torch.arange(n, dtype=torch.float64) / n, 1.0) if stratified else r
        return self._time_of(1.0 - u)  # in (0, 1]

    def _time_of(self, u: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def held_out_draws(self, shape, *, seed: int, noise_dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed ``t [N]`` (i.i.d.) and ``noise [N, L, 2]`` uniforms from a CPU generator seeded ``seed``."""
        g = torch.Generator().manual_seed(check_int(seed, "seed", min=0))
        t = self.draw_times(shape[0], g, stratified=False)
        return t, torch.rand((*tuple(shape), 2), generator=g, dtype=torch.float64)

    def bucket_sums(self, values: torch.Tensor, t: torch.Tensor, n_buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per equal-width bucket of u ∈ [0, 1] (process time scaled) ``(sum, count)`` of ``values [B]``."""
        u = self.process.times(t.cpu())
        b = (u * n_buckets).long().clamp_(0, n_buckets - 1)
        v = values.detach().double().cpu()
        s = torch.zeros(n_buckets, dtype=torch.float64).index_add_(0, b, v)
        return s, torch.zeros_like(s).index_add_(0, b, torch.ones_like(v))

    # --- the model as the samplers see it -----------------------------------------------------------------
    def log_probs(self, model, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log p_θ(x₀ⁱ = v | x_t), ``[B, L, V]`` (differentiable; float32 from the network)."""
        return torch.log_softmax(model(x_t, self.process.times(t).float()), dim=-1)

    def network_fn(self, model) -> Fn:
        """``fn(x_t [B, L], t [B]) -> p(x₀ⁱ = v | x_t) [B, L, V]`` float64: the sampler's and the judge's view."""
        def fn(x_t: torch.Tensor, t) -> torch.Tensor:
            t = torch.as_tensor(t)
            t = t.expand(x_t.shape[0]) if t.ndim == 0 else t
            return self.log_probs(model, x_t, t).double().exp()

        return fn

    # --- the loss --------------------------------------------------------------------------------------
    def per_sample(self, logp: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The loss of each sequence ``[B]`` from log p(x₀ⁱ = v | x_t) ``logp [B, L, V]``."""
        raise NotImplementedError

    def loss(self, model, x0: torch.Tensor, *, generator: torch.Generator | None = None,
             **model_kwargs) -> tuple[torch.Tensor, LossTerms]:
        """(the scalar to back-propagate, :class:`LossTerms` with ``t [B]``) for ``x0 [B, L]`` long."""
        if model_kwargs:
            raise TypeError(f"the discrete objectives take no model keywords, got {sorted(model_kwargs)}")
        t = self.draw_times(x0.shape[0], generator, stratified=True)
        noise = torch.rand((*x0.shape, 2), generator=generator, dtype=torch.float64)
        x_t = self.corrupt(x0, t, noise)
        terms = LossTerms(per_sample=self.per_sample(self.log_probs(model, x_t, t), x0, x_t, t), t=t)
        return terms.loss, terms

    def held_out_loss(self, fn: Fn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, *, n_buckets: int = 10,
                      batch_size: int = 65_536, model_kwargs: dict | None = None,
                      context: Callable[[], ContextManager] | None = None) -> tuple[float, list[float]]:
        """(mean, per time bucket) of the loss of ``fn`` (probabilities) on the fixed ``(x0, t, noise)``."""
        def per(sl, kw):
            x_t = self.corrupt(x0[sl], t[sl], noise[sl])
            logp = fn(x_t, t[sl]).double().clamp_min(1e-300).log()
            return self.per_sample(logp, x0[sl], x_t, t[sl])

        return batched_held_out(per, t, self.bucket_sums, n_buckets=n_buckets, batch_size=batch_size,
                                model_kwargs=model_kwargs, context=context)

    def exact_floor(self, dist) -> float | None:
        """The Bayes floor of this loss from the core's closed form, where there is one (None: only the Monte
        Carlo floor, the exact denoiser's held-out loss)."""
        return None

    # --- checkpoints -----------------------------------------------------------------------------------
    def options(self) -> dict:
        return {}

    def metadata(self) -> dict:
        """The checkpoint keys: the process's (``process``, ``T``, ``V``, ``schedule``) and the objective's."""
        return self.process.to_dict() | {"objective": self.name, "objective_options": self.options()}

    def check_resume(self, meta: dict) -> None:
        there = ({k: meta.get(k) for k in self.process.to_dict()}, meta.get("objective"), meta.get("objective_options"))
        here = (self.process.to_dict(), self.name, self.options())
        if there != here:
            raise CheckpointMismatch(f"was trained with process/objective {there}, not {here}")


class MDLMObjective(_Objective):
    """MDLM's loss for a masked process (see the module docstring)."""

    name = "mdlm"

    def __init__(self, process):
        super().__init__(process)
        if not process.has_mask:
            raise ValueError(f"process: MDLM's loss needs a masked process, got {process.name}")

    def _time_of(self, u: torch.Tensor) -> torch.Tensor:
        if self.process.continuous:
            return u.clamp_min(T_MIN)
        return (u * self.process.T).ceil().long().clamp(1, self.process.T)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """The ELBO weight of each time ``[B]`` float64: −ᾱ'/(1 − ᾱ), or T (ᾱ_{k−1} − ᾱ_k)/(1 − ᾱ_k)."""
        p = self.process
        a = p.alpha_bar(t)
        if p.continuous:
            return -alpha_bar_rate(p.schedule, p.times(t)) / (1 - a).clamp_min(1e-12)
        return p.T * (p.alpha_bar(t - 1) - a) / (1 - a).clamp_min(1e-12)

    def log_probs(self, model, x_t, t):
        """SUBS: log-softmax over the V symbols at masked positions; log one-hot (0 / −∞-like) elsewhere."""
        logp = super().log_probs(model, x_t, t)
        keep = x_t < self.V
        carry = torch.nn.functional.one_hot(x_t.clamp_max(self.V - 1), self.V).to(logp.dtype)
        return torch.where(keep[..., None], (carry - 1) * 1e4, logp)

    def exact_floor(self, dist) -> float:
        """:func:`toydiff.discrete.judge.mdlm_floor`: H(X) in continuous time, the T-step bound otherwise."""
        from toydiff.discrete.judge import mdlm_floor

        return mdlm_floor(dist, self.process)

    def per_sample(self, logp, x0, x_t, t):
        ce = -logp.gather(-1, x0[..., None])[..., 0].double()  # [B, L]
        return self.weight(t) * (ce * (x_t == self.V)).sum(1)


class D3PMObjective(_Objective):
    """D3PM's hybrid loss L_vb + λ L_ce over ``steps`` steps (default: the process's T, else 64)."""

    name = "d3pm"

    def __init__(self, process, *, hybrid: float = 0.01, steps: int | None = None):
        super().__init__(process)
        self.hybrid = check_number(hybrid, "hybrid", min=0.0)
        self.steps = process.default_steps if steps is None else check_int(steps, "steps", min=1)
        self.grid = process.time_grid(self.steps)  # descending, steps + 1 times

    def options(self) -> dict:
        return {"hybrid": self.hybrid, "steps": self.steps}

    def _time_of(self, u: torch.Tensor) -> torch.Tensor:
        k = (u * self.steps).ceil().long().clamp(1, self.steps)  # 1 … steps from the data end
        return self.grid[self.steps - k]

    def _previous(self, t: torch.Tensor) -> torch.Tensor:
        """The grid time s one step toward the data from each ``t [B]``."""
        up = self.grid.flip(0)
        return up[(torch.searchsorted(up, t.to(up.dtype)) - 1).clamp_min(0)]

    def per_sample(self, logp, x0, x_t, t):
        p = self.process
        s = self._previous(t)
        p0 = logp.double().exp()
        q = p.posterior(x_t, x0, s, t, V=self.V)  # [B, L, K]
        pr = p.reverse_probs(x_t, p0, s, t)
        kl = torch.where(q > 0, q * (q.clamp_min(1e-300).log() - pr.clamp_min(1e-300).log()), torch.zeros_like(q))
        ce = -logp.gather(-1, x0[..., None])[..., 0].double().sum(1)
        return self.steps * kl.sum((1, 2)) + self.hybrid * ce


#: the loss each discrete process trains with, by process name
OBJECTIVES: dict[str, type] = {"masked": MDLMObjective, "uniform": D3PMObjective}


def objective_for(process, objective: str | None = None, **options) -> _Objective:
    """The objective ``objective`` (``"mdlm"``, ``"d3pm"``; default: the process's own, :data:`OBJECTIVES`)
    for ``process`` with ``options`` (D3PM: ``hybrid``, ``steps``)."""
    by_name = {cls.name: cls for cls in OBJECTIVES.values()}
    cls = OBJECTIVES[process.name] if objective is None else by_name[check_choice(objective, "objective",
                                                                                  tuple(by_name))]
    return cls(process, **options)
