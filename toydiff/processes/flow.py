"""Flow matching over a continuous Gaussian interpolant as a :class:`~toydiff.processes.base.Process`.

    proc = InterpolantProcess(interpolants.linear(), "velocity")       # rectified flow (Liu et al. 2023)
    x0 = proc.sample(proc.network_fn(model), torch.randn(B, 2), method="heun", steps=16)

The network predicts ``prediction`` (velocity, ε, x_0 or v) at t ∈ [0, 1] (t = 1 the noise end); it is fed
``time_scale · t`` (:data:`FLOW_TIME_SCALE`): the networks embed their time input with
:func:`toydiff.embeddings.sinusoidal_embedding`, built for DDPM's integer steps 0 … T − 1, and a scale of 1000
gives them the range of a T = 1000 DDPM's, so its frequencies resolve the path as finely. Samplers and the
exact oracle always speak in t ∈ [0, 1]. Its objective (:class:`FlowObjective`) is conditional flow matching and
the interpolant regressions (Lipman et al. 2023; Salimans & Ho 2022).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, ClassVar, ContextManager

import torch

from toydiff.checks import check_choice, check_number
from toydiff.processes import interpolants
from toydiff.processes.base import CheckpointMismatch, Fn, process_of
from toydiff.processes.interpolants import PREDICTIONS, Interpolant
from toydiff.sampling.flow_steps import FLOW_METHODS, flow_evaluations, sample_interpolant, time_grid
from toydiff.training.flow_losses import TIME_SAMPLINGS, interpolant_loss, unit_bucket_sums, unit_held_out_draws
from toydiff.training.losses import LOSS_WEIGHTINGS, LossTerms, batched_held_out
from toydiff.training.stable_target import TARGETS

__all__ = ["FLOW_TIME_SCALE", "EPS_T_MAX", "InterpolantProcess", "FlowObjective"]

FLOW_TIME_SCALE = 1000.0
#: where the sampling grid of an ε-predicting flow network starts (α(1) = 0 leaves x̂_0 undefined at t = 1)
EPS_T_MAX = 0.999


@dataclass(frozen=True)
class InterpolantProcess:
    """A ``prediction`` network over the continuous path ``interp`` (linear, cosine), fed ``time_scale · t``."""

    interp: Interpolant
    prediction: str = "velocity"
    time_scale: float = FLOW_TIME_SCALE
    name: ClassVar[str] = "flow"
    methods: ClassVar[tuple[str, ...]] = FLOW_METHODS
    default_method: ClassVar[str] = "heun"
    default_steps: ClassVar[int] = 16
    #: the ``sample`` options only this process's methods read
    options: ClassVar[tuple[str, ...]] = ("times", "shift")
    schedule: ClassVar[None] = None

    #: what a track may build it from (``train_toy(interpolant=..., prediction=...)``): see :meth:`from_keywords`
    keywords: ClassVar[tuple[str, ...]] = ("interpolant", "prediction")

    @classmethod
    def from_keywords(cls, default_schedule=None, *, interpolant: str = "linear", prediction: str = "velocity"
                      ) -> "InterpolantProcess":
        """A ``prediction`` network on the named ``interpolant`` path (default rectified flow with a velocity);
        ``default_schedule`` (a track's VP default) is not read."""
        builders = interpolants.BUILDERS
        return cls(builders[check_choice(interpolant, "interpolant", tuple(builders))](), prediction)

    def __post_init__(self):
        if not isinstance(self.interp, Interpolant):
            raise TypeError(f"interp must be an Interpolant, got {type(self.interp).__name__}")
        check_choice(self.prediction, "prediction", PREDICTIONS)
        object.__setattr__(self, "time_scale", check_number(self.time_scale, "time_scale", min=1e-6))

    def describe(self) -> str:
        return f"flow matching on the {self.interp.name} path ({self.prediction} prediction)"

    def network_fn(self, model: Fn) -> Fn:
        """``fn(x_t, t float [B] in [0, 1], **kw) = model(x_t, time_scale · t, **kw)``: the sampler's view."""
        scale = self.time_scale

        def fn(x: torch.Tensor, t: torch.Tensor, **kw) -> torch.Tensor:
            return model(x, t.to(torch.float32) * scale, **kw)

        return fn

    def exact_fn(self, mixture) -> Fn:
        """The exact prediction of this type under the path (:meth:`~toydiff.GaussianMixture.denoiser`)."""
        return mixture.denoiser(self.interp, self.prediction)

    def grid_options(self, steps: int, shift: float | None = None) -> dict:
        """Keywords of :func:`toydiff.sample` for ``steps`` steps: the prediction type and the time grid. An ε
        network cannot give x̂_0 where α = 0 (t = 1 of linear and cosine), so its grid starts at t =
        :data:`EPS_T_MAX` (x_1 ~ N(0, I) stands for x there, as the VP samplers start at ᾱ_{T−1} > 0)."""
        opts = {"prediction": self.prediction}
        if self.prediction == "eps" and float(self.interp.alpha(1.0)) == 0.0:
            return opts | {"times": [t * EPS_T_MAX for t in time_grid(steps, shift=shift)]}
        return opts | {"steps": steps} | ({"shift": shift} if shift is not None else {})

    def sample(self, fn: Fn, x_T: torch.Tensor, *, method: str | None = None, steps: int | None = None,
               **options) -> torch.Tensor:
        """Integrate the probability-flow ODE from ``x_T`` at t = 1 (``times=``: an explicit grid; ``shift=``)."""
        if "times" in options:
            options = options | {"prediction": self.prediction}
        else:
            options = {k: v for k, v in options.items() if k != "shift"} | self.grid_options(
                self.default_steps if steps is None else steps, options.get("shift"))
        return sample_interpolant(fn, x_T, self.interp, method=method or self.default_method, **options)

    def nfe(self, method: str, steps: int) -> int:
        return flow_evaluations(method, steps, self.interp, self.prediction)

    def to_x0(self, output: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        return self.interp.to_x0(output, self.prediction, x_t, t)

    def to_eps(self, output: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        return self.interp.to_eps(output, self.prediction, x_t, t)

    @property
    def pf_ode_t_min(self) -> float:
        """Where :func:`toydiff.evaluation.likelihood.pf_ode_likelihood` starts: t = 0, or 1/T on a schedule's
        :func:`~toydiff.processes.interpolants.vp` path (whose velocity is infinite at 0)."""
        return 1.0 / self.interp.schedule.T if self.interp.schedule is not None else 0.0

    @property
    def prior_sigma(self) -> float:
        """σ(1), the scale of the N(0, σ(1)² I) prior at t = 1."""
        return float(self.interp.sigma(1.0))

    def pf_ode_field(self, fn: Fn) -> Callable[[torch.Tensor, float], torch.Tensor]:
        """The probability-flow field ``u(x [B, *event], t float in [0, 1])``: ``fn(x, t float [B])``'s prediction
        converted to the velocity (:meth:`~toydiff.processes.interpolants.Interpolant.to_velocity`)."""
        interp, prediction = self.interp, self.prediction

        def field(x: torch.Tensor, t: float) -> torch.Tensor:
            tt = torch.full((x.shape[0],), t, dtype=torch.float64)
            pred = fn(x, tt.to(x.dtype))
            pred = pred.to(x.dtype)
            return pred if prediction == "velocity" else interp.to_velocity(pred, prediction, x, tt)

        return field

    # --- the deterministic few-step sampler (progressive distillation, toydiff.training.distill) ---------
    def step_grid(self, steps: int) -> list[tuple[float, float]]:
        """The ``(t, s)`` pairs of ``steps`` uniform steps from t = 1 to 0 (:func:`time_grid`; they nest under halving)."""
        grid = time_grid(steps)
        return list(zip(grid[:-1], grid[1:]))

    def step_options(self, steps: int) -> dict:
        """The :meth:`sample` keywords of the deterministic step a distilled student is run with: Euler, which is
        DDIM (x_s = α_s x̂_0 + σ_s ε̂) on the linear path only, so other paths are refused (ValueError)."""
        if self.interp.name != "linear" or self.prediction == "eps":
            raise ValueError(f"a distilled flow student runs Euler steps, DDIM only on the linear path with a "
                             f"prediction finite at t = 1; this process is {self.describe()}")
        return {"method": "euler", "steps": len(self.step_grid(steps))}  # an int: a grid of times is refused

    def path_coefs(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(α_t, σ_t)`` float64 ``[B]`` of the path at times ``t [B]`` in [0, 1]."""
        a, s, _, _ = self.interp.coefs(t.double())
        return a, s

    def objective(self, *, t_sampling: str = "uniform", loss_weighting: str = "uniform", target: str = "conditional",
                  min_snr_gamma: float | None = None, device=None) -> "FlowObjective":
        """:class:`FlowObjective` with ``t_sampling``, ``loss_weighting`` (uniform only) and ``target``;
        ``min_snr_gamma`` and ``device`` are read by VP's Min-SNR weights alone (flow weights are uniform)."""
        return FlowObjective(self.interp, self.prediction, time_scale=self.time_scale, t_sampling=t_sampling,
                             loss_weighting=loss_weighting, target=target)

    def to_dict(self) -> dict:
        return {"process": "flow", "interpolant": self.interp.to_dict(), "prediction": self.prediction,
                "time_scale": self.time_scale}

    @classmethod
    def from_dict(cls, d: dict) -> "InterpolantProcess":
        return cls(interpolants.from_dict(d["interpolant"]), d.get("prediction", "velocity"),
                   d.get("time_scale", FLOW_TIME_SCALE))


class FlowObjective:
    """The regression of a ``prediction`` network under a Gaussian interpolant, t continuous in [0, 1]
    (:func:`toydiff.training.flow_losses.interpolant_loss`): with the linear path and ``"velocity"`` this is conditional
    flow matching / rectified flow (Lipman et al. 2023; Liu et al. 2023); ``"eps"``, ``"x0"``, ``"v"``
    regress on ε, x_0 or v = α ε − σ x_0 (Salimans & Ho 2022). The network is fed ``time_scale · t``.

    ``t_sampling``: ``"uniform"``, ``"low-noise"`` (t = u²) or ``"logit-normal"`` (t = sigmoid(n), n ~ N(0, 1):
    the middle of the path, Esser et al. 2024 §3.1), see :func:`toydiff.training.flow_losses.sample_times` (the toy
    recipes draw low-noise t: on the 1-D search it beat both others, bench/flow_recipe_search.py).
    A batch may carry its own ``noise [B, *event]`` (the track's batches give it as a keyword): each x_0 is
    then paired with that noise instead of a fresh draw, the coupling reflow trains on (Liu et al. 2023;
    :mod:`toydiff.toy.reflow`).

    ``target``: ``"conditional"`` regresses on each pair's own target; ``"stf"`` on the stable target field
    over the batch (Xu et al. 2023, :func:`toydiff.training.flow_losses.stable_target`): the same minimiser with less
    gradient noise where the batch's points overlap at x_t (mid / high noise in 1-D / 2-D; the toy recipes use
    it, bench/flow_vs_diffusion.py --trained measures both). It needs unconditional batches with fresh noise.
    The held-out loss always uses the conditional target, so it stays comparable with the Bayes floor.
    """

    @property
    def process(self) -> InterpolantProcess:
        """The process this objective trains (its interpolant, prediction type and time scale)."""
        return InterpolantProcess(self.interp, self.prediction, self.time_scale)

    def __init__(self, interp: Interpolant, prediction: str = "velocity", *, t_sampling: str = "uniform",
                 loss_weighting: str = "uniform", time_scale: float = FLOW_TIME_SCALE, target: str = "conditional"):
        if not isinstance(interp, Interpolant):
            raise TypeError(f"interp must be an Interpolant, got {type(interp).__name__}")
        if interp.schedule is not None:
            raise ValueError(f"interp must be a continuous path (linear, cosine), got {interp.name}: train a VP "
                             "schedule with VPObjective")
        self.interp, self.prediction = interp, check_choice(prediction, "prediction", PREDICTIONS)
        self.t_sampling = check_choice(t_sampling, "t_sampling", TIME_SAMPLINGS)
        if check_choice(loss_weighting, "loss_weighting", LOSS_WEIGHTINGS) != "uniform":
            raise ValueError(f"loss_weighting {loss_weighting!r} is a VP (ε-loss) weighting; a flow objective "
                             "trains with uniform weights")
        self.time_scale = check_number(time_scale, "time_scale", min=1e-6)
        self.target = check_choice(target, "target", TARGETS)
        self.schedule = None

    def with_target(self, target: str) -> "FlowObjective":
        """The same objective with another regression ``target`` (reflow's coupled pairs need ``"conditional"``)."""
        new = copy.copy(self)
        new.target = check_choice(target, "target", TARGETS)
        return new

    def network_fn(self, model: Fn) -> Fn:
        """``fn(x_t, t float [B] in [0, 1], **kw) = model(x_t, time_scale · t, **kw)``: the sampler's view."""
        scale = self.time_scale

        def fn(x: torch.Tensor, t: torch.Tensor, **kw) -> torch.Tensor:
            return model(x, t.to(torch.float32) * scale, **kw)

        return fn

    def loss(self, model: Fn, x0: torch.Tensor, *, generator: torch.Generator | None = None, noise=None,
             **model_kwargs) -> tuple[torch.Tensor, LossTerms]:
        """(the scalar to back-propagate, :class:`LossTerms` with float times ``t [B]``) for ``x0 [B, *event]``;
        ``noise [B, *event]``: the coupled noise of each x_0 (default: fresh draws from ``generator``)."""
        if self.target == "stf" and noise is not None:
            raise ValueError("target 'stf' assumes noise drawn independently of x_0; this batch carries coupled noise "
                             "(reflow): train it with target='conditional'")
        terms = interpolant_loss(self.network_fn(model), self.interp, x0, kind=self.prediction, generator=generator,
                                 t_sampling=self.t_sampling, noise=noise, target=self.target, **model_kwargs)
        return terms.loss, terms

    def bucket_sums(self, values: torch.Tensor, t: torch.Tensor, n_buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per equal-width time bucket of [0, 1] ``(sum, count)`` of ``values [B]`` at times ``t [B]``."""
        return unit_bucket_sums(values, t, n_buckets)

    def held_out_draws(self, shape, *, seed: int, noise_dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed times ``t [N]`` ~ U[0, 1] (float32) then noise ``[N, *event]`` from a CPU generator seeded ``seed``."""
        return unit_held_out_draws(shape, seed=seed, noise_dtype=noise_dtype)

    def held_out_loss(self, fn: Fn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, *, n_buckets: int = 10,
                      batch_size: int = 65_536, model_kwargs: dict | None = None,
                      context: Callable[[], ContextManager] | None = None) -> tuple[float, list[float]]:
        """(mean, per time bucket) of the loss of ``fn(x_t, t ∈ [0, 1])`` on fixed ``(x0, t, noise)`` (float64 sums).
        With the exact oracle's prediction as ``fn`` this is the Bayes floor on the very same draws."""
        return batched_held_out(
            lambda sl, kw: interpolant_loss(fn, self.interp, x0[sl], kind=self.prediction, t=t[sl].to(x0.dtype),
                                            noise=noise[sl], **kw).per_sample,
            t, self.bucket_sums, n_buckets=n_buckets, batch_size=batch_size, model_kwargs=model_kwargs,
            context=context)

    def sampler_options(self, steps: int, shift: float | None = None) -> dict:
        """:meth:`InterpolantProcess.grid_options` of this objective's process."""
        return self.process.grid_options(steps, shift)

    def metadata(self) -> dict:
        """The checkpoint keys that describe the process and the target."""
        return self.process.to_dict() | {"target": self.target}

    def check_resume(self, meta: dict) -> None:
        if process_of(meta) != "flow":
            raise CheckpointMismatch(f"was trained with --process {process_of(meta)}, not flow")
        there = (meta.get("interpolant", {}).get("name"), meta.get("prediction"), meta.get("time_scale"),
                 meta.get("target", "conditional"))
        here = (self.interp.name, self.prediction, self.time_scale, self.target)
        if there != here:
            raise CheckpointMismatch(f"was trained with interpolant/prediction/time scale/target {there}, not {here}")
