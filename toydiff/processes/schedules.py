"""Noise schedules: pure builders returning an immutable :class:`NoiseSchedule`, and respacing.

Index convention (as in Ho et al. 2020, shifted to 0-based): ``t = 0`` is the first noising step, so
``x_t`` has ``alpha_bars[t] = prod_{s <= t} (1 - betas[s])``; the clean sample sits at "t = -1", where
``alpha_bar = 1``. All schedule maths is float64; samplers cast on use.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from toydiff.checks import check_choice, check_int, check_number

__all__ = [
    "NoiseSchedule",
    "StepPlan",
    "TerminalSNRWarning",
    "linear",
    "constant",
    "cosine",
    "sigmoid",
    "from_betas",
    "from_name",
    "BUILDERS",
    "SPACINGS",
    "TERMINAL_ALPHA_BAR_TOLERANCE",
]

SPACINGS = ("linspace", "leading", "trailing", "karras", "logsnr")

#: ``alpha_bar`` at the first sampled step above this warns: x_T is then visibly not N(0, I).
TERMINAL_ALPHA_BAR_TOLERANCE = 0.01


class TerminalSNRWarning(UserWarning):
    """The noisiest step a sampler starts from keeps signal: x_T ~ N(0, I) is then the wrong prior."""


def _warn_terminal(alpha_bar: float, where: str) -> None:
    if alpha_bar > TERMINAL_ALPHA_BAR_TOLERANCE:
        warnings.warn(
            f"{where}: alpha_bar = {alpha_bar:.4g} > {TERMINAL_ALPHA_BAR_TOLERANCE} at the noisiest step, so x_t there "
            f"keeps {math.sqrt(alpha_bar):.3f} of the signal and is not N(0, I); samples started from pure noise will be "
            "biased (use more steps, a larger beta or T, or 'trailing'/'linspace' spacing)",
            TerminalSNRWarning,
            stacklevel=3,
        )


def _betas_tensor(betas) -> torch.Tensor:
    """``betas`` as a float64 tensor; a string, a bool tensor or a ragged list is a TypeError naming betas."""
    if isinstance(betas, (str, bytes)) or (isinstance(betas, torch.Tensor) and betas.dtype == torch.bool):
        raise TypeError(f"betas must be a sequence of numbers, got {type(betas).__name__}")
    try:
        return torch.as_tensor(betas, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"betas must be a sequence of numbers ({e})") from None


def _check_alpha_bars(betas: torch.Tensor, ab: torch.Tensor, what: str) -> None:
    """Refuse ᾱ that float64 cannot carry: below the smallest normal float64 (underflow: ᾱ and with it x̂_0 =
    (x_t − √(1−ᾱ) ε)/√ᾱ lose their digits, then become 0 and inf) or not strictly decreasing (a β below the
    resolution of ᾱ: 1 − ᾱ_0 = 0 divides by zero, equal ᾱ give DPM-Solver a zero step in log-SNR)."""
    tiny = torch.finfo(torch.float64).tiny
    low = (ab < tiny).nonzero()
    if low.numel():
        t = int(low[0])
        raise ValueError(f"{what}: alpha_bar underflows at step t = {t} of T = {ab.numel()}: alpha_bar_{t} = "
                         f"{float(ab[t]):.3g} is below the smallest normal float64 ({tiny:.3g}), so it has lost its "
                         "precision there and reaches 0 a few steps on (x_0 = x_t / sqrt(alpha_bar) - ... then "
                         "overflows); use smaller betas or a smaller T")
    prev = torch.cat([ab.new_ones(1), ab[:-1]])
    flat = (ab >= prev).nonzero()
    if flat.numel():
        t = int(flat[0])
        raise ValueError(f"{what}: alpha_bar does not decrease at step t = {t}: beta_{t} = {float(betas[t]):.3g} is "
                         f"below the float64 resolution of {float(prev[t]):.17g}, which alpha_bar_{t} rounds to "
                         "(1 - alpha_bar or a step in log-SNR becomes 0); use betas of at least about 1e-15")


class NoiseSchedule:
    """An immutable discrete variance-preserving noise schedule (float64).

    Built by :func:`linear`, :func:`constant`, :func:`cosine`, :func:`sigmoid` or :func:`from_betas`.
    Every array property returns a fresh float64 tensor of shape ``[T]``, so no caller can alter the
    schedule (diffusers' ``add_noise`` reassigning ``alphas_cumprod`` is the trap this avoids).

    Attributes:
        T: number of diffusion steps.
        name: the builder and its parameters, for display and checkpoints.
    """

    __slots__ = ("_betas", "_alpha_bars", "_ab_list", "T", "name", "params")

    def __init__(self, betas: torch.Tensor | Sequence[float], name: str = "custom", params: dict | None = None):
        b = _betas_tensor(betas).detach().clone()
        if b.ndim != 1 or b.numel() == 0:
            raise ValueError(f"betas must be a non-empty 1-D sequence, got shape {tuple(b.shape)}")
        if not torch.isfinite(b).all() or (b <= 0).any() or (b >= 1).any():
            bad = b[~(torch.isfinite(b) & (b > 0) & (b < 1))][0].item()
            raise ValueError(f"betas must lie in the open interval (0, 1); found {bad!r}")
        object.__setattr__(self, "_betas", b)
        ab = torch.cumprod(1.0 - b, dim=0)
        _check_alpha_bars(b, ab, f"schedule {name}{params or ''}")
        object.__setattr__(self, "_alpha_bars", ab)
        object.__setattr__(self, "_ab_list", ab.tolist())  # python floats: cheap scalar lookups in samplers
        object.__setattr__(self, "T", int(b.numel()))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "params", dict(params or {}))

    def __setattr__(self, key, value):
        raise AttributeError("NoiseSchedule is immutable; build a new one instead")

    def __copy__(self) -> "NoiseSchedule":  # immutable: a copy may share it (a model holding one deep-copies)
        return self

    def __deepcopy__(self, memo) -> "NoiseSchedule":
        return self

    def __reduce__(self):
        return NoiseSchedule, (self._betas, self.name, self.params)

    def __repr__(self) -> str:
        return f"NoiseSchedule({self.name}, T={self.T}, alpha_bar[T-1]={self._ab_list[-1]:.3g})"

    def __eq__(self, other) -> bool:
        return isinstance(other, NoiseSchedule) and torch.equal(self._betas, other._betas)

    def __hash__(self) -> int:
        return hash((self.T, tuple(self._betas[:: max(1, self.T // 16)].tolist())))

    # --- arrays (fresh copies, float64, shape [T]) -------------------------------------------
    @property
    def betas(self) -> torch.Tensor:
        """β_t, ``[T]``."""
        return self._betas.clone()

    @property
    def alphas(self) -> torch.Tensor:
        """α_t = 1 − β_t, ``[T]``."""
        return 1.0 - self._betas

    @property
    def alpha_bars(self) -> torch.Tensor:
        """ᾱ_t = Π_{s≤t} α_s, ``[T]``; strictly decreasing in (0, 1)."""
        return self._alpha_bars.clone()

    @property
    def alpha_bars_prev(self) -> torch.Tensor:
        """ᾱ_{t−1}, ``[T]``, with ᾱ_{−1} = 1 (the clean sample)."""
        return torch.cat([self._alpha_bars.new_ones(1), self._alpha_bars[:-1]])

    @property
    def posterior_variance(self) -> torch.Tensor:
        """β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), the variance of q(x_{t−1} | x_t, x_0), ``[T]`` (β̃_0 = 0)."""
        return self._betas * (1.0 - self.alpha_bars_prev) / (1.0 - self._alpha_bars)

    @property
    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t), ``[T]``."""
        return self._alpha_bars / (1.0 - self._alpha_bars)

    @property
    def log_snr(self) -> torch.Tensor:
        """log SNR = 2λ_t in DPM-Solver's notation, ``[T]``."""
        return torch.log(self.snr)

    @property
    def sigmas(self) -> torch.Tensor:
        """Karras et al. 2022 noise levels σ_t = sqrt((1 − ᾱ_t) / ᾱ_t) of the scaled variable x / sqrt(ᾱ_t), ``[T]``."""
        return torch.sqrt((1.0 - self._alpha_bars) / self._alpha_bars)

    def alpha_bar(self, t: int) -> float:
        """ᾱ at integer step ``t`` as a Python float; ``t = -1`` gives 1.0 (the clean sample)."""
        t = check_int(t, "t", min=-1, max=self.T - 1)
        return 1.0 if t < 0 else self._ab_list[t]

    def to_dict(self) -> dict:
        """JSON-friendly description: enough to rebuild the schedule with :meth:`from_dict`."""
        return {"name": self.name, "params": self.params, "betas": self._betas.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseSchedule":
        return cls(d["betas"], name=d.get("name", "custom"), params=d.get("params"))

    # --- respacing ------------------------------------------------------------------------------
    def respace(self, steps: int | Sequence[int] | None = None, spacing: str = "linspace", *,
                log_snr_range: tuple[float, float] | None = None) -> "StepPlan":
        """The descending steps a sampler visits, as a :class:`StepPlan`.

        Args:
            steps: how many steps (``1 <= steps <= T``; ``None`` means all ``T``), or an explicit strictly
                descending sequence of timesteps in ``[0, T-1]`` (e.g. the seed notebooks' stride of 30:
                ``range(990, -1, -30)``; its first element is where sampling starts, as in SDEdit).
            spacing: for an int ``steps``: ``"linspace"`` (round(linspace(T−1, 0, steps))), ``"leading"``
                (floor(i·T/steps) from 0, the DDIM paper's choice; its first t sits up to T/steps below T−1)
                or ``"trailing"`` (round(T − i·T/steps) − 1: starts at T−1; Lin et al. 2024), as diffusers names them;
                or ``"karras"``: the noise levels σ = √((1 − ᾱ)/ᾱ) spaced as in Karras et al. 2022 (ρ = 7,
                from σ at T−1 down to σ at 0), each mapped to the nearest t in log σ — many steps where the
                noise is small, which is where few-step ODE samplers lose most; or ``"logsnr"``: uniform in
                λ = log(ᾱ/(1 − ᾱ)) (Lu et al. 2022's choice for DPM-Solver; the best here for dpm++2m).
            log_snr_range: ``"logsnr"`` only: ``(λ_lo, λ_hi)``. The plan still starts at T−1 and ends at 0,
                but the ``steps − 2`` steps between are uniform in λ over this window (clipped to the
                schedule's own range) instead of the whole range. For unit-variance data little happens
                below λ ≈ −5 (σ ≈ 12 data standard deviations; one large step from T−1 crosses it) or above
                λ ≈ 7 (σ ≈ 0.03): on the exact 1-D mixture, dpm++2m at 20 steps lands 1.4× from 1000
                ancestral steps with (−5, 7), 1.9× with the whole range (``python bench/toy_nfe.py``).
        """
        check_choice(spacing, "spacing", SPACINGS)
        log_snr = self.log_snr if spacing in ("karras", "logsnr") else None  # only these need it
        if log_snr_range is not None:
            if spacing != "logsnr" or not isinstance(steps, int):
                raise ValueError("log_snr_range applies to spacing='logsnr' with an int number of steps")
            lo, hi = (float(v) for v in log_snr_range)
            if not lo < hi:
                raise ValueError(f"log_snr_range must be (low, high) with low < high, got {log_snr_range!r}")
            if not 3 <= steps <= self.T:
                raise ValueError(f"steps must lie in [3, T = {self.T}] with log_snr_range, got {steps}")
            lam = log_snr
            lo, hi = max(lo, float(lam[-1])), min(hi, float(lam[0]))
            targets = torch.cat([lam[-1:], torch.linspace(lo, hi, steps - 2, dtype=torch.float64), lam[:1]])
            return StepPlan(self, tuple(_nearest_descending(-lam, -targets)))
        return StepPlan(self, _respace(self.T, steps, spacing, log_snr))


@dataclass(frozen=True)
class StepPlan:
    """The (t, t_prev) pairs a sampler visits, descending; the last pair ends at the clean sample.

    ``t_prev = -1`` denotes the clean sample (ᾱ_prev = 1). ``print(plan)`` shows a table.
    """

    schedule: NoiseSchedule
    timesteps: tuple[int, ...]

    @property
    def pairs(self) -> list[tuple[int, int]]:
        ts = self.timesteps
        return [(ts[i], ts[i + 1] if i + 1 < len(ts) else -1) for i in range(len(ts))]

    def __len__(self) -> int:
        return len(self.timesteps)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.pairs)

    def __str__(self) -> str:
        s = self.schedule
        rows = [f"{'step':>5} {'t':>5} {'t_prev':>6} {'alpha_bar_t':>12} {'alpha_bar_prev':>14}"]
        for i, (t, tp) in enumerate(self.pairs):
            rows.append(f"{i:>5} {t:>5} {tp:>6} {s.alpha_bar(t):>12.6f} {s.alpha_bar(tp):>14.6f}")
        return "\n".join(rows)


def _nearest_descending(level: torch.Tensor, targets: torch.Tensor) -> list[int]:
    """For each target (descending noise), the t whose ``level[t]`` is nearest; made strictly descending
    from T−1 to 0 by pushing collisions up (the low-noise end crowds when targets sit closer than steps)."""
    T, steps = level.shape[0], targets.shape[0]
    ts = (level[None, :] - targets[:, None]).abs().argmin(dim=1).tolist()
    ts = [min(t, T - 1 - j) for j, t in enumerate(ts)]           # leave room for the steps still to come
    ts[0], ts[-1] = T - 1, 0
    for j in range(steps - 2, -1, -1):
        ts[j] = max(ts[j], ts[j + 1] + 1)
    return ts


def _karras_timesteps(log_snr: torch.Tensor, steps: int, rho: float = 7.0) -> list[int]:
    """Karras et al. 2022 (eq. 5) noise levels σ = √((1 − ᾱ)/ᾱ) = SNR^(-1/2), ρ = 7, matched in log σ."""
    log_sigma = -0.5 * log_snr
    s_max, s_min = log_sigma[-1].exp(), log_sigma[0].exp()
    u = torch.linspace(0, 1, steps, dtype=torch.float64)
    target = (s_max ** (1 / rho) + u * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    return _nearest_descending(log_sigma, target.log())


def _logsnr_timesteps(log_snr: torch.Tensor, steps: int) -> list[int]:
    """Uniform in log-SNR λ = log(ᾱ / (1 − ᾱ)), the spacing Lu et al. 2022 use for DPM-Solver."""
    lam = log_snr
    return _nearest_descending(-lam, torch.linspace(-lam[-1].item(), -lam[0].item(), steps, dtype=torch.float64))


def _respace(T: int, steps, spacing: str, log_snr: torch.Tensor | None = None) -> tuple[int, ...]:
    if steps is None:
        return tuple(range(T - 1, -1, -1))
    if isinstance(steps, bool):
        raise TypeError("steps must be an int or a sequence of ints, not bool")
    if isinstance(steps, int):
        if not 1 <= steps <= T:
            raise ValueError(f"steps must satisfy 1 <= steps <= T = {T}, got {steps}")
        if spacing == "linspace":
            if steps == 1:
                return (T - 1,)
            ts = [round((T - 1) * (steps - 1 - i) / (steps - 1)) for i in range(steps)]
        elif spacing == "leading":
            # floor(i T / steps): diffusers' integer ratio T // steps can start almost T/2 below T - 1
            ts = [i * T // steps for i in range(steps - 1, -1, -1)]
        elif spacing == "trailing":
            ts = [round(T - i * T / steps) - 1 for i in range(steps)]
        elif spacing in ("karras", "logsnr") and log_snr is not None:
            ts = [T - 1] if steps == 1 else (_karras_timesteps if spacing == "karras" else _logsnr_timesteps)(
                log_snr, steps)
        else:
            raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
        return tuple(ts)
    if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
        raise TypeError(f"steps must be an int, a sequence of ints or None, got {type(steps).__name__}")
    ts = tuple(check_int(v, f"steps[{i}]") for i, v in enumerate(steps))  # 3.7 is refused, not truncated to 3
    if not ts:
        raise ValueError("steps must not be empty")
    if any(not 0 <= v < T for v in ts):
        raise ValueError(f"steps: every timestep must lie in [0, {T - 1}], got {ts}")
    if any(a <= b for a, b in zip(ts, ts[1:])):
        raise ValueError(f"steps must be strictly descending, got {ts}")
    return ts


# --- builders -----------------------------------------------------------------------------------

def _check_T(T) -> int:
    return check_int(T, "T", min=1)


def _check_beta(value, name: str) -> float:
    """A β parameter of a builder: a finite number in the open interval (0, 1)."""
    value = check_number(value, name)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie in the open interval (0, 1), got {value!r}")
    return value


def _finish(betas: torch.Tensor, name: str, params: dict) -> NoiseSchedule:
    s = NoiseSchedule(betas, name=name, params=params)
    _warn_terminal(s.alpha_bar(s.T - 1), f"schedule {name}{params}")
    return s


def from_betas(betas: torch.Tensor | Sequence[float], name: str = "custom") -> NoiseSchedule:
    """A schedule from explicit β_t values (each in (0, 1)), ``[T]``."""
    return _finish(_betas_tensor(betas), name, {})


def linear(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
    """Linear β from ``beta_start`` to ``beta_end`` (Ho et al. 2020: T=1000, 1e-4 -> 0.02)."""
    T, beta_start, beta_end = _check_T(T), _check_beta(beta_start, "beta_start"), _check_beta(beta_end, "beta_end")
    return _finish(torch.linspace(beta_start, beta_end, T, dtype=torch.float64), "linear",
                   {"T": T, "beta_start": beta_start, "beta_end": beta_end})


def constant(T: int = 250, beta: float = 0.02) -> NoiseSchedule:
    """Constant β (the 1-D sandbox of the seed exercise: β = 0.02, T = 250)."""
    T, beta = _check_T(T), _check_beta(beta, "beta")
    return _finish(torch.full((T,), float(beta), dtype=torch.float64), "constant", {"T": T, "beta": beta})


def cosine(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
    """Cosine schedule (Nichol & Dhariwal 2021): ᾱ(t) ∝ cos²((t/T + s)/(1 + s) · π/2), β clipped at ``max_beta``."""
    T, s, max_beta = _check_T(T), check_number(s, "s", min=0.0), _check_beta(max_beta, "max_beta")
    u = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return _finish(betas, "cosine", {"T": T, "s": s, "max_beta": max_beta})


def sigmoid(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, steepness: float = 6.0) -> NoiseSchedule:
    """Sigmoid-shaped β from ``beta_start`` to ``beta_end`` (as in GeoDiff, Xu et al. 2022): slow at both ends."""
    T, beta_start, beta_end = _check_T(T), _check_beta(beta_start, "beta_start"), _check_beta(beta_end, "beta_end")
    steepness = check_number(steepness, "steepness")
    u = torch.linspace(-steepness, steepness, T, dtype=torch.float64)
    betas = beta_start + (beta_end - beta_start) * torch.sigmoid(u)
    return _finish(betas, "sigmoid", {"T": T, "beta_start": beta_start, "beta_end": beta_end, "steepness": steepness})


#: the named builders, for CLIs, apps and checkpoints: ``from_name("cosine", T=500)``
BUILDERS = {"linear": linear, "constant": constant, "cosine": cosine, "sigmoid": sigmoid}


def from_name(name: str, **params) -> NoiseSchedule:
    """The schedule a builder name and its keyword parameters describe (``NoiseSchedule.name`` / ``params``).

    The one way to build a schedule from data (a CLI flag, an app widget, a checkpoint's metadata):
    ``from_name("linear", T=1000)``; each builder's own defaults fill what is not given.
    """
    if name not in BUILDERS:
        raise ValueError(f"schedule must be one of {tuple(BUILDERS)}, got {name!r}")
    try:
        return BUILDERS[name](**params)
    except TypeError as e:
        raise TypeError(f"schedule {name!r}: {e}") from None
