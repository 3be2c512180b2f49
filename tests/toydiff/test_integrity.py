"""Integrity of checkpoints and of run folders: the shipped toy weights are their data set's current default
recipe and carry a content hash; a flipped byte, a hash-less file and a hash-less file that contradicts itself
are refused or named; a refused ``toydiff toy train`` leaves no folder behind (issues #22.4, #23.5)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from toydiff.processes.registry import process_from_dict
from toydiff.processes.schedules import NoiseSchedule
from toydiff.toy.datasets import DATASETS
from toydiff.toy.recipes import default_recipe
from toydiff.toy.run import CHECKPOINT_NAME, load_toy
from toydiff.training import checkpoint as ck

WEIGHTS = Path(__file__).resolve().parents[2] / "toydiff" / "toy" / "weights"
SHIPPED = sorted(p.name for p in WEIGHTS.iterdir() if (p / CHECKPOINT_NAME).is_file())
#: the shipped few-step runs (bench/ship_toy_weights.py few_step/<name>), shown by the Labs page's few-step section
FEW_STEP = sorted(p.name for p in (WEIGHTS / "few_step").iterdir() if (p / CHECKPOINT_NAME).is_file())


def _header(path: Path) -> dict:
    data = path.read_bytes()
    return json.loads(data[8: 8 + int.from_bytes(data[:8], "little")])["__metadata__"]


def _hashless_copy(src: Path, dst: Path, edit=None) -> Path:
    """``src`` re-written without its content hash (as files written before it existed); ``edit(meta)`` may
    change the metadata first."""
    tensors, meta = st_load(src.read_bytes()), json.loads(_header(src)["toydiff"])
    if edit is not None:
        edit(meta)
    dst.write_bytes(st_save(tensors, metadata={"toydiff": json.dumps(meta)}))
    return dst


def test_every_shipped_data_set_is_known():
    assert SHIPPED and set(SHIPPED) <= set(DATASETS)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_toy_checkpoint_is_the_current_default_recipe(name):
    path = WEIGHTS / name / CHECKPOINT_NAME
    assert "toydiff.sha256" in _header(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # hashed: loads without a word
        _, meta = ck.load_checkpoint(path)
    recipe = default_recipe(name)
    expected_config = json.loads(json.dumps(recipe.train_config(seed=meta["data_seed"]).to_dict()))
    assert meta["config"] == expected_config, "retrain it: PYTHONPATH=. python bench/ship_toy_weights.py " + name
    assert NoiseSchedule.from_dict(meta["schedule"]) == recipe.schedule()
    assert meta["schedule"]["name"] == recipe.schedule_name
    assert meta["schedule"]["params"] == dict(recipe.schedule_params)
    assert meta["model_config"] == dataclasses.asdict(recipe.model_config(meta["model_config"]["dim"]))
    assert (meta["dataset"], meta["n_train"], meta["fresh_data"]) == (name, recipe.n_train, recipe.fresh)
    process = process_from_dict(meta)
    assert process.name == "vp"  # train_toy's default process
    assert meta["target"] == recipe.target(process)
    assert set(meta).isdisjoint({"optimizer", "rng_states"})  # stripped to what sampling needs
    assert load_toy(path).model is not None


@pytest.mark.parametrize("name", FEW_STEP)
def test_shipped_few_step_run_is_the_jump_recipe_distilled_and_two_jumps_follow_the_exact_map(name):
    from toydiff.toy.datasets import Normalizer

    path = WEIGHTS / "few_step" / name / CHECKPOINT_NAME
    assert "toydiff.sha256" in _header(path)
    _, meta = ck.load_checkpoint(path)
    assert (meta["process"], meta["objective"], meta["teacher"]) == ("jump", "distill", "exact")
    recipe = default_recipe(name, "jump")
    assert meta["config"] == json.loads(json.dumps(recipe.train_config(seed=meta["data_seed"]).to_dict())), \
        f"retrain it: PYTHONPATH=. python bench/ship_toy_weights.py few_step/{name}"
    run = load_toy(path)
    x1 = torch.randn(200, run.dataset.dim, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    exact = run.normalizer.inverse(run.oracle.flow_map(x1, 1.0, 0.0, run.process.interp, rtol=1e-7, atol=1e-7))
    two = run.normalizer.inverse(run.process.sample(run.denoiser_fn(), x1, steps=2).double())
    std = Normalizer.from_mixture(run.dataset.mixture).std
    assert float((((two - exact) / std) ** 2).mean().sqrt()) < 0.08  # measured 0.045 (docs/flow.md)


@pytest.fixture
def shipped(tmp_path) -> Path:
    dst = tmp_path / "shipped.safetensors"
    dst.write_bytes((WEIGHTS / SHIPPED[0] / CHECKPOINT_NAME).read_bytes())
    return dst


def test_a_flipped_byte_in_the_weights_is_refused_naming_the_file(shipped):
    data = bytearray(shipped.read_bytes())
    data[-7] ^= 0x01  # one bit of the last tensor's bytes
    shipped.write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointError, match=r"shipped\.safetensors is corrupt.*content hash"):
        ck.load_checkpoint(shipped)


def test_a_flipped_byte_in_the_header_is_refused_naming_the_file(shipped):
    data = bytearray(shipped.read_bytes())
    header = data[8: 8 + int.from_bytes(data[:8], "little")]
    key = b'epoch\\": '  # inside the header the metadata is a JSON string: its quotes are escaped
    at = 8 + header.index(key) + len(key)  # the first digit of the metadata's epoch
    data[at] = ord("7") if data[at] != ord("7") else ord("8")
    shipped.write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointError, match=r"shipped\.safetensors.*corrupt"):
        ck.load_checkpoint(shipped)


def test_a_hashless_file_loads_with_a_warning_naming_it(shipped, tmp_path):
    old = _hashless_copy(shipped, tmp_path / "legacy.safetensors")
    with pytest.warns(ck.UnverifiedCheckpointWarning, match=r"legacy\.safetensors has no content hash"):
        tensors, meta = ck.load_checkpoint(old)
    ref_tensors, ref_meta = ck.load_checkpoint(shipped)
    assert meta == ref_meta and all(torch.equal(tensors[k], ref_tensors[k]) for k in ref_tensors)


@pytest.mark.parametrize("edit, word", [
    (lambda m: m["schedule"]["betas"].__setitem__(5, 0.03), "betas are not those"),
    (lambda m: m["schedule"]["params"].__setitem__("beta_end" if "beta_end" in m["schedule"]["params"] else "beta",
                                                   0.05), "betas are not those"),
    (lambda m: m["schedule"]["betas"].pop(), "T=250"),
    (lambda m: m["model_config"].__setitem__("T", 1000), "model_config has T=1000"),
    (lambda m: m["schedule"].__setitem__("params", {"T": 250, "nonsense": 1}), "cannot be rebuilt"),
])
def test_a_hashless_file_that_contradicts_itself_is_refused(shipped, tmp_path, edit, word):
    old = _hashless_copy(shipped, tmp_path / "edited.safetensors", edit)
    with pytest.raises(ck.CheckpointError, match=rf"edited\.safetensors.*{word}"):
        ck.load_checkpoint(old)
    with pytest.raises(ck.CheckpointError, match="edited"):  # and is not sealed as it is
        ck.add_content_hash(old)


def test_add_content_hash_reseals_without_touching_tensors_or_metadata(shipped, tmp_path):
    old = _hashless_copy(shipped, tmp_path / "legacy.safetensors")
    text = _header(old)["toydiff"]
    before = st_load(old.read_bytes())
    ck.add_content_hash(old)
    assert _header(old)["toydiff"] == text and "toydiff.sha256" in _header(old)
    after = st_load(old.read_bytes())
    assert before.keys() == after.keys()
    assert all(before[k].dtype == after[k].dtype and torch.equal(before[k], after[k]) for k in before)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ck.load_checkpoint(old)
    sealed = old.read_bytes()
    ck.add_content_hash(old)  # already sealed: verified, left as it is
    assert old.read_bytes() == sealed


def test_run_lock_removes_what_a_failed_run_made(tmp_path):
    new = tmp_path / "a" / "run"
    with pytest.raises(RuntimeError):
        with ck.run_lock(new):
            with ck.run_lock(new):  # re-entered, as train_toy inside the CLI's lock
                raise RuntimeError("refused at the first step")
    assert not new.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with ck.run_lock(kept):
            raise RuntimeError
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
    wrote = tmp_path / "wrote"
    with pytest.raises(RuntimeError):
        with ck.run_lock(wrote):
            (wrote / "checkpoint.safetensors").write_bytes(b"x")  # a diverged run keeps its last checkpoint
            raise RuntimeError
    assert (wrote / "checkpoint.safetensors").exists()


def test_toy_train_with_one_training_point_refuses_before_making_the_folder(tmp_path, capsys):
    from toydiff.toy.cli import main

    out = tmp_path / "run"
    assert main(["train", "--n-train", "1", "--epochs", "1", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--n-train" in err[0] and "at least 2" in err[0]
    assert not out.exists()
