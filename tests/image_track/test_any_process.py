"""The image track does not know its processes by name: a process registered only here (a copy of DDPM under
another name, with its own metadata key and a restricted sampler list) trains, checkpoints, loads and samples
through the very code paths ``vp`` and ``flow`` use."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from toydiff.processes import VPObjective, VPProcess
from toydiff.processes.base import CheckpointMismatch, process_of
from toydiff.processes.registry import PROCESSES, register, unregister
from toydiff.training.checkpoint import load_checkpoint

NAME = "vp-copy-under-test"


class CopyProcess(VPProcess):
    """DDPM under another name, offering two samplers; counts its :meth:`sample` calls."""

    name: ClassVar[str] = NAME
    methods: ClassVar[tuple[str, ...]] = ("ddim", "ddpm")
    calls: ClassVar[list] = []

    def sample(self, fn, x_T, *, method=None, steps=None, **options):
        CopyProcess.calls.append((method, steps))
        return super().sample(fn, x_T, method=method, steps=steps, **options)

    def objective(self, **options):
        return CopyObjective(self.schedule, **options)

    def to_dict(self) -> dict:
        return {"process": NAME} | super().to_dict()


class CopyObjective(VPObjective):
    """DDPM's loss; its process (and so its checkpoint metadata) is :class:`CopyProcess`."""

    @property
    def process(self) -> CopyProcess:
        return CopyProcess(self.schedule)

    def check_resume(self, meta: dict) -> None:
        if process_of(meta) != NAME:
            raise CheckpointMismatch(f"was trained with --process {process_of(meta)}, not {NAME}")


@pytest.fixture
def copy_process():
    register(CopyProcess)
    CopyProcess.calls.clear()
    yield CopyProcess
    unregister(NAME)


def test_a_process_registered_elsewhere_trains_loads_and_samples(copy_process, tmp_path, monkeypatch):
    from image_track.sampling import generate, load_model
    from image_track.training import TrainConfig, train
    from image_track.training import loop

    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 28, 28, generator=g) * 2 - 1  # MNIST-shaped random images in [-1, 1]
    monkeypatch.setattr(loop, "_load_split", lambda config, split: (x, torch.zeros(8, dtype=torch.long)))
    config = TrainConfig(process=NAME, preset="tiny", model_overrides={"widths": [4, 8, 8]}, subset=8, batch_size=4,
                         max_steps=2, warmup_steps=1, val_split=None, sample_every_epoch=False, progress=False,
                         amp=False, device="cpu", out_dir=str(tmp_path))
    assert isinstance(loop.objective_of(config), CopyObjective)
    history = train(config)
    assert history.step == 2 and all(torch.isfinite(torch.tensor(history.step_losses)))

    _, meta = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert meta["process"] == NAME
    m = load_model(tmp_path / "checkpoint.safetensors")
    assert isinstance(m.process, CopyProcess) and m.process.schedule.T == 1000
    images = generate(m.model, m.process, 2, steps=3, seed=0)  # the track's default: DDIM, offered here
    assert images.shape == (2, 1, 28, 28) and bool(torch.isfinite(images).all())
    assert CopyProcess.calls == [("ddim", 3)]
    with pytest.raises(ValueError, match="dpm\\+\\+2m"):  # validated against the process's own methods
        generate(m.model, m.process, 2, method="dpm++2m", steps=3)

    # a resume goes through the objective's own check
    resumed = train(TrainConfig(**(config.to_dict() | {"max_steps": 3, "resume": str(tmp_path / "checkpoint.safetensors")})))
    assert resumed.step == 3


def test_the_command_line_offers_a_registered_process(copy_process, tmp_path, capsys):
    from image_track.cli import build_parser
    from image_track.training import config_from_args
    from toydiff.cli import main

    assert NAME in PROCESSES
    c = config_from_args(build_parser().parse_args(["train", "--out", "o", "--process", NAME, "--T", "500",
                                                     "--sample-method", "ddpm"]))
    assert (c.process, c.T, c.sample_method) == (NAME, 500, "ddpm")
    assert main(["mnist", "train", "--out", str(tmp_path / "r"), "--process", NAME, "--sample-method", "dpm++2m"]) == 2
    err = capsys.readouterr().err
    assert "--sample-method dpm++2m" in err and "ddim, ddpm" in err
