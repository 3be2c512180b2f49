"""The committed image_track weights carry a content hash and agree with themselves; a damaged, hash-less or
self-contradicting copy is refused or named; refused ``mnist sample`` flags and a non-finite ``--image`` leave
nothing behind (issues #23.5 and the half-written outputs)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from image_track.cli import main
from image_track.loaded import load_model
from toydiff.training import checkpoint as ck

WEIGHTS = Path(__file__).resolve().parents[2] / "image_track" / "weights"
FILES = sorted(p.name for p in WEIGHTS.glob("*.safetensors"))


def _meta_text(path: Path) -> str:
    data = path.read_bytes()
    return json.loads(data[8: 8 + int.from_bytes(data[:8], "little")])["__metadata__"]


@pytest.mark.parametrize("name", FILES)
def test_committed_weights_are_sealed_and_self_consistent(name):
    path = WEIGHTS / name
    assert "toydiff.sha256" in _meta_text(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no UnverifiedCheckpointWarning
        _, meta = ck.load_checkpoint(path)
    ck.check_self_consistent(meta, name)


@pytest.fixture
def copy(tmp_path) -> Path:
    dst = tmp_path / "tiny_uncond.safetensors"
    dst.write_bytes((WEIGHTS / "tiny_uncond.safetensors").read_bytes())
    return dst


def _hashless(src: Path, dst: Path, edit=None) -> Path:
    tensors, meta = st_load(src.read_bytes()), json.loads(_meta_text(src)["toydiff"])
    if edit is not None:
        edit(meta)
    dst.write_bytes(st_save(tensors, metadata={"toydiff": json.dumps(meta)}))
    return dst


def test_a_flipped_byte_is_refused_naming_the_file(copy):
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the tensors
    copy.write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointError, match=r"tiny_uncond\.safetensors is corrupt"):
        load_model(copy)


def test_a_hashless_copy_loads_with_a_warning_naming_it(copy, tmp_path):
    old = _hashless(copy, tmp_path / "legacy.safetensors")
    with pytest.warns(ck.UnverifiedCheckpointWarning, match=r"legacy\.safetensors has no content hash"):
        m = load_model(old)
    assert m.process.schedule.T == 1000


@pytest.mark.parametrize("edit, word", [
    (lambda m: m["schedule"]["betas"].__setitem__(500, 0.5), "betas are not those of 'linear'"),
    (lambda m: m["schedule"].__setitem__("params", {"T": 1000, "beta_start": 1e-4, "beta_end": 0.03}), "betas"),
    (lambda m: m["config"].__setitem__("schedule", "cosine"), "config names schedule 'cosine'"),
    (lambda m: m["model_config"].__setitem__("T", 500), "model_config has T=500"),
])
def test_an_edited_hashless_copy_is_refused(copy, tmp_path, edit, word):
    old = _hashless(copy, tmp_path / "edited.safetensors", edit)
    with pytest.raises(ck.CheckpointError, match=rf"edited\.safetensors contradicts itself.*{word}"):
        load_model(old)


@pytest.mark.parametrize("flags, word", [
    (["--steps", "5000"], "steps"),
    (["--guide", "--w", "0.5"], "w must be"),
    (["--conditional", "--w", "nan"], "w must be"),
    (["--figures", "progression", "--steps", "5000"], "steps"),
])
def test_refused_sample_flags_leave_no_out_folder(tmp_path, capsys, flags, word):
    out = tmp_path / "figs"
    argv = ["sample", "--out", str(out), "--quiet", "--figures", "grid"] + flags
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0]
    assert not out.exists()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_sdedit_refuses_a_non_finite_float_image(tmp_path, capsys, bad):
    from PIL import Image

    from image_track.lab import cli as lab_cli

    a = np.zeros((28, 28), np.float32)
    a[8:20, 12:16] = 1.0
    a[3, 4] = bad
    image = tmp_path / "digit.tiff"
    Image.fromarray(a, mode="F").save(image)
    out = tmp_path / "new" / "sdedit.png"
    assert lab_cli.main(["sdedit", "--image", str(image), "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "digit.tiff" in err[0] and "NaN or infinite" in err[0]
    assert not out.parent.exists()


def test_a_finite_float_image_still_loads(tmp_path):
    from PIL import Image

    from image_track.images import load_png

    a = np.zeros((28, 28), np.float32)
    a[8:20, 12:16] = 3.5  # any finite range is rescaled
    Image.fromarray(a, mode="F").save(tmp_path / "digit.tiff")
    x = load_png(tmp_path / "digit.tiff")
    assert x.shape == (1, 1, 28, 28) and float(x.max()) > 0.5 and float(x.min()) == -1.0
