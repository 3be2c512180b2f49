"""The one training engine both tracks use: objectives and losses, EMA, learning rate, hooks, batches and
atomic checkpoints."""

from toydiff.training.engine import (Batches, History, TensorBatches, TrainConfig, Trainer, held_out_loss,
                                     load_weights, make_objective)

__all__ = ["TrainConfig", "History", "Batches", "TensorBatches", "Trainer", "held_out_loss", "load_weights",
           "make_objective"]
