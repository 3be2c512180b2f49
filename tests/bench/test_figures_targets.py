"""The conditional-vs-stable-target figure: its numbers (exact target noise, trained field error) and its panels."""


import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from toydiff.toy.models import MLPConfig
from toydiff.toy.run import oracle_run, train_toy
from toydiff.training.engine import TrainConfig

import figures_targets as _fig  # noqa: E402  (bench/, on sys.path by conftest.py)
T_BINS, field_errors, target_noise, targets_figure = _fig.T_BINS, _fig.field_errors, _fig.target_noise, _fig.targets_figure


def test_the_stable_target_is_less_noisy_mid_path_and_the_same_at_the_clean_end():
    noise = target_noise("8gaussians", t=(0.001, 0.5), n_batches=2)
    cond, stf = noise["conditional"], noise["stf"]
    assert stf[1] < 0.3 * cond[1]  # mid path: the batch's points overlap at x_t
    assert stf[0] == pytest.approx(cond[0], rel=0.05)  # t → 0: every point alone, the conditional target
    assert np.all(cond > 0)


def test_field_errors_per_bin_of_a_trained_flow_and_refusals():
    run = train_toy("two_gaussians", process="flow", model_config=MLPConfig(dim=1, width=16, depth=1), n_train=600,
                    n_val=200, progress=False, config=TrainConfig(epochs=2, warmup_steps=2))
    err = field_errors(run, n=5_000)
    assert err.shape == (len(T_BINS) - 1,) and np.all(err > 0) and np.all(np.isfinite(err))
    with pytest.raises(ValueError, match="trained flow run"):
        field_errors(oracle_run("two_gaussians"))
    with pytest.raises(ValueError, match="oracle"):
        target_noise("moons")


def test_the_figure_has_a_noise_and_an_error_panel_per_data_set():
    noise = {"8gaussians": target_noise("8gaussians", t=(0.2, 0.5), n_batches=1)}
    errors = {"8gaussians": {"conditional": np.ones(len(T_BINS) - 1), "stf": np.full(len(T_BINS) - 1, 0.5)}}
    fig = targets_figure(noise, errors)
    axes = fig.get_axes()
    assert len(axes) == 2 and all(len(ax.get_lines()) == 2 for ax in axes)
    assert "noise" in axes[0].get_title() and "trained" in axes[1].get_title()
    with pytest.raises(ValueError, match="same"):
        targets_figure(noise, {})
