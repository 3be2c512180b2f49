"""Atomic outputs: every file a command writes appears whole or not at all, and a report folder at once.

A file is written to a temporary ``.<name>.<random>.tmp`` beside it (same folder, so the same file system),
flushed, fsynced and renamed over the target with :func:`os.replace` (atomic on POSIX): a crash, a Ctrl-C or
a full disk leaves the previous file intact, never a truncated one, and the next write to the folder removes
the temporary files such a failure left (:func:`clean_stale_temporaries`; a writer holds an ``flock`` on its
temporary file, so a live one is spared). A path written before is simply rewritten.

A report folder (figures + json) is built in a temporary hidden folder and published at the end
(:func:`staged_folder`): renamed into place when ``out`` does not exist yet, else its files are moved in one
by one, each with :func:`os.replace` (files of ``out`` the command does not write are left alone). A command
that fails midway leaves ``out`` as it was.

    with atomic_file("x.npy") as f: np.save(f, x)
    save_figure(fig, "loss.png", dpi=110)
    with staged_folder("report/") as tmp: save_figure(fig, tmp / "samples.png"); ...
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_UMASK = os.umask(0o022)  # read once, at import (os.umask can only be read by setting it)
os.umask(_UMASK)

__all__ = ["atomic_file", "atomic_write_bytes", "atomic_write_text", "save_npy", "save_figure", "save_image",
           "staged_folder", "clean_stale_temporaries"]


def _in_use(path: Path) -> bool:
    """Whether a live writer holds ``path`` (it keeps an exclusive lock on its temporary file while writing)."""
    if fcntl is None:
        return True
    try:
        with open(path, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def clean_stale_temporaries(folder: str | os.PathLike, min_age_s: float = 2.0) -> list[Path]:
    """Remove the ``.<name>.*.tmp`` files interrupted writes left in ``folder`` (none a live writer holds, none
    younger than ``min_age_s``, so a writer between creating and locking its file is spared). Returns them."""
    removed = []
    now = time.time()
    for p in Path(folder).glob(".*.tmp"):
        try:
            if p.is_file() and now - p.stat().st_mtime >= min_age_s and not _in_use(p):
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file object whose content replaces ``path`` atomically when the block ends without error
    (temporary file in the same folder, fsync, :func:`os.replace`); on an error ``path`` is untouched and the
    temporary file removed. Creates the parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_EX)  # released when closed: marks the file as being written
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a plain open() would honour the umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_file`); returns ``path``."""
    with atomic_file(path) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def save_npy(path: str | os.PathLike, array: Any) -> Path:
    """``np.save`` of ``array`` (numpy, or a tensor: ``.numpy()``) to ``path`` atomically (``path`` as given: no
    ``.npy`` is appended)."""
    import numpy as np

    with atomic_file(path) as f:
        np.save(f, array.numpy() if hasattr(array, "numpy") else np.asarray(array))
    return Path(path)


def save_figure(fig, path: str | os.PathLike, **savefig_kw) -> Path:
    """``fig.savefig`` (matplotlib) to ``path`` atomically, in the format its suffix names (``.png``, ``.pdf`` ...)."""
    path = Path(path)
    savefig_kw.setdefault("format", path.suffix.lstrip(".").lower() or "png")
    with atomic_file(path) as f:
        fig.savefig(f, **savefig_kw)
    return path


def save_image(image, path: str | os.PathLike, **save_kw) -> Path:
    """A PIL image's ``save`` to ``path`` atomically, in the format its suffix names."""
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"path {path}: unknown image suffix {path.suffix!r}")
    with atomic_file(path) as f:
        image.save(f, format=fmt, **save_kw)
    return path


@contextmanager
def staged_folder(out: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``out`` (inside it, if it exists) to write a report into; published as ``out`` when the block ends
    without error (renamed, or its files moved into an existing ``out`` one :func:`os.replace` each), removed
    on an error, leaving ``out`` as it was. Files of an existing ``out`` the block does not write stay."""
    out = Path(out)
    home = out if out.is_dir() else out.parent  # inside an existing out: writable where out is
    home.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=home, prefix=f".{out.name}.", suffix=".tmpdir"))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; the published folder gets a plain mkdir's mode
    try:
        yield tmp
        if not out.exists():
            try:
                os.rename(tmp, out)  # atomic; fails if another writer created out meanwhile
                return
            except OSError:
                if not out.is_dir():
                    raise
        _move_into(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into(src: Path, dst: Path) -> None:
    """Move the tree ``src`` into the folder ``dst``, file by file with :func:`os.replace`."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in sorted(src.iterdir()):
        target = dst / p.name
        if p.is_dir() and not p.is_symlink():
            if target.exists() and not target.is_dir():
                raise NotADirectoryError(f"{target} is a file, not a folder")
            _move_into(p, target)
        else:
            if target.is_dir():
                raise IsADirectoryError(f"{target} is a folder, not a file")
            os.replace(p, target)
