"""pytest helpers: a user's test of a sampler in three lines.

    from toydiff.testing import assert_converges
    def test_my_sampler():
        assert_converges(my_sampler, order=2)
"""

from __future__ import annotations

from typing import Sequence

from toydiff.testing.check import DEFAULT_STEPS, Report, check_sampler

__all__ = ["assert_converges", "assert_passes"]


def assert_passes(sampler, steps: Sequence[int] = DEFAULT_STEPS, **kwargs) -> Report:
    """Run :func:`~toydiff.testing.check_sampler` and raise AssertionError with the whole table if a property
    fails; returns the report."""
    rep = check_sampler(sampler, steps, **kwargs)
    if not rep.passed:
        raise AssertionError("the sampler fails the kit's properties:\n" + rep.table())
    return rep


def assert_converges(sampler, order: float | None = None, steps: Sequence[int] = DEFAULT_STEPS, **kwargs) -> Report:
    """:func:`assert_passes` for a deterministic sampler that must converge to the exact ODE solution with the
    given ``order`` (± ``order_tol``, default 0.35); a stochastic sampler fails it."""
    rep = assert_passes(sampler, steps, order=order, **kwargs)
    if rep.order is None:
        raise AssertionError("no order of convergence was measured (a stochastic sampler?):\n" + rep.table())
    return rep
