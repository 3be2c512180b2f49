"""The discrete processes' closed forms against brute force on tiny tables: the schedule on its grid, the
transition matrices (products of one-step matrices; the matrix exponential of the rate in continuous time), the
posterior q(x_s | x_t, x₀) by Bayes, the reverse rates as the limit of the reverse step, and the exact denoiser
p(x₀ⁱ | x_t) by enumerating every clean sequence. Each would fail with ᾱ read one step off or a sign flipped."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toydiff import discrete as D

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: a second thread only waits

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)


@st.composite
def cases(draw, discrete_time=None):
    """(table, process, s, t): a random table over V ∈ {2, 3}, L ∈ {1, 2, 3} and a process with 0 <= s < t."""
    V, L, seed = draw(st.integers(2, 3)), draw(st.integers(1, 3)), draw(st.integers(0, 10_000))
    g = torch.Generator().manual_seed(seed)
    probs = torch.rand([V] * L, generator=g, dtype=torch.float64) ** 3
    kind = draw(st.sampled_from([D.masked, D.uniform]))
    schedule = draw(st.sampled_from(["linear", "cosine"]))
    cont = draw(st.booleans()) if discrete_time is None else not discrete_time
    if cont:
        s, t = sorted(draw(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=2, unique=True)))
        proc, s, t = kind(None, V, schedule=schedule), torch.tensor([s], dtype=torch.float64), torch.tensor([t], dtype=torch.float64)
    else:
        T = draw(st.integers(1, 6))
        s, t = sorted(draw(st.lists(st.integers(0, T), min_size=2, max_size=2, unique=True)))
        proc, s, t = kind(T, V, schedule=schedule), torch.tensor([s]), torch.tensor([t])
    return D.TableDistribution(probs / probs.sum()), proc, s, t


def one_step(proc, k: int) -> torch.Tensor:
    """Q_k = q(x_k | x_{k-1}) written from the schedule's definition: ᾱ_k / ᾱ_{k−1} kept, else a draw from m."""
    T, V = proc.T, proc.V
    a = [1 - j / T if proc.schedule == "linear" else math.cos(math.pi * j / (2 * T)) for j in (k - 1, k)]
    a = [0.0 if j == T else x for j, x in zip((k - 1, k), a)]
    r = a[1] / a[0]
    m = proc.stationary(V)
    return r * torch.eye(len(m), dtype=torch.float64) + (1 - r) * m


def brute_transition(proc, s: int, t: int) -> torch.Tensor:
    K = proc.n_states()
    Q = torch.eye(K, dtype=torch.float64)
    for k in range(s + 1, t + 1):
        Q = Q @ one_step(proc, k)
    return Q


def brute_transition_continuous(proc, s: float, t: float) -> torch.Tensor:
    """exp(∫_s^t R) with R = β(τ)(1 mᵀ − I), β = −ᾱ'/ᾱ: the generators commute, so ∫β = log(ᾱ_s / ᾱ_t)."""
    a_s, a_t = (float(proc.alpha_bar(torch.tensor([x]))) for x in (s, t))
    m = proc.stationary(proc.V)
    K = len(m)
    gen = torch.ones(K, 1, dtype=torch.float64) * m - torch.eye(K, dtype=torch.float64)
    if a_t == 0.0:
        return torch.ones(K, 1, dtype=torch.float64) * m
    return torch.linalg.matrix_exp(math.log(a_s / a_t) * gen)


def brute(proc, s, t) -> torch.Tensor:
    return (brute_transition_continuous(proc, float(s), float(t)) if proc.continuous
            else brute_transition(proc, int(s), int(t)))


def test_schedules_on_their_grid():
    assert torch.allclose(D.masked(4, 3).alpha_bar(torch.arange(5)), torch.tensor([1, .75, .5, .25, 0], dtype=torch.float64))
    cos = D.uniform(2, 3, schedule="cosine").alpha_bar(torch.arange(3))
    assert torch.allclose(cos, torch.tensor([1.0, math.cos(math.pi / 4), 0.0], dtype=torch.float64))
    assert float(D.masked(None, 2).alpha_bar(0.25, batch=1)) == 0.75
    with pytest.raises(TypeError, match="t must be integer"):
        D.masked(4, 3).alpha_bar(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="t must lie"):
        D.masked(None, 3).alpha_bar(torch.tensor([1.5]))


@SETTINGS
@given(cases())
def test_transition_and_marginal_match_brute_force(case):
    dist, proc, s, t = case
    assert torch.allclose(proc.transition(s, t, batch=1)[0], brute(proc, s, t), atol=1e-10)
    zero = torch.zeros(1, dtype=s.dtype)
    Qbar = brute(proc, zero, t)
    x0 = dist.states
    B = len(x0)
    marg = proc.marginal(x0, t.expand(B))
    assert torch.allclose(marg, Qbar[x0], atol=1e-10)


@SETTINGS
@given(cases())
def test_posterior_matches_bayes_on_the_chain(case):
    """q(x_s | x_t, x₀) = Q_{s→t}[x_s, x_t] Q̄_s[x₀, x_s] / Q̄_t[x₀, x_t], every (x₀, x_t) pair with q(x_t | x₀) > 0."""
    dist, proc, s, t = case
    zero = torch.zeros(1, dtype=s.dtype)
    Qs, Qt, Qst = brute(proc, zero, s), brute(proc, zero, t), brute(proc, s, t)
    K, V = proc.n_states(), proc.V
    pairs = [(a, b) for a in range(V) for b in range(K) if Qt[a, b] > 0]
    x0 = torch.tensor([[a] for a, _ in pairs])
    xt = torch.tensor([[b] for _, b in pairs])
    got = proc.posterior(xt, x0, s.expand(len(pairs)), t.expand(len(pairs)))[:, 0]
    want = torch.stack([Qst[:, b] * Qs[a] / Qt[a, b] for a, b in pairs])
    assert torch.allclose(got, want, atol=1e-9)
    # marginalising x_t out of the posterior gives q(x_s | x₀): the chain's consistency
    joint = torch.zeros(V, K, dtype=torch.float64)
    for (a, b), row in zip(pairs, got):
        joint[a] += Qt[a, b] * row
    assert torch.allclose(joint, Qs[:V], atol=1e-9)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(cases(discrete_time=False))
def test_reverse_rates_are_the_limit_of_the_reverse_step(case):
    dist, proc, _, t = case
    t = t.clamp(0.05, 0.95)
    x0 = dist.sample(8, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    xt = proc.q_sample(x0, t.expand(8), g)
    p0 = dist.denoiser(proc)(xt, t.expand(8))
    h = 1e-6
    step = proc.reverse_probs(xt, p0, (t - h).expand(8), t.expand(8))
    rates = proc.reverse_rates(xt, p0, t.expand(8))
    off = 1 - torch.nn.functional.one_hot(xt, proc.n_states())
    assert torch.allclose(step * off / h, rates, rtol=1e-3, atol=1e-3)


def brute_denoiser(dist, proc, xt: torch.Tensor, t) -> torch.Tensor:
    """Σ over every clean sequence of p(x₀) ∏ⱼ Q̄_t[x₀ʲ, x_tʲ], per-position marginals."""
    Qt = brute(proc, torch.zeros(1, dtype=t.dtype), t)
    V, L = dist.V, dist.L
    out = torch.zeros(len(xt), L, V, dtype=torch.float64)
    for b, row in enumerate(xt.tolist()):
        for x0 in itertools.product(range(V), repeat=L):
            w = float(dist.probs[x0]) * math.prod(float(Qt[a, c]) for a, c in zip(x0, row))
            for i, a in enumerate(x0):
                out[b, i, a] += w
    return out / out[:, :1].sum(-1, keepdim=True)


@SETTINGS
@given(cases())
def test_the_exact_denoiser_matches_enumeration(case):
    dist, proc, _, t = case
    g = torch.Generator().manual_seed(2)
    x0 = dist.sample(6, g)
    xt = proc.q_sample(x0, t.expand(6), g)
    got = dist.denoiser(proc)(xt, t.expand(6))
    assert got.shape == (6, dist.L, dist.V)
    assert torch.allclose(got, brute_denoiser(dist, proc, xt, t), atol=1e-9)


def test_the_denoiser_off_the_support_and_for_another_V():
    dist = D.TableDistribution(torch.tensor([[0.5, 0.0], [0.0, 0.5]]))
    proc = D.masked(None, 2)
    off = dist.denoiser(proc)(torch.tensor([[0, 1], [2, 2]]), torch.tensor([0.5, 0.5]))  # [0, 1] is impossible
    assert torch.allclose(off[0], torch.eye(2, dtype=torch.float64))  # the likelihood alone: symbols kept
    assert torch.allclose(off[1], torch.full((2, 2), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="V=2 differs"):
        dist.denoiser(D.masked(None, 3))
    assert torch.allclose(dist.denoiser(proc)(torch.tensor([[2, 1]]), torch.tensor([0.5]))[0],
                          torch.tensor([[0.0, 1.0], [0.0, 1.0]], dtype=torch.float64))


def test_q_sample_frequencies_follow_the_marginal():
    proc, n = D.uniform(None, 3, schedule="cosine"), 20_000
    x0 = torch.zeros(n, 1, dtype=torch.long)
    xt = proc.q_sample(x0, 0.5, torch.Generator().manual_seed(3))
    freq = torch.bincount(xt[:, 0], minlength=3).double() / n
    want = proc.marginal(x0[:1], torch.tensor([0.5]))[0, 0]
    assert (freq - want).abs().max() < 4 * math.sqrt(0.25 / n)
    m = D.masked(10, 3).q_sample(torch.zeros(n, 1, dtype=torch.long), 3, torch.Generator().manual_seed(4))
    assert abs(float((m == 3).double().mean()) - 0.3) < 4 * math.sqrt(0.25 / n)
    with pytest.raises(ValueError, match="V: the vocabulary size is unknown"):
        D.masked(10).q_sample(x0[:2], 3)
    assert D.masked(10).q_sample(x0[:2], 10, V=3).tolist() == [[3], [3]]
