"""Plotly animations of :mod:`toydiff.toy.motion`: particles moving over the exact density of x_t.

Each function returns a ``plotly.graph_objects.Figure`` built by :func:`toydiff.toy.charts.animate`: every
frame is precomputed, and the browser plays them (play / pause, time slider) without asking the host again.
Grids are kept small (a ``grid``² density and an ``arrow_grid``² field per frame) so 2 000 particles × 50
frames stay a few MB and play smoothly.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import plotly.graph_objects as go
import torch

from toydiff.exact.mixture import GaussianMixture
from toydiff.toy import charts
from toydiff.toy.motion import Motion

__all__ = ["forward_animation", "reverse_animation", "race_animation"]

_FIELD_COLORS = ("#d62728", "#222222", "#2ca02c", "#9467bd")
_RACE_COLORS = {"exact PF-ODE": "#222222", "DDIM": "#1f77b4", "DDPM": "#d62728"}


def _box(motion: Motion, mixture: GaussianMixture | None, pad: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """A fixed box holding every frame (and at least ±3, where N(0, I) lives)."""
    pts = motion.x.reshape(-1, motion.x.shape[-1])
    lo, hi = np.quantile(pts, 0.002, axis=0), np.quantile(pts, 0.998, axis=0)
    if mixture is not None:
        mlo, mhi = charts.extent(mixture=mixture, pad=0.0)
        lo, hi = np.minimum(lo, mlo), np.maximum(hi, mhi)
    lo, hi = np.minimum(lo, -3.0), np.maximum(hi, 3.0)
    span = hi - lo
    return lo - pad * span, hi + pad * span


def _label(t: int, ab: float) -> str:
    return f"t = {t}, ᾱ = {ab:.3f}" if t >= 0 else "t = −1 (clean), ᾱ = 1"


def _jitter(n: int, height: float) -> np.ndarray:
    return -height * (0.05 + 0.25 * np.random.default_rng(0).random(n))


def forward_animation(motion: Motion, mixture: GaussianMixture | None = None, *, grid: int = 50,
                      title: str = "Forward process") -> go.Figure:
    """Particles of a forward :class:`Motion` over the exact density of x_t (``mixture`` noised to each ᾱ_t).

    1-D: the density curve with the particles as a jittered strip under it; 2-D: a density heatmap under the
    scatter.
    """
    lo, hi = _box(motion, mixture)
    d = motion.x.shape[-1]
    frames, labels = [], [_label(int(t), a) for t, a in zip(motion.timesteps, motion.alpha_bars)]
    if d == 1:
        xs, dens = charts.density_frames(mixture, motion.alpha_bars, lo, hi, 300) if mixture is not None else (None, None)
        top = dens.max() if mixture is not None else 0.5
        yj = _jitter(motion.x.shape[1], top)
        for f in range(motion.frames):
            tr = [charts.points(motion.x[f], y=yj, name="x_t (q_sample)", size=3, gl=True)]
            if mixture is not None:
                tr.insert(0, go.Scatter(x=xs, y=dens[f], mode="lines", name="exact p_t",
                                        line=dict(color=charts.TRUE_COLOR, width=2), fill="tozeroy"))
            frames.append(tr)
        layout = dict(xaxis=dict(range=[lo[0], hi[0]], title="x_t"), yaxis=dict(range=[-0.32 * top, 1.05 * top],
                                                                              title="density"))
    elif d == 2:
        dens = charts.density_frames(mixture, motion.alpha_bars, lo, hi, grid) if mixture is not None else None
        for f in range(motion.frames):
            tr = [charts.points(motion.x[f], name="x_t (q_sample)", size=3, opacity=0.6, gl=True)]
            if mixture is not None:
                tr.insert(0, charts.density_heatmap(dens[0], dens[1], dens[2][f]))
            frames.append(tr)
        layout = dict(xaxis=dict(range=[lo[0], hi[0]]), yaxis=dict(range=[lo[1], hi[1]], scaleanchor="x"))
    else:
        raise ValueError(f"forward_animation draws 1-D and 2-D motion, got D = {d}")
    return charts.animate(frames, labels, title=title, height=560, **layout)


def _field_grid(lo, hi, n: int) -> np.ndarray:
    xs, ys = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    XX, YY = np.meshgrid(xs, ys)
    return np.stack([XX.ravel(), YY.ravel()], 1)


def _eval(fn: Callable, x: np.ndarray, t: int) -> np.ndarray:
    with torch.no_grad():
        return charts._np(fn(torch.from_numpy(x), torch.full((len(x),), max(int(t), 0), dtype=torch.long)))


def _x0_links(x: np.ndarray, x0: np.ndarray) -> go.Scatter:
    nan = np.full(len(x), np.nan)
    return go.Scatter(x=np.stack([x[:, 0], x0[:, 0], nan], 1).ravel(), y=np.stack([x[:, 1], x0[:, 1], nan], 1).ravel(),
                      mode="lines", line=dict(color="#ff7f0e", width=1, dash="dot"), name="x_t → x̂₀", hoverinfo="skip")


def reverse_animation(motion: Motion, *, mixture: GaussianMixture | None = None,
                      fields: dict[str, Callable] | None = None, n_x0: int = 5, grid: int = 40,
                      arrow_grid: int = 13, title: str = "Reverse process") -> go.Figure:
    """A reverse :class:`Motion` (2-D) over the exact density of x_t, with −ε fields as arrows and x̂₀.

    Args:
        fields: ``{name: eps_fn(x [B, 2] float64, t LongTensor [B])}`` (e.g. the learned ε̂ and the exact ε*),
            drawn as −ε (the score direction) on an ``arrow_grid``² grid at each step, scaled per frame so the
            longest arrow spans one grid cell (directions and relative lengths compare; absolute lengths do not).
        n_x0: the first ``n_x0`` particles get their x̂₀ (Ho et al. 2020 eq. 15: (x_t − √(1 − ᾱ) ε̂) / √ᾱ)
            drawn as a diamond linked to the particle.
    """
    if motion.x.shape[-1] != 2:
        raise ValueError("reverse_animation draws 2-D motion; use forward_animation-style strips for 1-D")
    if motion.x0_hat is None:
        raise ValueError("motion has no x0_hat: record it with reverse_motion")
    fields = fields or {}
    lo, hi = _box(motion, mixture)
    gp = _field_grid(lo, hi, arrow_grid)
    scale = 0.9 * (hi[0] - lo[0]) / (arrow_grid - 1)
    frames, labels = [], []
    dens = charts.density_frames(mixture, motion.alpha_bars, lo, hi, grid) if mixture is not None else None
    for f, (t, a) in enumerate(zip(motion.timesteps, motion.alpha_bars)):
        tr = [] if mixture is None else [charts.density_heatmap(dens[0], dens[1], dens[2][f])]
        tr.append(charts.points(motion.x[f], name="particles x_t", size=3, opacity=0.55, gl=True))
        vecs = [-_eval(fn, gp, t) for fn in fields.values()]
        # one length scale per frame, shared by the fields (so they compare): the longest arrow spans one cell
        top = max([float(np.linalg.norm(v, axis=1).max()) for v in vecs] + [1e-12])
        for name, v, color in zip(fields, vecs, _FIELD_COLORS):
            tr.append(charts.arrows(gp, v, scale=scale / top, name=f"−ε {name}", color=color,
                                    width=1.5 if color == _FIELD_COLORS[0] else 1))
        k = min(n_x0, motion.x.shape[1])
        tr.append(_x0_links(motion.x[f, :k], motion.x0_hat[f, :k]))
        tr.append(charts.points(motion.x0_hat[f, :k], name="x̂₀ of 5 particles", color="#ff7f0e", size=10,
                                opacity=1.0, symbol="diamond"))
        frames.append(tr)
        labels.append(_label(int(t), a))
    return charts.animate(frames, labels, title=title, height=600, xaxis=dict(range=[lo[0], hi[0]]),
                          yaxis=dict(range=[lo[1], hi[1]], scaleanchor="x"))


def race_animation(race: dict[str, Motion], *, mixture: GaussianMixture | None = None, grid: int = 50,
                   title: str = "One particle, three samplers") -> go.Figure:
    """Particles of several samplers from the same x_T (:func:`toydiff.toy.motion.particle_race`), each with its
    trail so far. 2-D: over the exact density of x_t; 1-D: x_t against the step, over the density heatmap."""
    first = next(iter(race.values()))
    d = first.x.shape[-1]
    lo, hi = _box(first, mixture)
    for m in race.values():
        lo, hi = np.minimum(lo, m.x.min((0, 1))), np.maximum(hi, m.x.max((0, 1)))
    steps = np.arange(first.frames)
    frames, labels = [], [_label(int(t), a) for t, a in zip(first.timesteps, first.alpha_bars)]
    static = []
    for name, m in race.items():  # the whole path, faint: where each sampler is heading
        px, py = (m.x[:, 0, 0], m.x[:, 0, 1]) if d == 2 else (steps, m.x[:, 0, 0])
        static.append(go.Scatter(x=px, y=py, mode="lines", line=dict(color=_RACE_COLORS.get(name, "#9467bd"), width=1,
                                                                     dash="dot"), opacity=0.4, showlegend=False,
                                 hoverinfo="skip"))
    if d == 1 and mixture is not None:
        xs = np.linspace(lo[0], hi[0], 120)
        z = charts.density_frames(mixture, first.alpha_bars, lo, hi, 120)[1].T
        static.append(go.Heatmap(x=steps, y=xs, z=z, colorscale="Blues", showscale=False, name="exact p_t",
                                 hovertemplate="step %{x}<br>x=%{y:.2f}<br>density %{z:.3g}<extra></extra>"))
    dens = charts.density_frames(mixture, first.alpha_bars, lo, hi, grid) if d == 2 and mixture else None
    for f in range(first.frames):
        tr = [] if dens is None else [charts.density_heatmap(dens[0], dens[1], dens[2][f])]
        for name, m in race.items():
            c = _RACE_COLORS.get(name, "#9467bd")
            px, py = (m.x[: f + 1, 0, 0], m.x[: f + 1, 0, 1]) if d == 2 else (steps[: f + 1], m.x[: f + 1, 0, 0])
            tr.append(go.Scatter(x=px, y=py, mode="lines+markers", name=name, line=dict(color=c, width=2),
                                 marker=dict(size=[3] * f + [12], color=c)))
        frames.append(tr)
    if d == 2:
        layout = dict(xaxis=dict(range=[lo[0], hi[0]]), yaxis=dict(range=[lo[1], hi[1]], scaleanchor="x"))
    else:
        layout = dict(xaxis=dict(range=[-0.5, steps[-1] + 0.5], title="sampler step"),
                      yaxis=dict(range=[lo[0], hi[0]], title="x_t"))
    return charts.animate(frames, labels, static=static, title=title, height=520, **layout)
