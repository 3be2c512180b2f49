"""One CPU thread policy for every entry point: the ``toydiff`` commands, the training API, the app, the benches.

Small models (the toy track's MLPs on ``[B, 1]`` / ``[B, 2]`` points, the CPU ``tiny`` UNet) run fastest with
**one** torch intra-op thread: their matrix products are too small to split, so a second thread mostly waits,
and on a busy machine two threads that wait on each other spin. Measured on this project's shared 2-core CPU
(``bench/threads.py``, ``docs/measurements.md`` "Threads"): ``toydiff toy train --epochs 3`` took 30 s wall /
5.5 s CPU with one thread and 261 s / 32 s with two (53 s / 5.6 s against 227 s / 35 s under the bench's busy
loops); the full default run 115 s / 38 s against 189 s / 150 s. The image track's training got no faster with
two threads either (20 steps of the ``tiny`` UNet: 5.6 s CPU at one thread, 17.6-27.4 s at two, never a lower
wall time), so it follows the same default; a large preset on a quiet many-core machine is the case to ask
for more (``--threads N``).

The policy: ``threads=None`` means the count the process's entry point configured (a command's
``--threads N``, the app's launch: :func:`configure_threads`), else the environment variable :data:`ENV_VAR`
(``TOYDIFF_THREADS``), else :data:`DEFAULT_THREADS` (1). A command applies it once at entry; an API call
(``train_toy``, ``image_track.training.train``) applies it for its duration and gives the caller's torch
setting back afterwards (:func:`thread_scope`).

    configure_threads(None)           # the policy: 1 (or $TOYDIFF_THREADS)
    with thread_scope(4): ...         # 4 threads inside, the caller's count after
    add_threads_flag(parser)          # --threads N, its help naming the default
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from toydiff.options import positive

__all__ = ["DEFAULT_THREADS", "ENV_VAR", "default_threads", "configure_threads", "thread_scope",
           "add_threads_flag", "threads_arg"]

#: torch intra-op threads when neither the caller nor $TOYDIFF_THREADS says otherwise
DEFAULT_THREADS = 1
#: the environment variable that overrides :data:`DEFAULT_THREADS`
ENV_VAR = "TOYDIFF_THREADS"
#: the count an entry point chose with configure_threads (None: not configured)
_configured: int | None = None


def _check(n, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int or None, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")
    return n


def default_threads() -> int:
    """The policy's count: the one :func:`configure_threads` set for this process, else ``$TOYDIFF_THREADS``
    (a positive integer), else :data:`DEFAULT_THREADS`."""
    if _configured is not None:
        return _configured
    text = os.environ.get(ENV_VAR)
    if text is None or not text.strip():
        return DEFAULT_THREADS
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a positive integer, got {text!r}") from None
    return _check(n, ENV_VAR)


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count to ``n`` (``None``: :func:`default_threads`) and make it the process's
    policy (what later ``threads=None`` calls use); an entry point calls it once. Returns the count."""
    global _configured
    n = default_threads() if n is None else _check(n, "threads")
    _configured = n
    _set(n)
    return n


def _set(n: int) -> None:
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextmanager
def thread_scope(n: int | None = None) -> Iterator[int]:
    """torch uses ``n`` threads (``None``: :func:`default_threads`) inside the block; the caller's count is
    restored after it (errors too). The process's policy is left as it was."""
    import torch

    before = torch.get_num_threads()
    n = default_threads() if n is None else _check(n, "threads")
    try:
        _set(n)
        yield n
    finally:
        _set(before)


threads_arg = positive(int)  # argparse type of --threads


def add_threads_flag(parser) -> None:
    """Add ``--threads N`` (dest ``threads``, default ``None``: the policy) to an argparse parser or group."""
    parser.add_argument("--threads", type=threads_arg, default=None, metavar="N",
                        help=f"torch CPU threads (default {DEFAULT_THREADS}, or ${ENV_VAR}: small models run fastest "
                             "single-threaded; see toydiff.threads)")
