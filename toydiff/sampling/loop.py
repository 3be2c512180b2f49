"""Every sampler behind one entry point, for tensors of any rank: ``sample(eps_fn, x_T, schedule, method=...)``.

The denoiser is any callable ``eps_fn(x_t [B, *event], t LongTensor [B]) -> eps [B, *event]``: a trained
network, the exact oracle (:meth:`toydiff.GaussianMixture.eps_fn`) or a combinator of those
(:mod:`toydiff.sampling.guidance`). Every method visits the same :class:`~toydiff.processes.schedules.StepPlan` of descending
``(t, t_prev)`` pairs.

Methods (``METHODS``; one function each in :mod:`toydiff.sampling.vp_steps`, named with the options they
accept in ``REGISTRY``):

- ``"ddpm"``: ancestral sampling, Ho et al. 2020 Algorithm 2, ``variance="beta"`` or ``"posterior"``.
- ``"ddpm-no-noise"``: the same update without σ z — the samples collapse (why σ z matters).
- ``"ddim"``: Song et al. 2021 eq. 12, ``eta`` in [0, 1] (η = 0 deterministic).
- ``"euler"``, ``"heun"``: the probability-flow ODE in Karras et al. 2022's variables, first and second order.
- ``"dpm++2m"``: DPM-Solver++(2M), Lu et al. 2022, second-order multistep on the data prediction.
- ``"dpm++3m"``: DPM-Solver++(3M), Lu et al. 2022, third-order multistep (the η = 0 case of the 3M SDE).
- ``"unipc"``: UniPC-2 with the B(h) = e^{-h} - 1 variant, Zhao et al. 2023: predictor + corrector, order 3.
- ``"euler-ancestral"``: Euler ancestral steps in Karras' σ (k-diffusion's), stochastic.
- ``"dpm++2m-sde"``: DPM-Solver++(2M) SDE (midpoint form), Lu et al. 2022, stochastic.
- ``"edm"``: Karras et al. 2022 Algorithm 2, Heun with churn: ``s_churn``, ``s_noise``, ``s_tmin``, ``s_tmax``
  (``s_churn = 0``, the default, is the deterministic Heun).

A method given an option it does not use at a non-default value (``eta=0.5`` with ``heun``) is a
``ValueError`` naming the option. All randomness comes from ``generator`` (one ``torch.Generator`` or a
list of one per sample).

Nothing non-finite passes silently: every denoiser output is checked once, on its sum (one reduction, no
elementwise scan unless it fails), and a NaN or ±inf is a ``ValueError`` naming the method, the step index and
t; so is a non-finite result, and a plan whose noisiest ᾱ_t is too small for ``x_T``'s dtype (1/√ᾱ_t, the
factor of x̂_0 and of Karras' scaled variable, above √(dtype max): ᾱ_t < 1/max, 2.9e-39 in float32), and
a step t → t' whose ᾱ_{t'}/ᾱ_t exceeds 1/ε² of that dtype (x_t's rounding error would reach the data's scale).
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Sequence

import torch

from toydiff.bounds import check_size
from toydiff.checks import check_choice, check_int, check_number, check_tensor
from toydiff.processes.interpolants import Interpolant
from toydiff.processes.schedules import NoiseSchedule, _warn_terminal
from toydiff.sampling import vp_steps as m
from toydiff.sampling.context import EpsFn, StepContext, check_generator, progress_bar
from toydiff.sampling.flow_steps import flow_evaluations, sample_interpolant

__all__ = ["METHODS", "REGISTRY", "EpsFn", "Method", "StepContext", "sample", "function_evaluations",
           "flow_dispatch", "accepts_interpolants"]

Callback = Callable[[dict], None]
Projection = Callable[[torch.Tensor, int], torch.Tensor]

#: the options of :func:`sample` that only some methods use, with their defaults
OPTION_DEFAULTS = {"eta": 0.0, "variance": "beta", "s_churn": 0.0, "s_noise": 1.0, "s_tmin": 0.0, "s_tmax": math.inf}
VARIANCES = ("beta", "posterior")


@dataclass(frozen=True)
class Method:
    """A registry entry: the step function, the options of :func:`sample` it reads, its cost and its order.

    ``nfe(n_steps)`` is the number of denoiser calls over ``n_steps`` steps ending at the clean sample;
    ``default_spacing`` is the respacing :func:`sample` uses for an int ``steps`` when ``spacing=None``;
    ``order`` is the convergence order of the deterministic method in the step size (what
    :mod:`toydiff.testing` checks it against), ``None`` for a stochastic one (``ddpm``, whose samples match the
    target only in distribution, and ``ddpm-no-noise``, which converges to no ODE solution).
    """

    step: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    options: tuple[str, ...] = ()
    nfe: Callable[[int], int] = lambda n: n
    default_spacing: str = "linspace"
    order: float | None = None


#: name -> method, read-only (``METHODS`` is its keys); a new sampler is a function in
#: :mod:`toydiff.sampling.vp_steps` and a line here (its options, cost, spacing and order: the kit reads them)
REGISTRY: MappingProxyType[str, Method] = MappingProxyType({
    "ddpm": Method(m.ddpm_step, options=("variance",)),
    "ddpm-no-noise": Method(m.ddpm_no_noise_step),
    "ddim": Method(m.ddim_step, options=("eta",), order=1.0),  # order at eta = 0 (eta > 0 is stochastic)
    "euler": Method(m.euler_step, order=1.0),
    # heun diverges on logsnr / karras spacing at 10-20 steps (its first step from σ ≈ 157): linspace
    "heun": Method(m.heun_step, nfe=lambda n: 2 * n - 1, default_spacing="linspace", order=2.0),
    # DPM-Solver++ is built for steps uniform in log-SNR (Lu et al. 2022); linspace is its worst case
    "dpm++2m": Method(m.dpmpp_2m_step, default_spacing="logsnr", order=2.0),
    # issue 25: the solvers of diffusers / k-diffusion (orders measured by the kit: docs/testing.md). The 3M's order
    # is the one measured on the exact oracle, not the paper's 3: the kit fits 2.39 (finest pair 2.22) on its default
    # problem, exactly as for k-diffusion's own 3M (the same numbers to 1e-15), and 2.8 at 48..384 linspace steps
    "dpm++3m": Method(m.dpmpp_3m_step, default_spacing="logsnr", order=2.5),
    "unipc": Method(m.unipc_step, default_spacing="logsnr", order=3.0),
    "euler-ancestral": Method(m.euler_ancestral_step),
    "dpm++2m-sde": Method(m.dpmpp_2m_sde_step, default_spacing="logsnr"),
    # order at s_churn = 0 (Heun); s_churn > 0 is stochastic
    "edm": Method(m.edm_step, options=("s_churn", "s_noise", "s_tmin", "s_tmax"), nfe=lambda n: 2 * n - 1, order=2.0),
})
METHODS = tuple(REGISTRY)


def function_evaluations(method: str, n_steps: int, interp=None, prediction: str = "velocity") -> int:
    """How many calls of ``eps_fn`` a method makes over ``n_steps`` steps ending at the clean sample; with an
    :class:`~toydiff.processes.interpolants.Interpolant` ``interp``, of ``fn`` for a flow method over that path
    (:func:`toydiff.sampling.flow_steps.flow_evaluations`, which depends on ``prediction``)."""
    if interp is not None:
        return flow_evaluations(method, n_steps, interp, prediction)
    return REGISTRY[check_choice(method, "method", METHODS)].nfe(check_int(n_steps, "n_steps", min=1))


def _check_options(method: str, eta, variance: str, churn: tuple = (0.0, 1.0, 0.0, math.inf)) -> None:
    """Validate ``eta`` / ``variance`` / the EDM ``churn`` options and refuse one the method does not use at a
    non-default value."""
    check_number(eta, "eta", min=0.0, max=1.0)
    check_choice(variance, "variance", VARIANCES)
    s_churn, s_noise, s_tmin, s_tmax = churn
    check_number(s_churn, "s_churn", min=0.0)
    check_number(s_noise, "s_noise", min=0.0)
    check_number(s_tmin, "s_tmin", min=0.0)
    check_number(s_tmax, "s_tmax", min=check_number(s_tmin, "s_tmin"), allow_inf=True)
    accepted = REGISTRY[method].options
    for name, value in zip(OPTION_DEFAULTS, (eta, variance) + tuple(churn)):
        if name not in accepted and value != OPTION_DEFAULTS[name]:
            users = [k for k, v in REGISTRY.items() if name in v.options]
            raise ValueError(f"{name}={value!r} has no effect with method={method!r}: {name} is used by "
                             f"{', '.join(users)} only (leave it at {OPTION_DEFAULTS[name]!r})")


def _check_call(eps_fn, x_T, schedule, method, eta, variance, clip_x0, callback, project, generator,
                churn=(0.0, 1.0, 0.0, math.inf)) -> None:
    check_choice(method, "method", METHODS)
    check_tensor(x_T, "x_T")
    check_generator(generator, x_T.shape[0])
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    _check_options(method, eta, variance, churn)
    if clip_x0 is not None and not check_number(clip_x0, "clip_x0") > 0:
        raise ValueError(f"clip_x0 must be positive or None, got {clip_x0!r}")
    if not callable(eps_fn):
        raise TypeError(f"eps_fn must be callable as eps_fn(x_t, t), got {type(eps_fn).__name__}")
    for name, fn in (("callback", callback), ("project", project)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")


def _plan(schedule: NoiseSchedule, steps, spacing: str, dtype: torch.dtype) -> list[tuple[int, int]]:
    """The run's ``(t, t_prev)`` pairs: warned about a start that keeps signal, refused beyond ``dtype``'s range."""
    if isinstance(steps, int) and not isinstance(steps, bool):
        check_size(steps, "steps")
    plan = schedule.respace(steps, spacing)
    if steps is None or isinstance(steps, int):
        _warn_terminal(schedule.alpha_bar(plan.timesteps[0]), f"sample(steps={steps}, spacing={spacing!r})")
    _check_range(schedule, plan.timesteps[0], dtype)
    _check_precision(schedule, plan.pairs, dtype)
    return plan.pairs


def _check_precision(schedule: NoiseSchedule, pairs: list[tuple[int, int]], dtype: torch.dtype) -> None:
    """Refuse a step t -> t' whose ᾱ_{t'}/ᾱ_t exceeds 1/ε² of ``dtype`` (ε its machine epsilon): every method maps
    x_t to x_{t'} through x_t/√ᾱ_t times √ᾱ_{t'}, so x_t's rounding error ε|x_t| grows √(ᾱ_{t'}/ᾱ_t)-fold and
    reaches the data's own scale (linear T = 40 000 in 10 float64 steps gave |x| ≈ 200 for data within ±8)."""
    limit = torch.finfo(dtype).eps ** -2
    for i, (t, tp) in enumerate(pairs):
        ratio = schedule.alpha_bar(tp) / schedule.alpha_bar(t)
        if ratio > limit:
            raise ValueError(f"steps: step {i} from t = {t} to t_prev = {tp} raises alpha_bar {ratio:.3g}-fold, more than "
                             f"1/eps({dtype})^2 = {limit:.3g}, so the rounding error of x_t grows {ratio ** 0.5:.3g}-fold "
                             "past the data's scale; use more steps, float64 or a schedule with less total noise")


def _check_range(schedule: NoiseSchedule, t0: int, dtype: torch.dtype) -> None:
    """Refuse a plan whose noisiest ᾱ_t makes 1/√ᾱ_t exceed √(max of ``dtype``): x̂_0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ
    and Karras' x/√ᾱ then overflow (or lose every digit) in that dtype. ᾱ falls with t, so t0 decides."""
    ab, top = schedule.alpha_bar(t0), torch.finfo(dtype).max
    if ab * top < 1.0:
        raise ValueError(f"schedule: alpha_bar = {ab:.3g} at the first sampled step t = {t0} is below 1/max({dtype}) = "
                         f"{1 / top:.3g}, so 1/sqrt(alpha_bar) = {ab ** -0.5:.3g} overflows {dtype} arithmetic; "
                         "sample in float64, start at a smaller t, or use a schedule with less total noise")


# --- the route of an Interpolant to toydiff.sampling.flow_steps ----------------------------------------
#: :func:`toydiff.sample`'s VP-only options and the values that mean "not used"
_VP_DEFAULTS = {"spacing": (None, "linspace"), "eta": (0.0,), "variance": ("beta",), "project": (None,),
                "s_churn": (0.0,), "s_noise": (1.0,), "s_tmin": (0.0,), "s_tmax": (math.inf,)}
_FLOW_OPTIONS = ("times", "shift", "prediction")


def flow_dispatch(fn, x_1, interp, **kwargs) -> torch.Tensor:
    """:func:`toydiff.sample`'s route to :func:`sample_interpolant`: refuses the VP-only options (``spacing``,
    ``eta``, ``variance``, ``project``) at a non-default value and the flow-only ones with a NoiseSchedule."""
    if not isinstance(interp, Interpolant):
        given = ", ".join(k for k in _FLOW_OPTIONS if k in kwargs)
        raise TypeError(f"{given}: options of sampling over an Interpolant, but schedule is a {type(interp).__name__}")
    for name, defaults in _VP_DEFAULTS.items():
        value = kwargs.pop(name, defaults[0])
        if not any(value is d or value == d for d in defaults):
            raise ValueError(f"{name}={value!r} has no effect when sampling over an Interpolant (leave it unset; "
                             "choose the time grid with steps=, times= or shift=)")
    if isinstance(kwargs.get("steps"), (list, tuple, torch.Tensor)):
        raise TypeError("steps must be an int over an Interpolant; pass an explicit grid as times=")
    try:
        inspect.signature(sample_interpolant).bind(fn, x_1, interp, **kwargs)
    except TypeError as e:
        raise TypeError(f"sample() over an Interpolant: {e}") from None
    return sample_interpolant(fn, x_1, interp, **kwargs)


def _owns_sampling(process) -> bool:
    """Whether ``process`` (neither a NoiseSchedule nor an Interpolant) is a process object with its own ``sample``
    (duck-typed, so this module need not import the process packages above it, e.g. :mod:`toydiff.discrete`)."""
    return not isinstance(process, (NoiseSchedule, Interpolant)) and callable(getattr(process, "sample", None))


def accepts_interpolants(vp_sample: Callable) -> Callable:
    """Decorate :func:`toydiff.sample` so that an :class:`Interpolant` as third argument (or a flow-only option)
    goes to :func:`flow_dispatch`, and a process object with its own ``sample`` (a discrete process of
    :mod:`toydiff.discrete`) gets the call as ``process.sample(fn, x_T, **kwargs)``; every other call reaches
    ``vp_sample`` unchanged."""

    @functools.wraps(vp_sample)
    def sample(eps_fn, x_T, schedule, **kwargs):
        if isinstance(schedule, Interpolant) or any(k in kwargs for k in _FLOW_OPTIONS):
            return flow_dispatch(eps_fn, x_T, schedule, **kwargs)
        if _owns_sampling(schedule):  # a process object (e.g. toydiff.discrete's) runs its own samplers
            return schedule.sample(eps_fn, x_T, **kwargs)
        return vp_sample(eps_fn, x_T, schedule, **kwargs)

    return sample


@accepts_interpolants  # an Interpolant as `schedule`: toydiff.sampling.flow_steps.sample_interpolant runs instead
@torch.no_grad()
def sample(eps_fn: EpsFn, x_T: torch.Tensor, schedule: NoiseSchedule, *, method: str = "ddpm",
           steps: int | Sequence[int] | None = None, spacing: str | None = None, eta: float = 0.0,
           variance: str = "beta", generator: torch.Generator | list[torch.Generator] | None = None,
           callback: Callback | None = None, clip_x0: float | None = None, project: Projection | None = None,
           progress: bool = False, s_churn: float = 0.0, s_noise: float = 1.0, s_tmin: float = 0.0,
           s_tmax: float = math.inf) -> torch.Tensor:
    """Run the reverse process from ``x_T`` to a clean sample with the method ``REGISTRY[method]``.
    (Over an :class:`~toydiff.processes.interpolants.Interpolant`: see :func:`toydiff.sampling.flow_steps.sample_interpolant`.)

    Args:
        eps_fn: denoiser ``eps_fn(x_t [B, *event], t LongTensor [B]) -> eps [B, *event]``.
        x_T: the starting point ``[B, *event]``: N(0, I) noise for ordinary sampling, or a noised input
            at ``steps[0]`` when ``steps`` is an explicit sequence (SDEdit).
        schedule: the noise schedule the denoiser was trained with.
        method: one of ``METHODS``.
        steps: ``None`` (every step), a number of respaced steps, or an explicit strictly descending
            sequence of timesteps (see :meth:`NoiseSchedule.respace`).
        spacing: ``"linspace"``, ``"leading"``, ``"trailing"``, ``"karras"`` or ``"logsnr"`` for an int ``steps``;
            ``None``: the method's ``REGISTRY[method].default_spacing`` (``"logsnr"`` for dpm++2m, else linspace).
        eta: DDIM stochasticity in [0, 1] (``ddim`` only; any other method refuses a non-zero value).
        variance: ``"beta"`` or ``"posterior"`` (``ddpm`` only; any other method refuses ``"posterior"``).
        generator: source of all randomness: a ``torch.Generator``, or a list of ``B`` of them (per-sample
            seeds: sample i is then the same at any batch size).
        callback: called after every step with a dict holding ``step, n_steps, t, t_prev, x_t, x0_hat,
            eps, x_prev, method`` (tensors are the live ones: clone what you keep).
        clip_x0: if given, clamp x̂_0 to ``[-clip_x0, clip_x0]`` (images in [-1, 1] use 1.0) and recompute ε.
        project: ``project(x [B, *event], t) -> x`` applied to the starting point and after every step
            (``t = -1`` after the last); see :func:`toydiff.inpaint_projection`.
        progress: show a tqdm progress bar (when stderr is a terminal).
        s_churn, s_noise, s_tmin, s_tmax: ``edm`` only (Karras et al. 2022 Algorithm 2): the churn γ =
            min(s_churn/N, √2 − 1) applied where s_tmin ≤ σ ≤ s_tmax (σ = sqrt((1 − ᾱ)/ᾱ)), its noise scale.

    Returns:
        x_0 ``[B, *event]``, same dtype and device as ``x_T``.

    Raises:
        ValueError: a bad argument (named); NaN / inf from the denoiser (naming method, step and t) or in the result.
    """
    churn = (s_churn, s_noise, s_tmin, s_tmax)
    _check_call(eps_fn, x_T, schedule, method, eta, variance, clip_x0, callback, project, generator, churn)
    pairs = _plan(schedule, steps, REGISTRY[method].default_spacing if spacing is None else spacing, x_T.dtype)
    step, ctx = REGISTRY[method].step, StepContext(eps_fn, schedule, x_T, eta=eta, variance=variance,
                                                   generator=generator, clip_x0=clip_x0, method=method,
                                                   churn=churn, n_steps=len(pairs))
    x = x_T if project is None else project(x_T, pairs[0][0])
    for ctx.step, (t, tp) in enumerate(progress_bar(pairs, method, progress)):
        x_prev, eps, x0 = step(ctx, x, t, tp)
        if project is not None:
            x_prev = project(x_prev, tp)
        if callback is not None:
            callback({"step": ctx.step, "n_steps": len(pairs), "t": t, "t_prev": tp, "x_t": x, "x0_hat": x0,
                      "eps": eps, "x_prev": x_prev, "method": method})
        x = x_prev
    return ctx.check_result(x, pairs[-1][0])
