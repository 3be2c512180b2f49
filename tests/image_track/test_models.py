"""image_track.models: every preset through one shared interface test, plus what each architecture promises."""

import json

import pytest
import torch

from image_track.models import PRESETS, build_model, count_parameters, list_presets

# Parameter counts for one input channel at 28x28, unconditional. The notebooks report 3 712 257
# (simple), 678 961 (efficient) and 145 233 (tiny, counted with 3 input channels = 144 945 with 1).
TARGETS = {"simple": 3_712_257, "efficient": 678_961, "attention": 12_919_041, "tiny": 144_945, "fcblock": 1_996_417,
           "experts": 2 * 144_945}  # experts: two tiny experts by default
BAND = 0.02  # relative

# Narrow versions of each preset (overrides of the preset's own config fields), for the slower checks.
SMALL = {"simple": {"channels": [8, 16, 32]}, "efficient": {"channels": [8, 16, 32], "time_dim": 16},
         "attention": {"base_channels": 8}, "tiny": {"widths": [4, 8, 16]}, "fcblock": {"hidden": 8},
         "experts": {"expert": {"name": "tiny", "widths": [4, 8, 16]}}}

CASES = [(name, size, nc) for name in PRESETS for size in (28, 32) for nc in (None, 10)]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {case: build_model(case[0], image_size=case[1], num_classes=case[2]).eval() for case in CASES}


@pytest.mark.parametrize("name,size,nc", CASES)
def test_forward_shape_and_finite(models, name, size, nc):
    model = models[(name, size, nc)]
    x = torch.randn(2, 1, size, size, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0, 999])
    with torch.no_grad():
        out = model(x, t) if nc is None else model(x, t, torch.tensor([3, nc]))
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_counts_match_the_notebooks(models, name):
    n = count_parameters(models[(name, 28, None)])
    assert abs(n - TARGETS[name]) <= BAND * TARGETS[name], f"{name}: {n} parameters"


def test_exact_notebook_counts(models):
    assert count_parameters(models[("simple", 28, None)]) == 3_712_257
    assert count_parameters(models[("efficient", 28, None)]) == 678_961
    assert count_parameters(build_model("tiny", in_channels=3)) - 34 == 145_233  # notebook: 3 in, 1 out


@pytest.mark.parametrize("name", list(PRESETS))
def test_output_depends_on_t_and_y(models, name):
    model = models[(name, 28, 10)]
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = model(x, torch.tensor([10, 10]), torch.tensor([1, 1]))
        other_t = model(x, torch.tensor([700, 700]), torch.tensor([1, 1]))
        other_y = model(x, torch.tensor([10, 10]), torch.tensor([7, 7]))
        null = model(x, torch.tensor([10, 10]), torch.tensor([10, 10]))
        none = model(x, torch.tensor([10, 10]))
    assert not torch.allclose(base, other_t)
    assert not torch.allclose(base, other_y)
    assert torch.equal(null, none)  # y=None means the null class


@pytest.mark.parametrize("name", list(PRESETS))
def test_config_round_trip_rebuilds_the_same_architecture(name):
    model = build_model(name, num_classes=10, T=300, image_size=32, **SMALL[name])
    config = json.loads(json.dumps(model.config))
    rebuilt = build_model(**config)
    assert rebuilt.config == model.config and config["name"] == name and config["T"] == 300
    rebuilt.load_state_dict(model.state_dict())  # same parameter names and shapes
    assert count_parameters(rebuilt) < count_parameters(build_model(name, num_classes=10, image_size=32))


@pytest.mark.parametrize("name", list(PRESETS))
def test_bad_inputs_raise_naming_the_argument(models, name):
    model = models[(name, 28, None)]
    t = torch.tensor([1, 2])
    with pytest.raises(ValueError, match="image_size"):
        model(torch.randn(2, 1, 32, 32), t)
    with pytest.raises(ValueError, match="in_channels"):
        model(torch.randn(2, 3, 28, 28), t)
    with pytest.raises(ValueError, match="t must"):
        model(torch.randn(2, 1, 28, 28), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="y must be None"):
        model(torch.randn(2, 1, 28, 28), t, torch.tensor([1, 2]))
    cond = models[(name, 28, 10)]
    with pytest.raises(ValueError, match="y must hold labels"):
        cond(torch.randn(2, 1, 28, 28), t, torch.tensor([1, 11]))
    with pytest.raises(ValueError, match="image_size"):
        build_model(name, image_size=30)


def test_attention_rejects_sizes_it_cannot_handle():
    for size in (8, 12, 30):
        with pytest.raises(ValueError, match="image_size"):
            build_model("attention", image_size=size)


def test_registry_and_build_errors():
    assert set(list_presets()) == {"simple", "efficient", "attention", "tiny", "fcblock", "experts"}
    with pytest.raises(ValueError, match="name"):
        build_model("resnet")
    with pytest.raises(ValueError, match="overrides"):
        build_model("tiny", hidden=3)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("tiny", num_classes=0)
    assert count_parameters(build_model("fcblock", hidden=8)) < count_parameters(build_model("fcblock"))
    with pytest.raises(TypeError, match="model"):
        count_parameters("tiny")


def test_fcblock_null_class_is_the_zero_one_hot():
    model = build_model("fcblock", num_classes=10).eval()
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    seen = {}

    def hook(_module, inputs, _out):
        seen["c"] = inputs[0].clone()

    model.fc1_c.register_forward_hook(hook)
    with torch.no_grad():
        model(x, torch.tensor([5]), torch.tensor([10]))
    assert torch.equal(seen["c"], torch.zeros(1, 10))
    with torch.no_grad():
        model(x, torch.tensor([5]), torch.tensor([3]))
    assert seen["c"].argmax().item() == 3 and seen["c"].sum().item() == 1


@pytest.mark.parametrize("name", [n for n in PRESETS if n != "attention"])
def test_every_parameter_gets_a_gradient(name):
    """No dead branches: with a conditional model in training mode, one backward pass reaches every weight."""
    model = build_model(name, num_classes=10, **SMALL[name]).train()
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    model(x, torch.tensor([0, 10, 500, 999]), torch.tensor([0, 4, 9, 10])).square().mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"{name}: no gradient reaches {dead}"


@pytest.mark.parametrize("name", list(PRESETS))
def test_eval_output_of_a_sample_does_not_depend_on_its_batch(name):
    """In eval mode image i gets the same eps_hat alone or in a batch (no cross-sample leakage)."""
    model = build_model(name, num_classes=10, **SMALL[name]).eval()
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    t, y = torch.tensor([3, 300, 900]), torch.tensor([1, 10, 7])
    with torch.no_grad():
        batch = model(x, t, y)
        single = model(x[1:2], t[1:2], y[1:2])
    assert torch.allclose(batch[1:2], single, atol=1e-5)


def test_experts_answer_by_band_and_start_as_copies_of_the_network():
    """Expert k answers the steps (starts[k+1], starts[k]]; from_network copies the network into every band, and a
    change to one expert moves only its band's outputs, alone or in a mixed batch."""
    from image_track.unets.experts import TimeExperts

    net = build_model("tiny", widths=[4, 8, 16]).eval()
    model = TimeExperts.from_network(net, (999, 749, 499, 249)).eval()
    t = torch.tensor([999, 750, 749, 500, 499, 250, 249, 0])
    assert model.expert_of(t).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(model(x, t), net(x, t), atol=1e-5)
        model.experts[2].out.bias += 1.0
        moved = (model(x, t) - net(x, t)).abs().amax((1, 2, 3))
        alone = model(x[4:5], t[4:5])
    assert (moved[4:6] > 0.99).all() and (moved[[0, 1, 2, 3, 6, 7]] < 1e-4).all()
    assert torch.allclose(alone, model(x, t)[4:5], atol=1e-5)
    rebuilt = build_model(**json.loads(json.dumps(model.config)))
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.config["starts"] == [999, 749, 499, 249] and torch.equal(rebuilt.eval()(x, t), model(x, t))


def test_experts_config_errors_name_the_argument():
    with pytest.raises(ValueError, match="starts"):
        build_model("experts", starts=[499, 999])
    with pytest.raises(ValueError, match="starts"):
        build_model("experts", starts=[1000])
    with pytest.raises(ValueError, match="expert"):
        build_model("experts", expert={"name": "experts"})
    with pytest.raises(ValueError, match="num_classes"):
        build_model("experts", expert={"name": "tiny", "num_classes": 10})
    with pytest.raises(ValueError, match="name"):
        build_model("experts", expert={"name": "resnet"})


def test_an_x0_expert_answers_eps_through_the_schedule():
    """An x_0 expert's output becomes ε̂ = (x_t − √ᾱ_t x̂_0)/√(1 − ᾱ_t), so a sampler's x̂_0 is the expert's own
    output; its ε band is untouched, and the config (schedule included) survives JSON."""
    from toydiff.processes import forward, schedules
    from image_track.unets.experts import TimeExperts

    net, sched = build_model("tiny", widths=[4, 8, 16]).eval(), schedules.linear(1000)
    model = TimeExperts.from_network(net, (999, 499), predictions=("x0", "eps"), schedule=sched).eval()
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    t = torch.tensor([999, 600, 499, 3])
    with torch.no_grad():
        eps = model(x, t)
        raw = net(x, t)
    torch.testing.assert_close(forward.eps_to_x0(sched, x[:2], t[:2], eps[:2]), raw[:2], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(eps[2:], raw[2:], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(eps[:2], raw[:2], atol=1e-2)
    rebuilt = build_model(**json.loads(json.dumps(model.config)))
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x, t), eps)
    with pytest.raises(ValueError, match="schedule"):
        TimeExperts.from_network(net, (999, 499), predictions=("x0", "eps"))
    with pytest.raises(ValueError, match="predictions"):
        TimeExperts.from_network(net, (999, 499), predictions=("x0",), schedule=sched)
    with pytest.raises(ValueError, match="predictions"):
        TimeExperts.from_network(net, (999, 499), predictions=("x0", "v"), schedule=sched)
