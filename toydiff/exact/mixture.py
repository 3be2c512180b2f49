"""The exact oracle: a Gaussian mixture's noised marginals, score and optimal noise predictor in closed form.

If x_0 ~ Σ_k w_k N(μ_k, Σ_k) and x_t = sqrt(ᾱ) x_0 + sqrt(1 − ᾱ) ε, then x_t is again a mixture,
Σ_k w_k N(sqrt(ᾱ) μ_k, ᾱ Σ_k + (1 − ᾱ) I). Its score ∇ log p_t is a responsibility-weighted sum of
Gaussian scores, and the minimiser of E‖ε − ε̂(x_t, t)‖² is ε*(x_t) = E[ε | x_t] = −sqrt(1 − ᾱ) ∇ log p_t
(Tweedie's formula; Vincent 2011). So every sampler can run on the *true* denoiser, and the training loss
has a known floor.

Each covariance is diagonalised once (Σ_k = U_k diag(λ_k) U_kᵀ); the noised covariance shares U_k with
eigenvalues ᾱ λ_k + 1 − ᾱ, so any ᾱ — per sample, even continuous — costs one projection. Maths is float64.
Points are ``[N, D]``; any ``[N, *event]`` with ``prod(event) == D`` is accepted and the output keeps its shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from toydiff.exact import flow as exact_flow
from toydiff.exact import flow_map as exact_flow_map

from toydiff.exact import guidance as exact_guidance
from toydiff.exact.empirical import EmpiricalDistribution  # noqa: F401  (td.exact.EmpiricalDistribution)
from toydiff.bounds import check_size
from toydiff.checks import check_finite, check_int, check_number
from toydiff.processes.forward import randn_like
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["GaussianMixture", "LossFloor"]

_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class LossFloor:
    """The Bayes-optimal ε-prediction loss (per element, as ``nn.MSELoss`` averages) at each step ``t``.

    ``per_t[i]`` estimates E‖ε − ε*(x_t, t_i)‖² / D by Monte Carlo with ``n`` fresh samples; ``stderr`` is
    its standard error. ``mean`` averages over the given steps (all of them: the uniform-t training loss).
    """

    t: torch.Tensor
    per_t: torch.Tensor
    stderr: torch.Tensor
    n: int

    @property
    def mean(self) -> float:
        return float(self.per_t.mean())

    def bucketed(self, n_buckets: int) -> torch.Tensor:
        """The floor averaged over ``n_buckets`` equal runs of consecutive steps, ``[n_buckets]``."""
        return torch.stack([c.mean() for c in self.per_t.tensor_split(n_buckets)])


def _check_schedule(schedule) -> None:
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")


def _steps(t, T: int) -> torch.Tensor:
    """Steps ``t`` (ints or an integer tensor) as a LongTensor ``[M]``, each in ``[0, T-1]``; 3.7 is refused."""
    if isinstance(t, torch.Tensor):
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"t must hold integer steps, got a {t.dtype} tensor")
        ts = t.flatten().long().cpu()
    else:
        if not hasattr(t, "__iter__") or isinstance(t, (str, bytes)):
            raise TypeError(f"t must be a sequence of steps or None, got {type(t).__name__}")
        ts = torch.tensor([check_int(v, f"t[{i}]") for i, v in enumerate(t)], dtype=torch.long)
    if ts.numel() == 0 or int(ts.min()) < 0 or int(ts.max()) >= T:
        raise ValueError(f"t must be a non-empty set of steps in [0, {T - 1}], got {ts.tolist()[:10]}")
    return ts


def _f64(v, name: str = "value") -> torch.Tensor:
    """A float64 tensor from numbers, nested lists, arrays or (lists of) tensors; a ragged nesting or a
    non-number is a TypeError / ValueError naming ``name``."""
    if isinstance(v, (str, bytes)) or (isinstance(v, torch.Tensor) and (v.dtype == torch.bool or v.is_complex())):
        raise TypeError(f"{name} must hold real numbers, got {type(v).__name__} {v!r}"[:300])
    try:
        if isinstance(v, (list, tuple)) and any(isinstance(e, (torch.Tensor, list, tuple)) for e in v):
            return torch.stack([_f64(e, name) for e in v])
        return torch.as_tensor(v, dtype=torch.float64)
    except RuntimeError:  # torch.stack of rows of different lengths
        raise ValueError(f"{name} is ragged: its rows have different lengths") from None
    except (TypeError, ValueError) as e:  # strings, None, objects, numpy's inhomogeneous arrays
        raise TypeError(f"{name} must be a (nested) sequence of real numbers of one shape ({e})"[:300]) from None


class GaussianMixture:
    """A mixture of full-covariance Gaussians in any dimension D, with its exact diffusion quantities.

    Args:
        weights: ``[K]`` non-negative, normalised here.
        means: ``[K, D]``.
        covs: ``[K, D, D]`` symmetric positive definite.
        labels: optional class of each component, ``K`` non-negative ints (C = max + 1 classes; a class with no
            component has prior 0): enables :meth:`condition`, :meth:`class_posterior`, :mod:`toydiff.exact.guidance`.

    Example:
        >>> gm = GaussianMixture([1.0, 2.0], [[-4.0], [4.0]], [[[1.0]], [[1.0]]])
        >>> eps_fn = gm.eps_fn(schedule)     # exact ε*(x_t, t), usable by every sampler
    """

    def __init__(self, weights, means, covs, labels=None):
        w, mu, cov = _f64(weights, "weights").flatten(), _f64(means, "means"), _f64(covs, "covs")
        if w.numel() == 0 or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        check_size(w.numel(), "weights (K, the number of components)", key="components")
        if mu.ndim != 2 or mu.shape[0] != w.numel():
            raise ValueError(f"means must have shape [K={w.numel()}, D], got {tuple(mu.shape)}")
        K, D = mu.shape
        if cov.shape != (K, D, D):
            raise ValueError(f"covs must have shape [K={K}, D={D}, D={D}], got {tuple(cov.shape)}")
        if not torch.isfinite(mu).all() or not torch.isfinite(cov).all():
            raise ValueError("means and covs must be finite")
        if not torch.allclose(cov, cov.transpose(1, 2), atol=1e-10, rtol=1e-8):
            raise ValueError("covs must be symmetric")
        evals, evecs = torch.linalg.eigh(cov)
        if (evals <= 0).any():
            raise ValueError("covs must be positive definite (an eigenvalue is <= 0)")
        self._w = w / w.sum()
        self._mu = mu
        self._cov = cov
        self._lam = evals  # [K, D]
        self._U = evecs  # [K, D, D], columns are eigenvectors
        self.K, self.D = K, D
        self._labels = None if labels is None else exact_guidance.check_labels(labels, K)

    @classmethod
    def diagonal(cls, weights, means, stds, labels=None) -> "GaussianMixture":
        """A mixture with axis-aligned components; ``stds`` is a scalar, ``[K]`` or ``[K, D]``."""
        mu = torch.as_tensor(means, dtype=torch.float64)
        if mu.ndim != 2:
            raise ValueError(f"means must have shape [K, D], got {tuple(mu.shape)}")
        s = torch.as_tensor(stds, dtype=torch.float64)
        if (s <= 0).any():
            raise ValueError("stds must be positive")
        s = s.reshape(-1, 1).expand_as(mu) if s.ndim <= 1 else s
        if s.shape != mu.shape:
            raise ValueError(f"stds must be a scalar, [K] or [K, D]={tuple(mu.shape)}, got {tuple(s.shape)}")
        return cls(weights, mu, torch.diag_embed(s**2), labels)

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.K}, D={self.D}{'' if self._labels is None else f', C={self.n_classes}'})"

    # --- parameters (copies) ----------------------------------------------------------------------
    @property
    def weights(self) -> torch.Tensor:
        return self._w.clone()

    @property
    def means(self) -> torch.Tensor:
        return self._mu.clone()

    @property
    def covs(self) -> torch.Tensor:
        return self._cov.clone()

    @property
    def labels(self) -> torch.Tensor | None:
        """The class of each component ``[K]`` (LongTensor), or ``None`` for an unlabelled mixture."""
        return None if self._labels is None else self._labels.clone()

    @property
    def n_classes(self) -> int:
        """C, the number of classes (0 for an unlabelled mixture)."""
        return 0 if self._labels is None else int(self._labels.max()) + 1

    def condition(self, y: int) -> "GaussianMixture":
        """p(x | y): the components of class ``y``, weights renormalised, labels kept (all ``y``)."""
        return exact_guidance.condition(self, y)

    def class_posterior(self, x_t: torch.Tensor, t=None, schedule: NoiseSchedule | None = None, *,
                        alpha_bar: float | torch.Tensor | None = None) -> torch.Tensor:
        """p(y | x_t) ``[N, C]`` (rows sum to 1) at steps ``t`` of ``schedule``, or at ``alpha_bar=``."""
        return exact_guidance.class_posterior(self, x_t, t, schedule, alpha_bar=alpha_bar)

    def mean(self) -> torch.Tensor:
        """The mixture's mean ``[D]``."""
        return self._w @ self._mu

    def covariance(self) -> torch.Tensor:
        """The mixture's covariance ``[D, D]`` (law of total covariance)."""
        m = self.mean()
        d = self._mu - m
        return torch.einsum("k,kij->ij", self._w, self._cov) + torch.einsum("k,ki,kj->ij", self._w, d, d)

    # --- sampling and densities -------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None, *, return_components: bool = False):
        """Draw ``n`` points ``[n, D]`` (float64); with ``return_components``, also their component ``[n]``."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        comp = torch.multinomial(self._w, n, replacement=True, generator=generator) if n else torch.zeros(0, dtype=torch.long)
        z = torch.randn(n, self.D, dtype=torch.float64, generator=generator)
        x = self._mu[comp] + torch.einsum("nde,ne->nd", self._U[comp], z * self._lam[comp].sqrt())
        return (x, comp) if return_components else x

    def _flat(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim < 1 or x.shape[0] == 0 or math.prod(x.shape[1:]) != self.D:
            raise ValueError(f"{name} must have shape [N, *event] with N >= 1 and prod(event) = D = {self.D}, "
                             f"got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
        return check_finite(x.reshape(x.shape[0], self.D).to(torch.float64), name)

    def _alpha_bar(self, alpha_bar, n: int) -> torch.Tensor:
        if isinstance(alpha_bar, bool) or isinstance(alpha_bar, torch.Tensor) and alpha_bar.dtype == torch.bool:
            raise TypeError("alpha_bar must be a number or a float tensor, got a bool")
        try:
            ab = torch.as_tensor(alpha_bar, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"alpha_bar must be a number or a tensor [N], got {type(alpha_bar).__name__}") from None
        if ab.ndim == 0:
            ab = ab.expand(n)
        if ab.shape != (n,):
            raise ValueError(f"alpha_bar must be a scalar or have shape [N={n}], got {tuple(ab.shape)}")
        if not ((ab > 0) & (ab <= 1)).all():
            raise ValueError("alpha_bar must lie in (0, 1]")
        return ab.cpu()

    def _project(self, x: torch.Tensor, alpha_bar):
        """Whitened residuals of each noised component: ``u [N, K, D]`` and eigenvalues ``lam [N, K, D]``."""
        xf = self._flat(x).cpu()
        ab = self._alpha_bar(alpha_bar, xf.shape[0])
        return self._whiten(xf, ab.sqrt(), 1 - ab, ab)

    def _whiten(self, xf: torch.Tensor, a: torch.Tensor, s2: torch.Tensor, a2: torch.Tensor | None = None):
        """``u [N, K, D]``, ``lam [N, K, D]`` for x = a x_0 + s ε (any Gaussian path): ``a``, ``s2`` = s² are ``[N]``."""
        a2 = a**2 if a2 is None else a2
        diff = xf[:, None, :] - a[:, None, None] * self._mu[None]  # [N, K, D]
        u = torch.einsum("nkd,kde->nke", diff, self._U)
        lam = a2[:, None, None] * self._lam[None] + s2[:, None, None]
        return u, lam

    def _component_log_probs(self, u, lam) -> torch.Tensor:
        return self._w.log()[None] - 0.5 * ((u**2 / lam).sum(-1) + lam.log().sum(-1) + self.D * _LOG_2PI)

    def log_prob(self, x: torch.Tensor, alpha_bar: float | torch.Tensor = 1.0) -> torch.Tensor:
        """log p(x) of the mixture noised to ``alpha_bar`` (1 = clean), ``[N]`` float64."""
        return torch.logsumexp(self._component_log_probs(*self._project(x, alpha_bar)), dim=-1)

    def mahalanobis_sq(self, x: torch.Tensor, alpha_bar: float | torch.Tensor = 1.0) -> torch.Tensor:
        """Squared Mahalanobis distance of each point to each noised component, ``[N, K]`` float64."""
        u, lam = self._project(x, alpha_bar)
        return (u**2 / lam).sum(-1)

    def responsibilities(self, x: torch.Tensor, alpha_bar: float | torch.Tensor = 1.0) -> torch.Tensor:
        """Posterior component probabilities p(k | x) under the noised mixture, ``[N, K]``."""
        return torch.softmax(self._component_log_probs(*self._project(x, alpha_bar)), dim=-1)

    def noised(self, alpha_bar: float) -> "GaussianMixture":
        """The marginal of x_t = sqrt(ᾱ) x_0 + sqrt(1 − ᾱ) ε, itself a GaussianMixture."""
        ab = check_number(alpha_bar, "alpha_bar")
        if not 0 < ab <= 1:
            raise ValueError(f"alpha_bar must lie in (0, 1], got {alpha_bar}")
        eye = torch.eye(self.D, dtype=torch.float64)
        return GaussianMixture(self._w, math.sqrt(ab) * self._mu, ab * self._cov + (1 - ab) * eye, self._labels)

    def affine(self, scale, shift=0.0) -> "GaussianMixture":
        """The law of ``scale * x + shift`` (``scale`` a positive scalar or ``[D]``, ``shift`` scalar or ``[D]``).

        Normalising data as ``(x - mean) / std`` maps the oracle with ``affine(1 / std, -mean / std)``.
        """
        a = torch.as_tensor(scale, dtype=torch.float64).flatten().expand(self.D) if torch.as_tensor(scale).numel() == 1 \
            else torch.as_tensor(scale, dtype=torch.float64)
        b = torch.as_tensor(shift, dtype=torch.float64).flatten()
        if a.shape != (self.D,) or (a <= 0).any():
            raise ValueError(f"scale must be a positive scalar or have shape [D={self.D}]")
        if b.numel() not in (1, self.D):
            raise ValueError(f"shift must be a scalar or have shape [D={self.D}]")
        return GaussianMixture(self._w, self._mu * a + b, self._cov * a[:, None] * a[None, :], self._labels)

    # --- score and optimal denoiser ----------------------------------------------------------------
    def score(self, x: torch.Tensor, alpha_bar: float | torch.Tensor = 1.0) -> torch.Tensor:
        """∇_x log p_t(x) = −Σ_k p(k | x) C_k⁻¹ (x − m_k), same shape as ``x``, float64."""
        u, lam = self._project(x, alpha_bar)
        r = torch.softmax(self._component_log_probs(u, lam), dim=-1)  # [N, K]
        s = -torch.einsum("nk,nke,kde->nd", r, u / lam, self._U)
        return s.reshape(x.shape)

    def eps_star(self, x_t: torch.Tensor, alpha_bar: float | torch.Tensor) -> torch.Tensor:
        """The optimal noise prediction ε*(x_t) = E[ε | x_t] = −sqrt(1 − ᾱ) ∇ log p_t(x_t), float64."""
        xf = self._flat(x_t, "x_t")                          # [N, D]
        ab = self._alpha_bar(alpha_bar, xf.shape[0])
        return (-(1 - ab).sqrt()[:, None] * self.score(xf, ab)).reshape(x_t.shape)

    def eps_fn(self, schedule: NoiseSchedule):
        """An exact denoiser ``eps_fn(x_t [B, *event], t LongTensor [B]) -> ε* [B, *event]`` for ``schedule``.

        The result has the input's shape, dtype and device, so it drops into :func:`toydiff.sample`. ``t`` must
        be an integer tensor of steps in ``[0, T - 1]`` (``-1`` would index ᾱ_{T−1}: refused) and ``x_t`` finite.
        """
        _check_schedule(schedule)
        ab_all, T = schedule.alpha_bars, schedule.T

        def eps_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            xf = self._flat(x_t, "x_t")
            if not isinstance(t, torch.Tensor) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise TypeError(f"t must be an integer (Long) tensor [B], got {getattr(t, 'dtype', type(t).__name__)}")
            if t.shape != (x_t.shape[0],):
                raise ValueError(f"t must have shape [B] with B = {x_t.shape[0]}, the batch of x_t, got {tuple(t.shape)}")
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= T:  # t = -1 would silently index alpha_bar[T - 1]
                raise ValueError(f"t must be steps in [0, {T - 1}], got values in [{lo}, {hi}]")
            eps = self.eps_star(xf, ab_all[t.cpu().long()]).reshape(x_t.shape)  # [B, *event]
            return eps.to(dtype=x_t.dtype, device=x_t.device)

        return eps_fn

    # --- the loss floor ----------------------------------------------------------------------------
    def bayes_optimal_loss(self, schedule: NoiseSchedule, *, t: Sequence[int] | torch.Tensor | None = None,
                           n: int = 4096, generator: torch.Generator | None = None) -> LossFloor:
        """The Bayes-optimal ε-prediction loss E‖ε − ε*(x_t, t)‖² / D at each step (Monte Carlo, ``n`` per step).

        No model can beat this on fresh data; a trained model's held-out loss at step t estimates it plus
        the model's excess error. ``t`` defaults to every step, so ``.mean`` is the uniform-t floor.
        Data are drawn from this mixture as it stands (normalise it first if the model sees normalised data).
        """
        _check_schedule(schedule)
        n = check_int(n, "n", min=2)  # the standard error needs two draws per step
        ts = torch.arange(schedule.T) if t is None else _steps(t, schedule.T)
        ab_all = schedule.alpha_bars
        means, errs = [], []
        chunk = max(1, 2**20 // max(1, n * self.K * self.D))
        for ts_c in ts.split(chunk):
            m = ts_c.numel()
            x0 = self.sample(m * n, generator)
            eps = randn_like(x0, generator)
            ab = ab_all[ts_c].repeat_interleave(n)
            x_t = ab.sqrt()[:, None] * x0 + (1 - ab).sqrt()[:, None] * eps
            se = ((eps - self.eps_star(x_t, ab)) ** 2).mean(dim=1).reshape(m, n)  # per element
            means.append(se.mean(dim=1))
            errs.append(se.std(dim=1) / math.sqrt(n))
        return LossFloor(t=ts, per_t=torch.cat(means), stderr=torch.cat(errs), n=n)

    def probability_flow(self, x_start: torch.Tensor, sigmas, **solver) -> torch.Tensor:
        """The exact probability-flow ODE from ``x_start [B, *event]`` at ``sigmas[0]`` reported at each σ of
        ``sigmas`` (Karras σ = √((1 − ᾱ)/ᾱ)): ``[F, B, *event]`` float64 (:func:`toydiff.exact.flow.probability_flow`)."""
        return exact_flow.probability_flow(self, x_start, sigmas, **solver)

    # --- any Gaussian interpolant (toydiff.processes.interpolants; the maths is in toydiff.exact.flow) ----------
    def velocity(self, x: torch.Tensor, t, interp) -> torch.Tensor:
        """The exact flow-matching velocity E[α̇ x_0 + σ̇ ε | x_t] at ``x`` ``[N, *event]``, ``t`` float ``[N]``.

        For :func:`toydiff.processes.interpolants.linear` this is E[ε − x_0 | x_t] (Liu et al. 2023). Shape, dtype and
        device of ``x``.
        """
        return exact_flow.predict(self, x, t, interp, "velocity")

    def velocity_fn(self, interp):
        """``fn(x_t [B, *event], t float [B]) -> velocity``: the exact field for ``td.sample(fn, x_1, interp, ...)``."""
        return exact_flow.denoiser(self, interp, "velocity")

    def denoiser(self, interp, kind: str = "velocity"):
        """The exact prediction of type ``kind`` (``"eps"``, ``"x0"``, ``"v"``, ``"velocity"``) under ``interp``,
        as ``fn(x_t [B, *event], t float [B])``."""
        return exact_flow.denoiser(self, interp, kind)

    # --- the exact flow map (toydiff.exact.flow_map) ------------------------------------------------
    def flow_map(self, x: torch.Tensor, t, s, process, **solver) -> torch.Tensor:
        """Φ_{t→s}(x), the exact probability-flow map (Song et al. 2021) from time ``t`` to ``s``, either direction,
        under ``process`` (a schedule: steps in [−1, T − 1], −1 the clean end; an interpolant: t ∈ [0, 1]; or a
        process object). ``x [B, *event]``; ``t``, ``s`` scalars or ``[B]``; float64, shape of ``x``
        (:func:`toydiff.exact.flow_map.flow_map`)."""
        return exact_flow_map.flow_map(self, x, t, s, process, **solver)

    def consistency_fn(self, process, **solver):
        """``f(x_t, t)`` = the flow map to the clean end, the exact consistency function (Song et al. 2023)."""
        return exact_flow_map.consistency_fn(self, process, **solver)

    def average_velocity(self, x_t: torch.Tensor, r, t, process, **solver) -> torch.Tensor:
        """MeanFlow's u* (Geng et al. 2025): x_r = x_t − (t − r) u* on the exact path of an interpolant; r = t gives
        :meth:`velocity`. ``[B, *event]`` float64 (:func:`toydiff.exact.flow_map.average_velocity`)."""
        return exact_flow_map.average_velocity(self, x_t, r, t, process, **solver)
