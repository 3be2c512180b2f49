"""Training UNet presets on MNIST with the shared engine (:class:`toydiff.training.Trainer`).

    from image_track.training import TrainConfig, train
    history = train(TrainConfig(preset="tiny", num_classes=10, max_steps=3000, out_dir="runs/tiny"))

* :mod:`.config`: what a user sets (:class:`TrainConfig`, one flag per field) and what a run records
  (:class:`History`);
* :mod:`.loop`: setting a run up (processes, device, data, network, DDP, bf16 / channels_last) for the engine;
* :mod:`.hooks`: the image pieces (batches, run record, sample grids, EMA snapshots, time budget);
* :mod:`.export`: the EMA-only weights file to ship;
* :mod:`.cli`: ``toydiff mnist train`` / ``python -m image_track.training``.

One loop serves a laptop CPU and a multi-GPU node: AdamW, linear warm-up then cosine (or exponential)
decay, gradient clipping, an EMA with warm-up (what is sampled from, validated and saved for use); label
dropout ``p_uncond`` for classifier-free guidance (Ho & Salimans 2022); bf16 autocast on CUDA and on CPUs
with AMX, TF32 on CUDA, channels_last; optional ``torch.compile`` and Min-SNR-γ weights (Hang et al. 2023);
DistributedDataParallel under ``torchrun`` (NCCL on GPUs, gloo on CPU; process 0 logs, validates, samples
and checkpoints); every draw from generators seeded by ``config.seed`` whose states the checkpoint holds, so
``resume=`` reproduces an uninterrupted run bit for bit (same device and world size); ``minutes=`` stops
cleanly at a time budget and checkpoints.
"""

from image_track.training.cli import add_train_arguments, config_from_args, main, run_from_args
from image_track.training.config import LR_DECAYS, SCHEDULES, History, TrainConfig
from image_track.training.export import export_weights, snapshot_path
from image_track.training.loop import bf16_autocast, train

__all__ = ["TrainConfig", "History", "train", "bf16_autocast", "export_weights", "snapshot_path", "SCHEDULES",
           "LR_DECAYS", "add_train_arguments", "config_from_args", "run_from_args", "main"]
