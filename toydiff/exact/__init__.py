"""The exact oracles: a Gaussian mixture's noised marginal, score, ε*, velocity and probability flow in closed
form (or solved to tolerance), the empirical (memorising) denoiser of a finite set, and exact guidance."""

from toydiff.exact import empirical, flow, flow_map, guidance, mixture
from toydiff.exact.empirical import EmpiricalDistribution
from toydiff.exact.mixture import GaussianMixture, LossFloor

__all__ = ["GaussianMixture", "LossFloor", "EmpiricalDistribution", "mixture", "flow", "flow_map", "empirical", "guidance"]
