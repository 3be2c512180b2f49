"""Bad invocations of every ``toydiff`` command: exit status 2 (3 for a diverged run), exactly one stderr line,
no traceback, and nothing written.

Each case runs in-process through :func:`toydiff.cli.main` (the entry-point dispatch a user's shell goes through).
"""

from __future__ import annotations

import fcntl
import json
import struct

import pytest
import torch

from toydiff.training.checkpoint import load_checkpoint, save_checkpoint
from toydiff.cli import main

BIG = str(2**70)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs that must be refused: a toy checkpoint, one with NaN weights, one with a flipped byte, one whose
    metadata is a list, one whose metadata is not JSON, a plain file, a small PNG and a 5000 x 5000 PNG."""
    from PIL import Image

    d = tmp_path_factory.mktemp("inputs")
    assert main(["toy", "train", "--out", str(d / "toy"), "--epochs", "1", "--n-train", "256", "--n-val", "64",
                 "--quiet"]) == 0
    toy = d / "toy" / "checkpoint.safetensors"
    tensors, meta = load_checkpoint(toy)
    bad = {k: v.clone() for k, v in tensors.items()}
    bad["ema.net.0.weight"][0, 0] = float("nan")
    save_checkpoint(d / "nan" / "checkpoint.safetensors", bad, meta)
    data = bytearray(toy.read_bytes())
    data[-3] ^= 0x40  # a byte of the last tensor's data
    (d / "flipped.safetensors").write_bytes(bytes(data))
    _raw_safetensors(d / "list_meta.safetensors", json.dumps([1, 2]))
    _raw_safetensors(d / "not_json.safetensors", "{not json")
    (d / "plain").write_text("a regular file")
    Image.new("L", (28, 28), 255).save(d / "small.png")
    Image.new("1", (5000, 5000), 1).save(d / "huge.png")  # 25 Mpx canvas, a few KB on disk
    assert main(["toy", "train", "--out", str(d / "flow"), "--process", "flow", "--epochs", "1", "--n-train", "256",
                 "--n-val", "64", "--quiet"]) == 0
    tensors, meta = load_checkpoint(d / "flow" / "checkpoint.safetensors")
    # finite weights whose output overflows float32: the sampler's probe, not the loader, must refuse them
    big = {k: v * 1e30 if k.endswith("weight") and v.is_floating_point() else v for k, v in tensors.items()}
    save_checkpoint(d / "overflow" / "checkpoint.safetensors", big, meta)
    return d


def _raw_safetensors(path, meta_text: str) -> None:
    """A safetensors file with one tensor and ``meta_text`` as its toydiff metadata, written by hand."""
    header = json.dumps({"__metadata__": {"toydiff": meta_text},
                         "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<f", 1.0))


def _cases():
    cuda = torch.cuda.is_available()
    yield "unknown command", ["bogus"], "unknown command"
    yield "toy without subcommand", ["toy"], "required"
    yield "toy train huge seed", ["toy", "train", "--out", "{out}", "--seed", BIG], "--seed"
    yield "toy train negative warm-up", ["toy", "train", "--out", "{out}", "--warmup-steps", "-5"], "--warmup-steps"
    yield "toy train nan lr", ["toy", "train", "--out", "{out}", "--lr", "nan"], "--lr"
    yield "toy train out under a file", ["toy", "train", "--out", "{d}/plain/run"], "is a file"
    yield "toy train out is a file", ["toy", "train", "--out", "{d}/plain"], "is a file"
    yield "toy sample list metadata", ["toy", "sample", "--run", "{d}/list_meta.safetensors", "--out", "{out}/x.npy"], \
        "JSON object"
    yield "toy sample non-JSON metadata", ["toy", "sample", "--run", "{d}/not_json.safetensors", "--out",
                                           "{out}/x.npy"], "not_json.safetensors"
    yield "toy sample flipped byte", ["toy", "sample", "--run", "{d}/flipped.safetensors", "--out", "{out}/x.npy"], \
        "corrupt"
    yield "toy sample NaN weights", ["toy", "sample", "--run", "{d}/nan", "--out", "{out}/x.npy"], "non-finite"
    yield "toy sample bad method", ["toy", "sample", "--oracle", "--method", "bogus", "--out", "{out}/x.npy"], \
        "--method"
    yield "toy sample huge seed", ["toy", "sample", "--oracle", "--seed", BIG, "--out", "{out}/x.npy"], "--seed"
    yield "toy sample under a file", ["toy", "sample", "--oracle", "--n", "10", "--out", "{d}/plain/x.npy"], \
        "is a file"
    yield "toy report NaN weights", ["toy", "report", "--run", "{d}/nan", "--out", "{out}"], "non-finite"
    yield "toy resume NaN weights", ["toy", "train", "--out", "{d}/nan", "--resume", "--epochs", "2"], "non-finite"
    yield "mnist without command", ["mnist"], "command is required"
    yield "mnist train bogus device", ["mnist", "train", "--out", "{out}", "--device", "bogus"], "--device"
    if not cuda:
        yield "mnist train cuda without CUDA", ["mnist", "train", "--out", "{out}", "--device", "cuda"], "CUDA"
    yield "mnist train bad sample method", ["mnist", "train", "--out", "{out}", "--sample-method", "bogus"], \
        "--sample-method"
    yield "mnist train negative warm-up", ["mnist", "train", "--out", "{out}", "--warmup-steps", "-5"], \
        "--warmup-steps"
    yield "mnist train huge seed", ["mnist", "train", "--out", "{out}", "--seed", BIG], "--seed"
    yield "mnist train bad preset", ["mnist", "train", "--out", "{out}", "--preset", "bogus"], "--preset"
    yield "mnist train missing data", ["mnist", "train", "--out", "{out}", "--data-dir", "{d}/nowhere"], "nowhere"
    yield "mnist train into a run", ["mnist", "train", "--out", "{d}/toy", "--max-steps", "1"], "--overwrite"
    yield "mnist train resume a toy run", ["mnist", "train", "--out", "{out}", "--resume", "{d}/toy",
                                           "--max-steps", "1", "--subset", "32"], ""
    yield "mnist sample toy checkpoint", ["mnist", "sample", "--checkpoint", "{d}/toy/checkpoint.safetensors",
                                          "--out", "{out}"], "toy-track checkpoint"
    yield "mnist sample NaN weights", ["mnist", "sample", "--checkpoint", "{d}/nan/checkpoint.safetensors",
                                       "--out", "{out}"], "non-finite"
    yield "mnist sample bogus device", ["mnist", "sample", "--device", "bogus", "--out", "{out}"], "--device"
    yield "mnist sample huge seed", ["mnist", "sample", "--seed", BIG, "--out", "{out}"], "--seed"
    yield "mnist eval list metadata", ["mnist", "eval", "--checkpoint", "{d}/list_meta.safetensors",
                                       "--out", "{out}/e.json"], "JSON object"
    yield "mnist eval n = 0", ["mnist", "eval", "--n", "0", "--out", "{out}/e.json"], "--n"
    yield "lab unknown experiment", ["mnist", "lab", "bogus", "--out", "{out}/x.png"], "invalid choice"
    yield "lab sdedit image and digit", ["mnist", "lab", "sdedit", "--image", "{d}/small.png", "--digit", "3",
                                         "--out", "{out}/x.png"], "not allowed with"
    yield "lab sdedit huge image", ["mnist", "lab", "sdedit", "--image", "{d}/huge.png", "--stride", "250", "--i-starts", "1",
                                    "--out", "{out}/x.png"], "5000 x 5000"
    yield "lab sdedit toy checkpoint", ["mnist", "lab", "sdedit", "--checkpoint", "{d}/toy/checkpoint.safetensors",
                                        "--out", "{out}/x.png"], "toy-track checkpoint"
    yield "lab huge seed", ["mnist", "lab", "hybrid", "--seed", BIG, "--out", "{out}/x.png"], "--seed"
    yield "app bad port", ["app", "--port", "0"], "--port"
    yield "app port not a number", ["app", "--port", "http"], "--port"
    yield "demo too few samples", ["demo", "--n", "3", "--out", "{out}"], "--n"
    yield "demo huge seed", ["demo", "--seed", BIG, "--out", "{out}"], "--seed"
    yield "demo out under a file", ["demo", "--out", "{d}/plain/figs"], "is a file"
    yield "mnist train out under a file", ["mnist", "train", "--out", "{d}/plain/run"], "is a file"
    yield "mnist sample out under a file", ["mnist", "sample", "--out", "{d}/plain/figs"], "is a file"
    yield "mnist eval out under a file", ["mnist", "eval", "--out", "{d}/plain/e.json"], "is a file"
    yield "lab out under a file", ["mnist", "lab", "anagram", "--out", "{d}/plain/a.png"], "is a file"
    yield "toy report out under a file", ["toy", "report", "--oracle", "--out", "{d}/plain/r"], "is a file"
    yield "toy guidance class out of range", ["toy", "guidance", "--y", "7", "--out", "{out}"], "--y"
    yield "toy guidance tiny grid", ["toy", "guidance", "--grid", "2", "--out", "{out}"], "--grid"
    yield "toy guidance bad w", ["toy", "guidance", "--w", "1,x", "--out", "{out}"], "--w"
    yield "toy guidance one-sided interval", ["toy", "guidance", "--interval-sigma", "1", "--out", "{out}"], \
        "--interval-sigma"
    yield "toy guidance unlabelled data set", ["toy", "guidance", "--dataset", "moons", "--out", "{out}"], "--dataset"
    yield "toy guidance out under a file", ["toy", "guidance", "--n", "10", "--out", "{d}/plain/g"], "is a file"
    # issue 23: sizes beyond toydiff.bounds, and a flow run whose field overflows
    yield "toy sample flow steps 1e8", ["toy", "sample", "--run", "{d}/flow", "--steps", "100000000", "--out",
                                        "{out}/x.npy"], "--steps"
    yield "toy sample oracle flow steps 1e8", ["toy", "sample", "--oracle", "--process", "flow", "--steps",
                                               "100000000", "--out", "{out}/x.npy"], "--steps"
    yield "toy sample n 1e12", ["toy", "sample", "--oracle", "--n", "1000000000000", "--out", "{out}/x.npy"], "--n"
    yield "toy sample overflowing flow run", ["toy", "sample", "--run", "{d}/overflow", "--n", "64", "--out",
                                              "{out}/x.npy"], "NaN or infinite"
    yield "toy memorise n-train 1e9", ["toy", "memorise", "--n-train", "1000000000", "--out", "{out}"], "--n-train"
    yield "toy memorise steps 1e8", ["toy", "memorise", "--n-train", "10", "--steps", "100000000", "--out", "{out}"], \
        "--steps"
    yield "toy likelihood n 1e9", ["toy", "likelihood", "--oracle", "--n", "1000000000", "--out", "{out}"], "--n"


CASES = list(_cases())


@pytest.mark.parametrize("argv, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_invocation_is_one_line_exit_2_and_writes_nothing(argv, needle, files, tmp_path, capsys):
    out = tmp_path / "out"
    before = sorted(p.relative_to(files) for p in files.rglob("*"))
    argv = [a.format(out=out, d=files) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and needle in lines[0]
    assert not out.exists()  # nothing written
    assert sorted(p.relative_to(files) for p in files.rglob("*")) == before


def test_a_diverging_toy_run_exits_3_naming_the_step_and_keeps_the_last_finite_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["toy", "train", "--out", str(out), "--epochs", "3", "--n-train", "256", "--n-val", "64", "--quiet",
            "--lr", "1e6", "--grad-clip", "0", "--warmup-steps", "0", "--width", "32", "--depth", "2"]
    assert main(argv) == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "diverged" in lines[0] and " at step " in lines[0]
    bad_step = int(lines[0].split(" at step ")[1].split(";")[0])
    ckpt = out / "checkpoint.safetensors"
    if ckpt.exists():  # the last finite state: loads (finite weights are checked on load) and is older
        _, meta = load_checkpoint(ckpt)
        assert meta["step"] < bad_step
    else:
        assert "no checkpoint was written" in lines[0]
    assert not (out / "history.json").exists()


def test_a_flow_run_whose_held_out_loss_overflows_exits_3(tmp_path, capsys):
    """lr 1e6 leaves finite weights whose output overflows: the held-out loss is inf, so the run stops (exit 3)."""
    out = tmp_path / "run"
    argv = ["toy", "train", "--out", str(out), "--process", "flow", "--epochs", "1", "--n-train", "256", "--n-val",
            "64", "--quiet", "--lr", "1e6"]
    assert main(argv) == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "diverged" in lines[0] and "held-out loss is inf" in lines[0]
    assert not (out / "history.json").exists()


def test_a_second_writer_of_a_run_folder_exits_2_at_once(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".toydiff.lock", "a+b") as held:  # another writer's lock (its own open file description)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["toy", "train", "--out", str(out), "--epochs", "1", "--n-train", "256", "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "another process is writing" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == [".toydiff.lock"]
