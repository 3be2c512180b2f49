"""The sampling registries own each method's convergence order; the kit reads it from there (no table of its own)."""

import dataclasses
from types import MappingProxyType

import torch

from toydiff.sampling import flow_steps, loop
from toydiff.testing import from_toydiff
from toydiff.testing.oracle import default_problem


def test_every_method_carries_its_order():
    assert {k: m.order for k, m in loop.REGISTRY.items()} == {
        "ddpm": None, "ddpm-no-noise": None, "ddim": 1.0, "euler": 1.0, "heun": 2.0, "dpm++2m": 2.0,
        "dpm++3m": 2.5, "unipc": 3.0, "euler-ancestral": None, "dpm++2m-sde": None, "edm": 2.0}
    assert {k: m.order for k, m in flow_steps.FLOW_REGISTRY.items()} == {
        "euler": 1.0, "heun": 2.0, "midpoint": 2.0, "dpm++2m": 2.0}


def test_the_kit_claims_the_registry_order():
    for name, method in loop.REGISTRY.items():
        assert from_toydiff(name).order == method.order
    assert from_toydiff("ddim", eta=0.5).order is None  # eta > 0: stochastic, no order claimed
    assert from_toydiff("edm", s_churn=1.0).order is None  # churn: stochastic


def test_a_new_method_is_one_registry_line(monkeypatch):
    entry = dataclasses.replace(loop.REGISTRY["ddim"], order=1.5)
    registry = MappingProxyType(dict(loop.REGISTRY) | {"throwaway": entry})
    monkeypatch.setattr(loop, "REGISTRY", registry)
    monkeypatch.setattr(loop, "METHODS", tuple(registry))  # what `METHODS = tuple(REGISTRY)` gives at import
    kit = from_toydiff("throwaway")
    assert kit.order == 1.5 and kit.name == "toydiff:throwaway"
    rec = default_problem().recorder()
    x_T = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    run = kit.run(rec, x_T, 5, torch.Generator().manual_seed(1))  # it runs: sample() took it from the registry
    assert run.x0.shape == (4, 2) and len(run.timesteps) == 6
