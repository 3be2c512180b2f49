"""Flow runs on the toy track: ``toydiff toy train --process flow``, their checkpoints, sampling, reflow."""

import numpy as np
import pytest
import torch

import toydiff as td
from toydiff.training.checkpoint import load_checkpoint
from toydiff.cli import main as toydiff_main
from toydiff.toy.models import MLPConfig
from toydiff.toy.reflow import reflow, reflow_pairs, straightness
from toydiff.toy.run import load_toy, oracle_run, train_toy
from toydiff.processes import FlowObjective
from toydiff.training.engine import TrainConfig

SMALL = dict(model_config=MLPConfig(dim=1, width=16, depth=1), n_train=600, n_val=200, progress=False)


def cli(capsys, *argv):
    code = toydiff_main(["toy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "run"
    train_toy("two_gaussians", config=TrainConfig(epochs=2, warmup_steps=2), out=out, process="flow",
              interpolant="cosine", prediction="eps", **SMALL)
    return out


def test_a_flow_checkpoint_records_its_process_and_every_reader_samples_with_it(flow_run, capsys):
    _, meta = load_checkpoint(flow_run / "checkpoint.safetensors")
    assert (meta["process"], meta["interpolant"]["name"], meta["prediction"]) == ("flow", "cosine", "eps")
    assert meta["target"] == "stf"  # the recipe's
    assert "schedule" not in meta
    run = load_toy(flow_run)
    assert run.process.name == "flow" and run.process.prediction == "eps" and run.schedule is None
    assert run.flow.prediction == "eps"  # the read-only view older callers use
    x = run.sample(500, method="euler", steps=4, seed=0)
    assert x.shape == (500, 1) and bool(torch.isfinite(x).all())
    # the very x_1 and sampler give the same samples through the CLI
    code, out, _ = cli(capsys, "sample", "--run", str(flow_run), "--method", "euler", "--steps", "4", "--n", "500",
                       "--out", str(flow_run.parent / "x.npy"))
    assert code == 0 and "cosine path (eps prediction): euler, 4 steps" in out
    assert np.allclose(np.load(flow_run.parent / "x.npy"), x.numpy())
    with pytest.raises(ValueError, match="no ε-predictor over a noise schedule"):
        run.eps_fn()


@pytest.mark.parametrize("argv, message", [
    (["--method", "ddim"], "not a sampler of this run"),
    (["--eta", "0.5"], "--eta"),
    (["--spacing", "trailing"], "--spacing"),
])
def test_vp_only_sampling_options_of_a_flow_run_are_one_line_errors(flow_run, capsys, argv, message):
    code, _, err = cli(capsys, "sample", "--run", str(flow_run), "--n", "10", "--out",
                       str(flow_run.parent / "y.npy"), *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--process", "diffusion"], "--process"),
    (["--process", "flow", "--prediction", "score"], "--prediction"),
    (["--prediction", "eps"], "--process flow"),
    (["--process", "flow", "--schedule", "cosine"], "--schedule"),
    (["--process", "flow", "--target", "exact"], "--target"),
])
def test_bad_process_flags_are_one_line_errors(tmp_path, capsys, argv, message):
    code, _, err = cli(capsys, "train", "--out", str(tmp_path / "r"), *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "checkpoint.safetensors").exists()


def test_the_target_flag_reaches_the_checkpoint(tmp_path, capsys):
    code, out, err = cli(capsys, "train", "--out", str(tmp_path / "c"), "--process", "flow", "--target", "conditional",
                         "--epochs", "1", "--n-train", "600", "--width", "16", "--depth", "1", "--quiet")
    assert code == 0, err
    assert load_checkpoint(tmp_path / "c" / "checkpoint.safetensors")[1]["target"] == "conditional"
    code, _, err = cli(capsys, "train", "--out", str(tmp_path / "v"), "--target", "stf", "--epochs", "1",
                       "--n-train", "600", "--width", "16", "--depth", "1", "--quiet")
    assert code == 0, err
    _, meta = load_checkpoint(tmp_path / "v" / "checkpoint.safetensors")
    assert (meta.get("process", "vp"), meta["target"]) == ("vp", "stf")
    assert load_toy(tmp_path / "v").process.name == "vp"


def test_flow_sampling_of_a_ddpm_run_is_refused(tmp_path, capsys):
    train_toy("two_gaussians", config=TrainConfig(epochs=1, warmup_steps=2), out=tmp_path / "vp", **SMALL)
    code, _, err = cli(capsys, "sample", "--run", str(tmp_path / "vp"), "--method", "midpoint", "--n", "10",
                       "--out", str(tmp_path / "x.npy"))
    assert code == 2 and "not a sampler of this run (DDPM" in err


def test_a_resumed_flow_run_reaches_the_same_weights(tmp_path):
    kw = dict(SMALL, process="flow")
    straight = train_toy("two_gaussians", config=TrainConfig(epochs=2, warmup_steps=2), out=tmp_path / "a", **kw)
    train_toy("two_gaussians", config=TrainConfig(epochs=1, warmup_steps=2), out=tmp_path / "b", **kw)
    resumed = train_toy("two_gaussians", config=TrainConfig(epochs=2, warmup_steps=2), out=tmp_path / "b",
                        resume=True, **kw)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.history.val_loss == resumed.history.val_loss
    with pytest.raises(Exception, match="cosine|interpolant"):  # another interpolant cannot resume it
        train_toy("two_gaussians", config=TrainConfig(epochs=3, warmup_steps=2), out=tmp_path / "b", resume=True,
                  **dict(kw, interpolant="cosine"))


def test_nfe_helper_answers_for_flow_methods():
    fm = td.interpolants.linear()
    assert td.function_evaluations("heun", 8, fm) == 16
    assert td.function_evaluations("heun", 8, fm, prediction="x0") == 15
    assert td.function_evaluations("euler", 8, fm) == td.function_evaluations("euler", 8) == 8


def test_reflow_straightens_the_paths_of_a_crossing_flow():
    """Two modes whose straight couplings cross: reflow on the model's own pairs must straighten its ODE."""
    torch.manual_seed(0)
    config = TrainConfig(epochs=2, batch_size=256, lr=5e-3, warmup_steps=5, ema_decay=0.9)
    run = train_toy("8gaussians", config=config, process="flow", model_config=MLPConfig(dim=2, width=32, depth=2),
                    n_train=2500, n_val=200, progress=False)
    x0, x1 = reflow_pairs(run, 300, steps=8)
    assert x0.shape == x1.shape == (300, 2)
    new = reflow(run, n_pairs=3000, epochs=2, steps=8)
    before, after = straightness(run, 400, steps=16), straightness(new, 400, steps=16)
    assert after > before + 0.05, (before, after)  # 0.71 -> 0.83 here
    with pytest.raises(ValueError, match="flow run"):
        reflow(oracle_run("8gaussians"))
    assert isinstance(new.flow, FlowObjective)
