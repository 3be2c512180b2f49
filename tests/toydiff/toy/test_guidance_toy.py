"""Labelled toy data, the conditional MLP and its training, the guidance measurements, figures and command."""

from __future__ import annotations

import json

import pytest
import torch
from matplotlib.figure import Figure

from toydiff.cli import main
from toydiff.exact.guidance import tilted_target
from toydiff.toy import guidance_eval as ge
from toydiff.toy.figures.guidance import class_posterior_mpl, guidance_curves_mpl, guided_panels_mpl
from toydiff.toy.conditional import ConditionalMLP, ConditionalMLPConfig, LabelledBatches, conditional_trainer
from toydiff.toy.datasets import Normalizer, get_dataset
from toydiff.toy.labelled import LABELLED, get_labelled
from toydiff.toy.recipes import RECIPE_2D
from toydiff.training.engine import TrainConfig


@pytest.mark.parametrize("name", [n for n in LABELLED if get_labelled(n).has_oracle])
def test_mixture_labels_are_the_sampled_components_classes(name):
    ds = get_labelled(name)
    x, y = ds.sample(2000, torch.Generator().manual_seed(0))
    assert x.shape == (2000, 2) and x.dtype == torch.float32 and set(y.unique().tolist()) == set(range(ds.n_classes))
    owner = ds.mixture.labels[ds.mixture.responsibilities(x.double()).argmax(1)]
    assert (owner == y).double().mean() > 0.97  # the components of different classes barely overlap


def test_labelled_moons_are_the_unlabelled_moons_with_their_moon():
    ds = get_labelled("moons")
    x, y = ds.sample(500, torch.Generator().manual_seed(3))
    assert torch.equal(x, get_dataset("moons").sample(500, torch.Generator().manual_seed(3)))
    assert torch.equal(ds.unlabelled().sample(500, torch.Generator().manual_seed(3)), x)
    assert x[y == 0, 1].mean() > x[y == 1, 1].mean()  # moon 0 is the upper one
    with pytest.raises(ValueError, match="dataset"):
        get_labelled("8gaussians")


def test_conditional_mlp_shapes_and_null_label():
    net = ConditionalMLP(ConditionalMLPConfig(dim=2, width=16, depth=2, n_classes=3))
    x, t = torch.randn(5, 2), torch.arange(5)
    assert net(x, t, torch.tensor([0, 1, 2, 3, 3])).shape == (5, 2) and net.null_label == 3
    with pytest.raises(ValueError, match="y"):
        net(x, t, torch.tensor([0, 1, 2, 4, 0]))
    with pytest.raises(ValueError, match="n_classes"):
        ConditionalMLPConfig(dim=2, n_classes=0)


def test_label_dropout_replaces_the_stated_share_by_the_null_label():
    y = torch.arange(4000) % 3
    b = LabelledBatches(torch.randn(4000, 2), y, 1000, p_uncond=0.25, null_label=3)
    seen = torch.cat([kw["y"] for _, kw in b.epoch(0, 0, torch.Generator().manual_seed(0))])
    assert seen.numel() == 4000 and abs(float((seen == 3).double().mean()) - 0.25) < 0.03
    assert torch.equal(torch.bincount(seen[seen != 3], minlength=3)[:3] <= torch.bincount(y), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="p_uncond"):
        LabelledBatches(torch.randn(4, 2), torch.zeros(4), 2, p_uncond=1.5, null_label=1)


def test_conditional_training_runs_on_the_engine_with_the_exact_conditional_floor():
    ds = get_labelled("8gaussians_2class")
    mc = ConditionalMLPConfig(dim=2, width=32, depth=2, n_classes=2)
    cfg = TrainConfig(epochs=3, batch_size=128, warmup_steps=5, ema_decay=None)
    trainer, nz = conditional_trainer(ds, RECIPE_2D.schedule(), mc, cfg, n_train=512, n_val=256)
    h = trainer.fit()
    assert len(h.records) == 3 and all(torch.isfinite(torch.tensor(h.val_loss)))
    assert h.floor is not None and h.floor < h.val_loss[-1] < h.val_loss[0]


def test_exact_cfg_at_w1_samples_the_class_and_w0_does_not():
    ds = get_labelled("8gaussians_4class")
    s, nz = RECIPE_2D.schedule(), Normalizer.from_mixture(ds.mixture)
    den = ge.oracle_denoisers(ds.mixture, nz, s)
    rows = ge.guidance_table(den, s, nz, ds.mixture, y=2, ws=(0, 1), n=400, steps=20)
    r0, r1 = rows
    assert r1.class_share > 0.97 and r1.modes_covered == r1.n_modes == 2
    assert 0.1 < r0.class_share < 0.45 and r0.sw_cond > 3 * r1.sw_cond


def test_guidance_figures():
    gm = get_labelled("8gaussians_2class").mixture
    x = gm.condition(1).sample(100, torch.Generator().manual_seed(0))
    targets = {w: tilted_target(gm.condition(1), gm, w, n=32) for w in (1.0, 3.0)}
    assert isinstance(guided_panels_mpl({1.0: x, 3.0: x}, targets), Figure)
    row = ge.guidance_row(x, gm, 1, 1.0, source="exact", interval="full", grid=32)
    assert isinstance(guidance_curves_mpl([row, row.to_dict()]), Figure)
    assert isinstance(class_posterior_mpl(gm, 0.3, 1, n=20), Figure)
    with pytest.raises(ValueError, match="keys"):
        guided_panels_mpl({2.0: x}, targets)


def test_toy_guidance_command_writes_json_and_figures(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["toy", "guidance", "--dataset", "8gaussians_2class", "--w", "0,2", "--n", "40", "--steps", "4",
                 "--grid", "48", "--out", str(out)]) == 0
    summary = json.loads((out / "guidance.json").read_text())
    assert [(r["interval"], r["w"]) for r in summary["rows"]] == [("full", 0.0), ("full", 2.0), ("limited", 0.0),
                                                                  ("limited", 2.0)]
    assert {p.name for p in out.glob("*.png")} == {"curves.png", "posterior.png", "panels_exact_full.png",
                                                   "panels_exact_limited.png"}
    assert "SW→tilted" in capsys.readouterr().out
    first = {p: p.stat().st_mtime_ns for p in out.rglob("*")}  # a rerun rewrites every file and adds none
    assert main(["toy", "guidance", "--dataset", "8gaussians_2class", "--w", "0,2", "--n", "30", "--steps", "4",
                 "--grid", "48", "--out", str(out)]) == 0
    second = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert set(second) == set(first) and all(second[p] != first[p] for p in first)
