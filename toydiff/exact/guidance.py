"""Exact guidance for a labelled Gaussian mixture: p(y | x_t), the class-conditional ε*, classifier guidance,
classifier-free guidance, autoguidance and the "tilted" target they aim at.

With a class label on every component, p(x | y) is the mixture of class-y components (weights renormalised),
and everything diffusion guidance needs is closed form at every noise level ᾱ:

* p(y | x_t) = Σ_{k: y_k = y} w_k N(x_t; √ᾱ μ_k, ᾱ Σ_k + (1 − ᾱ) I) / p_t(x_t)  (Bayes' rule on the noised mixture);
* ∇ log p(y | x_t) = ∇ log p_t(x_t | y) − ∇ log p_t(x_t), so classifier guidance at scale 1 (Dhariwal & Nichol
  2021) is exactly the conditional ε*;
* CFG (Ho & Salimans 2022) mixes ε_u and ε_c; at t → 0 the guided score is that of the *tilted* density
  p(x | y)^w p(x)^(1−w) — but at t > 0 the guided field is not the score of any noised tilted density, which
  is why CFG samples miss the tilted target; :func:`tilted_target` evaluates it on a 2-D grid so the gap can
  be measured;
* autoguidance (Karras et al. 2024) with an exact weak model: :func:`widened` (every covariance scaled).

The guidance combinators themselves are generic and live in :mod:`toydiff.sampling.guidance`; here are the exact
ingredients. Points are ``[N, *event]`` (``prod(event) = D``); maths in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from toydiff.bounds import check_size
from toydiff.checks import check_int, check_number

__all__ = ["check_labels", "condition", "class_posterior", "class_log_joint", "classifier_grad",
           "classifier_grad_fn", "conditional_eps_star", "labelled_eps_fn", "widened", "TiltedTarget",
           "tilted_target"]


def check_labels(labels, K: int) -> torch.Tensor:
    """``labels`` as a LongTensor ``[K]`` of non-negative class ids; ValueError/TypeError naming ``labels``."""
    try:
        lab = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"labels must be a sequence of K={K} ints, got {type(labels).__name__}") from None
    if lab.dtype == torch.bool or lab.is_floating_point() or lab.is_complex():
        raise TypeError(f"labels must hold ints (class ids), got dtype {lab.dtype}")
    lab = lab.flatten().long()
    if lab.numel() != K:
        raise ValueError(f"labels must have one class per component (K={K}), got {lab.numel()}")
    if (lab < 0).any():
        raise ValueError(f"labels must be non-negative class ids, got {lab.tolist()}")
    check_size(int(lab.max()), "labels (the largest class id)", key="class_id")
    return lab


def _labels(gm) -> torch.Tensor:
    if gm._labels is None:
        raise ValueError("this mixture has no class labels: build it with labels=[...] (one class per component)")
    return gm._labels


def _class(gm, y, name: str = "y") -> int:
    y = check_int(y, name, min=0)
    C = int(_labels(gm).max()) + 1
    if y >= C or not bool((gm._labels == y).any()):
        raise ValueError(f"{name} must be a class with a component (labels {sorted(set(gm._labels.tolist()))}), got {y}")
    return y


def condition(gm, y: int):
    """p(x | y): the class-``y`` components, weights renormalised, labels kept. Needs a labelled mixture."""
    keep = _labels(gm) == _class(gm, y)
    return type(gm)(gm._w[keep], gm._mu[keep], gm._cov[keep], gm._labels[keep])


def _alpha_bar(gm, x_t, t, schedule, alpha_bar) -> torch.Tensor:
    """ᾱ per point ``[N]`` from steps ``t`` of ``schedule`` or from ``alpha_bar`` (exactly one of the two forms)."""
    from toydiff.processes.schedules import NoiseSchedule

    n = x_t.shape[0] if isinstance(x_t, torch.Tensor) and x_t.ndim else 0
    if alpha_bar is not None:
        if t is not None or schedule is not None:
            raise ValueError("give either t and schedule, or alpha_bar, not both")
        return gm._alpha_bar(alpha_bar, n)
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule (or give alpha_bar=), got {type(schedule).__name__}")
    if isinstance(t, torch.Tensor):
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"t must hold integer steps, got a {t.dtype} tensor")
        ts = t.flatten().long().cpu()
        ts = ts.expand(n) if ts.numel() == 1 else ts
    else:
        ts = torch.full((n,), check_int(t, "t"), dtype=torch.long)
    if ts.shape != (n,):
        raise ValueError(f"t must be one step or [N={n}] steps, got {tuple(t.shape)}")
    if n and (int(ts.min()) < 0 or int(ts.max()) >= schedule.T):
        raise ValueError(f"t must be steps in [0, {schedule.T - 1}], got values in [{int(ts.min())}, {int(ts.max())}]")
    return schedule.alpha_bars[ts]


def class_log_joint(gm, x_t: torch.Tensor, alpha_bar) -> torch.Tensor:
    """log p_t(x_t, y) for every class ``[N, C]`` (−inf for a class without components), float64."""
    lab = _labels(gm)
    clp = gm._component_log_probs(*gm._project(x_t, alpha_bar))  # [N, K]
    out = torch.full((clp.shape[0], int(lab.max()) + 1), -math.inf, dtype=torch.float64)
    for c in lab.unique().tolist():
        out[:, c] = torch.logsumexp(clp[:, lab == c], dim=1)
    return out


def class_posterior(gm, x_t: torch.Tensor, t=None, schedule=None, *, alpha_bar=None) -> torch.Tensor:
    """p(y | x_t) ``[N, C]`` under the noised mixture; rows sum to 1 and tend to the prior p(y) as ᾱ → 0.

    ``t``: a step or ``[N]`` integer steps of ``schedule``; or give ``alpha_bar=`` (a number or ``[N]``) instead.
    """
    _labels(gm)
    ab = _alpha_bar(gm, x_t, t, schedule, alpha_bar)
    return torch.softmax(class_log_joint(gm, x_t, ab), dim=1)


def _per_sample_classes(gm, y, n: int) -> torch.Tensor:
    if isinstance(y, torch.Tensor) and y.ndim == 1:
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(f"y must be an int or an integer tensor [N], got {y.dtype}")
        if y.shape != (n,):
            raise ValueError(f"y must be an int or have shape [N={n}], got {tuple(y.shape)}")
        return y.cpu().long()
    return torch.full((n,), check_int(y, "y", min=0), dtype=torch.long)


def conditional_eps_star(gm, x_t: torch.Tensor, alpha_bar, y, *, null_label: int | None = None) -> torch.Tensor:
    """The class-conditional ε*(x_t | y) = −√(1 − ᾱ) ∇ log p_t(x_t | y), with per-sample ``y`` (int or ``[N]``).

    Where ``y == null_label`` the unconditional ε* is returned (the null class of label dropout). Shape of ``x_t``.
    """
    return _conditional_eps(gm, x_t, alpha_bar, y, null_label, {})


def _conditional_eps(gm, x_t, alpha_bar, y, null_label, parts: dict) -> torch.Tensor:
    """:func:`conditional_eps_star` with ``parts``, a cache of the class mixtures (filled on first use)."""
    xf = gm._flat(x_t, "x_t")
    ab = gm._alpha_bar(alpha_bar, xf.shape[0])
    ys = _per_sample_classes(gm, y, xf.shape[0])
    out = torch.empty_like(xf)
    for c in ys.unique().tolist():
        m = ys == c
        if c not in parts:
            parts[c] = gm if (null_label is not None and c == null_label) else condition(gm, c)
        out[m] = parts[c].eps_star(xf[m], ab[m])
    return out.reshape(x_t.shape)


def classifier_grad(gm, x_t: torch.Tensor, alpha_bar, y) -> torch.Tensor:
    """∇_x log p(y | x_t) = ∇ log p_t(x_t | y) − ∇ log p_t(x_t) (exact noisy classifier's gradient), shape of ``x_t``."""
    xf = gm._flat(x_t, "x_t")
    ab = gm._alpha_bar(alpha_bar, xf.shape[0])
    ys = _per_sample_classes(gm, y, xf.shape[0])
    out = -gm.score(xf, ab)
    for c in ys.unique().tolist():
        m = ys == c
        out[m] += condition(gm, c).score(xf[m], ab[m])
    return out.reshape(x_t.shape)


def _check_t(t: torch.Tensor, x: torch.Tensor, T: int) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t must be an integer (Long) tensor [B], got {getattr(t, 'dtype', type(t).__name__)}")
    if t.shape != (x.shape[0],) or int(t.min()) < 0 or int(t.max()) >= T:
        raise ValueError(f"t must be [B={x.shape[0]}] steps in [0, {T - 1}]")
    return t.cpu().long()


def classifier_grad_fn(gm, schedule, y):
    """``fn(x_t [B, *event], t [B]) -> ∇ log p(y | x_t)`` for :func:`toydiff.sampling.guidance.classifier_guidance`."""
    if isinstance(y, torch.Tensor):
        _labels(gm)
    else:
        y = _class(gm, y)
    ab_all = schedule.alpha_bars

    def grad(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        g = classifier_grad(gm, x_t, ab_all[_check_t(t, x_t, schedule.T)], y)
        return g.to(dtype=x_t.dtype, device=x_t.device)

    return grad


def labelled_eps_fn(gm, schedule, *, null_label: int | None = None):
    """The exact conditional denoiser with a conditional network's signature: ``fn(x_t, t, y) -> ε*(x_t | y)``,
    the unconditional ε* where ``y == null_label`` (default C, as :mod:`toydiff.toy.conditional` trains).

    Drops into :func:`toydiff.conditional_eps_fn` / :func:`toydiff.sampling.guidance.classifier_free_guidance` in place
    of a trained class-conditional network.
    """
    n_classes = int(_labels(gm).max()) + 1
    null = n_classes if null_label is None else check_int(null_label, "null_label", min=0)
    ab_all = schedule.alpha_bars

    parts: dict = {}

    def eps_fn(x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        eps = _conditional_eps(gm, x_t, ab_all[_check_t(t, x_t, schedule.T)], y, null, parts)
        return eps.to(dtype=x_t.dtype, device=x_t.device)

    return eps_fn


def widened(gm, factor: float):
    """The mixture with every covariance scaled by ``factor²`` (labels kept): an exact "bad" model for
    autoguidance (Karras et al. 2024), whose errors — too much spread — are the kind a weaker network makes."""
    f = check_number(factor, "factor", min=1e-6)
    return type(gm)(gm._w, gm._mu, gm._cov * f**2, gm._labels)


@dataclass(frozen=True)
class TiltedTarget:
    """A 2-D density on a regular grid, normalised numerically (cell-centred midpoint rule).

    Attributes:
        xs, ys: cell centres ``[n]`` along each axis; ``log_density[i, j]`` is at ``(xs[j], ys[i])``, ``[n, n]``.
        cell: the cell area.
    """

    xs: torch.Tensor
    ys: torch.Tensor
    log_density: torch.Tensor
    cell: float

    @property
    def density(self) -> torch.Tensor:
        """``[n, n]``; sums to 1 / cell."""
        return self.log_density.exp()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` points ``[n, 2]`` float64: a cell drawn by its mass, then a uniform point inside it."""
        n = check_int(n, "n", min=1)
        p = torch.softmax(self.log_density.flatten(), 0)
        idx = torch.multinomial(p, n, replacement=True, generator=generator)
        i, j = idx // self.xs.numel(), idx % self.xs.numel()
        dx, dy = float(self.xs[1] - self.xs[0]), float(self.ys[1] - self.ys[0])
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5
        return torch.stack([self.xs[j] + u[:, 0] * dx, self.ys[i] + u[:, 1] * dy], dim=1)


def tilted_target(good, bad, w: float, *, extent: tuple[float, float, float, float] | None = None,
                  n: int = 256) -> TiltedTarget:
    """The tilted density ∝ p_good(x)^w p_bad(x)^(1−w) on an ``n × n`` grid over ``extent`` (x0, x1, y0, y1).

    CFG's target is ``tilted_target(gm.condition(y), gm, w)`` (w in the convention ε_u + w(ε_c − ε_u));
    autoguidance's is ``tilted_target(good, widened(good, f), w)``. ``extent`` defaults to the means of
    ``bad`` ± 6 of its largest standard deviations. 2-D mixtures only.
    """
    if good.D != 2 or bad.D != 2:
        raise ValueError(f"tilted_target needs 2-D mixtures, got D = {good.D} and {bad.D}")
    w = check_number(w, "w")
    n = check_int(n, "n", min=8)
    if extent is None:
        pad = 6 * float(bad._lam.max().sqrt())
        lo, hi = bad._mu.min(0).values - pad, bad._mu.max(0).values + pad
        extent = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
    x0, x1, y0, y1 = (check_number(v, "extent") for v in extent)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"extent must be (x0, x1, y0, y1) with x1 > x0 and y1 > y0, got {extent}")
    xs = x0 + (torch.arange(n, dtype=torch.float64) + 0.5) * (x1 - x0) / n
    ys = y0 + (torch.arange(n, dtype=torch.float64) + 0.5) * (y1 - y0) / n
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.flatten(), gy.flatten()], 1)
    logq = w * good.log_prob(pts) + (1 - w) * bad.log_prob(pts)
    cell = (x1 - x0) * (y1 - y0) / n**2
    logq = logq - torch.logsumexp(logq, 0) - math.log(cell)
    return TiltedTarget(xs, ys, logq.reshape(n, n), cell)
