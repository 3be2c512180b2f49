"""Gaussian interpolants x_t = α_t x_0 + σ_t ε in continuous time t ∈ [0, 1], and the four things a network predicts.

    fm = linear()                        # rectified flow: α = 1 − t, σ = t (Liu et al. 2023; Lipman et al. 2023)
    x_t = fm.q_sample(x0, t, eps)        # x0, eps [B, *event], t float tensor [B] (or a float)
    u = fm.target(x0, eps, "velocity", t)        # u = α̇ x_0 + σ̇ ε  (= ε − x_0 on the linear path)
    x0_hat = fm.to_x0(u_hat, "velocity", x_t, t) # any prediction type -> any other, given (x_t, t)

t = 0 is the data, t = 1 the noise end. Builders: :func:`linear`, :func:`cosine` (α = cos(πt/2),
σ = sin(πt/2)) and :func:`vp`, the discrete VP process of a :class:`~toydiff.processes.schedules.NoiseSchedule`
seen through the same interface (so one ODE sampler integrates either; see :func:`vp` for the mapping).

Prediction types (``PREDICTIONS``), each a tensor ``[B, *event]`` like x_t:

- ``"eps"``: ε; ``"x0"``: x_0;
- ``"v"``: v = α ε − σ x_0 (Salimans & Ho 2022, "Progressive Distillation ..."; there α² + σ² = 1 and v is
  dx/dφ for x = cos φ x_0 + sin φ ε; here the same formula for any α, σ, always invertible since
  α² + σ² > 0);
- ``"velocity"``: u = α̇ x_0 + σ̇ ε, the conditional velocity dx_t/dt (flow matching, Lipman et al. 2023),
  whose conditional mean E[u | x_t] is the probability-flow ODE's field.

Conversions go through the pair (x_0, ε), solving the 2×2 system with x_t = α x_0 + σ ε. Where it is
singular they return inf/NaN (documented, not hidden): ε → x_0 needs α > 0, x_0 → ε needs σ > 0, and
velocity needs α σ̇ − σ α̇ finite (so not t = 0 under :func:`vp`). Coefficient maths is float64, cast on use;
per-sample coefficients ``[B]`` broadcast over any event rank (:func:`toydiff.processes.forward.expand_to`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from toydiff.checks import check_choice, check_tensor
from toydiff.processes.forward import expand_to
from toydiff.processes.schedules import NoiseSchedule

__all__ = ["Interpolant", "PREDICTIONS", "linear", "cosine", "vp", "from_dict", "time_tensor"]

PREDICTIONS = ("eps", "x0", "v", "velocity")
Coefs = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]


def time_tensor(t, name: str = "t") -> torch.Tensor:
    """``t`` (a number or a float tensor ``[B]`` / scalar) as a float64 CPU tensor, checked to lie in [0, 1]."""
    if isinstance(t, bool) or not isinstance(t, (int, float, torch.Tensor)):
        raise TypeError(f"{name} must be a float or a float tensor [B] in [0, 1], got {type(t).__name__}")
    if isinstance(t, torch.Tensor) and not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (continuous time in [0, 1]), got {t.dtype}")
    tt = torch.as_tensor(t, dtype=torch.float64).detach().cpu()
    if tt.ndim > 1:
        raise ValueError(f"{name} must be a scalar or have shape [B], got {tuple(tt.shape)}")
    if tt.numel() and not bool(((tt >= 0) & (tt <= 1)).all()):  # NaN fails this too
        raise ValueError(f"{name} must lie in [0, 1], got values in [{float(tt.min())}, {float(tt.max())}]")
    return tt


@dataclass(frozen=True, eq=False)
class Interpolant:
    """An immutable Gaussian path x_t = α(t) x_0 + σ(t) ε, t ∈ [0, 1] (Albergo & Vanden-Eijnden 2023).

    Build one with :func:`linear`, :func:`cosine` or :func:`vp`. ``coefs(t)`` maps a float64 tensor to
    (α, σ, α̇, σ̇); ``t_of_log_snr`` inverts λ(t) = log(α²/σ²). Every method takes ``t`` as a float or a
    float tensor ``[B]`` in [0, 1]; tensors ``x_t``, ``pred`` … are ``[B, *event]``.
    """

    name: str
    coefs: Coefs = field(repr=False)
    t_of_log_snr_fn: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)
    key: tuple = field(default=(), repr=False)  # what equality compares (the name and the parameters)
    schedule: NoiseSchedule | None = field(default=None, repr=False)  # vp only

    def __eq__(self, other) -> bool:
        return isinstance(other, Interpolant) and (self.name, self.key) == (other.name, other.key)

    def __hash__(self) -> int:
        return hash((self.name, self.key))

    # --- coefficients (float64 tensors shaped like t) -----------------------------------------------
    def alpha(self, t) -> torch.Tensor:
        return self.coefs(time_tensor(t))[0]

    def sigma(self, t) -> torch.Tensor:
        return self.coefs(time_tensor(t))[1]

    def d_alpha(self, t) -> torch.Tensor:
        """α̇ = dα/dt."""
        return self.coefs(time_tensor(t))[2]

    def d_sigma(self, t) -> torch.Tensor:
        """σ̇ = dσ/dt (+inf at t = 0 under :func:`vp`)."""
        return self.coefs(time_tensor(t))[3]

    def log_snr(self, t) -> torch.Tensor:
        """λ(t) = log(α²/σ²): +inf at σ = 0, −inf at α = 0; decreasing in t."""
        a, s, _, _ = self.coefs(time_tensor(t))
        return 2 * (a.log() - s.log())

    def t_of_log_snr(self, lam) -> torch.Tensor:
        """The inverse of :meth:`log_snr`, float64 (clamped to the interpolant's range of λ)."""
        lam = torch.as_tensor(lam, dtype=torch.float64)
        if bool(lam.isnan().any()):
            raise ValueError("lam must not contain NaN")
        return self.t_of_log_snr_fn(lam)

    def to_dict(self) -> dict:
        """JSON-able description (for checkpoints); :func:`from_dict` rebuilds it."""
        d = {"name": self.name}
        if self.schedule is not None:
            d["schedule"] = self.schedule.to_dict()
        return d

    # --- the forward process and the prediction types -----------------------------------------------
    def _expanded(self, t, x: torch.Tensor) -> tuple:
        tt = time_tensor(t)
        if tt.ndim == 1 and tt.shape[0] != x.shape[0]:
            raise ValueError(f"t has {tt.shape[0]} entries but the batch has {x.shape[0]}")
        return tuple(expand_to(c, x) if tt.ndim else float(c) for c in self.coefs(tt))

    def q_sample(self, x0: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """x_t = α(t) x_0 + σ(t) ε, ``[B, *event]``."""
        check_tensor(x0, "x0")
        _same_shape(eps, "eps", x0)
        a, s, _, _ = self._expanded(t, x0)
        return a * x0 + s * eps

    def target(self, x0: torch.Tensor, eps: torch.Tensor, kind: str, t) -> torch.Tensor:
        """What a network predicting ``kind`` regresses on for the pair (x_0, ε) at time ``t``."""
        check_choice(kind, "kind", PREDICTIONS)
        check_tensor(x0, "x0")
        _same_shape(eps, "eps", x0)
        return _from_pair(x0, eps, kind, self._expanded(t, x0))

    def x0_eps(self, pred: torch.Tensor, kind: str, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂_0, ε̂) from a prediction ``pred`` of type ``kind`` at ``(x_t, t)``, both ``[B, *event]``."""
        check_choice(kind, "kind", PREDICTIONS)
        check_tensor(x_t, "x_t", finite=False)
        _same_shape(pred, "pred", x_t)
        c = self._expanded(t, x_t)
        _check_solvable(kind, None, c, t)
        return _to_pair(pred, kind, x_t, c)

    def convert(self, pred: torch.Tensor, kind: str, to: str, x_t: torch.Tensor, t) -> torch.Tensor:
        """The prediction ``pred`` of type ``kind`` re-expressed as type ``to`` at ``(x_t, t)``."""
        check_choice(to, "to", PREDICTIONS)
        if to == check_choice(kind, "kind", PREDICTIONS):
            check_tensor(x_t, "x_t", finite=False)
            return _same_shape(pred, "pred", x_t)
        x0, eps = self.x0_eps(pred, kind, x_t, t)
        c = self._expanded(t, x_t)
        _check_solvable(kind, to, c, t)
        return _from_pair(x0, eps, to, c)

    def to_x0(self, pred, kind, x_t, t) -> torch.Tensor:
        return self.convert(pred, kind, "x0", x_t, t)

    def to_eps(self, pred, kind, x_t, t) -> torch.Tensor:
        return self.convert(pred, kind, "eps", x_t, t)

    def to_v(self, pred, kind, x_t, t) -> torch.Tensor:
        return self.convert(pred, kind, "v", x_t, t)

    def to_velocity(self, pred, kind, x_t, t) -> torch.Tensor:
        return self.convert(pred, kind, "velocity", x_t, t)


def _same_shape(y, name: str, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if y.shape != like.shape:
        raise ValueError(f"{name} must have shape {tuple(like.shape)}, got {tuple(y.shape)}")
    return y


def _check_solvable(kind: str, to: str | None, c, t) -> None:
    """Refuse a conversion from ``kind`` (to ``to``) at a time where it has no finite value: from ε where α = 0
    (x_t = σ ε carries no x_0), from x_0 where σ = 0 (x_t = x_0 carries no ε), from the velocity where
    det [[α, σ], [α̇, σ̇]] is 0 or infinite, to the velocity where α̇ or σ̇ is infinite (a vp path at t = 0)."""
    a, s, da, ds = (torch.as_tensor(v, dtype=torch.float64) for v in c)
    why = None
    if kind == "eps" and bool((a == 0).any()):
        why = "alpha(t) = 0 there (pure noise: x_t = sigma * eps carries no x_0), so x_0 is not determined by eps"
    elif kind == "x0" and bool((s == 0).any()):
        why = "sigma(t) = 0 there (clean data: x_t = x_0 carries no eps), so eps is not determined by x_0"
    elif kind == "velocity" and not bool((torch.isfinite(a * ds - s * da) & (a * ds - s * da != 0)).all()):
        why = "the system [[alpha, sigma], [d alpha/dt, d sigma/dt]] is singular there (an infinite d sigma/dt at t = 0)"
    elif to == "velocity" and not bool((torch.isfinite(da) & torch.isfinite(ds)).all()):
        why = "d alpha/dt or d sigma/dt is infinite there (a vp path at t = 0), so the velocity is infinite"
    if why is not None:
        tt = time_tensor(t)
        at = float(tt) if tt.ndim == 0 else f"[{float(tt.min())}, {float(tt.max())}]"
        raise ValueError(f"t = {at}: cannot convert a {kind!r} prediction{'' if to is None else f' to {to!r}'}: {why}")


def _from_pair(x0, eps, kind: str, c) -> torch.Tensor:
    a, s, da, ds = c
    if kind == "x0":
        return x0
    if kind == "eps":
        return eps
    if kind == "v":
        return a * eps - s * x0
    return da * x0 + ds * eps


def _to_pair(pred, kind: str, x, c) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve x = α x_0 + σ ε together with the prediction's own equation for (x_0, ε)."""
    a, s, da, ds = c
    if kind == "eps":
        return (x - s * pred) / a, pred
    if kind == "x0":
        return pred, (x - a * pred) / s
    if kind == "v":  # [[α, σ], [−σ, α]] (x_0, ε) = (x, v), determinant α² + σ²
        n = a * a + s * s
        return (a * x - s * pred) / n, (s * x + a * pred) / n
    det = a * ds - s * da  # [[α, σ], [α̇, σ̇]] (x_0, ε) = (x, u)
    return (ds * x - s * pred) / det, (a * pred - da * x) / det


# --- builders ---------------------------------------------------------------------------------------
def _linear_coefs(t: torch.Tensor):
    return 1 - t, t.clone(), torch.full_like(t, -1.0), torch.ones_like(t)


def linear() -> Interpolant:
    """Rectified flow / conditional OT path: α = 1 − t, σ = t, u = ε − x_0 (Liu et al. 2023; Lipman et al. 2023)."""
    # λ = 2 log((1 − t)/t)  =>  t = 1 / (1 + e^{λ/2})
    return Interpolant("linear", _linear_coefs, lambda lam: torch.sigmoid(-lam / 2), ("linear",))


def _cosine_coefs(t: torch.Tensor):
    h = math.pi / 2
    # α = sin(π(1 − t)/2) = cos(πt/2), written so that α(1) = 0 and σ(1) = 1 exactly
    return torch.sin(h * (1 - t)), torch.sin(h * t), -h * torch.sin(h * t), h * torch.sin(h * (1 - t))


def cosine() -> Interpolant:
    """The trigonometric (variance-preserving) path α = cos(πt/2), σ = sin(πt/2) (Nichol & Dhariwal 2021's
    cosine schedule without offset; Albergo & Vanden-Eijnden 2023)."""
    return Interpolant("cosine", _cosine_coefs, lambda lam: torch.atan(torch.exp(-lam / 2)) * (2 / math.pi), ("cosine",))


def vp(schedule: NoiseSchedule) -> Interpolant:
    """The discrete VP process of ``schedule`` (Ho et al. 2020) as a continuous-time interpolant.

    Mapping: discrete step k ∈ {0, …, T−1} sits at t_k = (k + 1)/T, and t = 0 is the clean data (the
    samplers' step −1, ᾱ = 1); log ᾱ is interpolated linearly in t between these knots, so α(t_k)² = ᾱ_k
    and σ(t_k)² = 1 − ᾱ_k (to rounding) and the oracle at t_k is :meth:`GaussianMixture.eps_fn`'s at step k.
    α = exp(log ᾱ / 2), σ = sqrt(1 − ᾱ); α̇, σ̇ use the slope of the piece t lies in (the right one at a
    knot), so σ̇ = +inf at t = 0.

    Endpoints: the process does not reach pure noise: at t = 1, α = sqrt(ᾱ_{T−1}) > 0 and σ < 1. A sampler
    starting at t = 1 from x_1 ~ N(0, I) makes the same approximation as the VP samplers starting at step
    T − 1 (and warns the same way, :class:`~toydiff.processes.schedules.TerminalSNRWarning`, when ᾱ_{T−1} is large).
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    T = schedule.T
    log_ab = torch.cat([torch.zeros(1, dtype=torch.float64), schedule.alpha_bars.log()])  # [T + 1] at t = j/T

    def coefs(t: torch.Tensor):
        j = (t * T).floor().clamp(0, T - 1).long()
        slope = (log_ab[j + 1] - log_ab[j]) * T  # d log ᾱ / dt on this piece, < 0
        la = log_ab[j] + (t - j.double() / T) * slope
        a, s = (la / 2).exp(), (-torch.expm1(la)).sqrt()
        return a, s, a * slope / 2, -la.exp() * slope / (2 * s)

    def t_of_log_snr(lam: torch.Tensor) -> torch.Tensor:
        la = torch.nn.functional.logsigmoid(lam)  # log ᾱ = log σ(λ)
        knots = torch.linspace(0, 1, T + 1, dtype=torch.float64)
        return _interp_decreasing(la, log_ab, knots)

    return Interpolant(f"vp({schedule.name})", coefs, t_of_log_snr, ("vp", schedule), schedule)


def _interp_decreasing(y: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """x where the piecewise-linear decreasing function (xs, ys) equals y (clamped to the ends)."""
    y = y.clamp(float(ys[-1]), float(ys[0]))
    rev = ys.flip(0).contiguous()
    i = torch.searchsorted(rev, y.contiguous()).clamp(1, len(ys) - 1)
    y0, y1 = rev[i - 1], rev[i]
    x0, x1 = xs.flip(0)[i - 1], xs.flip(0)[i]
    w = torch.where(y1 > y0, (y - y0) / (y1 - y0), torch.zeros_like(y))
    return x0 + w * (x1 - x0)


BUILDERS = {"linear": linear, "cosine": cosine}


def from_dict(d: dict) -> Interpolant:
    """Rebuild an interpolant from :meth:`Interpolant.to_dict`."""
    name = d.get("name") if isinstance(d, dict) else None
    if isinstance(name, str) and name.startswith("vp(") and "schedule" in d:
        return vp(NoiseSchedule.from_dict(d["schedule"]))
    if name not in BUILDERS:
        raise ValueError(f"name must be one of {tuple(BUILDERS)} or 'vp(...)' with a 'schedule', got {name!r}")
    return BUILDERS[name]()
