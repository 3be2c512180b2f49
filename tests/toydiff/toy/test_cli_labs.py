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
