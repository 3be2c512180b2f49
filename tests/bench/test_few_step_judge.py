"""bench/few_step_judge.py's command line: a tiny table (the exact map's row at 0 path error, "—" where a solver
cannot spend the budget), and the one-line refusals (exit 2) of a non-few-step checkpoint and an unknown solver."""

from __future__ import annotations

from pathlib import Path

import pytest

import toydiff as td
import few_step_judge as bench  # noqa: E402  (bench/, on sys.path by conftest.py)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_tiny_table_and_the_refusals(capsys):
    assert bench.main(["--dataset", "two_gaussians", "--n", "40", "--seeds", "1", "--solvers", "euler,heun"]) == 0
    out = capsys.readouterr().out
    assert "| exact map (the floor) | ∞ | 0.0000 |" in out and "| Heun (Karras) | 1 | — |" in out
    assert out.count("| Euler |") == 4
    # the shipped toy checkpoint is a DDPM run: no .jump and no continuous-time ODE, so no rows
    assert bench.main(["--dataset", "two_gaussians", "--n", "40", "--seeds", "1", "--solvers", "none",
                       "--checkpoint", str(Path(td.__file__).parent / "toy" / "weights" / "two_gaussians")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "continuous-time interpolant" in err and "DDPM" in err
    with pytest.raises(SystemExit) as e:
        bench.main(["--solvers", "rk4"])
    assert e.value.code == 2 and "rk4" in capsys.readouterr().err


def test_a_flow_run_is_judged_by_euler_on_its_field(tmp_path, capsys):
    from toydiff.toy.models import MLPConfig
    from toydiff.toy.run import train_toy
    from toydiff.training.engine import TrainConfig

    train_toy("two_gaussians", process="flow", model_config=MLPConfig(dim=1, width=8, depth=1),
              config=TrainConfig(epochs=1, batch_size=32, warmup_steps=1), n_train=64, n_val=32,
              out=tmp_path / "fm", progress=False)
    assert bench.main(["--dataset", "two_gaussians", "--n", "40", "--seeds", "1", "--solvers", "none",
                       "--checkpoint", str(tmp_path / "fm")]) == 0
    out = capsys.readouterr().out
    assert out.count("| flow (fm) · Euler |") == 4
