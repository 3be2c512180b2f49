import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from toydiff.toy.datasets import DATASETS, Normalizer, get_dataset, list_datasets


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_draws_reproducible_points_of_its_dimension(name):
    ds = get_dataset(name)
    x = ds.sample(500, gen(0))
    assert x.shape == (500, ds.dim) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert torch.equal(x, ds.sample(500, gen(0)))
    assert not torch.equal(x, ds.sample(500, gen(1)))
    assert x.std(0).min() > 0.1  # not collapsed


def test_registry_covers_the_issue_and_filters_by_dimension():
    assert {"two_gaussians", "8gaussians", "25gaussians", "moons", "swissroll", "rings", "checkerboard"} <= set(DATASETS)
    assert "two_gaussians" in list_datasets(dim=1) and "moons" not in list_datasets(dim=1)
    assert set(list_datasets(1)) | set(list_datasets(2)) == set(DATASETS)
    assert get_dataset().name == "two_gaussians"  # the seed exercise is the default


def test_seed_exercise_mixture():
    gm = get_dataset("two_gaussians").mixture
    assert torch.allclose(gm.weights, torch.tensor([1 / 3, 2 / 3], dtype=torch.float64))
    assert gm.means.flatten().tolist() == [-4.0, 4.0]
    assert torch.allclose(gm.covs.flatten(), torch.ones(2, dtype=torch.float64))


def test_ring_and_grid_geometry():
    ring = get_dataset("8gaussians").mixture
    assert ring.K == 8 and torch.allclose(ring.means.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64))
    grid = get_dataset("25gaussians").mixture
    assert grid.K == 25 and set(grid.means[:, 0].tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}


@pytest.mark.parametrize("name", [n for n in DATASETS if get_dataset(n).has_oracle])
def test_mixture_samples_follow_the_oracle(name):
    ds = get_dataset(name)
    x = ds.sample(100_000, gen(3)).double()
    exact = Normalizer.from_mixture(ds.mixture)
    assert torch.allclose(x.mean(0), exact.mean, atol=0.03 * exact.std.max())
    assert torch.allclose(x.std(0), exact.std, rtol=0.02)


def test_shapes_without_closed_form_have_no_oracle():
    for name in ("moons", "swissroll", "rings", "checkerboard"):
        assert not get_dataset(name).has_oracle


def test_checkerboard_only_fills_black_squares():
    x = get_dataset("checkerboard").sample(5000, gen(0)).double()
    cell = torch.floor(x + 2).long()  # 4 x 4 board of unit squares centred at 0
    assert ((cell[:, 0] + cell[:, 1]) % 2 == 0).all()


@given(seed=st.integers(0, 1000), scale=st.floats(0.1, 10), shift=st.floats(-5, 5))
def test_normalizer_round_trip_and_standardises(seed, scale, shift):
    x = (torch.randn(300, 2, generator=gen(seed), dtype=torch.float64) * scale + shift)
    norm = Normalizer.fit(x)
    z = norm.forward(x)
    assert torch.allclose(z.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(z.std(0), torch.ones(2, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(norm.inverse(z), x, atol=1e-9 * scale + 1e-9)
    again = Normalizer.from_dict(norm.to_dict())
    assert torch.equal(again.mean, norm.mean) and torch.equal(again.std, norm.std)


def test_normalizer_oracle_is_the_law_of_normalised_data():
    ds = get_dataset("two_gaussians")
    x = ds.sample(50_000, gen(5)).double()
    norm = Normalizer.fit(x)
    law = norm.oracle(ds.mixture)
    z = norm.forward(x)
    # the exact log-density of z equals that of x minus log std (change of variables)
    assert torch.allclose(law.log_prob(z), ds.mixture.log_prob(x) + norm.std.log().sum(), atol=1e-9)
    assert law.mean().item() == pytest.approx(0.0, abs=0.02)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="dataset"):
        get_dataset("nope")
    with pytest.raises(ValueError, match="n must"):
        get_dataset().sample(0)
    with pytest.raises(ValueError, match="x must"):
        Normalizer.fit(torch.zeros(1, 2))
