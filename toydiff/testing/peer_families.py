"""diffusers schedulers of the families beyond discrete VP: flow matching, EDM, consistency, flow map.

:func:`toydiff.testing.from_diffusers` sends a scheduler class here when it is not a discrete-VP ε scheduler
(:func:`diffusers_family`). Each family drives the scheduler's own loop — ``set_timesteps``, per timestep
``scale_model_input`` (where it has one) → the exact model of that family (:mod:`toydiff.testing.families`) →
``step`` — as a pipeline does, and reports the levels the state passed through in Karras' σ (σ_t/α_t: inf at
pure noise, 0 clean), so the kit's properties and its exact ODE reference apply unchanged:

- ``flow`` (``FlowMatchEulerDiscreteScheduler``, ``FlowMatchHeunDiscreteScheduler``): the rectified-flow path
  x_t = (1 − t) x_0 + t ε, the model the exact velocity u* = E[ε − x_0 | x_t] at t = timestep / num_train_timesteps
  (what a pipeline's transformer is told), so a shifted or dynamically shifted grid (``shift``, ``mu``) is
  whatever the scheduler makes it; the kit's x_T (VP state at σ = inf) is the flow's x_1 = ε;
- ``edm`` (``EDMEulerScheduler``, ``EDMDPMSolverMultistepScheduler``): the raw EDM network F, given c_in·x and
  c_noise = ln(σ)/4 (Karras et al. 2022, Table 1), with D = c_skip x + c_out F the exact x̂_0;
- ``consistency`` (``LCMScheduler``, ``TCDScheduler``): the oracle's discrete schedule (``trained_betas``) and an
  exact consistency model: its ε output is the one whose x̂_0 — after LCM's boundary scalings, for LCM — is
  f*(x_t) = Φ_{t→clean}(x_t), the exact flow map (Song et al. 2023);
- ``flow-map`` (``FlowMapEulerDiscreteScheduler``): the exact average velocity u*(x_t, r, t) (Geng et al. 2025) on
  the rectified-flow path, r the next timestep;
- ``flow-consistency`` (``FlowMatchLCMScheduler``): a consistency model on the rectified-flow path, its velocity
  output v with x_t − t v = Φ_{t→0}(x_t), i.e. the average velocity u*(x_t, 0, t).

Config keys go where the scheduler takes them: ``__init__`` (``shift``), else ``set_timesteps`` (``mu``), else
``step`` (TCD's ``eta``); an unknown key is the caller's ValueError.
"""

from __future__ import annotations

import inspect
import math
import warnings

import torch

from toydiff.processes.interpolants import linear
from toydiff.testing.families import edm_network_output, lcm_network_output
from toydiff.testing.oracle import Recorder
from toydiff.testing.protocol import KitSampler, Run, _timesteps_from_calls

__all__ = ["diffusers_family", "from_diffusers_family", "from_flow_matching", "FAMILIES"]

#: family -> scheduler classes of diffusers 0.42.1 the adapter knows (others: by their ``__init__``)
FAMILIES = {
    "flow": ("FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler",
             "LTXEulerAncestralRFScheduler"),
    "edm": ("EDMEulerScheduler", "EDMDPMSolverMultistepScheduler"),
    "consistency": ("LCMScheduler", "TCDScheduler"),
    "flow-map": ("FlowMapEulerDiscreteScheduler",),
    "flow-consistency": ("FlowMatchLCMScheduler",),
}


def diffusers_family(cls) -> str:
    """``"vp"`` (a discrete ε scheduler taking ``trained_betas``), ``"flow"``, ``"edm"``, ``"consistency"`` or
    ``"flow-map"``; a TypeError saying why for a scheduler none of them fits."""
    for family, names in FAMILIES.items():
        if cls.__name__ in names:
            return family
    if "trained_betas" in inspect.signature(cls.__init__).parameters:
        return "vp"
    raise TypeError(f"{cls.__name__} is none of the families the kit has an exact model for (discrete VP with "
                    f"trained_betas, {', '.join(f'{k}: {v}' for k, v in FAMILIES.items())})")


def _split_config(cls, config: dict) -> tuple[dict, dict, dict]:
    """``config`` split into (``__init__``, ``set_timesteps``, ``step``) keywords; ValueError on a key none takes."""
    parts = [inspect.signature(f).parameters for f in (cls.__init__, cls.set_timesteps, cls.step)]
    owned = {"self", "num_inference_steps", "device", "model_output", "timestep", "sample", "generator", "return_dict"}
    out: tuple[dict, dict, dict] = ({}, {}, {})
    for key, value in config.items():
        where = next((i for i, p in enumerate(parts) if key in p and key not in owned), None)
        if where is None:
            raise ValueError(f"config: {cls.__name__} has no option {key!r}")
        out[where][key] = value
    return out


def _loop(sched, x: torch.Tensor, model, step_kw: dict, generator) -> torch.Tensor:
    """A pipeline's loop: per timestep, ``scale_model_input`` (if any) → ``model(x_in, t)`` → ``step``."""
    takes = inspect.signature(sched.step).parameters
    extra = dict(step_kw, **({"generator": generator} if "generator" in takes else {}))
    scale = getattr(sched, "scale_model_input", None)
    for t in sched.timesteps:
        x_in = scale(x, t) if scale is not None else x
        x = sched.step(model(x_in, t, sched), t, x, return_dict=False, **extra)[0]
    return x


def _dedupe(levels) -> list[float]:
    out = [float(v) for v in levels]
    return [v for i, v in enumerate(out) if i == 0 or v != out[i - 1]]


def _flow_run(cls, init: dict, ts_kw: dict, step_kw: dict, family: str):
    """Flow matching, flow map or flow consistency (``family``) on the rectified-flow path; levels σ_fm → Karras
    σ = σ_fm/(1 − σ_fm)."""
    path = linear()

    def run(rec: Recorder, x_T: torch.Tensor, steps: int, generator: torch.Generator) -> Run:
        sched = cls(**init)
        sched.set_timesteps(steps, **ts_kw)
        T = float(sched.config.num_train_timesteps)
        fm = _dedupe(sched.sigmas)
        norm = [math.sqrt((1 - s) ** 2 + s**2) for s in (fm[0], fm[-1])]  # VP state = x_t / sqrt(α² + σ²)

        def model(x_in, t, sched):
            t_now = float(t) / T
            if family == "flow":
                return rec.predict(x_in, t_now, path, "velocity")
            r = float(sched.sigmas[sched.index_for_timestep(t) + 1]) if family == "flow-map" else 0.0
            return rec.average_velocity(x_in, r, t_now, path)

        x = _loop(sched, x_T.to(torch.float32) * norm[0], model, step_kw, generator)
        karras = tuple(s / (1 - s) if s < 1 else math.inf for s in fm)
        return Run(x.to(x_T.dtype) / norm[1], None, karras)

    return run


def _edm_run(cls, init: dict, ts_kw: dict, step_kw: dict):
    """EDM: Karras σ-space; the model sees c_in x and c_noise = ln(σ)/4 and returns the raw F."""
    def run(rec: Recorder, x_T: torch.Tensor, steps: int, generator: torch.Generator) -> Run:
        sched = cls(**init)
        sched.set_timesteps(steps, **ts_kw)
        sig_d = float(sched.config.sigma_data)
        path = _dedupe(sched.sigmas)

        def model(x_in, t, sched):
            sigma = math.exp(4.0 * float(t))  # c_noise = ln(σ)/4
            x = x_in.to(torch.float64) * math.sqrt(sigma**2 + sig_d**2)  # undo c_in = 1/sqrt(σ² + σ_d²)
            return edm_network_output(rec.denoiser(x, sigma), x, sigma, sig_d).to(x_in.dtype)

        x = _loop(sched, x_T.to(torch.float32) * math.sqrt(1 + path[0] ** 2), model, step_kw, generator)
        return Run(x.to(x_T.dtype) / math.sqrt(1 + path[-1] ** 2), None, tuple(path))

    return run


def _consistency_run(cls, init: dict, ts_kw: dict, step_kw: dict):
    """LCM / TCD on the oracle's schedule: ε from the exact consistency function (LCM: through c_skip, c_out)."""
    def run(rec: Recorder, x_T: torch.Tensor, steps: int, generator: torch.Generator) -> Run:
        sched = cls(num_train_timesteps=rec.problem.schedule.T, trained_betas=rec.problem.schedule.betas.numpy(),
                    **init)
        sched.set_timesteps(steps, **ts_kw)
        ab = rec.problem.schedule.alpha_bars
        boundary = hasattr(sched, "get_scalings_for_boundary_condition_discrete")
        scaling = float(getattr(sched.config, "timestep_scaling", 10.0))

        def model(x_in, t, sched):
            f_star = rec.consistency(x_in, int(t)).to(torch.float64)
            xd = x_in.to(torch.float64)
            x0 = lcm_network_output(f_star, xd, int(t), scaling) if boundary else f_star
            a = float(ab[int(t)])
            return ((xd - math.sqrt(a) * x0) / math.sqrt(1 - a)).to(x_in.dtype)

        x = _loop(sched, x_T.to(torch.float32), model, step_kw, generator)
        return Run(x.to(x_T.dtype), _timesteps_from_calls(rec.calls))

    return run


def _probe(cls, init: dict, ts_kw: dict, family: str) -> None:
    """Build ``cls`` and set 2 timesteps, so a configuration it refuses is the caller's ValueError here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {"trained_betas": torch.linspace(1e-4, 0.02, 1000).numpy()} if family == "consistency" else {}
            cls(**kw, **init).set_timesteps(2, **ts_kw)
    except Exception as e:  # noqa: BLE001 - diffusers raises ValueError, NotImplementedError, TypeError...
        raise ValueError(f"config: {cls.__name__} refuses it: {type(e).__name__}: "
                         f"{' '.join(str(e).split())[:200]}") from None


def from_diffusers_family(cls, family: str, *, name: str | None = None, order: float | None = None,
                          **config) -> KitSampler:
    """A :class:`KitSampler` for a scheduler of ``family`` (:func:`diffusers_family`) with ``config``."""
    init, ts_kw, step_kw = _split_config(cls, config)
    if family == "consistency" and {"trained_betas", "num_train_timesteps", "beta_schedule"} & set(init):
        raise ValueError("config: the scheduler gets the oracle's own discrete schedule (trained_betas)")
    if family == "edm" and init.get("prediction_type", "epsilon") != "epsilon":
        raise ValueError("config: the exact EDM network is the epsilon-type F of Karras et al. 2022, Table 1; "
                         f"prediction_type={init['prediction_type']!r} is not modelled")
    _probe(cls, init, ts_kw, family)
    if family.startswith("flow"):
        run = _flow_run(cls, init, ts_kw, step_kw, family)
    elif family == "edm":
        run = _edm_run(cls, init, ts_kw, step_kw)
    else:
        run = _consistency_run(cls, init, ts_kw, step_kw)
    label = ",".join(f"{k}={v}" for k, v in config.items())
    few = "diffusion" if family in ("flow", "edm") else "few-step"
    return KitSampler(name or f"diffusers:{cls.__name__}" + (f"[{label}]" if label else ""), run, order, few)


def from_flow_matching(method: str = "euler", *, order: float | None = None, name: str | None = None) -> KitSampler:
    """facebookresearch ``flow_matching``'s ``ODESolver`` (fixed-grid torchdiffeq ``method``: euler, midpoint, rk4, ...)
    on the exact velocity, ``steps`` uniform steps. Its clock runs the other way (t = 0 noise, t = 1 data:
    x_t = t x_1 + (1 − t) x_0, Lipman et al. 2023), so its model is −u*(x, 1 − t) of the kit's linear path.
    An optional extra: ``pip install --no-deps flow_matching`` (needs torchdiffeq); ImportError if absent."""
    from flow_matching.solver import ODESolver  # noqa: F401 - fail at build time, not per run

    path = linear()

    def run(rec: Recorder, x_T: torch.Tensor, steps: int, generator: torch.Generator) -> Run:
        def velocity(x, t, **_):
            return -rec.predict(x, 1.0 - float(t), path, "velocity")

        grid = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
        x = ODESolver(velocity).sample(x_T.to(torch.float64), step_size=None, method=method, time_grid=grid)
        karras = tuple(float(s) / (1 - float(s)) if s < 1 else math.inf for s in 1 - grid)
        return Run(x.to(x_T.dtype), None, karras)

    return KitSampler(name or f"flow_matching:ODESolver[method={method}]", run, order)
