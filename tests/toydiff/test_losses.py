"""toydiff.losses: the ε-loss and its Min-SNR-γ weights."""

import pytest
import torch

from toydiff import schedules
from toydiff.losses import eps_prediction_loss, loss_weights, sample_timesteps

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
