"""Checkpoints: safetensors weights plus JSON metadata, written atomically.

A checkpoint is one ``.safetensors`` file. Tensors are stored by name; the metadata (config, schedule,
normalisation, step, RNG states, anything JSON-serialisable) is stored as one JSON string in the
safetensors header under the key ``"toydiff"``, so weights and metadata can never get out of step.

Writes go to a temporary file in the same folder, are flushed and fsynced, then renamed over the
target (``os.replace`` is atomic on POSIX), so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from safetensors import SafetensorError
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

__all__ = [
    "CheckpointError",
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
]

_META_KEY = "toydiff"


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, not a toydiff checkpoint, or does not fit the model."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
    data = _st_save(flat, metadata={_META_KEY: meta_json})
    return atomic_write_bytes(path, data)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(tensors, metadata)`` written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is missing, truncated/corrupt, or has no toydiff metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return load_checkpoint_bytes(path.read_bytes(), name=str(path))


def load_checkpoint_bytes(data: bytes, name: str = "<bytes>") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Like :func:`load_checkpoint` for the bytes of a checkpoint (an uploaded file, say)."""
    try:
        tensors = _st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError) as e:
        raise CheckpointError(f"{name} is not a valid checkpoint (truncated or corrupt): {e}") from None
    meta = header.get("__metadata__", {}) or {}
    if _META_KEY not in meta:
        raise CheckpointError(f"{name} is a safetensors file but not a toydiff checkpoint (no '{_META_KEY}' metadata)")
    return tensors, json.loads(meta[_META_KEY])


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
    was shared tagged image_track checkpoints with ``"format"`` instead; both are read)."""
    return meta.get("kind", meta.get("format"))


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
