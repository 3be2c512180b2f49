"""toydiff.toy.motion / figures.motion / figures.plotly_kit / drawn: the motion numbers against closed forms, the Plotly
animations' frames, and drawn points as an exact KDE mixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import toydiff as td
from toydiff.toy import motion
from toydiff.toy.drawn import drawn_dataset, kde_mixture

pytest.importorskip("plotly")
from toydiff.toy.figures import base as figure_base, plotly_kit  # noqa: E402
from toydiff.toy.figures.motion import (forward_animation_plotly, race_animation_plotly,  # noqa: E402
                                        reverse_animation_plotly)
from toydiff.toy.figures.samples import samples_vs_truth_plotly, trajectories_1d_plotly  # noqa: E402

S = td.schedules.linear(100, beta_end=0.2)
MIX2 = td.GaussianMixture.diagonal([0.5, 0.5], [[-1.5, 0.0], [1.5, 0.5]], [[0.3, 0.3], [0.4, 0.2]])


def test_forward_motion_starts_at_the_data_and_keeps_one_eps():
    x0 = MIX2.sample(300, torch.Generator().manual_seed(0))
    mo = motion.forward_motion(x0, S, frames=11, generator=torch.Generator().manual_seed(1))
    assert mo.x.shape == (11, 300, 2) and mo.timesteps[0] == -1 and mo.timesteps[-1] == S.T - 1
    np.testing.assert_allclose(mo.x[0], x0.numpy())
    # every frame is √ᾱ x0 + √(1-ᾱ) ε with the same ε
    e = [(mo.x[f] - np.sqrt(a) * x0.numpy()) / np.sqrt(1 - a) for f, a in enumerate(mo.alpha_bars) if a < 1]
    np.testing.assert_allclose(e[0], e[-1], atol=1e-9)


def test_exact_pf_ode_moves_a_gaussian_along_its_quantile():
    """For one 1-D Gaussian N(m, s²) the PF-ODE keeps z = (x_t − √ᾱ m) / √(ᾱ s² + 1 − ᾱ) fixed."""
    m, s = 1.5, 0.4
    g = td.GaussianMixture.diagonal([1.0], [[m]], [s])
    x_T = torch.tensor([[-1.0], [0.3], [2.0]], dtype=torch.float64)
    ab = np.array([S.alpha_bar(t) for t in (99, 50, 10, -1)])
    out = motion.exact_pf_ode(g, x_T, ab)
    z = (out[..., 0] - np.sqrt(ab)[:, None] * m) / np.sqrt(ab * s * s + 1 - ab)[:, None]
    np.testing.assert_allclose(z, np.broadcast_to(z[0], z.shape), atol=1e-5)


def test_ddim_converges_to_the_exact_pf_ode():
    x_T = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    errs = []
    for steps in (10, 80):
        race = motion.particle_race(MIX2, S, x_T, steps=steps)
        errs.append(np.abs(race["DDIM"].x[-1] - race["exact PF-ODE"].x[-1]).max())
        assert race["DDPM"].x.shape == race["DDIM"].x.shape == (steps + 1, 5, 2)
    assert errs[1] < errs[0] / 3


def test_exact_pf_ode_refuses_a_bad_grid():
    with pytest.raises(ValueError, match="alpha_bars"):
        motion.exact_pf_ode(MIX2, torch.zeros(1, 2), [0.5, 0.4])


def test_reverse_motion_records_every_step_and_x0_hat():
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mo = motion.reverse_motion(MIX2.eps_fn(S), x_T, S, method="ddpm", steps=8,
                               generator=torch.Generator().manual_seed(0))
    assert mo.x.shape == mo.x0_hat.shape == (9, 50, 2) and mo.timesteps[-1] == -1
    np.testing.assert_allclose(mo.x[-1], mo.x0_hat[-1])
    np.testing.assert_allclose(mo.x[0], x_T.numpy())


def test_animations_hold_one_frame_per_step_and_the_frames_differ():
    x_T = torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mo = motion.reverse_motion(MIX2.eps_fn(S), x_T, S, method="ddim", steps=6)
    fig = reverse_animation_plotly(mo, mixture=MIX2, fields={"exact": MIX2.eps_fn(S)}, grid=10, arrow_grid=5)
    assert len(fig.frames) == 7 and len(fig.layout.sliders[0].steps) == 7
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ Play", "⏸ Pause"]
    first, last = fig.frames[0].data[1].x, fig.frames[-1].data[1].x
    assert not np.allclose(first, last)
    fwd = forward_animation_plotly(motion.forward_motion(MIX2.sample(30), S, frames=5), MIX2, grid=8)
    assert len(fwd.frames) == 5
    race = race_animation_plotly(motion.particle_race(MIX2, S, x_T[:1], steps=5), mixture=MIX2, grid=8)
    assert {tr.name for tr in race.frames[-1].data if tr.name} >= {"exact PF-ODE", "DDIM", "DDPM"}


def test_one_d_animations_and_race():
    g1 = td.GaussianMixture.diagonal([0.3, 0.7], [[-1.0], [1.0]], [0.3, 0.3])
    fwd = forward_animation_plotly(motion.forward_motion(g1.sample(30), S, frames=4), g1)
    assert len(fwd.frames) == 4
    race = race_animation_plotly(motion.particle_race(g1, S, torch.zeros(1, 1), steps=4), mixture=g1)
    assert len(race.frames) == 5 and race.data[-1].type == "heatmap"


def test_animate_refuses_ragged_frames():
    p = plotly_kit.points(np.zeros((3, 2)), name="p")
    with pytest.raises(ValueError, match="same number"):
        plotly_kit.animate([[p], [p, p]], ["a", "b"])
    with pytest.raises(ValueError, match="equal length"):
        plotly_kit.animate([[p]], ["a", "b"])


def test_density_frames_match_log_prob():
    ab = [0.9, 0.3]
    xs, ys, p = figure_base.density_frames(MIX2, ab, [-2, -2], [2, 2], 7)
    pts = torch.tensor([[xs[3], ys[5]]], dtype=torch.float64)
    assert p[1, 5, 3] == pytest.approx(float(MIX2.log_prob(pts, 0.3).exp()))


@given(st.integers(5, 40), st.integers(0, 1000))
def test_kde_mixture_is_scipys_kde(n, seed):
    p = np.random.default_rng(seed).normal(size=(n, 2)) * [1.0, 0.5]
    x = np.random.default_rng(seed + 1).normal(size=(6, 2))
    mix = kde_mixture(p)
    np.testing.assert_allclose(mix.log_prob(torch.from_numpy(x)).numpy(), stats.gaussian_kde(p.T).logpdf(x.T),
                               rtol=1e-9, atol=1e-9)


def test_kde_mixture_refuses_what_has_no_density():
    with pytest.raises(ValueError, match="more than 2"):
        kde_mixture([[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="on a line"):
        kde_mixture([[0, 0], [1, 1], [2, 2], [3, 3]])
    with pytest.raises(ValueError, match="bandwidth"):
        kde_mixture([[0, 0], [1, 0], [0, 1]], bandwidth=-1)


def test_drawn_dataset_has_a_floor_and_trains():
    from toydiff.toy.models import MLPConfig
    from toydiff.toy.run import train_toy
    from toydiff.training.engine import TrainConfig

    ds = drawn_dataset([[0, 0], [1, 0.2], [0.3, 1], [-1, 0.5], [2, 2]])
    assert ds.has_oracle and ds.dim == 2 and ds.mixture.K == 5
    run = train_toy(ds, model_config=MLPConfig(dim=2, width=16, depth=1), schedule=S, n_train=256, n_val=128,
                    config=TrainConfig(epochs=1, batch_size=128), progress=False)
    assert run.history.floor is not None and run.history.floor > 0


def test_interactive_twins_of_the_toy_figures():
    g1 = td.GaussianMixture.diagonal([0.3, 0.7], [[-1.0], [1.0]], [0.3, 0.3])
    x_T = torch.randn(30, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mo = motion.reverse_motion(g1.eps_fn(S), x_T, S, method="ddim", steps=10)
    fig = trajectories_1d_plotly(mo.x, list(mo.timesteps[:-1]), mixture=g1)
    ends = g1.responsibilities(torch.from_numpy(mo.x[-1])).argmax(1)
    assert sorted(int(tr.name.split("(")[1].rstrip(")")) for tr in fig.data) == sorted(torch.bincount(ends).tolist())
    fig2 = samples_vs_truth_plotly(MIX2.sample(50), mixture=MIX2)
    assert [tr.type for tr in fig2.data] == ["heatmap", "scatter"]
    with pytest.raises(ValueError, match="path must have shape"):
        trajectories_1d_plotly(np.zeros((3, 4, 2)), [0, 1])
