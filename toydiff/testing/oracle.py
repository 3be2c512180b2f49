"""The exact oracle a sampler under test runs on, and the exact probability-flow ODE it is compared with.

A :class:`Problem` bundles a discrete VP schedule (ᾱ_t, ``t = 0 .. T-1``), a Gaussian mixture (the data) and a
batch of starting points. Its :meth:`Problem.recorder` hands a sampler the exact noise prediction
ε*(x_t, t) = −sqrt(1 − ᾱ_t) ∇ log p_t(x_t) (:meth:`toydiff.GaussianMixture.eps_star`) and writes down every
level the sampler asks about. Levels are kept as Karras et al. 2022's σ = sqrt((1 − ᾱ)/ᾱ): an integer t maps
to ᾱ_t; a fractional t to σ interpolated linearly between neighbouring steps (diffusers' convention for its
sigma schedulers); σ-space samplers (k-diffusion) give σ itself.

The reference (:func:`pf_ode`) is the probability-flow ODE (Song et al. 2021) in Karras' scaled variable
x̃ = x/sqrt(ᾱ): dx̃/dσ = ε*(x̃/sqrt(1 + σ²), ᾱ = 1/(1 + σ²)), solved by scipy's ``solve_ivp`` (DOP853, tight
tolerances) from the sampler's own first level to its own last one (σ = 0 for the clean sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from toydiff.processes import schedules
from toydiff.exact.mixture import GaussianMixture
from toydiff.processes.schedules import NoiseSchedule
from toydiff.testing.deadline import Deadline

__all__ = ["Problem", "Recorder", "OracleCallError", "default_problem", "pf_ode", "sigma_of_alpha_bar"]


class OracleCallError(ValueError):
    """The sampler asked the denoiser about a timestep outside ``[0, T - 1]`` (diffusers' t = −1, say)."""


def sigma_of_alpha_bar(ab) -> torch.Tensor:
    """σ = sqrt((1 − ᾱ)/ᾱ), float64, elementwise."""
    ab = torch.as_tensor(ab, dtype=torch.float64)
    return ((1 - ab) / ab).sqrt()


@dataclass(frozen=True)
class Problem:
    """An exact test problem: ``schedule`` (T steps), ``mixture`` (D dims) and starting noise ``x_T [B, D]``.

    ``x_T`` is the state at the sampler's first (noisiest) level in the VP convention
    x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε; a σ-space sampler starts from x_T/sqrt(ᾱ) at its first σ.
    """

    schedule: NoiseSchedule
    mixture: GaussianMixture
    x_T: torch.Tensor

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t ``[T]`` float64 (a copy)."""
        return self.schedule.alpha_bars.clone()

    @property
    def sigmas(self) -> torch.Tensor:
        """σ_t ``[T]`` float64, ascending in t."""
        return sigma_of_alpha_bar(self.schedule.alpha_bars)

    def sigma_at(self, t: float) -> float:
        """σ at a (possibly fractional) timestep ``t`` in ``[0, T - 1]``; ``t = -1`` is the clean sample (σ = 0)."""
        if t == -1:
            return 0.0
        s = self.sigmas
        if not 0 <= t <= len(s) - 1:
            raise OracleCallError(f"timestep {t:g} outside [0, {len(s) - 1}]")
        lo = int(math.floor(t))
        hi = min(lo + 1, len(s) - 1)
        return float(s[lo] + (t - lo) * (s[hi] - s[lo]))

    def recorder(self, *, cheap: bool = False, deadline: Deadline | None = None) -> "Recorder":
        """A fresh :class:`Recorder`; ``cheap``: its denoisers return zeros (ε = 0, x̂_0 = x̃), for runs that only
        look at the timesteps a sampler visits; ``deadline``: the run's time limit, checked on every call."""
        return Recorder(self, cheap=cheap, deadline=deadline)

    def with_batch(self, x_T: torch.Tensor) -> "Problem":
        return Problem(self.schedule, self.mixture, x_T)


@dataclass
class Recorder:
    """Exact denoisers for one sampler run that log the levels they are asked about.

    ``eps_fn(x_t [B, *event], t [B])``: ε* at integer or fractional timesteps (the plain protocol and diffusers);
    ``denoiser(x̃ [B, *event], sigma [B])``: the exact x̂_0 = E[x_0 | x̃] in σ-space (k-diffusion's model).
    ``calls`` holds ``(t or None, σ)`` per call, ``bad`` the timesteps refused. With a ``deadline`` every call
    first checks it (and ends a run over its time limit: :mod:`toydiff.testing.runner`).
    """

    problem: Problem
    cheap: bool = False
    deadline: Deadline | None = None
    calls: list = field(default_factory=list)
    bad: list = field(default_factory=list)

    def _levels(self, t: torch.Tensor, n: int) -> torch.Tensor:
        tv = t.detach().reshape(-1).to(torch.float64).cpu()
        if tv.numel() == 1:
            tv = tv.expand(n)
        if tv.numel() != n:
            raise OracleCallError(f"t has {tv.numel()} entries for a batch of {n}")
        return tv

    def eps_fn(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """ε*(x_t, t) ``[B, *event]`` in the dtype of ``x_t``; a t outside [0, T-1] raises OracleCallError."""
        if self.deadline is not None:
            self.deadline.check()
        tv = self._levels(torch.as_tensor(t), x_t.shape[0])
        T = self.problem.schedule.T
        out_of_range = [float(v) for v in tv.unique() if not 0 <= float(v) <= T - 1]
        if out_of_range:
            self.bad.extend(out_of_range)
            raise OracleCallError(f"the denoiser was called at t = {out_of_range[0]:g}, outside [0, {T - 1}]")
        levels = {float(v): self.problem.sigma_at(float(v)) for v in tv.unique()}
        self.calls.append((float(tv[0]), levels[float(tv[0])]))
        if self.cheap:
            return torch.zeros_like(x_t)
        ab = 1.0 / (1.0 + torch.tensor([levels[float(v)] for v in tv], dtype=torch.float64) ** 2)
        eps = self.problem.mixture.eps_star(x_t.detach().cpu().to(torch.float64), ab)
        return eps.to(dtype=x_t.dtype, device=x_t.device)

    def predict(self, x_t: torch.Tensor, t, interp, kind: str = "velocity") -> torch.Tensor:
        """The exact prediction ``kind`` (eps, x0, v, velocity, score:
        :func:`toydiff.testing.families.exact_prediction`) at ``(x_t [B, *event], t)`` on the interpolant ``interp`` — a flow-matching model; ``t`` in [0, 1] (scalar or
        ``[B]``; outside is an :class:`OracleCallError`). Logs the Karras level σ_t/α_t (inf at pure noise)."""
        from toydiff.testing.families import exact_prediction, karras_level

        if self.deadline is not None:
            self.deadline.check()
        tv = self._levels(torch.as_tensor(t), x_t.shape[0])
        outside = [float(v) for v in tv.unique() if not 0.0 <= float(v) <= 1.0]
        if outside:
            self.bad.extend(outside)
            raise OracleCallError(f"the model was called at t = {outside[0]:g}, outside [0, 1]")
        self.calls.append((None, karras_level(interp, float(tv[0]))))
        if self.cheap:
            return torch.zeros_like(x_t)
        out = exact_prediction(self.problem.mixture, x_t.detach().cpu().to(torch.float64), tv, interp, kind)
        return out.to(dtype=x_t.dtype, device=x_t.device)

    def average_velocity(self, x_t: torch.Tensor, r: float, t: float, interp) -> torch.Tensor:
        """The exact average velocity u*(x_t, r, t) = (x_t − Φ_{t→r}(x_t))/(t − r) on ``interp`` (MeanFlow, Geng et al.
        2025) — a flow-map model; ``r``, ``t`` floats in [0, 1]. Logs the Karras level at t."""
        from toydiff.testing.families import karras_level

        if self.deadline is not None:
            self.deadline.check()
        outside = [v for v in (float(r), float(t)) if not 0.0 <= v <= 1.0]
        if outside:
            self.bad.extend(outside)
            raise OracleCallError(f"the flow-map model was called at t = {outside[0]:g}, outside [0, 1]")
        self.calls.append((None, karras_level(interp, float(t))))
        if self.cheap:
            return torch.zeros_like(x_t)
        xf = x_t.detach().cpu().to(torch.float64)
        out = self.problem.mixture.average_velocity(xf, float(r), float(t), interp, rtol=1e-8, atol=1e-8)
        return out.to(dtype=x_t.dtype, device=x_t.device)

    def consistency(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """The exact consistency function f*(x_t, t) = Φ_{t→clean}(x_t) (Song et al. 2023) of the problem's schedule at
        the integer timestep ``t`` in [0, T − 1] (scalar or ``[B]``), ``[B, *event]`` in ``x_t``'s dtype; logs
        (t, σ_t)."""
        if self.deadline is not None:
            self.deadline.check()
        tv = self._levels(torch.as_tensor(t), x_t.shape[0])
        T = self.problem.schedule.T
        bad = [float(v) for v in tv.unique() if not (0 <= float(v) <= T - 1 and float(v) == int(v))]
        if bad:
            self.bad.extend(bad)
            raise OracleCallError(f"the consistency model was called at t = {bad[0]:g}, not an integer in [0, {T - 1}]")
        self.calls.append((float(tv[0]), self.problem.sigma_at(float(tv[0]))))
        if self.cheap:
            return x_t.clone()
        xf = x_t.detach().cpu().to(torch.float64)
        out = self.problem.mixture.flow_map(xf, tv.long(), -1, self.problem.schedule, rtol=1e-8, atol=1e-8)
        return out.to(dtype=x_t.dtype, device=x_t.device)

    def denoiser(self, x_s: torch.Tensor, sigma) -> torch.Tensor:
        """The exact x̂_0 for Karras' x̃ = x_0 + σ ε at ``sigma`` (a scalar or ``[B]``), shape of ``x_s``."""
        if self.deadline is not None:
            self.deadline.check()
        sv = self._levels(torch.as_tensor(sigma), x_s.shape[0])
        self.calls.append((None, float(sv[0])))
        if self.cheap:
            return x_s.clone()
        ab = 1.0 / (1.0 + sv**2)
        xs = x_s.detach().cpu().to(torch.float64)
        shape = (-1,) + (1,) * (xs.ndim - 1)
        eps = self.problem.mixture.eps_star(xs * ab.sqrt().reshape(shape), ab)
        return (xs - sv.reshape(shape) * eps).to(dtype=x_s.dtype, device=x_s.device)


def pf_ode(problem: Problem, x_start: torch.Tensor, sigma_start: float, sigma_end: float, *,
           rtol: float = 1e-10, atol: float = 1e-10) -> torch.Tensor:
    """The exact probability-flow ODE solution from ``x_start [B, *event]`` (VP convention) at σ_start to σ_end.

    Solved in x̃ = x sqrt(1 + σ²) with σ as the time variable by scipy's DOP853
    (:meth:`GaussianMixture.probability_flow`); returns the VP state x̃/sqrt(1 + σ_end²) at σ_end (the clean
    sample when σ_end = 0), float64, the shape of ``x_start``.
    """
    if sigma_start == sigma_end:
        return x_start.detach().cpu().to(torch.float64).clone()
    if math.isinf(sigma_start) or math.isinf(sigma_end):
        return _pf_ode_via_flow_map(problem, x_start, sigma_start, sigma_end, rtol=rtol, atol=atol)
    return problem.mixture.probability_flow(x_start, [sigma_start, sigma_end], rtol=rtol, atol=atol)[-1]


def _pf_ode_via_flow_map(problem: Problem, x_start, sigma_start: float, sigma_end: float, *, rtol, atol):
    """:func:`pf_ode` with an end at σ = inf (pure noise, a flow-matching sampler's t = 1): the exact flow map on the
    rectified-flow path, where σ = t/(1 − t) and the VP state x/sqrt(1 + σ²) is the path's x_t/sqrt(α² + σ²)."""
    from toydiff.processes.interpolants import linear

    def t_of(sig: float) -> float:
        return 1.0 if math.isinf(sig) else sig / (1.0 + sig)

    def norm(t: float) -> float:  # sqrt(α² + σ²) on the linear path
        return math.sqrt((1.0 - t) ** 2 + t**2)

    ta, tb = t_of(sigma_start), t_of(sigma_end)
    x = x_start.detach().cpu().to(torch.float64) * norm(ta)
    out = problem.mixture.flow_map(x, ta, tb, linear(), rtol=rtol, atol=atol)
    return out / norm(tb)


def default_problem(batch: int = 16, seed: int = 0, *, dim: int = 2) -> Problem:
    """The problem :func:`check_sampler` uses unless given one: linear β (T = 1000, Ho et al. 2020) and a
    well-conditioned 3-component mixture in ``dim`` dimensions, ``batch`` starting points N(0, I) from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    means = torch.tensor([[-1.5, 0.5, 0.0, 1.0], [1.5, 1.0, -0.5, 0.0], [0.0, -1.5, 1.0, -1.0]])[:, :dim]
    stds = torch.tensor([[0.8, 1.0, 0.9, 1.1], [1.0, 0.7, 1.1, 0.9], [0.9, 0.9, 0.8, 1.0]])[:, :dim]
    mix = GaussianMixture.diagonal([0.3, 0.5, 0.2], means, stds)
    return Problem(schedules.linear(T=1000), mix, torch.randn(batch, dim, dtype=torch.float64, generator=g))
