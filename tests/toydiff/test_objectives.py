"""Training objectives (toydiff.processes) and the engine under a flow objective."""

import pytest
import torch

import toydiff as td
from toydiff.processes import interpolants
from toydiff.training.batches import TensorBatches
from toydiff.training.flow_losses import interpolant_loss_floor, sample_times
from toydiff.training.losses import eps_prediction_loss
from toydiff.processes import FLOW_TIME_SCALE, FlowObjective, VPObjective, objective_from_meta, process_of
from toydiff.toy.models import MLPConfig, build_mlp
from toydiff.training.engine import TrainConfig, Trainer

GM = td.GaussianMixture(weights=[1.0, 2.0], means=[[-1.0], [1.0]], covs=[[[0.1]], [[0.1]]])


@pytest.mark.parametrize("interp", ["linear", "cosine"])
@pytest.mark.parametrize("prediction", ["velocity", "eps", "x0", "v"])
def test_flow_objective_round_trips_through_checkpoint_metadata(interp, prediction):
    obj = FlowObjective(interpolants.BUILDERS[interp](), prediction, time_scale=250.0)
    back = objective_from_meta(obj.metadata())
    assert (back.process.name, back.interp, back.prediction, back.time_scale) == ("flow", obj.interp, prediction, 250.0)
    back.check_resume(obj.metadata())
    with pytest.raises(ValueError, match="interpolant/prediction"):
        FlowObjective(obj.interp, "x0" if prediction != "x0" else "eps").check_resume(obj.metadata())


def test_vp_objective_round_trips_and_old_files_without_a_process_are_vp():
    s = td.schedules.linear(T=50)
    meta = VPObjective(s).metadata()
    assert process_of(meta) == "vp" and objective_from_meta(meta).schedule == s
    with pytest.raises(ValueError, match="not vp"):
        VPObjective(s).check_resume(FlowObjective(interpolants.linear()).metadata())
    with pytest.raises(ValueError, match="not flow"):
        FlowObjective(interpolants.linear()).check_resume(meta)


def test_vp_objective_is_the_plain_eps_loss_draw_for_draw():
    s, x0 = td.schedules.linear(T=50), torch.randn(64, 2)
    net = build_mlp(MLPConfig(dim=2, width=8, depth=1))
    loss, terms = VPObjective(s).loss(net, x0, generator=torch.Generator().manual_seed(3))
    ref = eps_prediction_loss(net, s, x0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(terms.per_sample, ref.per_sample) and torch.equal(loss, ref.loss)


def test_flow_objective_feeds_the_network_scaled_time_and_uses_a_given_noise_as_the_coupling():
    seen = []

    def net(x, t):
        seen.append(t.clone())
        return torch.zeros_like(x)

    obj = FlowObjective(interpolants.linear(), "velocity")
    x0, noise = torch.randn(32, 1), torch.randn(32, 1)
    _, terms = obj.loss(net, x0, generator=torch.Generator().manual_seed(0), noise=noise)
    assert torch.allclose(seen[0], terms.t.float() * FLOW_TIME_SCALE)
    # zero prediction: the loss is the squared target ε − x_0 with the given noise
    assert torch.allclose(terms.per_sample, (noise - x0).pow(2).flatten(1).mean(1))


def test_flow_buckets_split_continuous_time_evenly():
    obj = FlowObjective(interpolants.linear())
    s, c = obj.bucket_sums(torch.ones(5), torch.tensor([0.0, 0.05, 0.15, 0.999, 1.0]), 10)
    assert c.tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2] and torch.equal(s, c)


def test_bad_objective_settings_are_value_errors():
    with pytest.raises(ValueError, match="prediction"):
        FlowObjective(interpolants.linear(), "score")
    with pytest.raises(ValueError, match="continuous path"):
        FlowObjective(interpolants.vp(td.schedules.linear(T=10)))
    with pytest.raises(ValueError, match="loss_weighting"):
        FlowObjective(interpolants.linear(), loss_weighting="min-snr")
    with pytest.raises(TypeError, match="schedule"):
        Trainer(build_mlp(MLPConfig(dim=1)), "linear", TensorBatches(torch.randn(8, 1), 4))


def test_low_noise_flow_times_put_a_third_of_the_draws_in_the_cleanest_tenth():
    t = sample_times(20_000, generator=torch.Generator().manual_seed(0), distribution="low-noise")
    assert 0 <= float(t.min()) and float(t.max()) <= 1
    assert float((t < 0.1).float().mean()) == pytest.approx(0.1 ** 0.5, abs=0.015)


def test_the_oracle_held_out_loss_is_the_interpolant_loss_floor():
    obj = FlowObjective(interpolants.linear(), "velocity")
    x0 = GM.sample(8000, torch.Generator().manual_seed(0))
    t, noise = obj.held_out_draws(x0.shape, seed=5)
    exact, by_bucket = obj.held_out_loss(GM.denoiser(obj.interp, "velocity"), x0, t, noise.to(x0.dtype))
    floor = interpolant_loss_floor(GM, obj.interp, "velocity", n=2000, generator=torch.Generator().manual_seed(1))
    assert exact == pytest.approx(floor.mean, rel=0.05)
    assert len(by_bucket) == 10
    worse, _ = obj.held_out_loss(lambda x, tt: GM.denoiser(obj.interp, "velocity")(x, tt) + 0.3, x0, t,
                                 noise.to(x0.dtype))
    assert worse > exact + 0.05


def test_flow_training_through_the_engine_approaches_the_floor():
    from toydiff.toy.training import ToyTrainer

    g = torch.Generator().manual_seed(0)
    x = GM.sample(6000, g).float()
    obj = FlowObjective(interpolants.linear(), "velocity")
    torch.manual_seed(0)
    tr = ToyTrainer(build_mlp(MLPConfig(dim=1, width=64, depth=2)), obj, x[:4000], x[4000:],
                    TrainConfig(epochs=6, batch_size=128, lr=5e-3, warmup_steps=10, ema_decay=0.9), oracle=GM)
    h = tr.fit(progress=False)
    assert h.val_loss[-1] < h.val_loss[0]
    assert h.val_loss[-1] / h.floor < 1.15, (h.val_loss, h.floor)  # 1.11 here; 1.40 after the first epoch
    assert tr.objective is obj and tr.schedule is None
