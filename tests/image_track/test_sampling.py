"""image_track.sampling: every sampler on a tiny net, per-sample seeds, figures, loading errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import toydiff
from image_track import sampling as S
from image_track.models import build_model
from toydiff.training.checkpoint import CheckpointError, save_checkpoint


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    sched = toydiff.processes.schedules.linear(T=1000)
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
    a = S.generate(cond, s, 5, labels=labels, w=2.0, method=method, steps=5, eta=1.0 if method == "ddim" else 0.0, seed=7, batch_size=2)
    b = S.generate(cond, s, 5, labels=labels, w=2.0, method=method, steps=5, eta=1.0 if method == "ddim" else 0.0, seed=7, batch_size=5)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    c = S.generate(cond, s, 5, labels=labels, w=2.0, method=method, steps=5, eta=1.0 if method == "ddim" else 0.0, seed=8, batch_size=5)
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
    fig = S.fixed_init_figure(out)
    assert [ax.get_title() for ax in fig.axes] == ["ddpm: one x_T, 4 runs", "ddpm-no-noise: one x_T, 4 runs"]
    shown = fig.axes[1].images[0].get_array()  # the no-noise row: the grid of its 4 identical images
    assert shown.shape[:2] == (32, 4 * 30 + 2)
    np.testing.assert_array_equal(shown, np.asarray(S.grid_image(out["ddpm-no-noise"], nrow=4)))


def test_figures_and_gif(nets, tmp_path):
    _, cond, s = nets
    img = S.grid_image(torch.zeros(12, 1, 28, 28), nrow=5)
    assert img.size == (5 * 30 + 2, 3 * 30 + 2)
    fig = S.guidance_sweep_figure(cond, s, (0, 5), per_digit=1, steps=2)
    assert [ax.get_title() for ax in fig.axes] == ["w = 0", "w = 5"]
    x5 = S.generate(cond, s, 10, labels=S.digit_labels(10, 1), w=5.0, steps=2)  # one row of the ten digits
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), np.asarray(S.grid_image(x5, nrow=10)))
    rec = S.record_progression(cond, s, 2, labels=torch.tensor([1, 7]), w=3.0, method="ddpm", steps=6,
                               keep_steps=[0, 2, -1])
    assert rec.x_t.shape == rec.x0_hat.shape == (3, 2, 1, 28, 28)
    fig = S.progression_figure(rec)
    assert len(fig.axes) == 2 * 3 and [ax.get_title() for ax in fig.axes[:3]] == [f"t={t}" for t in rec.timesteps]
    np.testing.assert_allclose(fig.axes[3].images[0].get_array(), S.to_display(rec.x0_hat[0, :1])[0])
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


def test_handle_eps_builder_gives_the_images_of_the_direct_toydiff_path():
    """generate() through LoadedModel.eps_fn equals td.conditional_eps_fn wired by hand (labels, w, null label)
    on the committed tiny_cond, and the committed weights still give the images they gave before the merge."""
    m = S.load_model(S.default_checkpoint(conditional=True))
    labels = torch.tensor([3, 7])
    x = S.generate(m.model, m.process, 2, labels=labels, w=3.0, method="ddim", steps=5, seed=0)
    gens = toydiff.per_sample_generators(0, 2)
    x_T = toydiff.randn_like(torch.zeros(2, 1, 28, 28), gens)
    with torch.no_grad():
        eps = toydiff.conditional_eps_fn(m.model, labels, w=3.0, null_label=10)
        direct = toydiff.sample(eps, x_T, m.schedule, method="ddim", steps=5, generator=gens, clip_x0=1.0).clamp(-1, 1)
        swapped = toydiff.sample(toydiff.conditional_eps_fn(m.model, labels.flip(0), w=3.0, null_label=10), x_T,
                                 m.schedule, method="ddim", steps=5, generator=toydiff.per_sample_generators(0, 2))
    torch.testing.assert_close(x, direct, atol=0, rtol=0)
    assert not torch.allclose(x, swapped.clamp(-1, 1), atol=1e-2)  # the labels matter, so wiring them wrong shows
    # fingerprint of these two images from before LoadedModel and LabModel were merged
    assert abs(float(x.sum()) - -1052.592) < 0.05 and abs(float(x.abs().sum()) - 1443.248) < 0.05
    torch.testing.assert_close(x[0, 0, 14, 10:14], torch.tensor([-0.96485, -0.38719, 1.0, 0.99463]), atol=1e-3, rtol=0)
    unguided = S.generate(m.model, m.schedule, 2, labels=labels, w=1.0, method="ddim", steps=5, seed=0)
    assert not torch.allclose(x, unguided, atol=1e-2)  # w reaches the sampler


def test_generate_takes_the_process_its_objective_or_a_bare_schedule(nets):
    from toydiff.processes import VPProcess

    _, cond, s = nets
    proc, labels = VPProcess(s), torch.tensor([2, 8])
    kw = dict(labels=labels, w=2.0, steps=4, seed=3)
    x = S.generate(cond, proc, 2, **kw)
    torch.testing.assert_close(S.generate(cond, s, 2, **kw), x, atol=0, rtol=0)
    torch.testing.assert_close(S.generate(cond, proc.objective(), 2, **kw), x, atol=0, rtol=0)
    torch.testing.assert_close(S.generate(cond, proc, 2, method="ddim", **kw), x, atol=0, rtol=0)  # ddim: the default
    assert S.default_sampler(proc) == ("ddim", 50) and S.LoadedModel(cond, s).process == proc
    with pytest.raises(ValueError, match="not a sampler of DDPM"):
        S.generate(cond, proc, 2, method="midpoint", steps=4)
    with pytest.raises(TypeError, match="process must be"):
        S.generate(cond, "vp", 2)


def test_loaded_model_eps_fn_labels_null_label_and_checks(nets):
    uncond, cond, s = nets
    m = S.LoadedModel(cond, s)
    assert (m.num_classes, m.null_label, m.image_size, m.in_channels, m.conditional) == (10, 10, 28, 1, True)
    x, t = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.tensor([5, 500, 900])
    with torch.no_grad():
        null = cond(x, t, torch.full((3,), 10))
        torch.testing.assert_close(m.eps_fn()(x, t), null, atol=0, rtol=0)  # no labels: the null label
        torch.testing.assert_close(m.eps_fn(4, 3)(x, t), cond(x, t, torch.full((3,), 4)), atol=0, rtol=0)
        y = torch.tensor([0, 4, 9])
        c = cond(x, t, y)
        torch.testing.assert_close(m.eps_fn(y, w=2.5)(x, t), null + 2.5 * (c - null), atol=1e-5, rtol=0)
        torch.testing.assert_close(m.eps_fn(y, w=0.0)(x, t), null, atol=0, rtol=0)
    with pytest.raises(ValueError, match="labels must lie"):
        m.eps_fn(torch.tensor([0, 10, 1]))
    with pytest.raises(ValueError, match=r"shape \[n\] = \[2\]"):
        m.eps_fn(y, 2)
    with pytest.raises(ValueError, match="label must be in"):
        m.eps_fn(10, 3)
    with pytest.raises(ValueError, match="n \\(the batch size\\)"):
        m.eps_fn(3)
    with pytest.raises(TypeError, match="w must be a number"):
        m.eps_fn(y, w="3")
    u = S.LoadedModel(uncond, s)
    with pytest.raises(ValueError, match="unconditional"):
        u.eps_fn(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="needs a class-conditional model"):
        u.eps_fn(w=3.0)


def test_lab_names_are_the_same_handle(nets):
    from image_track.lab import LabModel, LoadedModel

    _, cond, s = nets
    old = LabModel(net=cond, schedule=s, num_classes=10, image_size=28)  # apps/pages/image_lab.py builds it so
    assert isinstance(old, S.LoadedModel) and LoadedModel is S.LoadedModel
    assert old.net is cond and old.null_label == 10 and old.schedule is s

    bare = S.LoadedModel.from_net(lambda x, t, y: x * 0 + y.float()[:, None, None, None], s, num_classes=3,
                                  image_size=4)
    assert (bare.num_classes, bare.image_size) == (3, 4)
    x, t = torch.zeros(2, 1, 4, 4), torch.tensor([1, 1])
    assert torch.equal(bare.eps_fn()(x, t), torch.full((2, 1, 4, 4), 3.0))  # the null label is num_classes
    with pytest.raises(ValueError, match="num_classes"):
        S.LoadedModel.from_net(cond, s, num_classes=0)
