"""Checkpoints: safetensors weights plus JSON metadata, written atomically.

A checkpoint is one ``.safetensors`` file. Tensors are stored by name; the metadata (config, schedule,
normalisation, step, RNG states, anything JSON-serialisable) is stored as one JSON string in the
safetensors header under the key ``"toydiff"``, so weights and metadata can never get out of step.

Writes go to a temporary file in the same folder, are flushed and fsynced, then renamed over the
target (``os.replace`` is atomic on POSIX), so a crash mid-write leaves the previous checkpoint intact; the
temporary files such a crash leaves are removed by the next write to that folder.

Trust on load: the header also holds a SHA-256 of the tensors (names, dtypes, shapes and bytes) and of the
metadata's JSON under ``"toydiff.sha256"``, checked on every load (files written before it existed have none and are accepted);
NaN or infinite weights are refused; :func:`require_kind` says what a file is when it is not what a command
needs. :func:`run_lock` keeps a second writer out of a run folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

try:  # POSIX advisory locks; elsewhere the run lock and the in-use test of temporary files are skipped
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

import torch
from torch import nn
from safetensors import SafetensorError
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from toydiff.outputs import atomic_write_bytes, clean_stale_temporaries  # noqa: F401 - re-exported

__all__ = [
    "CheckpointError",
    "register_kind",
    "save_checkpoint",
    "load_checkpoint",
    "load_checkpoint_bytes",
    "atomic_write_bytes",
    "rng_state",
    "set_rng_state",
    "split_state",
    "join_state",
    "checkpoint_kind",
    "load_weights",
    "content_hash",
    "require_kind",
    "describe_kind",
    "run_lock",
    "RunLockedError",
]

_META_KEY = "toydiff"
_HASH_KEY = "toydiff.sha256"
_LOCK_NAME = ".toydiff.lock"

#: what each kind tag is, for messages ("this is a toy-track checkpoint; ... needs ..."); the layers above the
#: core add theirs with :func:`register_kind`
KIND_NAMES = {
    "toydiff.toy": "a toy-track checkpoint (toydiff toy train)",
    "toydiff.train": "a toydiff training-engine checkpoint",
}


def register_kind(kind: str, description: str) -> None:
    """Name a checkpoint kind tag for messages (``describe_kind``); a track registers the kinds it writes."""
    KIND_NAMES[kind] = description


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, not a toydiff checkpoint, or does not fit the model."""


class RunLockedError(CheckpointError):
    """Another process holds the run folder's lock (it is training into it)."""


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Save named tensors and JSON-serialisable ``metadata`` to ``path`` atomically.

    Args:
        path: target file (conventionally ``*.safetensors``); parent folders are created.
        tensors: name -> tensor; tensors are moved to CPU and made contiguous.
        metadata: any JSON-serialisable dict (raises ``TypeError`` naming the bad value otherwise).
    """
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise TypeError("tensors must be a dict of name -> torch.Tensor")
    try:
        meta_json = json.dumps(metadata)
    except TypeError as e:
        raise TypeError(f"metadata must be JSON-serialisable: {e}") from None
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    data = _st_save(flat, metadata={_META_KEY: meta_json, _HASH_KEY: content_hash(flat, meta_json)})
    return atomic_write_bytes(path, data)


def content_hash(tensors: dict[str, torch.Tensor], metadata_json: str | None = None) -> str:
    """SHA-256 (hex) over every tensor's name, dtype, shape and bytes, in name order, then the metadata's JSON text
    (so a hand-edited schedule or config is caught too)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{str(t.dtype).removeprefix('torch.')}|{list(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    if metadata_json is not None:
        h.update(b"|metadata|" + metadata_json.encode())
    return h.hexdigest()


def load_checkpoint(path: str | os.PathLike, *, allow_non_finite: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(tensors, metadata)`` written by :func:`save_checkpoint`, verified (see :func:`load_checkpoint_bytes`).

    Raises:
        CheckpointError: the file is missing, unreadable, truncated/corrupt, altered since it was written (its
            content hash differs), holds NaN/inf values (unless ``allow_non_finite``), or has no toydiff metadata
            (or metadata that is not a JSON object); the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    return load_checkpoint_bytes(data, name=str(path), allow_non_finite=allow_non_finite)


def load_checkpoint_bytes(data: bytes, name: str = "<bytes>", *,
                          allow_non_finite: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Like :func:`load_checkpoint` for the bytes of a checkpoint (an uploaded file, say).

    The tensors' SHA-256 is checked against the header's ``"toydiff.sha256"`` when there is one (older files
    have none); every floating-point tensor must be finite unless ``allow_non_finite``.
    """
    try:
        tensors = _st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError) as e:
        raise CheckpointError(f"{name} is not a valid checkpoint (truncated or corrupt): {e}") from None
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    meta = meta if isinstance(meta, dict) else {}
    if _META_KEY not in meta:
        raise CheckpointError(f"{name} is a safetensors file but not a toydiff checkpoint (no '{_META_KEY}' metadata)")
    try:
        parsed = json.loads(meta[_META_KEY])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{name}: its '{_META_KEY}' metadata is not valid JSON ({e})") from None
    if not isinstance(parsed, dict):
        raise CheckpointError(f"{name}: its '{_META_KEY}' metadata must be a JSON object, got {type(parsed).__name__}")
    if _HASH_KEY in meta and content_hash(tensors, meta[_META_KEY]) != meta[_HASH_KEY]:
        raise CheckpointError(f"{name} is corrupt: its tensors or metadata do not match the content hash written "
                              "with them (the file was altered or damaged after it was saved)")
    if not allow_non_finite:
        for key, t in tensors.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                bad = int((~torch.isfinite(t)).sum())
                raise CheckpointError(f"{name}: tensor {key!r} holds {bad} NaN or infinite value(s); refusing "
                                      "non-finite weights (the run that wrote it diverged)")
    return tensors, parsed


def rng_state(generator: torch.Generator | None = None) -> list[int]:
    """The state of ``generator`` (or torch's global CPU RNG) as a JSON-friendly list of bytes."""
    state = generator.get_state() if generator is not None else torch.get_rng_state()
    return state.tolist()


def set_rng_state(state: list[int], generator: torch.Generator | None = None) -> None:
    """Restore a state captured by :func:`rng_state`."""
    t = torch.tensor(state, dtype=torch.uint8)
    if generator is not None:
        generator.set_state(t)
    else:
        torch.set_rng_state(t)


def split_state(obj: Any, prefix: str) -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state (e.g. ``optimizer.state_dict()``) into tensors and a JSON-friendly skeleton.

    Tensors go to the returned dict under ``prefix.<path>`` and are replaced in the skeleton by
    ``{"__tensor__": key}``; dicts become ``{"__dict__": [[key, value], ...]}`` so integer keys survive JSON.
    :func:`join_state` inverts it.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(o: Any, path: str) -> Any:
        if isinstance(o, torch.Tensor):
            tensors[path] = o
            return {"__tensor__": path}
        if isinstance(o, dict):
            return {"__dict__": [[k, walk(v, f"{path}.{k}")] for k, v in o.items()]}
        if isinstance(o, (list, tuple)):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(o)]
        return o

    return tensors, walk(obj, prefix)


def join_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Rebuild what :func:`split_state` split."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            key = skeleton["__tensor__"]
            if key not in tensors:
                raise CheckpointError(f"checkpoint is missing tensor {key!r}")
            return tensors[key]
        if "__dict__" in skeleton:
            return {k: join_state(v, tensors) for k, v in skeleton["__dict__"]}
        return {k: join_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [join_state(v, tensors) for v in skeleton]
    return skeleton


def checkpoint_kind(meta: dict[str, Any]) -> str | None:
    """The kind tag of a checkpoint's metadata: ``meta["kind"]`` (files written before the training engine
    was shared tagged some checkpoints with ``"format"`` instead; both are read)."""
    return meta.get("kind", meta.get("format"))


def describe_kind(kind: str | None) -> str:
    """What a kind tag means, for messages: ``"a toy-track checkpoint (toydiff toy train)"``."""
    if kind is None:
        return "a toydiff checkpoint without a kind tag"
    return KIND_NAMES.get(kind, f"a checkpoint of kind {kind!r}")


def require_kind(meta: dict[str, Any], accepted: tuple[str, ...], source: str | os.PathLike, needed: str) -> str:
    """``meta``'s kind if it is one of ``accepted``; else a CheckpointError saying what the file is and what was
    needed, e.g. ``"x.safetensors is a toy-track checkpoint (toydiff toy train); mnist sample needs an
    image_track checkpoint"``."""
    kind = checkpoint_kind(meta)
    if kind not in accepted:
        raise CheckpointError(f"{source} is {describe_kind(kind)}; {needed}")
    return kind


_HELD: dict[Path, list] = {}


@contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on the run folder ``folder`` (created if needed) while the block runs.

    The lock is ``fcntl.flock`` on ``folder/.toydiff.lock``: the operating system releases it when the holder
    exits or is killed, so a stale lock cannot outlive its run. It is re-entrant within a process.

    Raises:
        RunLockedError: another process holds it (it is writing this run now).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _HELD or fcntl is None:
        if key in _HELD:
            _HELD[key][1] += 1
        try:
            yield folder
        finally:
            if key in _HELD:
                _HELD[key][1] -= 1
        return
    f = open(folder / _LOCK_NAME, "a+b")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise RunLockedError(f"another process is writing to the run folder {folder} (it holds "
                             f"{folder / _LOCK_NAME}); wait for it to finish or choose another output folder") from None
    _HELD[key] = [f, 1]
    try:
        yield folder
    finally:
        _HELD[key][1] -= 1
        if _HELD[key][1] == 0:
            del _HELD[key]
            f.close()


def load_weights(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str = "", *,
                 source: str | os.PathLike = "checkpoint", what: str = "the model") -> nn.Module:
    """Load the tensors named ``prefix + <parameter name>`` into ``module`` (cast to its dtypes) and return it.

    Raises:
        CheckpointError: no tensor has the prefix, or the names or shapes do not fit the module; the
            message names ``source`` and ``what``.
    """
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(f"{source} holds no {prefix[:-1] or 'model'!r} weights")
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source} does not fit {what}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise CheckpointError(f"{source} does not fit {what}: {k} has shape {tuple(v.shape)}, "
                                  f"{what} needs {tuple(expected[k].shape)}")
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    return module
