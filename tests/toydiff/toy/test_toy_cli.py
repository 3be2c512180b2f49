"""``toydiff toy`` end to end, and the run glue it shares with the benchmarks (toydiff.toy.run)."""

import json

import numpy as np
import pytest
import torch

from toydiff.toy import run as toyrun
from toydiff.training.checkpoint import CheckpointError
from toydiff.cli import main as toydiff_main
from toydiff.toy.models import MLPConfig
from toydiff.training.engine import TrainConfig


def cli(capsys, *argv):
    code = toydiff_main(["toy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_oracle_samples_have_the_mixture_moments(capsys, tmp_path):
    code, out, _ = cli(capsys, "sample", "--oracle", "--method", "dpm++2m", "--steps", "100", "--n", "20000",
                       "--out", str(tmp_path / "x.npy"))
    assert code == 0 and "wrote" in out
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (20000, 1)
    assert x.mean() == pytest.approx(4 / 3, abs=0.08)            # (1·(-4) + 2·4) / 3
    assert x.var() == pytest.approx(1 + 16 - (4 / 3) ** 2, rel=0.03)  # E[x²] − mean²
    assert ((x > 0).mean()) == pytest.approx(2 / 3, abs=0.015)


def test_train_sample_report_and_resume(capsys, tmp_path):
    run = tmp_path / "run"
    code, out, _ = cli(capsys, "train", "--out", str(run), "--epochs", "2", "--n-train", "800", "--n-val", "200",
                       "--width", "16", "--depth", "2", "--quiet")
    assert code == 0 and "Bayes floor" in out
    assert (run / "checkpoint.safetensors").exists() and (run / "loss.png").exists()
    assert len(json.loads((run / "history.json").read_text())["records"]) == 2

    code, _, err = cli(capsys, "train", "--out", str(run), "--epochs", "3", "--n-train", "800", "--n-val", "200",
                       "--width", "16", "--depth", "2", "--quiet")
    assert code == 2 and "--resume" in err and len(err.strip().splitlines()) == 1
    code, _, _ = cli(capsys, "train", "--out", str(run), "--epochs", "3", "--n-train", "800", "--n-val", "200",
                     "--width", "16", "--depth", "2", "--quiet", "--resume")
    assert code == 0 and len(toyrun.load_toy(run).history.records) == 3

    code, _, _ = cli(capsys, "sample", "--run", str(run), "--method", "ddim", "--steps", "10", "--n", "300",
                     "--out", str(tmp_path / "s.npy"))
    assert code == 0 and np.load(tmp_path / "s.npy").shape == (300, 1)

    rep = tmp_path / "rep"
    code, out, _ = cli(capsys, "report", "--run", str(run), "--steps", "20", "--n", "400", "--out", str(rep))
    assert code == 0 and "noise floor" in out
    for f in ("samples.png", "trajectories.png", "loss.png", "forward.png", "metrics.json", "samples.npy"):
        assert (rep / f).exists(), f
    m = json.loads((rep / "metrics.json").read_text())["metrics"]
    assert {"value", "floor"} <= set(m["wasserstein1"])
    # a second report into the same folder rewrites every file and adds none (the README's rerun contract)
    first = {p: p.stat().st_mtime_ns for p in rep.rglob("*")}
    assert cli(capsys, "report", "--run", str(run), "--steps", "20", "--n", "300", "--out", str(rep))[0] == 0
    second = {p: p.stat().st_mtime_ns for p in rep.rglob("*")}
    assert set(second) == set(first) and all(second[p] != first[p] for p in first if p.is_file())


def test_report_2d_oracle(capsys, tmp_path):
    code, _, _ = cli(capsys, "report", "--oracle", "--dataset", "8gaussians", "--method", "heun", "--steps", "15",
                     "--n", "500", "--out", str(tmp_path))
    assert code == 0
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert m["modes_covered"]["value"] == 8
    assert (tmp_path / "vector_field.png").exists()
    first = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}  # a rerun rewrites every file, adds none
    assert cli(capsys, "report", "--oracle", "--dataset", "8gaussians", "--method", "heun", "--steps", "15",
               "--n", "300", "--out", str(tmp_path))[0] == 0
    second = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert set(second) == set(first) and all(second[p] != first[p] for p in first if p.is_file())


@pytest.mark.parametrize("argv, needle", [
    (["sample", "--out", "x.npy"], "--run RUN or --oracle"),
    (["sample", "--oracle", "--out", "x.txt"], ".npy"),
    (["sample", "--oracle", "--dataset", "moons", "--out", "x.npy"], "no exact mixture"),
    (["sample", "--oracle", "--n", "0", "--out", "x.npy"], "--n"),
    (["sample", "--oracle", "--method", "euler2", "--out", "x.npy"], "--method"),
    (["sample", "--run", "does/not/exist", "--out", "x.npy"], "does/not/exist"),
    (["train"], "--out"),
    (["train", "--out", "r", "--dataset", "nope"], "--dataset"),
    (["train", "--out", "r", "--epochs", "0"], "epochs"),
    (["train", "--out", "r", "--lr-schedule", "step"], "--lr-schedule"),
    (["bogus"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_sample_rejects_a_checkpoint_of_another_kind(capsys, tmp_path):
    from toydiff.training.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "other.safetensors", {"w": torch.zeros(2)}, {"kind": "image"})
    code, _, err = cli(capsys, "sample", "--run", str(tmp_path / "other.safetensors"), "--out", str(tmp_path / "x.npy"))
    assert code == 2 and "not a toy-track checkpoint" in err


def test_toyrun_model_and_oracle_share_schedule_and_units(tmp_path):
    run = toyrun.train_toy("8gaussians", model_config=MLPConfig(dim=2, width=16, depth=1),
                           config=TrainConfig(epochs=1), n_train=500, n_val=100, out=tmp_path, progress=False)
    loaded = toyrun.load_toy(tmp_path)
    x = torch.randn(5, 2)
    t = torch.tensor([0, 10, 50, 100, 249])
    assert torch.equal(run.eps_fn()(x, t), loaded.eps_fn()(x, t))
    a = loaded.sample(50, method="ddim", steps=5, seed=3)
    assert torch.equal(a, loaded.sample(50, method="ddim", steps=5, seed=3))
    exact = loaded.sample(4000, method="dpm++2m", steps=30, seed=3, exact=True)
    assert exact.abs().max() < 3.5 and (exact.norm(dim=1) - 2).abs().median() < 0.2  # on the ring, in data units
    with pytest.raises(CheckpointError, match="n_train"):
        toyrun.train_toy("8gaussians", model_config=MLPConfig(dim=2, width=16, depth=1), config=TrainConfig(epochs=2),
                         n_train=600, n_val=100, out=tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="model_config.dim"):
        toyrun.train_toy("8gaussians", model_config=MLPConfig(dim=1), progress=False)
    with pytest.raises(ValueError, match="no oracle"):
        toyrun.oracle_run("moons")


def test_train_flags_are_generated_from_the_config_fields():
    from dataclasses import fields

    from toydiff.toy.cli import build_parser
    from toydiff.toy.cli.train import _NOT_FLAGS, train_settings
    from toydiff.toy.recipes import default_recipe

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    dests = {a.dest for a in train._actions}
    assert {f.name for f in fields(TrainConfig)} - set(_NOT_FLAGS) <= dests
    # flags left out: the data set's recipe (issue 12; before, TrainConfig's own defaults)
    a = build_parser().parse_args(["train", "--out", "r"])
    assert train_settings(a)["config"] == default_recipe("two_gaussians").train_config()
    a = build_parser().parse_args(["train", "--out", "r", "--ema-decay", "0", "--grad-clip", "0", "--ema-warmup",
                                   "--lr-schedule", "constant", "--epochs", "3"])
    c = train_settings(a)["config"]
    assert (c.ema_decay, c.grad_clip, c.ema_warmup, c.lr_schedule, c.epochs) == (None, None, True, "constant", 3)


def _leftovers(folder):
    return [p for p in folder.rglob(".*") if p.name.endswith((".tmp", ".tmpdir"))]


def test_a_run_folder_needs_resume_or_overwrite_and_files_are_rewritten(capsys, tmp_path, monkeypatch):
    small = ["--epochs", "1", "--n-train", "256", "--n-val", "64", "--width", "8", "--depth", "1", "--quiet"]
    run = tmp_path / "run"
    assert cli(capsys, "train", "--out", str(run), *small)[0] == 0
    code, _, err = cli(capsys, "train", "--out", str(run), *small)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    code, _, err = cli(capsys, "train", "--out", str(run), *small, "--resume", "--overwrite")
    assert code == 2 and "not both" in err
    (run / "history.json").write_text("{}")  # the old run's: replaced, not kept beside the new checkpoint
    assert cli(capsys, "train", "--out", str(run), *small, "--overwrite")[0] == 0
    assert len(json.loads((run / "history.json").read_text())["records"]) == 1

    x = tmp_path / "x.npy"
    for _ in range(2):  # a file written before is rewritten (atomically), not refused
        code, _, err = cli(capsys, "sample", "--oracle", "--n", "50", "--steps", "5", "--method", "ddim", "--out", str(x))
        assert code == 0, err
    assert np.load(x).shape == (50, 1)

    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "mine.txt").write_text("a file of the user's")
    for _ in range(2):
        code, _, err = cli(capsys, "report", "--oracle", "--n", "100", "--steps", "5", "--method", "ddim",
                           "--out", str(rep))
        assert code == 0, err
    assert (rep / "mine.txt").read_text() == "a file of the user's" and (rep / "metrics.json").exists()

    from toydiff.toy import metrics

    def broken(*a, **k):
        raise ValueError("metrics broke midway")

    monkeypatch.setattr(metrics, "report", broken)
    code, _, err = cli(capsys, "report", "--oracle", "--n", "100", "--steps", "5", "--out", str(tmp_path / "rep2"))
    assert code == 2 and "midway" in err
    assert not (tmp_path / "rep2").exists(), "a failed report left a partial folder"
    assert not _leftovers(tmp_path)


def test_threads_flag_is_applied_and_train_toy_restores_the_callers_count(capsys, tmp_path):
    from toydiff import threads

    before = torch.get_num_threads()
    try:
        code, _, err = cli(capsys, "sample", "--oracle", "--n", "20", "--steps", "3", "--method", "ddim",
                           "--threads", "2", "--out", str(tmp_path / "x.npy"))
        assert code == 0, err
        assert torch.get_num_threads() == 2 and threads.default_threads() == 2
        code, _, err = cli(capsys, "sample", "--oracle", "--threads", "0", "--out", str(tmp_path / "y.npy"))
        assert code == 2 and "--threads" in err
        torch.set_num_threads(3)
        seen = []
        toyrun.train_toy("two_gaussians", model_config=MLPConfig(dim=1, width=8, depth=1),
                         config=TrainConfig(epochs=1, batch_size=64), n_train=128, n_val=32, progress=False,
                         threads=1, on_epoch=lambda rec: seen.append(torch.get_num_threads()))
        assert seen == [1] and torch.get_num_threads() == 3
    finally:
        threads._configured = None
        torch.set_num_threads(before)
