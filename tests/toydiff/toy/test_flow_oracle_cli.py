"""``toydiff toy sample|report --oracle --process flow``: the exact flow field without a run, and its bad flags."""

from __future__ import annotations

import numpy as np
import pytest

from toydiff.processes import interpolants
from toydiff.cli import main as toydiff_main
from toydiff.processes import InterpolantProcess
from toydiff.toy.run import oracle_run


@pytest.mark.parametrize("interp, pred", [("linear", "velocity"), ("cosine", "x0")])
def test_oracle_flow_sample_is_the_exact_ode(interp, pred, tmp_path):
    out = tmp_path / "x.npy"
    code = toydiff_main(["toy", "sample", "--oracle", "--process", "flow", "--interpolant", interp, "--prediction",
                         pred, "--dataset", "8gaussians", "--n", "400", "--method", "euler", "--steps", "3", "--seed",
                         "5", "--out", str(out)])
    assert code == 0
    x = np.load(out)
    run = oracle_run("8gaussians", InterpolantProcess(interpolants.BUILDERS[interp](), pred))
    want = run.sample(400, method="euler", steps=3, seed=5, exact=True)
    assert x.shape == (400, 2) and np.allclose(x, want.numpy(), atol=1e-6)
    # and it is not the VP oracle's DDIM draw of the same seed
    vp = oracle_run("8gaussians").sample(400, method="ddim", steps=3, seed=5, exact=True, eta=0.0)
    assert not np.allclose(x, vp.numpy(), atol=1e-2)


@pytest.mark.parametrize("args, words", [
    (["--oracle", "--process", "flow", "--method", "ddim"], "not a sampler of this run"),
    (["--oracle", "--prediction", "eps"], "applies to --process flow, not vp"),
    (["--oracle", "--interpolant", "cosine", "--process", "vp"], "applies to --process flow, not vp"),
])
def test_oracle_flow_flags_refused_in_one_line(args, words, tmp_path, capsys):
    code = toydiff_main(["toy", "sample", *args, "--out", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1


def test_process_flag_with_a_run_is_refused(tmp_path, capsys):
    from toydiff.toy.run import train_toy
    from toydiff.training.engine import TrainConfig

    train_toy("two_gaussians", config=TrainConfig(epochs=1, batch_size=256), n_train=512, n_val=64,
              out=tmp_path / "run", progress=False)
    code = toydiff_main(["toy", "sample", "--run", str(tmp_path / "run"), "--oracle", "--process", "flow",
                         "--out", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--process applies to --oracle without --run" in err


def test_oracle_flow_report_writes_figures(tmp_path):
    code = toydiff_main(["toy", "report", "--oracle", "--process", "flow", "--n", "300", "--steps", "4",
                         "--track", "20", "--out", str(tmp_path / "rep")])
    assert code == 0 and any(p.suffix == ".png" for p in (tmp_path / "rep").iterdir())
