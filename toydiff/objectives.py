"""Training objectives: what :class:`toydiff.training.Trainer` regresses on, for each process it can train.

    obj = VPObjective(schedule)                                  # DDPM ε-prediction (Ho et al. 2020)
    obj = FlowObjective(interpolants.linear(), "velocity")       # conditional flow matching (Lipman et al. 2023)
    terms = obj.loss(model, x0 [B, *event], generator=g)         # LossTerms: per_sample [B], t [B]
    fn = obj.network_fn(model)                                   # fn(x_t, t) in the process's own time

An objective owns everything the engine and its hooks need to know about the process: the training loss
and its per-time weights, how the times of a batch are bucketed for the loss split, the fixed held-out
draws and loss, the time the network is fed, the checkpoint metadata and the check a resume makes.

Time conditioning of a flow network: the networks (toy MLP, MNIST UNets) embed their time input with
:func:`toydiff.embeddings.sinusoidal_embedding`, built for DDPM's integer steps 0 … T − 1. A flow objective
feeds them ``time_scale · t`` with t ∈ [0, 1] continuous and ``time_scale = 1000`` (:data:`FLOW_TIME_SCALE`),
so the embedding sees the same range as a T = 1000 DDPM's and its frequencies resolve the path as finely;
the scale is stored in the checkpoint and :meth:`FlowObjective.network_fn` applies it, so samplers and the
exact oracle always speak in t ∈ [0, 1].
"""

from __future__ import annotations

import copy
from typing import Callable, ContextManager

import torch

from .checks import check_choice, check_number
from .flow_losses import TIME_SAMPLINGS, interpolant_loss
from .interpolants import PREDICTIONS, Interpolant, from_dict as interpolant_from_dict
from .losses import (LOSS_WEIGHTINGS, T_SAMPLINGS, LossTerms, batched_held_out, bucket_sums, eps_prediction_loss,
                     held_out_draws, held_out_loss, loss_weights)
from .schedules import NoiseSchedule
from .stable_target import TARGETS

__all__ = ["PROCESSES", "FLOW_TIME_SCALE", "EPS_T_MAX", "CheckpointMismatch", "VPObjective", "FlowObjective", "objective_from_meta", "process_of"]

PROCESSES = ("vp", "flow")
FLOW_TIME_SCALE = 1000.0
#: where the sampling grid of an ε-predicting flow network starts (α(1) = 0 leaves x̂_0 undefined at t = 1)
EPS_T_MAX = 0.999
Fn = Callable[..., torch.Tensor]


class CheckpointMismatch(ValueError):
    """A resumed checkpoint was trained with another objective (the engine re-raises it as a CheckpointError)."""


class VPObjective:
    """DDPM's ε-prediction loss over the discrete steps of ``schedule`` (Ho et al. 2020, Algorithm 1), with
    optional Min-SNR-γ weights (Hang et al. 2023): exactly the engine's behaviour before objectives existed.
    ``target="stf"`` regresses on the stable target field's ε̂ over the batch instead of each pair's own ε
    (Xu et al. 2023; :func:`toydiff.stable_target.stable_pair`): unconditional batches only."""

    process = "vp"

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
        """Fixed ``(t [N], ε [N, *event])`` for the held-out loss (:func:`toydiff.losses.held_out_draws`)."""
        return held_out_draws(self.schedule, shape, seed=seed, noise_dtype=noise_dtype)

    def held_out_loss(self, fn: Fn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, *, n_buckets: int = 10,
                      batch_size: int = 65_536, model_kwargs: dict | None = None,
                      context: Callable[[], ContextManager] | None = None) -> tuple[float, list[float]]:
        """(mean, per bucket) of the loss of ``fn`` (the sampler's view, :meth:`network_fn`) on fixed draws."""
        return held_out_loss(fn, self.schedule, x0, t=t, noise=noise, n_buckets=n_buckets, batch_size=batch_size,
                             model_kwargs=model_kwargs, context=context)

    def metadata(self) -> dict:
        """The checkpoint keys that describe the process."""
        return {"schedule": self.schedule.to_dict(), "target": self.target}

    def check_resume(self, meta: dict) -> None:
        """Raise :class:`CheckpointMismatch` if ``meta`` was not written under this objective."""
        if process_of(meta) != "vp":
            raise CheckpointMismatch(f"was trained with --process {process_of(meta)}, not vp")
        if NoiseSchedule.from_dict(meta["schedule"]) != self.schedule:
            raise CheckpointMismatch(f"was trained with a different noise schedule ({meta['schedule']['name']})")
        if meta.get("target", "conditional") != self.target:
            raise CheckpointMismatch(f"was trained with target {meta.get('target', 'conditional')!r}, not {self.target!r}")


class FlowObjective:
    """The regression of a ``prediction`` network under a Gaussian interpolant, t continuous in [0, 1]
    (:func:`toydiff.flow_losses.interpolant_loss`): with the linear path and ``"velocity"`` this is conditional
    flow matching / rectified flow (Lipman et al. 2023; Liu et al. 2023); ``"eps"``, ``"x0"``, ``"v"``
    regress on ε, x_0 or v = α ε − σ x_0 (Salimans & Ho 2022). The network is fed ``time_scale · t``.

    ``t_sampling``: ``"uniform"``, ``"low-noise"`` (t = u²) or ``"logit-normal"`` (t = sigmoid(n), n ~ N(0, 1):
    the middle of the path, Esser et al. 2024 §3.1), see :func:`toydiff.flow_losses.sample_times` (the toy
    recipes draw low-noise t: on the 1-D search it beat both others, bench/flow_recipe_search.py).
    A batch may carry its own ``noise [B, *event]`` (the track's batches give it as a keyword): each x_0 is
    then paired with that noise instead of a fresh draw, the coupling reflow trains on (Liu et al. 2023;
    :mod:`toydiff.toy.reflow`).

    ``target``: ``"conditional"`` regresses on each pair's own target; ``"stf"`` on the stable target field
    over the batch (Xu et al. 2023, :func:`toydiff.flow_losses.stable_target`): the same minimiser with less
    gradient noise where the batch's points overlap at x_t (mid / high noise in 1-D / 2-D; the toy recipes use
    it, bench/flow_vs_diffusion.py --trained measures both). It needs unconditional batches with fresh noise.
    The held-out loss always uses the conditional target, so it stays comparable with the Bayes floor.
    """

    process = "flow"

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
        b = (t.double() * n_buckets).long().clamp_(0, n_buckets - 1)
        v = values.detach().double()
        s = torch.zeros(n_buckets, dtype=torch.float64, device=v.device).index_add_(0, b.to(v.device), v)
        return s, torch.zeros_like(s).index_add_(0, b.to(v.device), torch.ones_like(v))

    def held_out_draws(self, shape, *, seed: int, noise_dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed times ``t [N]`` ~ U[0, 1] (float32) then noise ``[N, *event]`` from a CPU generator seeded ``seed``."""
        g = torch.Generator().manual_seed(seed)
        t = torch.rand(shape[0], generator=g, dtype=torch.float64).float()
        return t, torch.randn(tuple(shape), generator=g, dtype=noise_dtype)

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
        """Keywords of :func:`toydiff.sample` for a network of this objective over ``steps`` steps: the
        prediction type and the time grid. An ε network cannot give x̂_0 where α = 0 (t = 1 of linear and
        cosine), so its grid starts at t = :data:`EPS_T_MAX` (x_1 ~ N(0, I) stands for x there, as the VP
        samplers start at ᾱ_{T−1} > 0)."""
        from .flow_samplers import time_grid

        opts = {"prediction": self.prediction}
        if self.prediction == "eps" and float(self.interp.alpha(1.0)) == 0.0:
            return opts | {"times": [t * EPS_T_MAX for t in time_grid(steps, shift=shift)]}
        return opts | {"steps": steps} | ({"shift": shift} if shift is not None else {})

    def metadata(self) -> dict:
        return {"process": "flow", "interpolant": self.interp.to_dict(), "prediction": self.prediction,
                "time_scale": self.time_scale, "target": self.target}

    def check_resume(self, meta: dict) -> None:
        if process_of(meta) != "flow":
            raise CheckpointMismatch(f"was trained with --process {process_of(meta)}, not flow")
        there = (meta.get("interpolant", {}).get("name"), meta.get("prediction"), meta.get("time_scale"),
                 meta.get("target", "conditional"))
        here = (self.interp.name, self.prediction, self.time_scale, self.target)
        if there != here:
            raise CheckpointMismatch(f"was trained with interpolant/prediction/time scale/target {there}, not {here}")


def process_of(meta: dict) -> str:
    """The process a checkpoint's metadata records: ``"flow"``, or ``"vp"`` (also files written before flows)."""
    return meta.get("process", "vp")


def objective_from_meta(meta: dict) -> VPObjective | FlowObjective:
    """The objective a checkpoint was trained under (for sampling: :meth:`network_fn`, ``schedule`` / ``interp``)."""
    process = check_choice(process_of(meta), "process", PROCESSES)
    if process == "vp":
        return VPObjective(NoiseSchedule.from_dict(meta["schedule"]), target=meta.get("target", "conditional"))
    return FlowObjective(interpolant_from_dict(meta["interpolant"]), meta.get("prediction", "velocity"),
                         time_scale=meta.get("time_scale", FLOW_TIME_SCALE), target=meta.get("target", "conditional"))
