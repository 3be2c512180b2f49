"""toydiff.training: the engine (EMA, LR, step, hooks, resume) and the toy track's trainer on it."""

import math

import pytest
import torch
from torch import nn

from toydiff.processes import schedules
from toydiff.training.checkpoint import CheckpointError, load_checkpoint
from toydiff.training.ema import EMA
from toydiff.training.hooks import Callback, Hook, NonFiniteLossError
from toydiff.training.lr import lr_factor
from toydiff.toy.datasets import Normalizer, get_dataset
from toydiff.toy.models import MLPConfig, build_mlp
from toydiff.toy.training import ToyTrainer as Trainer
from toydiff.training.engine import History, TensorBatches, TrainConfig, held_out_loss
from toydiff.training.engine import Trainer as Engine

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
    with pytest.raises(CheckpointError, match="does not fit"):
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


# --- the engine's pieces ------------------------------------------------------------------------------


def test_ema_warmup_decay_and_a_hand_computed_average():
    model = nn.Linear(2, 1)
    ema = EMA(model, 0.9, warmup=True)
    assert [ema.decay_at(k) for k in (0, 1, 2, 70, 1000)] == pytest.approx(
        [min(0.9, (1 + k) / (10 + k)) for k in (0, 1, 2, 70, 1000)])
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(1000) == 0.9
    expected = model.weight.detach().clone()
    for k in range(4):
        with torch.no_grad():
            model.weight.add_(1.0)
        d = min(0.9, (1 + k) / (10 + k))
        expected = d * expected + (1 - d) * model.weight.detach()
        ema.update(model, k)
    torch.testing.assert_close(ema.module.weight, expected, rtol=1e-6, atol=1e-6)
    plain = EMA(model, 0.9, warmup=False)  # the toy recipe: copy first, then a fixed decay
    assert plain.decay_at(0) == 0.0 and plain.decay_at(1) == 0.9
    with pytest.raises(ValueError, match="ema_decay"):
        EMA(model, 1.0)
    with pytest.raises(TypeError, match="ema_decay"):
        EMA(model, True)


def test_lr_factor_at_warmup_middle_and_end():
    f = dict(warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, 110, **f) == pytest.approx(0.1) and lr_factor(4, 110, **f) == pytest.approx(0.5)
    assert lr_factor(9, 110, **f) == 1.0 and lr_factor(10, 110, **f) == 1.0
    assert lr_factor(60, 110, **f) == pytest.approx(0.1 + 0.9 * 0.5)  # half way down the cosine
    assert lr_factor(110, 110, **f) == pytest.approx(0.1) and lr_factor(500, 110, **f) == pytest.approx(0.1)
    assert lr_factor(110, 110, warmup_steps=10) == pytest.approx(0.0, abs=1e-12)  # the toy recipe: to zero
    assert lr_factor(13, 100, warmup_steps=10, schedule="exponential", gamma=0.9) == pytest.approx(0.9 ** 3)
    assert lr_factor(99, 100, warmup_steps=10, schedule="constant") == 1.0
    vals = [lr_factor(s, 100, **f) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(vals, vals[1:])) and not any(math.isnan(v) for v in vals)
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_factor(0, 10, schedule="step")
    with pytest.raises(TypeError, match="step"):
        lr_factor(True, 10)


class Shift(nn.Module):
    """eps_hat = a x + b: a tiny network whose updates are easy to follow."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Parameter(torch.zeros(())), nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        return self.a * x + self.b


def engine(hooks=(), epochs=2, x=None, **kw) -> Engine:
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) if x is None else x
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=0.1, warmup_steps=2, **kw)
    return Engine(Shift(), S, TensorBatches(x, 16), cfg, hooks=hooks)


def test_hooks_are_called_in_order_and_the_engine_counts_steps():
    calls = []
    hook = Callback(on_fit_start=lambda tr: calls.append("start"),
                    on_step=lambda tr, out: calls.append(("step", out.step, out.batch)),
                    on_eval=lambda tr, st: calls.append("eval"),
                    on_epoch_end=lambda tr, st: calls.append(("epoch", st.epoch, st.complete, st.step)),
                    after_epoch=lambda tr, st: calls.append("after"), on_fit_end=lambda tr: calls.append("end"))
    tr = engine([hook])
    tr.fit()
    steps = [("step", k, 16) for k in range(1, 5)]
    assert calls == ["start", *steps, "eval", ("epoch", 0, True, 4), "after",
                     *[("step", k, 16) for k in range(5, 9)], "eval", ("epoch", 1, True, 8), "after", "end"]
    assert tr.step == 8 and tr.epoch == 2
    with pytest.raises(ValueError, match="on_stepp"):
        Callback(on_stepp=print)


def test_min_snr_weighting_scales_each_samples_gradient_by_min_snr_over_snr():
    """The weighted loss is sum_i w(t_i) l_i / B with w = min(SNR, gamma) / SNR; the logged loss stays plain."""
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    grads, logged = {}, {}
    for weighting in ("uniform", "min-snr"):
        tr = engine(x=x, epochs=1, loss_weighting=weighting, min_snr_gamma=2.0, grad_clip=None, ema_decay=None)
        tr.optimizer.step = lambda: None  # keep the weights: only the gradient is compared
        g0 = torch.Generator().manual_seed(5)
        tr.generator.set_state(g0.get_state())
        out = tr.train_step(x)
        grads[weighting], logged[weighting] = tr.model.b.grad.clone(), out
    out = logged["min-snr"]
    snr = S.snr[out.t]
    w = (snr.clamp(max=2.0) / snr).float()
    assert (w < 1).any() and (w == 1).any()
    # d/db of the per-sample loss mean((b - eps)^2) is 2 mean(b - eps) = -2 mean(eps) at a = b = 0
    g = torch.Generator().manual_seed(5)
    torch.randint(0, S.T, (16,), generator=g)
    eps = torch.randn(16, 2, generator=g)
    torch.testing.assert_close(grads["min-snr"], (w * -2 * eps.mean(1)).mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads["uniform"], (-2 * eps.mean(1)).mean(), rtol=1e-5, atol=1e-6)
    assert torch.equal(out.t, logged["uniform"].t)
    assert float(out.loss) == pytest.approx(float(out.per_sample.mean()))  # logged: the plain ε-loss
    assert float(out.loss) == pytest.approx(float(logged["uniform"].loss))


def test_a_non_finite_loss_raises_or_goes_to_the_hook_and_the_last_good_checkpoint_stays(tmp_path):
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))

    def broken(n, g):  # the second epoch's points: infinite, so is the loss from step 5 on
        return torch.full((n, 2), float("inf"))

    def run(hooks=()):
        cfg = TrainConfig(epochs=3, batch_size=16, lr=0.1, warmup_steps=2)
        tr = Engine(Shift(), S, TensorBatches(x, 16, fresh=broken), cfg, hooks=hooks, loss_sync_every=1,
                    checkpoint=tmp_path / "ck.safetensors")
        return tr

    with pytest.raises(NonFiniteLossError, match="is inf at step 5"):
        run().fit()
    _, meta = load_checkpoint(tmp_path / "ck.safetensors")
    assert meta["step"] == 4  # the first epoch's checkpoint: nothing was written after the bad step

    seen = []

    class Handle(Hook):
        def on_non_finite(self, trainer, step, value):
            seen.append((step, value))
            return True

    (tmp_path / "ck.safetensors").unlink()
    tr = run([Handle()])
    tr.fit()
    assert tr.stop_reason == "non-finite loss" and len(seen) == 1 and seen == [(5, float("inf"))]
    assert tr.step < 12 and load_checkpoint(tmp_path / "ck.safetensors")[1]["step"] == 4


def test_engine_resume_is_bit_identical_and_refuses_what_it_cannot_resume(tmp_path):
    class StopAt(Hook):
        def __init__(self, step):
            self.at = step

        def on_step(self, trainer, out):
            if out.step == self.at:
                trainer.request_stop("test")

    straight = engine(epochs=3, ema_warmup=True)
    straight.fit()
    cut = engine([StopAt(4)], epochs=3, ema_warmup=True)
    cut.checkpoint_path = tmp_path / "ck.safetensors"
    cut.fit()
    assert cut.stop_reason == "test" and cut.step == 4
    resumed = engine(epochs=3, ema_warmup=True).load(tmp_path / "ck.safetensors")
    assert (resumed.step, resumed.epoch, resumed.batch_in_epoch) == (4, 1, 0)
    resumed.fit()
    for a, b in zip([*straight.model.parameters(), *straight.eval_model.parameters()],
                    [*resumed.model.parameters(), *resumed.eval_model.parameters()]):
        assert torch.equal(a, b)
    assert straight.generator.get_state().equal(resumed.generator.get_state())

    mid = engine([StopAt(5)], epochs=3, ema_warmup=True)
    mid.checkpoint_path = tmp_path / "mid.safetensors"
    mid.fit()
    _, meta = load_checkpoint(tmp_path / "mid.safetensors")
    assert meta["kind"] == "toydiff.train" and (meta["epoch"], meta["batch_in_epoch"]) == (1, 1)
    with pytest.raises(ValueError, match="middle of an epoch"):  # shuffled tensors restart at epoch ends only
        engine(epochs=3, ema_warmup=True).load(tmp_path / "mid.safetensors").fit()
    with pytest.raises(CheckpointError, match="schedule"):
        Engine(Shift(), schedules.constant(T=100, beta=0.06), TensorBatches(torch.zeros(4, 2), 2)).load(tmp_path / "ck.safetensors")


def test_a_toy_checkpoint_in_the_layout_before_the_shared_engine_still_loads_and_resumes(tmp_path):
    from toydiff.training.checkpoint import save_checkpoint
    from toydiff.toy.run import load_toy, train_toy

    kw = dict(model_config=MLPConfig(dim=1, width=8, depth=1), n_train=300, n_val=100, progress=False)
    train_toy("two_gaussians", config=TrainConfig(epochs=1, warmup_steps=2), out=tmp_path / "new", **kw)
    tensors, meta = load_checkpoint(tmp_path / "new" / "checkpoint.safetensors")
    # torch AveragedModel's keys, one generator state under "rng", the optimizer under "optim"
    old = {("ema.module." + k[4:] if k.startswith("ema.") else k): v for k, v in tensors.items()}
    old["ema.n_averaged"] = torch.tensor(3)
    meta["rng"], meta["optim"] = meta.pop("rng_states")[0], meta.pop("optimizer")
    for k in ("batch_in_epoch", "betas", "min_lr_ratio", "lr_gamma", "ema_warmup", "loss_weighting",
              "min_snr_gamma", "max_steps", "checkpoint_every"):
        meta.pop(k, None)
        meta["config"].pop(k, None)
    (tmp_path / "old").mkdir()
    save_checkpoint(tmp_path / "old" / "checkpoint.safetensors", old, meta)
    a, b = load_toy(tmp_path / "new"), load_toy(tmp_path / "old")
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(v, w), k
    runs = [train_toy("two_gaussians", config=TrainConfig(epochs=2, warmup_steps=2), out=tmp_path / d, resume=True,
                      **kw) for d in ("new", "old")]
    for v, w in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(v, w)


def _diverging_worker(rank: int, world: int, port: int, out: str) -> None:
    import datetime
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=30))
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(rank))

    def second_epoch(n, g):  # rank 1's second epoch is infinite: its loss from step 5 on (4 steps an epoch)
        return torch.full((n, 2), float("inf")) if rank == 1 else torch.randn(n, 2, generator=g)

    cfg = TrainConfig(epochs=3, batch_size=8, warmup_steps=0, ema_decay=None)
    tr = Engine(_Eps(), S, TensorBatches(x, 8, fresh=second_epoch), cfg, loss_sync_every=1)
    try:
        tr.fit()
        result = "finished"
    except NonFiniteLossError as e:
        result = f"stopped at {e.step}"
    dist.barrier()  # neither process tears the group down while the other still talks to it (a gloo abort)
    dist.destroy_process_group()
    with open(os.path.join(out, f"rank{rank}.txt"), "w") as f:
        f.write(result)


class _Eps(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x, t):
        return self.lin(x)


@pytest.mark.slow
def test_under_ddp_one_process_s_non_finite_loss_stops_every_process_at_the_same_step(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_diverging_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    assert [(tmp_path / f"rank{r}.txt").read_text() for r in range(2)] == ["stopped at 5", "stopped at 5"]
