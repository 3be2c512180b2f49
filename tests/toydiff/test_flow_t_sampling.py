"""FlowObjective's training-time distributions: uniform, low-noise (t = u²) and SD3's logit-normal."""

from __future__ import annotations

import pytest
import torch

from toydiff.processes import interpolants
from toydiff.processes import FlowObjective


def _times(dist: str, n: int = 20_000) -> torch.Tensor:
    obj = FlowObjective(interpolants.linear(), "velocity", t_sampling=dist)
    x0 = torch.zeros(n, 1)
    _, terms = obj.loss(lambda x, t: torch.zeros_like(x), x0, generator=torch.Generator().manual_seed(0))
    return terms.t.double()


def test_logit_normal_times_crowd_the_middle_of_the_path():
    """t = sigmoid(n), n ~ N(0, 1) (Esser et al. 2024): P(1/4 < t < 3/4) = P(|n| < ln 3) ≈ 0.728, against 1/2."""
    t = _times("logit-normal")
    share = float(((t > 0.25) & (t < 0.75)).double().mean())
    assert share == pytest.approx(0.728, abs=0.015)
    assert float(((_times("uniform") > 0.25) & (_times("uniform") < 0.75)).double().mean()) == pytest.approx(0.5, abs=0.015)
    assert 0 < float(t.min()) and float(t.max()) < 1


def test_low_noise_times_crowd_the_clean_end():
    assert float((_times("low-noise") < 0.1).double().mean()) == pytest.approx(0.1 ** 0.5, abs=0.015)


def test_unknown_time_distribution_is_refused():
    with pytest.raises(ValueError, match="t_sampling"):
        FlowObjective(interpolants.linear(), t_sampling="beta")
