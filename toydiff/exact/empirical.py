"""The exact oracle of a finite training set: the empirical distribution p̂ = (1/n) Σ_i δ(x − y_i).

Noised by any Gaussian path x_t = α x_0 + σ ε, p̂ becomes the mixture (1/n) Σ_i N(α y_i, σ² I), so the
posterior over training points is a softmax, p(i | x_t) = softmax_i(−‖x_t − α y_i‖² / (2σ²)), and the optimal
denoiser is E[x_0 | x_t] = Σ_i p(i | x_t) y_i, E[ε | x_t] = (x_t − α E[x_0 | x_t]) / σ. This is the denoiser that
minimises the training loss on these n points; every sampler run on it returns (nearly) training points only —
the memorising limit a network trained on n fixed points sits next to (Kadkhodaie et al. 2024, "Generalization in
diffusion models arises from geometry-adaptive harmonic representations"; Gu et al. 2023, "On memorization in
diffusion models"). Computed in float64 with logsumexp, in chunks of the batch so [B, n] stays small.

    emp = EmpiricalDistribution(points)          # [n, *event]
    x0 = td.sample(emp.eps_fn(schedule), torch.randn(100, *event), schedule, method="ddpm")   # training points
"""

from __future__ import annotations

import math

import torch

from toydiff.exact import flow as exact_flow
from toydiff.bounds import check_size
from toydiff.checks import check_choice, check_int, check_tensor
from toydiff.processes.interpolants import PREDICTIONS, Interpolant, _from_pair, time_tensor
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["EmpiricalDistribution"]

_LOG_2PI = math.log(2 * math.pi)
_CHUNK = 2**22  # entries of a [B, n] block


class EmpiricalDistribution:
    """The uniform distribution over ``points`` ``[n, *event]`` (n ≥ 1), with its exact diffusion quantities.

    ``alpha_bar`` arguments are a number or a tensor ``[B]`` in (0, 1) (strictly: at ᾱ = 1 the law is a sum of
    deltas, with no density or score).
    """

    def __init__(self, points: torch.Tensor):
        check_tensor(points, "points", min_ndim=1)
        check_size(points.shape[0], "points.shape[0] (training points)", key="n_train")
        self.event = tuple(points.shape[1:])
        self.n, self.D = points.shape[0], math.prod(self.event)
        self._y = points.detach().reshape(self.n, self.D).to(torch.float64).cpu()  # [n, D]
        self._y2 = (self._y**2).sum(1)  # [n]

    def __repr__(self) -> str:
        return f"EmpiricalDistribution(n={self.n}, event={self.event})"

    @property
    def points(self) -> torch.Tensor:
        """The training points ``[n, *event]`` (a copy, float64)."""
        return self._y.reshape(self.n, *self.event).clone()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` points drawn uniformly (with replacement) from the training set, ``[n, *event]`` float64."""
        n = check_int(n, "n", min=0)
        idx = torch.randint(0, self.n, (n,), generator=generator)
        return self._y[idx].reshape(n, *self.event)

    def _flat(self, x, name: str) -> torch.Tensor:
        check_tensor(x, name, min_ndim=1)
        if math.prod(x.shape[1:]) != self.D:
            raise ValueError(f"{name} must have shape [B, *event] with prod(event) = D = {self.D}, got {tuple(x.shape)}")
        return x.reshape(x.shape[0], self.D).to(torch.float64).cpu()

    def _coef(self, alpha_bar, B: int) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(alpha_bar, bool):
            raise TypeError("alpha_bar must be a number or a float tensor [B], got a bool")
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64).cpu()
        ab = ab.expand(B) if ab.ndim == 0 else ab
        if ab.shape != (B,):
            raise ValueError(f"alpha_bar must be a scalar or have shape [B={B}], got {tuple(ab.shape)}")
        if not bool(((ab > 0) & (ab < 1)).all()):
            raise ValueError("alpha_bar must lie in the open interval (0, 1) (at 1 the law has no density)")
        return ab.sqrt(), 1 - ab

    def _logits(self, xf: torch.Tensor, a: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """log N(x_t; α y_i, σ² I) without the normaliser, ``[B, n]`` (‖x‖² − 2α x·y + α²‖y‖², float64)."""
        d2 = (xf**2).sum(1, keepdim=True) - 2 * a[:, None] * (xf @ self._y.T) + (a**2)[:, None] * self._y2[None]
        return -d2.clamp_min(0) / (2 * s2[:, None])

    def posterior_means(self, xf: torch.Tensor, a: torch.Tensor, s2: torch.Tensor):
        """E[x_0 | x_t] and E[ε | x_t] ``[B, D]`` for x_t = a x_0 + s ε (``a``, ``s2`` = s² ``[B]``), float64."""
        rows, s2c = max(1, _CHUNK // self.n), s2.clamp_min(1e-300)  # σ = 0: the nearest point, ε̂ = 0
        x0 = torch.cat([torch.softmax(self._logits(xc, ac, sc), dim=1) @ self._y
                        for xc, ac, sc in zip(xf.split(rows), a.split(rows), s2c.split(rows))])
        eps = torch.where(s2[:, None] > 0, (xf - a[:, None] * x0) / s2c.sqrt()[:, None], torch.zeros_like(xf))
        return x0, eps

    def log_prob(self, x: torch.Tensor, alpha_bar) -> torch.Tensor:
        """log p_t(x) of the noised empirical law, ``[B]`` float64."""
        xf = self._flat(x, "x")
        a, s2 = self._coef(alpha_bar, xf.shape[0])
        rows = max(1, _CHUNK // self.n)
        lse = torch.cat([torch.logsumexp(self._logits(xc, ac, sc), dim=1)
                         for xc, ac, sc in zip(xf.split(rows), a.split(rows), s2.split(rows))])
        return lse - math.log(self.n) - 0.5 * self.D * (_LOG_2PI + s2.log())

    def x0_hat(self, x_t: torch.Tensor, alpha_bar) -> torch.Tensor:
        """E[x_0 | x_t] = Σ_i p(i | x_t) y_i, shape of ``x_t``, float64."""
        xf = self._flat(x_t, "x_t")
        return self.posterior_means(xf, *self._coef(alpha_bar, xf.shape[0]))[0].reshape(x_t.shape)

    def eps_star(self, x_t: torch.Tensor, alpha_bar) -> torch.Tensor:
        """E[ε | x_t], the optimal noise prediction on this training set, shape of ``x_t``, float64."""
        xf = self._flat(x_t, "x_t")
        return self.posterior_means(xf, *self._coef(alpha_bar, xf.shape[0]))[1].reshape(x_t.shape)

    def score(self, x: torch.Tensor, alpha_bar) -> torch.Tensor:
        """∇ log p_t(x) = −E[ε | x_t] / sqrt(1 − ᾱ), shape of ``x``, float64."""
        xf = self._flat(x, "x")
        a, s2 = self._coef(alpha_bar, xf.shape[0])
        return (-self.posterior_means(xf, a, s2)[1] / s2.sqrt()[:, None]).reshape(x.shape)

    def eps_fn(self, schedule: NoiseSchedule):
        """``eps_fn(x_t [B, *event], t LongTensor [B]) -> ε*`` for ``schedule``, for :func:`toydiff.sample`."""
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        ab_all, T = schedule.alpha_bars, schedule.T

        def eps_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if not isinstance(t, torch.Tensor) or t.is_floating_point() or t.dtype == torch.bool:
                raise TypeError(f"t must be an integer (Long) tensor [B], got {getattr(t, 'dtype', type(t).__name__)}")
            if t.shape != (x_t.shape[0],) or int(t.min()) < 0 or int(t.max()) >= T:
                raise ValueError(f"t must have shape [B={x_t.shape[0]}] and hold steps in [0, {T - 1}]")
            return self.eps_star(x_t, ab_all[t.cpu().long()]).to(dtype=x_t.dtype, device=x_t.device)

        return eps_fn

    def predict(self, x_t: torch.Tensor, t, interp: Interpolant, kind: str = "velocity") -> torch.Tensor:
        """The optimal prediction of type ``kind`` under the interpolant ``interp`` at time ``t`` (float / ``[B]``)."""
        check_choice(kind, "kind", PREDICTIONS)
        if not isinstance(interp, Interpolant):
            raise TypeError(f"interp must be an Interpolant, got {type(interp).__name__}")
        xf = self._flat(x_t, "x_t")
        a, s, da, ds = interp.coefs(exact_flow._times(time_tensor(t), xf.shape[0]))
        x0, eps = self.posterior_means(xf, a, s**2)
        out = _from_pair(x0, eps, kind, tuple(c[:, None] for c in (a, s, da, ds)))
        return out.reshape(x_t.shape).to(dtype=x_t.dtype, device=x_t.device)

    def denoiser(self, interp: Interpolant, kind: str = "velocity"):
        """``fn(x_t [B, *event], t float [B]) -> prediction``: the exact one of type ``kind`` under ``interp``.

        Marked ``fn.singular_at_zero = True``: as σ → 0, E[ε | x_t] = (x_t − α x̂_0)/σ does not vanish (the law is
        a sum of deltas), so the field is singular at t = 0 (u ≈ ε − x_0 ~ 1/t off the training points) and its
        value there (ε̂ = 0 at the nearest point) is no limit of the path. The flow samplers' ``heun`` then ends
        with an Euler step, which lands on x̂_0, instead of averaging with that value (an error of t ε / 2)."""
        check_choice(kind, "kind", PREDICTIONS)

        def fn(x_t: torch.Tensor, t) -> torch.Tensor:
            return self.predict(x_t, t, interp, kind)

        fn.singular_at_zero = True
        return fn

    def velocity_fn(self, interp: Interpolant):
        """The exact flow-matching velocity field, for ``td.sample(fn, x_1, interp, ...)``."""
        return self.denoiser(interp, "velocity")
