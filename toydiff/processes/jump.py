"""Few-step generation by jumps of a learned average velocity: MeanFlow and shortcut models as one process.

    proc = JumpProcess()                                              # linear path, shortcut objective
    x0 = proc.sample(proc.network_fn(model), torch.randn(B, 2), steps=2)   # 2 jumps, 2 evaluations
    x_s = proc.jump(fn, x_t, t, s)                                    # one jump t -> s, [B, *event]

The network u_θ(x_t, r, t) predicts the AVERAGE velocity of the probability-flow ODE over [r, t] on a Gaussian
interpolant (default linear, x_t = (1 − t) x_0 + t ε, t ∈ [0, 1], t = 1 the noise end), so that one evaluation
moves

    x_r = x_t − (t − r) · u_θ(x_t, r, t)

(Geng et al. 2025, "Mean Flows for One-step Generative Modeling"; shortcut models, Frans et al. 2024, "One Step
Diffusion via Shortcut Models", are the same network with the step size d = t − r). At r = t the average velocity
is the instantaneous one, so the network is also a flow-matching velocity. The exact oracle is the mixture's exact
average velocity (:func:`toydiff.exact.flow_map.average_velocity`), so one exact jump IS the exact flow map.

The network sees ``time_scale · t`` and ``time_scale · (t − r)`` (as :class:`~toydiff.processes.InterpolantProcess`
feeds ``time_scale · t``; here :data:`JUMP_TIME_SCALE`, 10, not 1000). Objectives: :class:`MeanFlowObjective`
(the MeanFlow identity through a JVP) and :class:`ShortcutObjective` (flow matching at d = 0 plus self-consistency
of two half jumps), both through the one engine (:class:`toydiff.training.Trainer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, ContextManager

import torch
from tqdm.auto import tqdm

from toydiff.checks import check_choice, check_int, check_number, check_tensor
from toydiff.processes import interpolants
from toydiff.processes.base import CheckpointMismatch, Fn, process_of
from toydiff.processes.forward import randn_like
from toydiff.processes.interpolants import Interpolant, time_tensor
from toydiff.training.flow_losses import (TIME_SAMPLINGS, interpolant_loss, sample_times, unit_bucket_sums,
                                          unit_held_out_draws)
from toydiff.training.losses import LossTerms, batched_held_out

__all__ = ["JUMP_TIME_SCALE", "JumpProcess", "MeanFlowObjective", "ShortcutObjective", "JUMP_OBJECTIVES"]


#: the network sees 10 t and 10 (t − r): MeanFlow's target holds (t − r) du/dt, and the sinusoidal embedding's
#: fastest channel at the flow process's scale 1000 made that derivative large and noisy (bench/jump_recipe_search.py: on
#: 8gaussians the 1-jump path error was 0.44 at 1000, 0.50 at 100, 0.20 at 10 and 1, one training seed)
JUMP_TIME_SCALE = 10.0


def _per_sample(tt: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``tt [B]`` shaped ``[B, 1, ...]`` to broadcast over ``x [B, *event]`` (any rank)."""
    return tt.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


def _batch_times(v, x: torch.Tensor, name: str) -> torch.Tensor:
    """``v`` (a float or ``[B]`` in [0, 1]) as float64 ``[B]`` on ``x``'s device, B = ``x.shape[0]``."""
    tt = time_tensor(v, name)
    tt = tt.expand(x.shape[0]) if tt.ndim == 0 else tt
    if tt.shape != (x.shape[0],):
        raise ValueError(f"{name} must be a scalar or have shape [B={x.shape[0]}], got {tuple(tt.shape)}")
    return tt.to(x.device)


@dataclass(frozen=True)
class JumpProcess:
    """An average-velocity network u_θ(x_t, r, t) over the path ``interp``, trained by ``objective_kind``
    (``"shortcut"``, the default, or ``"meanflow"``, :data:`JUMP_OBJECTIVES`; the default measured best at equal train
    time, bench/jump_recipe_search.py), sampled by N jumps on a uniform grid 1 → 0."""

    interp: Interpolant = field(default_factory=interpolants.linear)
    objective_kind: str = "shortcut"
    time_scale: float = JUMP_TIME_SCALE
    #: objective ``"distill"`` only: ``"exact"`` (the data's exact velocity) or the path of a trained toy flow run
    teacher: str | None = None
    name: ClassVar[str] = "jump"
    prediction: ClassVar[str] = "average_velocity"
    methods: ClassVar[tuple[str, ...]] = ("jump",)
    default_method: ClassVar[str] = "jump"
    default_steps: ClassVar[int] = 2
    #: the ``sample`` options only this process reads (an explicit grid of jump times)
    options: ClassVar[tuple[str, ...]] = ("times",)
    schedule: ClassVar[None] = None
    #: the network takes two times, t and t − r (:func:`toydiff.toy.models.network_config_for`)
    network_times: ClassVar[int] = 2
    keywords: ClassVar[tuple[str, ...]] = ("interpolant", "objective", "teacher")

    @classmethod
    def from_keywords(cls, default_schedule=None, *, interpolant: str = "linear", objective: str = "shortcut",
                      teacher: str | None = None) -> "JumpProcess":
        """The jump process on the named ``interpolant`` trained by ``objective`` (``"distill"``: from ``teacher``,
        default ``"exact"``); ``default_schedule`` unread."""
        builders = interpolants.BUILDERS
        interp = builders[check_choice(interpolant, "interpolant", tuple(builders))]()
        check_choice(objective, "objective", tuple(JUMP_OBJECTIVES))
        if objective != "distill" and teacher is not None:
            raise ValueError(f"teacher applies to objective 'distill' (flow-map distillation), not {objective!r}; "
                             f"got teacher={teacher!r}")
        return cls(interp, objective, teacher=(teacher or "exact") if objective == "distill" else None)

    def __post_init__(self):
        if not isinstance(self.interp, Interpolant):
            raise TypeError(f"interp must be an Interpolant, got {type(self.interp).__name__}")
        if self.interp.schedule is not None:
            raise ValueError(f"interp must be a continuous path (linear, cosine), got {self.interp.name}")
        check_choice(self.objective_kind, "objective", tuple(JUMP_OBJECTIVES))
        if (self.teacher is None) != (self.objective_kind != "distill"):
            raise ValueError(f"teacher must be given for objective 'distill' and only then, got {self.teacher!r}")
        if self.teacher is not None and not isinstance(self.teacher, str):
            raise TypeError(f"teacher must be 'exact' or a path string, got {type(self.teacher).__name__}")
        object.__setattr__(self, "time_scale", check_number(self.time_scale, "time_scale", min=1e-6))

    def describe(self) -> str:
        how = f"jumps distilled from the {self.teacher} teacher" if self.teacher else f"{self.objective_kind} jumps"
        return f"{how} on the {self.interp.name} path"

    def network_fn(self, model: Fn) -> Fn:
        """``fn(x_t [B, *event], r [B], t [B]) = model(x_t, scale · t, scale · (t − r))``: u_θ in [0, 1] time."""
        scale = self.time_scale

        def fn(x: torch.Tensor, r: torch.Tensor, t: torch.Tensor, **kw) -> torch.Tensor:
            t32 = t.to(torch.float32)
            return model(x, t32 * scale, (t32 - r.to(torch.float32)) * scale, **kw)

        return fn

    def exact_fn(self, mixture) -> Fn:
        """``fn(x_t, r, t)`` = the exact average velocity u* (:meth:`~toydiff.GaussianMixture.average_velocity`)."""
        interp = self.interp

        def fn(x: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return mixture.average_velocity(x, r, t, interp).to(x.dtype)

        return fn

    def jump(self, fn: Fn, x_t: torch.Tensor, t, s) -> torch.Tensor:
        """One jump x_s = x_t − (t − s) · fn(x_t, s, t) (Geng et al. 2025, Eq. 1): ``x_t [B, *event]``, ``t``,
        ``s`` floats or ``[B]`` in [0, 1] (s < t towards the data) -> ``x_s [B, *event]``; one evaluation."""
        check_tensor(x_t, "x_t", min_ndim=1)
        tt, ss = _batch_times(t, x_t, "t"), _batch_times(s, x_t, "s")
        u = fn(x_t, ss.to(x_t.dtype), tt.to(x_t.dtype))
        if not isinstance(u, torch.Tensor) or u.shape != x_t.shape:
            raise ValueError(f"fn returned shape {tuple(getattr(u, 'shape', ()))}; expected {tuple(x_t.shape)}")
        return x_t - _per_sample(tt - ss, x_t) * u.to(x_t.dtype)

    def sample(self, fn: Fn, x_T: torch.Tensor, *, method: str | None = None, steps: int | None = None,
               times=None, generator: torch.Generator | None = None, callback: Callable[[dict], None] | None = None,
               progress: bool = False) -> torch.Tensor:
        """``steps`` jumps (default :attr:`default_steps`) on the uniform grid 1 → 0 (or ``times``, decreasing from
        1 to 0), one evaluation each, from ``x_T [B, *event]`` at t = 1. Deterministic (``generator`` unread);
        ``callback`` gets ``{"step", "n_steps", "t", "t_prev", "x_t", "x0_hat", "eps", "x_prev", "method"}`` after
        each jump (x̂_0 = x_t − t · u: this jump's average velocity carried on to t = 0)."""
        check_choice(method or self.default_method, "method", self.methods)
        if times is None:
            n = check_int(self.default_steps if steps is None else steps, "steps", min=1)
            times = torch.linspace(1.0, 0.0, n + 1, dtype=torch.float64).tolist()
        times = [float(v) for v in times]
        if len(times) < 2 or any(a <= b for a, b in zip(times, times[1:])) or times[-1] != 0.0:
            raise ValueError(f"times must decrease strictly and end at 0, got {times}")
        x = x_T
        for i, (t, s) in enumerate(zip(times, times[1:])):
            x_prev = self.jump(fn, x, t, s)
            if callback is not None:  # x̂_0 extrapolates this jump's average velocity to t = 0 (no extra evaluation)
                x0 = x - t / (t - s) * (x - x_prev)
                callback({"step": i, "n_steps": len(times) - 1, "t": t, "t_prev": s, "x_t": x, "x_prev": x_prev,
                          "x0_hat": x0, "eps": self.interp.to_eps(x0, "x0", x, t), "method": "jump"})
            x = x_prev
        return x

    def nfe(self, method: str, steps: int) -> int:
        check_choice(method, "method", self.methods)
        return check_int(steps, "steps", min=1)

    def to_x0(self, output: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        """x̂_0 = x_t − t · u from the network's ``output`` u(x_t, 0, t) (the average velocity over [0, t])."""
        return x_t - _per_sample(time_tensor(t).to(x_t.device), x_t) * output

    def to_eps(self, output: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        """ε̂ from the x̂_0 of :meth:`to_x0` and x_t = α_t x_0 + σ_t ε."""
        return self.interp.to_eps(self.to_x0(output, x_t, t), "x0", x_t, t)

    def objective(self, *, t_sampling: str = "uniform", loss_weighting: str = "uniform", target: str = "conditional",
                  min_snr_gamma: float | None = None, device=None, **options) -> "_JumpObjective":
        """:data:`JUMP_OBJECTIVES`[``objective_kind``] with ``t_sampling`` and its own ``options``; the VP / flow
        keywords (``loss_weighting`` uniform, ``target`` conditional, ``min_snr_gamma``, ``device``) are refused
        when set to anything else."""
        if check_choice(loss_weighting, "loss_weighting", ("uniform", "min-snr", "snr")) != "uniform":
            raise ValueError(f"loss_weighting {loss_weighting!r} is a VP weighting; a jump objective has its own")
        if target != "conditional":
            raise ValueError(f"target must be 'conditional' for the jump process, got {target!r}")
        if self.teacher is not None:
            options = {"teacher": self.teacher} | options
        return JUMP_OBJECTIVES[self.objective_kind](self.interp, time_scale=self.time_scale, t_sampling=t_sampling,
                                                    **options)

    def to_dict(self) -> dict:
        return {"process": "jump", "interpolant": self.interp.to_dict(), "objective": self.objective_kind,
                "time_scale": self.time_scale, "prediction": self.prediction} | (
                    {"teacher": self.teacher} if self.teacher is not None else {})

    @classmethod
    def from_dict(cls, d: dict) -> "JumpProcess":
        return cls(interpolants.from_dict(d["interpolant"]), d.get("objective", "shortcut"),
                   d.get("time_scale", JUMP_TIME_SCALE), d.get("teacher"))


class _JumpObjective:
    """What both jump objectives share: the network's view, held-out loss, buckets, metadata, resume check.

    The held-out loss is the flow-matching loss of the boundary r = t (u_θ(x_t, t, t) against the conditional
    velocity, :func:`toydiff.training.flow_losses.interpolant_loss`): cheap, with the exact Bayes floor of the
    oracle on the same draws. How well the jumps with r < t match the exact flow map is measured by
    ``bench/jump_recipe_search.py`` against :func:`toydiff.exact.flow_map.flow_map`, not by this loss.
    """

    kind: ClassVar[str] = ""
    #: the distillation teacher (:class:`MapDistillObjective` only)
    teacher: str | None = None

    def __init__(self, interp: Interpolant, *, time_scale: float = JUMP_TIME_SCALE, t_sampling: str = "uniform"):
        self.interp, self.time_scale = interp, check_number(time_scale, "time_scale", min=1e-6)
        self.t_sampling = check_choice(t_sampling, "t_sampling", TIME_SAMPLINGS)
        self.schedule = None

    @property
    def process(self) -> JumpProcess:
        return JumpProcess(self.interp, self.kind, self.time_scale, self.teacher)

    def network_fn(self, model: Fn) -> Fn:
        return self.process.network_fn(model)

    def _pair(self, x0: torch.Tensor, generator, noise):
        """Noise ``[B, *event]`` (given or drawn) for ``x0``."""
        check_tensor(x0, "x0", min_ndim=1)
        return randn_like(x0, generator) if noise is None else noise

    def bucket_sums(self, values: torch.Tensor, t: torch.Tensor, n_buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per equal-width bucket of t ∈ [0, 1] ``(sum, count)`` of ``values [B]``."""
        return unit_bucket_sums(values, t, n_buckets)

    def held_out_draws(self, shape, *, seed: int, noise_dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed times ``t [N]`` ~ U[0, 1] (float32) then noise ``[N, *event]`` from a CPU generator seeded ``seed``."""
        return unit_held_out_draws(shape, seed=seed, noise_dtype=noise_dtype)

    def held_out_loss(self, fn: Fn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, *, n_buckets: int = 10,
                      batch_size: int = 65_536, model_kwargs: dict | None = None,
                      context: Callable[[], ContextManager] | None = None) -> tuple[float, list[float]]:
        """(mean, per t bucket) of the r = t flow-matching loss of ``fn(x_t, r, t)`` on fixed draws (float64 sums);
        with the exact oracle as ``fn``, the Bayes floor on the same draws."""
        def boundary(x, tt, **kw):
            return fn(x, tt, tt, **kw)

        return batched_held_out(
            lambda sl, kw: interpolant_loss(boundary, self.interp, x0[sl], kind="velocity", t=t[sl].to(x0.dtype),
                                            noise=noise[sl], **kw).per_sample,
            t, self.bucket_sums, n_buckets=n_buckets, batch_size=batch_size, model_kwargs=model_kwargs,
            context=context)

    def metadata(self) -> dict:
        return self.process.to_dict()

    def check_resume(self, meta: dict) -> None:
        if process_of(meta) != "jump":
            raise CheckpointMismatch(f"was trained with --process {process_of(meta)}, not jump")
        there = (meta.get("interpolant", {}).get("name"), meta.get("objective"), meta.get("time_scale"),
                 meta.get("teacher"))
        here = (self.interp.name, self.kind, self.time_scale, self.teacher)
        if there != here:
            raise CheckpointMismatch(f"was trained with interpolant/objective/time scale/teacher {there}, not {here}")


class MeanFlowObjective(_JumpObjective):
    """MeanFlow (Geng et al. 2025, Algorithm 1): regress u_θ(z_t, r, t) on the stop-gradient target

        u_tgt = v − (t − r) · (v · ∂_z u_θ + ∂_t u_θ),  z_t = α_t x_0 + σ_t ε,  v = α̇_t x_0 + σ̇_t ε,

    the total derivative d/dt u_θ(z_t, r, t) along the conditional path by one JVP (:func:`torch.func.jvp`, tangent
    (v, 0, 1)). The exact average velocity satisfies the identity u = v − (t − r) du/dt with the marginal velocity
    (:meth:`target` with the exact oracle). Two times per sample from ``t_sampling``, t the larger; a share
    ``flow_share`` of the batch has r = t (plain flow matching; the paper's best ImageNet setting keeps 75 %).
    ``adaptive_p``: the paper's adaptive loss weight w = 1 / (‖Δ‖² + 1e-3)^p (p = 0: plain squared error).
    """

    kind = "meanflow"

    def __init__(self, interp: Interpolant, *, time_scale: float = JUMP_TIME_SCALE, t_sampling: str = "uniform",
                 flow_share: float = 0.75, adaptive_p: float = 0.0):
        super().__init__(interp, time_scale=time_scale, t_sampling=t_sampling)
        self.flow_share = check_number(flow_share, "flow_share", min=0.0, max=1.0)
        self.adaptive_p = check_number(adaptive_p, "adaptive_p", min=0.0)

    def times(self, batch: int, generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r, t)`` ``[batch]`` float32: two draws sorted (r ≤ t), r set to t on a ``flow_share`` of the batch."""
        a = sample_times(batch, generator=generator, device=device, distribution=self.t_sampling)
        b = sample_times(batch, generator=generator, device=device, distribution=self.t_sampling)
        t, r = torch.maximum(a, b), torch.minimum(a, b)
        same = torch.rand(batch, generator=generator, device=a.device) < self.flow_share
        return torch.where(same.to(device), t, r), t

    def target(self, fn: Fn, z: torch.Tensor, v: torch.Tensor, r: torch.Tensor, t: torch.Tensor,
               derivative: str = "jvp") -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, u_tgt)``, both ``[B, *event]``: u = fn(z, r, t) and the MeanFlow target (detached). ``derivative``:
        ``"jvp"`` (forward-mode AD, training) or ``"fd"`` (a central difference of step 1e-4, for an ``fn`` that
        autograd cannot see through, such as the exact oracle's ODE solve)."""
        check_choice(derivative, "derivative", ("jvp", "fd"))
        if derivative == "jvp":
            u, dudt = torch.func.jvp(fn, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
        else:
            h = 1e-4
            u = fn(z, r, t)
            dudt = (fn(z + h * v, r, t + h) - fn(z - h * v, r, t - h)) / (2 * h)
        return u, (v - _per_sample(t - r, z) * dudt).detach()

    def loss(self, model: Fn, x0: torch.Tensor, *, generator: torch.Generator | None = None, noise=None,
             **model_kwargs) -> tuple[torch.Tensor, LossTerms]:
        """(the scalar to back-propagate, :class:`LossTerms` with ``t [B]``) for ``x0 [B, *event]``."""
        if model_kwargs:
            raise ValueError(f"the MeanFlow objective takes no model keywords, got {', '.join(model_kwargs)}")
        eps = self._pair(x0, generator, noise)
        r, t = self.times(x0.shape[0], generator, x0.device)
        t, r = t.to(x0.dtype), r.to(x0.dtype)
        z = self.interp.q_sample(x0, t, eps)
        v = self.interp.target(x0, eps, "velocity", t)
        u, goal = self.target(self.network_fn(model), z, v, r, t)
        per = (u.float() - goal.float()).pow(2).flatten(1).mean(dim=1)
        weight = 1.0 if self.adaptive_p == 0 else (per.detach() + 1e-3).pow(-self.adaptive_p)
        return (weight * per).mean(), LossTerms(per_sample=per, t=t)


class ShortcutObjective(_JumpObjective):
    """Shortcut models (Frans et al. 2024, Eq. 5) in the average-velocity form, d = t − r:

        flow matching at d = 0:  ‖u_θ(z_t, t, t) − v‖²            (on a 1 − ``consistency_share`` of the batch)
        self-consistency:        ‖u_θ(z_t, t − 2d, t) − sg(½ (u_1 + u_2))‖²,  u_1 = u_θ(z_t, t − d, t),
                                 u_2 = u_θ(z_t − d u_1, t − 2d, t − d)

    with d = 2^{−k}, k uniform in {1, …, log₂ ``max_steps``} (2d from 2 / ``max_steps`` to 1) and t uniform in
    [2d, 1]. Two halves of a jump make the whole jump, so the network learns every power-of-two step size from its
    own finer steps, bottoming out at flow matching.
    """

    kind = "shortcut"

    def __init__(self, interp: Interpolant, *, time_scale: float = JUMP_TIME_SCALE, t_sampling: str = "uniform",
                 consistency_share: float = 0.25, max_steps: int = 128):
        super().__init__(interp, time_scale=time_scale, t_sampling=t_sampling)
        self.consistency_share = check_number(consistency_share, "consistency_share", min=0.0, max=1.0)
        self.max_steps = check_int(max_steps, "max_steps", min=2)
        if self.max_steps & (self.max_steps - 1):
            raise ValueError(f"max_steps must be a power of two, got {max_steps}")

    def consistency_target(self, fn: Fn, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """½ (u_1 + u_2): the average velocity over [r, t] from two half jumps of ``fn`` (no gradient),
        ``z [B, *event]``, ``r``, ``t`` ``[B]`` -> ``[B, *event]``."""
        with torch.no_grad():
            mid = (r + t) / 2
            u1 = fn(z, mid, t)
            u2 = fn(z - _per_sample(t - mid, z) * u1, r, mid)
            return (u1 + u2) / 2

    def loss(self, model: Fn, x0: torch.Tensor, *, generator: torch.Generator | None = None, noise=None,
             **model_kwargs) -> tuple[torch.Tensor, LossTerms]:
        """(the scalar to back-propagate, :class:`LossTerms` with ``t [B]``) for ``x0 [B, *event]``."""
        if model_kwargs:
            raise ValueError(f"the shortcut objective takes no model keywords, got {', '.join(model_kwargs)}")
        eps, B = self._pair(x0, generator, noise), x0.shape[0]
        k = int(round(B * self.consistency_share))
        t = sample_times(B, generator=generator, device=x0.device, dtype=x0.dtype, distribution=self.t_sampling)
        levels = self.max_steps.bit_length() - 1  # log2 max_steps
        j = torch.randint(1, levels + 1, (k,), generator=generator, device=t.device)
        two_d = torch.pow(2.0, 1 - j.to(torch.float64)).to(x0.dtype).to(x0.device)  # 2d in {2/max_steps, ..., 1}
        t = torch.cat([t[: B - k], two_d + (1 - two_d) * t[B - k:]])
        r = torch.cat([t[: B - k], t[B - k:] - two_d])
        z = self.interp.q_sample(x0, t, eps)
        fn = self.network_fn(model)
        goal = self.interp.target(x0, eps, "velocity", t)
        if k:
            half = self.consistency_target(fn, z[B - k:], r[B - k:], t[B - k:])
            goal = torch.cat([goal[: B - k], half.to(goal.dtype)])
        u = fn(z, r, t)
        per = (u.float() - goal.float()).pow(2).flatten(1).mean(dim=1)
        return per.mean(), LossTerms(per_sample=per, t=t)


class MapDistillObjective(_JumpObjective):
    """Flow-map distillation (Boffi, Albergo & Vanden-Eijnden 2024, "Flow map matching", its Lagrangian
    distillation): regress u_θ(x_t, r, t) on the teacher's own average velocity read off its trajectories,

        ‖u_θ(x_t, r, t) − (x_t − x_r) / (t − r)‖²,   x_t, x_r on one teacher trajectory from x_1 ~ N(0, I),

    with r = t (the teacher's velocity at x_t) on a ``flow_share`` of the batch. The trajectories are computed once:
    ``pool`` draws of x_1 (seeded ``pool_seed``) carried to 0 by Heun's method on the teacher's velocity field
    (``substeps`` steps per cell of a uniform ``grid`` of times k / grid, so the 1, 2, 4, 8 … jump samplers' times are
    on it), kept ``[grid + 1, pool, *event]``; each training pair is a trajectory and two grid times r < t
    (:meth:`draw_pairs`; by default every power-of-two jump length equally often, which put one jump on 8gaussians
    at path error 0.035 data std against 0.061 for uniform pairs, bench/jump_recipe_search.py). The teacher
    (``"exact"``: the mixture's exact velocity, so the trajectories ARE the exact flow map up to Heun's error; or a
    trained toy flow run) is given by the track through :meth:`bind`, as consistency distillation's. The data batch
    ``x0`` gives only the batch size, dtype and event shape; ``t_sampling`` is unread (the times are the grid's).
    """

    kind = "distill"

    def __init__(self, interp: Interpolant, *, time_scale: float = JUMP_TIME_SCALE, t_sampling: str = "uniform",
                 teacher: str = "exact", grid: int = 64, pool: int = 32_768, substeps: int = 2,
                 flow_share: float = 0.25, pool_seed: int = 0, pairs: str = "dyadic"):
        super().__init__(interp, time_scale=time_scale, t_sampling=t_sampling)
        if interp.name != "linear":
            raise ValueError(f"flow-map distillation takes the linear path (its teachers' field), got {interp.name}")
        self.teacher = teacher
        self.grid, self.pool = check_int(grid, "grid", min=1), check_int(pool, "pool", min=1)
        self.substeps = check_int(substeps, "substeps", min=1)
        self.flow_share = check_number(flow_share, "flow_share", min=0.0, max=1.0)
        self.pool_seed = check_int(pool_seed, "pool_seed", min=0)
        self.pairs = check_choice(pairs, "pairs", ("uniform", "dyadic"))
        if self.pairs == "dyadic" and self.grid & (self.grid - 1):
            raise ValueError(f"pairs 'dyadic' needs a power-of-two grid, got grid={grid}")
        self.teacher_velocity: Fn | None = None
        self._paths: torch.Tensor | None = None

    def bind(self, *, total_steps: int | None = None, teacher_velocity: Fn | None = None) -> "MapDistillObjective":
        """Give the teacher's velocity ``v(x [B, *event], t [B]) -> [B, *event]`` in the model's units."""
        if teacher_velocity is not None:
            self.teacher_velocity, self._paths = teacher_velocity, None
        return self

    def _velocity(self, x: torch.Tensor, t: float) -> torch.Tensor:
        if self.teacher_velocity is None:
            raise ValueError("flow-map distillation needs its teacher: bind(teacher_velocity=...) (the toy track "
                             "does this from --teacher)")
        return self.teacher_velocity(x, torch.full((x.shape[0],), t, dtype=x.dtype)).to(x.dtype)

    def trajectories(self, event: tuple[int, ...]) -> torch.Tensor:
        """The teacher's paths ``[grid + 1, pool, *event]`` (float32; index k is time k / grid), computed once."""
        if self._paths is None or self._paths.shape[2:] != tuple(event):
            g = torch.Generator().manual_seed(self.pool_seed)
            x = torch.randn(self.pool, *event, generator=g, dtype=torch.float64)
            paths, h = [x.float()], 1.0 / (self.grid * self.substeps)
            steps = range(self.grid * self.substeps, 0, -1)  # Heun from t = k h to (k − 1) h; a bar on a terminal
            for k in tqdm(steps, desc="teacher trajectories", leave=False, disable=None, mininterval=0.5):
                v = self._velocity(x, k * h)
                pred = x - h * v
                x = x - h / 2 * (v + self._velocity(pred, (k - 1) * h))
                if (k - 1) % self.substeps == 0:
                    paths.append(x.float())
            if not torch.isfinite(x).all():  # a broken trained teacher: say so before any training step
                raise ValueError(f"teacher {self.teacher!r}: its velocity carried the noise to non-finite values; "
                                 "check the teacher run")
            self._paths = torch.stack(paths[::-1])
        return self._paths

    def draw_pairs(self, batch: int, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(trajectory, hi, lo)``, each ``[batch]`` int64 on the CPU: a trajectory of the pool and two grid
        indices lo ≤ hi (times lo / grid ≤ hi / grid); lo = hi on a ``flow_share`` of the batch.
        ``pairs="dyadic"``: a jump of 2^−k (k uniform in 0 … log₂ grid) at a t drawn uniformly on the grid above
        it; ``"uniform"``: t uniform on the grid, r uniform below it."""
        n, dev = self.grid, (generator.device if generator is not None else torch.device("cpu"))

        def uniform(size=(batch,)):
            return torch.rand(size, generator=generator, device=dev, dtype=torch.float64).cpu()

        which = (uniform() * self.pool).long()
        if self.pairs == "uniform":
            hi = 1 + (uniform() * n).long()
            lo = (uniform() * hi).long()
        else:
            cells = n >> (uniform() * n.bit_length()).long()
            hi = cells + (uniform() * (n - cells + 1)).long()
            lo = hi - cells
        same = uniform() < self.flow_share
        return which, hi, torch.where(same, hi, lo)

    def loss(self, model: Fn, x0: torch.Tensor, *, generator: torch.Generator | None = None, noise=None,
             **model_kwargs) -> tuple[torch.Tensor, LossTerms]:
        """(the scalar to back-propagate, :class:`LossTerms` with ``t [B]``) for a batch the size of ``x0``."""
        if model_kwargs:
            raise ValueError(f"flow-map distillation takes no model keywords, got {', '.join(model_kwargs)}")
        check_tensor(x0, "x0", min_ndim=1)
        paths, B, n = self.trajectories(tuple(x0.shape[1:])), x0.shape[0], self.grid
        which, hi, lo = self.draw_pairs(B, generator)
        same = hi == lo
        x_t, x_r = paths[hi, which].to(x0), paths[lo, which].to(x0)
        t, r = (hi.double() / n).to(x0), (lo.double() / n).to(x0)
        d = _per_sample(torch.where(same, torch.ones_like(t), t - r), x_t)
        goal = (x_t - x_r) / d
        if same.any():  # r = t: the teacher's instantaneous velocity
            k = same.nonzero().flatten()
            goal[k] = self.teacher_velocity(x_t[k].double(), t[k].double()).to(goal)
        u = self.network_fn(model)(x_t, r, t)
        per = (u.float() - goal.float()).pow(2).flatten(1).mean(dim=1)
        return per.mean(), LossTerms(per_sample=per, t=t)


#: the jump process's objectives by name (``--objective``)
JUMP_OBJECTIVES = {"meanflow": MeanFlowObjective, "shortcut": ShortcutObjective, "distill": MapDistillObjective}
