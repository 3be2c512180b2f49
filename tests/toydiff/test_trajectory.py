import pytest
import torch

import toydiff as td

S = td.schedules.constant()
GM = td.GaussianMixture([1, 2], [[-4.0], [4.0]], [[[1.0]], [[1.0]]])


def test_recorder_keeps_only_what_it_was_asked_for():
    x_T = torch.randn(1000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rec = td.TrajectoryRecorder(indices=[0, 5, 7], steps=[0, 10, -1])
    out = td.sample(GM.eps_fn(S), x_T, S, method="ddpm", callback=rec, generator=torch.Generator().manual_seed(1))
    assert rec.x_t.shape == (3, 3, 1) and rec.x0_hat.shape == (3, 3, 1)
    assert rec.timesteps == [249, 239, 0] and rec.steps == [0, 10, 249]
    assert torch.equal(rec.x_t[0], x_T[[0, 5, 7]])
    assert torch.equal(rec.final, out[[0, 5, 7]])
    assert rec.path().shape == (4, 3, 1)


def test_full_path_and_x0_estimates_converge_to_the_sample():
    x_T = torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gm = td.GaussianMixture.diagonal([1, 1], [[-2.0, 0.0], [2.0, 0.0]], 0.5)
    rec = td.TrajectoryRecorder(keep=("x_t", "x0_hat", "eps"))
    out = td.sample(gm.eps_fn(S), x_T, S, method="ddim", steps=25, callback=rec)
    path = rec.path()
    assert path.shape == (26, 20, 2) and rec.eps.shape == (25, 20, 2)
    assert torch.equal(path[-1], out)
    err = (rec.x0_hat - out).norm(dim=-1).mean(dim=-1)
    assert err[-1] < 0.05 * err[0], "x0_hat sharpens towards the final sample"


def test_recorder_errors():
    with pytest.raises(ValueError, match="keep"):
        td.TrajectoryRecorder(keep=("x_T",))
    rec = td.TrajectoryRecorder(keep=("x_t",))
    with pytest.raises(RuntimeError):
        rec.x_t
    td.sample(GM.eps_fn(S), torch.zeros(2, 1), S, steps=3, callback=rec)
    with pytest.raises(KeyError):
        rec.x0_hat
