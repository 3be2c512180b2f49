"""Guidance combinators: classifier-free guidance, autoguidance and its limited interval."""

import pytest
import torch

import toydiff as td
from toydiff.processes import schedules

S = schedules.linear(T=1000)


def noise(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


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
    with pytest.raises(ValueError, match="w must be"):
        td.autoguidance(good, bad, 0.5)
    for w in (True, "2"):
        with pytest.raises(TypeError, match="w must be"):
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


def test_autoguidance_interval_switches_guidance_off_at_and_above_t_max():
    # two denoisers that cannot be confused: good says 1, bad says 0, so guided = 0 + w (1 - 0) = w
    calls = []
    good = lambda x, t: torch.ones_like(x)
    bad = lambda x, t: calls.append(t.clone()) or torch.zeros_like(x)
    guided = td.autoguidance(good, bad, 3.0, t_max=500)
    x = torch.zeros(5, 2, dtype=torch.float64)
    t = torch.tensor([0, 499, 500, 501, 999])
    out = guided(x, t)
    assert out[:, 0].tolist() == [3.0, 3.0, 1.0, 1.0, 1.0] and torch.equal(out[:, 0], out[:, 1])
    # all steps outside the interval: the bad model is not even evaluated
    calls.clear()
    assert torch.equal(guided(x, torch.full((5,), 700)), torch.ones_like(x)) and calls == []
    assert torch.equal(guided(x, torch.full((5,), 10)), torch.full_like(x, 3.0)) and len(calls) == 1
    # without t_max every step is guided
    assert torch.equal(td.autoguidance(good, bad, 3.0)(x, torch.full((5,), 999)), torch.full_like(x, 3.0))


def test_autoguidance_interval_changes_only_the_low_noise_part_of_a_sampling_run():
    good = td.GaussianMixture([1.0], [[2.0, 0.0]], [torch.eye(2).tolist()]).eps_fn(S)
    bad = td.GaussianMixture([1.0], [[1.0, 0.0]], [(2 * torch.eye(2)).tolist()]).eps_fn(S)
    x_T = noise((16, 2), 4)
    seen = {}
    record = lambda name: lambda d: seen.setdefault(name, []).append(d["x_prev"].clone())
    td.sample(good, x_T, S, method="ddim", steps=10, callback=record("plain"))
    td.sample(td.autoguidance(good, bad, 2.0, t_max=500), x_T, S, method="ddim", steps=10, callback=record("interval"))
    timesteps = S.respace(10).timesteps                      # 999, 888, ..., 0
    first_guided = next(i for i, t in enumerate(timesteps) if t < 500)
    for i, (a, b) in enumerate(zip(seen["plain"], seen["interval"])):
        assert torch.equal(a, b) == (i < first_guided), f"step {i} (t = {timesteps[i]})"


@pytest.mark.parametrize("make,exc", [
    (lambda e: td.autoguidance(e, e, 2.0, t_max=0), ValueError), (lambda e: td.autoguidance(e, e, 2.0, t_max=True), TypeError),
    (lambda e: td.classifier_free_guidance(e, e, float("nan")), ValueError),
    (lambda e: td.conditional_eps_fn(e, torch.zeros(2), w=2.0), ValueError),
    (lambda e: td.conditional_eps_fn(e, torch.zeros(2), w="2", null_label=3), TypeError),
])
def test_combinators_refuse_bad_arguments(make, exc):
    with pytest.raises(exc, match="t_max|w|null_label"):
        make(lambda x, t: x)
