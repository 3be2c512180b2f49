"""``image_track.train``: the names of :mod:`image_track.training`, kept importable, and the module
``torchrun --nproc_per_node=N -m image_track.train ...`` launches (same flags as ``toydiff mnist train``)."""

from __future__ import annotations

import sys

from toydiff.training.ema import EMA
from toydiff.training.lr import lr_factor

from image_track.training import (LR_DECAYS, SCHEDULES, History, TrainConfig, add_train_arguments, bf16_autocast,
                       config_from_args, export_weights, main, run_from_args, snapshot_path, train)

__all__ = ["TrainConfig", "History", "train", "lr_factor", "EMA", "bf16_autocast", "export_weights", "snapshot_path",
           "SCHEDULES", "LR_DECAYS", "add_train_arguments", "config_from_args", "run_from_args", "main"]

if __name__ == "__main__":
    sys.exit(main())
