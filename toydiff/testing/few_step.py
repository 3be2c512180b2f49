"""The ``flow map`` row: a few-step sampler (consistency, flow map) on an exact model, against the exact flow map.

A consistency model f*(x_t) = Φ_{t→0}(x_t) (Song et al. 2023) or a flow-map model (average velocity, Geng et al.
2025) that is exact makes one step exact: the sample from x_T at the sampler's first level must be
Φ_{first→clean}(x_T), the exact probability-flow map (:func:`toydiff.exact.flow_map.flow_map`), up to the model's
float32 arithmetic. A sampler that is deterministic at more steps (a flow-map sampler; TCD at γ = 0) must stay on
the map at those too; one that re-noises between steps (LCM, TCD at γ > 0) is judged there by the kit's
``distribution`` row instead. Convergence orders mean nothing here (the error is the model's, not the solver's).
"""

from __future__ import annotations

import math

import torch

from toydiff.testing.oracle import OracleCallError, Problem, pf_ode
from toydiff.testing.protocol import Run
from toydiff.testing.runner import Runner

__all__ = ["FEW_STEPS", "FLOW_MAP_TOL", "flow_map_reference", "flow_map_row"]

#: step counts of the row (1 always; the others when the sampler is deterministic)
FEW_STEPS = (1, 2, 4)
#: mean |x_0 − Φ(x_T)| allowed: float32 rounding of an exact model stays near 1e-5; a run that stops at
#: σ_0 ≈ 0.01 instead of the clean sample (TCD's last step) sits near 1e-2
FLOW_MAP_TOL = 1e-3


def flow_map_reference(problem: Problem, run: Run) -> torch.Tensor | None:
    """Φ_{first level → clean}(x_T) for ``run`` ``[B, *event]`` float64 (None if its first level is out of range):
    the schedule's own flow map from an integer timestep, the probability-flow ODE from a σ (inf: pure noise)."""
    x_T = problem.x_T
    if run.timesteps is not None:
        t0 = run.timesteps[0]
        if t0 != int(t0) or not 0 <= t0 <= problem.schedule.T - 1:
            try:
                return pf_ode(problem, x_T, problem.sigma_at(t0), 0.0)
            except OracleCallError:
                return None
        return problem.mixture.flow_map(x_T, int(t0), -1, problem.schedule, rtol=1e-10, atol=1e-10)
    return pf_ode(problem, x_T, run.sigmas[0], 0.0)


def flow_map_row(runner: Runner, problem: Problem, seed: int, *, deterministic: bool, steps=FEW_STEPS):
    """``(passed, detail)``: the mean distance of the sampler's ``x_0`` at 1 step (and at the other ``steps`` when
    ``deterministic``) to the exact flow map of ``problem.x_T``, each ≤ :data:`FLOW_MAP_TOL`."""
    errors, failed = {}, []
    for n in sorted(set(steps) | {1}) if deterministic else [1]:
        got = runner.attempt(problem, problem.x_T, n, seed)
        if got.run is None:
            failed.append(got.error)
            continue
        ref = flow_map_reference(problem, got.run)
        if ref is None:
            failed.append(f"steps={n}: starts outside the schedule")
            continue
        diff = got.run.x0.detach().cpu().to(torch.float64) - ref
        errors[n] = float(diff.reshape(diff.shape[0], -1).norm(dim=1).mean())
    if failed:
        return (None if runner.timed_out else False), "; ".join(failed)
    worst = max(errors.values()) if errors else math.inf
    shown = ", ".join(f"{n}: {e:.1e}" for n, e in errors.items())
    return worst <= FLOW_MAP_TOL, f"|x_0 - exact flow map| by steps {shown} (needs <= {FLOW_MAP_TOL:g})"
