"""Trajectories: a sampler callback that records x_t and x̂_0 for chosen samples at chosen steps.

Memory is bounded by what is asked for: ``len(indices) × len(steps)`` rows of each kept quantity
(plus the final sample), copied to the CPU as they arrive.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

from toydiff.bounds import check_size
from toydiff.checks import check_int

__all__ = ["TrajectoryRecorder", "chain_callbacks"]

_KEEPABLE = ("x_t", "x0_hat", "eps")


class TrajectoryRecorder:
    """Callback for :func:`toydiff.sample` keeping per-step tensors of a few samples.

    Args:
        indices: which samples of the batch to keep (``None``: all — only for small batches).
        steps: which sampler steps to keep, as step numbers ``0 .. n_steps-1`` (negative numbers count from
            the end); ``None`` keeps every step.
        keep: which of ``"x_t"``, ``"x0_hat"``, ``"eps"`` to keep.

    After sampling:
        ``timesteps`` — the diffusion step t of each kept row; ``x_t``, ``x0_hat`` (and ``eps``) —
        ``[S, n, *event]``; ``final`` — the sampler's output for the kept samples ``[n, *event]``;
        :meth:`path` — ``[S + 1, n, *event]``: the kept x_t followed by the final sample.

    Example:
        >>> rec = TrajectoryRecorder(indices=range(50))
        >>> x0 = td.sample(eps_fn, x_T, s, method="ddpm", callback=rec, generator=g)
        >>> rec.path().shape   # [T + 1, 50, 1]
    """

    def __init__(self, indices: Iterable[int] | None = None, steps: Iterable[int] | None = None,
                 keep: Sequence[str] = ("x_t", "x0_hat")):
        bad = [k for k in keep if k not in _KEEPABLE]
        if bad:
            raise ValueError(f"keep must name some of {_KEEPABLE}, got {bad}")
        self.indices = None if indices is None else _index_list(indices, "indices", "n", min=0)
        self._steps = None if steps is None else _index_list(steps, "steps", "frames").tolist()
        self.keep = tuple(keep)
        self.timesteps: list[int | float] = []
        self.steps: list[int] = []
        self._rows: dict[str, list[torch.Tensor]] = {k: [] for k in self.keep}
        self.final: torch.Tensor | None = None

    def _take(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        if self.indices is not None:
            if int(self.indices.max()) >= x.shape[0]:
                raise ValueError(f"indices: sample {int(self.indices.max())} was asked for but the batch has "
                                 f"{x.shape[0]} samples (indices must lie in [0, {x.shape[0] - 1}])")
            x = x[self.indices.to(x.device)]
        return x.to("cpu", copy=True)

    def _wanted(self, step: int, n_steps: int) -> bool:
        return self._steps is None or step in self._steps or step - n_steps in self._steps

    def __call__(self, info: dict) -> None:
        step, n_steps = info["step"], info["n_steps"]
        if self._wanted(step, n_steps):
            self.steps.append(step)
            t = info["t"]
            self.timesteps.append(t if isinstance(t, float) else int(t))  # float: a flow sampler's time in [0, 1]
            for k in self.keep:
                self._rows[k].append(self._take(info[k]))
        if step == n_steps - 1:
            self.final = self._take(info["x_prev"])

    def _stack(self, key: str) -> torch.Tensor:
        if key not in self.keep:
            raise KeyError(f"{key!r} was not kept (keep={self.keep})")
        if not self._rows[key]:
            raise RuntimeError("nothing recorded yet: pass the recorder as callback= to toydiff.sample")
        return torch.stack(self._rows[key])

    @property
    def x_t(self) -> torch.Tensor:
        return self._stack("x_t")

    @property
    def x0_hat(self) -> torch.Tensor:
        return self._stack("x0_hat")

    @property
    def eps(self) -> torch.Tensor:
        return self._stack("eps")

    def path(self) -> torch.Tensor:
        """``[S + 1, n, *event]``: each kept x_t, then the final sample."""
        if self.final is None:
            raise RuntimeError("sampling has not finished")
        return torch.cat([self.x_t, self.final[None]])


def _index_list(values, name: str, key: str, min: int | None = None) -> torch.Tensor:
    """``values`` (ints) as a LongTensor ``[n]``, n ≥ 1 within the ``key`` size bound; TypeError / ValueError naming
    ``name`` (a sized ``range(10**12)`` is refused before it is listed)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be an iterable of ints, got {type(values).__name__}")
    if hasattr(values, "__len__"):
        check_size(len(values), f"len({name})", key=key)
    out = [check_int(v, f"{name}[{i}]", min=min) for i, v in enumerate(values)]
    check_size(len(out), f"len({name})", key=key)
    return torch.tensor(out, dtype=torch.long)


def chain_callbacks(*callbacks: Callable[[dict], None] | None) -> Callable[[dict], None]:
    """One callback for :func:`toydiff.sample` that calls each given (non-None) callback in turn."""
    cbs = [c for c in callbacks if c is not None]

    def chained(info: dict) -> None:
        for c in cbs:
            c(info)

    return chained
