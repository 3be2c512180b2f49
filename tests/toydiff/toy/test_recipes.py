"""The default recipes (issue 12): one definition that train_toy, the CLI and the app all read."""

from __future__ import annotations

import pytest
import torch

from toydiff.training.losses import sample_timesteps
from toydiff.toy import run as toy_run
from toydiff.toy.cli import build_parser, main
from toydiff.toy.cli.train import train_settings
from toydiff.toy.datasets import DATASETS, get_dataset
from toydiff.toy.recipes import Recipe, default_recipe
from toydiff.processes import VPProcess
from toydiff.toy.run import default_schedule, load_toy, oracle_run, train_toy


class _Stop(Exception):
    pass


def _captured_by_train_toy(monkeypatch, *args, **kwargs) -> dict:
    """What train_toy hands to toy_trainer (the schedule, MLP, TrainConfig, points per epoch, fresh), untrained."""
    seen = {}

    def fake(dataset, objective, model_config, config, n_train, n_val, seed, fresh=True, data=None):
        seen.update(process=objective.process, model_config=model_config, config=config, n_train=n_train, fresh=fresh)
        raise _Stop

    monkeypatch.setattr(toy_run, "toy_trainer", fake)
    with pytest.raises(_Stop):
        train_toy(*args, **kwargs)
    return seen


def _recipe_settings(name: str) -> dict:
    r = default_recipe(name)
    return {"process": VPProcess(r.schedule()), "model_config": r.model_config(get_dataset(name).dim),
            "config": r.train_config(), "n_train": r.n_train, "fresh": r.fresh}


@pytest.mark.parametrize("name", DATASETS)
def test_every_data_set_has_its_familys_recipe(name):
    r = default_recipe(name)
    assert isinstance(r, Recipe) and default_recipe(get_dataset(name)) == r
    assert r.model_config(get_dataset(name).dim).dim == get_dataset(name).dim
    if get_dataset(name).dim == 1:  # the seed exercise keeps its schedule
        assert r.schedule() == default_schedule()
        assert (r.schedule().name, dict(r.schedule().params)) == ("constant", {"T": 250, "beta": 0.02})


def test_the_2d_recipe_has_small_noise_at_t0():
    """The 8 Gaussians' modes have std 0.105 after normalisation: the 2-D schedule's σ at t = 0 sits below it."""
    s = default_recipe("8gaussians").schedule()
    sigma0 = float(s.sigmas[0])
    assert sigma0 < 0.105 < float(default_schedule().sigmas[0])


@pytest.mark.parametrize("name", ["two_gaussians", "8gaussians"])
def test_both_families_train_more_on_the_last_steps(name):
    """The last steps set the modes' shape (1-D: their means and spread, round 6 of bench/toy_recipe_search.py;
    2-D: narrow modes), so each family's recipe draws t < 5 more than four times as often as uniform t would."""
    r = default_recipe(name)
    t = sample_timesteps(r.schedule(), 100_000, generator=torch.Generator().manual_seed(0),
                         distribution=r.train_config().t_sampling)
    assert float((t < 5).double().mean()) > 4 * 5 / r.schedule().T


@pytest.mark.parametrize("name", ["two_gaussians", "8gaussians", "moons"])
def test_train_toy_without_arguments_is_the_recipe(monkeypatch, name):
    assert _captured_by_train_toy(monkeypatch, name) == _recipe_settings(name)


@pytest.mark.parametrize("name", ["two_gaussians", "8gaussians", "checkerboard"])
def test_cli_without_flags_is_the_recipe(monkeypatch, tmp_path, name):
    a = build_parser().parse_args(["train", "--dataset", name, "--out", str(tmp_path)])
    assert train_settings(a) == _recipe_settings(name)
    # and the command hands exactly these to train_toy
    seen = {}

    def fake(ds, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr("toydiff.toy.run.train_toy", fake)
    with pytest.raises(_Stop):
        main(["train", "--dataset", name, "--out", str(tmp_path / "run"), "--quiet"])
    assert {k: seen[k] for k in _recipe_settings(name)} == _recipe_settings(name)


def test_cli_flags_override_the_recipe():
    a = build_parser().parse_args(["train", "--dataset", "8gaussians", "--out", "r", "--width", "64", "--epochs", "3",
                                   "--t-sampling", "uniform", "--ema-decay", "0", "--schedule", "cosine", "--T", "500",
                                   "--n-train", "700", "--fixed-data"])
    s = train_settings(a)
    assert (s["model_config"].width, s["config"].epochs, s["config"].t_sampling, s["config"].ema_decay) == (
        64, 3, "uniform", None)
    sched = s["process"].schedule
    assert (sched.name, sched.T, s["n_train"], s["fresh"]) == ("cosine", 500, 700, False)
    r = default_recipe("8gaussians")
    assert (s["model_config"].depth, s["config"].batch_size, s["config"].lr) == (r.depth, r.batch_size, r.lr)


def test_a_run_records_its_recipes_schedule_and_the_oracle_uses_it(tmp_path):
    """Recipe plumbing, with one short epoch: the checkpoint records the 2-D schedule, loading reads it back,
    and the oracle of the data set runs on that same schedule."""
    recipe = default_recipe("8gaussians")
    run = train_toy("8gaussians", config=recipe.train_config(epochs=1), n_train=300, n_val=100, out=tmp_path,
                    progress=False)
    assert run.schedule == recipe.schedule()
    assert load_toy(tmp_path).schedule == recipe.schedule()
    assert oracle_run("8gaussians").schedule == recipe.schedule()
    assert run.model.config == recipe.model_config(2)
