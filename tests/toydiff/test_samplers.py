import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toydiff as td
from toydiff import schedules

S = schedules.linear(T=1000)
MU, STD = 1.5, 0.7
ONE = td.GaussianMixture([1.0], [[MU]], [[[STD**2]]])
DETERMINISTIC = ("ddim", "euler", "heun", "dpm++2m")


def noise(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("method,kw", [("ddpm", {"variance": "beta"}), ("ddpm", {"variance": "posterior"}),
                                       ("ddim", {"eta": 0.0}), ("ddim", {"eta": 1.0}), ("euler", {}),
                                       ("heun", {}), ("dpm++2m", {})])
def test_every_sampler_recovers_a_gaussian_at_full_steps(method, kw):
    n = 20_000
    x0 = td.sample(ONE.eps_fn(S), noise((n, 1), 0), S, method=method, generator=torch.Generator().manual_seed(1), **kw)
    # standard errors: mean 0.005, variance 0.005
    assert x0.mean().item() == pytest.approx(MU, abs=0.03)
    assert x0.var().item() == pytest.approx(STD**2, abs=0.03)


def test_ddpm_without_noise_collapses_the_spread():
    x0 = td.sample(ONE.eps_fn(S), noise((5000, 1), 0), S, method="ddpm-no-noise")
    assert x0.mean().item() == pytest.approx(MU, abs=0.1)
    assert x0.var().item() < 0.25 * STD**2, "without sigma*z every step jumps to a mean: the spread is lost"


@pytest.mark.parametrize("method", DETERMINISTIC)
def test_deterministic_given_x_T(method):
    x_T = noise((64, 2), 3)
    gm = td.GaussianMixture.diagonal([1, 1], [[-2.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    a = td.sample(gm.eps_fn(S), x_T, S, method=method, steps=20, generator=torch.Generator().manual_seed(1))
    b = td.sample(gm.eps_fn(S), x_T, S, method=method, steps=20, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


@pytest.mark.parametrize("method", td.METHODS)
def test_same_seed_same_result_and_other_seed_differs(method):
    x_T = noise((32, 2), 3)
    gm = td.GaussianMixture.diagonal([1, 1], [[-2.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    run = lambda seed: td.sample(gm.eps_fn(S), x_T, S, method=method, steps=25, eta=0.5,
                                 generator=torch.Generator().manual_seed(seed))
    assert torch.equal(run(7), run(7))
    if method in ("ddpm", "ddim"):
        assert not torch.equal(run(7), run(8))


@given(steps=st.integers(2, 60), seed=st.integers(0, 1000))
def test_ddim_eta_one_is_ddpm_with_posterior_variance(steps, seed):
    x_T = noise((8, 2), seed)
    gm = td.GaussianMixture.diagonal([1, 2], [[-1.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    a = td.sample(gm.eps_fn(S), x_T, S, method="ddim", eta=1.0, steps=steps, generator=torch.Generator().manual_seed(seed))
    b = td.sample(gm.eps_fn(S), x_T, S, method="ddpm", variance="posterior", steps=steps,
                  generator=torch.Generator().manual_seed(seed))
    assert torch.allclose(a, b, atol=1e-8)


@given(steps=st.integers(1, 80))
def test_euler_on_the_pf_ode_equals_ddim_eta_zero(steps):
    x_T = noise((8, 2), steps)
    gm = td.GaussianMixture.diagonal([1, 2], [[-1.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    a = td.sample(gm.eps_fn(S), x_T, S, method="euler", steps=steps)
    b = td.sample(gm.eps_fn(S), x_T, S, method="ddim", steps=steps)
    assert torch.allclose(a, b, atol=1e-8)


@pytest.mark.parametrize("shape", [(6, 1), (6, 2), (6, 1, 28, 28)])
@pytest.mark.parametrize("method", td.METHODS)
def test_same_call_for_every_rank(shape, method):
    D = math.prod(shape[1:])
    gm = td.GaussianMixture.diagonal([1, 1], torch.stack([torch.full((D,), -0.5), torch.full((D,), 0.5)]), [0.3, 0.4])
    x_T = noise(shape, 0, torch.float32)
    eps = gm.eps_fn(S)(x_T, torch.full((6,), 500))
    assert eps.shape == shape and eps.dtype == torch.float32
    out = td.sample(gm.eps_fn(S), x_T, S, method=method, steps=8, generator=torch.Generator().manual_seed(0))
    assert out.shape == shape and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_guidance_scale_zero_and_one():
    cond = td.GaussianMixture([1.0], [[2.0, 0.0]], [torch.eye(2).tolist()]).eps_fn(S)
    uncond = td.GaussianMixture([1, 1], [[2.0, 0.0], [-2.0, 0.0]], [torch.eye(2).tolist()] * 2).eps_fn(S)
    x, t = noise((5, 2), 1), torch.full((5,), 300)
    assert torch.allclose(td.classifier_free_guidance(cond, uncond, 0.0)(x, t), uncond(x, t))
    assert torch.allclose(td.classifier_free_guidance(cond, uncond, 1.0)(x, t), cond(x, t))
    w3 = td.classifier_free_guidance(cond, uncond, 3.0)(x, t)
    assert torch.allclose(w3, uncond(x, t) + 3 * (cond(x, t) - uncond(x, t)))


def test_autoguidance_is_the_good_model_at_one_and_extrapolates_beyond():
    good = td.GaussianMixture([1.0], [[2.0, 0.0]], [torch.eye(2).tolist()]).eps_fn(S)
    bad = td.GaussianMixture([1.0], [[1.0, 0.0]], [(2 * torch.eye(2)).tolist()]).eps_fn(S)
    x, t = noise((5, 2), 2), torch.full((5,), 300)
    assert torch.equal(td.autoguidance(good, bad, 1.0)(x, t), good(x, t))
    assert torch.allclose(td.autoguidance(good, bad, 2.5)(x, t), bad(x, t) + 2.5 * (good(x, t) - bad(x, t)))
    # extrapolating away from a wider, off-centre guide pulls samples further than the good model alone
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(4000, 2, generator=g, dtype=torch.float64)
    plain = td.sample(good, x_T, S, method="ddim", steps=50)
    guided = td.sample(td.autoguidance(good, bad, 2.0), x_T, S, method="ddim", steps=50)
    assert guided.std(0).mean() < plain.std(0).mean() and guided[:, 0].mean() > plain[:, 0].mean()
    for w in (0.5, True, "2"):
        with pytest.raises(ValueError, match="w must be"):
            td.autoguidance(good, bad, w)


def test_batched_conditional_guidance_matches_the_combinator():
    means = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0]])

    def model(x, t, y):  # label k -> component k; label 3 (null) -> the whole mixture
        out = torch.empty_like(x)
        for k in range(4):
            sel = y == k
            if sel.any():
                gm = td.GaussianMixture.diagonal([1.0] * 3, means, 0.5) if k == 3 else \
                    td.GaussianMixture.diagonal([1.0], means[k:k + 1], 0.5)
                out[sel] = gm.eps_fn(S)(x[sel], t[sel])
        return out

    y = torch.tensor([0, 1, 2, 0])
    x, t = noise((4, 2), 2), torch.full((4,), 400)
    for w in [0.0, 1.0, 4.0]:
        batched = td.conditional_eps_fn(model, y, w=w, null_label=3)(x, t)
        separate = td.guidance_combine(model(x, t, torch.full_like(y, 3)), model(x, t, y), w)
        assert torch.allclose(batched, separate, atol=1e-6)


def test_per_sample_generators_make_sample_i_independent_of_batch_size():
    gm = td.GaussianMixture.diagonal([1, 1], [[-2.0, 0.0], [2.0, 1.0]], [0.5, 0.8])
    def run(n):
        gens = [torch.Generator().manual_seed(100 + i) for i in range(n)]
        x_T = torch.stack([torch.randn(2, generator=g, dtype=torch.float64) for g in gens])
        return td.sample(gm.eps_fn(S), x_T, S, method="ddpm", steps=30, generator=gens)
    assert torch.allclose(run(3), run(7)[:3])


def test_callback_receives_every_step():
    seen = []
    td.sample(ONE.eps_fn(S), noise((4, 1), 0), S, method="heun", steps=10, callback=seen.append)
    assert [d["step"] for d in seen] == list(range(10))
    assert seen[0]["t"] == 999 and seen[-1]["t_prev"] == -1
    for d in seen:
        assert {"step", "t", "t_prev", "x_t", "x0_hat", "eps", "x_prev"} <= d.keys()
        assert d["x_t"].shape == d["x0_hat"].shape == d["eps"].shape == (4, 1)
    calls = []
    counting = lambda x, t: calls.append(1) or ONE.eps_fn(S)(x, t)
    td.sample(counting, noise((4, 1), 0), S, method="heun", steps=10)
    assert len(calls) == td.function_evaluations("heun", 10) == 19


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
    assert a.shape == x0.shape and torch.isfinite(a).all()


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


@pytest.mark.parametrize("kwargs,match", [
    ({"steps": 1001}, "steps"), ({"steps": 0}, "steps"), ({"eta": -0.1}, "eta"), ({"eta": 1.5}, "eta"),
    ({"method": "plms"}, "method"), ({"variance": "learned"}, "variance"), ({"spacing": "uniform", "steps": 5}, "spacing"),
    ({"clip_x0": -1.0}, "clip_x0"),
])
def test_bad_arguments_raise_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        td.sample(ONE.eps_fn(S), noise((2, 1), 0), S, **kwargs)


def test_bad_tensors_raise():
    x = noise((2, 1), 0)
    x[1, 0] = float("nan")
    with pytest.raises(ValueError, match="x_T"):
        td.sample(ONE.eps_fn(S), x, S)
    with pytest.raises(TypeError, match="x_T"):
        td.sample(ONE.eps_fn(S), torch.zeros(2, 1, dtype=torch.long), S)
    with pytest.raises(ValueError, match="eps_fn returned"):
        td.sample(lambda x, t: torch.zeros(2, 3), noise((2, 1), 0), S, steps=3)
    with pytest.raises(ValueError, match="shape"):
        ONE.eps_fn(S)(noise((2, 2), 0), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="schedule"):
        td.sample(ONE.eps_fn(S), noise((2, 1), 0), "linear")


def test_terminal_warning_for_a_start_that_keeps_signal():
    s = schedules.linear(T=1000)
    with pytest.warns(td.TerminalSNRWarning):
        td.sample(ONE.eps_fn(s), noise((2, 1), 0), s, method="ddim", steps=2, spacing="leading")
