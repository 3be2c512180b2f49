"""Figures of the discrete track, each as ``<name>_data`` (the numbers, once) and ``<name>_plotly`` (the app's
rendering): the forward masking over time, a sequence unmasked step by step with the exact posterior beside the
model's, and KL against sampler steps for each sampler, model vs the exact denoiser, over the count floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from toydiff.checks import check_int

__all__ = ["forward_grid_data", "forward_grid_plotly", "Unmasking", "unmasking_data", "unmasking_plotly",
           "kl_steps_data", "kl_steps_plotly", "symbol_names"]

_MASK_COLOR = "#bdbdbd"


def symbol_names(V: int, K: int) -> list[str]:
    """Labels of the K states: ``0 … V−1`` and ``▢`` for the mask (K = V + 1)."""
    return [str(v) for v in range(V)] + (["▢"] if K > V else [])


def forward_grid_data(dist, process, *, n: int = 6, times=(0.0, 0.25, 0.5, 0.75, 1.0),
                      generator: torch.Generator | None = None) -> dict:
    """``n`` clean sequences and their x_t at each of ``times`` (fractions of the way to the noise end; each
    sequence keeps one set of uniforms, so a token masked at t stays masked later): ``{"t": [m], "x": [m, n, L]}``."""
    n = check_int(n, "n", min=1)
    x0 = dist.sample(n, generator)
    u = torch.rand(x0.shape, generator=generator, dtype=torch.float64)  # one uniform per token: coupled over t
    repl = process.draw_stationary(x0.shape, dist.V, generator)
    xs = []
    for f in times:
        a = process.alpha_bar(float(f) if process.continuous else int(round(f * process.T)), 1)[0]
        xs.append(torch.where(u >= a, repl, x0))
    return {"t": [float(f) for f in times], "x": torch.stack(xs).numpy(), "V": dist.V, "K": process.n_states(dist.V)}


def _stepped_scale(V: int, K: int) -> list:
    """A Plotly colourscale over z ∈ [0, K] with one flat colour per state (the mask grey)."""
    import plotly.colors as pc

    colors = [pc.qualitative.Set2[v % 8] for v in range(V)] + ([_MASK_COLOR] if K > V else [])
    return [p for i, c in enumerate(colors) for p in ([i / K, c], [(i + 1) / K, c])]


def forward_grid_plotly(data: dict, *, title: str = "Forward process"):
    """One heatmap per time: rows the sequences, columns the positions, the symbol written in each cell."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    x, V, K = data["x"], data["V"], data["K"]
    names = symbol_names(V, K)
    m = len(data["t"])
    fig = make_subplots(rows=1, cols=m, subplot_titles=[f"t = {t:.2f}" for t in data["t"]], horizontal_spacing=0.02)
    scale = _stepped_scale(V, K)
    for j in range(m):
        z = x[j]
        fig.add_trace(go.Heatmap(z=z + 0.5, zmin=0, zmax=K, colorscale=scale, showscale=False,
                                 text=[[names[v] for v in row] for row in z], texttemplate="%{text}",
                                 hovertemplate="sequence %{y}, position %{x}: %{text}<extra></extra>"),
                      row=1, col=j + 1)
        fig.update_yaxes(autorange="reversed", showticklabels=j == 0, row=1, col=j + 1)
        fig.update_xaxes(showticklabels=False, row=1, col=j + 1)
    fig.update_layout(title=title, height=120 + 28 * x.shape[1], margin=dict(l=30, r=10, t=70, b=10))
    return fig


@dataclass
class Unmasking:
    """A sampled sequence's path: ``x [steps + 1, L]`` (x_T … x_0), ``t [steps]`` (each step's start), and at each
    step the model's and the exact ``p(x₀ⁱ | x_t)`` ``[steps, L, V]``."""

    x: np.ndarray
    t: np.ndarray
    model: np.ndarray
    exact: np.ndarray
    V: int
    K: int


def unmasking_data(fn, exact_fn, process, L: int, V: int, *, method: str = "ancestral", steps: int = 16,
                   generator: torch.Generator | None = None) -> Unmasking:
    """One sequence drawn from ``fn`` by ``method``; the exact denoiser evaluated on the very same x_t."""
    rec: list[dict] = []
    x0 = process.sample(fn, process.prior(1, L, V=V, generator=generator), method=method, steps=steps,
                        generator=generator, callback=rec.append)
    x = torch.stack([r["x_t"][0] for r in rec] + [x0[0]]).numpy()
    ex = torch.cat([exact_fn(r["x_t"], r["t"]) for r in rec]).numpy()
    return Unmasking(x=x, t=torch.stack([r["t"][0] for r in rec]).double().numpy(),
                     model=torch.cat([r["p0"] for r in rec]).numpy(), exact=ex, V=V, K=process.n_states(V))


def unmasking_plotly(u: Unmasking, k: int, *, model_label: str = "model"):
    """Step ``k``: per position, the bars of p(x₀ⁱ = v | x_t) from the exact denoiser and from the model; the
    title shows x_t (▢ masked) and the next state."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = symbol_names(u.V, u.K)
    L = u.x.shape[1]
    seq = lambda row: " ".join(names[v] for v in row)
    fig = make_subplots(rows=1, cols=L, subplot_titles=[f"pos {i}: {names[u.x[k, i]]}" for i in range(L)],
                        shared_yaxes=True, horizontal_spacing=0.01)
    syms = names[:u.V]
    for i in range(L):
        for who, p, color in (("exact", u.exact, "#1f77b4"), (model_label, u.model, "#ff7f0e")):
            fig.add_trace(go.Bar(x=syms, y=p[k, i], name=who, marker_color=color, showlegend=i == 0, legendgroup=who,
                                 hovertemplate=f"{who}: p(x₀[{i}] = %{{x}} | x_t) = %{{y:.3f}}<extra></extra>"),
                          row=1, col=i + 1)
    fig.update_yaxes(range=[0, 1])
    fig.update_layout(barmode="group", height=300, margin=dict(l=30, r=10, t=90, b=20),
                      title=f"step {k + 1} of {len(u.t)} at t = {u.t[k]:.3f}: x_t = {seq(u.x[k])}  →  {seq(u.x[k + 1])}")
    return fig


def kl_steps_data(run, steps, *, n: int = 1000, seed: int = 0, model: bool = True) -> dict:
    """KL(samples ‖ table) at each of ``steps`` for every sampler of the run's process, with the exact denoiser
    and (``model``) the run's model, plus the count floor at ``n``: ``{"steps", "n", "kl": {(who, method): [..]},
    "floor", "floor_sd"}``."""
    from toydiff.discrete import judge

    steps = [check_int(s, "steps", min=1) for s in steps]
    kl = {}
    for who in (("exact", "model") if model else ("exact",)):
        for m in run.process.methods:
            kl[(who, m)] = [judge.kl_tv(run.dist, run.sample(n, method=m, steps=s, exact=who == "exact",
                                                             generator=torch.Generator().manual_seed(seed)))[0]
                            for s in steps]
    floor = judge.count_floor(run.dist, n, draws=10, generator=torch.Generator().manual_seed(seed + 1))
    return {"steps": steps, "n": n, "kl": kl, "floor": floor["kl"], "floor_sd": floor["kl_sd"]}


def kl_steps_plotly(data: dict, *, title: str = "KL to the table against sampler steps"):
    """Lines per sampler (solid: model, dashed: exact denoiser), log axes, the count floor as a band."""
    import plotly.colors as pc
    import plotly.graph_objects as go

    fig = go.Figure()
    methods = sorted({m for _, m in data["kl"]}, key=list(dict.fromkeys(m for _, m in data["kl"])).index)
    for (who, m), kls in data["kl"].items():
        color = pc.qualitative.D3[methods.index(m) % 10]
        fig.add_trace(go.Scatter(x=data["steps"], y=kls, mode="lines+markers", name=f"{m} ({who})",
                                 line=dict(color=color, dash="solid" if who == "model" else "dash")))
    f, sd = data["floor"], data["floor_sd"]
    fig.add_hrect(y0=max(f - 2 * sd, 1e-6), y1=f + 2 * sd, fillcolor="gray", opacity=0.2, line_width=0)
    fig.add_hline(y=f, line=dict(color="gray", width=1),
                  annotation_text=f"count floor at n = {data['n']}: {f:.3f} ± {sd:.3f}")
    fig.update_layout(title=title, xaxis=dict(type="log", dtick=0.30103, title="sampler steps"),
                      yaxis=dict(type="log", dtick=1, title="KL(samples ‖ table), nats"), height=420)
    return fig
