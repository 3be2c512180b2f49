"""``toydiff mnist train`` and ``python -m image_track.training`` (what ``torchrun`` launches): the same flags,
generated from :class:`~image_track.training.config.TrainConfig`'s fields."""

from __future__ import annotations

from typing import Sequence

from image_track.training.config import add_config_arguments, config_from_args
from image_track.training.loop import dist_info, train

__all__ = ["add_train_arguments", "config_from_args", "run_from_args", "main"]


def add_train_arguments(p) -> None:
    """The ``toydiff mnist train`` options: one per config field (see :func:`add_config_arguments`)."""
    add_config_arguments(p)


def run_from_args(a) -> int:
    """Train with the parsed flags; process 0 prints one summary line. A diverged run raises
    :class:`toydiff.training.hooks.NonFiniteLossError` (exit status 3 through :func:`toydiff.cli.run_guarded`)."""
    from image_track.data import DatasetUnavailableError

    try:
        history = train(config_from_args(a), overwrite=getattr(a, "overwrite", False))
    except DatasetUnavailableError as e:  # the library's advice names its parameter; a user needs the flag
        raise DatasetUnavailableError(str(e).replace("data_dir=", "--data-dir ")) from None
    if dist_info()[0] == 0:
        last = history.epochs[-1] if history.epochs else {}
        print(f"{history.stopped}: {history.step} steps, {history.train_seconds / 60:.1f} min, "
              f"{history.images_per_s:.0f} img/s, train loss {last.get('train_loss', float('nan')):.4f}"
              + (f", val loss {last['val_loss']:.4f}" if "val_loss" in last else "")
              + (f"; checkpoint {history.checkpoint}" if history.checkpoint else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m image_track.training ...``; same options as ``toydiff mnist train``."""
    from toydiff.cli import OneLineParser, run_guarded

    p = OneLineParser(prog="image_track.training", description="Train a UNet preset on MNIST.")
    add_train_arguments(p)
    return run_guarded(lambda: run_from_args(p.parse_args(argv)), "image_track.training")
