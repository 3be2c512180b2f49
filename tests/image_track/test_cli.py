"""``toydiff mnist``: train -> sample -> eval end to end on tiny settings; bad input is one line and exit 2."""

from __future__ import annotations

import json

import pytest

from image_track.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", "--preset", "tiny", "--conditional", "--subset", "256", "--batch-size", "128",
               "--max-steps", "2", "--val-size", "64", "--sample-steps", "2", "--no-progress", "--out", str(out)])
    assert rc == 0
    return out


def test_train_sample_eval(trained, tmp_path, capsys):
    ckpt = trained / "checkpoint.safetensors"
    assert ckpt.is_file() and (trained / "samples_epoch000.png").is_file()
    hist = json.loads((trained / "history.json").read_text())
    assert hist["step"] == 2 and "val_loss" in hist["epochs"][-1]

    figs = tmp_path / "figs"
    rc = main(["sample", "--checkpoint", str(ckpt), "--out", str(figs), "--steps", "2", "--figures", "all",
               "--ws", "0,5", "--label", "3", "--quiet", "--save-tensor"])
    assert rc == 0
    names = ("grid.png", "samples.safetensors", "guidance_sweep.png", "fixed_init.png", "progression.png",
             "progression.gif")
    assert capsys.readouterr().out.split() == [str(figs / n) for n in names]  # one line per file written
    from PIL import Image

    from toydiff.training.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(figs / "samples.safetensors")
    assert tensors["images"].shape == (100, 1, 28, 28) and tensors["labels"].tolist() == [d for d in range(10) for _ in range(10)]
    assert meta["steps"] == 2 and meta["w"] == 3.0
    with Image.open(figs / "grid.png") as im:  # 10 x 10 images of 28 px, 2 px gaps, drawn 3x
        assert im.size == (3 * (10 * 30 + 2), 3 * (10 * 30 + 2))
    with Image.open(figs / "progression.gif") as im:  # 4 samples: x_t over x0-hat at each of the 2 steps, then the result
        assert im.n_frames == 3 and im.size == (4 * (4 * 30 + 2), 4 * (2 * 30 + 2))
    for name in names[2:4]:
        with Image.open(figs / name) as im:
            assert im.format == "PNG" and im.width > 300

    out = tmp_path / "eval.json"
    rc = main(["eval", "--checkpoint", str(ckpt), "--n", "20", "--steps", "2", "--ws", "0,2", "--quiet",
               "--out", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["n"] == 20 and r["fid_floor"] >= 0 and set(r["per_w"]) == {"0", "2"}
    assert 0 <= r["per_w"]["2"]["accuracy"] <= 1 and len(r["unconditional"]["class_histogram"]) == 10
    assert set(r["floors"]) >= {"fid_floor", "kid_floor", "precision_floor", "recall_floor", "confident_floor"}
    assert 0 <= r["unconditional"]["precision"] <= 1 and "kid" in r["per_w"]["2"]
    text = capsys.readouterr().out
    assert "FID-MNIST" in text and "KID" in text and "recall" in text and "floors (real vs real, n=20)" in text


@pytest.mark.parametrize("argv", [
    [],
    ["nonsense"],
    ["sample", "--method", "euler-maruyama"],
    ["sample", "--steps", "0"],
    ["sample", "--figures", "grid,movie"],
    ["eval", "--n", "0"],
    ["sample", "--checkpoint", "/nonexistent/x.safetensors"],
    ["train", "--out", "x", "--batch-size", "-3"],
    ["train"],
])
def test_bad_input_is_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err and len(err.splitlines()) == 1, err


def test_eta_out_of_range_and_wrong_kind_of_checkpoint(trained, tmp_path, capsys):
    ckpt = str(trained / "checkpoint.safetensors")
    assert main(["sample", "--checkpoint", ckpt, "--eta", "2", "--out", str(tmp_path)]) == 2
    assert "eta" in capsys.readouterr().err
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes((trained / "checkpoint.safetensors").read_bytes()[:1000])
    assert main(["eval", "--checkpoint", str(bad), "--n", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "truncated or corrupt" in err and len(err.splitlines()) == 1


@pytest.fixture(scope="module")
def uncond_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("uncond")
    rc = main(["train", "--preset", "tiny", "--subset", "128", "--batch-size", "64", "--max-steps", "2",
               "--snapshot-steps", "1", "--val-size", "64", "--no-samples", "--no-progress", "--out", str(out)])
    assert rc == 0
    return out


def test_autoguidance_with_an_early_snapshot(uncond_run, trained, tmp_path, capsys):
    ckpt, weak = uncond_run / "checkpoint.safetensors", uncond_run / "ema_step1.safetensors"
    assert weak.is_file()
    rc = main(["sample", "--checkpoint", str(ckpt), "--guide", str(weak), "--w", "2", "--steps", "2", "--quiet",
               "--out", str(tmp_path / "figs")])
    assert rc == 0 and capsys.readouterr().out.split() == [str(tmp_path / "figs" / "grid.png")]
    out = tmp_path / "eval.json"
    rc = main(["eval", "--checkpoint", str(ckpt), "--guide", str(weak), "--n", "10", "--steps", "2", "--quiet",
               "--out", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert set(r["autoguidance"]) == {"1", "2", "3"} and r["autoguidance"]["1"] == r["unconditional"]
    assert "autoguidance w=3" in capsys.readouterr().out
    # bad uses: guidance scale below 1, a conditional model, a guide of another kind
    assert main(["eval", "--checkpoint", str(ckpt), "--guide", str(weak), "--ws", "0,2", "--n", "4"]) == 2
    assert "--ws" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(trained / "checkpoint.safetensors"), "--guide", str(weak)]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(ckpt), "--guide", str(trained / "checkpoint.safetensors")]) == 2
    assert "not the same kind" in capsys.readouterr().err
