"""The pages ask the process object (apps/common/models.py, apps/pages/samplers/sweep.py) instead of branching on
its name: the sampler list, the step grid, the facts shown and the count of network evaluations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import toydiff as td

pytest.importorskip("streamlit")

from apps.common.models import model_process, process_facts  # noqa: E402
from apps.pages.samplers.sweep import Line, line_label, nfe, process_for, run_line  # noqa: E402
from toydiff.processes.flow import InterpolantProcess  # noqa: E402
from toydiff.processes.vp import VPProcess  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_a_committed_ddpm_checkpoint_answers_with_its_vp_process():
    from image_track.loaded import load_model

    lm = load_model(ROOT / "image_track" / "weights" / "tiny_uncond.safetensors")
    p = model_process(lm)
    assert p.name == "vp" and tuple(p.methods) == tuple(td.METHODS) and p.schedule is not None
    assert process_facts(p) == {"Schedule": p.schedule.name, "T": p.schedule.T}


def test_process_facts_of_a_flow_process_name_its_path_and_prediction():
    p = InterpolantProcess(td.interpolants.linear(), "velocity")
    assert process_facts(p) == {"Process": "flow (linear)", "Prediction": "velocity"}


def test_a_line_builds_its_process_and_its_default_grid():
    s = td.schedules.linear(1000)
    vp, flow = Line.default("vp", "dpm++2m"), Line.default("flow", "heun", "cosine")
    assert vp.spacing == td.sampling.REGISTRY["dpm++2m"].default_spacing and flow.spacing == "uniform"
    assert isinstance(process_for(vp, s), VPProcess) and isinstance(process_for(flow, None), InterpolantProcess)
    assert line_label(flow) == "flow heun (cosine, uniform)"
    assert nfe(vp, 10) == td.function_evaluations("dpm++2m", 10) and nfe(flow, 10) == process_for(flow, None).nfe("heun", 10)
    with pytest.raises(ValueError, match="process"):
        Line.default("sde", "euler")


def test_a_network_line_of_another_process_is_refused_in_words():
    with pytest.raises(ValueError, match="flow line needs the exact mixture"):
        run_line(Line("flow", "euler", "uniform"), 2, 4, 0, eps_fn=lambda x, t: x, schedule=None, mixture=None, dim=2)
    x = run_line(Line("vp", "ddim", "linspace"), 3, 4, 0, eps_fn=lambda x, t: torch.zeros_like(x),
                 schedule=td.schedules.linear(1000), mixture=None, dim=2)
    assert x.shape == (4, 2) and torch.isfinite(x).all()
