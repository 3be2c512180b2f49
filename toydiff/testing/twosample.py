"""The calibrated two-sample test of a stochastic sampler's samples against the exact data distribution.

Two tests, each at level α/2 (Bonferroni: the false-alarm rate of the pair is at most α = ``ALPHA``):

1. **log-density** (sharp on the spread): the exact log-density log p(x) of the ``n`` samples against that of
   ``m`` = ``REFERENCE_DRAWS`` true samples, a two-sided Welch z-test on their means (Welch 1947; by the central
   limit theorem the statistic is N(0, 1) under the null). Too wide a sampler lowers the mean log-density, too
   narrow a one raises it: a 10 % variance error moves it by ~0.05·D per sample.
2. **energy distance** (omnibus: modes, weights, shifts), the permutation test of Székely & Rizzo 2004 on
   ``min(n, PERMUTATION_POINTS)`` samples against as many true ones, with ``PERMUTATIONS`` relabellings (exact
   level: p = (1 + #{permuted ≥ observed}) / (1 + permutations)). The statistic of a labelling w
   (w_i = 1/n for the sampler's points, −1/n for the true ones) is −wᵀDw with D the pooled distance matrix, so
   all relabellings cost one matrix product.

``bench/kit_power.py`` measures the false-alarm rate and the power against 10 % variance errors (docs/testing.md).
Shapes: samples ``[n, *event]`` (flattened to ``[n, D]``), float64.
"""

from __future__ import annotations

import math

import torch

from toydiff.exact.mixture import GaussianMixture

__all__ = ["ALPHA", "REFERENCE_DRAWS", "PERMUTATIONS", "PERMUTATION_POINTS", "log_density_z", "energy_permutation_p",
           "two_sample_test"]

#: the false-alarm rate of the pair of tests (each runs at ALPHA / 2)
ALPHA = 0.01
#: true samples whose log-density is the reference of test 1
REFERENCE_DRAWS = 100_000
#: relabellings of test 2 (its smallest p-value is 1/(PERMUTATIONS + 1) = 0.0025 < ALPHA / 2)
PERMUTATIONS = 399
#: points per side of test 2 (its cost grows as their square)
PERMUTATION_POINTS = 1000


def _z_crit(alpha: float) -> float:
    """The two-sided standard-normal critical value at ``alpha``."""
    return math.sqrt(2.0) * float(torch.special.erfinv(torch.tensor(1.0 - alpha, dtype=torch.float64)))


def log_density_z(mixture: GaussianMixture, x: torch.Tensor, generator: torch.Generator) -> float:
    """Welch's z of the mean log p(x) of ``x [n, *event]`` minus that of ``REFERENCE_DRAWS`` true samples."""
    lp = mixture.log_prob(x.reshape(x.shape[0], -1).to(torch.float64))
    ref = mixture.log_prob(mixture.sample(REFERENCE_DRAWS, generator))
    se = math.sqrt(float(lp.var()) / len(lp) + float(ref.var()) / len(ref))
    return (float(lp.mean()) - float(ref.mean())) / se if se > 0 else math.inf


def energy_permutation_p(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
                         permutations: int = PERMUTATIONS) -> float:
    """The permutation p-value of the energy distance between ``x [n, D]`` and ``y [n, D]`` (same n)."""
    z = torch.cat([x, y]).to(torch.float64)
    n, N = len(x), len(z)
    dist = torch.cdist(z, z)
    labels = torch.stack([torch.arange(N)] + [torch.randperm(N, generator=generator) for _ in range(permutations)], 1)
    w = torch.where(labels < n, 1.0 / n, -1.0 / (N - n)).to(torch.float64)   # [N, 1 + permutations]
    stat = -(w * (dist @ w)).sum(0)                                              # the energy distance per labelling
    return float((1 + (stat[1:] >= stat[0] - 1e-12 * abs(float(stat[0]))).sum()) / (permutations + 1))


def two_sample_test(mixture: GaussianMixture, x: torch.Tensor, seed: int) -> tuple[bool, str]:
    """``(passed, detail)``: both tests of the module docstring on the samples ``x [n, *event]``."""
    g = torch.Generator().manual_seed(seed)
    xf = x.reshape(x.shape[0], -1).to(torch.float64)
    z = log_density_z(mixture, xf, g)
    k = min(len(xf), PERMUTATION_POINTS)
    p = energy_permutation_p(xf[:k], mixture.sample(k, g), g)
    z_crit = _z_crit(ALPHA / 2)
    ok_z, ok_p = abs(z) <= z_crit, p > ALPHA / 2
    verdict = "" if ok_z and ok_p else (" (too wide)" if z < -z_crit else " (too narrow)" if z > z_crit else "")
    return ok_z and ok_p, (f"n={len(xf)}: log-density z = {z:+.2f} (|z| <= {z_crit:.2f}){verdict}; energy-distance "
                           f"permutation p = {p:.3f} (> {ALPHA / 2:g}, n={k}); false-alarm rate <= {ALPHA:g}")
