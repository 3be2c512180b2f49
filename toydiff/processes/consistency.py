"""Consistency models over a continuous Gaussian interpolant as a :class:`~toydiff.processes.base.Process`.

    proc = ConsistencyProcess(objective="ct")                          # improved consistency training
    x0 = proc.sample(proc.network_fn(model), torch.randn(B, 2), steps=2, generator=g)   # 2 NFE

A consistency function f(x_t, t) maps any point of a probability-flow trajectory to its clean end, f(x_t, t) =
Φ_{t→0}(x_t) (Song et al. 2023, "Consistency Models"). The network ``F_θ`` (fed ``time_scale · t``, as flow networks
are, :data:`~toydiff.processes.flow.FLOW_TIME_SCALE`) enters through the parameterisation

    f_θ(x_t, t) = c_skip(t) x_t + c_out(t) F_θ(x_t, t),   c_skip(t) = 1,  c_out(t) = −t,

so f_θ(x, 0) = x holds exactly (t_min = 0: the linear and cosine paths are regular there) and, on the linear path
x_t = (1 − t) x_0 + t ε, F_θ is the *average* velocity (x_t − f(x_t, t)) / t from t down to 0 (Geng et al. 2025's u
with r = 0): a bounded target that tends to the instantaneous velocity as t → 0. What the samplers call is f_θ
(:meth:`ConsistencyProcess.network_fn`), an x_0 prediction; the exact f* is ``gm.consistency_fn(interp)``.

Sampling (:meth:`ConsistencyProcess.sample`): ``"consistency"`` is multistep consistency sampling (Song et al. 2023,
Algorithm 1): x̂_0 = f(x_1, 1), then at each intermediate time τ re-noise x_τ = α_τ x̂_0 + σ_τ z with fresh z from the
generator and x̂_0 = f(x_τ, τ); ``"consistency-jump"`` is the deterministic variant through :meth:`jump` (the same ε̂
carried on), which keeps the path from x_1 comparable with the exact map Φ_{1→0}(x_1).

Training (:class:`ConsistencyObjective`) through the one engine: ``"cd"`` consistency distillation (Song et al. 2023,
Algorithm 2; teacher: a velocity field, one Heun step between adjacent discretisation times) and ``"ct"`` consistency
training (Song & Dhariwal 2023, "Improved Techniques for Training Consistency Models": pseudo-Huber loss, lognormal
noise levels, the doubling discretisation curriculum, λ = 1/Δt weights). Both use the *online* network under
stop-gradient as the target (θ⁻ = sg(θ), as improved CT does; no EMA teacher). Any tensor rank ``[B, *event]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, ContextManager

import torch

from toydiff.checks import check_choice, check_int, check_number
from toydiff.processes import interpolants
from toydiff.processes.base import CheckpointMismatch, Fn, process_of
from toydiff.processes.flow import FLOW_TIME_SCALE
from toydiff.processes.forward import expand_to, randn_like
from toydiff.processes.interpolants import Interpolant, time_tensor
from toydiff.training.flow_losses import unit_bucket_sums
from toydiff.training.losses import LossTerms, batched_held_out

__all__ = ["ConsistencyProcess", "ConsistencyObjective", "CONSISTENCY_METHODS", "CONSISTENCY_OBJECTIVES",
           "discretisation", "curriculum_points", "lognormal_index_probs", "pseudo_huber", "sample_times_grid"]

CONSISTENCY_METHODS = ("consistency", "consistency-jump")
CONSISTENCY_OBJECTIVES = ("cd", "ct")
#: the pseudo-Huber constant per √(event size) (Song & Dhariwal 2023, §3.3: c = 0.00054 √d)
HUBER_PER_SQRT_D = 0.00054
#: held-out times: the midpoints of 4 equal quarters of [0, 1] (each distinct time costs the exact f* one ODE solve)
HELD_OUT_LEVELS = 4


def discretisation(n_points: int, rho: float = 1.0) -> torch.Tensor:
    """Times t_i = (i / (N − 1))^ρ, i = 0 … N − 1, float64 ``[N]`` from t_0 = 0 to t_{N−1} = 1 (ρ > 1: finer near
    the data, as Karras et al. 2022's σ grid)."""
    check_int(n_points, "n_points", min=2)
    return (torch.arange(n_points, dtype=torch.float64) / (n_points - 1)) ** check_number(rho, "rho", min=1e-3)


def curriculum_points(step: int, total_steps: int, s0: int, s1: int) -> int:
    """Improved CT's discretisation curriculum (Song & Dhariwal 2023, eq. 5): N(k) = min(s0 · 2^⌊k/K'⌋, s1) + 1
    points at optimiser step k of K, K' = ⌊K / (⌊log2(s1/s0)⌋ + 1)⌋ (the intervals double K/K' times)."""
    doublings = int(math.floor(math.log2(max(s1 // s0, 1)))) + 1
    k_prime = max(total_steps // doublings, 1)
    return min(s0 * 2 ** (step // k_prime), s1) + 1


def lognormal_index_probs(times: torch.Tensor, p_mean: float, p_std: float) -> torch.Tensor:
    """Improved CT's lognormal noise levels (Song & Dhariwal 2023, §3.5): interval i of ``times [N]`` drawn with
    p(i) ∝ Φ((ln σ̃_{i+1} − P_mean)/P_std) − Φ((ln σ̃_i − P_mean)/P_std), σ̃ = t/(1 − t) the noise-to-signal ratio of
    the linear path (σ̃ = 0 at t = 0, ∞ at t = 1). Returns float64 ``[N − 1]`` summing to 1."""
    with torch.no_grad():
        sig = times / (1.0 - times)  # inf at t = 1
        cdf = 0.5 * torch.erfc(-(sig.log() - p_mean) / (p_std * math.sqrt(2.0)))
        p = (cdf[1:] - cdf[:-1]).clamp(min=1e-12)
    return p / p.sum()


def pseudo_huber(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sqrt(‖a − b‖² + c²) − c per sample, c = 0.00054 √d (Song & Dhariwal 2023, §3.3), ``[B, *event]`` → ``[B]``."""
    d = a[0].numel()
    c = HUBER_PER_SQRT_D * math.sqrt(d)
    sq = (a.float() - b.float()).pow(2).flatten(1).sum(dim=1)
    return (sq + c * c).sqrt() - c


def sample_times_grid(steps: int) -> list[float]:
    """The default times of an N-step consistency sampler: τ_n = 1 − n/N, n = 0 … N − 1 (1, then N − 1 intermediate
    times evenly spaced, as Song et al. 2023 Algorithm 1 takes them from a decreasing sequence)."""
    check_int(steps, "steps", min=1)
    return [1.0 - n / steps for n in range(steps)]


def _tb(t, x: torch.Tensor) -> torch.Tensor:
    """Times ``[B]`` (or a float) as a tensor broadcast against ``x [B, *event]``, in ``x``'s dtype."""
    tt = time_tensor(t).to(device=x.device, dtype=x.dtype)
    if tt.ndim == 0:
        tt = tt.expand(x.shape[0])
    return expand_to(tt, x)


@dataclass(frozen=True)
class ConsistencyProcess:
    """A consistency model f_θ(x_t, t) = x_t − t · F_θ(x_t, time_scale · t) over the continuous path ``interp``.

    Attributes:
        interp: the path (default linear, rectified flow's; any continuous :class:`Interpolant`).
        objective_name: ``"ct"`` (consistency training) or ``"cd"`` (distillation from ``teacher``).
        teacher: ``"exact"`` (the data's exact velocity, given by the track) or the path of a trained toy flow run;
            ``None`` for ``"ct"``.
        s0, s1: improved CT's curriculum (N from s0 + 1 to s1 + 1 points; the paper's s1 = 1280 is for 400k steps,
            a toy run takes ~1.6k); CD uses a fixed N = ``n_cd`` points.
        rho: the discretisation's exponent (:func:`discretisation`; 2: finer near the data).
    The defaults are the toy track's measured recipe (bench/consistency_recipe.py; docs/flow.md, "Consistency
    models"): CD with N = 16, ρ = 2 over 40 epochs reached 1.1× (two_gaussians) and 1.3× (8gaussians) the
    noise floor at 1 NFE.
        p_mean, p_std: the lognormal noise-level distribution (:func:`lognormal_index_probs`).
    """

    interp: Interpolant = interpolants.linear()
    objective_name: str = "ct"
    teacher: str | None = None
    s0: int = 10
    s1: int = 80
    n_cd: int = 16
    rho: float = 2.0
    p_mean: float = -1.1
    p_std: float = 2.0
    time_scale: float = FLOW_TIME_SCALE
    name: ClassVar[str] = "consistency"
    #: what the held-out loss is shown beside (other processes: the Bayes floor): the exact f*'s value on the same
    #: draws, a reference, not a bound (:class:`ConsistencyObjective`)
    loss_reference: ClassVar[str] = "the exact f*'s value"
    prediction: ClassVar[str] = "x0"
    methods: ClassVar[tuple[str, ...]] = CONSISTENCY_METHODS
    default_method: ClassVar[str] = "consistency"
    default_steps: ClassVar[int] = 1
    #: the ``sample`` options only this process's methods read
    options: ClassVar[tuple[str, ...]] = ("times",)
    schedule: ClassVar[None] = None
    #: what a track builds it from (``train_toy(process="consistency", objective="cd", teacher="exact")``)
    keywords: ClassVar[tuple[str, ...]] = ("objective", "teacher")

    @classmethod
    def from_keywords(cls, default_schedule=None, *, objective: str = "ct", teacher: str | None = None
                      ) -> "ConsistencyProcess":
        """``objective`` ``"ct"`` or ``"cd"`` (``teacher``: ``"exact"``, default, or an existing toy flow run's
        checkpoint or folder); ``default_schedule`` (a track's VP default) is not read."""
        check_choice(objective, "objective", CONSISTENCY_OBJECTIVES)
        if objective == "ct" and teacher is not None:
            raise ValueError(f"teacher applies to objective 'cd' (distillation), not 'ct'; got teacher={teacher!r}")
        if teacher not in (None, "exact") and not Path(teacher).exists():
            raise ValueError(f"teacher must be 'exact' or the path of a trained toy flow run; no file or folder "
                             f"at {teacher!r}")
        return cls(objective_name=objective, teacher=(teacher or "exact") if objective == "cd" else None)

    def __post_init__(self):
        if not isinstance(self.interp, Interpolant) or self.interp.schedule is not None:
            raise TypeError(f"interp must be a continuous Interpolant (linear, cosine), got {self.interp!r}")
        check_choice(self.objective_name, "objective", CONSISTENCY_OBJECTIVES)
        if (self.teacher is None) != (self.objective_name == "ct"):
            raise ValueError(f"teacher must be given for objective 'cd' and only then, got {self.teacher!r}")
        for k in ("s0", "s1", "n_cd"):
            check_int(getattr(self, k), k, min=2)
        if self.s1 < self.s0:
            raise ValueError(f"s1 must be at least s0 ({self.s0}), got {self.s1}")
        check_number(self.rho, "rho", min=1e-3)
        check_number(self.p_std, "p_std", min=1e-6)
        check_number(self.time_scale, "time_scale", min=1e-6)

    def describe(self) -> str:
        how = "training (iCT)" if self.objective_name == "ct" else f"distillation from the {self.teacher} teacher"
        return f"consistency model on the {self.interp.name} path, consistency {how}"

    def network_fn(self, model: Fn) -> Fn:
        """f_θ(x_t, t float [B] in [0, 1], **kw) = x_t − t · model(x_t, time_scale · t, **kw): exactly x_t at t = 0."""
        scale = self.time_scale

        def fn(x: torch.Tensor, t: torch.Tensor, **kw) -> torch.Tensor:
            out = model(x, t.to(torch.float32) * scale, **kw)
            return x - _tb(t, x) * out.to(x.dtype)

        return fn

    def exact_fn(self, mixture, **solver) -> Fn:
        """The exact consistency function f*(x_t, t) = Φ_{t→0}(x_t) (``mixture.consistency_fn(interp, **solver)``:
        one ODE solve per distinct t in a batch)."""
        return mixture.consistency_fn(self.interp, **solver)

    def jump(self, fn: Fn, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x_s from x_t ``[B, *event]`` at times ``t`` ≥ ``s`` (``[B]``): x̂_0 = f(x_t, t), then :meth:`reproject`
        (deterministic: the ε̂ of x_t carried on). s = 0 gives x̂_0. One evaluation of ``fn``."""
        t = time_tensor(t, "t")
        return self.reproject(x_t, fn(x_t, t.to(x_t.dtype)).to(x_t.dtype), t, s)

    def reproject(self, x_t: torch.Tensor, x0: torch.Tensor, t, s) -> torch.Tensor:
        """x_s = α_s x̂_0 + σ_s ε̂ with ε̂ = (x_t − α_t x̂_0)/σ_t (DDIM's step, Song et al. 2021, with the consistency
        x̂_0); ``x_t``, ``x0`` ``[B, *event]``, ``t`` ≥ ``s`` floats or ``[B]``. t = 0 (σ_t = 0) gives x_t."""
        t, s = time_tensor(t, "t"), time_tensor(s, "s")
        if bool((s > t).any()):
            raise ValueError("s must not exceed t: a consistency model jumps towards the data")
        a_t, s_t = (_tb(c, x_t) for c in self.interp.coefs(t.expand(x_t.shape[0]) if t.ndim == 0 else t)[:2])
        a_s, s_s = (_tb(c, x_t) for c in self.interp.coefs(s.expand(x_t.shape[0]) if s.ndim == 0 else s)[:2])
        eps = torch.where(s_t > 0, (x_t - a_t * x0) / s_t.clamp(min=1e-12), torch.zeros_like(x_t))
        return torch.where(s_t > 0, a_s * x0 + s_s * eps, x_t)

    def sample(self, fn: Fn, x_T: torch.Tensor, *, method: str | None = None, steps: int | None = None,
               times=None, generator: torch.Generator | None = None, callback: Callable[[dict], None] | None = None,
               progress: bool = False) -> torch.Tensor:
        """Multistep consistency sampling from ``x_T [B, *event]`` at t = 1 (Song et al. 2023, Algorithm 1):
        ``steps`` NFE at ``times`` (default :func:`sample_times_grid`; the first must be 1). ``"consistency"``
        re-noises with ``generator`` between evaluations; ``"consistency-jump"`` carries ε̂ (:meth:`jump`).
        ``callback`` gets ``{"x", "i", "t", "denoised"}`` after each evaluation; ``progress`` is not read."""
        method = check_choice(method or self.default_method, "method", self.methods)
        ts = [float(v) for v in (sample_times_grid(steps or self.default_steps) if times is None else times)]
        if not ts or ts[0] != 1.0 or any(b >= a or b <= 0 for a, b in zip(ts, ts[1:])):
            raise ValueError(f"times must start at 1.0 and decrease strictly, staying above 0, got {ts}")
        x, B = x_T, x_T.shape[0]
        for i, (t, nxt) in enumerate(zip(ts, ts[1:] + [0.0])):
            tt, ss = torch.full((B,), t, dtype=torch.float64), torch.full((B,), nxt, dtype=torch.float64)
            x0 = fn(x, tt.to(x.dtype)).to(x.dtype)
            if nxt == 0.0:
                x_next = x0
            elif method == "consistency-jump":
                x_next = self.reproject(x, x0, tt, ss)
            else:
                x_next = self.interp.q_sample(x0, ss, randn_like(x0, generator)).to(x.dtype)
            if callback is not None:
                callback({"x": x, "i": i, "t": t, "denoised": x0})
            x = x_next
        return x

    def nfe(self, method: str, steps: int) -> int:
        check_choice(method, "method", self.methods)
        return check_int(steps, "steps", min=1)

    def to_x0(self, output: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        """``output`` is f_θ itself (:meth:`network_fn`): x̂_0."""
        return output

    def to_eps(self, output: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        return self.interp.to_eps(output, "x0", x_t, t)

    def objective(self, *, t_sampling: str | None = None, loss_weighting: str = "uniform", target: str = "conditional",
                  min_snr_gamma: float | None = None, device=None) -> "ConsistencyObjective":
        """:class:`ConsistencyObjective`; its noise levels are improved CT's lognormal ones, so ``t_sampling`` (a
        track's recipe's) is not read; ``loss_weighting`` must be uniform and ``target`` conditional (the λ = 1/Δt
        weights are the objective's own)."""
        if loss_weighting != "uniform" or target != "conditional":
            raise ValueError(f"a consistency objective takes loss_weighting 'uniform' and target 'conditional', got "
                             f"{loss_weighting!r} / {target!r}")
        return ConsistencyObjective(self)

    def to_dict(self) -> dict:
        return {"process": self.name, "interpolant": self.interp.to_dict(), "objective": self.objective_name,
                "teacher": self.teacher, "s0": self.s0, "s1": self.s1, "n_cd": self.n_cd, "rho": self.rho,
                "p_mean": self.p_mean, "p_std": self.p_std, "time_scale": self.time_scale}

    @classmethod
    def from_dict(cls, d: dict) -> "ConsistencyProcess":
        keys = ("s0", "s1", "n_cd", "rho", "p_mean", "p_std", "time_scale")
        return cls(interpolants.from_dict(d["interpolant"]), d.get("objective", "ct"), d.get("teacher"),
                   **{k: d[k] for k in keys if k in d})


class ConsistencyObjective:
    """Consistency distillation (``"cd"``, Song et al. 2023 Algorithm 2) or improved consistency training
    (``"ct"``, Song & Dhariwal 2023) of a :class:`ConsistencyProcess`, for :class:`toydiff.training.Trainer`.

    One draw: an interval i of the discretisation t_0 = 0 < … < t_{N−1} = 1 (:func:`discretisation`) from the
    lognormal levels (:func:`lognormal_index_probs`), ε ~ N(0, I), x_{t_{i+1}} = α x_0 + σ ε; the neighbour
    x_{t_i} is the same (x_0, ε) at t_i (CT) or one Heun step of the teacher's velocity from x_{t_{i+1}} (CD); the loss
    λ_i · d(f_θ(x_{t_{i+1}}, t_{i+1}), sg f_θ(x_{t_i}, t_i)) with d :func:`pseudo_huber` and λ_i = 1 / ((N − 1) Δt_i)
    (improved CT's 1/Δσ, scaled to 1 on a uniform grid). At i = 0 the target is x_0 itself (f(x, 0) = x).
    N: improved CT's curriculum (:func:`curriculum_points`) over the run's steps for CT, ``n_cd`` for CD.

    State: ``step`` (the optimiser steps taken, for the curriculum; restored by :meth:`check_resume` from the
    checkpoint, so a resumed run draws what an uninterrupted one does), ``total_steps`` and the CD teacher
    ``teacher_velocity(x [B, *event], t [B]) -> [B, *event]``, both given by :meth:`bind` (the track knows them).
    The held-out loss is the x_0 regression ‖f(x_t, t) − x_0‖² (per event dim) at 4 fixed times; the exact f*
    scores it on the very same draws (a reference, not a bound: f* is not the minimiser of that regression).
    """

    schedule = None

    def __init__(self, process: ConsistencyProcess):
        if not isinstance(process, ConsistencyProcess):
            raise TypeError(f"process must be a ConsistencyProcess, got {type(process).__name__}")
        self._process, self.interp = process, process.interp
        self.teacher = process.teacher
        self.step, self.total_steps = 0, None
        self.teacher_velocity: Fn | None = None

    @property
    def process(self) -> ConsistencyProcess:
        return self._process

    def bind(self, *, total_steps: int | None = None, teacher_velocity: Fn | None = None) -> "ConsistencyObjective":
        """Give the run's length (CT's curriculum) and the CD teacher's velocity field (in the model's units)."""
        if total_steps is not None:
            self.total_steps = check_int(total_steps, "total_steps", min=1)
        if teacher_velocity is not None:
            self.teacher_velocity = teacher_velocity
        return self

    def network_fn(self, model: Fn) -> Fn:
        return self._process.network_fn(model)

    def times(self) -> torch.Tensor:
        """The discretisation ``[N]`` at the current :attr:`step` (float64)."""
        p = self._process
        if p.objective_name == "cd":
            return discretisation(p.n_cd, p.rho)
        return discretisation(curriculum_points(self.step, self.total_steps or 1, p.s0, p.s1), p.rho)

    def teacher_step(self, x: torch.Tensor, t_hi: torch.Tensor, t_lo: torch.Tensor) -> torch.Tensor:
        """One Heun step (Karras et al. 2022, Algorithm 1) of the teacher's probability-flow ODE from x at ``t_hi``
        down to ``t_lo`` (``[B]``), ``x [B, *event]``; Euler where t_lo = 0 is not reached twice (Heun throughout)."""
        if self.teacher_velocity is None:
            raise ValueError(f"objective 'cd' needs its teacher's velocity ({self.teacher!r}): call bind("
                             "teacher_velocity=...) (the toy track does)")
        v = self.teacher_velocity
        dt = _tb(t_hi - t_lo, x)
        v1 = v(x, t_hi.to(x.dtype)).to(x.dtype)
        x_e = x - dt * v1
        v2 = v(x_e, t_lo.to(x.dtype)).to(x.dtype)
        return x - dt * 0.5 * (v1 + v2)

    def pair_loss(self, fn: Fn, x0: torch.Tensor, i: torch.Tensor, times: torch.Tensor, noise: torch.Tensor,
                  **model_kwargs) -> tuple[torch.Tensor, LossTerms]:
        """(weighted scalar, unweighted :class:`LossTerms` at t = t_{i+1}) for intervals ``i [B]`` of ``times``,
        ``x0``, ``noise`` ``[B, *event]``; ``fn`` the sampler's view of the network (:meth:`network_fn`)."""
        t_hi, t_lo = times[i + 1], times[i]
        x_hi = self.interp.q_sample(x0, t_hi, noise).to(x0.dtype)
        with torch.no_grad():
            if self._process.objective_name == "cd":
                x_lo = self.teacher_step(x_hi, t_hi, t_lo)
            else:
                x_lo = self.interp.q_sample(x0, t_lo, noise).to(x0.dtype)
            target = fn(x_lo, t_lo.to(x0.dtype), **model_kwargs)
        per = pseudo_huber(fn(x_hi, t_hi.to(x0.dtype), **model_kwargs), target)
        weight = 1.0 / ((times.numel() - 1) * (t_hi - t_lo))
        return (per * weight.to(per.dtype)).mean(), LossTerms(per_sample=per, t=t_hi.to(torch.float32))

    def loss(self, model: Fn, x0: torch.Tensor, *, generator: torch.Generator | None = None,
             **model_kwargs) -> tuple[torch.Tensor, LossTerms]:
        """One draw of the loss (class docstring) on ``x0 [B, *event]``; advances :attr:`step`."""
        times = self.times()
        p = lognormal_index_probs(times, self._process.p_mean, self._process.p_std)
        gen_device = generator.device if generator is not None else x0.device
        i = torch.multinomial(p.to(gen_device), x0.shape[0], replacement=True, generator=generator).cpu()
        noise = randn_like(x0, generator)
        out = self.pair_loss(self.network_fn(model), x0, i, times, noise, **model_kwargs)
        self.step += 1
        return out

    def bucket_sums(self, values: torch.Tensor, t: torch.Tensor, n_buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
        return unit_bucket_sums(values, t, n_buckets)

    def held_out_draws(self, shape, *, seed: int, noise_dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Times ``t [N]`` cycling over :data:`HELD_OUT_LEVELS` quarter midpoints (float32) and noise ``[N, *event]`` seeded ``seed``."""
        g = torch.Generator().manual_seed(seed)
        t = ((torch.arange(shape[0]) % HELD_OUT_LEVELS).double() + 0.5) / HELD_OUT_LEVELS
        return t.float(), torch.randn(tuple(shape), generator=g, dtype=noise_dtype)

    def held_out_loss(self, fn: Fn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, *, n_buckets: int = 10,
                      batch_size: int = 65_536, model_kwargs: dict | None = None,
                      context: Callable[[], ContextManager] | None = None) -> tuple[float, list[float]]:
        """(mean, per time bucket) of ‖fn(x_t, t) − x_0‖² (mean over event dims) on fixed ``(x0, t, noise)``."""
        def per(sl, kw):
            tt = t[sl].double()
            x_t = self.interp.q_sample(x0[sl], tt, noise[sl]).to(x0.dtype)
            return (fn(x_t, tt.to(x0.dtype), **kw).double() - x0[sl].double()).pow(2).flatten(1).mean(dim=1)

        return batched_held_out(per, t, self.bucket_sums, n_buckets=n_buckets, batch_size=batch_size,
                                model_kwargs=model_kwargs, context=context)

    def metadata(self) -> dict:
        """The checkpoint keys: the process (objective, teacher, curriculum) and the target."""
        return self._process.to_dict() | {"target": "conditional"}

    def check_resume(self, meta: dict) -> None:
        """Refuse a checkpoint of another process or objective; take its ``step`` (the curriculum's position)."""
        if process_of(meta) != self._process.name:
            raise CheckpointMismatch(f"was trained with --process {process_of(meta)}, not {self._process.name}")
        keys = ("objective", "teacher", "s0", "s1", "n_cd", "rho", "p_mean", "p_std", "time_scale")
        here = self._process.to_dict()
        changed = [k for k in keys if meta.get(k) != here[k]]
        if changed or meta.get("interpolant") != here["interpolant"]:
            diff = ", ".join(f"{k} {meta.get(k)!r} there, {here[k]!r} here" for k in changed or ["interpolant"])
            raise CheckpointMismatch(f"was trained with another consistency objective ({diff})")
        self.step = int(meta.get("step", 0))
