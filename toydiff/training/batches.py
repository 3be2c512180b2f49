"""Where the training engine's batches come from: a track's data source (:class:`Batches`), and
:class:`TensorBatches`, shuffled batches of one tensor (the toy track's)."""

from __future__ import annotations

import math
from typing import Callable, Iterator, Protocol

import torch

from toydiff.checks import check_int

__all__ = ["Batches", "TensorBatches"]


class Batches(Protocol):
    """A track's data source: ``steps_per_epoch`` and, per epoch, the batches ``(x0 [B, *event], model_kwargs)``
    from batch ``start`` on, every random draw taken from ``generator``."""

    steps_per_epoch: int

    def epoch(self, epoch: int, start: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, dict]]: ...


class TensorBatches:
    """Shuffled batches of a tensor ``data [N, *event]``, a new permutation every epoch.

    ``fresh(n, generator) -> [n, *event]`` draws a new training set for every epoch after the first (for
    toy distributions one can sample without end: fresh points remove the training set's own sampling error,
    e.g. its mode weights being off by ~1/√N, which a model otherwise learns faithfully).
    """

    def __init__(self, data: torch.Tensor, batch_size: int,
                 fresh: Callable[[int, torch.Generator], torch.Tensor] | None = None):
        if not isinstance(data, torch.Tensor) or data.ndim < 2 or data.shape[0] < 1:
            raise ValueError(f"train_data must have shape [N, *event], got {tuple(getattr(data, 'shape', ()))}")
        self.data, self.batch_size, self.fresh = data, check_int(batch_size, "batch_size", min=1), fresh
        self.steps_per_epoch = math.ceil(data.shape[0] / batch_size)

    def epoch(self, epoch: int, start: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, dict]]:
        if start:
            raise ValueError("TensorBatches cannot resume in the middle of an epoch (checkpoint at epoch ends)")
        data = self.data
        if self.fresh is not None and epoch > 0:
            data = self.fresh(data.shape[0], generator).to(data)
            if data.shape != self.data.shape:
                raise ValueError(f"fresh_data returned shape {tuple(data.shape)}, expected {tuple(self.data.shape)}")
        for idx in torch.randperm(data.shape[0], generator=generator).split(self.batch_size):
            yield data[idx], {}
