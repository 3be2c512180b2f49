"""Every figure renders from real data and refuses input of the wrong rank."""

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

import toydiff as td
from toydiff.processes import schedules
from toydiff.toy.figures.samples import (kde_vs_histogram_mpl, samples_vs_truth_mpl, scatter_with_density_mpl,
                                         trajectories_1d_mpl, trajectories_2d_mpl)
from toydiff.toy.figures.sampling import convergence_mpl
from toydiff.toy.figures.schedules import embedding_mpl, forward_density_mpl, schedule_curves_mpl
from toydiff.toy.figures.training import eps_comparison_mpl, loss_curves_mpl, vector_fields_mpl
from toydiff.toy.datasets import get_dataset
from toydiff.training.engine import History

S = schedules.constant(T=60, beta=0.08)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_1d_figures():
    gm = get_dataset("two_gaussians").mixture
    g = torch.Generator().manual_seed(0)
    x = gm.sample(500, g)
    fig = kde_vs_histogram_mpl(x, mixture=gm, true_samples=gm.sample(500, g))
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) > 10 and len(fig.axes[0].lines) == 2
    rec = td.TrajectoryRecorder(indices=range(20))
    td.sample(gm.eps_fn(S), torch.randn(50, 1, generator=g, dtype=torch.float64), S, callback=rec, generator=g)
    fig = trajectories_1d_mpl(rec.path(), rec.timesteps, mixture=gm)
    assert len(fig.axes[0].lines) >= 20
    with pytest.raises(ValueError, match="1-D"):
        kde_vs_histogram_mpl(torch.zeros(10, 2))
    with pytest.raises(ValueError, match="path"):
        trajectories_1d_mpl(torch.zeros(5, 3, 2), range(4))


@pytest.mark.parametrize("name", ["two_gaussians", "8gaussians"])
def test_forward_density(name):
    fig = forward_density_mpl(get_dataset(name).mixture, S, n_samples=300, n_panels=3)
    assert len(fig.axes) >= 3


def test_schedule_embedding_and_loss_figures():
    fig = schedule_curves_mpl(schedules.linear(), schedules.cosine())
    assert len(fig.axes) == 3 and len(fig.axes[1].lines) == 2
    assert len(embedding_mpl(32, 100).axes) >= 2
    # the by-bucket loss peaks in the third bucket (t/T ≈ 0.25), its excess over the floor in the second (0.15)
    by_bucket = [0.3, 0.5, 0.6, 0.4, 0.3, 0.2, 0.2, 0.1, 0.1, 0.1]
    floor = [0.2, 0.1, 0.35, 0.3, 0.25, 0.15, 0.15, 0.05, 0.05, 0.05]
    h = History(records=[{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "val_by_bucket": by_bucket}
                         for e in (1, 2, 3)], floor=0.2, floor_by_bucket=floor)
    fig = loss_curves_mpl(h)
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel() == "ε-prediction MSE"
    title = fig.axes[1].get_title()
    assert "highest at t/T ≈ 0.25" in title and "most above the floor at t/T ≈ 0.15" in title, title
    assert "low t" not in title and fig.axes[0].get_legend().get_texts()[0].get_text() == "train"
    fig = loss_curves_mpl(h, meta={"process": "flow", "prediction": "velocity", "target": "stf"})
    assert fig.axes[0].get_ylabel() == "velocity-prediction MSE" and "highest at t ≈ 0.25" in fig.axes[1].get_title()
    assert "below the floor" in fig.axes[0].get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="no epochs"):
        loss_curves_mpl(History())
    with pytest.raises(ValueError):
        schedule_curves_mpl()


def test_2d_figures():
    gm = get_dataset("8gaussians").mixture
    x = gm.sample(300, torch.Generator().manual_seed(0))
    fig = scatter_with_density_mpl(x, mixture=gm)
    (ax,) = fig.axes
    (pts,) = ax.collections[-1:]
    assert pts.get_offsets().shape == (300, 2) and len(ax.collections) > 1  # the samples over density contours
    moons = get_dataset("moons").sample(300, torch.Generator().manual_seed(0))
    ax = scatter_with_density_mpl(moons, true_samples=moons).axes[0]
    assert [c.get_offsets().shape for c in ax.collections] == [(300, 2), (300, 2)]  # truth, then samples
    fig = vector_fields_mpl({"exact": gm.eps_fn(S), "zero": lambda x, t: torch.zeros_like(x)}, S, t=10, n=7)
    assert len(fig.axes) >= 2
    with pytest.raises(ValueError, match="2-D"):
        scatter_with_density_mpl(torch.zeros(10, 1))


def test_samples_vs_truth_picks_the_figure_by_rank():
    gm1, gm2 = get_dataset("two_gaussians").mixture, get_dataset("8gaussians").mixture
    g = torch.Generator().manual_seed(0)
    ax = samples_vs_truth_mpl(gm1.sample(200, g), mixture=gm1, title="one").axes[0]
    assert ax.get_title() == "one" and len(ax.patches) > 10  # a histogram
    ax = samples_vs_truth_mpl(gm2.sample(200, g), mixture=gm2, title="two").axes[0]
    assert ax.get_title() == "two" and ax.collections[-1].get_offsets().shape == (200, 2)  # a scatter


def test_eps_comparison_draws_the_learned_and_exact_noise():
    gm = get_dataset("two_gaussians").mixture
    exact = gm.eps_fn(S)
    fig = eps_comparison_mpl(lambda x, t: exact(x.double(), t), S, 10, oracle=gm)
    ax, density = fig.axes
    learned, star = ax.lines
    assert learned.get_xdata().shape == (400,) and "t = 10" in ax.get_title()
    assert abs(learned.get_ydata() - star.get_ydata()).max() < 1e-5  # the exact ε* against itself
    assert density.get_ylabel() == "density of x_t"
    assert len(eps_comparison_mpl(lambda x, t: torch.zeros_like(x), S, 10).axes) == 1  # no oracle: no density
    gm2 = get_dataset("8gaussians").mixture
    fig = eps_comparison_mpl(lambda x, t: torch.zeros_like(x), S, 10, oracle=gm2)
    assert [a.get_title().split(":")[0] for a in fig.axes] == ["learned ε̂", "exact ε*"]
    with pytest.raises(ValueError, match="t must be in"):
        eps_comparison_mpl(exact, S, S.T, oracle=gm)


def test_trajectories_2d_and_convergence():
    path = torch.randn(6, 50, 2)
    ax = trajectories_2d_mpl(path, n=10, title="heun").axes[0]
    assert len(ax.lines) == 10 and ax.get_title() == "heun (10 samples)"
    end, start = ax.collections
    assert (end.get_offsets() == path[-1, :10].numpy()).all() and (start.get_offsets() == path[0, :10].numpy()).all()
    with pytest.raises(ValueError, match="path"):
        trajectories_2d_mpl(torch.zeros(5, 3, 1))
    with pytest.raises(TypeError, match="n must be an int"):
        trajectories_2d_mpl(path, n=2.5)

    fig = convergence_mpl({"ddpm": ([5, 10], [0.4, 0.2]), "ddim": ([5, 10], [0.3, 0.1])}, 0.05, metric="W1",
                            xlabel="network evaluations")
    (ax,) = fig.axes
    ddpm, ddim, floor = ax.lines
    assert list(ddim.get_ydata()) == [0.3, 0.1] and list(floor.get_ydata()) == [0.05, 0.05]
    assert ax.get_xscale() == ax.get_yscale() == "log" and ax.get_ylabel() == "W1 to the truth"
    assert ax.get_xlabel() == "network evaluations"
    with pytest.raises(ValueError, match="2 x values"):
        convergence_mpl({"ddpm": ([5, 10], [0.4])})
    with pytest.raises(ValueError, match="at least one"):
        convergence_mpl({})
