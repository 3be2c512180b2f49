"""What every sampler step shares during one run: :class:`StepContext` (VP steps), the generator check of
every sampler, and the DPM-Solver++(2M) update both the VP and the interpolant samplers use.

Below :mod:`toydiff.sampling.vp_steps`, :mod:`toydiff.sampling.flow_steps` and :mod:`toydiff.sampling.loop`,
so that the step modules need not import the entry point that names them.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from tqdm.auto import tqdm

from toydiff.processes.forward import _eps_to_x0, _x0_to_eps, randn_like
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["FiniteProbe", "StepContext", "check_generator", "dpmpp_2m_update", "progress_bar"]

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_generator(generator, batch: int) -> None:
    """None, one ``torch.Generator``, or a list of ``batch`` of them (per-sample seeds); else a TypeError /
    ValueError naming ``generator``."""
    if generator is None or isinstance(generator, torch.Generator):
        return
    if not isinstance(generator, (list, tuple)) or not all(isinstance(g, torch.Generator) for g in generator):
        raise TypeError(f"generator must be a torch.Generator, a list of them or None, got {type(generator).__name__}")
    if len(generator) != batch:
        raise ValueError(f"generator: got {len(generator)} generators for a batch of {batch}")


def progress_bar(pairs: list, method: str, progress: bool):
    """``pairs`` behind a tqdm bar when ``progress`` and stderr is a terminal (``disable=None``): none in logs or
    pipes, where a sampler's error must stay the one line on stderr."""
    return tqdm(pairs, desc=f"sampling ({method})", leave=False, disable=None) if progress else pairs


class FiniteProbe:
    """The non-finite check every sampler context shares (:class:`StepContext` for the VP steps,
    :class:`toydiff.sampling.flow_steps.FlowContext` for the interpolant steps): :meth:`_finite` probes each
    network output on its sum, :meth:`_refuse_non_finite` raises the ``ValueError`` naming method, step and t,
    :meth:`check_result` scans the result once. A subclass sets ``method`` and ``step`` and names the call
    in ``what`` (``"eps_fn"``, ``"fn"``)."""

    __slots__ = ("method", "step", "_calls")

    #: check every network output for NaN / inf; only ``bench/sampler_overhead.py`` turns it off, to measure
    #: what the check costs
    check_finite: bool = True
    #: above ``probe_size`` entries, the output is probed at every ``probe_every``-th evaluation on a window of
    #: ``probe_size`` contiguous entries that moves on each time: a NaN that stays in place is seen within
    #: ``probe_every * numel / probe_size`` evaluations, and always by the final scan (:meth:`check_result`)
    probe_size: int = 1024
    probe_every: int = 2
    #: the name of the network callable in error messages
    what: str = "eps_fn"

    def _finite(self, eps: torch.Tensor) -> bool:
        """Whether the probed part of ``eps`` sums to a finite number: all of it up to ``probe_size`` entries;
        above, a window of ``probe_size`` contiguous entries at every ``probe_every``-th evaluation, the window
        moving on each time."""
        self._calls += 1
        n = eps.numel()
        if n <= self.probe_size:
            return math.isfinite(float(eps.sum()))
        if self._calls % self.probe_every:
            return True
        start = (self._calls // self.probe_every * self.probe_size) % n
        return math.isfinite(float(eps.reshape(-1)[start:start + self.probe_size].sum()))

    def where(self, t) -> str:
        """``"sample(method='ddim') at step 3 (t = 699)"``: where a run went wrong, for error messages."""
        return f"sample(method={self.method!r}) at step {self.step} (t = {t})"

    def check_result(self, x: torch.Tensor, t) -> torch.Tensor:
        """``x`` (the run's result, after the last step at ``t``) if finite: once per run, for an update or a
        projection that overflowed although every network output was finite."""
        bad = int((~torch.isfinite(x)).sum()) if self.check_finite and not math.isfinite(float(x.sum())) else 0
        if bad:
            raise ValueError(f"{self.where(t)}: the result has {bad} NaN or infinite value(s) out of {x.numel()} "
                             f"although no probed {self.what} output was (an update or project overflowed, or "
                             f"{self.what} went non-finite in entries the per-step probe had not reached yet)")
        return x

    def _refuse_non_finite(self, x: torch.Tensor, eps: torch.Tensor, t) -> None:
        """Raise the ValueError for a non-finite output (a sum that overflowed while every entry is finite passes)."""
        bad = int((~torch.isfinite(eps)).sum())
        if bad == 0:
            return
        cause = ("its input x_t was already non-finite (an earlier update overflowed, or an earlier output "
                 "was non-finite in entries the per-step probe skipped)"
                 if not bool(torch.isfinite(x).all()) else "from a finite x_t")
        raise ValueError(f"{self.where(t)}: {self.what} returned {bad} NaN or infinite value(s) out of {eps.numel()}, "
                         f"{cause}")


class StepContext(FiniteProbe):
    """What every method's step shares during one run of :func:`toydiff.sampling.loop.sample`.

    ``denoise(x, t)`` is the one place the denoiser is called; ``alpha_bar(t)`` looks up ᾱ as a Python
    float (1.0 at ``t = -1``); ``noise(x)`` draws N(0, I) like ``x`` from the run's generator(s);
    ``eta`` / ``variance`` are the run's options; ``churn`` the EDM sampler's ``(s_churn, s_noise, s_tmin, s_tmax)``;
    ``n_steps`` the run's number of steps (set by :func:`~toydiff.sampling.loop.sample`); ``memory`` is a dict a
    multistep method keeps its history in (fresh for every run).
    """

    __slots__ = ("eps_fn", "eta", "variance", "generator", "clip_x0", "memory", "churn", "n_steps", "_ab",
                 "_shape", "_t")

    def __init__(self, eps_fn: EpsFn, schedule: NoiseSchedule, x_T: torch.Tensor, *, eta: float = 0.0,
                 variance: str = "beta", generator=None, clip_x0: float | None = None, method: str = "?",
                 churn: tuple[float, float, float, float] = (0.0, 1.0, 0.0, math.inf), n_steps: int = 0):
        self.eps_fn, self.eta, self.variance = eps_fn, eta, variance
        self.generator, self.clip_x0, self.memory = generator, clip_x0, {}
        self.churn, self.n_steps = churn, n_steps
        self.method, self.step = method, 0  # the step index, set by sample() before each step
        self._ab = schedule._ab_list
        self._shape = x_T.shape
        self._t = torch.empty(x_T.shape[0], dtype=torch.long, device=x_T.device)  # [B], refilled per call
        self._calls = 0

    def alpha_bar(self, t: int) -> float:
        """ᾱ_t as a Python float; ``t = -1`` (the clean sample) gives 1.0."""
        return 1.0 if t < 0 else self._ab[t]

    def denoise(self, x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """ε̂ and x̂_0 = (x_t − sqrt(1 − ᾱ_t) ε̂)/sqrt(ᾱ_t) at ``x`` ``[B, *event]``, step ``t``.

        With ``clip_x0``, x̂_0 is clamped to [−clip_x0, clip_x0] and ε̂ recomputed from it, so the pair
        stays consistent (x_t = sqrt(ᾱ_t) x̂_0 + sqrt(1 − ᾱ_t) ε̂) and every method sees the clipped estimate.
        Every denoiser output of every method passes through here, once per evaluation: checks on it go here.
        A NaN or ±inf in ε̂ makes a sum over it non-finite; only then is ε̂ scanned, and a ``ValueError`` names
        the method, step and t. Up to ``probe_size`` entries the sum covers all of ε̂; above, it covers a window
        of ``probe_size`` contiguous entries at every second evaluation that moves on each time (:meth:`_finite`),
        so the check costs a fixed ~1k additions per two evaluations at any batch size. A denoiser gone bad (NaN weights, overflow)
        fills every window at once; a lone NaN stays where it is through every update (each is elementwise),
        so a later window or :meth:`check_result`'s one scan of the result finds it: nothing non-finite is
        returned.
        """
        eps = self.eps_fn(x, self._t.fill_(t))
        if not isinstance(eps, torch.Tensor) or eps.shape != self._shape:
            got = getattr(eps, "shape", type(eps).__name__)
            raise ValueError(f"eps_fn returned {got}; expected shape {tuple(self._shape)}")
        eps = eps.to(x.dtype)
        if self.check_finite and not self._finite(eps):
            self._refuse_non_finite(x, eps, t)
        ab_t = self._ab[t]
        x0 = _eps_to_x0(x, eps, ab_t)
        if self.clip_x0 is not None:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            eps = _x0_to_eps(x, x0, ab_t)
        return eps, x0

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """N(0, I) noise ``[B, *event]`` from the run's generator (or one generator per sample)."""
        return randn_like(x, self.generator)


def dpmpp_2m_update(x: torch.Tensor, x0: torch.Tensor, prev: tuple[torch.Tensor, float] | None, lam_t: float,
                    lam_p: float, sigma_ratio: float, alpha_p: float) -> torch.Tensor:
    """The DPM-Solver++(2M) update (Lu et al. 2022, Algorithm 2) for any Gaussian path, shared by the VP sampler
    and :mod:`toydiff.sampling.flow_steps`: x_{t'} = (σ_{t'}/σ_t) x_t − α_{t'} (e^{−h} − 1) D with h = λ_{t'} − λ_t,
    D = (1 + 1/(2r)) x̂_0 − x̂_0^{prev}/(2r), r = (λ_t − λ_prev)/h, and D = x̂_0 without a ``prev = (x̂_0, λ)``.
    ``x``, ``x0``: ``[B, *event]``; ``sigma_ratio`` = σ_{t'}/σ_t, ``alpha_p`` = α_{t'}."""
    h = lam_p - lam_t
    d = x0
    if prev is not None:
        prev_x0, prev_lam = prev
        r = (lam_t - prev_lam) / h
        d = (1.0 + 0.5 / r) * x0 - (0.5 / r) * prev_x0
    return sigma_ratio * x - alpha_p * math.expm1(-h) * d
