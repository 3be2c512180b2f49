"""One guarded sampler run: the kit's only way to call a sampler, with a per-run time limit.

A sampler under test may raise, return NaN or the wrong shape, or never return; each is a finding, reported as a
failed row, never a crash or a hang of the kit. :class:`Runner` turns every run into an :class:`Attempt`: the run,
or the reason it failed.

**The time limit** (``timeout`` seconds per run; ``None``: none). No thread is started, and nothing is left running:

1. the sampler runs in the calling thread; the exact denoisers the kit hands it (:class:`~toydiff.testing.oracle.
   Recorder`) check the clock on every call and raise the private :class:`_Timeout` once the run is over its
   limit — a sampler that loops over the denoiser stops at its next call;
2. the hard fallback, for a sampler that sleeps or spins between denoiser calls: on POSIX in the main thread a
   real-time interval timer (``signal.setitimer(ITIMER_REAL)``, SIGALRM) raises the same exception when the limit
   passes; the previous SIGALRM handler and timer are restored afterwards (a timer of the caller's keeps its
   remaining time);
3. a run that returns after its limit (it swallowed the exception) is still a timeout.

``_Timeout`` derives from ``BaseException`` so that a sampler's own ``except Exception`` does not swallow it.
Not covered: a sampler blocked inside one long C call (a huge torch op) is stopped only when the call returns;
off the main thread (a web app's worker) or on Windows only step 1 and 3 apply.

After a timeout, the :class:`Runner` runs that sampler no more: every later attempt is ``skipped`` (one hanging
sampler costs one time limit, not one per step count).
"""

from __future__ import annotations

import math
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from toydiff.testing.deadline import Deadline, _Timeout
from toydiff.testing.oracle import OracleCallError, Problem
from toydiff.testing.protocol import KitSampler, Run

__all__ = ["Attempt", "Runner", "DEFAULT_TIMEOUT", "check_output", "check_timeout"]

#: seconds one sampler run may take before it is a failure ("timeout after 60 s")
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Attempt:
    """One run's outcome: ``run`` (None if it failed), ``error`` (why, else None), ``skipped`` (not run: an
    earlier run timed out), ``bad`` (the timesteps outside ``[0, T - 1]`` the sampler asked about), ``calls``
    (every model call's ``(t or None, σ)``, as the recorder logged it), ``raised`` (the exception class the
    sampler raised, None if it raised none) and ``in_model`` (it was raised inside the kit's model call: the
    sampler handed the model something it refuses, such as NaN — not a refusal of the sampler's own)."""

    run: Run | None
    error: str | None = None
    skipped: bool = False
    bad: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    raised: type | None = None
    in_model: bool = False


def _raised_in_model(error: BaseException) -> bool:
    """Whether ``error`` came out of the kit's own model call (the sampler fed it NaN, say), not the sampler."""
    return any(f.filename.replace("\\", "/").endswith("toydiff/testing/oracle.py")
               for f in traceback.extract_tb(error.__traceback__))


def check_output(x0, x_T: torch.Tensor) -> str | None:
    """Why ``x0`` is not a usable result for a run from ``x_T [B, *event]`` (None if it is)."""
    if not isinstance(x0, torch.Tensor) or tuple(x0.shape) != tuple(x_T.shape):
        return f"x_0 is {getattr(x0, 'shape', type(x0).__name__)}, not a tensor of shape {tuple(x_T.shape)}"
    if not bool(torch.isfinite(x0).all()):
        return "x_0 is not finite (NaN or inf)"
    return None


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def _alarm(deadline: Deadline):
    """Raise :class:`_Timeout` by SIGALRM when ``deadline`` passes (main thread, POSIX); restore the previous
    handler and timer on the way out."""
    if deadline.limit is None or not _can_alarm():
        yield
        return

    def fire(signum, frame):
        raise _Timeout(deadline.message)

    old_handler = signal.signal(signal.SIGALRM, fire)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, max(deadline.remaining(), 1e-4))
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay > 0:  # the caller's own timer resumes with what it had left (at once if it expired meanwhile)
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (time.monotonic() - start), 1e-6), old_interval)


@dataclass
class Runner:
    """Runs ``sampler`` under the time limit ``timeout`` (seconds per run, None: none); ``timed_out`` holds the
    first timeout's message (``"steps=12: timeout after 60 s"``) once one happened."""

    sampler: KitSampler
    timeout: float | None = DEFAULT_TIMEOUT
    timed_out: str | None = None

    def attempt(self, problem: Problem, x_T: torch.Tensor, steps: int, seed: int, *, cheap: bool = False) -> Attempt:
        """Run the sampler on ``problem`` from ``x_T [B, *event]`` at ``steps`` with generator ``seed``."""
        if self.timed_out is not None:
            return Attempt(None, f"steps={steps}: not run (an earlier run timed out)", skipped=True)
        deadline = Deadline(self.timeout)
        rec = problem.with_batch(x_T).recorder(cheap=cheap, deadline=deadline)
        try:
            with _alarm(deadline):
                run = self.sampler.run(rec, x_T, steps, torch.Generator().manual_seed(seed))
            deadline.check()  # a sampler that swallowed the exception and finished late
        except _Timeout as e:
            self.timed_out = f"steps={steps}: {e}"
            return Attempt(None, self.timed_out, bad=rec.bad, calls=rec.calls)
        except OracleCallError as e:
            return Attempt(None, f"steps={steps}: {e}", bad=rec.bad, calls=rec.calls, raised=type(e))
        except Exception as e:  # noqa: BLE001 - a sampler's own failure is a finding, not a crash of the kit
            return Attempt(None, f"steps={steps}: {type(e).__name__}: {' '.join(str(e).split())[:200]}", bad=rec.bad,
                           calls=rec.calls, raised=type(e), in_model=_raised_in_model(e))
        why = check_output(run.x0, x_T)
        if why:
            return Attempt(None, f"steps={steps}: {why}", bad=rec.bad, calls=rec.calls)
        return Attempt(run, bad=rec.bad, calls=rec.calls)


def check_timeout(timeout) -> float | None:
    """``timeout`` as positive seconds, or None (no limit); a ValueError/TypeError naming it otherwise."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, got {type(timeout).__name__} {timeout!r}")
    if math.isnan(timeout) or not timeout > 0:
        raise ValueError(f"timeout must be positive seconds (or None for no limit), got {timeout!r}")
    return None if math.isinf(timeout) else float(timeout)
