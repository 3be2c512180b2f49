"""The sampler protocol the kit drives, and toydiff's own samplers behind it.

**The plain protocol** (anything else — research code, a ComfyUI node — wraps itself in one function)::

    def my_sampler(eps_fn, x_T, alphas_cumprod, steps, generator):
        # eps_fn(x_t [B, *event], t [B]) -> eps [B, *event]: the exact noise prediction at timestep t
        #     (an integer in [0, T - 1]; a fractional t is σ-interpolated; -1 or T is refused)
        # x_T [B, *event] float64: the state at your first (noisiest) timestep, x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε
        # alphas_cumprod [T] float64: the discrete ᾱ_t your schedule must use
        # steps: how many steps;  generator: a torch.Generator, the only source of randomness allowed
        ...
        return x_0                      # [B, *event]; or (x_0, timesteps)

``timesteps`` (optional) are the levels the state passed through, first to last, with ``-1`` for the clean
sample (``[999, 888, ..., 0, -1]``). Without them the kit reads them off the denoiser calls (consecutive repeats
merged, as a two-evaluation step makes) and assumes the run ends at the clean sample.

:func:`from_callable` turns such a function into a :class:`KitSampler`; :func:`from_toydiff` does it for a
method of :func:`toydiff.sample` (its claimed order is the registry's, ``REGISTRY[method].order``);
:mod:`toydiff.testing.adapters` for diffusers schedulers, k-diffusion and spec strings (``as_sampler``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from toydiff.checks import check_choice
from toydiff.sampling import loop as sampling_loop
from toydiff.processes import schedules
from toydiff.processes.schedules import SPACINGS
from toydiff.testing.oracle import Recorder

__all__ = ["Run", "KitSampler", "from_callable", "from_toydiff"]


@dataclass(frozen=True)
class Run:
    """One sampler run: ``x0 [B, *event]`` and the levels its state passed through, first to last —
    ``timesteps`` (``-1`` = clean; ``None`` for a σ-native sampler) and/or ``sigmas`` (``0`` = clean)."""

    x0: torch.Tensor
    timesteps: tuple[float, ...] | None
    sigmas: tuple[float, ...] | None = None


@dataclass(frozen=True)
class KitSampler:
    """A sampler as the kit sees it: ``run(recorder, x_T [B, *event], steps, generator) -> Run``.

    ``order``: the convergence order it claims (checked by :func:`toydiff.testing.check_sampler`), or ``None``.
    ``family``: ``"diffusion"`` (an ODE/SDE solver: judged by its convergence) or ``"few-step"`` (a consistency or
    flow-map sampler on an exact consistency / flow-map model: judged against the exact flow map at 1, 2, 4 steps).
    """

    name: str
    run: Callable[[Recorder, torch.Tensor, int, torch.Generator], Run]
    order: float | None = None
    family: str = "diffusion"

    def __str__(self) -> str:
        return self.name


def _timesteps_from_calls(calls: Sequence[tuple]) -> tuple[float, ...]:
    """The distinct consecutive timesteps the denoiser was called at, then ``-1`` (assumed clean end)."""
    out: list[float] = []
    for t, _ in calls:
        if t is not None and (not out or out[-1] != t):
            out.append(t)
    return tuple(out) + (-1.0,)


def from_callable(fn: Callable, name: str | None = None, *, order: float | None = None) -> KitSampler:
    """A :class:`KitSampler` from a function of the plain protocol (see the module docstring)."""
    if not callable(fn):
        raise TypeError(f"sampler must be callable as fn(eps_fn, x_T, alphas_cumprod, steps, generator), "
                        f"got {type(fn).__name__}")

    def run(rec: Recorder, x_T: torch.Tensor, steps: int, generator: torch.Generator) -> Run:
        out = fn(rec.eps_fn, x_T.clone(), rec.problem.alphas_cumprod, steps, generator)
        x0, ts = (out if isinstance(out, tuple) else (out, None))
        if not isinstance(x0, torch.Tensor) or x0.shape != x_T.shape:
            raise ValueError(f"the sampler returned {getattr(x0, 'shape', type(x0).__name__)}; "
                             f"expected a tensor of shape {tuple(x_T.shape)}")
        ts = _timesteps_from_calls(rec.calls) if ts is None else tuple(float(v) for v in ts)
        return Run(x0, ts)

    return KitSampler(name or getattr(fn, "__name__", "sampler"), run, order)


def _probe_toydiff(method: str, spacing: str | None, options: dict) -> None:
    """One step of ``method`` on a zero denoiser (B = 1, linear β, T = 1000), so that :func:`toydiff.sample`
    refuses a bad configuration (``eta=0.5`` with ``heun``) here, as the caller's error, not later as the
    sampler's failure."""
    x_T = torch.zeros(1, 1, dtype=torch.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a one-step plan's terminal-SNR warning is no finding here
            sampling_loop.sample(lambda x, t: torch.zeros_like(x), x_T, schedules.linear(T=1000), method=method,
                                 steps=1, spacing=spacing, generator=torch.Generator().manual_seed(0), **options)
    except (ValueError, TypeError) as e:
        raise type(e)(f"toydiff:{method} refuses its configuration: {e}") from None


def from_toydiff(method: str, *, spacing: str | None = None, **options) -> KitSampler:
    """toydiff's own ``method`` (a key of :data:`toydiff.sampling.loop.REGISTRY`) through :func:`toydiff.sample`, with its
    ``spacing`` and options (``eta``, ``variance``, ``edm``'s ``s_churn``...); the visited timesteps come from its callback."""
    registry = sampling_loop.REGISTRY  # read at call time: a method is one registry line, its order included
    check_choice(method, "method", tuple(registry))
    if spacing is not None:
        check_choice(spacing, "spacing", SPACINGS)
    for key in options:
        check_choice(key, "option", tuple(sampling_loop.OPTION_DEFAULTS))
    _probe_toydiff(method, spacing, options)

    def run(rec: Recorder, x_T: torch.Tensor, steps: int, generator: torch.Generator) -> Run:
        ts: list[float] = []

        def grab(info: dict) -> None:
            ts.append(float(info["t"])) if not ts else None
            ts.append(float(info["t_prev"]))

        x0 = sampling_loop.sample(rec.eps_fn, x_T, rec.problem.schedule, method=method, steps=steps,
                                  spacing=spacing, generator=generator, callback=grab, **options)
        return Run(x0, tuple(ts))

    order = registry[method].order if not (options.get("eta") or options.get("s_churn")) else None  # else stochastic
    label = ",".join([f"spacing={spacing}"] * (spacing is not None) + [f"{k}={v}" for k, v in options.items()])
    return KitSampler(f"toydiff:{method}" + (f"[{label}]" if label else ""), run, order)
