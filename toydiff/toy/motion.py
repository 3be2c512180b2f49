"""Motion against the truth: the numbers behind the forward / reverse animations of the toy track.

Pure computation (no plotting; :mod:`toydiff.toy.figures.motion` draws these as Plotly animations):

- :func:`forward_motion` — fixed x_0 and ε, moved along x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε (Ho et al. 2020 eq. 4)
  at a few steps, so each particle travels smoothly from the data to N(0, I);
- :func:`reverse_motion` — a particle cloud under any :func:`toydiff.sample` method, recorded by a
  :class:`toydiff.TrajectoryRecorder` (x_t and x̂_0 at every step);
- :func:`exact_pf_ode` — the probability-flow ODE (Song et al. 2021, "Score-Based Generative Modeling through
  SDEs") with the exact ε* of a Gaussian mixture, integrated to tolerance by ``scipy.integrate.solve_ivp``
  in Karras et al. 2022's variables y = x / √ᾱ, σ = √((1 − ᾱ)/ᾱ): dy/dσ = ε*(x, ᾱ). DDIM (η = 0) is Euler's
  method on this ODE, so its path converges to this one as the steps shrink;
- :func:`particle_race` — one x_T under the exact PF-ODE, DDIM and DDPM on the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from toydiff.checks import check_int
from toydiff.exact.mixture import GaussianMixture
from toydiff.sampling.loop import sample
from toydiff.processes.schedules import NoiseSchedule
from toydiff.sampling.trajectory import TrajectoryRecorder

__all__ = ["Motion", "forward_motion", "reverse_motion", "exact_pf_ode", "particle_race"]


@dataclass(frozen=True)
class Motion:
    """Particles over time.

    Attributes:
        x: ``[F, N, D]`` positions at each of the F frames (float64 numpy).
        timesteps: ``[F]`` the diffusion step t of each frame (−1: the clean end, ᾱ = 1).
        alpha_bars: ``[F]`` ᾱ_t of each frame.
        x0_hat: ``[F, N, D]`` the sampler's x̂_0 at each frame (reverse motion only; the last frame repeats the end).
    """

    x: np.ndarray
    timesteps: np.ndarray
    alpha_bars: np.ndarray
    x0_hat: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return self.x.shape[0]


def _alpha_bars(schedule: NoiseSchedule, ts) -> np.ndarray:
    return np.array([schedule.alpha_bar(int(t)) for t in ts])


def forward_motion(x0: torch.Tensor, schedule: NoiseSchedule, *, frames: int = 50,
                   generator: torch.Generator | None = None) -> Motion:
    """The forward process of ``x0`` ``[N, D]`` at ``frames`` steps from t = −1 (clean) to T − 1.

    One ε ``[N, D]`` is drawn from ``generator`` and kept, so frame f is x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε: the
    marginal at every frame is exact, and a particle's motion is continuous.
    """
    frames = check_int(frames, "frames", min=2)
    if x0.ndim != 2:
        raise ValueError(f"x0 must be [N, D], got shape {tuple(x0.shape)}")
    ts = np.unique(np.linspace(-1, schedule.T - 1, frames).round().astype(int))
    ab = _alpha_bars(schedule, ts)
    x = x0.double()
    eps = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    xt = np.sqrt(ab)[:, None, None] * x.numpy()[None] + np.sqrt(1 - ab)[:, None, None] * eps.numpy()[None]
    return Motion(x=xt, timesteps=ts, alpha_bars=ab)


def reverse_motion(eps_fn: Callable, x_T: torch.Tensor, schedule: NoiseSchedule, *, method: str = "ddim",
                   steps: int = 50, generator: torch.Generator | None = None, **sampler_kwargs) -> Motion:
    """The reverse process of the cloud ``x_T`` ``[N, D]`` under ``method`` (any of ``toydiff.METHODS``).

    Frames are the x_t the sampler visits, then its output (t = −1); ``x0_hat`` is its x̂_0 at each visited step
    (the output repeated last). Extra keyword arguments go to :func:`toydiff.sample`.
    """
    rec = TrajectoryRecorder(indices=None)
    out = sample(eps_fn, x_T, schedule, method=method, steps=steps, generator=generator, callback=rec,
                 **sampler_kwargs)
    ts = np.array(list(rec.timesteps) + [-1])
    x0h = torch.cat([rec.x0_hat, out.detach().cpu()[None]])
    return Motion(x=rec.path().double().numpy(), timesteps=ts, alpha_bars=_alpha_bars(schedule, ts),
                  x0_hat=x0h.double().numpy())


def exact_pf_ode(mixture: GaussianMixture, x_T: torch.Tensor, alpha_bars, *, rtol: float = 1e-6,
                 atol: float = 1e-8) -> np.ndarray:
    """The exact probability-flow ODE of ``mixture``'s diffusion from ``x_T`` ``[N, D]`` at ``alpha_bars[0]``,
    reported at each of the (increasing) ``alpha_bars`` ``[F]``; returns ``[F, N, D]`` float64.

    :meth:`GaussianMixture.probability_flow` at σ = √((1 − ᾱ)/ᾱ), by RK45 to ``rtol`` / ``atol`` (a figure's
    accuracy); an ``alpha_bars`` entry of 1 is the clean end (σ = 0).
    """
    ab = np.asarray(alpha_bars, dtype=np.float64)
    if ab.ndim != 1 or len(ab) < 2 or np.any(np.diff(ab) <= 0) or ab[0] <= 0 or ab[-1] > 1:
        raise ValueError("alpha_bars must be a strictly increasing sequence in (0, 1] of length ≥ 2")
    x = x_T.double().reshape(len(x_T), -1)
    return mixture.probability_flow(x, np.sqrt((1 - ab) / ab), rtol=rtol, atol=atol, method="RK45").numpy()


def particle_race(mixture: GaussianMixture, schedule: NoiseSchedule, x_T: torch.Tensor, *,
                  eps_fn: Callable | None = None, steps: int = 50, seed: int = 0) -> dict[str, Motion]:
    """One (or a few) ``x_T`` ``[N, D]`` under the exact PF-ODE, DDIM (η = 0) and DDPM on the same ``steps``.

    DDIM and DDPM use ``eps_fn`` (default: the mixture's exact ε*), DDPM's noise comes from ``seed``; the
    PF-ODE is :func:`exact_pf_ode` reported at DDIM's steps. Returns ``{"exact PF-ODE", "DDIM", "DDPM"}`` motions.
    """
    eps_fn = eps_fn or mixture.eps_fn(schedule)
    x_T = x_T.double()
    ddim = reverse_motion(eps_fn, x_T, schedule, method="ddim", steps=steps)
    ddpm = reverse_motion(eps_fn, x_T, schedule, method="ddpm", steps=steps,
                          generator=torch.Generator().manual_seed(seed))
    ode = exact_pf_ode(mixture, x_T, ddim.alpha_bars)
    return {"exact PF-ODE": Motion(x=ode, timesteps=ddim.timesteps, alpha_bars=ddim.alpha_bars),
            "DDIM": ddim, "DDPM": ddpm}
