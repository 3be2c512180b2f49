"""The single-step denoiser: train D(z) ≈ x on z = x + σε with σ = 0.5, then try other σ.

Not diffusion: one noise level, one network call, an L2 loss E‖D(z) − x‖² (the seed's Part B.1). The
network is a UNet preset of :mod:`image_track.models` used as a plain image-to-image map with the step
fixed to 0. MNIST here lies in [-1, 1] (the seed used [0, 1]), so σ = 0.5 is half as strong relative to
the digit's range. The out-of-distribution test keeps the trained net and varies σ over 0 ... 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from toydiff.checks import check_int, check_number

from image_track.lab.common import finish, new_figure, show, to_numpy

__all__ = ["DenoiserConfig", "DenoiserResult", "ImageDenoiser", "denoiser", "train_denoiser", "plot_denoiser"]

TEST_SIGMAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class DenoiserConfig:
    """Training set-up; the defaults take about a minute on one CPU core with the ``tiny`` preset."""

    preset: str = "tiny"
    sigma: float = 0.5
    epochs: int = 5
    subset: int = 2048  # training images (a random subset of MNIST train)
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    test_sigmas: tuple[float, ...] = TEST_SIGMAS
    n_show: int = 6

    def __post_init__(self):
        for name in ("epochs", "subset", "batch_size", "n_show"):
            check_int(getattr(self, name), name, min=1)
        check_int(self.seed, "seed")
        for name in ("sigma", "lr"):
            if check_number(getattr(self, name), name, min=0.0) == 0:
                raise ValueError(f"{name} must be positive, got 0")
        if not self.test_sigmas:
            raise ValueError("test_sigmas must name at least one noise level")
        for s in self.test_sigmas:
            check_number(s, "test_sigmas", min=0.0)


class ImageDenoiser(nn.Module):
    """A UNet preset as an image-to-image map: ``D(z [B, 1, H, W]) = unet(z, t = 0)``."""

    def __init__(self, preset: str = "tiny", image_size: int = 28):
        super().__init__()
        from image_track.models import build_model

        self.unet = build_model(preset, image_size=image_size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.unet(z, torch.zeros(z.shape[0], dtype=torch.long, device=z.device))


@dataclass
class DenoiserResult:
    losses: np.ndarray  # [iterations] training loss per batch
    iters_per_epoch: int
    snapshots: dict[int, np.ndarray]  # epoch -> [3, n, H, W]: clean, noisy (σ), denoised
    test_sigmas: np.ndarray  # [S]
    ood: np.ndarray  # [S, 2, n, H, W]: noisy, denoised
    ood_mse: np.ndarray  # [S] test MSE of D(z) against x at each σ
    config: dict = field(default_factory=dict)


def _noisy(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    return x + sigma * torch.randn(x.shape, generator=g)  # z = x + σε


def train_denoiser(cfg: DenoiserConfig, train: torch.Tensor, show_x: torch.Tensor, *,
                   progress: bool = True) -> tuple[ImageDenoiser, list[float], dict[int, np.ndarray]]:
    """Adam on E‖D(x + σε) − x‖²; returns the net, per-batch losses and snapshots after epochs 1 and last."""
    torch.manual_seed(cfg.seed)  # parameter initialisation
    net = ImageDenoiser(cfg.preset, image_size=train.shape[-1])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    show_z = _noisy(show_x, cfg.sigma, torch.Generator().manual_seed(cfg.seed + 1))
    losses, snaps = [], {}
    bar = tqdm(total=cfg.epochs * -(-len(train) // cfg.batch_size), desc="denoiser", disable=not progress,
               leave=False)
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        for idx in torch.randperm(len(train), generator=g).split(cfg.batch_size):
            x = train[idx]
            loss = (net(_noisy(x, cfg.sigma, g)) - x).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.4f}")
        if epoch in (1, cfg.epochs):
            net.eval()
            with torch.no_grad():
                snaps[epoch] = to_numpy(torch.stack([show_x, show_z, net(show_z)])[:, :, 0])
    bar.close()
    return net.eval(), losses, snaps


def denoiser(config: DenoiserConfig | None = None, *, data: tuple[torch.Tensor, torch.Tensor] | None = None,
             out=None, save=None, progress: bool = True) -> DenoiserResult:
    """Train the single-step denoiser, test it over ``config.test_sigmas``; plot to ``out``, save to ``save``.

    Args:
        config: :class:`DenoiserConfig` (defaults: ``tiny`` preset, σ = 0.5, 5 epochs of 2048 images).
        data: ``(train images, test images)`` ``[N, 1, H, W]`` in [-1, 1]; default MNIST train / test.
        save: write the trained net with :func:`toydiff.training.checkpoint.save_checkpoint`.
    """
    cfg = config or DenoiserConfig()
    if data is None:
        from image_track.data import load_mnist

        train, test = load_mnist("train")[0], load_mnist("test")[0]
    else:
        train, test = data
    g = torch.Generator().manual_seed(cfg.seed)
    train = train[torch.randperm(len(train), generator=g)[: cfg.subset]]
    show_x = test[: cfg.n_show]
    net, losses, snaps = train_denoiser(cfg, train, show_x, progress=progress)

    sig = [float(s) for s in cfg.test_sigmas]
    eps = torch.randn(show_x.shape, generator=torch.Generator().manual_seed(cfg.seed + 2))  # same ε at every σ
    eval_x = test[:256]
    eval_eps = torch.randn(eval_x.shape, generator=torch.Generator().manual_seed(cfg.seed + 3))
    ood, mse = [], []
    with torch.no_grad():
        for s in sig:
            z = show_x + s * eps
            ood.append(torch.stack([z, net(z)])[:, :, 0])
            mse.append(float((net(eval_x + s * eval_eps) - eval_x).pow(2).mean()))
    res = DenoiserResult(losses=np.array(losses), iters_per_epoch=-(-len(train) // cfg.batch_size), snapshots=snaps,
                         test_sigmas=np.array(sig), ood=to_numpy(torch.stack(ood)), ood_mse=np.array(mse),
                         config=asdict(cfg))
    if save is not None:
        from toydiff.training.checkpoint import save_checkpoint

        save_checkpoint(save, {f"unet.{k}": v for k, v in net.unet.state_dict().items()},
                        {"kind": "image_track.lab.denoiser", "config": asdict(cfg), "unet_config": net.unet.config})
    return finish(res, plot_denoiser, out)


def plot_denoiser(res: DenoiserResult):
    """Loss curve; clean / noisy / denoised after the first and last epoch; the σ sweep."""
    cfg = res.config
    S, n = res.ood.shape[0], res.ood.shape[2]
    fig = new_figure(max(11.0, 1.25 * S + 1.5), 10.5)
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=[1.0, 1.15, 1.25])
    ax = top.subplots()
    it = np.arange(1, len(res.losses) + 1)
    ax.plot(it, res.losses, lw=0.8, alpha=0.5, label="per batch")
    k = max(1, min(20, len(res.losses) // 10))
    if len(res.losses) >= k > 1:
        ax.plot(it[k - 1:], np.convolve(res.losses, np.ones(k) / k, "valid"), lw=1.8, label=f"mean of {k}")
    for e in range(1, len(res.losses) // max(res.iters_per_epoch, 1) + 1):
        ax.axvline(e * res.iters_per_epoch, color="gray", lw=0.5, ls=":")
    ax.set_yscale("log")
    ax.set(xlabel="iteration (dotted: epoch ends)", ylabel="L2 loss  ‖D(z) − x‖²",
           title=f"Training the single-step denoiser: z = x + σε, σ = {cfg.get('sigma')}, preset "
                 f"{cfg.get('preset')!r}, {cfg.get('subset')} images, batch {cfg.get('batch_size')}, lr {cfg.get('lr')}")
    ax.legend(fontsize=8)

    epochs = sorted(res.snapshots)
    cols = middle.subfigures(1, len(epochs), squeeze=False)[0]
    for sf, e in zip(cols, epochs):
        axs = sf.subplots(3, n, squeeze=False)
        for r, name in enumerate(("clean x", f"noisy z (σ={cfg.get('sigma')})", "denoised D(z)")):
            for c in range(n):
                show(axs[r, c], res.snapshots[e][r, c])
            axs[r, 0].set_ylabel(name, fontsize=8)
        sf.suptitle(f"test digits after epoch {e}", fontsize=10)

    axs = bottom.subplots(2, S, squeeze=False)
    for c, s in enumerate(res.test_sigmas):
        show(axs[0, c], res.ood[c, 0, 0], f"σ = {s:g}", fontsize=9)
        show(axs[1, c], res.ood[c, 1, 0], f"test MSE {res.ood_mse[c]:.3f}", fontsize=8)
    axs[0, 0].set_ylabel("noisy z", fontsize=9)
    axs[1, 0].set_ylabel("D(z)", fontsize=9)
    bottom.suptitle(f"out of distribution: trained at σ = {cfg.get('sigma')}, tested at other σ", fontsize=10)
    return fig
