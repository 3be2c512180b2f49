"""Sample from trained MNIST checkpoints through toydiff's samplers, and draw what came out.

    from image_track.sampling import load_model, generate, grid_image, default_checkpoint
    m = load_model(default_checkpoint(conditional=True))
    x = generate(m.model, m.process, 100, labels=torch.arange(10).repeat_interleave(10), w=3.0)
    grid_image(x, nrow=10).save("grid.png")

* :func:`load_model` reads a training checkpoint or a shipped weights file (EMA weights, eval mode) into a
  :class:`~image_track.loaded.LoadedModel` and raises :class:`~toydiff.training.checkpoint.CheckpointError` for anything
  that does not fit (both live in :mod:`image_track.loaded`, re-exported here).
* :meth:`LoadedModel.eps_fn <image_track.loaded.LoadedModel.eps_fn>` turns the network, labels and a guidance
  scale (or an autoguidance model) into the ``eps_fn(x_t, t)`` toydiff samples with.
* :func:`generate` samples with the model's process (:mod:`toydiff.processes`: its samplers, options and
  defaults; the track's own default, DDIM in 50 steps, wherever the process offers DDIM) and per-sample seeds (:func:`toydiff.per_sample_generators`: generators seeded
  ``seed + i``), so image ``i`` is the same whatever the batch size.
* Figures: :func:`grid_image` (PIL), :func:`guidance_sweep_figure`, :func:`fixed_init_figure` (one x_T,
  ten samples, with and without the sampler noise), :func:`progression_figure` (x_t and x̂_0 strips from
  a :class:`toydiff.TrajectoryRecorder`) and :func:`progression_gif`. Images are clipped to ``[-1, 1]``
  and shown as ``(x + 1) / 2``.

No diffusion maths lives here: schedules, guidance and samplers all come from :mod:`toydiff`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
import torch
from torch import nn

import toydiff
from toydiff import per_sample_generators
from toydiff.checks import check_device, check_int, check_tensor
from toydiff.processes.base import Process
from toydiff.processes.schedules import NoiseSchedule

from image_track.loaded import (AUTOGUIDANCE_T_MAX, DEFAULT_SAMPLER, FLOW_STEPS, LoadedModel, as_process,
                                default_checkpoint, default_guide, default_sampler, load_model)

__all__ = [
    "LoadedModel", "load_model", "default_checkpoint", "default_guide", "AUTOGUIDANCE_T_MAX", "DEFAULT_SAMPLER",
    "FLOW_STEPS", "default_sampler", "per_sample_generators",
    "generate", "digit_labels", "to_display", "grid_image", "grid_figure", "guidance_sweep_figure",
    "fixed_init_samples", "fixed_init_figure", "record_progression", "progression_figure", "progression_gif",
]

DEFAULT_W = 3.0

#: what the functions below take as the model's process: a Process, its objective or a NoiseSchedule (DDPM),
#: read by :func:`image_track.loaded.as_process`
ProcessLike = Union[Process, NoiseSchedule, Any]


def check_sampler(process: ProcessLike, method: str, eta: float = 0.0) -> None:
    """Refuse (ValueError naming the argument) a ``method`` the process does not offer, or an ``eta`` its
    samplers do not read."""
    process = as_process(process)
    if method not in process.methods:
        raise ValueError(f"method {method!r} is not a sampler of {process.describe()}; it samples with "
                         f"{', '.join(process.methods)}")
    if eta and "eta" not in process.options:
        raise ValueError(f"eta applies to DDIM; the samplers of {process.describe()} do not read it")


@torch.no_grad()
def generate(model: nn.Module, process: ProcessLike, n: int, *, labels: torch.Tensor | None = None,
             w: float | None = None, method: str | None = None, steps: int | None = 50, eta: float = 0.0,
             seed: int = 0, batch_size: int = 500, device: str | torch.device | None = None,
             clip_x0: float | None = 1.0, x_T: torch.Tensor | None = None, callback=None,
             progress: bool = False, guide: nn.Module | None = None, guide_t_max: int | None = None,
             options: dict | None = None) -> torch.Tensor:
    """Draw ``n`` images ``[n, C, H, W]`` (CPU, clipped to [-1, 1]) with ``process.sample``.

    ``process``: the model's :class:`~toydiff.processes.base.Process` (``LoadedModel.process``); a training
    objective or a bare NoiseSchedule (DDPM) is accepted too. ``method``: one of ``process.methods`` (None: the
    track's :func:`default_sampler`); ``steps``: None means the process's own (DDPM: every step; a process whose
    steps always need a count: :data:`FLOW_STEPS`). Image ``i`` uses a generator seeded ``seed + i`` for its x_T
    and every sampler step, so it does not depend on ``batch_size``. ``labels [n]`` (conditional models), ``w``
    (guidance), ``guide`` and ``guide_t_max`` (autoguidance, ``w`` its scale) as in :meth:`LoadedModel.eps_fn
    <image_track.loaded.LoadedModel.eps_fn>`; ``x_T [n, C, H, W]`` overrides the starting noise.
    """
    n, batch_size = check_int(n, "n", min=1), check_int(batch_size, "batch_size", min=1)
    seed = check_int(seed, "seed", min=0, max=2**64 - 1 - n)  # image i is seeded seed + i (torch's range: < 2**64)
    handle = _handle(model, process)
    process = handle.process
    method = default_sampler(process)[0] if method is None else method
    check_sampler(process, method, eta)
    if steps is None and process.default_steps is not None:
        steps = FLOW_STEPS
    extra = dict(options or {})
    if set(extra) - set(process.options):
        raise ValueError(f"options must be among {process.describe()}'s sampler options {process.options}, got "
                         f"{sorted(extra)}")
    options = ({"eta": eta} if "eta" in process.options else {}) | extra
    labels = handle.labels(labels, n)
    device = next(model.parameters()).device if device is None else check_device(device, "device")
    shape = (handle.in_channels, handle.image_size, handle.image_size)
    if x_T is not None and check_tensor(x_T, "x_T").dtype != next(model.parameters()).dtype:
        raise TypeError(f"x_T must have the model's dtype {next(model.parameters()).dtype}, got {x_T.dtype}")
    if x_T is not None and x_T.shape != (n, *shape):
        raise ValueError(f"x_T must have shape [n, C, H, W] = {[n, *shape]} (n = {n}, the model's in_channels={shape[0]}, "
                         f"image_size={shape[1]}), got {list(x_T.shape)}")
    nets = [m for m in (model, guide) if m is not None]
    was_training = [m.training for m in nets]
    for m in nets:
        m.eval()
    out = []
    try:
        for i0 in range(0, n, batch_size):
            idx = range(i0, min(i0 + batch_size, n))
            gens = per_sample_generators(seed, idx)
            xb = (torch.stack([torch.randn(shape, generator=g) for g in gens]) if x_T is None
                  else x_T[idx.start: idx.stop]).to(device)
            lb = None if labels is None else labels[idx.start: idx.stop].to(device)
            fn = process.network_fn(handle.eps_fn(lb, w=w, guide=guide, guide_t_max=guide_t_max))
            x0 = process.sample(fn, xb, method=method, steps=steps, generator=gens, clip_x0=clip_x0,
                                callback=callback, progress=progress, **options)
            out.append(x0.float().clamp(-1, 1).cpu())
    finally:
        for m, mode in zip(nets, was_training):
            m.train(mode)
    return torch.cat(out)


def _handle(model: nn.Module, process: ProcessLike) -> LoadedModel:
    """The model's handle, refusing a schedule other than the one its config was built for (another T)."""
    handle = LoadedModel(model, process)
    T, schedule = handle.config.get("T"), handle.process.schedule
    if T is not None and schedule is not None and T != schedule.T:
        raise ValueError(f"schedule has T = {schedule.T} but the model was built for T = {T}")
    return handle


def digit_labels(rows: int = 10, per_row: int = 10, num_classes: int = 10) -> torch.Tensor:
    """Labels for a grid whose row ``r`` shows digit ``r``: ``[rows * per_row]``."""
    rows, per_row = check_int(rows, "rows", min=1), check_int(per_row, "per_row", min=1)
    num_classes = check_int(num_classes, "num_classes", min=1)
    return torch.arange(rows).remainder(num_classes).repeat_interleave(per_row)


# --------------------------------------------------------------------------------------------- figures


def to_display(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] -> ``[N, H, W]`` (C = 1) or ``[N, H, W, C]`` float in [0, 1]."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()
    return x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)


def grid_image(images: torch.Tensor, nrow: int = 10, pad: int = 2, scale: int = 1):
    """A PIL image tiling ``images [N, C, H, W]`` (in [-1, 1]) ``nrow`` to a row on a grey background."""
    from PIL import Image

    if images.ndim != 4:
        raise ValueError(f"images must have shape [N, C, H, W], got {tuple(images.shape)}")
    nrow, pad, scale = check_int(nrow, "nrow", min=1), check_int(pad, "pad", min=0), check_int(scale, "scale", min=1)
    x = to_display(images)
    n, h, w = x.shape[0], x.shape[1], x.shape[2]
    ncol = nrow
    nrows = -(-n // ncol)
    canvas = np.full((nrows * (h + pad) + pad, ncol * (w + pad) + pad) + x.shape[3:], 0.5, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = x[i]
    img = Image.fromarray(np.rint(canvas * 255).astype(np.uint8))
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def grid_figure(images: torch.Tensor, nrow: int = 10, title: str | None = None, row_labels: Sequence[str] | None = None):
    """A matplotlib Figure of an image grid (optionally with a title and one label per row)."""
    import matplotlib.pyplot as plt

    img = np.asarray(grid_image(images, nrow=nrow))
    nrows = -(-len(images) // nrow)
    fig, ax = plt.subplots(figsize=(0.6 * nrow + 0.6, 0.6 * nrows + 0.6))
    ax.imshow(img, cmap="gray", vmin=0, vmax=255)
    ax.set_xticks([])
    h = img.shape[0] / nrows
    if row_labels is not None:
        ax.set_yticks([h * (r + 0.5) for r in range(len(row_labels))], list(row_labels))
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def guidance_sweep_figure(model: nn.Module, process: ProcessLike, ws: Sequence[float] = (0.0, 5.0, 10.0), *,
                          per_digit: int = 4, seed: int = 0, **sample_kw):
    """One panel per guidance scale: ``per_digit`` samples of each digit (same seeds in every panel)."""
    import matplotlib.pyplot as plt

    nc = model.config.get("num_classes")
    if nc is None:
        raise ValueError("a guidance sweep needs a class-conditional model")
    per_digit = check_int(per_digit, "per_digit", min=1)
    labels = digit_labels(nc, per_digit, nc)
    # one row per scale: a panel is per_digit rows x nc columns of digits, so stacking the panels keeps the
    # figure's aspect that of the digits (side by side, they filled a tall figure with blank space)
    fig, axes = plt.subplots(len(ws), 1, figsize=(8, 0.8 * per_digit * len(ws) + 0.3 * len(ws) + 0.5), squeeze=False)
    for ax, w in zip(axes[:, 0], ws):
        x = generate(model, process, len(labels), labels=labels, w=float(w), seed=seed, **sample_kw)
        # transpose so each column is one digit: grid of per_digit rows x nc columns
        order = torch.arange(len(labels)).view(nc, per_digit).t().reshape(-1)
        ax.imshow(np.asarray(grid_image(x[order], nrow=nc)), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"w = {w:g}", fontsize=9)
        ax.axis("off")
    fig.suptitle("classifier-free guidance: ε_u + w (ε_c − ε_u)", fontsize=10)
    fig.tight_layout()
    return fig


def fixed_init_samples(model: nn.Module, process: ProcessLike, n: int = 10, *, seed: int = 0,
                       label: int | None = None, steps: int | None = None) -> dict[str, torch.Tensor]:
    """The fixed-initialisation experiment: one x_T copied ``n`` times, run through ``ddpm`` (fresh noise
    per sample at every step: ``n`` different digits) and ``ddpm-no-noise`` (no σ·z: ``n`` identical,
    blurry images). Returns ``{"ddpm": [n, C, H, W], "ddpm-no-noise": [n, C, H, W]}``."""
    cfg, n = model.config, check_int(n, "n", min=1)
    g = torch.Generator().manual_seed(check_int(seed, "seed"))
    x_T = torch.randn((1, cfg["in_channels"], cfg["image_size"], cfg["image_size"]), generator=g).expand(n, -1, -1, -1)
    labels = None if label is None else torch.full((n,), int(label))
    w = None if label is None else 1.0
    return {m: generate(model, process, n, labels=labels, w=w, method=m, steps=steps, seed=seed + 1, x_T=x_T)
            for m in ("ddpm", "ddpm-no-noise")}


def fixed_init_figure(samples: dict[str, torch.Tensor]):
    """Rows: one per method of :func:`fixed_init_samples`."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(samples), 1, figsize=(8, 1.2 * len(samples) + 0.4), squeeze=False)
    for ax, (name, x) in zip(axes[:, 0], samples.items()):
        ax.imshow(np.asarray(grid_image(x, nrow=len(x))), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{name}: one x_T, {len(x)} runs", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def record_progression(model: nn.Module, process: ProcessLike, n: int = 4, *, labels: torch.Tensor | None = None,
                       w: float | None = None, method: str = "ddpm", steps: int | None = None, seed: int = 0,
                       keep_steps: Sequence[int] | None = None) -> toydiff.TrajectoryRecorder:
    """Sample ``n`` images recording x_t and x̂_0 at ``keep_steps`` (sampler step numbers; None: all)."""
    rec = toydiff.TrajectoryRecorder(indices=range(n), steps=keep_steps, keep=("x_t", "x0_hat"))
    generate(model, process, n, labels=labels, w=w, method=method, steps=steps, seed=seed, callback=rec,
             batch_size=n)
    return rec


def evenly_spaced_steps(n_steps: int, k: int) -> list[int]:
    """``k`` sampler step numbers spread over ``0 .. n_steps - 1``, the last included."""
    n_steps, k = check_int(n_steps, "n_steps", min=1), check_int(k, "k", min=1)
    return sorted({int(round(v)) for v in np.linspace(0, n_steps - 1, k)})


def progression_figure(rec: toydiff.TrajectoryRecorder, sample: int = 0):
    """Two strips for one sample: x_t (top) and the model's x̂_0 (bottom) at each recorded step."""
    import matplotlib.pyplot as plt

    xt, x0 = rec.x_t[:, sample], rec.x0_hat[:, sample]  # [S, C, H, W]
    S = len(xt)
    fig, axes = plt.subplots(2, S, figsize=(1.1 * S + 0.6, 2.7), squeeze=False)
    for j in range(S):
        for r, (row, name) in enumerate(((xt, "x_t"), (x0, "x̂_0"))):
            ax = axes[r, j]
            ax.imshow(to_display(row[j: j + 1])[0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name)
        axes[0, j].set_title(f"t={rec.timesteps[j]}", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.88))  # room above the t labels for a caller's suptitle
    return fig


def progression_gif(rec: toydiff.TrajectoryRecorder, path: str | os.PathLike, *, scale: int = 4,
                    duration_ms: int = 60, hold_ms: int = 1200) -> Path:
    """An animated GIF: each frame shows the recorded samples' x_t above their x̂_0; the last frame holds."""
    xt, x0 = rec.x_t, rec.x0_hat  # [S, n, C, H, W]
    frames = [grid_image(torch.cat([xt[s], x0[s]]), nrow=xt.shape[1], scale=scale).convert("P") for s in range(len(xt))]
    if rec.final is not None:
        frames.append(grid_image(torch.cat([rec.final, rec.final]), nrow=xt.shape[1], scale=scale).convert("P"))
    durations = [duration_ms] * (len(frames) - 1) + [hold_ms]
    from toydiff.outputs import save_image

    return save_image(frames[0], path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
