"""The trained side of the discrete track: the MDLM / D3PM losses at the exact denoiser equal their Bayes floors
(a sign or off-by-one in the weight moves them off), the model's shapes and carry-over, a short run resumed
bit-identically from its checkpoint, and the CLI's one-line errors."""

import math
import shutil

import pytest
import torch

from toydiff import discrete as D
from toydiff.discrete import judge
from toydiff.discrete.cli import main
from toydiff.discrete.model import DenoiserConfig, DenoiserMLP
from toydiff.discrete.objectives import D3PMObjective, MDLMObjective, objective_for
from toydiff.discrete.training import Recipe, load_run, make_trainer
from toydiff.training.checkpoint import CheckpointError
from toydiff.training.hooks import Hook

pytestmark = pytest.mark.usefixtures("one_thread")

DIST = D.markov_chain(V=3, L=3)  # 27 sequences: the exact denoiser is instant


def _held_out(obj, fn, n=20_000, seed=0):
    x0 = DIST.sample(n, torch.Generator().manual_seed(seed))
    t, noise = obj.held_out_draws(x0.shape, seed=seed + 1)
    vals = []
    obj.held_out_loss(fn, x0, t, noise, batch_size=n)  # the engine's path runs
    x_t = obj.corrupt(x0, t, noise)
    vals = obj.per_sample(fn(x_t, t).clamp_min(1e-300).log(), x0, x_t, t)
    return float(vals.mean()), float(vals.std()) / math.sqrt(n)


@pytest.mark.parametrize("T", [None, 4])
def test_mdlm_loss_of_the_exact_denoiser_is_the_bayes_floor(T):
    proc = D.masked(T, V=DIST.V)
    obj = MDLMObjective(proc)
    mean, se = _held_out(obj, DIST.denoiser(proc))
    floor = judge.mdlm_floor(DIST, proc)
    assert abs(mean - floor) < 4 * se, (mean, floor, se)
    assert bool((obj.weight(obj.draw_times(64, torch.Generator().manual_seed(0), stratified=True)) > 0).all())
    # a worse denoiser (the table's marginals, ignoring x_t) lies above the floor
    worse = lambda x, t: DIST.marginals()[None].expand(x.shape[0], -1, -1)
    assert _held_out(obj, worse)[0] > floor + 0.1


def test_d3pm_loss_of_the_exact_denoiser_is_the_bound_of_the_judge():
    proc = D.uniform(4, V=DIST.V)
    obj = D3PMObjective(proc, hybrid=0.0)
    fn = DIST.denoiser(proc)
    mean, se = _held_out(obj, fn, n=8000)
    bound, bse, _ = judge.d3pm_elbo(DIST, proc, fn, n=8000, generator=torch.Generator().manual_seed(5))
    assert abs(mean - bound) < 4 * math.hypot(se, bse), (mean, bound)
    assert mean >= DIST.entropy() - 4 * se  # a bound on −log p: never below H(X)
    worse = lambda x, t: DIST.marginals()[None].expand(x.shape[0], -1, -1)
    assert _held_out(obj, worse, n=8000)[0] > mean + 0.1
    assert isinstance(objective_for(proc), D3PMObjective) and objective_for(proc).hybrid == 0.01


def test_model_shapes_and_the_mdlm_carry_over():
    proc = D.masked(None, V=3)
    model = DenoiserMLP(DenoiserConfig(L=3, V=3, K=4, width=16, depth=1))
    x = torch.tensor([[0, 3, 2], [3, 3, 3]])
    assert model(x, torch.tensor([0.3, 1.0])).shape == (2, 3, 3)
    p = MDLMObjective(proc).network_fn(model)(x, torch.tensor([0.3, 1.0]))
    assert torch.allclose(p.sum(-1), torch.ones(2, 3, dtype=torch.float64))
    assert p[0, 0, 0] == 1 and p[0, 2, 2] == 1  # unmasked tokens are their own prediction
    with pytest.raises(ValueError, match="masked process"):
        MDLMObjective(D.uniform(None, V=3))


class _CopyAt(Hook):
    def __init__(self, step, dst):
        self.step, self.dst = step, dst

    def on_checkpoint(self, trainer, path):
        if trainer.step == self.step:
            shutil.copy(path, self.dst)


@pytest.mark.parametrize("process", ["masked", "uniform"])
def test_short_run_resumes_bit_identically(process, tmp_path):
    recipe = Recipe(dataset="shapes", process=process, T=None if process == "masked" else 8, width=16, depth=1,
                    steps=5, batch_size=32, n_train=64, n_val=32, warmup_steps=2)
    full = make_trainer(recipe, checkpoint=tmp_path / "a.safetensors", hooks=(_CopyAt(2, tmp_path / "mid.safetensors"),))
    full.fit()
    again = make_trainer(recipe, checkpoint=tmp_path / "b.safetensors").load(tmp_path / "mid.safetensors")
    assert again.step == 2
    again.fit()
    for a, b in [(full.model, again.model), (full.eval_model, again.eval_model)]:
        for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(v, w), k
    assert full.history.val_loss == again.history.val_loss and full.history.floor == again.history.floor
    run = load_run(tmp_path / "a.safetensors")
    assert run.sample(4, steps=2, generator=torch.Generator().manual_seed(0)).shape == (4, 9)
    other = Recipe(**recipe.to_dict() | {"hybrid": 0.5}) if process == "uniform" else Recipe(**recipe.to_dict() | {"T": 8})
    with pytest.raises(CheckpointError, match="process/objective"):
        make_trainer(other, checkpoint=tmp_path / "c.safetensors").load(tmp_path / "mid.safetensors")


TINY = ["--steps", "3", "--n-train", "32", "--batch-size", "16", "--n-val", "16", "--width", "8", "--depth", "1", "--quiet"]


@pytest.mark.parametrize("argv, needle", [
    (["sample", "--run", "{out}/none"], "no checkpoint.safetensors"),
    (["sample", "--exact", "--process", "uniform", "--method", "maskgit"], "method must be one of"),
    (["sample", "--exact", "--T", "4", "--steps", "8"], "steps must be at most T = 4"),
    (["sample", "--run", "{out}/r", "--dataset", "words"], "--dataset goes with --exact"),
    (["train", "--out", "{out}/r", "--resume"], "holds no run"),
    (["train", "--out", "{out}/r", "--lr", "-1"], "lr"),
    (["report", "--exact", "--steps", "4,x", "--out", "{out}/rep"], "--steps must be comma-separated"),
])
def test_bad_input_is_one_line_and_exit_2(argv, needle, tmp_path, capsys):
    assert main([a.replace("{out}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and err.startswith("toydiff discrete")


def test_cli_train_refuses_a_second_run_and_a_changed_recipe_on_resume(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", "--out", out, *TINY]) == 0
    assert "Bayes floor" in capsys.readouterr().out
    assert main(["train", "--out", out, *TINY]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--out", out, "--resume", "--width", "9", "--quiet"]) == 2
    assert "only --steps may change" in capsys.readouterr().err
    assert main(["train", "--out", out, "--resume", "--steps", "4", "--quiet"]) == 0
    assert main(["sample", "--run", out, "--n", "20", "--steps", "2", "--quiet"]) == 0
    assert "count floor" in capsys.readouterr().out
