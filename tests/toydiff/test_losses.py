"""toydiff.training.losses: the ε-loss and its Min-SNR-γ weights."""

import pytest
import torch

from toydiff.processes import schedules
from toydiff.training.losses import eps_prediction_loss, loss_weights, sample_timesteps

S = schedules.linear(T=1000)


def test_min_snr_weights_cap_the_clean_steps_only():
    t = torch.arange(S.T)
    w = loss_weights(S, t, "min-snr", gamma=5.0)
    snr = S.snr
    noisy = snr <= 5.0
    assert w.shape == (S.T,) and noisy.any() and (~noisy).any()
    assert torch.all(w[noisy] == 1)
    torch.testing.assert_close(w[~noisy].double(), 5.0 / snr[~noisy], rtol=1e-6, atol=0)
    assert torch.all(w[1:] >= w[:-1])  # SNR falls with t, so the weight rises to 1
    assert loss_weights(S, t, "uniform") is None


def test_bad_weighting_arguments_raise():
    t = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="weighting"):
        loss_weights(S, t, "snr")
    with pytest.raises(ValueError, match="gamma"):
        loss_weights(S, t, "min-snr", gamma=0.0)


def test_loss_of_the_true_noise_is_zero_and_of_zero_is_one():
    x0, g = torch.randn(64, 3), torch.Generator().manual_seed(0)
    zero = eps_prediction_loss(lambda x, t: torch.zeros_like(x), S, x0, generator=g)
    assert zero.per_sample.shape == (64,) and 0.7 < float(zero.loss) < 1.3
    noise, t = torch.randn(64, 3), torch.randint(0, S.T, (64,))
    exact = eps_prediction_loss(lambda x, tt: noise, S, x0, t=t, noise=noise)
    assert float(exact.loss) == 0.0


def test_low_noise_sampling_favours_the_last_steps():
    S250 = schedules.constant(beta=0.02, T=250)
    g = torch.Generator().manual_seed(0)
    t = sample_timesteps(S250, 200_000, generator=g, distribution="low-noise")
    u = sample_timesteps(S250, 200_000, generator=g)
    assert t.dtype == torch.long and 0 <= int(t.min()) and int(t.max()) <= 249
    assert float((u < 25).double().mean()) == pytest.approx(0.10, abs=0.005)
    assert float((t < 25).double().mean()) == pytest.approx(0.286, abs=0.005)  # sum of 1/sqrt(n), n <= 25, over n <= 250
    counts = torch.bincount(t, minlength=250).double()
    assert counts[0] > 3 * counts[99] > 0  # P(0) / P(99) = sqrt(100)
    with pytest.raises(ValueError, match="distribution"):
        sample_timesteps(S250, 4, distribution="log-normal")


def test_held_out_loss_equals_a_direct_computation_by_bucket():
    from toydiff.processes.forward import q_sample
    from toydiff.training.losses import held_out_draws, held_out_loss

    x0 = torch.randn(300, 2, generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 3, (300,), generator=torch.Generator().manual_seed(3))

    def model(x, t, y):
        return 0.5 * x + y[:, None].float() * 0.1 + t[:, None] / S.T

    loss, by_bucket = held_out_loss(model, S, x0, seed=7, n_buckets=4, batch_size=64, model_kwargs={"y": y})
    t, noise = held_out_draws(S, x0.shape, seed=7)
    noise = noise.float()
    per = (model(q_sample(S, x0, t, noise), t, y) - noise).pow(2).mean(1).double()
    assert loss == pytest.approx(float(per.mean()), rel=1e-6)
    bucket = t * 4 // S.T
    assert by_bucket == pytest.approx([float(per[bucket == k].mean()) for k in range(4)], rel=1e-6)
    again, _ = held_out_loss(model, S, x0, seed=7, n_buckets=4, model_kwargs={"y": y})
    assert again == loss  # fixed draws: the same number at any batch size
    _, sparse = held_out_loss(model, S, x0[:2], seed=7, n_buckets=50, model_kwargs={"y": y[:2]})
    assert sum(v == v for v in sparse) <= 2  # empty buckets are NaN, not 0
    with pytest.raises(ValueError, match="both t and noise"):
        held_out_loss(model, S, x0, t=t, model_kwargs={"y": y})
