"""The few-step judge (toydiff.evaluation.few_step): the exact map's pathwise error is 0, a one-step Euler's is
the closed form on one Gaussian (the flow map of a Gaussian is affine), a process adapter over the exact average
velocity is exact, and methods that jump the wrong way or stop one step short of the clean end are caught."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import toydiff as td
from toydiff.evaluation import few_step as fs

MU, S = 1.0, 2.0  # one Gaussian N(MU, S²) in 1-D
LIN = td.interpolants.linear()
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def one():
    return td.GaussianMixture([1.0], [[MU]], [[[S * S]]])


@pytest.fixture(scope="module")
def ring():
    a = np.linspace(0, 2 * np.pi, 4, endpoint=False)
    return td.GaussianMixture.diagonal([1.0] * 4, np.c_[np.cos(a), np.sin(a)].tolist(), [[0.3, 0.3]] * 4)


def x(n: int, d: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def euler_closed_form(x_t: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One Euler step t → 0 on the exact velocity of N(MU, S²) is E[x_0 | x_t]
    = MU + (1−t) S²/v (x_t − (1−t) MU); the exact map is MU + S (x_t − (1−t) MU)/√v, v = (1−t)² S² + t² (both affine in x_t)."""
    v = (1 - t) ** 2 * S * S + t * t
    c = x_t - (1 - t) * MU
    return MU + (1 - t) * S * S / v * c, MU + S / math.sqrt(v) * c


def test_exact_map_has_zero_error_and_one_euler_step_the_closed_form(one):
    x_1 = x(200)
    exact = fs.ExactMap(one, LIN)
    assert fs.pathwise_error(exact.sample(x_1, 1), one.flow_map(x_1, 1.0, 0.0, LIN)) == 0.0
    euler = fs.OracleSolver(one, LIN, "euler", nfe=1)
    for t in (1.0, 0.5):
        x_t = MU * (1 - t) + math.sqrt((1 - t) ** 2 * S * S + t * t) * x_1  # a draw of the marginal at t
        want_step, want_map = euler_closed_form(x_t, t)
        got = euler.jump(x_t, t, 0.0)
        torch.testing.assert_close(got, want_step, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(exact.jump(x_t, t, 0.0), want_map, rtol=1e-7, atol=1e-7)
        err = fs.pathwise_error(got, exact.jump(x_t, t, 0.0), fs.data_std(one))
        assert err > 0.05
        assert err == pytest.approx(float(((want_step - want_map) / S).pow(2).mean().sqrt()), rel=1e-6)
    # from pure noise one Euler step is the mean: the error is RMS(x_1) in data std
    assert fs.pathwise_error(euler.sample(x_1, 1), exact.sample(x_1, 1), fs.data_std(one)) == pytest.approx(
        float(x_1.pow(2).mean().sqrt()), rel=1e-7)


def test_the_error_against_t_curve_matches_the_closed_form(one):
    ts, n = (0.25, 1.0), 300
    curves = fs.jump_error_curves([fs.OracleSolver(one, LIN, "euler"), fs.ExactMap(one, LIN)], one, LIN, ts, n=n)
    assert curves["exact map"].max() < 1e-8  # its own solve, one t at a time, against the reference's joint solve
    g = torch.Generator().manual_seed(0)  # jump_error_curves' draws: the same generator, t after t
    for i, t in enumerate(ts):
        step, exact = euler_closed_form(fs.marginal_draws(one, LIN, t, n, g), t)
        assert curves["Euler"][i] == pytest.approx(float(((step - exact) / S).pow(2).mean().sqrt()), rel=1e-6)
    assert curves["Euler"][0] < curves["Euler"][1]  # the error of one jump grows toward the noise end


class Swapped(fs.ExactMap):
    """The exact map run the wrong way: from s to t."""

    def sample(self, x_1, nfe=None, generator=None):
        return self.gm.flow_map(x_1, 0.0, 1.0, self.process)

    def jump(self, x_t, t, s):
        return self.gm.flow_map(x_t, s, t, self.process)


def test_a_method_jumping_the_wrong_way_is_caught(ring):
    ok, bad = fs.ExactMap(ring, LIN), Swapped(ring, LIN, label="swapped")
    curves = fs.jump_error_curves([ok, bad], ring, LIN, (0.5, 1.0), n=64)
    assert curves["exact map"].max() < 1e-8 and curves["swapped"].min() > 0.3
    res = fs.judge([bad, fs.OracleSolver(ring, LIN, "heun")], ring, LIN, (1, 2), n=64, seeds=1,
                   distance=lambda a, b: float(np.abs(a.mean(0) - b.mean(0)).sum()))
    assert np.mean(res.rows[("exact map (the floor)", "∞")]["path"]) == 0.0
    assert np.mean(res.rows[("swapped", 1)]["path"]) > 0.3
    assert res.rows[("Heun (Karras)", 1)] is None and np.mean(res.rows[("Heun (Karras)", 2)]["path"]) > 0.05
    table = fs.judge_table(res)
    assert "| Heun (Karras) | 1 | — |" in table and table.count("\n") == len(res.rows) + 2


class MeanFlowProcess:
    """A throw-away few-step process (MeanFlow, Geng et al. 2025): x_s = x_t − (t − s) u(x_t, s, t)."""

    name = "meanflow-test"

    def jump(self, fn, x_t, t, s):
        return x_t - (t - s)[:, None] * fn(x_t, s, t)

    def sample(self, fn, x_T, *, steps, generator=None):
        n, x = x_T.shape[0], x_T
        for i in range(steps):
            t, s = torch.full((n,), 1 - i / steps, dtype=x.dtype), torch.full((n,), 1 - (i + 1) / steps, dtype=x.dtype)
            x = self.jump(fn, x, t, s)
        return x


class ConsistencyProcess:
    """A throw-away consistency process (Song et al. 2023): the jump to 0 is f(x_t, t)."""

    name = "consistency-test"

    def jump(self, fn, x_t, t, s):
        return fn(x_t, t)

    def sample(self, fn, x_T, *, steps, generator=None):
        return fn(x_T, torch.ones(x_T.shape[0], dtype=x_T.dtype))


def test_a_process_adapter_over_the_exact_networks_is_exact_and_an_off_by_one_is_caught(ring):
    u = fs.ProcessMethod(MeanFlowProcess(), lambda x_t, r, t: ring.average_velocity(x_t, r, t, LIN), "meanflow")
    cons = fs.ProcessMethod(ConsistencyProcess(), ring.consistency_fn(LIN), "consistency")
    # the boundary one step short: f(x_t, t) = Φ(x_t, t → 0.05), not → 0
    short = fs.ProcessMethod(ConsistencyProcess(), lambda x_t, t: ring.flow_map(x_t, t, 0.05, LIN), "short")
    curves = fs.jump_error_curves([u, cons, short], ring, LIN, (0.5, 1.0), n=48)
    assert curves["meanflow"].max() < 1e-6 and curves["consistency"].max() < 1e-9 and curves["short"].min() > 0.02
    x_1 = x(48, 2)
    exact = ring.flow_map(x_1, 1.0, 0.0, LIN)
    assert fs.pathwise_error(u.sample(x_1, 2), exact) < 1e-6
    assert isinstance(u, fs.FewStepMethod) and isinstance(fs.OracleSolver(ring, LIN), fs.FewStepMethod)
    run = SimpleNamespace(process=MeanFlowProcess(), denoiser_fn=lambda: u.fn, metadata={"process": "meanflow-test",
                                                                                         "objective": "exact"})
    assert fs.ProcessMethod.of_run(run, source="runs/mf/checkpoint.safetensors").label == "meanflow-test/exact (mf)"
    with pytest.raises(TypeError, match="few-step process"):
        fs.ProcessMethod(td.interpolants.linear(), lambda *a: a)


def test_bad_input_is_refused(one):
    with pytest.raises(ValueError, match="nfe=1"):
        fs.OracleSolver(one, LIN, "heun").sample(x(4), 1)
    with pytest.raises(ValueError, match="s must be below t"):
        fs.OracleSolver(one, LIN).jump(x(4), 0.2, 0.6)
    with pytest.raises(ValueError, match="method"):
        fs.OracleSolver(one, LIN, "ddpm")
    with pytest.raises(ValueError, match="same shape"):
        fs.pathwise_error(x(4), x(5))
    with pytest.raises(ValueError, match="t must lie"):
        fs.OracleSolver(one, LIN).jump(x(4), 1.5, 0.0)
    labels = [m.label for m in fs.at_budgets([fs.OracleSolver(one, LIN, "heun"), fs.ExactMap(one, LIN)], (1, 2, 4))]
    assert labels == ["Heun (Karras) · 2 NFE", "Heun (Karras) · 4 NFE", "exact map"]


def test_a_run_solver_on_the_exact_field_is_the_oracle_solver_and_refuses_a_vp_run():
    ring = td.GaussianMixture.diagonal([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [[0.2, 0.2], [0.2, 0.2]])
    x1 = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for method, nfe in (("euler", 3), ("heun", 4), ("dpm++2m", 2)):
        run = fs.RunSolver(ring, LIN, method, nfe=nfe, velocity=ring.velocity_fn(LIN))
        oracle = fs.OracleSolver(ring, LIN, method, nfe=nfe)
        assert torch.equal(run.sample(x1, nfe), oracle.sample(x1, nfe))
        assert torch.equal(run.jump(x1, 0.7, 0.1), oracle.jump(x1, 0.7, 0.1))
    with pytest.raises(TypeError, match="velocity"):
        fs.RunSolver(ring, LIN, "euler")

    class VPRun:  # what RunSolver.of_run reads of a loaded DDPM run
        process = td.processes.VPProcess(td.schedules.linear(T=50))

    with pytest.raises(TypeError, match="continuous-time"):
        fs.RunSolver.of_run(VPRun())
