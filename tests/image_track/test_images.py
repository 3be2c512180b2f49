"""image_track.images: a user's PNG of any size or mode becomes a 28x28 digit in [-1, 1]; blur; masks."""

import numpy as np
import pytest
import torch

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from image_track.images import (  # noqa: E402
    downsample,
    gaussian_blur,
    gaussian_kernel1d,
    load_mask_png,
    load_png,
    save_png,
    scaled_blur,
)


def _digit(size: int = 64) -> np.ndarray:
    """A dark vertical bar ("a 1") on white paper, uint8 [size, size]."""
    a = np.full((size, size), 255, dtype=np.uint8)
    a[size // 5: -size // 5, size // 2 - size // 16: size // 2 + size // 16] = 0
    return a


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "1"])
def test_any_mode_and_size_becomes_a_28px_digit(tmp_path, mode):
    path = tmp_path / f"digit_{mode}.png"
    Image.fromarray(_digit(64), mode="L").convert(mode).save(path)
    x = load_png(path)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1
    # white paper became the dark background, the dark stroke the bright digit
    assert x[0, 0, 0, 0] < -0.9 and x[0, 0, 14, 14] > 0.5


def test_non_square_keeps_aspect_and_transparent_counts_as_paper(tmp_path):
    a = np.zeros((40, 100, 4), dtype=np.uint8)  # fully transparent ...
    a[5:35, 45:55] = (0, 0, 0, 255)  # ... with an opaque black stroke
    path = tmp_path / "wide.png"
    Image.fromarray(a, mode="RGBA").save(path)
    x = load_png(path)[0, 0]
    assert x.shape == (28, 28)
    assert x[14, 14] > 0.5 and x[2, 14] < -0.9  # padded rows above the picture are background


def test_invert_flag(tmp_path):
    path = tmp_path / "d.png"
    Image.fromarray(_digit(28)).save(path)
    assert torch.allclose(load_png(path, invert=True), load_png(path))
    assert torch.allclose(load_png(path, invert=False), -load_png(path))
    with pytest.raises(ValueError, match="invert"):
        load_png(path, invert="sometimes")


def test_non_image_file_gives_a_clear_error(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    with pytest.raises(ValueError, match="notes.png"):
        load_png(bad)
    with pytest.raises(ValueError, match="notes.png"):
        load_mask_png(bad)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_png(tmp_path / "missing.png")


def test_mask_png_thresholds_to_zero_one(tmp_path):
    a = np.zeros((56, 56), dtype=np.uint8)
    a[:28, :] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(a).convert("RGB").save(path)
    m = load_mask_png(path)
    assert m.shape == (1, 1, 28, 28)
    assert set(m.unique().tolist()) == {0.0, 1.0}
    assert m[0, 0, :14].eq(1).all() and m[0, 0, 14:].eq(0).all()


def test_save_png_round_trip(tmp_path):
    x = torch.linspace(-1, 1, 28 * 28).reshape(1, 1, 28, 28)
    p = save_png(x, tmp_path / "out" / "x.png")
    back = load_png(p, invert=False)
    assert (back - x).abs().max() < 2.5 / 255


def test_gaussian_blur_preserves_constants_and_mean():
    k = gaussian_kernel1d(5, 1.0)
    assert torch.isclose(k.sum(), torch.tensor(1.0, dtype=torch.float64)) and torch.equal(k, k.flip(0))
    c = torch.full((2, 1, 28, 28), 0.3)
    assert torch.allclose(gaussian_blur(c, 15, 0.875), c)
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = gaussian_blur(x, 7, 1.5)
    assert y.shape == x.shape and y.std() < x.std()
    with pytest.raises(ValueError, match="kernel_size"):
        gaussian_blur(x, 4, 1.0)


def test_scaled_blur_from_the_seed_setting():
    assert scaled_blur(64) == (33, 2.0)
    k, s = scaled_blur(28)
    assert k == 15 and s == pytest.approx(0.875)


def test_downsample_is_an_area_average():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.allclose(downsample(x, 2), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))


def test_pictures_over_the_pixel_limit_are_refused_from_the_header(tmp_path, monkeypatch):
    from PIL import Image

    from image_track import images

    Image.new("1", (5000, 4000), 1).save(tmp_path / "big.png")  # 20 Mpx canvas, a small file
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self) or None)
    with pytest.raises(ValueError, match=r"big\.png is 5000 x 4000 pixels; at most 16,777,216"):
        images.load_png(tmp_path / "big.png")
    assert not decoded  # refused before decoding
    Image.new("L", (64, 32), 0).save(tmp_path / "ok.png")
    with pytest.raises(ValueError, match="at most 1,000 pixels"):
        images._open(tmp_path / "ok.png", "image", max_pixels=1000)


def test_a_decompression_bomb_is_a_value_error_naming_the_file(tmp_path, monkeypatch):
    from PIL import Image

    from image_track import images

    Image.new("L", (100, 100), 0).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # pillow raises above twice this
    with pytest.raises(ValueError, match=r"bomb\.png claims a canvas too large"):
        images.load_mask_png(tmp_path / "bomb.png")
