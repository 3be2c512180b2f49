"""The jump process (MeanFlow, Geng et al. 2025; shortcut models, Frans et al. 2024): its exact oracle's jumps are
the exact flow map, the exact average velocity satisfies both objectives' identities, and the toy track trains,
checkpoints, loads and samples it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import toydiff as td
from toydiff.cli import main as toydiff_main
from toydiff.processes.base import CheckpointMismatch, Process
from toydiff.processes.jump import JumpProcess, MeanFlowObjective, ShortcutObjective
from toydiff.processes.registry import PROCESSES, objective_from_meta, process_from_dict
from toydiff.toy.models import MLPConfig, TwoTimeConfig, TwoTimeMLP
from toydiff.toy.recipes import RECIPE_JUMP_1D, RECIPE_JUMP_2D, default_recipe
from toydiff.toy.run import load_toy, train_toy
from toydiff.training.engine import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: faster on one thread of a shared CPU

LIN = td.interpolants.linear()
GM2 = td.GaussianMixture.diagonal([0.3, 0.5, 0.2], [[-1.5, 0.0], [1.0, 1.0], [0.0, -1.5]],
                                  [[0.5, 0.8], [0.6, 0.5], [0.7, 0.6]])
GM1 = td.GaussianMixture([1.0, 2.0], [[-1.0], [1.0]], [[[0.3]], [[0.2]]])


def pts(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def full(n: int, v: float) -> torch.Tensor:
    return torch.full((n,), v, dtype=torch.float64)


@pytest.mark.parametrize("objective, cls", [("meanflow", MeanFlowObjective), ("shortcut", ShortcutObjective)])
def test_registry_and_metadata_round_trip(objective, cls):
    proc = JumpProcess(td.interpolants.cosine(), objective, time_scale=10.0)
    assert PROCESSES["jump"] is JumpProcess and isinstance(proc, Process)
    back = process_from_dict(proc.to_dict())
    assert (back.name, back.interp.name, back.objective_kind, back.time_scale) == ("jump", "cosine", objective, 10.0)
    obj = objective_from_meta(proc.objective().metadata())
    assert type(obj) is cls and obj.process.to_dict() == proc.to_dict()
    obj.check_resume(proc.to_dict())
    other = "shortcut" if objective == "meanflow" else "meanflow"
    with pytest.raises(CheckpointMismatch, match="objective"):
        obj.check_resume(JumpProcess(td.interpolants.cosine(), other, time_scale=10.0).to_dict())
    with pytest.raises(CheckpointMismatch, match="flow"):
        obj.check_resume({"process": "flow"})
    assert proc.nfe("jump", 3) == 3
    with pytest.raises(ValueError, match="objective"):
        JumpProcess(LIN, "consistency")
    with pytest.raises(ValueError, match="target"):
        proc.objective(target="stf")


@settings(max_examples=5, deadline=None, derandomize=True)
@given(t=st.floats(0.05, 1.0), frac=st.floats(0.0, 0.95), gm=st.sampled_from([GM1, GM2]))
def test_one_exact_jump_is_the_exact_flow_map(t, frac, gm):
    """x_s = x_t − (t − s) u*(x_t, s, t) with the oracle's u* equals Φ_{t→s}: a sign error or a map run the wrong
    way (Φ_{s→t}) fails by far more than 1e-6."""
    s = frac * t
    proc = JumpProcess()
    x = pts(8, gm.D, 1)
    jumped = proc.jump(proc.exact_fn(gm), x, t, s)
    assert torch.allclose(jumped, gm.flow_map(x, t, s, LIN), atol=1e-6, rtol=0)
    assert (jumped - gm.flow_map(x, s, t, LIN)).abs().max() > 1e-3


def test_sampling_the_oracle_is_the_exact_map_at_every_step_count_one_evaluation_a_jump():
    proc, calls = JumpProcess(), []
    exact = proc.exact_fn(GM2)

    def fn(x, r, t):
        calls.append((float(r[0]), float(t[0])))
        return exact(x, r, t)

    x1 = pts(12, 2, 2)
    target = GM2.flow_map(x1, 1.0, 0.0, LIN)
    for steps in (1, 3):
        calls.clear()
        assert torch.allclose(proc.sample(fn, x1, steps=steps), target, atol=1e-6, rtol=0)
        assert len(calls) == proc.nfe("jump", steps) == steps
        assert calls[0] == (pytest.approx(1 - 1 / steps), 1.0) and calls[-1][0] == 0.0
    rec, infos = td.TrajectoryRecorder(), []
    proc.sample(fn, x1, steps=2, callback=td.chain_callbacks(rec, infos.append))
    assert [i["t"] for i in infos] == [1.0, 0.5] and torch.allclose(infos[-1]["x0_hat"], target, atol=1e-6)
    assert rec.path().shape == (3, 12, 2)
    x0_hat = proc.to_x0(exact(x1, full(12, 0.0), full(12, 1.0)), x1, 1.0)
    assert torch.allclose(x0_hat, target, atol=1e-6, rtol=0)


def test_the_exact_average_velocity_satisfies_the_meanflow_identity_and_a_perturbed_one_does_not():
    """u* = v* − (t − r) du*/dt along the marginal velocity (Geng et al. 2025, Eq. 6): the MeanFlow target of the
    exact u* is u* itself; 1.1 u* (or the instantaneous velocity in place of u*) leaves a residual."""
    obj, proc = MeanFlowObjective(LIN), JumpProcess()
    exact = proc.exact_fn(GM2)
    n = 12
    g = torch.Generator().manual_seed(3)
    t, r = torch.cat([full(6, 0.8), full(6, 0.5)]), torch.cat([full(6, 0.1), full(6, 0.3)])  # two (r, t) pairs
    z = LIN.q_sample(GM2.sample(n, g), t, torch.randn(n, 2, generator=g, dtype=torch.float64))
    v = GM2.velocity_fn(LIN)(z, t)
    u, goal = obj.target(exact, z, v, r, t, derivative="fd")
    assert (u - goal).pow(2).mean() < 1e-9 * u.pow(2).mean()
    u, goal = obj.target(lambda *a: 1.1 * exact(*a), z, v, r, t, derivative="fd")
    assert (u - goal).pow(2).mean() > 1e-3 * u.pow(2).mean()
    inst = GM2.velocity_fn(LIN)
    u, goal = obj.target(lambda x, r_, t_: inst(x, t_), z, v, r, t, derivative="fd")
    assert (u - goal).pow(2).mean() > 1e-3 * u.pow(2).mean()


def test_the_jvp_target_is_the_total_time_derivative():
    """fn(z, r, t) = t z + r has du/dt = t v + z along (v, 0, 1): target v − (t − r)(t v + z), any tensor rank."""
    obj = MeanFlowObjective(LIN)
    g = torch.Generator().manual_seed(0)
    z, v = torch.randn(5, 2, 3, generator=g), torch.randn(5, 2, 3, generator=g)
    t, r = torch.tensor([0.9, 0.5, 0.7, 0.2, 1.0]), torch.tensor([0.1, 0.5, 0.0, 0.1, 0.3])
    T, R = t[:, None, None], r[:, None, None]
    u, goal = obj.target(lambda z_, r_, t_: t_[:, None, None] * z_ + r_[:, None, None], z, v, r, t)
    assert torch.allclose(u, T * z + R) and torch.allclose(goal, v - (T - R) * (T * v + z), atol=1e-6)
    assert not goal.requires_grad


def test_shortcut_self_consistency_holds_for_the_exact_average_velocity():
    """½ (u*(z, m, t) + u*(z − (t − m) u*, r, m)) = u*(z, r, t), m the midpoint; not for the instantaneous v*."""
    obj, proc = ShortcutObjective(LIN), JumpProcess(objective_kind="shortcut")
    exact = proc.exact_fn(GM1)
    z, t, r = pts(10, 1, 4), full(10, 0.9), full(10, 0.1)
    assert torch.allclose(obj.consistency_target(exact, z, r, t), exact(z, r, t), atol=1e-6, rtol=0)
    inst = GM1.velocity_fn(LIN)
    naive = lambda x, r_, t_: inst(x, t_)  # noqa: E731
    assert (obj.consistency_target(naive, z, r, t) - exact(z, r, t)).abs().max() > 1e-2


@pytest.mark.parametrize("objective", ["meanflow", "shortcut"])
def test_objectives_train_any_rank_and_reach_the_parameters(objective):
    obj = JumpProcess(objective_kind=objective).objective()

    def model(x, t, gap):  # a tiny rank-agnostic network: per-sample scalars times x plus a weight
        return w * x * (1 + t[:, None, None] / 1000) + gap[:, None, None] / 1000

    w = torch.tensor(0.5, requires_grad=True)
    loss, terms = obj.loss(model, torch.randn(8, 2, 3), generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert terms.per_sample.shape == (8,) and terms.t.shape == (8,) and float(w.grad.abs()) > 0


def test_train_checkpoint_load_sample_end_to_end(tmp_path):
    run = train_toy("8gaussians", process="jump", objective="shortcut",
                    model_config=MLPConfig(dim=2, width=16, depth=1),
                    config=TrainConfig(epochs=1, batch_size=16, warmup_steps=1), n_train=80, n_val=32,
                    out=tmp_path / "r", progress=False)
    assert isinstance(run.model, TwoTimeMLP) and run.history.records[-1]["step"] == 5
    back = load_toy(tmp_path / "r")
    assert back.metadata["process"] == "jump" and back.metadata["objective"] == "shortcut"
    assert back.metadata["interpolant"]["name"] == "linear" and back.metadata["model_config"]["times"] == 2
    assert isinstance(back.model, TwoTimeMLP) and back.model.config == TwoTimeConfig(dim=2, width=16, depth=1)
    x = back.sample(50, steps=2, seed=1)
    assert x.shape == (50, 2) and torch.isfinite(x).all()
    assert torch.equal(x, run.sample(50, steps=2, seed=1))
    assert run.history.floor is not None and run.history.floor > 0


def test_cli_trains_and_samples_a_jump_run_and_refuses_a_bad_objective(capsys, tmp_path):
    out = tmp_path / "run"
    code = toydiff_main(["toy", "train", "--dataset", "two_gaussians", "--process", "jump", "--objective", "meanflow",
                         "--out", str(out), "--epochs", "1", "--n-train", "64", "--n-val", "32", "--batch-size", "32",
                         "--width", "8", "--depth", "1", "--quiet"])
    assert code == 0 and "Bayes floor" in capsys.readouterr().out
    code = toydiff_main(["toy", "sample", "--run", str(out), "--steps", "1", "--n", "20",
                         "--out", str(tmp_path / "x.npy")])
    assert code == 0 and np.load(tmp_path / "x.npy").shape == (20, 1)
    for argv in (["--process", "jump", "--objective", "consistency"], ["--process", "flow", "--objective", "meanflow"]):
        assert exit_code(["toy", "train", *argv, "--out", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err
        assert "--objective" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_a_jump_run_takes_its_family_recipe():
    assert default_recipe("8gaussians", "jump") is RECIPE_JUMP_2D and default_recipe("two_gaussians", "jump") is \
        RECIPE_JUMP_1D
    assert default_recipe("8gaussians", "flow") is default_recipe("8gaussians")


def exit_code(argv) -> int:
    try:
        return toydiff_main(argv)
    except SystemExit as e:
        return e.code
