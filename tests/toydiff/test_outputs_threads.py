"""toydiff.outputs (atomic files, staged report folders), check_writable on outputs written before, and
toydiff.threads (the one thread policy)."""

import numpy as np
import pytest
import torch

from toydiff import threads
from toydiff.cli import check_writable
from toydiff.outputs import atomic_file, atomic_write_text, save_npy, staged_folder


def _leftovers(folder):
    return [p.name for p in folder.rglob(".*") if p.name.endswith((".tmp", ".tmpdir"))]


def test_an_interrupted_write_leaves_the_previous_file_whole(tmp_path):
    p = atomic_write_text(tmp_path / "a.json", "old")
    with pytest.raises(OSError, match="disk full"):
        with atomic_file(p) as f:
            f.write(b"half of the new cont")
            raise OSError(28, "disk full")
    assert p.read_text() == "old" and not _leftovers(tmp_path)
    save_npy(tmp_path / "x.npy", torch.arange(3.0))
    save_npy(tmp_path / "x.npy", np.arange(4.0))  # rewritten
    assert np.load(tmp_path / "x.npy").tolist() == [0, 1, 2, 3]


def test_staged_folder_publishes_whole_or_not_at_all(tmp_path):
    out = tmp_path / "rep"
    with pytest.raises(RuntimeError):
        with staged_folder(out) as tmp:
            atomic_write_text(tmp / "a.txt", "1")
            raise RuntimeError("midway")
    assert not out.exists() and not _leftovers(tmp_path)
    with staged_folder(out) as tmp:
        atomic_write_text(tmp / "a.txt", "1")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "1"
    (out / "mine.txt").write_text("kept")
    with staged_folder(out) as tmp:
        atomic_write_text(tmp / "a.txt", "2")
        atomic_write_text(tmp / "sub" / "b.txt", "3")
        assert (out / "a.txt").read_text() == "1"  # nothing visible until the end
    assert (out / "a.txt").read_text() == "2" and (out / "sub" / "b.txt").read_text() == "3"
    assert (out / "mine.txt").read_text() == "kept" and not _leftovers(tmp_path)


def test_check_writable_accepts_an_output_written_before(tmp_path):
    f = tmp_path / "samples.npy"
    f.write_bytes(b"")
    assert check_writable(f, "--out") == f
    with pytest.raises(ValueError, match="--out .* is a file, not a folder"):
        check_writable(f, "--out", folder=True)
    with pytest.raises(ValueError, match="is a folder, not a file"):
        check_writable(tmp_path, "--out")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_writable(f / "x.png", "--out")


def test_thread_policy_default_env_configure_and_scope(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_configured", None)
    try:
        monkeypatch.delenv(threads.ENV_VAR, raising=False)
        assert threads.default_threads() == threads.DEFAULT_THREADS == 1
        monkeypatch.setenv(threads.ENV_VAR, "3")
        assert threads.default_threads() == 3
        monkeypatch.setenv(threads.ENV_VAR, "many")
        with pytest.raises(ValueError, match="TOYDIFF_THREADS"):
            threads.default_threads()
        monkeypatch.delenv(threads.ENV_VAR)
        assert threads.configure_threads(2) == 2 and torch.get_num_threads() == 2 and threads.default_threads() == 2
        with threads.thread_scope(1) as n:
            assert n == 1 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="threads"):
            threads.configure_threads(0)
        with pytest.raises(TypeError, match="threads"):
            threads.configure_threads(1.5)
    finally:
        torch.set_num_threads(before)
