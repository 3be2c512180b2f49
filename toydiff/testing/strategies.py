"""Hypothesis strategies for diffusion code: schedules, step plans, well-conditioned Gaussian mixtures, batch shapes.

Needs ``hypothesis`` (a test dependency, not one of toydiff's). Every strategy shrinks towards the simple case
(few steps, one component, one dimension, a batch of one)::

    from hypothesis import given
    from toydiff.testing import strategies as tds

    @given(problem=tds.problems())
    def test_my_sampler_runs_everywhere(problem): ...
"""

from __future__ import annotations

import math
import warnings

import torch
from hypothesis import strategies as st

from toydiff.processes import schedules as sch
from toydiff.exact.mixture import GaussianMixture
from toydiff.processes.schedules import SPACINGS, NoiseSchedule
from toydiff.testing.oracle import Problem

__all__ = ["schedules", "step_counts", "spacings", "mixtures", "event_shapes", "batch_shapes", "problems"]


def _quiet(build, *args, **kwargs) -> NoiseSchedule:
    """A schedule built without its terminal-SNR warning (a strategy draws many that keep some signal)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build(*args, **kwargs)


@st.composite
def schedules(draw, min_T: int = 20, max_T: int = 1000) -> NoiseSchedule:
    """A schedule from every builder (linear, cosine, sigmoid, constant) or from_betas (a random increasing β)."""
    T = draw(st.integers(min_T, max_T))
    kind = draw(st.sampled_from(("linear", "cosine", "sigmoid", "constant", "from_betas")))
    if kind == "cosine":
        return _quiet(sch.cosine, T, s=draw(st.floats(0.0, 0.02)))
    top = min(0.5, max(0.05, 8.0 / T))  # a short schedule needs large β to drown the data
    if kind == "constant":
        return _quiet(sch.constant, T, beta=draw(st.floats(2.0 / T, top)))
    lo = draw(st.floats(1e-5, 1e-3))
    hi = draw(st.floats(max(2 * lo, 5.0 / T), top))
    if kind == "linear":
        return _quiet(sch.linear, T, lo, hi)
    if kind == "sigmoid":
        return _quiet(sch.sigmoid, T, lo, hi, steepness=draw(st.floats(1.0, 8.0)))
    power = draw(st.floats(0.5, 3.0))
    betas = lo + (hi - lo) * torch.linspace(0, 1, T, dtype=torch.float64) ** power
    return _quiet(sch.from_betas, betas)


def step_counts(T: int = 1000, max_steps: int = 200) -> st.SearchStrategy[int]:
    """Step counts in ``[1, min(T, max_steps)]``."""
    return st.integers(1, min(T, max_steps))


def spacings() -> st.SearchStrategy[str]:
    """Every respacing toydiff knows (:data:`toydiff.processes.schedules.SPACINGS`)."""
    return st.sampled_from(SPACINGS)


@st.composite
def mixtures(draw, min_dim: int = 1, max_dim: int = 4, max_components: int = 4, max_condition: float = 4.0,
             spread: float = 2.0) -> GaussianMixture:
    """A Gaussian mixture in 1–4 dimensions with 1–``max_components`` components, well conditioned: weights in
    [0.2, 1] (normalised), means in [−spread, spread], every covariance a rotation of eigenvalues in
    [1/max_condition, 1] (so its condition number is at most ``max_condition``)."""
    D = draw(st.integers(min_dim, max_dim))
    K = draw(st.integers(1, max_components))
    num = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    w = draw(st.lists(num(0.2, 1.0), min_size=K, max_size=K))
    mu = draw(st.lists(st.lists(num(-spread, spread), min_size=D, max_size=D), min_size=K, max_size=K))
    lam = torch.tensor(draw(st.lists(st.lists(num(1.0 / max_condition, 1.0), min_size=D, max_size=D),
                                     min_size=K, max_size=K)), dtype=torch.float64)
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    Q, R = torch.linalg.qr(torch.randn(K, D, D, dtype=torch.float64, generator=g))
    Q = Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1)).unsqueeze(-2)  # a proper random rotation
    covs = Q @ torch.diag_embed(lam) @ Q.transpose(-1, -2)
    return GaussianMixture(w, mu, (covs + covs.transpose(-1, -2)) / 2)


def event_shapes(D: int) -> st.SearchStrategy[tuple[int, ...]]:
    """Event shapes holding ``D`` numbers: ``(D,)``, ``(1, D)``, ``(D, 1)`` and every two-factor split ``(a, D/a)``."""
    shapes = {(D,), (1, D), (D, 1)} | {(a, D // a) for a in range(2, D) if D % a == 0}
    return st.sampled_from(sorted(shapes))


@st.composite
def batch_shapes(draw, D: int, max_batch: int = 8) -> tuple[int, ...]:
    """``(B, *event)`` with ``1 <= B <= max_batch`` and ``prod(event) == D``: points of any rank."""
    return (draw(st.integers(1, max_batch)),) + draw(event_shapes(D))


@st.composite
def problems(draw, max_T: int = 1000, max_dim: int = 4, max_batch: int = 8) -> Problem:
    """A :class:`~toydiff.testing.oracle.Problem`: a drawn schedule, mixture and batch shape, x_T ~ N(0, I)."""
    schedule = draw(schedules(max_T=max_T))
    mixture = draw(mixtures(max_dim=max_dim))
    shape = draw(batch_shapes(mixture.D, max_batch))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    return Problem(schedule, mixture, torch.randn(shape, dtype=torch.float64, generator=g))


def condition_number(mixture: GaussianMixture) -> float:
    """The largest eigenvalue ratio over the mixture's covariances (for tests of :func:`mixtures`)."""
    ev = torch.linalg.eigvalsh(mixture.covs)
    return float((ev[:, -1] / ev[:, 0]).max()) if ev.numel() else math.nan
