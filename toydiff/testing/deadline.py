"""The per-run time limit's clock: :class:`Deadline` and the private exception that ends an over-time run.

The kit's denoisers (:class:`toydiff.testing.oracle.Recorder`) call :meth:`Deadline.check` on every call; the
guarded run of :mod:`toydiff.testing.runner` adds a SIGALRM fallback for time spent between calls.
"""

from __future__ import annotations

import time

__all__ = ["Deadline"]


class _Timeout(BaseException):
    """A sampler run went over its time limit. A ``BaseException`` so that a sampler's ``except Exception``
    does not swallow it; only the kit's runner catches it."""


class Deadline:
    """``limit`` seconds from now (None: never); :meth:`check` raises :class:`_Timeout` once they have passed."""

    def __init__(self, limit: float | None):
        self.limit = limit
        self.start = time.monotonic()

    @property
    def message(self) -> str:
        return f"timeout after {self.limit:g} s"

    def remaining(self) -> float:
        return float("inf") if self.limit is None else self.limit - (time.monotonic() - self.start)

    def check(self) -> None:
        if self.limit is not None and self.remaining() <= 0:
            raise _Timeout(self.message)
