"""The variance-preserving discrete process of DDPM (Ho et al. 2020) as a :class:`~toydiff.processes.base.Process`.

    proc = VPProcess(schedules.linear(T=1000))
    x0 = proc.sample(proc.network_fn(model), torch.randn(B, 1, 28, 28), method="ddim", steps=50, generator=g)

The network predicts ε at integer steps t ∈ {0, …, T − 1}; every VP sampler of :mod:`toydiff.sampling` runs on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, ClassVar, ContextManager, Sequence

import torch

from toydiff.checks import check_choice
from toydiff.processes import forward, interpolants
from toydiff.processes.base import CheckpointMismatch, Fn, process_of
from toydiff.processes.schedules import NoiseSchedule
from toydiff.sampling.loop import METHODS, function_evaluations, sample
from toydiff.training.losses import (LOSS_WEIGHTINGS, T_SAMPLINGS, LossTerms, bucket_sums, eps_prediction_loss,
                                     held_out_draws, held_out_loss, loss_weights)
from toydiff.training.stable_target import TARGETS

__all__ = ["VPProcess", "VPObjective"]


@dataclass(frozen=True)
class VPProcess:
    """DDPM's process over ``schedule``: an ε network fed integer steps ``t LongTensor [B]``."""

    schedule: NoiseSchedule
    name: ClassVar[str] = "vp"
    prediction: ClassVar[str] = "eps"
    methods: ClassVar[tuple[str, ...]] = METHODS
    default_method: ClassVar[str] = "ddpm"
    default_steps: ClassVar[int | None] = None
    #: the ``sample`` options only this process's methods read
    options: ClassVar[tuple[str, ...]] = ("spacing", "eta", "variance", "project")

    #: what a track may build it from (``train_toy(schedule=...)``): see :meth:`from_keywords`
    keywords: ClassVar[tuple[str, ...]] = ("schedule",)

    @classmethod
    def from_keywords(cls, default_schedule: Callable[[], NoiseSchedule], *, schedule: NoiseSchedule | None = None
                      ) -> "VPProcess":
        """DDPM over ``schedule``, or over ``default_schedule()`` (the track's, e.g. a recipe's) when it is ``None``."""
        return cls(default_schedule() if schedule is None else schedule)

    def __post_init__(self):
        if not isinstance(self.schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule, got {type(self.schedule).__name__}")

    @property
    def interp(self) -> interpolants.Interpolant:
        """The same process as a continuous path (:func:`toydiff.processes.interpolants.vp`)."""
        return interpolants.vp(self.schedule)

    def describe(self) -> str:
        return f"DDPM over {self.schedule.name} (T = {self.schedule.T})"

    def network_fn(self, model: Fn) -> Fn:
        """``model`` unchanged: it is called as ``model(x_t, t LongTensor [B], **kw) -> ε̂``."""
        return model

    def exact_fn(self, mixture) -> Fn:
        """The exact ε* of ``mixture`` under this schedule (:meth:`~toydiff.GaussianMixture.eps_fn`)."""
        return mixture.eps_fn(self.schedule)

    def sample(self, fn: Fn, x_T: torch.Tensor, *, method: str | None = None, steps=None, **options) -> torch.Tensor:
        """:func:`toydiff.sample` over the schedule (``steps``: ``None`` every step, an int, or explicit steps)."""
        return sample(fn, x_T, self.schedule, method=method or self.default_method, steps=steps, **options)

    def nfe(self, method: str, steps: int) -> int:
        return function_evaluations(method, steps)

    def to_x0(self, output: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        return forward.eps_to_x0(self.schedule, x_t, t, output)

    def to_eps(self, output: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        return output

    #: where :func:`toydiff.evaluation.likelihood.pf_ode_likelihood` starts (the data) and its prior's scale
    pf_ode_t_min: ClassVar[float] = 0.0
    prior_sigma: ClassVar[float] = 1.0

    def pf_ode_field(self, fn: Fn) -> Callable[[torch.Tensor, float], torch.Tensor]:
        """The probability-flow field ``u(x [B, *event], t float in [0, 1])`` of the ε-predictor ``fn`` over the
        steps, on :func:`~toydiff.processes.interpolants.vp` (step k at t = (k + 1)/T): the knots' scores
        s_k = −ε(x, k)/σ_k interpolated linearly in σ² between knots (held at step 0's below 1/T), and
        u = (α̇/α)(x + ŝ) (Song et al. 2021, Sec. 4.3; see :mod:`toydiff.evaluation.likelihood`)."""
        schedule = self.schedule
        interp, T = interpolants.vp(schedule), schedule.T
        sig2 = (1 - schedule.alpha_bars).tolist()  # σ_k² at the knots

        def score_at(x: torch.Tensor, k: int) -> torch.Tensor:
            eps = fn(x, torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)).to(x.dtype)
            return -eps / math.sqrt(sig2[k])

        def field(x: torch.Tensor, t: float) -> torch.Tensor:
            a, s, da, _ = (float(c) for c in interp.coefs(torch.tensor([t], dtype=torch.float64)))
            k = min(max(int(math.floor(t * T - 1)), 0), max(T - 2, 0))
            w = 0.0 if T == 1 else min(max((s * s - sig2[k]) / (sig2[k + 1] - sig2[k]), 0.0), 1.0)
            score = score_at(x, k) if w == 0 else (1 - w) * score_at(x, k) + w * score_at(x, k + 1)
            return (da / a) * (x + score)

        return field

    # --- the deterministic few-step sampler (progressive distillation, toydiff.training.distill) ---------
    def step_grid(self, steps: int | Sequence[int]) -> list[tuple[int, int]]:
        """The ``(t, s)`` pairs of DDIM at ``steps`` steps with trailing spacing (from T − 1; ``s = −1``: the clean
        end): halving ``steps`` keeps every other boundary, so the grids of a distillation's rounds nest. An explicit
        strictly descending sequence of timesteps (a student's own grid, e.g. ``(999, 249)``) gives its pairs."""
        return self.schedule.respace(steps, "trailing").pairs

    def step_options(self, steps: int | Sequence[int]) -> dict:
        """The :meth:`sample` keywords that run :meth:`step_grid` with deterministic DDIM (η = 0); an explicit grid
        is kept as a list of ints (JSON, a checkpoint's record)."""
        plan = self.schedule.respace(steps, "trailing")  # refuses a bad count or grid here, naming steps
        return {"method": "ddim", "steps": steps if isinstance(steps, int) else list(plan.timesteps),
                "spacing": "trailing"}

    def path_coefs(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(α_t, σ_t)`` float64 ``[B]`` with x_t = α_t x_0 + σ_t ε at integer steps ``t [B]`` (−1: (1, 0))."""
        ab = self.schedule.alpha_bars.to(t.device)[t.clamp(min=0).long()]
        ab = torch.where(t < 0, torch.ones_like(ab), ab)
        return ab.sqrt(), (1 - ab).sqrt()

    def objective(self, **options):
        """:class:`~toydiff.processes.VPObjective` (``t_sampling``, ``loss_weighting``, ``min_snr_gamma``,
        ``target``, ``device``)."""
        return VPObjective(self.schedule, **options)

    def to_dict(self) -> dict:
        """``{"schedule": …}``: checkpoints written before processes had names read the same."""
        return {"schedule": self.schedule.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "VPProcess":
        return cls(NoiseSchedule.from_dict(d["schedule"]))


class VPObjective:
    """DDPM's ε-prediction loss over the discrete steps of ``schedule`` (Ho et al. 2020, Algorithm 1), with
    optional Min-SNR-γ weights (Hang et al. 2023): exactly the engine's behaviour before objectives existed.
    ``target="stf"`` regresses on the stable target field's ε̂ over the batch instead of each pair's own ε
    (Xu et al. 2023; :func:`toydiff.training.stable_target.stable_pair`): unconditional batches only."""

    @property
    def process(self) -> VPProcess:
        """The process this objective trains (:class:`VPProcess` of its schedule)."""
        return VPProcess(self.schedule)

    def __init__(self, schedule: NoiseSchedule, *, t_sampling: str = "uniform", loss_weighting: str = "uniform",
                 min_snr_gamma: float = 5.0, device=None, target: str = "conditional"):
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        self.schedule, self.t_sampling = schedule, check_choice(t_sampling, "t_sampling", T_SAMPLINGS)
        self.target = check_choice(target, "target", TARGETS)
        check_choice(loss_weighting, "loss_weighting", LOSS_WEIGHTINGS)
        self.weight_of_t = loss_weights(schedule, torch.arange(schedule.T, device=device), loss_weighting,
                                        gamma=min_snr_gamma)

    def network_fn(self, model: Fn) -> Fn:
        """The network as the sampler calls it: ``model(x_t, t LongTensor [B], **kw) -> ε̂``, unchanged."""
        return model

    def loss(self, model: Fn, x0: torch.Tensor, *, generator: torch.Generator | None = None,
             **model_kwargs) -> tuple[torch.Tensor, LossTerms]:
        """(the scalar to back-propagate, the unweighted :class:`LossTerms`) for one batch ``x0 [B, *event]``."""
        terms = eps_prediction_loss(model, self.schedule, x0, generator=generator, t_sampling=self.t_sampling,
                                    target=self.target, **model_kwargs)
        loss = terms.loss if self.weight_of_t is None else (terms.per_sample * self.weight_of_t[terms.t]).mean()
        return loss, terms

    def bucket_sums(self, values: torch.Tensor, t: torch.Tensor, n_buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per equal-width step bucket ``(sum, count)`` of ``values [B]`` at steps ``t [B]``, float64 ``[n]``."""
        return bucket_sums(values, t, self.schedule.T, n_buckets)

    def held_out_draws(self, shape, *, seed: int, noise_dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed ``(t [N], ε [N, *event])`` for the held-out loss (:func:`toydiff.training.losses.held_out_draws`)."""
        return held_out_draws(self.schedule, shape, seed=seed, noise_dtype=noise_dtype)

    def held_out_loss(self, fn: Fn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, *, n_buckets: int = 10,
                      batch_size: int = 65_536, model_kwargs: dict | None = None,
                      context: Callable[[], ContextManager] | None = None) -> tuple[float, list[float]]:
        """(mean, per bucket) of the loss of ``fn`` (the sampler's view, :meth:`network_fn`) on fixed draws."""
        return held_out_loss(fn, self.schedule, x0, t=t, noise=noise, n_buckets=n_buckets, batch_size=batch_size,
                             model_kwargs=model_kwargs, context=context)

    def metadata(self) -> dict:
        """The checkpoint keys that describe the process and the target."""
        return self.process.to_dict() | {"target": self.target}

    def check_resume(self, meta: dict) -> None:
        """Raise :class:`CheckpointMismatch` if ``meta`` was not written under this objective."""
        if process_of(meta) != "vp":
            raise CheckpointMismatch(f"was trained with --process {process_of(meta)}, not vp")
        if NoiseSchedule.from_dict(meta["schedule"]) != self.schedule:
            raise CheckpointMismatch(f"was trained with a different noise schedule ({meta['schedule']['name']})")
        if meta.get("target", "conditional") != self.target:
            raise CheckpointMismatch(f"was trained with target {meta.get('target', 'conditional')!r}, not {self.target!r}")
