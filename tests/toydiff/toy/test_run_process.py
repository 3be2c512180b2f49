"""The toy run holds a process object: train_toy builds it once (refusing another process's options), a checkpoint
records it, load_toy rebuilds it through the registry, and any registered process runs the whole path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from toydiff.processes import VPObjective, VPProcess, schedules
from toydiff.processes.registry import PROCESSES, register, unregister
from toydiff.processes.schedules import NoiseSchedule
from toydiff.toy.models import MLPConfig
from toydiff.toy.recipes import default_recipe
from toydiff.toy.run import load_toy, oracle_run, train_toy
from toydiff.training.engine import TrainConfig

SMALL = dict(model_config=MLPConfig(dim=1, width=16, depth=1), n_train=256, n_val=64, progress=False,
             config=TrainConfig(epochs=1, warmup_steps=2))


@pytest.mark.parametrize("kwargs, name", [
    (dict(process="vp", interpolant="cosine"), "interpolant"),
    (dict(process="vp", prediction="eps"), "prediction"),
    (dict(process="flow", schedule=schedules.linear(T=50)), "schedule"),
    (dict(process="diffusion"), "process"),
    (dict(process=VPProcess(schedules.linear(T=50)), schedule=schedules.linear(T=50)), "schedule"),
])
def test_train_toy_refuses_options_of_another_process_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        train_toy("two_gaussians", **SMALL, **kwargs)


def test_a_run_answers_through_its_process():
    run = oracle_run("two_gaussians")
    assert isinstance(run.process, VPProcess) and run.schedule == default_recipe("two_gaussians").schedule()
    x = torch.randn(4, 1, dtype=torch.float64)
    t = torch.full((4,), 10)
    torch.testing.assert_close(run.denoiser_fn()(x, t), run.oracle.eps_fn(run.schedule)(x, t))
    with pytest.raises(TypeError, match="process"):
        type(run)(run.dataset, "vp", run.normalizer)


class _TestObjective(VPObjective):
    @property
    def process(self) -> "_VPTest":
        return _VPTest(self.schedule, self.tag)


@dataclass(frozen=True)
class _VPTest(VPProcess):
    """A throw-away copy of VP with its own name and metadata keys: what the toy track must handle generically."""

    tag: str = "x"
    name: ClassVar[str] = "vp-test"

    def describe(self) -> str:
        return f"vp-test ({self.tag})"

    def objective(self, **options):
        obj = _TestObjective(self.schedule, **options)
        obj.tag = self.tag
        return obj

    def to_dict(self) -> dict:
        return {"process": "vp-test", "test_schedule": self.schedule.to_dict(), "test_tag": self.tag}

    @classmethod
    def from_dict(cls, d: dict) -> "_VPTest":
        return cls(NoiseSchedule.from_dict(d["test_schedule"]), d["test_tag"])


@pytest.fixture
def vp_test():
    register(_VPTest)
    try:
        yield _VPTest
    finally:
        unregister("vp-test")
    assert "vp-test" not in PROCESSES


def test_a_registered_process_trains_checkpoints_loads_and_samples(vp_test, tmp_path):
    proc = vp_test(schedules.linear(T=40), tag="abc")
    run = train_toy("two_gaussians", process=proc, out=tmp_path, **SMALL)
    assert run.process is proc
    loaded = load_toy(tmp_path)
    assert type(loaded.process) is vp_test and loaded.process == proc
    assert loaded.metadata["process"] == "vp-test" and loaded.metadata["test_tag"] == "abc"
    assert "schedule" not in loaded.metadata  # only the process's own keys
    x = loaded.sample(50, steps=5, seed=1)
    assert x.shape == (50, 1) and torch.equal(x, run.sample(50, steps=5, seed=1))
    # the same weights under plain VP give the same samples: the process, not the name, decides the sampler
    plain = type(run)(run.dataset, VPProcess(proc.schedule), run.normalizer, run.model)
    assert torch.equal(plain.sample(50, steps=5, seed=1), x)
    with pytest.raises(ValueError, match="process object"):
        train_toy("two_gaussians", process=proc, interpolant="linear", **SMALL)


def test_a_registered_process_class_is_built_by_name_from_its_own_keywords():
    """The process class, not a table of the track, says which keywords build it: a registered class with
    ``keywords`` / ``from_keywords`` is offered by name, and another process's keyword is refused."""
    from toydiff.toy.process_options import build_process, buildable, owner_of

    @dataclass(frozen=True)
    class HalfT(VPProcess):
        name: ClassVar[str] = "vp-half"
        keywords: ClassVar[tuple[str, ...]] = ("T",)

        @classmethod
        def from_keywords(cls, default_schedule, *, T: int = 20):
            return cls(schedules.linear(T=T))

    assert "vp-half" not in buildable()
    register(HalfT)
    try:
        assert "vp-half" in buildable() and owner_of("T") == "vp-half"
        proc = build_process("vp-half", default_recipe("two_gaussians"), T=30)
        assert isinstance(proc, HalfT) and proc.schedule.T == 30
        with pytest.raises(ValueError, match="interpolant applies to process 'flow'"):
            build_process("vp-half", default_recipe("two_gaussians"), interpolant="cosine")
    finally:
        unregister("vp-half")
    assert "vp-half" not in buildable()
