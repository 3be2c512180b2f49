"""Masked (absorbing) and uniform diffusion over categorical sequences, in discrete and continuous time.

    proc = masked(T=None, V=5)                  # continuous time, t ∈ [0, 1]; the mask is symbol V
    x_t = proc.q_sample(x0 [B, L], t [B], generator=g)
    post = proc.posterior(x_t, x0, s, t)        # q(x_s | x_t, x_0), [B, L, K] (K = V + 1 masked, V uniform)
    x0 = td.sample(fn, proc.prior(B, L), proc, method="ancestral", steps=64, generator=g)

Both processes noise every position independently with the cumulative matrix

    Q̄_t = ᾱ_t I + (1 − ᾱ_t) 1 mᵀ,

m the stationary distribution: the one-hot of the mask for the absorbing process (Austin et al. 2021, D3PM;
Sahoo et al. 2024, MDLM; Shi et al. 2024, MD4) and 1/V for the uniform one (Austin et al. 2021; Hoogeboom et al.
2021). From s to t > s the matrix is the same form with ᾱ_t / ᾱ_s, so the posterior q(x_s | x_t, x₀) and the
reverse step p(x_s | x_t) = Σ_{x₀} q(x_s | x_t, x₀) p(x₀ | x_t) are closed forms per position. In continuous
time (``T=None``, Campbell et al. 2022) the forward generator is β(t)(1 mᵀ − I), β = −ᾱ'/ᾱ, and the reverse
rates are :meth:`reverse_rates`.

Time is the process's own: an integer step k ∈ {0, …, T} (ᾱ at k / T) in discrete time, a float t ∈ [0, 1] in
continuous time; t = 0 is the data. A denoiser is ``fn(x_t [B, L] long, t [B]) -> p(x₀ⁱ = v | x_t) [B, L, V]``.

Why these are not in :data:`toydiff.processes.registry.PROCESSES`: that registry is read by the Gaussian tracks
(the toy and MNIST CLIs' ``--process`` and ``--method`` choices through ``all_methods()``, the MNIST config, the
app's sampler pages), which would then offer "masked" or "maskgit" for continuous data; and the core may not
import :mod:`toydiff.discrete`, so registering from here would make the registry's contents depend on import order.
They have their own :data:`DISCRETE_PROCESSES` and :func:`process_from_dict`; :func:`toydiff.sample` routes
them through their :meth:`sample` by duck typing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch

from toydiff.checks import check_choice, check_int
from toydiff.discrete import samplers
from toydiff.discrete.schedules import SCHEDULES, alpha_bar, alpha_bar_rate

__all__ = ["MaskedProcess", "UniformProcess", "masked", "uniform", "DISCRETE_PROCESSES", "process_from_dict"]

Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _Categorical:
    """What the masked and uniform processes share; a subclass gives its :meth:`stationary` distribution."""

    T: int | None = None
    V: int | None = None
    schedule: str = "linear"
    name: ClassVar[str]
    prediction: ClassVar[str] = "x0-probs"
    default_method: ClassVar[str] = "ancestral"
    #: the ``sample`` options only some methods read (maskgit's ``temperature``)
    options: ClassVar[tuple[str, ...]] = ("temperature",)
    interp: ClassVar[None] = None
    has_mask: ClassVar[bool]

    def __post_init__(self):
        if self.T is not None:
            check_int(self.T, "T", min=1)
        if self.V is not None:
            check_int(self.V, "V", min=2)
        check_choice(self.schedule, "schedule", tuple(SCHEDULES))

    # --- description -------------------------------------------------------------------------------
    @property
    def continuous(self) -> bool:
        """Continuous time (``T is None``: t ∈ [0, 1]) or T discrete steps."""
        return self.T is None

    @property
    def methods(self) -> tuple[str, ...]:
        """The samplers of :data:`toydiff.discrete.samplers.DISCRETE_METHODS` that run on this process."""
        return samplers.methods_for(self)

    @property
    def default_steps(self) -> int:
        return 64 if self.continuous else self.T

    def describe(self) -> str:
        time = "continuous time" if self.continuous else f"T = {self.T} steps"
        return f"{self.name} diffusion ({self.schedule} schedule, {time})"

    def n_states(self, V: int | None = None) -> int:
        """K, the states of x_t: V + 1 with a mask symbol, else V."""
        return self.vocab(V) + int(self.has_mask)

    def vocab(self, V: int | None = None) -> int:
        """The data's V: ``V`` if given (and equal to the process's own when both are set), else ``self.V``."""
        if V is None:
            if self.V is None:
                raise ValueError(f"V: the vocabulary size is unknown; build {self.name}(T, V=...) or pass V=")
            return self.V
        V = check_int(V, "V", min=2)
        if self.V is not None and V != self.V:
            raise ValueError(f"V={V} differs from the process's own V={self.V}")
        return V

    # --- time ---------------------------------------------------------------------------------------
    def times(self, t, batch: int | None = None) -> torch.Tensor:
        """``t`` (a number or ``[B]``) as u ∈ [0, 1] float64 ``[B]``, checked against the process's time type."""
        t = torch.as_tensor(t)
        if t.ndim == 0 and batch is not None:
            t = t.expand(batch)
        if t.ndim != 1 or (batch is not None and t.shape[0] != batch):
            raise ValueError(f"t must be a number or a tensor [{batch or 'B'}], got shape {tuple(t.shape)}")
        if self.continuous:
            u = t.to(torch.float64)
            bad = (u < 0) | (u > 1) | ~torch.isfinite(u)
            if bool(bad.any()):
                raise ValueError("t must lie in [0, 1] (continuous time)")
            return u
        if t.is_floating_point() or t.dtype == torch.bool:
            raise TypeError(f"t must be integer steps 0 … {self.T} (discrete time, T = {self.T}), got {t.dtype}")
        if bool(((t < 0) | (t > self.T)).any()):
            raise ValueError(f"t must lie in 0 … {self.T}")
        return t.to(torch.float64) / self.T

    def alpha_bar(self, t, batch: int | None = None) -> torch.Tensor:
        """ᾱ_t = q(x_tⁱ = x₀ⁱ kept), float64 ``[B]``."""
        return alpha_bar(self.schedule, self.times(t, batch))

    def time_grid(self, steps: int) -> torch.Tensor:
        """``steps + 1`` descending times from the noise end to 0 (long steps in discrete time)."""
        steps = check_int(steps, "steps", min=1)
        if self.continuous:
            return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
        if steps > self.T:
            raise ValueError(f"steps must be at most T = {self.T}, got {steps}")
        return torch.linspace(self.T, 0, steps + 1, dtype=torch.float64).round().long()

    # --- the forward process ------------------------------------------------------------------------
    def stationary(self, V: int) -> torch.Tensor:
        """m, the distribution x_t tends to, ``[K]`` float64."""
        raise NotImplementedError

    def marginal_probs(self, p0: torch.Tensor, t) -> torch.Tensor:
        """q(x_t | x₀) mixed over ``p0 [B, L, V]``: ᾱ_t p0 + (1 − ᾱ_t) m, ``[B, L, K]`` float64."""
        V = self.vocab(p0.shape[-1])
        a = self.alpha_bar(t, p0.shape[0])[:, None, None]
        return a * _pad(p0.to(torch.float64), self.n_states(V)) + (1 - a) * self.stationary(V)

    def marginal(self, x0: torch.Tensor, t, V: int | None = None) -> torch.Tensor:
        """q(x_t | x₀) of clean ``x0 [B, L]`` long: ``[B, L, K]`` float64 (Austin et al. 2021, eq. 3)."""
        V = self.vocab(V)
        return self.marginal_probs(torch.nn.functional.one_hot(_check_x(x0, "x0", V), V), t)

    def transition(self, s, t, V: int | None = None, batch: int | None = None) -> torch.Tensor:
        """Q_{s→t}[j, k] = q(x_t = k | x_s = j) for s ≤ t: ``[B, K, K]`` float64 (ᾱ_t / ᾱ_s in place of ᾱ)."""
        V = self.vocab(V)
        a_s, a_t = self.alpha_bar(s, batch), self.alpha_bar(t, batch)
        if bool((a_t > a_s).any()):
            raise ValueError("transition(s, t) needs s <= t")
        r = torch.where(a_s > 0, a_t / a_s.clamp_min(1e-300), torch.zeros_like(a_s))[:, None, None]
        K = self.n_states(V)
        return r * torch.eye(K, dtype=torch.float64) + (1 - r) * self.stationary(V)

    def likelihood(self, x_t: torch.Tensor, t, V: int) -> torch.Tensor:
        """q(x_tⁱ | x₀ⁱ = v) for every v: ``[B, L, V]`` float64 (what the exact denoiser weighs the table by)."""
        x_t = _check_x(x_t, "x_t", self.n_states(V))
        a = self.alpha_bar(t, x_t.shape[0])[:, None, None]
        hit = torch.nn.functional.one_hot(x_t, self.n_states(V))[..., :V].to(torch.float64)
        return a * hit + (1 - a) * self.stationary(V)[x_t][..., None]

    def q_sample(self, x0: torch.Tensor, t, generator: torch.Generator | None = None, V: int | None = None
                 ) -> torch.Tensor:
        """Draw x_t ~ q(x_t | x₀) for ``x0 [B, L]`` long: each token is replaced, with probability 1 − ᾱ_t, by a draw
        from m (the mask, or a uniform symbol). ``t`` a number or ``[B]`` in process time. Returns ``[B, L]`` long."""
        V = self.vocab(V)
        x0 = _check_x(x0, "x0", V)
        a = self.alpha_bar(t, x0.shape[0])[:, None]
        replace = torch.rand(x0.shape, generator=generator, dtype=torch.float64) >= a
        return torch.where(replace, self.draw_stationary(x0.shape, V, generator), x0)

    def draw_stationary(self, shape, V: int, generator=None) -> torch.Tensor:
        raise NotImplementedError

    def prior(self, n: int, L: int, V: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_T ``[n, L]`` long: draws from m (all masks, or uniform symbols)."""
        return self.draw_stationary((check_int(n, "n", min=1), check_int(L, "L", min=1)), self.vocab(V), generator)

    # --- the reverse process ------------------------------------------------------------------------
    def posterior(self, x_t: torch.Tensor, x0: torch.Tensor, s, t, V: int | None = None) -> torch.Tensor:
        """The exact q(x_s | x_t, x₀) for s < t, per position: ``[B, L, K]`` float64 (Austin et al. 2021, eq. 4)."""
        V = self.vocab(V)
        return self.reverse_probs(x_t, torch.nn.functional.one_hot(_check_x(x0, "x0", V), V), s, t)

    def reverse_probs(self, x_t: torch.Tensor, p0: torch.Tensor, s, t) -> torch.Tensor:
        """p(x_s | x_t) = Σ_v p0[v] q(x_s | x_t, x₀ = v) per position, for ``p0 [B, L, V]`` = p(x₀ⁱ | x_t)
        (the ancestral step of D3PM / MDLM): ``[B, L, K]`` float64. Built as
        Q_{s→t}[k, x_t] · Σ_v (p0[v] / Q̄_t[v, x_t]) Q̄_s[v, k], normalised."""
        V, B = self.vocab(p0.shape[-1]), x_t.shape[0]
        a_s, a_t = self.alpha_bar(s, B)[:, None, None], self.alpha_bar(t, B)[:, None, None]
        if bool((a_t > a_s).any()):
            raise ValueError("reverse_probs(s, t) needs s <= t")
        C = self._weighted(x_t, p0, a_t, a_s)
        m_xt = self.stationary(V)[x_t][..., None]
        r = torch.where(a_s > 0, a_t / a_s.clamp_min(1e-300), torch.zeros_like(a_s))
        R = r * torch.nn.functional.one_hot(x_t, self.n_states(V)) + (1 - r) * m_xt
        out = R * C
        total = out.sum(-1, keepdim=True)
        if bool((total <= 0).any()):
            raise ValueError("p0 gives probability zero to x_t (an x_t no clean sequence under p0 leads to)")
        return out / total

    def _weighted(self, x_t: torch.Tensor, p0: torch.Tensor, a_t: torch.Tensor, a_u: torch.Tensor) -> torch.Tensor:
        """Σ_v (p0[v] / Q̄_t[v, x_t]) Q̄_u[v, k] over k: ``[B, L, K]`` (0 / 0 terms dropped)."""
        V = p0.shape[-1]
        K = self.n_states(V)
        x_t = _check_x(x_t, "x_t", K)
        hit = torch.nn.functional.one_hot(x_t, K).to(torch.float64)
        A = a_t * hit + (1 - a_t) * self.stationary(V)[x_t][..., None]
        p0k = _pad(p0.to(torch.float64), K)
        w = torch.where(A > 0, p0k / A.clamp_min(1e-300), torch.zeros_like(A))
        return a_u * w + (1 - a_u) * self.stationary(V) * w.sum(-1, keepdim=True)

    def reverse_rates(self, x_t: torch.Tensor, p0: torch.Tensor, t) -> torch.Tensor:
        """The continuous-time reverse rates R̂_t(x_tⁱ → j) = β m[x_tⁱ] Σ_v p0[v] Q̄_t[v, j] / Q̄_t[v, x_tⁱ], β = −ᾱ'/ᾱ
        (Campbell et al. 2022, Prop. 1), zero at j = x_tⁱ: ``[B, L, K]`` float64. ᾱ is floored at 1e-6 so the
        rates stay finite at t = 1."""
        V, B = p0.shape[-1], x_t.shape[0]
        u = self.times(t, B)
        a = alpha_bar(self.schedule, u).clamp_min(1e-6)[:, None, None]
        beta = -alpha_bar_rate(self.schedule, u)[:, None, None] / a
        rates = beta * self.stationary(V)[x_t][..., None] * self._weighted(x_t, p0, a, a)
        return rates * (1 - torch.nn.functional.one_hot(x_t, self.n_states(V)))

    # --- the process protocol -----------------------------------------------------------------------
    def network_fn(self, model: Fn) -> Fn:
        """``model`` unchanged: it is called as ``model(x_t [B, L] long, t [B]) -> p(x₀ⁱ | x_t) [B, L, V]``."""
        return model

    def exact_fn(self, table) -> Fn:
        """The exact denoiser of a :class:`~toydiff.discrete.TableDistribution` under this process."""
        return table.denoiser(self)

    def sample(self, fn: Fn, x_T: torch.Tensor, *, method: str | None = None, steps: int | None = None,
               **options) -> torch.Tensor:
        """Run ``method`` (default ``"ancestral"``) from ``x_T [B, L]`` over ``steps`` steps to x₀ ``[B, L]``
        (:func:`toydiff.discrete.samplers.run`; ``generator=``, ``callback=``)."""
        return samplers.run(self, fn, x_T, method=method or self.default_method,
                            steps=self.default_steps if steps is None else steps, **options)

    def nfe(self, method: str, steps: int) -> int:
        return samplers.nfe(self, method, steps)

    def to_dict(self) -> dict:
        return {"process": self.name, "T": self.T, "V": self.V, "schedule": self.schedule}

    @classmethod
    def from_dict(cls, d: dict) -> "_Categorical":
        return cls(T=d.get("T"), V=d.get("V"), schedule=d.get("schedule", "linear"))


@dataclass(frozen=True)
class MaskedProcess(_Categorical):
    """Absorbing diffusion: a token is replaced by the mask (symbol V) with probability 1 − ᾱ_t and stays masked
    (D3PM absorbing, Austin et al. 2021; MDLM, Sahoo et al. 2024; MD4, Shi et al. 2024)."""

    name: ClassVar[str] = "masked"
    has_mask: ClassVar[bool] = True

    def stationary(self, V: int) -> torch.Tensor:
        m = torch.zeros(V + 1, dtype=torch.float64)
        m[V] = 1.0
        return m

    def draw_stationary(self, shape, V: int, generator=None) -> torch.Tensor:
        return torch.full(tuple(shape), V, dtype=torch.long)


@dataclass(frozen=True)
class UniformProcess(_Categorical):
    """Uniform diffusion: a token is replaced by a uniform symbol with probability 1 − ᾱ_t (D3PM uniform, Austin
    et al. 2021; multinomial diffusion, Hoogeboom et al. 2021)."""

    name: ClassVar[str] = "uniform"
    has_mask: ClassVar[bool] = False

    def stationary(self, V: int) -> torch.Tensor:
        return torch.full((V,), 1.0 / V, dtype=torch.float64)

    def draw_stationary(self, shape, V: int, generator=None) -> torch.Tensor:
        return torch.randint(0, V, tuple(shape), generator=generator)


def masked(T: int | None = None, V: int | None = None, *, schedule: str = "linear") -> MaskedProcess:
    """The absorbing process: ``T`` discrete steps, or continuous time with ``T=None``; ``V`` the data's symbols
    (the mask is V; a process without V learns it from the denoiser's output or ``V=`` arguments)."""
    return MaskedProcess(T=T, V=V, schedule=schedule)


def uniform(T: int | None = None, V: int | None = None, *, schedule: str = "linear") -> UniformProcess:
    """The uniform process: ``T`` discrete steps, or continuous time with ``T=None``."""
    return UniformProcess(T=T, V=V, schedule=schedule)


#: the discrete processes by name (their own registry: see the module docstring for why not PROCESSES)
DISCRETE_PROCESSES: dict[str, type] = {"masked": MaskedProcess, "uniform": UniformProcess}


def process_from_dict(d: dict) -> _Categorical:
    """The process :meth:`to_dict` wrote."""
    return DISCRETE_PROCESSES[check_choice(d.get("process"), "process", tuple(DISCRETE_PROCESSES))].from_dict(d)


def _pad(p: torch.Tensor, K: int) -> torch.Tensor:
    """``p [..., V]`` with zeros appended to ``[..., K]`` (the mask column)."""
    return torch.nn.functional.pad(p, (0, K - p.shape[-1])) if K > p.shape[-1] else p


def _check_x(x, name: str, K: int) -> torch.Tensor:
    """``x [B, L]`` as long with symbols in 0 … K − 1 (TypeError / ValueError naming ``name``)."""
    if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.dtype == torch.bool or x.ndim != 2:
        raise TypeError(f"{name} must be an integer tensor [B, L], got {getattr(x, 'dtype', type(x).__name__)} "
                        f"{tuple(getattr(x, 'shape', ()))}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= K):
        raise ValueError(f"{name}: symbols must lie in 0 … {K - 1}")
    return x.long()
