"""The Motion page's explanatory texts, computed from what each figure draws: which fields and markers the
reverse animation shows for the data's dimension, and where the particle race's samplers actually ended
(:func:`toydiff.toy.motion.particle_race`), so no sentence states a fact that the figure does not show."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from toydiff.exact.mixture import GaussianMixture
from toydiff.toy.figures.motion import _FIELD_COLORS
from toydiff.toy.motion import Motion

__all__ = ["COLOR_NAMES", "SAMPLER_PARTICLES", "reverse_look_at", "race_summary", "mode_of", "mode_width"]

#: the words for the field colours of :func:`toydiff.toy.figures.motion.reverse_animation_plotly`
COLOR_NAMES = {"#d62728": "red", "#222222": "black", "#2ca02c": "green", "#9467bd": "purple"}

#: the particles' legend name in the 1-D reverse animation (the forward one keeps "x_t (q_sample)")
SAMPLER_PARTICLES = "x_t (sampler)"


def reverse_look_at(dim: int, fields: Sequence[str]) -> str:
    """"What to look at" for the reverse animation of ``dim``-D data drawn with the −ε ``fields`` (in order)."""
    if dim == 1:
        return ("The strip under the curve is the sampler's particles x_t at each step, over the exact density of "
                "x_t (blue): a good sampler keeps the strip filling the curve at every frame and ends on the modes. "
                "(1-D data: no arrows or x̂₀ markers; the 2-D data sets show those.)")
    arrows = "; ".join(f"{COLOR_NAMES.get(c, c)} the {name}" for name, c in zip(fields, _FIELD_COLORS))
    differ = " Where they differ the model is wrong." if len(fields) > 1 else ""
    return (f"Arrows are −ε (the score direction): {arrows}.{differ} Orange diamonds are x̂₀ of five particles: "
            "early on they sit at the data's mean.")


def mode_of(mixture: GaussianMixture, x: np.ndarray) -> int:
    """The component of ``mixture`` most responsible for the point ``x`` ``[D]`` (at ᾱ = 1)."""
    return int(mixture.responsibilities(torch.as_tensor(x, dtype=torch.float64).reshape(1, -1)).argmax())


def mode_width(mixture: GaussianMixture) -> float:
    """The smallest component standard deviation (square root of the smallest covariance eigenvalue)."""
    return float(torch.linalg.eigvalsh(mixture.covs).min().clamp_min(0).sqrt())


def race_summary(race: Mapping[str, Motion], mixture: GaussianMixture, denoiser: str) -> str:
    """Where DDIM and DDPM ended against the exact PF-ODE's end point, from the race's last frame: DDIM "follows"
    the exact path only when it ends within half a mode width of it."""
    end = {k: np.asarray(m.x[-1, 0], dtype=float) for k, m in race.items()}
    ode, ddim, ddpm = end["exact PF-ODE"], end["DDIM"], end["DDPM"]
    gap, tol = float(np.linalg.norm(ddim - ode)), 0.5 * mode_width(mixture)
    same = mode_of(mixture, ddim) == mode_of(mixture, ode)
    if gap <= tol:
        s = f"DDIM ends {gap:.3g} from the exact PF-ODE's end point (within half a mode width, {tol:.3g}): it follows the exact path."
    elif same:
        s = (f"DDIM ends {gap:.3g} from the exact PF-ODE's end point (more than half a mode width, {tol:.3g}), "
             "though in the same mode.")
    else:
        s = f"DDIM ends {gap:.3g} from the exact PF-ODE's end point, in another mode: it does not follow the exact path."
    if gap > tol:
        s += (" With the learned ε̂ it integrates the network's ODE, not the exact one; choose “exact ε*” to see "
              "Euler's own error." if denoiser != "exact ε*" else " With the exact ε* this is Euler's step error: "
              "add steps.")
    d2 = float(np.linalg.norm(ddpm - ode))
    s += (f" DDPM ends {d2:.3g} from it, " + ("in the same mode." if mode_of(mixture, ddpm) == mode_of(mixture, ode)
                                              else "in another mode (its fresh noise each step)."))
    return s
