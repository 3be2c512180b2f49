"""Checkpoints: safetensors weights plus JSON metadata, written atomically.

A checkpoint is one ``.safetensors`` file. Tensors are stored by name; the metadata (config, schedule,
normalisation, step, RNG states, anything JSON-serialisable) is stored as one JSON string in the
safetensors header under the key ``"toydiff"``, so weights and metadata can never get out of step.

Writes go to a temporary file in the same folder, are flushed and fsynced, then renamed over the
target (``os.replace`` is atomic on POSIX), so a crash mid-write leaves the previous checkpoint intact; the
temporary files such a crash leaves are removed by the next write to that folder.

Trust on load: the header also holds a SHA-256 of the tensors (names, dtypes, shapes and bytes) and of the
metadata's JSON under ``"toydiff.sha256"``, checked on every load. A file written before the hash existed loads
with a :class:`UnverifiedCheckpointWarning` naming it, and only if its metadata agrees with itself
(:func:`check_self_consistent`: the schedule's betas are what its name and parameters build, its ``T`` is the
network's); :func:`add_content_hash` re-seals such a file without touching its tensors or metadata.
NaN or infinite weights are refused; :func:`require_kind` says what a file is when it is not what a command
needs. :func:`run_lock` keeps a second writer out of a run folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
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

from toydiff.processes.schedules import BUILDERS, from_name
from toydiff.outputs import atomic_write_bytes, clean_stale_temporaries  # noqa: F401 - re-exported

__all__ = [
    "CheckpointError",
    "UnverifiedCheckpointWarning",
    "check_self_consistent",
    "add_content_hash",
    "register_kind",
    "save_checkpoint",
    "load_checkpoint",
    "load_checkpoint_bytes",
    "read_metadata",
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


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint carries no content hash (written before checkpoints had one): its bytes cannot be verified."""


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


def read_metadata(path: str | os.PathLike) -> dict[str, Any] | None:
    """The toydiff metadata of the checkpoint at ``path`` from its header alone (no tensor is read, so listing a
    folder of large files stays cheap), or None where ``path`` is not a readable safetensors file with a JSON object
    under the toydiff key. Unverified: :func:`load_checkpoint` checks the content hash."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {}).get(_META_KEY, "null"))
    except (OSError, ValueError, RuntimeError, SafetensorError):
        return None
    return meta if isinstance(meta, dict) else None


def _parse(data: bytes, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, Any]]:
    """``(tensors, the header's string metadata, the parsed toydiff metadata)`` of checkpoint bytes, unverified."""
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
    return tensors, meta, parsed


def load_checkpoint_bytes(data: bytes, name: str = "<bytes>", *,
                          allow_non_finite: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Like :func:`load_checkpoint` for the bytes of a checkpoint (an uploaded file, say).

    The tensors' and metadata's SHA-256 is checked against the header's ``"toydiff.sha256"``. A file without one
    (written before checkpoints carried it) must agree with itself (:func:`check_self_consistent`) and loads with
    an :class:`UnverifiedCheckpointWarning` naming it. Every floating-point tensor must be finite unless
    ``allow_non_finite``.
    """
    tensors, meta, parsed = _parse(data, name)
    if _HASH_KEY in meta:
        if content_hash(tensors, meta[_META_KEY]) != meta[_HASH_KEY]:
            raise CheckpointError(f"{name} is corrupt: its tensors or metadata do not match the content hash written "
                                  "with them (the file was altered or damaged after it was saved)")
    else:
        check_self_consistent(parsed, name)
        warnings.warn(f"{name} has no content hash (written before checkpoints carried one), so damage or edits "
                      "to it cannot be detected; re-seal it with toydiff.training.checkpoint.add_content_hash",
                      UnverifiedCheckpointWarning, stacklevel=3)
    if not allow_non_finite:
        for key, t in tensors.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                bad = int((~torch.isfinite(t)).sum())
                raise CheckpointError(f"{name}: tensor {key!r} holds {bad} NaN or infinite value(s); refusing "
                                      "non-finite weights (the run that wrote it diverged)")
    return tensors, parsed


def check_self_consistent(meta: dict[str, Any], name: str = "<checkpoint>") -> None:
    """Refuse metadata that contradicts itself: a ``"schedule"`` whose betas are not what its builder name and
    parameters build (:func:`toydiff.processes.schedules.from_name`, to 1e-12 relative), whose length is not its
    ``params["T"]``, or whose ``T`` is not the ``T`` of ``model_config`` / ``config`` (the network's time embedding);
    a ``config["schedule"]`` naming another schedule. Metadata without a schedule (a flow model, a classifier) and
    schedules of unknown builders (``"custom"``) are checked only for what they state.

    Raises:
        CheckpointError: naming ``name`` and the contradiction.
    """
    sched = meta.get("schedule")
    if not isinstance(sched, dict) or "betas" not in sched:
        return
    try:
        betas = torch.as_tensor(sched["betas"], dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{name}: its schedule's betas are not a list of numbers ({e})") from None
    T, sname, params = betas.numel(), sched.get("name"), sched.get("params")
    if isinstance(params, dict) and params.get("T", T) != T:
        raise CheckpointError(f"{name} contradicts itself: its schedule holds {T} betas but says T={params['T']}")
    if sname in BUILDERS and isinstance(params, dict):
        try:
            built = from_name(sname, **params).betas
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{name}: its schedule {sname!r} {params} cannot be rebuilt ({e})") from None
        if built.shape != betas.shape or not torch.allclose(built, betas, rtol=1e-12, atol=0.0):
            raise CheckpointError(f"{name} contradicts itself: its schedule's betas are not those of {sname!r} with "
                                  f"{params} (the schedule was edited, or the file damaged)")
    for key in ("model_config", "config"):
        sub = meta.get(key)
        if isinstance(sub, dict) and isinstance(sub.get("T"), int) and sub["T"] != T:
            raise CheckpointError(f"{name} contradicts itself: {key} has T={sub['T']} but its schedule has {T} steps")
    conf = meta.get("config")
    if isinstance(conf, dict) and isinstance(conf.get("schedule"), str) and sname in BUILDERS and conf["schedule"] != sname:
        raise CheckpointError(f"{name} contradicts itself: config names schedule {conf['schedule']!r}, "
                              f"its schedule is {sname!r}")


def add_content_hash(path: str | os.PathLike) -> Path:
    """Re-seal a checkpoint written before checkpoints carried a content hash: the same tensors (bit for bit) and
    the same metadata text, plus the header's ``"toydiff.sha256"``; written atomically over ``path``.

    A file that already has a hash is verified and left as it is; a hash-less one must pass
    :func:`check_self_consistent` first (a hash would otherwise vouch for a contradiction).

    Raises:
        CheckpointError: the file is missing, not a toydiff checkpoint, corrupt, or contradicts itself.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    tensors, meta, parsed = _parse(path.read_bytes(), str(path))
    if _HASH_KEY in meta:
        load_checkpoint(path, allow_non_finite=True)  # verifies the hash it has
        return path
    check_self_consistent(parsed, str(path))
    sealed = dict(meta) | {_HASH_KEY: content_hash(tensors, meta[_META_KEY])}
    return atomic_write_bytes(path, _st_save(tensors, metadata=sealed))


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
    exits or is killed, so a stale lock cannot outlive its run. It is re-entrant within a process. If the block
    raises, the outermost holder removes what it created and nothing else filled: the lock file it made, and the
    folder it made when that is then empty (a run refused at its first step leaves no lock-only folder behind).

    Raises:
        RunLockedError: another process holds it (it is writing this run now).
    """
    folder = Path(folder)
    made_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _HELD or fcntl is None:
        with _reentered(key, folder, made_folder and key not in _HELD):
            yield folder
        return
    lock = folder / _LOCK_NAME
    made_lock = not lock.exists()
    f = open(lock, "a+b")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise RunLockedError(f"another process is writing to the run folder {folder} (it holds "
                             f"{lock}); wait for it to finish or choose another output folder") from None
    _HELD[key] = [f, 1]
    try:
        yield folder
    except BaseException:
        if _HELD[key][1] == 1:
            _undo(folder, lock if made_lock else None, made_folder)
        raise
    finally:
        _HELD[key][1] -= 1
        if _HELD[key][1] == 0:
            del _HELD[key]
            f.close()


@contextmanager
def _reentered(key: Path, folder: Path, made_folder: bool) -> Iterator[None]:
    """The body of :func:`run_lock` when the lock is already held here (or there are no locks)."""
    if key in _HELD:
        _HELD[key][1] += 1
    try:
        yield
    except BaseException:
        if made_folder:
            _undo(folder, None, True)
        raise
    finally:
        if key in _HELD:
            _HELD[key][1] -= 1


def _undo(folder: Path, lock: Path | None, made_folder: bool) -> None:
    """Remove ``lock`` (the lock file a failed run created) and ``folder`` if the run created it and it is empty."""
    try:
        if lock is not None:
            lock.unlink(missing_ok=True)
        if made_folder and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass


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
