"""Samplers of the discrete processes: one loop over a descending time grid, one step function per method.

    x0 = td.sample(fn, proc.prior(B, L), proc, method="ancestral", steps=32, generator=g)

``fn(x_t [B, L] long, t [B]) -> p(x₀ⁱ = v | x_t) [B, L, V]`` (probabilities) is called once per step, at the
step's start t; every step maps x_t to x_s, s < t, and returns ``(x_s, p0)``. Methods (:data:`DISCRETE_METHODS`):

- ``"ancestral"``: x_s ~ p(x_s | x_t) = Σ_v p0[v] q(x_s | x_t, x₀ = v) per position (D3PM, Austin et al. 2021;
  MDLM, Sahoo et al. 2024). Exact per position; the only error is that positions are drawn independently.
- ``"euler"``: x_s ~ δ_{x_t} + (t − s) R̂_t(x_t → ·) per position, the first-order step of the reverse CTMC
  (Campbell et al. 2022; Lou et al. 2024), clamped and renormalised. Continuous time only.
- ``"tau-leaping"``: per position, Poisson jump counts with means (t − s) R̂_t(x_t → j); exactly one jump moves
  there, none or several stay (Campbell et al. 2022, Sec. 4 with a categorical rejection). Continuous time only.
- ``"maskgit"``: draw a token at every masked position, keep the most confident ones unmasked so that the
  masked fraction follows the schedule's 1 − ᾱ_s (Chang et al. 2022, with the process's schedule as the mask
  schedule); masked processes only. Confidence ordering is not exact sampling: on the exact denoiser its KL to
  the truth stays above the floor (the bench's table shows by how much).

The leaping methods (euler, tau-leaping) end with an ancestral step to t = 0 (the "noise removal" of MDLM), so no
mask or unresolved jump survives; every method makes one ``fn`` call per step (NFE = steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from toydiff.checks import check_choice, check_int, check_number

__all__ = ["DISCRETE_METHODS", "DiscreteMethod", "run", "nfe", "methods_for"]

Step = Callable[["_Context", torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class _Context:
    """What every step shares: the process, V, the generator and the number of the step."""

    process: object
    V: int
    generator: torch.Generator | None
    final: bool = False
    progress: float = 0.0  # the fraction of the steps done before this one
    temperature: float = 0.0


def _categorical(probs: torch.Tensor, generator) -> torch.Tensor:
    """One draw per row of ``probs [..., K]`` (float64, rows summing to 1): ``[...]`` long."""
    flat = probs.reshape(-1, probs.shape[-1]).clamp_min(0.0)
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])


def ancestral_step(ctx: _Context, x: torch.Tensor, p0: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """x_s ~ p(x_s | x_t), the D3PM / MDLM ancestral step (see the module docstring)."""
    return _categorical(ctx.process.reverse_probs(x, p0, s, t), ctx.generator)


def _leap_probs(ctx: _Context, x: torch.Tensor, p0: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """(t − s) R̂_t(x_t → j), ``[B, L, K]`` (zero at j = x_t)."""
    dt = (ctx.process.times(t) - ctx.process.times(s))[:, None, None]
    return dt * ctx.process.reverse_rates(x, p0, t)


def euler_step(ctx: _Context, x: torch.Tensor, p0: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """x_s ~ δ_{x_t} + (t − s) R̂_t per position (Euler, Campbell et al. 2022), stay probability clamped at 0."""
    if ctx.final:
        return ancestral_step(ctx, x, p0, t, s)
    jump = _leap_probs(ctx, x, p0, t, s)
    stay = (1.0 - jump.sum(-1, keepdim=True)).clamp_min(0.0)
    probs = jump + stay * torch.nn.functional.one_hot(x, jump.shape[-1])
    return _categorical(probs / probs.sum(-1, keepdim=True), ctx.generator)


def tau_leaping_step(ctx: _Context, x: torch.Tensor, p0: torch.Tensor, t: torch.Tensor, s: torch.Tensor
                     ) -> torch.Tensor:
    """τ-leaping (Campbell et al. 2022): Poisson jump counts per target; one jump moves, none or several stay."""
    if ctx.final:
        return ancestral_step(ctx, x, p0, t, s)
    counts = torch.poisson(_leap_probs(ctx, x, p0, t, s).clamp_max(1e4), generator=ctx.generator)
    one = counts.sum(-1) == 1
    return torch.where(one, counts.argmax(-1), x)


def maskgit_step(ctx: _Context, x: torch.Tensor, p0: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Confidence-ordered unmasking (MaskGIT, Chang et al. 2022): a token drawn at every masked position; the
    most probable ones are kept so that round(L (1 − ᾱ_s)) positions stay masked (all at s = 0). ``temperature``
    > 0 adds Gumbel noise times temperature · (1 − progress) to the log-confidences (their annealed choice noise)."""
    mask = x == ctx.V
    draw = _categorical(p0, ctx.generator)
    conf = p0.gather(-1, draw[..., None])[..., 0].clamp_min(1e-300).log()
    if ctx.temperature > 0:  # Chang et al.'s annealed choice noise: Gumbel scaled by temperature · (1 − progress)
        u = torch.rand(conf.shape, generator=ctx.generator, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
        conf = conf + ctx.temperature * (1.0 - ctx.progress) * -torch.log(-torch.log(u))
    conf = conf.masked_fill(~mask, -math.inf)
    L = x.shape[1]
    keep_masked = (L * (1.0 - ctx.process.alpha_bar(s))).round().long()  # [B]
    n_unmask = (mask.sum(1) - keep_masked).clamp_min(0)
    rank = conf.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
    return torch.where(mask & (rank < n_unmask[:, None]), draw, x)


@dataclass(frozen=True)
class DiscreteMethod:
    """A discrete sampler: its step, where it runs (``continuous_only``, ``masked_only``) and its cost."""

    step: Step
    continuous_only: bool = False
    masked_only: bool = False
    nfe: Callable[[int], int] = lambda n: n
    options: tuple[str, ...] = ()


#: name -> method (a new sampler is a step function and a line here)
DISCRETE_METHODS: dict[str, DiscreteMethod] = {
    "ancestral": DiscreteMethod(ancestral_step),
    "euler": DiscreteMethod(euler_step, continuous_only=True),
    "tau-leaping": DiscreteMethod(tau_leaping_step, continuous_only=True),
    "maskgit": DiscreteMethod(maskgit_step, masked_only=True, options=("temperature",)),
}


def methods_for(process) -> tuple[str, ...]:
    """The methods that run on ``process`` (continuous-time ones need ``T=None``; maskgit a mask)."""
    return tuple(k for k, m in DISCRETE_METHODS.items()
                 if (process.continuous or not m.continuous_only) and (process.has_mask or not m.masked_only))


def nfe(process, method: str, steps: int) -> int:
    """Denoiser calls of ``method`` over ``steps`` steps."""
    return DISCRETE_METHODS[check_choice(method, "method", methods_for(process))].nfe(check_int(steps, "steps", min=1))


def _denoise(fn, x: torch.Tensor, t: torch.Tensor, V: int | None, step: int) -> torch.Tensor:
    """``fn(x, t)`` checked: ``[B, L, V]`` (any V ≥ 2 when ``V`` is None), finite, non-negative; returned float64
    and renormalised."""
    p0 = fn(x, t)
    ok = isinstance(p0, torch.Tensor) and p0.ndim == 3 and tuple(p0.shape[:2]) == tuple(x.shape)
    if not ok or (V is not None and p0.shape[-1] != V) or p0.shape[-1] < 2:
        raise ValueError(f"fn returned shape {tuple(getattr(p0, 'shape', ()))} at step {step}, expected "
                         f"{(*x.shape, V or 'V')} (probabilities p(x0 | x_t))")
    p0 = p0.to(torch.float64)
    if not bool(torch.isfinite(p0).all()) or bool((p0 < 0).any()):
        raise ValueError(f"fn returned a negative or non-finite probability at step {step}")
    return p0 / p0.sum(-1, keepdim=True).clamp_min(1e-300)


def _check_start(process, x_T, V: int | None) -> int | None:
    """x_T's type; the data's V (None if neither the process nor ``V`` says: the first denoiser call tells)."""
    if not isinstance(x_T, torch.Tensor) or x_T.is_floating_point() or x_T.ndim != 2 or x_T.shape[0] < 1:
        raise TypeError(f"x_T must be an integer tensor [B, L] with B >= 1, got "
                        f"{getattr(x_T, 'dtype', type(x_T).__name__)} {tuple(getattr(x_T, 'shape', ()))}")
    return process.vocab(V) if (V is not None or process.V is not None) else None


def _check_range(process, x_T: torch.Tensor, V: int) -> None:
    if int(x_T.min()) < 0 or int(x_T.max()) >= process.n_states(V):
        raise ValueError(f"x_T: symbols must lie in 0 … {process.n_states(V) - 1}")


@torch.no_grad()
def run(process, fn, x_T: torch.Tensor, *, method: str = "ancestral", steps: int = 64,
        generator: torch.Generator | None = None, callback: Callable[[dict], None] | None = None,
        V: int | None = None, temperature: float = 0.0) -> torch.Tensor:
    """Run ``method`` on ``process`` from ``x_T [B, L]`` long over ``steps`` steps of its time grid.

    ``callback`` gets, after every step, ``{"step", "n_steps", "t", "s", "x_t", "p0", "x_s", "method"}``
    (``p0`` the denoiser's ``[B, L, V]``). ``V``: the data's symbols when the process was built without them
    (else the first denoiser output's last dimension says); ``temperature`` (maskgit only) scales its choice noise. Returns x₀ ``[B, L]`` long.
    """
    check_choice(method, "method", methods_for(process))
    temperature = check_number(temperature, "temperature", min=0.0)
    if temperature and "temperature" not in DISCRETE_METHODS[method].options:
        raise ValueError(f"temperature={temperature!r} has no effect with method={method!r} (maskgit only)")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    V, x = _check_start(process, x_T, V), x_T.long()
    grid, B = process.time_grid(steps), x_T.shape[0]
    first = None
    if V is None:  # a process built without V (``masked(T)``): the denoiser's output says it
        first = _denoise(fn, x, grid[0].expand(B), None, 0)
        V = process.vocab(first.shape[-1])
    _check_range(process, x, V)
    ctx, step = _Context(process, V, generator, temperature=temperature), DISCRETE_METHODS[method].step
    for i in range(len(grid) - 1):
        t, s = grid[i].expand(B), grid[i + 1].expand(B)
        ctx.final, ctx.progress = i == len(grid) - 2, i / (len(grid) - 1)
        p0 = first if (i == 0 and first is not None) else _denoise(fn, x, t, V, i)
        x_s = step(ctx, x, p0, t, s)
        if callback is not None:
            callback({"step": i, "n_steps": len(grid) - 1, "t": t, "s": s, "x_t": x, "p0": p0, "x_s": x_s,
                      "method": method})
        x = x_s
    return x
