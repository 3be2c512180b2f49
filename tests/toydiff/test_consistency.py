"""Consistency models (toydiff.processes.consistency): the boundary condition, CD / CT on the exact oracle, the toy
track's train → checkpoint → load → sample, resume and CLI refusals."""

import math

import numpy as np

import pytest
import torch
from hypothesis import given, settings, strategies as st

import toydiff as td
from toydiff.processes.consistency import (ConsistencyObjective, ConsistencyProcess, curriculum_points,
                                           discretisation, lognormal_index_probs)
from toydiff.processes.registry import PROCESSES, objective_from_meta, process_from_dict
from toydiff.cli import main as toydiff_main
from toydiff.toy.datasets import Normalizer, get_dataset
from toydiff.toy.models import MLPConfig
from toydiff.toy.run import load_toy, teacher_velocity, train_toy
from toydiff.training.checkpoint import CheckpointError, load_checkpoint
from toydiff.toy.models import build_mlp
from toydiff.toy.training import KIND
from toydiff.training.engine import TensorBatches, TrainConfig, Trainer

LINEAR = td.interpolants.linear()


def oracle(name="two_gaussians"):
    ds = get_dataset(name)
    return Normalizer.from_mixture(ds.mixture).oracle(ds.mixture)


def test_registered_and_metadata_round_trip():
    assert PROCESSES["consistency"] is ConsistencyProcess
    for p in (ConsistencyProcess(), ConsistencyProcess(objective_name="cd", teacher="exact", n_cd=8, rho=2.0)):
        assert process_from_dict(p.to_dict()) == p
        obj = objective_from_meta(p.objective().metadata())
        assert isinstance(obj, ConsistencyObjective) and obj.process == p
        assert p.nfe("consistency", 3) == 3 and p.nfe("consistency-jump", 1) == 1


class _Net(torch.nn.Module):
    """A network ``[B, *event], [B] -> [B, *event]`` of any rank whose output is far from zero."""

    def forward(self, x, t):
        return torch.sin(3 * x) + 1.0 + t.reshape(-1, *[1] * (x.ndim - 1)) / 1000


@settings(max_examples=15, deadline=None, derandomize=True)
@given(shape=st.sampled_from([(3, 1), (4, 2), (2, 1, 3, 3)]), seed=st.integers(0, 2**16))
def test_boundary_condition_holds_exactly_at_the_clean_end_and_only_there(shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    f = ConsistencyProcess().network_fn(_Net())
    B = shape[0]
    assert torch.equal(f(x, torch.zeros(B, dtype=torch.float64)), x)  # f(x, t_min) = x, bit for bit
    # the other end is the network's: a boundary put at t = 1 (c_skip/c_out swapped, or t reversed) fails above or here
    assert float((f(x, torch.ones(B, dtype=torch.float64)) - x).abs().min()) > 1e-3


def test_exact_oracle_one_step_sample_is_the_exact_flow_map_and_jump_reprojects_its_eps():
    gm, p = oracle(), ConsistencyProcess()
    x1 = torch.randn(8, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    phi = gm.flow_map(x1, 1.0, 0.0, LINEAR)
    x0 = p.sample(p.exact_fn(gm), x1, steps=1)
    assert torch.allclose(x0, phi, atol=1e-6, rtol=0)
    # a jump to s keeps x_1's ε̂ (= x_1 at t = 1): x_s = (1 − s) x̂_0 + s x_1; s = 0 gives x̂_0; t = 0 keeps x_t
    ones = torch.ones(8, dtype=torch.float64)
    assert torch.allclose(p.jump(lambda x, t: x0, x1, ones, ones * 0.25), 0.75 * x0 + 0.25 * x1, atol=1e-12)
    assert torch.equal(p.jump(lambda x, t: x0, x1, ones, ones * 0), x0)
    with pytest.raises(ValueError, match="s must not exceed t"):
        p.jump(lambda x, t: x0, x1, ones * 0.5, ones)


def _memo(f):
    """``f(x, t)`` evaluated once per distinct (x, t): the exact f* costs one ODE solve per call."""
    seen = {}

    def g(x, t):
        key = (x.detach().numpy().tobytes(), t.detach().numpy().tobytes())
        if key not in seen:
            seen[key] = f(x, t)
        return seen[key]

    return g


def test_cd_loss_on_the_exact_oracle_is_near_zero_and_a_perturbed_f_is_not():
    gm = oracle()
    p = ConsistencyProcess(objective_name="cd", teacher="exact", n_cd=16, rho=1.0)
    obj = p.objective().bind(teacher_velocity=gm.velocity_fn(LINEAR))
    g = torch.Generator().manual_seed(1)
    x0, noise = gm.sample(16, g), torch.randn(16, 1, generator=g, dtype=torch.float64)
    times, exact = obj.times(), _memo(p.exact_fn(gm, rtol=1e-7, atol=1e-7))
    i = torch.full((16,), 9)  # one interval for the whole batch: one exact solve per side
    loss, terms = obj.pair_loss(exact, x0, i, times, noise)
    bent, _ = obj.pair_loss(lambda x, t: exact(x, t) + 0.2 * t[:, None] * x, x0, i, times, noise)
    assert float(loss) < 2e-3 and float(bent) > 10 * float(loss)
    assert torch.allclose(terms.t, times[10].float().expand(16))
    # a target read at the wrong end of the interval (f(x_{t_i}, t_{i+1})) is far from consistent
    late, _ = obj.pair_loss(lambda x, t: exact(x, torch.where(t == times[9], times[10], t)), x0, i, times, noise)
    assert float(late) > 10 * float(loss)


def test_curriculum_and_noise_levels():
    assert [curriculum_points(k, 800, 10, 80) for k in (0, 199, 200, 400, 799)] == [11, 11, 21, 41, 81]
    t = discretisation(11, rho=2.0)
    assert float(t[0]) == 0.0 and float(t[-1]) == 1.0 and bool((t.diff() > 0).all())
    p = lognormal_index_probs(t, -1.1, 2.0)
    assert p.shape == (10,) and math.isclose(float(p.sum()), 1.0) and bool((p > 0).all())
    with pytest.raises(ValueError, match="teacher"):
        ConsistencyProcess.from_keywords(objective="ct", teacher="exact")


SMALL = dict(model_config=MLPConfig(dim=2, width=16, depth=1), n_train=256, n_val=40, progress=False)


@pytest.fixture(scope="module")
def ct_run(tmp_path_factory):
    """5 steps of CT on moons (no exact mixture: no exact floor to solve for)."""
    out = tmp_path_factory.mktemp("cm") / "run"
    train_toy("moons", config=TrainConfig(epochs=1, max_steps=5, batch_size=64), out=out,
              process="consistency", objective="ct", **SMALL)
    return out


def test_train_checkpoint_load_sample(ct_run, capsys):
    _, meta = load_checkpoint(ct_run / "checkpoint.safetensors")
    assert (meta["process"], meta["objective"], meta["teacher"], meta["step"]) == ("consistency", "ct", None, 5)
    run = load_toy(ct_run)
    assert run.process.name == "consistency" and run.process.objective_name == "ct"
    x = run.sample(50, steps=2, seed=0)
    assert x.shape == (50, 2) and bool(torch.isfinite(x).all())
    code = toydiff_main(["toy", "sample", "--run", str(ct_run), "--steps", "2", "--n", "50", "--out",
                         str(ct_run.parent / "x.npy")])
    assert code == 0 and "consistency" in capsys.readouterr().out
    assert np.allclose(np.load(ct_run.parent / "x.npy"), x.numpy())


def test_resume_refuses_another_objective_and_restores_the_curriculum_step(ct_run):
    ckpt = ct_run / "checkpoint.safetensors"
    _, meta = load_checkpoint(ckpt)
    cd = ConsistencyProcess(objective_name="cd", teacher="exact").objective()
    trainer = Trainer(build_mlp(SMALL["model_config"]), cd, TensorBatches(torch.zeros(8, 2), 4), TrainConfig(),
                      kind=KIND)
    with pytest.raises(CheckpointError, match="objective 'ct' there, 'cd' here"):
        trainer.load(ckpt)
    obj = ConsistencyProcess.from_dict(meta).objective()
    obj.check_resume(meta)
    assert obj.step == 5 and obj.teacher is None


def test_distillation_teachers(ct_run):
    ds = get_dataset("8gaussians")
    norm = Normalizer.from_mixture(ds.mixture)
    gm = norm.oracle(ds.mixture)
    v = teacher_velocity("exact", ds, gm, norm)
    x, t = torch.randn(5, 2, dtype=torch.float64), torch.full((5,), 0.3, dtype=torch.float64)
    assert torch.equal(v(x, t), gm.velocity_fn(LINEAR)(x, t))
    assert teacher_velocity(None, ds, gm, norm) is None
    with pytest.raises(ValueError, match="must be a linear-path flow run"):
        teacher_velocity(str(ct_run), get_dataset("moons"), None, norm)
    with pytest.raises(ValueError, match="objective 'cd' needs its teacher"):
        ConsistencyProcess(objective_name="cd", teacher="exact").objective().teacher_step(x, t, t * 0)


@pytest.mark.parametrize("flags, words", [
    (["--objective", "cd", "--teacher", "/nonexistent/run"], "no file or folder"),
    (["--objective", "ct", "--teacher", "exact"], "teacher applies to objective 'cd'"),
])
def test_cli_refuses_a_bad_teacher_in_one_line(tmp_path, capsys, flags, words):
    code = toydiff_main(["toy", "train", "--process", "consistency", *flags, "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_loss_figure_title_reads_past_empty_buckets():
    from toydiff.toy.figures.training import LossData, bucket_title

    nan = float("nan")
    last, floor = [nan, 0.1, nan, 0.9, nan, 0.3], [nan, 0.05, nan, 0.2, nan, 0.25]  # 3 held-out times of 6 buckets
    d = LossData([1], [1.0], [1.0], 0.5, (np.arange(6) + 0.5) / 6, last, last, floor)
    assert bucket_title(d) == "held-out loss by t bucket: highest at t/T ≈ 0.58; most above the floor at t/T ≈ 0.58 (+0.7)"


def test_cli_calls_the_held_out_reference_what_it_is(tmp_path, capsys):
    code = toydiff_main(["toy", "train", "--dataset", "two_gaussians", "--process", "consistency", "--out",
                         str(tmp_path / "r"), "--epochs", "1", "--n-train", "64", "--n-val", "32", "--batch-size",
                         "32", "--width", "8", "--depth", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "x the exact f*'s value" in out and "Bayes floor" not in out
