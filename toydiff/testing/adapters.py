"""Adapters: diffusers schedulers and k-diffusion sampling functions as :class:`~toydiff.testing.KitSampler`.

Neither library is a dependency of toydiff (``pip install toydiff[peers]``); each is imported when an adapter
runs. Both drive the library's own loop with the exact oracle as the model:

- **diffusers** (:func:`from_diffusers`): the scheduler is built with the oracle's own discrete schedule
  (``trained_betas``, ``num_train_timesteps``), then ``set_timesteps(steps)`` and, per timestep,
  ``scale_model_input`` → exact ε* at that timestep → ``step(...)``, exactly as a pipeline does. A scheduler
  with ``init_noise_sigma != 1`` works in Karras' σ-space: it starts from x_T·sqrt(1 + σ_max²).
  ``clip_sample`` and ``thresholding`` default to False here (the oracle's data are not confined to [-1, 1]);
  set them in the config to test them.
- **k-diffusion** (:func:`from_k_diffusion`): ``sample_fn(model, x, sigmas, disable=True, **kwargs)`` with
  ``model(x̃, σ)`` the exact x̂_0 (Karras et al. 2022's denoiser D(x̃; σ)) and ``sigmas`` from the VP schedule
  (``"linspace"``: σ at ``round(linspace(T − 1, 0, n))``, or ``"karras"``: ρ = 7 between σ_0 and σ_{T−1}),
  then 0. k-diffusion draws noise from torch's global generator; it is seeded from the kit's generator inside
  ``torch.random.fork_rng`` so runs stay reproducible and the caller's RNG untouched.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import sys
import types
import warnings
from pathlib import Path
from typing import Callable

import torch

from toydiff.processes import schedules
from toydiff.testing.oracle import Recorder
from toydiff.testing.peer_families import diffusers_family, from_diffusers_family
from toydiff.testing.protocol import KitSampler, Run, _timesteps_from_calls, from_callable, from_toydiff

__all__ = ["from_diffusers", "from_k_diffusion", "from_spec", "as_sampler", "k_diffusion_sampling", "karras_sigmas"]

#: scheduler settings the adapter owns: the oracle's schedule is the only one the exact ε* is right for
_OWNED = ("trained_betas", "num_train_timesteps", "beta_schedule", "beta_start", "beta_end")


#: defaults the adapter changes unless the config sets them: the oracle's data are not confined to [-1, 1]
_UNCLIPPED = {"clip_sample": False, "thresholding": False}


def _build_scheduler(cls, recorder: Recorder, config: dict):
    params = inspect.signature(cls.__init__).parameters
    unclipped = {k: v for k, v in _UNCLIPPED.items() if k in params and k not in config}
    return cls(num_train_timesteps=recorder.problem.schedule.T, trained_betas=recorder.problem.schedule.betas.numpy(),
               **unclipped, **config)


def _probe_scheduler(cls, config: dict) -> None:
    """Build ``cls`` with ``config`` on a linear-β schedule (T = 1000), so that a configuration the scheduler
    refuses (``solver_order=9``) is the caller's ValueError here, not a failure of every run."""
    betas = schedules.linear(T=1000).betas.numpy()
    params = inspect.signature(cls.__init__).parameters
    unclipped = {k: v for k, v in _UNCLIPPED.items() if k in params and k not in config}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(num_train_timesteps=1000, trained_betas=betas, **unclipped, **config)
    except Exception as e:  # noqa: BLE001 - diffusers raises ValueError, NotImplementedError, TypeError...
        raise ValueError(f"config: {cls.__name__} refuses it: {type(e).__name__}: "
                         f"{' '.join(str(e).split())[:200]}") from None


def from_diffusers(scheduler_class, *, name: str | None = None, order: float | None = None, **config) -> KitSampler:
    """A diffusers scheduler class (``DDIMScheduler``, ...) with its ``config`` (``timestep_spacing="trailing"``)
    as a :class:`KitSampler`; ``order`` is the convergence order you claim for it (None: not checked)."""
    if not inspect.isclass(scheduler_class) or not hasattr(scheduler_class, "set_timesteps"):
        raise TypeError(f"scheduler_class must be a diffusers scheduler class, got {scheduler_class!r}")
    family = diffusers_family(scheduler_class)  # flow matching, EDM, consistency: toydiff.testing.peer_families
    if family != "vp":
        return from_diffusers_family(scheduler_class, family, name=name, order=order, **config)
    owned = sorted(set(config) & set(_OWNED))
    if owned:
        raise ValueError(f"config: {owned} cannot be set: the scheduler gets the oracle's own discrete schedule")
    params = inspect.signature(scheduler_class.__init__).parameters
    if "trained_betas" not in params:
        raise TypeError(f"{scheduler_class.__name__} takes no trained_betas, so it cannot run on the oracle's schedule")
    unknown = sorted(set(config) - set(params))
    if unknown:
        raise ValueError(f"config: {scheduler_class.__name__} has no option {unknown[0]!r}")
    _probe_scheduler(scheduler_class, config)
    takes_generator = "generator" in inspect.signature(scheduler_class.step).parameters

    def run(rec: Recorder, x_T: torch.Tensor, steps: int, generator: torch.Generator) -> Run:
        sched = _build_scheduler(scheduler_class, rec, config)
        sched.set_timesteps(steps)
        sigma_space = float(sched.init_noise_sigma) != 1.0
        sigmas = [float(s) for s in sched.sigmas] if sigma_space else None
        x = x_T.to(torch.float32) * (math.sqrt(1.0 + sigmas[0] ** 2) if sigma_space else 1.0)
        extra = {"generator": generator} if takes_generator else {}
        for t in sched.timesteps:
            eps = rec.eps_fn(sched.scale_model_input(x, t), t.reshape(1).expand(x.shape[0]))
            x = sched.step(eps, t, x, return_dict=False, **extra)[0]
        if sigma_space:
            path = [s for i, s in enumerate(sigmas) if i == 0 or s != sigmas[i - 1]]
            return Run(x.to(x_T.dtype) / math.sqrt(1.0 + path[-1] ** 2), None, tuple(path))
        return Run(x.to(x_T.dtype), _timesteps_from_calls(rec.calls))

    label = ",".join(f"{k}={v}" for k, v in config.items())
    return KitSampler(name or f"diffusers:{scheduler_class.__name__}" + (f"[{label}]" if label else ""), run, order)


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. 2022 eq. 5: ``n`` levels from σ_max down to σ_min, uniform in σ^(1/ρ), float64 ``[n]``."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def _k_sigmas(kind, rec: Recorder, n: int) -> torch.Tensor:
    """``n`` levels then 0, float64 ``[n + 1]``."""
    s = rec.problem.sigmas
    if callable(kind):
        levels = torch.as_tensor(kind(n, s), dtype=torch.float64)
    elif kind == "karras":
        levels = karras_sigmas(n, float(s[0]), float(s[-1]))
    elif kind == "linspace":
        levels = s[torch.linspace(len(s) - 1, 0, n, dtype=torch.float64).round().long()]
    else:
        raise ValueError(f"sigmas must be 'linspace', 'karras' or a callable, got {kind!r}")
    return torch.cat([levels, levels.new_zeros(1)])


def from_k_diffusion(sample_fn: Callable, *, sigmas="linspace", name: str | None = None, order: float | None = None,
                     **kwargs) -> KitSampler:
    """A k-diffusion sampling function (``k_diffusion.sampling.sample_dpmpp_2m``) as a :class:`KitSampler`;
    ``sigmas``: ``"linspace"``, ``"karras"`` or ``fn(n, sigmas_of_schedule [T]) -> [n]``; ``kwargs`` go to it."""
    if not callable(sample_fn):
        raise TypeError(f"sample_fn must be a k-diffusion sampling function, got {type(sample_fn).__name__}")
    params = inspect.signature(sample_fn).parameters
    owned = ("model", "x", "sigmas", "sigma_min", "sigma_max", "n")
    unknown = sorted(k for k in kwargs if k not in params or k in owned)
    if unknown:
        raise ValueError(f"config: {getattr(sample_fn, '__name__', 'sample_fn')} has no option {unknown[0]!r}")

    # DPM-Solver's sample_dpm_fast / sample_dpm_adaptive take a σ range, not levels, and stop at sigma_min > 0
    ranged = "sigmas" not in params and {"sigma_min", "sigma_max"} <= set(params)

    def run(rec: Recorder, x_T: torch.Tensor, steps: int, generator: torch.Generator) -> Run:
        levels = _k_sigmas(sigmas, rec, steps)
        x = x_T.to(torch.float64) * math.sqrt(1.0 + float(levels[0]) ** 2)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        model = lambda xs, sigma, **_: rec.denoiser(xs, sigma)  # noqa: E731
        hi, lo = float(levels[0]), float(levels[-2]) if len(levels) > 2 else float(rec.problem.sigmas[0])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if ranged:
                x0 = sample_fn(model, x, lo, hi, disable=True, **({"n": steps} if "n" in params else {}), **kwargs)
                return Run(x0.to(x_T.dtype) / math.sqrt(1.0 + lo**2), None, (hi, lo))
            x0 = sample_fn(model, x, levels, disable=True, **kwargs)
        return Run(x0.to(x_T.dtype), None, tuple(float(v) for v in levels))

    label = ",".join([f"sigmas={sigmas}"] * isinstance(sigmas, str) + [f"{k}={v}" for k, v in kwargs.items()])
    return KitSampler(name or f"k-diffusion:{getattr(sample_fn, '__name__', 'sampler')}[{label}]", run, order)


def _append_dims(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """``x`` with trailing singleton dimensions up to ``ndim`` (what k-diffusion's sampling module needs of utils)."""
    return x.reshape(x.shape + (1,) * (ndim - x.ndim))


def k_diffusion_sampling() -> types.ModuleType:
    """``k_diffusion.sampling``; if the package's ``__init__`` cannot import its heavy training dependencies
    (torchvision, clean-fid, ...: a ``pip install --no-deps k-diffusion torchsde torchdiffeq`` install), the
    sampling module alone, loaded from its file with a one-function ``utils`` (also when ``__init__`` fails in
    another way). ImportError if not installed; whatever loading that file raises if it is broken."""
    try:
        return importlib.import_module("k_diffusion.sampling")
    except Exception:  # noqa: BLE001 - ImportError of a training dependency, or any other failure of __init__
        pass
    if "_kdiffusion_sampling.sampling" in sys.modules:
        return sys.modules["_kdiffusion_sampling.sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("k-diffusion is not installed (pip install --no-deps k-diffusion torchsde torchdiffeq)")
    pkg = types.ModuleType("_kdiffusion_sampling")
    pkg.__path__ = []
    utils = types.ModuleType("_kdiffusion_sampling.utils")
    utils.append_dims = _append_dims
    pkg.utils = utils
    sys.modules.update({"_kdiffusion_sampling": pkg, "_kdiffusion_sampling.utils": utils})
    path = Path(next(iter(spec.submodule_search_locations))) / "sampling.py"
    mod_spec = importlib.util.spec_from_file_location("_kdiffusion_sampling.sampling", path)
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules["_kdiffusion_sampling.sampling"] = module
    try:
        mod_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["_kdiffusion_sampling.sampling"]  # a broken file is not cached as if it had loaded
        raise
    return module


def from_spec(spec: str, **config) -> KitSampler:
    """``"toydiff:heun"``, ``"diffusers:DDIMScheduler"`` or ``"k-diffusion:sample_euler"`` with ``config``."""
    lib, sep, what = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not sep or not what:
        raise ValueError(f"sampler must look like toydiff:heun, diffusers:DDIMScheduler or "
                         f"k-diffusion:sample_euler, got {spec!r}")
    if lib == "toydiff":
        return from_toydiff(what, **config)
    if lib in ("diffusers", "k-diffusion", "k_diffusion"):
        try:
            module = importlib.import_module("diffusers") if lib == "diffusers" else k_diffusion_sampling()
        except ImportError as e:
            raise ValueError(f"sampler {spec!r}: {lib} is not installed ({e})") from None
        except Exception as e:  # noqa: BLE001 - a broken install (its __init__ raises): the caller's environment
            raise ValueError(f"sampler {spec!r}: importing {lib} failed: {type(e).__name__}: "
                             f"{' '.join(str(e).split())[:200]}") from None
        target = getattr(module, what, None)
        if target is None:
            raise ValueError(f"sampler {spec!r}: {lib} has no {what!r}")
        return (from_diffusers if lib == "diffusers" else from_k_diffusion)(target, **config)
    raise ValueError(f"sampler {spec!r}: unknown library {lib!r} (choose from toydiff, diffusers, k-diffusion)")


def as_sampler(sampler, **config) -> KitSampler:
    """A :class:`KitSampler` from one, from a plain-protocol callable, or from a spec string:
    ``"toydiff:heun"``, ``"diffusers:DDIMScheduler"``, ``"k-diffusion:sample_dpmpp_2m"`` (``config`` goes to
    the scheduler or to the toydiff method)."""
    if isinstance(sampler, KitSampler):
        if config:
            raise ValueError(f"config {sorted(config)} cannot be applied to an already built sampler")
        return sampler
    if isinstance(sampler, str):
        return from_spec(sampler, **config)
    if config:
        raise ValueError(f"config {sorted(config)} applies to spec strings only")
    return from_callable(sampler)

