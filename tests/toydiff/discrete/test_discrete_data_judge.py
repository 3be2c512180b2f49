"""The tables (validation, sampling, log-probabilities, marginals against enumeration, the data sets) and the
judge: the count floor, the exact MDLM floor equal to H(X) in continuous time (above it with T steps), and the
D3PM bound of the exact denoiser against that floor and against a worse denoiser."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toydiff import discrete as D
from toydiff.discrete import judge

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: a second thread only waits


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(2, 3), st.integers(1, 4), st.integers(0, 1000))
def test_marginals_and_log_prob_against_enumeration(V, L, seed):
    probs = torch.rand([V] * L, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    dist = D.TableDistribution(probs / probs.sum())
    want = torch.zeros(L, V, dtype=torch.float64)
    for x in itertools.product(range(V), repeat=L):
        for i, a in enumerate(x):
            want[i, a] += dist.probs[x]
    assert torch.allclose(dist.marginals(), want)
    assert torch.equal(dist.decode(dist.index(dist.states)), dist.states)
    x = dist.states[[0, -1]]
    assert torch.allclose(dist.log_prob(x), probs.reshape(-1)[[0, -1]].log() - probs.sum().log())


def test_sampling_follows_the_table_and_bad_tables_are_refused():
    dist = D.shapes()
    x = dist.sample(20_000, torch.Generator().manual_seed(0))
    emp, err = judge.marginal_error(dist, x)
    assert emp.shape == (9, 2) and err < 4 * math.sqrt(0.25 / 20_000)
    for bad, match in [(torch.ones(2, 3) / 6, "shape"), (torch.tensor([0.5, 0.6]), "sum to 1"),
                       (torch.tensor([1.5, -0.5]), "non-negative")]:
        with pytest.raises(ValueError, match=match):
            D.TableDistribution(bad)
    with pytest.raises(ValueError, match="symbols"):
        dist.log_prob(torch.full((1, 9), 2))


def test_the_data_sets():
    for name, (V, L) in {"markov": (4, 6), "words": (5, 5), "shapes": (2, 9)}.items():
        dist = D.dataset(name)
        assert (dist.V, dist.L) == (V, L) and abs(float(dist.probs.sum()) - 1) < 1e-12
    chain = D.markov_chain(V=3, L=2, stay=0.5, up=0.5)
    assert float(chain.probs[0, 0]) == pytest.approx(1 / 6) and float(chain.probs[0, 2]) == 0.0
    clean = D.words(typo=0.0)
    assert float(clean.probs.reshape(-1).max()) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="name"):
        D.dataset("nope")


def test_count_floor_and_kl_of_the_truth():
    dist, g = D.shapes(), torch.Generator().manual_seed(1)
    floor = judge.count_floor(dist, 2000, draws=8, generator=g)
    kl, tv = judge.kl_tv(dist, dist.sample(2000, g))
    assert abs(kl - floor["kl"]) < 5 * floor["kl_sd"] and abs(tv - floor["tv"]) < 5 * floor["tv_sd"]
    far = judge.kl_tv(dist, torch.zeros(2000, 9, dtype=torch.long))
    assert far[0] > 1.0 and far[1] > 0.9


@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.integers(2, 3), st.integers(1, 4), st.integers(0, 1000), st.sampled_from(["linear", "cosine"]))
def test_mdlm_floor_is_the_entropy_in_continuous_time(V, L, seed, schedule):
    probs = torch.rand([V] * L, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) ** 4
    dist = D.TableDistribution(probs / probs.sum())
    assert judge.mdlm_floor(dist, D.masked(None, V, schedule=schedule)) == pytest.approx(dist.entropy(), abs=1e-9)
    assert judge.mdlm_floor(dist, D.masked(3, V, schedule=schedule)) >= dist.entropy() - 1e-12


def test_d3pm_bound_of_the_exact_denoiser_is_the_floor():
    dist, g = D.words(), torch.Generator().manual_seed(2)
    proc = D.masked(6, dist.V)
    exact = D.masked(6, dist.V)
    bound, se, terms = judge.d3pm_elbo(dist, proc, dist.denoiser(exact), n=2000, generator=g)
    assert terms.shape == (6,) and abs(bound - judge.mdlm_floor(dist, proc)) < 4 * se
    flat = lambda x, t: torch.full((*x.shape, dist.V), 1.0 / dist.V)
    worse, se2, _ = judge.d3pm_elbo(dist, proc, flat, n=2000, generator=g)
    assert worse > bound + 4 * (se + se2)
    cont = D.masked(None, dist.V)
    mean, err = judge.mdlm_loss(dist, cont, dist.denoiser(cont), torch.tensor([0.3, 0.7]), n=2000, generator=g)
    k = torch.arange(dist.L + 1, dtype=torch.float64)
    c = judge.masked_ce_curve(dist)
    for tk, m, e in zip([0.3, 0.7], mean, err):
        exact_ce = float((c * tk ** k * (1 - tk) ** (dist.L - k)).sum()) / tk  # linear: w = 1/t, 1 − ᾱ = t
        assert abs(float(m) - exact_ce) < 4 * float(e)


def _imports_discrete(path) -> bool:
    import ast
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(a.name.startswith("toydiff.discrete") for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module and (
                node.module.startswith("toydiff.discrete")
                or (node.module == "toydiff" and any(a.name == "discrete" for a in node.names))):
            return True
    return False


def test_the_core_does_not_import_the_discrete_package():
    """toydiff.discrete sits on the core: only the public face (toydiff/__init__.py) and the package import it
    (function-level imports count)."""
    from pathlib import Path
    root = Path(D.__file__).resolve().parents[1]
    importing = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if _imports_discrete(p))
    assert "__init__.py" in importing  # the check sees an import where there is one
    assert [p for p in importing if not p.startswith("discrete/") and p != "__init__.py"] == []
