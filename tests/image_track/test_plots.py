"""MNIST figures: the noised-digit grid and the class histogram draw what they are given."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import toydiff as td
from image_track import plots

S = td.schedules.cosine(100)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_noised_digits_one_row_per_image_one_column_per_step():
    x0 = torch.rand(2, 1, 8, 8) * 2 - 1
    eps = torch.randn(2, 1, 8, 8)
    fig = plots.noised_digits(x0, S, [10, 99], eps=eps, title="forward")
    assert len(fig.axes) == 2 * 3 and fig._suptitle.get_text() == "forward"
    assert [a.get_title().split("\n")[0] for a in fig.axes[:3]] == ["x_0", "t = 10", "t = 99"]
    shown = [np.asarray(a.images[0].get_array()) for a in fig.axes]
    assert np.allclose(shown[0], x0[0, 0].numpy())  # row 0: x_0, then q_sample with the given noise
    expected = td.q_sample(S, x0, 99, eps)[1, 0].numpy()
    assert np.allclose(shown[5], expected, atol=1e-6)  # row 1, last column
    with pytest.raises(ValueError, match="at least one"):
        plots.noised_digits(x0, S, [])
    with pytest.raises(ValueError, match="x0"):
        plots.noised_digits(torch.zeros(2, 8, 8), S, [1])


def test_class_histogram_bars_and_uniform_line():
    frac = np.array([0.2, 0.1, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    (ax,) = plots.class_histogram(torch.from_numpy(frac), n=50).axes
    assert [p.get_height() for p in ax.patches] == pytest.approx(frac.tolist())
    (uniform,) = ax.lines
    assert list(uniform.get_ydata()) == pytest.approx([0.1, 0.1])
    assert ax.get_title() == "Class histogram of 50 samples"
    with pytest.raises(ValueError, match="one value per class"):
        plots.class_histogram(np.zeros((2, 5)))
