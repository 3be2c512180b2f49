"""SDEdit and inpainting on top of td.sample."""

import pytest
import torch

import toydiff as td
from toydiff.processes import schedules

MU, STD = 1.5, 0.7
ONE = td.GaussianMixture([1.0], [[MU]], [[[STD**2]]])
S = schedules.linear(T=1000)


def noise(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_sdedit_start_points():
    x0 = torch.tensor([[1.0], [2.0], [-0.5]], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    barely = td.sdedit(ONE.eps_fn(S), x0, S, start=0, method="ddim", generator=g)
    assert torch.allclose(barely, x0, atol=0.05), "from t = 0 (noise std 0.01) the edit returns (almost) the input"
    # from the top, SDEdit is ordinary sampling from x_T = q_sample(x0, T-1): it recovers the data law
    many = torch.full((20_000, 1), 5.0, dtype=torch.float64)
    top = td.sdedit(ONE.eps_fn(S), many, S, start=999, steps=50, method="ddim", generator=g)
    assert top.mean().item() == pytest.approx(MU, abs=0.05) and top.var().item() == pytest.approx(STD**2, abs=0.05)
    strided = list(range(990, -1, -30))
    a = td.sdedit(ONE.eps_fn(S), x0, S, steps=strided[10:], method="ddpm", generator=torch.Generator().manual_seed(3))
    # the same as noising to steps[0] = 690 with the generator's first draw, then sampling with the rest
    g = torch.Generator().manual_seed(3)
    x_t = td.q_sample(S, x0, torch.full((3,), 690), td.randn_like(x0, g))
    b = td.sample(ONE.eps_fn(S), x_t, S, steps=strided[10:], method="ddpm", generator=g)
    assert torch.equal(a, b) and not torch.allclose(a, x0, atol=0.05)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"start": True}, TypeError, "start"), ({"start": 1000}, ValueError, "start"), ({"start": -1}, ValueError, "start"),
    ({"start": 10, "steps": 12}, ValueError, "steps"), ({}, ValueError, "start"),
    ({"start": 500, "steps": [400, 0]}, ValueError, "start"),
])
def test_sdedit_bad_arguments_name_the_argument(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        td.sdedit(ONE.eps_fn(S), torch.zeros(2, 1, dtype=torch.float64), S, **kwargs)


def test_inpainting_keeps_the_known_region_exactly():
    D = 16
    x_orig = noise((3, 1, 4, 4), 9, torch.float32)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1:3, 1:3] = 1
    gm = td.GaussianMixture.diagonal([1.0], torch.zeros(1, D), 1.0)
    g = torch.Generator().manual_seed(0)
    proj = td.inpaint_projection(S, x_orig, mask, generator=g)
    out = td.sample(gm.eps_fn(S), noise((3, 1, 4, 4), 1, torch.float32), S, method="ddpm", steps=20,
                    project=proj, generator=g)
    keep = mask.expand_as(out) == 0
    assert torch.equal(out[keep], x_orig[keep])
    assert not torch.allclose(out[~keep], x_orig[~keep])
