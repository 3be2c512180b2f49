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
    # the shipped toy checkpoint is a DDPM run: no .jump, so no few-step rows
    assert bench.main(["--dataset", "two_gaussians", "--n", "40", "--seeds", "1", "--solvers", "none",
                       "--checkpoint", str(Path(td.__file__).parent / "toy" / "weights" / "two_gaussians")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ".jump" in err
    with pytest.raises(SystemExit) as e:
        bench.main(["--solvers", "rk4"])
    assert e.value.code == 2 and "rk4" in capsys.readouterr().err
