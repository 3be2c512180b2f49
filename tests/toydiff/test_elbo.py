"""The variational bound term by term: KL terms are non-negative, the oracle's are the smallest."""

import pytest
import torch

import toydiff as td
from toydiff.evaluation.elbo import elbo_terms, elbo_weights

S = td.schedules.linear(T=100, beta_start=1e-4, beta_end=0.2)
GM = td.GaussianMixture([1.0, 2.0], [[-1.0], [1.5]], [[[0.09]], [[0.25]]])
X = GM.sample(400, torch.Generator().manual_seed(0))


def _terms(fn, variance="posterior"):
    return elbo_terms(fn, X, S, variance=variance, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_terms_are_non_negative_and_the_oracle_is_best(variance):
    exact = GM.eps_fn(S)
    oracle = _terms(exact, variance)
    shifted = _terms(lambda x, t: exact(x, t) + 0.2, variance)
    assert (oracle.per_t[1:] >= 0).all() and oracle.prior >= 0
    assert (shifted.per_t >= oracle.per_t).all()  # same draws: + 0.2 adds 0.04 w_t per point, far above the noise
    assert shifted.total > oracle.total


def test_the_bound_is_above_the_true_nll():
    oracle = _terms(GM.eps_fn(S), "beta")
    nll = float(-GM.log_prob(X).mean())
    assert oracle.total >= nll - 3 * float(oracle.stderr.pow(2).sum().sqrt())


def test_the_gap_is_the_weighted_excess_error():
    exact = GM.eps_fn(S)
    oracle, shifted = _terms(exact), _terms(lambda x, t: exact(x, t) + 0.2)
    w, _ = elbo_weights(S)
    # E||eps - eps* - d||^2 - E||eps - eps*||^2 = d^2 - 2 d E[eps - eps*]: d^2 up to Monte Carlo noise
    gap = (shifted.per_t - oracle.per_t) / w
    assert gap.mean() == pytest.approx(0.04, abs=0.01)


@pytest.mark.parametrize("call, match", [
    (lambda: elbo_terms(None, X, S), "eps_fn"), (lambda: elbo_terms(GM.eps_fn(S), X[:, 0], S), "x0"),
    (lambda: elbo_terms(GM.eps_fn(S), X, "linear"), "schedule"),
    (lambda: elbo_terms(GM.eps_fn(S), X, S, variance="learned"), "variance"),
    (lambda: elbo_terms(GM.eps_fn(S), X, S, batch=0), "batch")])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


def test_a_vp_process_stands_for_its_schedule_and_a_flow_process_is_refused():
    from toydiff.processes import interpolants
    from toydiff.processes.flow import InterpolantProcess
    from toydiff.processes.vp import VPProcess

    a = elbo_terms(GM.eps_fn(S), X, S, generator=torch.Generator().manual_seed(1))
    b = elbo_terms(GM.eps_fn(S), X, VPProcess(S), generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.per_t, b.per_t) and a.prior == b.prior
    assert all(torch.equal(u, v) for u, v in zip(elbo_weights(S), elbo_weights(VPProcess(S))))
    with pytest.raises(TypeError, match="schedule"):
        elbo_terms(GM.eps_fn(S), X, InterpolantProcess(interpolants.linear()))
