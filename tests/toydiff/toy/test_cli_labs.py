"""``toydiff toy likelihood`` and ``toydiff toy memorise``: figures + JSON on the oracle, one-line errors (exit 2)."""

import json

import pytest

from toydiff.cli import main


def test_likelihood_on_the_oracle_writes_figures_and_a_small_kl(tmp_path):
    out = tmp_path / "lik"
    assert main(["toy", "likelihood", "--oracle", "--n", "6", "--n-elbo", "50", "--rtol", "1e-3", "--out", str(out)]) == 0
    s = json.loads((out / "likelihood.json").read_text())
    assert abs(s["oracle"]["kl"]) < 0.05 and s["oracle"]["elbo_minus_entropy"] > -0.1
    assert (out / "likelihood.png").stat().st_size > 0 and (out / "elbo.png").stat().st_size > 0


def test_memorise_on_the_empirical_denoiser_copies(tmp_path):
    out = tmp_path / "mem"
    assert main(["toy", "memorise", "--dataset", "8gaussians", "--n-train", "8", "--n", "50", "--steps", "40",
                 "--out", str(out)]) == 0
    s = json.loads((out / "memorise.json").read_text())
    assert s["empirical"]["copy_rate"] > 0.9 and (out / "memorise.png").exists()


@pytest.mark.parametrize("argv, needle", [
    (["toy", "likelihood", "--out", "{out}"], "--run"),
    (["toy", "likelihood", "--oracle", "--n", "0", "--out", "{out}"], "--n"),
    (["toy", "likelihood", "--oracle", "--rtol", "5", "--out", "{out}"], "--rtol"),
    (["toy", "likelihood", "--oracle", "--dataset", "moons", "--out", "{out}"], "no exact mixture"),
    (["toy", "memorise", "--out", "{out}"], "--n-train"),
    (["toy", "memorise", "--n-train", "1", "--out", "{out}"], "--n-train"),
    (["toy", "memorise", "--n-train", "8", "--method", "bogus", "--out", "{out}"], "--method"),
])
def test_bad_input_is_one_line_and_exit_2(argv, needle, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([a.replace("{out}", str(out)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_memorise_replays_a_fixed_data_run_and_likelihood_reads_it(tmp_path):
    import torch

    from toydiff.toy.labs import training_points
    from toydiff.toy.run import load_toy

    run_dir, out = tmp_path / "run", tmp_path / "mem"
    assert main(["toy", "train", "--dataset", "8gaussians", "--out", str(run_dir), "--fixed-data", "--n-train", "32",
                 "--n-val", "64", "--epochs", "2", "--quiet"]) == 0
    run = load_toy(run_dir)
    train = training_points(run)
    # the replayed points are the ones the normaliser was fitted on: mean 0, std 1 per dimension
    assert train.shape == (32, 2)
    assert torch.allclose(train.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(train.std(0), torch.ones(2, dtype=torch.float64), atol=1e-5)
    assert main(["toy", "memorise", "--run", str(run_dir), "--n", "20", "--steps", "10", "--out", str(out)]) == 0
    s = json.loads((out / "memorise.json").read_text())
    assert s["n_train"] == 32 and {"model", "empirical"} <= set(s)
    assert main(["toy", "likelihood", "--run", str(run_dir), "--n", "3", "--n-elbo", "20", "--rtol", "1e-2",
                 "--out", str(tmp_path / "lik")]) == 0
    assert "model" in json.loads((tmp_path / "lik" / "likelihood.json").read_text())
