"""image_track.lab: every experiment runs end to end on a tiny untrained net, and composes toydiff exactly."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import toydiff as td
from image_track import lab
from image_track.lab import LoadedModel, strided_timesteps
from image_track.lab.combinators import anagram_eps_fn, blockwise_eps_fn, hybrid_eps_fn

S = td.schedules.linear(T=1000)
STRIDED = strided_timesteps()


class TinyNet(nn.Module):
    """A few-hundred-parameter class-conditional ε-predictor: depends on x, t and y; 10 classes + null."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 1, 3, padding=1)
        self.emb = nn.Embedding(11, 4)

    def forward(self, x, t, y=None):
        y = torch.full_like(t, 10) if y is None else y
        h = torch.tanh(self.conv(x) + self.emb(y)[:, :, None, None] + (t.float() / 1000)[:, None, None, None])
        return 0.5 * self.out(h)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions on a shared CPU: one thread is ~50x faster than an oversubscribed pool."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model():
    return LoadedModel.from_net(TinyNet().eval(), S, num_classes=10)


@pytest.fixture(scope="module")
def digit():
    g = torch.Generator().manual_seed(3)
    return (torch.rand(1, 1, 28, 28, generator=g) * 2 - 1).clamp(-1, 1)


def _finite(a, shape):
    assert isinstance(a, np.ndarray) and a.shape == shape and np.isfinite(a).all()


def _probabilities(p, n):
    """``p`` is the committed classifier's verdict on ``n`` images: ``[n, 10]`` rows that sum to 1."""
    assert p is not None, "the committed classifier (image_track/weights/classifier.safetensors) must judge"
    assert p.shape == (n, 10) and (p >= 0).all()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


def test_strided_timesteps():
    assert STRIDED[:3] == [990, 960, 930] and STRIDED[-1] == 0 and len(STRIDED) == 34
    with pytest.raises(ValueError, match="stride"):
        strided_timesteps(1000, 0)


def test_denoise_end_to_end(model, digit, tmp_path):
    res = lab.denoise(model, image=digit, timesteps=(250, 500, 750), out=tmp_path / "d.png")
    for a in (res.noisy, res.blurred, res.one_step, res.iterative):
        _finite(a, (3, 28, 28))
    assert res.n_steps == (10, 18, 26)  # [250, 240, ..., 0]; t = 750 is strided[8]: len(strided[8:]) = 26
    _figure_png(tmp_path / "d.png")
    with pytest.raises(ValueError, match="timesteps"):
        lab.denoise(model, image=digit, timesteps=(1000,))
    by_index = lab.denoise(model, image=digit, i_starts=(8,))  # strided[8] = 750: the same run as t = 750
    assert list(by_index.timesteps) == [750] and by_index.n_steps == (26,)
    np.testing.assert_array_equal(by_index.iterative[0], lab.denoise(model, image=digit, timesteps=(750,)).iterative[0])


def test_sdedit_end_to_end_and_bad_input(model, digit, tmp_path):
    res = lab.sdedit(model, image=digit, i_starts=(1, 20), target=8, out=tmp_path / "s.png")
    _finite(res.unconditional, (2, 28, 28))
    _finite(res.guided, (2, 28, 28))
    assert list(res.t_starts) == [960, 390]
    _probabilities(res.probs_unconditional, 2)
    _probabilities(res.probs_guided, 2)
    _figure_png(tmp_path / "s.png")
    with pytest.raises(ValueError, match="target"):
        lab.sdedit(model, image=digit, target=12)
    with pytest.raises(ValueError, match="i_starts"):
        lab.sdedit(model, image=digit, i_starts=(34,))


def test_sdedit_from_t0_returns_the_input(model, digit):
    res = lab.sdedit(model, image=digit, i_starts=(len(STRIDED) - 1,), target=None)
    assert res.t_starts[0] == 0
    np.testing.assert_allclose(res.unconditional[0], digit[0, 0].numpy(), atol=0.05)


def test_sdedit_from_the_top_is_an_ordinary_sample(model, digit):
    """From t = 990 the input survives only as sqrt(ᾱ_990) ≈ 0.007 of it: the result is ordinary sampling
    from the same noise and seed, up to that trace (relative: the untrained net's samples are large)."""
    seed = 5
    # unclipped: the clamp's kinks would amplify the trace on this untrained net
    res = lab.sdedit(model, image=digit, i_starts=(0,), target=None, method="ddim", seed=seed, clip_x0=None)
    noise = torch.randn(digit.shape, generator=torch.Generator().manual_seed(seed))
    ordinary = td.sample(model.eps_fn(None, 1), noise, S, method="ddim", steps=STRIDED,
                         generator=torch.Generator().manual_seed(seed + 1))
    a, b = res.unconditional[0], ordinary[0, 0].numpy()
    assert np.linalg.norm(a - b) < 0.01 * np.linalg.norm(b)


def test_inpaint_keeps_unmasked_pixels_exactly(model, digit, tmp_path):
    res = lab.inpaint(model, image=digit, rect="5,6,10,12", n=3, out=tmp_path / "i.png")
    _finite(res.samples, (3, 28, 28))
    keep = res.mask == 0
    assert keep.sum() == 28 * 28 - 120
    for s in res.samples:
        assert np.array_equal(s[keep], digit[0, 0].numpy()[keep])
    assert not np.allclose(res.samples[0][~keep], digit[0, 0].numpy()[~keep])


@pytest.mark.parametrize("rect", ["1,2,3", "0,0,0,5", "20,0,10,5", "a,b,c,d", "-1,0,4,4"])
def test_inpaint_bad_rect(model, digit, rect):
    with pytest.raises(ValueError, match="rect"):
        lab.inpaint(model, image=digit, rect=rect)


def test_anagram_end_to_end(model, tmp_path):
    res = lab.anagram(model, a=6, b=9, transform="rot180", n=2, out=tmp_path / "a.png")
    _finite(res.samples, (2, 28, 28))
    np.testing.assert_array_equal(res.transformed, res.samples[:, ::-1, ::-1])
    _probabilities(res.probs, 2)  # the committed MNIST classifier judges both views
    _probabilities(res.probs_transformed, 2)
    from image_track.classifier import classify

    np.testing.assert_allclose(res.probs_transformed, classify(torch.from_numpy(res.transformed)[:, None]).numpy(),
                               atol=1e-6)
    upright, turned = res.probs.argmax(1) == 6, res.probs_transformed.argmax(1) == 9
    assert res.success() == np.mean(upright & turned)
    with pytest.raises(ValueError, match="transform"):
        lab.anagram(model, transform="spin")
    with pytest.raises(ValueError, match="b must"):
        lab.anagram(model, b=10)


def test_judge_is_none_only_without_the_weights_file(model, monkeypatch, tmp_path):
    from image_track import classifier
    from image_track.lab.common import judge

    x = torch.zeros(2, 1, 28, 28)
    _probabilities(judge(x), 2)
    monkeypatch.setattr(classifier, "DEFAULT_WEIGHTS", tmp_path / "absent.safetensors")
    assert judge(x) is None
    res = lab.anagram(model, n=1, stride=250, out=tmp_path / "a.png")  # no classifier: no verdicts, still a figure
    assert res.probs is None and res.probs_transformed is None and res.success() is None
    monkeypatch.undo()

    def broken(images):
        raise RuntimeError("classifier bug")

    monkeypatch.setattr(classifier, "classify", broken)
    with pytest.raises(RuntimeError, match="classifier bug"):  # a bug is not "no classifier"
        judge(x)


def _ordinary(model, label, n, w, seed):
    gens = [torch.Generator().manual_seed(seed + i) for i in range(n)]
    x_T = td.randn_like(torch.zeros(n, 1, 28, 28), gens)
    return td.sample(model.eps_fn(label, n, w=w), x_T, S, method="ddpm", steps=STRIDED, generator=gens, clip_x0=1.0)


def test_anagram_of_a_class_with_itself_under_identity_is_ordinary_sampling(model):
    res = lab.anagram(model, a=4, b=4, transform="identity", w=3.0, n=2, seed=11)
    assert torch.allclose(torch.from_numpy(res.samples), _ordinary(model, 4, 2, 3.0, 11)[:, 0])


def test_hybrid_end_to_end_and_same_class_is_ordinary_sampling(model, tmp_path):
    res = lab.hybrid(model, low=1, high=7, n=2, out=tmp_path / "h.png")
    _finite(res.samples, (2, 28, 28))
    _finite(res.far, (2, 7, 7))
    assert (res.kernel, res.sigma) == (15, 0.875)
    _probabilities(res.probs, 2)
    _probabilities(res.probs_far, 2)
    _figure_png(tmp_path / "h.png")
    same = lab.hybrid(model, low=2, high=2, w=3.0, n=2, seed=4)
    assert torch.allclose(torch.from_numpy(same.samples), _ordinary(model, 2, 2, 3.0, 4)[:, 0], atol=1e-5)


def test_combinators_are_generic_eps_fns():
    x, t = torch.randn(2, 1, 4, 4), torch.tensor([10, 10])
    ea = lambda x, t: x * 2  # noqa: E731
    eb = lambda x, t: x + 1  # noqa: E731
    # hflip: inverse(eb(flip(x))) = x + 1
    assert torch.allclose(anagram_eps_fn(ea, eb, "hflip")(x, t), 0.5 * (2 * x + x + 1))
    assert torch.allclose(hybrid_eps_fn(ea, ea, lambda e: e.mean((-2, -1), keepdim=True))(x, t), 2 * x)
    both = blockwise_eps_fn([ea, eb], [1, 1])(x, t)
    assert torch.equal(both[:1], 2 * x[:1]) and torch.equal(both[1:], x[1:] + 1)
    with pytest.raises(ValueError, match="blocks"):
        blockwise_eps_fn([ea, eb], [1, 2])(x, t)


# --- the CLI -------------------------------------------------------------------------------------------

@pytest.fixture
def cli(monkeypatch, model):
    from image_track.lab import cli as lab_cli

    monkeypatch.setattr(lab_cli, "load_lab_model", lambda checkpoint=None: model)
    return lab_cli.main


@pytest.fixture
def png(tmp_path):
    from PIL import Image

    a = np.full((50, 40, 3), 255, dtype=np.uint8)
    a[10:40, 18:24] = 0
    p = tmp_path / "mine.png"
    Image.fromarray(a).save(p)
    return p


@pytest.fixture
def spy(monkeypatch):
    """Record what each lab experiment returned when the CLI ran it: ``spy[name]`` is its result."""
    import importlib

    seen = {}
    for name in ("denoise", "sdedit", "inpaint", "anagram", "hybrid", "guidance"):
        mod = importlib.import_module(f"image_track.lab.{name}")  # the package re-exports the function
        real = getattr(mod, name)

        def wrapped(*args, _real=real, _name=name, **kw):
            seen[_name] = _real(*args, **kw)
            return seen[_name]

        monkeypatch.setattr(mod, name, wrapped)
    return seen


def _figure_png(path, min_width=300):
    """The CLI wrote a real figure: a PNG at least ``min_width`` px wide, with dark ink and light paper."""
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= min_width and im.height >= 100
        gray = np.asarray(im.convert("L"))
    assert gray.min() < 40 and gray.max() > 215


@pytest.mark.parametrize("args, shape", [
    (["denoise", "--t", "500"], ("iterative", (1, 28, 28))),
    (["sdedit", "--i-starts", "1,4", "--target", "8"], ("guided", (2, 28, 28))),
    (["inpaint", "--rect", "0,0,10,28", "--n", "2"], ("samples", (2, 28, 28))),
    (["anagram", "--a", "6", "--b", "9", "--n", "2", "--transform", "hflip"], ("samples", (2, 28, 28))),
    (["hybrid", "--low", "0", "--high", "1", "--n", "2"], ("samples", (2, 28, 28))),
    (["guidance", "--ws", "0,5", "--digits", "1,2", "--n", "1"], ("samples", (2, 2, 1, 28, 28))),
])
def test_cli_runs_on_tiny_settings(cli, spy, png, tmp_path, args, shape, capsys):
    out = tmp_path / "fig.png"
    extra = ["--image", str(png)] if args[0] in ("denoise", "sdedit", "inpaint") else []
    assert cli(args + extra + ["--stride", "200", "--quiet", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    field, want = shape
    assert getattr(spy[args[0]], field).shape == want
    _figure_png(out)
    if extra:  # the user's picture (a dark bar on white, inverted and squared) is what was edited
        from image_track.images import load_png

        np.testing.assert_array_equal(spy[args[0]].original, load_png(png)[0, 0].numpy())


def test_cli_inpaint_with_a_mask_png_keeps_the_pixels_outside_it(cli, spy, png, tmp_path):
    from PIL import Image

    from image_track.images import load_png

    m = np.zeros((56, 56), dtype=np.uint8)  # twice the model's size: the mask is box-resized to 28 x 28
    m[8:30, 20:48] = 255  # white = generate: rows 4..14, columns 10..23 at 28 px
    Image.fromarray(m).save(tmp_path / "mask.png")
    out = tmp_path / "fig.png"
    assert cli(["inpaint", "--image", str(png), "--mask", str(tmp_path / "mask.png"), "--n", "2", "--stride", "200",
                "--quiet", "--out", str(out)]) == 0
    res = spy["inpaint"]
    want = np.zeros((28, 28), dtype=np.float32)
    want[4:15, 10:24] = 1
    np.testing.assert_array_equal(res.mask, want)
    picture, keep = load_png(png)[0, 0].numpy(), want == 0
    for sample in res.samples:
        np.testing.assert_array_equal(sample[keep], picture[keep])
        assert not np.allclose(sample[~keep], picture[~keep])
    _figure_png(out)


@pytest.mark.parametrize("args, word", [
    (["sdedit", "--target", "12"], "target"),
    (["inpaint", "--rect", "1,2,3"], "rect"),
    (["anagram", "--transform", "spin"], "transform"),
    (["hybrid", "--low", "-1"], "low"),
    (["denoise", "--t", "abc"], "--t"),
    (["sdedit", "--i-starts", "99"], "i_starts"),
    (["guidance", "--digits", "3,11"], "digits"),
    (["nonsense"], "invalid choice"),
])
def test_cli_bad_input_exits_2_with_one_line(cli, tmp_path, args, word, capsys):
    assert cli(args + ["--quiet", "--out", str(tmp_path / "x.png")] if args != ["nonsense"] else args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and word in err


def test_cli_missing_checkpoint_exits_2(tmp_path, capsys):
    from image_track.lab import cli as lab_cli

    assert lab_cli.main(["anagram", "--checkpoint", str(tmp_path / "nope.safetensors"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nope.safetensors" in err


def test_cli_wrong_file_exits_2(cli, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    assert cli(["sdedit", "--image", str(bad), "--quiet", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "notes.png" in err


def test_cli_denoiser_on_tiny_settings(tmp_path, monkeypatch):
    import importlib

    from image_track.lab import cli as lab_cli

    lab_denoiser = importlib.import_module("image_track.lab.denoiser")  # the package re-exports the function

    g = torch.Generator().manual_seed(0)
    fake = (torch.rand(24, 1, 28, 28, generator=g) * 2 - 1, torch.rand(8, 1, 28, 28, generator=g) * 2 - 1)
    real = lab_denoiser.denoiser
    monkeypatch.setattr(lab_denoiser, "denoiser", lambda cfg, **kw: real(cfg, data=fake, **kw))
    out, ckpt = tmp_path / "den.png", tmp_path / "den.safetensors"
    assert lab_cli.main(["denoiser", "--epochs", "2", "--subset", "16", "--batch-size", "8", "--quiet",
                         "--out", str(out), "--save", str(ckpt)]) == 0
    _figure_png(out)
    from toydiff.training.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(ckpt)
    assert meta["kind"] == "image_track.lab.denoiser" and meta["config"]["epochs"] == 2
    assert tensors and all(k.startswith("unet.") for k in tensors)


def test_guidance_end_to_end(model, tmp_path):
    res = lab.guidance(model, ws=(0, 5), digits=(1, 2, 3), n=2, stride=100, out=tmp_path / "g.png",
                       gif_dir=tmp_path / "gifs")
    _finite(res.samples, (2, 3, 2, 28, 28))
    assert res.frames.shape == (2, 11, 3, 2, 28, 28)
    np.testing.assert_array_equal(res.frames[:, -1], res.samples)
    assert [Path(p).name for p in res.gifs] == [f"guidance_digit{d}.gif" for d in (1, 2, 3)]
    from PIL import Image

    for p in res.gifs:  # x_t above x̂_0 for 2 scales x 2 samples, 10 steps (stride 100) and the final frame
        with Image.open(p) as im:
            assert im.n_frames == 11 and im.size == (2 * (4 * 30 + 2), 2 * (2 * 30 + 2))
    assert res.accuracy.shape == (2,) and ((0 <= res.accuracy) & (res.accuracy <= 1)).all()
    _figure_png(tmp_path / "g.png")
    # one batch with a block per w gives what each w gives alone (per-sample seeds)
    alone = lab.guidance(model, ws=(5,), digits=(1, 2, 3), n=2, stride=100)
    assert torch.allclose(torch.from_numpy(alone.samples[0]), torch.from_numpy(res.samples[1]), atol=1e-5)
    with pytest.raises(ValueError, match="digits"):
        lab.guidance(model, digits=(10,))


def test_cli_with_a_real_checkpoint_file(tmp_path):
    """The lab loads what image_track.train ships (EMA weights + model config + schedule) via image_track.sampling."""
    from image_track.lab import cli as lab_cli
    from image_track.lab import load_lab_model
    from image_track.models import build_model
    from toydiff.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = build_model("tiny", num_classes=10)
    path = save_checkpoint(tmp_path / "tiny_cond.safetensors", {f"ema.{k}": v for k, v in net.state_dict().items()},
                           {"model_config": net.config, "schedule": S.to_dict(), "format": "image_track.weights/1"})
    m = load_lab_model(path)
    assert m.num_classes == 10 and m.null_label == 10 and m.schedule == S and m.image_size == 28
    out = tmp_path / "a.png"
    assert lab_cli.main(["anagram", "--checkpoint", str(path), "--n", "1", "--stride", "250", "--quiet",
                         "--out", str(out)]) == 0
    _figure_png(out)
    uncond = build_model("tiny")
    p2 = save_checkpoint(tmp_path / "u.safetensors", {f"ema.{k}": v for k, v in uncond.state_dict().items()},
                         {"model_config": uncond.config, "schedule": S.to_dict()})
    with pytest.raises(ValueError, match="class-conditional"):
        load_lab_model(p2)
