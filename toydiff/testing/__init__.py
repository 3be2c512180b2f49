"""A property-testing kit for anyone's diffusion sampler, on toydiff's exact Gaussian-mixture oracle.

    >>> from toydiff.testing import check_sampler
    >>> rep = check_sampler("toydiff:heun", steps=[10, 20, 40])
    >>> rep.passed, rep.order          # (True, ~2.2)
    >>> print(rep.table())

Modules: :mod:`.oracle` (the exact problem and the probability-flow ODE reference), :mod:`.protocol` (the plain
sampler protocol, toydiff's own methods), :mod:`.adapters` (diffusers schedulers, k-diffusion samplers, spec strings),
:mod:`.check` (``check_sampler`` and its report), :mod:`.runner` (one guarded run: failures and the
per-run time limit, ``timeout=``, default 60 s), :mod:`.assertions` (pytest helpers), :mod:`.strategies`
(hypothesis strategies; needs ``hypothesis``), :mod:`.families` (the exact model of each sampler family: ε, x̂_0,
score, velocity on any interpolant and shifted clock, EDM and LCM parametrisations), :mod:`.peer_families`
(diffusers' flow-matching, EDM, consistency and flow-map schedulers; flow_matching's ODE solver), :mod:`.few_step`
(the ``flow map`` row). diffusers and k-diffusion are optional (the ``peers`` extra).
"""

from toydiff.testing.adapters import as_sampler, from_diffusers, from_k_diffusion, from_spec
from toydiff.testing.assertions import assert_converges, assert_passes
from toydiff.testing.check import DEFAULT_STEPS, DEFAULT_SWEEP, DEFAULT_TIMEOUT, ROWS, Report, Row, check_sampler
from toydiff.testing.oracle import OracleCallError, Problem, default_problem, pf_ode
from toydiff.testing.protocol import KitSampler, Run, from_callable, from_toydiff

__all__ = ["check_sampler", "Report", "Row", "ROWS", "DEFAULT_STEPS", "DEFAULT_SWEEP", "DEFAULT_TIMEOUT", "assert_converges",
           "assert_passes", "from_callable", "from_toydiff", "from_diffusers", "from_k_diffusion", "from_spec", "as_sampler", "KitSampler", "Run",
           "Problem", "default_problem", "pf_ode", "OracleCallError"]
