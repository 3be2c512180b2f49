import pytest
import torch

from toydiff.toy.models import MLPConfig, MLPDenoiser, build_mlp, exercise_config


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("time_input", ["sinusoidal", "raw"])
def test_shapes_and_dtype(dim, time_input):
    m = MLPDenoiser(MLPConfig(dim=dim, width=32, depth=2, time_input=time_input))
    x = torch.randn(7, dim, dtype=torch.float64)
    out = m(x, torch.randint(0, 250, (7,)))
    assert out.shape == (7, dim) and out.dtype == torch.float64


def test_exercise_preset_is_the_seed_network():
    m = build_mlp(exercise_config(1))
    linears = [l for l in m.net if isinstance(l, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(2, 128), (128, 128), (128, 1)]
    assert sum(isinstance(l, torch.nn.Tanh) for l in m.net) == 2
    assert sum(p.numel() for p in m.parameters()) == 2 * 128 + 128 + 128 * 128 + 128 + 128 + 1


def test_time_changes_the_output():
    torch.manual_seed(0)
    m = MLPDenoiser(MLPConfig(dim=2))
    x = torch.randn(4, 2)
    assert not torch.allclose(m(x, torch.zeros(4, dtype=torch.long)), m(x, torch.full((4,), 100)))


def test_config_round_trip():
    cfg = MLPConfig(dim=2, width=64, depth=4, activation="gelu")
    torch.manual_seed(0)
    a = build_mlp(cfg)
    b = build_mlp(a.config_dict())
    b.load_state_dict(a.state_dict())
    x, t = torch.randn(3, 2), torch.tensor([0, 5, 9])
    assert torch.equal(a(x, t), b(x, t))


@pytest.mark.parametrize("kwargs, name", [({"dim": 0}, "dim"), ({"width": 2.5}, "width"), ({"activation": "x"}, "activation"),
                                          ({"time_input": "x"}, "time_input"), ({"time_dim": 7}, "time_dim")])
def test_bad_config(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MLPConfig(**kwargs)


def test_bad_input_shapes():
    m = MLPDenoiser(MLPConfig(dim=2, width=8, depth=1))
    with pytest.raises(ValueError, match="x must"):
        m(torch.randn(3, 1), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="t must"):
        m(torch.randn(3, 2), torch.zeros(2, dtype=torch.long))
