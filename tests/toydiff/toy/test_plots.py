"""Every figure renders from real data and refuses input of the wrong rank."""

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

import toydiff as td
from toydiff import schedules
from toydiff.toy import plots
from toydiff.toy.datasets import get_dataset
from toydiff.training import History

S = schedules.constant(T=60, beta=0.08)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_1d_figures():
    gm = get_dataset("two_gaussians").mixture
    g = torch.Generator().manual_seed(0)
    x = gm.sample(500, g)
    fig = plots.kde_vs_histogram(x, mixture=gm, true_samples=gm.sample(500, g))
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) > 10 and len(fig.axes[0].lines) == 2
    rec = td.TrajectoryRecorder(indices=range(20))
    td.sample(gm.eps_fn(S), torch.randn(50, 1, generator=g, dtype=torch.float64), S, callback=rec, generator=g)
    fig = plots.trajectories(rec.path(), rec.timesteps, mixture=gm)
    assert len(fig.axes[0].lines) >= 20
    with pytest.raises(ValueError, match="1-D"):
        plots.kde_vs_histogram(torch.zeros(10, 2))
    with pytest.raises(ValueError, match="path"):
        plots.trajectories(torch.zeros(5, 3, 2), range(4))


@pytest.mark.parametrize("name", ["two_gaussians", "8gaussians"])
def test_forward_density(name):
    fig = plots.forward_density(get_dataset(name).mixture, S, n_samples=300, n_panels=3)
    assert len(fig.axes) >= 3


def test_schedule_embedding_and_loss_figures():
    fig = plots.schedule_curves(schedules.linear(), schedules.cosine())
    assert len(fig.axes) == 3 and len(fig.axes[1].lines) == 2
    assert len(plots.embedding_heatmap(32, 100).axes) >= 2
    h = History(records=[{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "val_by_bucket": [0.5] * 10}
                         for e in (1, 2, 3)], floor=0.2, floor_by_bucket=[0.1] * 10)
    fig = plots.loss_curves(h)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="no epochs"):
        plots.loss_curves(History())
    with pytest.raises(ValueError):
        plots.schedule_curves()


def test_2d_figures():
    gm = get_dataset("8gaussians").mixture
    x = gm.sample(300, torch.Generator().manual_seed(0))
    assert isinstance(plots.scatter_with_density(x, mixture=gm), Figure)
    moons = get_dataset("moons").sample(300, torch.Generator().manual_seed(0))
    assert isinstance(plots.scatter_with_density(moons, true_samples=moons), Figure)
    fig = plots.vector_fields({"exact": gm.eps_fn(S), "zero": lambda x, t: torch.zeros_like(x)}, S, t=10, n=7)
    assert len(fig.axes) >= 2
    with pytest.raises(ValueError, match="2-D"):
        plots.scatter_with_density(torch.zeros(10, 1))
