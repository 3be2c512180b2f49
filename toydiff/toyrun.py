"""Former home of the toy-track run glue; it now lives in :mod:`toydiff.toy.run` and is re-exported here."""

from .toy.run import CHECKPOINT_NAME, ToyRun, default_schedule, load_toy, oracle_run, toy_trainer, train_toy

__all__ = ["ToyRun", "default_schedule", "toy_trainer", "train_toy", "load_toy", "oracle_run", "CHECKPOINT_NAME"]
