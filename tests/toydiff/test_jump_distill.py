"""Flow-map distillation (``--process jump --objective distill``): the teacher's trajectories are the exact flow map,
the target is the exact average velocity, the pairs are what the docstring says, and the track trains, saves and
reloads it from the exact teacher and from a trained flow run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import toydiff as td
from toydiff.cli import main as toydiff_main
from toydiff.processes.base import CheckpointMismatch
from toydiff.processes.jump import JUMP_TIME_SCALE, JumpProcess, MapDistillObjective
from toydiff.processes.registry import objective_from_meta, process_from_dict
from toydiff.toy.run import load_toy

pytestmark = pytest.mark.usefixtures("one_thread")

LIN = td.interpolants.linear()
GM = td.GaussianMixture.diagonal([0.3, 0.7], [[-1.0, 0.5], [1.0, -0.5]], [[0.3, 0.4], [0.2, 0.3]])


@pytest.fixture
def small_pool(monkeypatch):
    """A pool of 256 trajectories for the track's runs (the default 32 768 takes seconds)."""
    monkeypatch.setitem(MapDistillObjective.__init__.__kwdefaults__, "pool", 256)


def bound(**kw) -> MapDistillObjective:
    return MapDistillObjective(LIN, **kw).bind(teacher_velocity=GM.velocity_fn(LIN))


def test_the_exact_teachers_trajectories_are_the_exact_flow_map_from_noise_to_data():
    obj = bound(pool=64)  # the default grid of 64 cells, 2 Heun steps each
    paths = obj.trajectories((2,))
    assert paths.shape == (65, 64, 2) and paths.dtype == torch.float32
    x1 = paths[-1].double()  # index grid is t = 1, the seeded noise
    assert torch.equal(paths[-1], torch.randn(64, 2, generator=torch.Generator().manual_seed(0),
                                              dtype=torch.float64).float())
    for k in (0, 24, 48):
        exact = GM.flow_map(x1, 1.0, k / 64, LIN)
        assert float((paths[k].double() - exact).abs().max()) < 1e-3, k
    # index 0 is the data end: its points sit near the modes, not spread like the noise
    assert float(paths[0].double().std(0).min()) < float(x1.std(0).min())


def test_the_target_is_the_exact_average_velocity_so_the_exact_model_has_zero_loss():
    obj = bound(pool=128, grid=8)

    def exact_model(x, ts, gap):  # the network's view: scaled t and t − r
        t = ts.double() / JUMP_TIME_SCALE
        return GM.average_velocity(x.double(), t - gap.double() / JUMP_TIME_SCALE, t, LIN).float()

    def reversed_model(x, ts, gap):  # r and t swapped: the map run the wrong way
        return -exact_model(x, ts, gap)

    x0 = torch.zeros(32, 2)
    good, terms = obj.loss(exact_model, x0, generator=torch.Generator().manual_seed(1))
    bad, _ = obj.loss(reversed_model, x0, generator=torch.Generator().manual_seed(1))
    assert terms.per_sample.shape == (32,) and float(good) < 1e-4 and float(bad) > 0.1


@pytest.mark.parametrize("pairs", ["dyadic", "uniform"])
def test_pairs_lie_on_the_grid_below_each_other_with_the_flow_share_at_r_equals_t(pairs):
    obj = MapDistillObjective(LIN, grid=16, pool=50, pairs=pairs, flow_share=0.25)
    which, hi, lo = obj.draw_pairs(20_000, torch.Generator().manual_seed(0))
    assert which.min() >= 0 and which.max() < 50
    assert (lo >= 0).all() and (hi <= 16).all() and (lo <= hi).all()
    assert abs(float((hi == lo).double().mean()) - 0.25) < 0.02
    gap = (hi - lo)[hi > lo]
    if pairs == "dyadic":  # every jump a power of two cells, each of the 5 lengths about equally often
        assert ((gap & (gap - 1)) == 0).all()
        counts = torch.bincount(gap.log2().long(), minlength=5).double()
        assert counts.shape == (5,) and float(counts.min() / counts.max()) > 0.9
    else:
        assert len(torch.unique(gap)) == 16
    again = obj.draw_pairs(20_000, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((which, hi, lo), again))


def test_the_process_records_its_teacher_and_refuses_one_where_it_does_not_belong():
    proc = JumpProcess.from_keywords(objective="distill")
    assert proc.teacher == "exact" and "distilled from the exact teacher" in proc.describe()
    back = process_from_dict(proc.to_dict())
    assert back == proc and back.to_dict()["teacher"] == "exact"
    obj = objective_from_meta(proc.objective().metadata())
    assert type(obj) is MapDistillObjective and obj.teacher == "exact"
    obj.check_resume(proc.to_dict())
    with pytest.raises(CheckpointMismatch, match="distill"):
        obj.check_resume(JumpProcess().to_dict())
    with pytest.raises(ValueError, match="teacher"):
        JumpProcess.from_keywords(objective="shortcut", teacher="exact")
    with pytest.raises(ValueError, match="teacher"):
        JumpProcess(objective_kind="distill")
    with pytest.raises(ValueError, match="linear"):
        MapDistillObjective(td.interpolants.cosine())
    with pytest.raises(ValueError, match="grid"):
        MapDistillObjective(LIN, grid=12)
    with pytest.raises(ValueError, match="teacher"):
        MapDistillObjective(LIN).loss(lambda x, t, g: x, torch.zeros(4, 2))
    assert "teacher" not in JumpProcess().to_dict()


def run_cli(argv) -> int:
    try:
        return toydiff_main(argv)
    except SystemExit as e:
        return e.code


TINY = ["--epochs", "1", "--n-train", "64", "--n-val", "32", "--batch-size", "32", "--width", "8", "--depth", "1",
        "--quiet"]


def test_the_cli_distils_from_the_exact_teacher_and_from_a_trained_flow_run(small_pool, tmp_path, capsys):
    exact = tmp_path / "exact"
    assert run_cli(["toy", "train", "--dataset", "two_gaussians", "--process", "jump", "--objective", "distill",
                    "--out", str(exact), *TINY]) == 0
    run = load_toy(exact)
    assert (run.metadata["objective"], run.metadata["teacher"]) == ("distill", "exact")
    assert torch.equal(run.sample(20, steps=2, seed=3), run.sample(20, steps=2, seed=3))
    flow = tmp_path / "flow"
    assert run_cli(["toy", "train", "--dataset", "two_gaussians", "--process", "flow", "--out", str(flow), *TINY]) == 0
    student = tmp_path / "student"
    assert run_cli(["toy", "train", "--dataset", "two_gaussians", "--process", "jump", "--objective", "distill",
                    "--teacher", str(flow), "--out", str(student), *TINY]) == 0
    assert load_toy(student).metadata["teacher"] == str(flow)
    assert not np.allclose(load_toy(student).sample(20, steps=1, seed=0).numpy(), run.sample(20, steps=1, seed=0))
    capsys.readouterr()
    assert run_cli(["toy", "train", "--process", "jump", "--teacher", "exact", "--out", str(tmp_path / "b"),
                    *TINY]) == 2
    err = capsys.readouterr().err
    assert "teacher" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "b").exists()


def test_a_teacher_that_blows_up_is_named_before_training():
    obj = MapDistillObjective(LIN, pool=8, grid=4).bind(teacher_velocity=lambda x, t: x / (t[:, None] - 0.5))
    with pytest.raises(ValueError, match="non-finite"):
        obj.trajectories((2,))
