"""image_track.sampling: every sampler on a tiny net, per-sample seeds, figures, loading errors."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

import toydiff
from image_track import sampling as S
from image_track.models import build_model
from toydiff.checkpoint import CheckpointError, save_checkpoint

@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    sched = toydiff.schedules.linear(T=1000)
    return (build_model("tiny", widths=(4, 8, 8)).eval(), build_model("tiny", num_classes=10, widths=(4, 8, 8)).eval(),
            sched)


@pytest.mark.parametrize("method", toydiff.METHODS)
def test_every_sampler_gives_finite_images(nets, method):
    uncond, cond, s = nets
    x = S.generate(uncond, s, 3, method=method, steps=4, eta=0.5 if method == "ddim" else 0.0)
    assert x.shape == (3, 1, 28, 28) and torch.isfinite(x).all() and x.abs().max() <= 1
    y = S.generate(cond, s, 3, labels=torch.tensor([0, 4, 9]), w=3.0, method=method, steps=4)
    assert y.shape == (3, 1, 28, 28) and torch.isfinite(y).all()


@pytest.mark.parametrize("method", ["ddpm", "ddim"])
def test_image_i_is_the_same_at_any_batch_size(nets, method):
    _, cond, s = nets
    labels = torch.tensor([3, 1, 4, 1, 5])
    a = S.generate(cond, s, 5, labels=labels, w=2.0, method=method, steps=5, eta=1.0, seed=7, batch_size=2)
    b = S.generate(cond, s, 5, labels=labels, w=2.0, method=method, steps=5, eta=1.0, seed=7, batch_size=5)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    c = S.generate(cond, s, 5, labels=labels, w=2.0, method=method, steps=5, eta=1.0, seed=8, batch_size=5)
    assert not torch.allclose(b, c)


def test_labels_and_image_size_are_checked(nets):
    uncond, cond, s = nets
    with pytest.raises(ValueError, match="unconditional"):
        S.generate(uncond, s, 2, labels=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="labels must"):
        S.generate(cond, s, 2, labels=torch.tensor([1, 10]), w=1.0)
    with pytest.raises(ValueError, match="image_size=28"):
        S.generate(uncond, s, 2, steps=2, x_T=torch.randn(2, 1, 32, 32))


def test_autoguidance_extrapolates_from_the_guide(nets):
    uncond, cond, s = nets
    torch.manual_seed(1)
    weak = build_model("tiny", widths=(4, 8, 8)).eval()
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([10, 900])
    m = S.LoadedModel(uncond, s)
    with torch.no_grad():
        e_good, e_bad = uncond(x, t), weak(x, t)
        torch.testing.assert_close(m.eps_fn(w=3.0, guide=weak)(x, t), e_bad + 3.0 * (e_good - e_bad))
        torch.testing.assert_close(m.eps_fn(w=1.0, guide=S.LoadedModel(weak, s))(x, t), e_good)
        # a limited interval: guided at t = 10 only
        limited = m.eps_fn(w=3.0, guide=weak, guide_t_max=500)(x, t)
        torch.testing.assert_close(limited, torch.stack([e_bad[0] + 3.0 * (e_good[0] - e_bad[0]), e_good[1]]))
    a = S.generate(uncond, s, 2, steps=4, seed=3, guide=weak, w=2.0)
    b = S.generate(uncond, s, 2, steps=4, seed=3)
    assert a.shape == b.shape and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="guide must be conditional"):
        m.eps_fn(w=2.0, guide=cond)
    with pytest.raises(ValueError, match="w must be"):
        m.eps_fn(w=0.5, guide=weak)


def test_fixed_initialisation_with_and_without_noise(nets):
    uncond, _, s = nets
    out = S.fixed_init_samples(uncond, s, 4, steps=5)
    assert out["ddpm"].shape == out["ddpm-no-noise"].shape == (4, 1, 28, 28)
    assert torch.allclose(out["ddpm-no-noise"], out["ddpm-no-noise"][:1].expand(4, -1, -1, -1))
    assert not torch.allclose(out["ddpm"][0], out["ddpm"][1])
    assert isinstance(S.fixed_init_figure(out), Figure)


def test_figures_and_gif(nets, tmp_path):
    _, cond, s = nets
    img = S.grid_image(torch.zeros(12, 1, 28, 28), nrow=5)
    assert img.size == (5 * 30 + 2, 3 * 30 + 2)
    assert isinstance(S.guidance_sweep_figure(cond, s, (0, 5), per_digit=1, steps=2), Figure)
    rec = S.record_progression(cond, s, 2, labels=torch.tensor([1, 7]), w=3.0, method="ddpm", steps=6,
                               keep_steps=[0, 2, -1])
    assert rec.x_t.shape == rec.x0_hat.shape == (3, 2, 1, 28, 28)
    assert isinstance(S.progression_figure(rec), Figure)
    gif = S.progression_gif(rec, tmp_path / "p.gif")
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 4


def test_load_model_errors(nets, tmp_path):
    uncond, _, s = nets
    with pytest.raises(CheckpointError, match="not found"):
        S.load_model(tmp_path / "missing.safetensors")
    tensors = {f"ema.{k}": v for k, v in uncond.state_dict().items()}
    save_checkpoint(tmp_path / "ok.safetensors", tensors, {"model_config": uncond.config, "schedule": s.to_dict()})
    m = S.load_model(tmp_path / "ok.safetensors")
    assert not m.conditional and not m.model.training
    save_checkpoint(tmp_path / "nomodel.safetensors", tensors, {"something": 1})
    with pytest.raises(CheckpointError, match="no model_config"):
        S.load_model(tmp_path / "nomodel.safetensors")
    big = dict(uncond.config, widths=[16, 32, 64])
    save_checkpoint(tmp_path / "bad.safetensors", tensors, {"model_config": big, "schedule": s.to_dict()})
    with pytest.raises(CheckpointError, match="does not fit"):
        S.load_model(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("conditional", [False, True])
def test_committed_checkpoints_load(conditional):
    path = S.default_checkpoint(conditional)
    if not path.is_file():
        pytest.skip(f"{path.name} not trained yet")
    m = S.load_model(path)
    assert m.conditional == conditional and m.model.config["name"] == "tiny"
    assert path.stat().st_size < 1_000_000
