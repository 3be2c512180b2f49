"""The process protocol: everything a caller would otherwise ask "which process is this?" about.

    proc = process_from_dict(meta)                    # "vp" (a NoiseSchedule) or "flow" (an Interpolant)
    fn = proc.network_fn(model)                       # the network in the process's own time
    x0 = proc.sample(fn, x_T [B, *event], method=None, steps=None, generator=g)   # its default sampler
    obj = proc.objective(t_sampling="uniform")        # the training objective (toydiff.training)

A process is a frozen description (no weights, no data): :class:`VPProcess` (DDPM over a discrete
:class:`~toydiff.processes.schedules.NoiseSchedule`, Ho et al. 2020) and :class:`InterpolantProcess` (a network
of one prediction type over a continuous Gaussian :class:`~toydiff.processes.interpolants.Interpolant`, flow
matching, Lipman et al. 2023). Adding a process is a module implementing :class:`Process` and one line in
:data:`toydiff.processes.registry.PROCESSES`.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import torch

Fn = Callable[..., torch.Tensor]

__all__ = ["Process", "Fn", "CheckpointMismatch", "process_of"]


class CheckpointMismatch(ValueError):
    """A resumed checkpoint was trained with another objective (the engine re-raises it as a CheckpointError)."""


def process_of(meta: dict) -> str:
    """The process name a checkpoint's metadata records: ``"flow"``, or ``"vp"`` (also files written before flows)."""
    return meta.get("process", "vp")


@runtime_checkable
class Process(Protocol):
    """What depends on the process, in one object.

    Attributes:
        name: the registry key (``--process`` on the CLIs).
        prediction: what the network predicts (``"eps"`` for VP; ``"velocity"``, ``"eps"``, ``"x0"``, ``"v"``).
        methods: the sampling methods it offers (:mod:`toydiff.sampling`'s registry).
        default_method, default_steps: what :meth:`sample` uses when none is given (``None`` steps: every step).
        schedule: the discrete schedule, or ``None`` (continuous time).
        interp: the interpolant of its path (VP: :func:`~toydiff.processes.interpolants.vp` of the schedule).
    """

    name: ClassVar[str]
    prediction: str
    methods: tuple[str, ...]
    default_method: str
    default_steps: int | None

    def network_fn(self, model: Fn) -> Fn:
        """The network as the samplers call it, ``fn(x_t [B, *event], t [B]) -> prediction``, t in process time."""

    def exact_fn(self, mixture: Any) -> Fn:
        """The exact oracle's prediction of the same type (``mixture`` a :class:`~toydiff.GaussianMixture`)."""

    def sample(self, fn: Fn, x_T: torch.Tensor, *, method: str | None = None, steps: int | None = None,
               **options) -> torch.Tensor:
        """Run ``method`` (default :attr:`default_method`) from ``x_T`` to the clean end, ``[B, *event]``."""

    def nfe(self, method: str, steps: int) -> int:
        """Network evaluations of ``method`` over ``steps`` steps ending at the clean sample."""

    def to_x0(self, output: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        """x̂_0 from the network's ``output`` at ``x_t`` ``[B, *event]``, time ``t`` (process time, ``[B]``)."""

    def to_eps(self, output: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        """ε̂ from the network's ``output``."""

    def objective(self, **options) -> Any:
        """The training objective (:mod:`toydiff.processes`) with ``options`` (t sampling, target …)."""

    def to_dict(self) -> dict:
        """JSON metadata (a checkpoint's process keys); :func:`toydiff.processes.registry.process_from_dict` reads it."""
