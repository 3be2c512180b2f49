"""Animations of :mod:`toydiff.toy.motion`: particles moving over the exact density of x_t, and an image's x_t
beside the model's x̂_0 as it is denoised.

Each function returns a ``plotly.graph_objects.Figure`` built by :func:`~toydiff.toy.figures.plotly_kit.animate`:
every frame is precomputed, and the browser plays them (play / pause, time slider) without asking the host
again. Grids are kept small (a ``grid``² density and an ``arrow_grid``² field per frame) so 2 000 particles × 50
frames stay a few MB and play smoothly. The data are prepared by :mod:`toydiff.toy.motion` (a :class:`Motion`
holds every frame); there is no matplotlib twin, since a PNG cannot play.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from toydiff.exact.mixture import GaussianMixture
from toydiff.toy.figures.base import TRUE_COLOR, density_frames, extent, to_numpy
from toydiff.toy.motion import Motion

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["forward_animation_plotly", "reverse_animation_plotly", "race_animation_plotly",
           "denoising_animation_plotly"]

_FIELD_COLORS = ("#d62728", "#222222", "#2ca02c", "#9467bd")
_RACE_COLORS = {"exact PF-ODE": "#222222", "DDIM": "#1f77b4", "DDPM": "#d62728"}


def _box(motion: Motion, mixture: GaussianMixture | None, pad: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """A fixed box holding every frame (and at least ±3, where N(0, I) lives)."""
    pts = motion.x.reshape(-1, motion.x.shape[-1])
    lo, hi = np.quantile(pts, 0.002, axis=0), np.quantile(pts, 0.998, axis=0)
    if mixture is not None:
        mlo, mhi = extent(mixture=mixture, pad=0.0)
        lo, hi = np.minimum(lo, mlo), np.maximum(hi, mhi)
    lo, hi = np.minimum(lo, -3.0), np.maximum(hi, 3.0)
    span = hi - lo
    return lo - pad * span, hi + pad * span


def _plane_layout(lo, hi) -> dict:
    """Fixed axis ranges (so frames do not rescale) over the box, equal aspect, the plot shrunk to the box."""
    from toydiff.toy.figures.plotly_kit import PLANE_X, PLANE_Y

    return dict(xaxis=dict(PLANE_X, range=[lo[0], hi[0]], title="x"),
                yaxis=dict(PLANE_Y, range=[lo[1], hi[1]], title="y"))


def _label(t: int, ab: float) -> str:
    """A frame's slider label, short so fifty of them fit under the slider: the step and ᾱ."""
    return f"t={t} ᾱ={ab:.2f}" if t >= 0 else "clean"


def _jitter(n: int, height: float) -> np.ndarray:
    return -height * (0.05 + 0.25 * np.random.default_rng(0).random(n))


def forward_animation_plotly(motion: Motion, mixture: GaussianMixture | None = None, *, grid: int = 50,
                      title: str = "Forward process", particles: str = "x_t (q_sample)") -> go.Figure:
    """Particles of a forward :class:`Motion` over the exact density of x_t (``mixture`` noised to each ᾱ_t).

    1-D: the density curve with the particles as a jittered strip under it; 2-D: a density heatmap under the
    scatter. ``particles``: the particles' legend name (a sampler's reverse motion is not q_sample).
    """
    import plotly.graph_objects as go

    from toydiff.toy.figures.plotly_kit import animate, density_heatmap, points

    lo, hi = _box(motion, mixture)
    d = motion.x.shape[-1]
    frames, labels = [], [_label(int(t), a) for t, a in zip(motion.timesteps, motion.alpha_bars)]
    if d == 1:
        xs, dens = density_frames(mixture, motion.alpha_bars, lo, hi, 300) if mixture is not None else (None, None)
        top = dens.max() if mixture is not None else 0.5
        yj = _jitter(motion.x.shape[1], top)
        for f in range(motion.frames):
            tr = [points(motion.x[f], y=yj, name=particles, size=3, gl=True)]
            if mixture is not None:
                tr.insert(0, go.Scatter(x=xs, y=dens[f], mode="lines", name="exact p_t",
                                        line=dict(color=TRUE_COLOR, width=2), fill="tozeroy"))
            frames.append(tr)
        layout = dict(xaxis=dict(range=[lo[0], hi[0]], title="x_t"), yaxis=dict(range=[-0.32 * top, 1.05 * top],
                                                                              title="density"))
    elif d == 2:
        dens = density_frames(mixture, motion.alpha_bars, lo, hi, grid) if mixture is not None else None
        for f in range(motion.frames):
            tr = [points(motion.x[f], name=particles, size=3, opacity=0.6, gl=True)]
            if mixture is not None:
                tr.insert(0, density_heatmap(dens[0], dens[1], dens[2][f]))
            frames.append(tr)
        layout = _plane_layout(lo, hi)
    else:
        raise ValueError(f"forward_animation_plotly draws 1-D and 2-D motion, got D = {d}")
    return animate(frames, labels, title=title, height=560, **layout)


def _field_grid(lo, hi, n: int) -> np.ndarray:
    xs, ys = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    XX, YY = np.meshgrid(xs, ys)
    return np.stack([XX.ravel(), YY.ravel()], 1)


def _eval(fn: Callable, x: np.ndarray, t: int) -> np.ndarray:
    with torch.no_grad():
        return to_numpy(fn(torch.from_numpy(x), torch.full((len(x),), max(int(t), 0), dtype=torch.long)))


def _x0_links(x: np.ndarray, x0: np.ndarray) -> go.Scatter:
    import plotly.graph_objects as go

    nan = np.full(len(x), np.nan)
    return go.Scatter(x=np.stack([x[:, 0], x0[:, 0], nan], 1).ravel(), y=np.stack([x[:, 1], x0[:, 1], nan], 1).ravel(),
                      mode="lines", line=dict(color="#ff7f0e", width=1, dash="dot"), name="x_t → x̂₀", hoverinfo="skip")


def reverse_animation_plotly(motion: Motion, *, mixture: GaussianMixture | None = None,
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
    import plotly.graph_objects as go

    from toydiff.toy.figures.plotly_kit import animate, arrows, density_heatmap, points

    if motion.x.shape[-1] != 2:
        raise ValueError("reverse_animation_plotly draws 2-D motion; use forward_animation_plotly-style strips for 1-D")
    if motion.x0_hat is None:
        raise ValueError("motion has no x0_hat: record it with reverse_motion")
    fields = fields or {}
    lo, hi = _box(motion, mixture)
    gp = _field_grid(lo, hi, arrow_grid)
    scale = 0.9 * (hi[0] - lo[0]) / (arrow_grid - 1)
    frames, labels = [], []
    dens = density_frames(mixture, motion.alpha_bars, lo, hi, grid) if mixture is not None else None
    for f, (t, a) in enumerate(zip(motion.timesteps, motion.alpha_bars)):
        tr = [] if mixture is None else [density_heatmap(dens[0], dens[1], dens[2][f])]
        tr.append(points(motion.x[f], name="particles x_t", size=3, opacity=0.55, gl=True))
        vecs = [-_eval(fn, gp, t) for fn in fields.values()]
        # one length scale per frame, shared by the fields (so they compare): the longest arrow spans one cell
        top = max([float(np.linalg.norm(v, axis=1).max()) for v in vecs] + [1e-12])
        for name, v, color in zip(fields, vecs, _FIELD_COLORS):
            tr.append(arrows(gp, v, scale=scale / top, name=f"−ε {name}", color=color,
                                    width=1.5 if color == _FIELD_COLORS[0] else 1))
        k = min(n_x0, motion.x.shape[1])
        tr.append(_x0_links(motion.x[f, :k], motion.x0_hat[f, :k]))
        tr.append(points(motion.x0_hat[f, :k], name="x̂₀ of 5 particles", color="#ff7f0e", size=10,
                                opacity=1.0, symbol="diamond"))
        frames.append(tr)
        labels.append(_label(int(t), a))
    return animate(frames, labels, title=title, height=600, **_plane_layout(lo, hi))


def race_animation_plotly(race: dict[str, Motion], *, mixture: GaussianMixture | None = None, grid: int = 50,
                   title: str = "One particle, three samplers") -> go.Figure:
    """Particles of several samplers from the same x_T (:func:`toydiff.toy.motion.particle_race`), each with its
    trail so far. 2-D: over the exact density of x_t; 1-D: x_t against the step, over the density heatmap."""
    import plotly.graph_objects as go

    from toydiff.toy.figures.plotly_kit import animate, density_heatmap

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
        z = density_frames(mixture, first.alpha_bars, lo, hi, 120)[1].T
        static.append(go.Heatmap(x=steps, y=xs, z=z, colorscale="Blues", showscale=False, name="exact p_t",
                                 hovertemplate="step %{x}<br>x=%{y:.2f}<br>density %{z:.3g}<extra></extra>"))
    dens = density_frames(mixture, first.alpha_bars, lo, hi, grid) if d == 2 and mixture else None
    for f in range(first.frames):
        tr = [] if dens is None else [density_heatmap(dens[0], dens[1], dens[2][f])]
        for name, m in race.items():
            c = _RACE_COLORS.get(name, "#9467bd")
            px, py = (m.x[: f + 1, 0, 0], m.x[: f + 1, 0, 1]) if d == 2 else (steps[: f + 1], m.x[: f + 1, 0, 0])
            tr.append(go.Scatter(x=px, y=py, mode="lines+markers", name=name, line=dict(color=c, width=2),
                                 marker=dict(size=[3] * f + [12], color=c)))
        frames.append(tr)
    if d == 2:
        layout = _plane_layout(lo, hi)
    else:
        layout = dict(xaxis=dict(range=[-0.5, steps[-1] + 0.5], title="sampler step"),
                      yaxis=dict(range=[lo[0], hi[0]], title="x_t"))
    return animate(frames, labels, static=static, title=title, height=520, **layout)


def _heat(z: np.ndarray) -> go.Heatmap:
    import plotly.graph_objects as go

    return go.Heatmap(z=z[::-1], zmin=-1, zmax=1, colorscale="gray", showscale=False,
                      hovertemplate="pixel value %{z:.2f}<extra></extra>")


def denoising_animation_plotly(x_t: np.ndarray, x0_hat: np.ndarray, ts: Sequence[int], *, frame_ms: int = 120) -> go.Figure:
    """x_t beside the model's x̂_0 for each recorded step, as client-side animation frames with play / pause and
    a time slider. ``x_t`` and ``x0_hat`` are ``[F, H, W]`` in [-1, 1]; ``ts`` the F timesteps."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    x_t, x0_hat = np.asarray(x_t, dtype=float), np.asarray(x0_hat, dtype=float)
    if x_t.ndim != 3 or x_t.shape != x0_hat.shape or len(ts) != x_t.shape[0]:
        raise ValueError(f"x_t {x_t.shape} and x0_hat {x0_hat.shape} must both be [F, H, W] with F = len(ts) "
                         f"({len(ts)})")
    names = [f"step {i + 1}: t = {t}" for i, t in enumerate(ts)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("x_t (what the sampler holds)", "x̂_0 (the model's guess)"),
                        horizontal_spacing=0.05)
    fig.add_trace(_heat(x_t[0]), row=1, col=1)
    fig.add_trace(_heat(x0_hat[0]), row=1, col=2)
    fig.frames = [go.Frame(data=[_heat(a), _heat(b)], traces=[0, 1], name=nm) for a, b, nm in zip(x_t, x0_hat, names)]
    anim = {"frame": {"duration": frame_ms, "redraw": True}, "transition": {"duration": 0}, "mode": "immediate"}
    fig.update_layout(
        height=380, width=640, margin={"t": 40, "b": 10, "l": 10, "r": 40},
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0.0, "y": -0.05, "xanchor": "left",
                      "buttons": [{"label": "▶ Play", "method": "animate", "args": [None, {**anim, "fromcurrent": True}]},
                                  {"label": "❚❚ Pause", "method": "animate",
                                   "args": [[None], {**anim, "frame": {"duration": 0, "redraw": False}}]}]}],
        sliders=[{"active": 0, "x": 0.22, "len": 0.72, "y": -0.02, "currentvalue": {"prefix": ""},
                  "steps": [{"label": str(t), "method": "animate",
                             "args": [[nm], {**anim, "frame": {"duration": 0, "redraw": True}}]}
                            for t, nm in zip(ts, names)]}])
    for ax in ("xaxis", "xaxis2", "yaxis", "yaxis2"):
        fig.layout[ax].update(showticklabels=False, showgrid=False, zeroline=False)
    from toydiff.toy.figures.plotly_kit import plane_axes

    plane_axes(fig, row=1, col=1)
    plane_axes(fig, row=1, col=2)
    return fig
