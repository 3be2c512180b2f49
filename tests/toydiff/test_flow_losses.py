"""toydiff.training.flow_losses: targets, the oracle as the minimiser, the floor, time sampling, bad input."""

import pytest
import torch

import toydiff as td
from toydiff.processes import interpolants as I
from toydiff.training.flow_losses import flow_matching_loss, interpolant_loss, interpolant_loss_floor, sample_times

GM = td.GaussianMixture.diagonal([0.3, 0.7], [[-1.0, 0.0], [1.0, 1.0]], [0.5, 0.3])


def test_flow_matching_target_is_eps_minus_x0():
    x0 = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.rand(6, dtype=torch.float64)
    seen = {}

    def model(x_t, tt):
        seen["x_t"] = x_t
        return torch.zeros_like(x_t)

    terms = flow_matching_loss(model, x0, t=t, noise=noise)
    torch.testing.assert_close(seen["x_t"], (1 - t)[:, None] * x0 + t[:, None] * noise)
    torch.testing.assert_close(terms.per_sample, (noise - x0).float().pow(2).mean(dim=1))
    assert terms.t is t


@pytest.mark.parametrize("kind", I.PREDICTIONS)
def test_the_exact_oracle_minimises_the_loss(kind):
    interp = I.cosine()
    g = torch.Generator().manual_seed(0)
    x0 = GM.sample(4000, g)
    t, noise = torch.rand(4000, dtype=torch.float64, generator=g) * 0.9 + 0.05, torch.randn(4000, 2, generator=g,
                                                                                         dtype=torch.float64)
    best = GM.denoiser(interp, kind)
    base = interpolant_loss(best, interp, x0, kind=kind, t=t, noise=noise).loss
    for shift in (0.05, -0.05):
        worse = interpolant_loss(lambda x, tt: best(x, tt) + shift, interp, x0, kind=kind, t=t, noise=noise).loss
        assert worse > base


def test_floor_matches_the_loss_of_the_oracle_and_vp_floor():
    fm = I.linear()
    floor = interpolant_loss_floor(GM, fm, "velocity", t=torch.tensor([0.25, 0.5]), n=2000,
                                   generator=torch.Generator().manual_seed(0))
    assert floor.per_t.shape == (2,) and (floor.per_t > 0).all() and (floor.stderr < 0.05 * floor.per_t).all()
    # ε-loss under vp(S) at t_k is the VP ε-loss at step k: the same Bayes floor
    s = td.schedules.constant(T=250)
    k = 49
    vp_floor = GM.bayes_optimal_loss(s, t=[k], n=20000, generator=torch.Generator().manual_seed(1))
    fl = interpolant_loss_floor(GM, I.vp(s), "eps", t=torch.tensor([(k + 1) / 250]), n=20000,
                                generator=torch.Generator().manual_seed(2))
    assert abs(float(fl.per_t[0]) - float(vp_floor.per_t[0])) < 4 * float(fl.stderr[0] + vp_floor.stderr[0])


def test_sample_times():
    t = sample_times(1000, generator=torch.Generator().manual_seed(0))
    assert t.shape == (1000,) and t.dtype == torch.float32 and 0 <= float(t.min()) and float(t.max()) <= 1
    ln = sample_times(4000, generator=torch.Generator().manual_seed(0), distribution="logit-normal")
    assert ((ln - 0.5).abs() < 0.25).float().mean() > ((t - 0.5).abs() < 0.25).float().mean()


def test_bad_input_names_the_argument():
    x0 = torch.zeros(4, 2)
    fm = I.linear()
    with pytest.raises(ValueError, match="kind must be one of"):
        interpolant_loss(lambda x, t: x, fm, x0, kind="score")
    with pytest.raises(ValueError, match="t must lie in"):
        interpolant_loss(lambda x, t: x, fm, x0, t=torch.full((4,), 1.5))
    with pytest.raises(ValueError, match="t must have shape"):
        interpolant_loss(lambda x, t: x, fm, x0, t=torch.full((3,), 0.5))
    with pytest.raises(ValueError, match="model returned shape"):
        interpolant_loss(lambda x, t: x[:, :1], fm, x0)
    with pytest.raises(TypeError, match="interp must be an Interpolant"):
        interpolant_loss(lambda x, t: x, td.schedules.constant(T=250), x0)
    with pytest.raises(ValueError, match="distribution must be one of"):
        sample_times(4, distribution="cosine")
