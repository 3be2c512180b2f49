import pytest
import torch

from toydiff import schedules
from toydiff.checkpoint import CheckpointError
from toydiff.toy.datasets import Normalizer, get_dataset
from toydiff.toy.models import MLPConfig, build_mlp
from toydiff.training import History, TrainConfig, Trainer, held_out_loss

S = schedules.constant(T=100, beta=0.05)


def data(n=1500, seed=0):
    ds = get_dataset("two_gaussians")
    x = ds.sample(n, torch.Generator().manual_seed(seed))
    norm = Normalizer.fit(x)
    return norm.forward(x), norm.oracle(ds.mixture)


def trainer(epochs=4, seed=0, n_train=1200, **kw) -> Trainer:
    x, oracle = data(n_train + 300)
    torch.manual_seed(seed)
    model = build_mlp(MLPConfig(dim=1, width=32, depth=2))
    cfg = TrainConfig(epochs=epochs, batch_size=128, seed=seed, warmup_steps=5, **kw)
    return Trainer(model, S, x[:n_train], x[n_train:], cfg, oracle=oracle)


def test_the_oracle_scores_the_floor_and_a_sign_flip_does_not():
    x, oracle = data(4000)
    eps = oracle.eps_fn(S)
    loss, by_bucket = held_out_loss(eps, S, x.double(), seed=3)
    floor = oracle.bayes_optimal_loss(S, n=4096, generator=torch.Generator().manual_seed(1))
    assert loss == pytest.approx(floor.mean, rel=0.08)
    assert len(by_bucket) == 10
    flipped, _ = held_out_loss(lambda xt, t: -eps(xt, t), S, x.double(), seed=3)
    assert flipped > 3.0  # E||eps + eps*||^2 is about 4 minus the floor


def test_training_approaches_the_floor_and_records_history():
    tr = trainer(epochs=30, lr=1e-2, n_train=4000)
    h = tr.fit(progress=False)
    assert [r["epoch"] for r in h.records] == list(range(1, 31))
    assert h.records[-1]["step"] == 30 * tr.steps_per_epoch
    assert h.floor is not None and len(h.floor_by_bucket) == 10
    first, last = h.val_loss[0], h.val_loss[-1]
    assert last < first and last < 1.15 * h.floor  # a small MLP gets close to the Bayes floor quickly
    assert all(len(r["val_by_bucket"]) == 10 for r in h.records)
    assert h.records[-1]["lr"] == pytest.approx(0.0, abs=1e-6)  # cosine to zero


@pytest.mark.parametrize("t_sampling", ["uniform", "low-noise"])
def test_training_draws_t_from_the_configured_distribution(t_sampling):
    p = torch.ones(S.T) if t_sampling == "uniform" else torch.arange(1, S.T + 1).double().rsqrt()
    share = float(p[: S.T // 10].sum() / p.sum())  # 0.10, or 0.27 for T = 100
    tr = trainer(epochs=3, n_train=4000, t_sampling=t_sampling)
    seen, forward = [], tr.model.forward
    tr.model.forward = lambda x, t: (seen.append(t.clone()), forward(x, t))[1] if tr.model.training else forward(x, t)
    tr.fit(progress=False)
    t = torch.cat(seen)
    assert len(t) == 3 * 4000 and float((t < S.T // 10).double().mean()) == pytest.approx(share, abs=0.02)


def test_ema_weights_differ_from_raw_weights():
    tr = trainer(epochs=2)
    tr.fit(progress=False)
    raw = dict(tr.model.named_parameters())
    ema = dict(tr.eval_model.named_parameters())
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    plain = trainer(epochs=1, ema_decay=None)
    assert plain.ema is None and plain.eval_model is plain.model  # no EMA: sample the raw weights


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path):
    straight = trainer(epochs=4)
    straight.fit(progress=False)

    class Interrupted(Exception):
        pass

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise Interrupted

    first = trainer(epochs=4)
    with pytest.raises(Interrupted):  # a crash after epoch 2: its checkpoint is already on disk
        first.fit(progress=False, checkpoint=tmp_path / "ck.safetensors", on_epoch=stop_after_two)
    resumed = trainer(epochs=4).load(tmp_path / "ck.safetensors")
    assert resumed.epoch == 2 and resumed.step == first.step
    resumed.fit(progress=False)
    for (k, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    for (k, a), (_, b) in zip(straight.eval_model.state_dict().items(), resumed.eval_model.state_dict().items()):
        assert torch.equal(a, b), k
    assert straight.history.val_loss == resumed.history.val_loss


def test_loading_a_mismatched_or_broken_checkpoint_is_a_clear_error(tmp_path):
    tr = trainer(epochs=1)
    tr.fit(progress=False, checkpoint=tmp_path / "ck.safetensors")
    with pytest.raises(CheckpointError, match="TrainConfig"):
        trainer(epochs=1, lr=1e-4).load(tmp_path / "ck.safetensors")
    other = trainer(epochs=1)
    other.model = build_mlp(MLPConfig(dim=1, width=16, depth=2))
    with pytest.raises(CheckpointError, match="do not fit"):
        Trainer(other.model, S, *data()[0].split([1200, 300]), other.config).load(tmp_path / "ck.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        trainer(epochs=1).load(tmp_path / "bad.safetensors")


def test_history_round_trip():
    h = History(records=[{"epoch": 1, "val_loss": 0.5}], floor=0.1, floor_by_bucket=[0.1] * 10)
    assert History.from_dict(h.to_dict()) == h


@pytest.mark.parametrize("kwargs, name", [({"epochs": 0}, "epochs"), ({"lr": 0.0}, "lr"),
                                          ({"lr_schedule": "step"}, "lr_schedule"), ({"ema_decay": 1.0}, "ema_decay"),
                                          ({"t_sampling": "lognormal"}, "t_sampling")])
def test_bad_config(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TrainConfig(**kwargs)


def test_bad_data_shapes():
    model = build_mlp(MLPConfig(dim=1, width=8, depth=1))
    with pytest.raises(ValueError, match="train_data"):
        Trainer(model, S, torch.zeros(10), torch.zeros(5, 1))
    with pytest.raises(ValueError, match="val_data"):
        Trainer(model, S, torch.zeros(10, 1), torch.zeros(5, 2))
