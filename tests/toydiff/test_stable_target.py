"""The stable target field (Xu et al. 2023) of the flow losses: what it estimates, where it is the conditional
target, how much noise it removes, and the objective / recipe / CLI plumbing around it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

from toydiff.processes import interpolants
from toydiff.training.flow_losses import interpolant_loss, stable_target
from toydiff.processes.interpolants import PREDICTIONS
from toydiff.processes import CheckpointMismatch, FlowObjective, objective_from_meta
from toydiff.toy.datasets import get_dataset
from toydiff.toy.recipes import default_recipe

INTERPS = {"linear": interpolants.linear, "cosine": interpolants.cosine}


def _pairs(gm, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x0 = gm.sample(n, g)
    return x0, torch.randn(x0.shape, generator=g, dtype=x0.dtype), g


@pytest.mark.parametrize("path", sorted(INTERPS))
@pytest.mark.parametrize("kind", PREDICTIONS)
def test_with_a_large_reference_it_is_the_exact_marginal_target(path, kind):
    """Σ_j w_ij target(r_j) → E[target | x_t], the oracle's prediction, as the reference grows: a wrong sign in
    the weights or in the ε̂ that keeps x_t fixed moves it by O(1)."""
    gm, interp = get_dataset("two_gaussians").mixture, INTERPS[path]()
    x0, eps, g = _pairs(gm, 64, 0)
    t = torch.linspace(0.15, 0.85, 64, dtype=torch.float64)
    got = stable_target(interp, x0, eps, t, kind, reference=gm.sample(200_000, g))
    exact = gm.denoiser(interp, kind)(interp.q_sample(x0, t, eps), t)
    own = interp.target(x0, eps, kind, t)
    err, spread = (got - exact).abs().max(), (own - exact).abs().mean()
    assert err < 0.05 * max(1.0, float(exact.abs().max())), (float(err), float(spread))
    assert spread > 10 * err  # the conditional target is far from the marginal one: the test can tell them apart


@given(t=st.floats(0.0, 1.0), seed=st.integers(0, 2**16), b=st.integers(1, 12))
def test_the_estimate_keeps_x_t(t, seed, b):
    """(x̂_0, ε̂) = (its x0 target, its ε target) is a pair on the same x_t: α x̂_0 + σ ε̂ = α x_0 + σ ε."""
    gm, interp = get_dataset("8gaussians").mixture, interpolants.linear()
    x0, eps, _ = _pairs(gm, b, seed)
    tt = torch.full((b,), t, dtype=torch.float64)
    x0_hat, eps_hat = (stable_target(interp, x0, eps, tt, k) for k in ("x0", "eps"))
    torch.testing.assert_close(interp.q_sample(x0_hat, tt, eps_hat), interp.q_sample(x0, tt, eps), atol=1e-9, rtol=0)


def test_where_the_points_do_not_overlap_it_is_the_conditional_target():
    """One point, or points far apart relative to σ_t (t → 0): all weight on the own point."""
    gm, interp = get_dataset("8gaussians").mixture, interpolants.linear()
    x0, eps, _ = _pairs(gm, 32, 1)
    for t in (torch.zeros(32, dtype=torch.float64), torch.full((32,), 1e-4, dtype=torch.float64)):
        torch.testing.assert_close(stable_target(interp, x0, eps, t), interp.target(x0, eps, "velocity", t))
    t1 = torch.full((1,), 0.6, dtype=torch.float64)
    torch.testing.assert_close(stable_target(interp, x0[:1], eps[:1], t1), interp.target(x0[:1], eps[:1], "velocity", t1))


def test_it_removes_most_of_the_target_noise_at_mid_noise_without_moving_its_mean():
    """Over many batches of 512 at t = 0.5 on 8gaussians: the squared distance to the exact velocity falls by far
    more than half, and the mean error (its bias) stays near zero."""
    gm, interp = get_dataset("8gaussians").mixture, interpolants.linear()
    t = torch.full((512,), 0.5, dtype=torch.float64)
    cond, stf, bias = [], [], []
    for seed in range(8):
        x0, eps, _ = _pairs(gm, 512, 100 + seed)
        exact = gm.velocity(interp.q_sample(x0, t, eps), t, interp)
        s = stable_target(interp, x0, eps, t)
        cond.append((interp.target(x0, eps, "velocity", t) - exact).square().sum(1).mean())
        stf.append((s - exact).square().sum(1).mean())
        bias.append((s - exact).mean(0))
    assert torch.stack(stf).mean() < 0.3 * torch.stack(cond).mean()
    assert torch.stack(bias).mean(0).abs().max() < 0.05


def test_bad_input_is_refused():
    from toydiff.training.stable_target import stable_pair

    interp = interpolants.linear()
    x0, t = torch.randn(4, 2, dtype=torch.float64), torch.full((4,), 0.5, dtype=torch.float64)
    for kw, name in [({"alpha": torch.ones(3)}, "alpha"), ({"sigma": -0.5}, "sigma"),
                     ({"sigma": float("nan")}, "sigma"), ({"noise": torch.zeros(4, 3)}, "noise")]:
        args = {"noise": torch.randn_like(x0), "alpha": 0.5, "sigma": 0.5} | kw
        with pytest.raises(ValueError, match=name):
            stable_pair(x0, **args)
    with pytest.raises(ValueError, match="reference"):
        stable_target(interp, x0, torch.randn_like(x0), t, reference=torch.randn(3, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="target"):
        interpolant_loss(lambda x, t, y: x, interp, x0, target="stf", y=torch.zeros(4))
    with pytest.raises(ValueError, match="target"):
        interpolant_loss(lambda x, t: x, interp, x0, target="marginal")
    with pytest.raises(ValueError, match="target"):
        FlowObjective(interp, target="exact")
    with pytest.raises(ValueError, match="coupled"):
        FlowObjective(interp, target="stf").loss(lambda x, t: x, x0, noise=torch.randn_like(x0))


def test_the_objective_records_its_target_and_a_resume_must_match_it():
    stf = FlowObjective(interpolants.linear(), target="stf")
    meta = stf.metadata()
    assert meta["target"] == "stf" and objective_from_meta(meta).target == "stf"
    stf.check_resume(meta)
    with pytest.raises(CheckpointMismatch, match="target"):
        FlowObjective(interpolants.linear()).check_resume(meta)
    old = {k: v for k, v in meta.items() if k != "target"}  # written before targets existed: conditional
    assert objective_from_meta(old).target == "conditional"
    assert stf.with_target("conditional").target == "conditional" and stf.target == "stf"


def test_stf_training_fits_the_exact_velocity_better_than_the_conditional_target(tmp_path):
    """Same steps, same seed, 1-D recipe network: the STF-trained field is nearer the exact velocity at mid t;
    the checkpoint records the target and loads with it."""
    from toydiff.toy.run import load_toy, train_toy
    from toydiff.training.engine import TrainConfig

    errs = {}
    for target in ("conditional", "stf"):
        run = train_toy("two_gaussians", process="flow", target=target, progress=False, n_train=4_096,
                        out=tmp_path / target,
                        config=TrainConfig(epochs=20, batch_size=256, lr=5e-3, t_sampling="low-noise", ema_decay=None))
        assert run.flow.target == target and load_toy(tmp_path / target).flow.target == target
        gm = run.normalizer.oracle(run.dataset.mixture)
        x0, eps, g = _pairs(gm, 20_000, 5)
        t = 0.1 + 0.6 * torch.rand(20_000, generator=g, dtype=torch.float64)
        xt = run.flow.interp.q_sample(x0, t, eps)
        with torch.no_grad():
            errs[target] = float((run.flow_fn(False)(xt.float(), t.float()).double() - run.flow_fn(True)(xt, t))
                                 .square().mean())
    assert errs["stf"] < 0.7 * errs["conditional"], errs  # 0.33 at 20 epochs and at 40


def test_the_toy_recipes_train_flows_on_the_stable_target():
    assert default_recipe("two_gaussians").flow_target == default_recipe("8gaussians").flow_target == "stf"


def test_the_ddpm_loss_on_the_stable_target_regresses_on_the_exact_eps_star_mid_schedule():
    """VP (Ho et al. 2020): with α = √ᾱ_t, σ = √(1 − ᾱ_t) the pair's ε̂ over a large reference is ε*(x_t, t)."""
    from toydiff.processes import schedules
    from toydiff.training.stable_target import stable_pair

    gm, sched = get_dataset("two_gaussians").mixture, schedules.linear(T=1000)
    x0, eps, g = _pairs(gm, 64, 3)
    t = torch.randint(200, 800, (64,), generator=g)
    ab = sched.alpha_bars[t]
    _, eps_hat = stable_pair(x0, eps, ab.sqrt(), (1 - ab).sqrt(), reference=gm.sample(200_000, g))
    x_t = ab.sqrt()[:, None] * x0 + (1 - ab).sqrt()[:, None] * eps
    exact = gm.eps_star(x_t, ab)
    assert (eps_hat - exact).abs().max() < 0.05 < (eps - exact).abs().mean()


def test_the_ddpm_objective_trains_on_the_stable_target_when_asked():
    """The loss of a zero network is E‖goal‖²: ε's is ≈ 1 per coordinate, ε̂'s less (the posterior mean of ε)."""
    from toydiff.processes import schedules
    from toydiff.processes import VPObjective

    gm = get_dataset("8gaussians").mixture
    x0 = gm.sample(512, torch.Generator().manual_seed(0))
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    losses = {k: float(VPObjective(schedules.linear(T=1000), target=k).loss(
        zero, x0, generator=torch.Generator().manual_seed(1))[0]) for k in ("conditional", "stf")}
    assert losses["conditional"] == pytest.approx(1.0, abs=0.1) and losses["stf"] < 0.8 * losses["conditional"]
    vp = VPObjective(schedules.linear(T=1000), target="stf")
    assert vp.metadata()["target"] == "stf" and objective_from_meta(vp.metadata()).target == "stf"
    with pytest.raises(CheckpointMismatch, match="target"):
        VPObjective(schedules.linear(T=1000)).check_resume(vp.metadata())
    with pytest.raises(ValueError, match="target"):
        vp.loss(lambda x, t, y: x, x0, y=torch.zeros(512))
