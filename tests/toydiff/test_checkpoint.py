import pytest
import torch

from toydiff import checkpoint as ck


def test_round_trip_and_rng_state(tmp_path):
    g = torch.Generator().manual_seed(3)
    state = ck.rng_state(g)
    a = torch.randn(4, generator=g)
    path = ck.save_checkpoint(tmp_path / "sub" / "c.safetensors", {"w": torch.arange(6.0).reshape(2, 3)},
                              {"step": 7, "rng": state, "config": {"lr": 1e-3}})
    tensors, meta = ck.load_checkpoint(path)
    assert torch.equal(tensors["w"], torch.arange(6.0).reshape(2, 3))
    assert meta["step"] == 7 and meta["config"] == {"lr": 1e-3}
    g2 = torch.Generator()
    ck.set_rng_state(meta["rng"], g2)
    assert torch.equal(torch.randn(4, generator=g2), a)
    assert not list(tmp_path.glob("sub/.*.tmp")), "no temporary file is left behind"


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(ck.CheckpointError, match="not found"):
        ck.load_checkpoint(tmp_path / "missing.safetensors")
    good = ck.save_checkpoint(tmp_path / "c.safetensors", {"w": torch.zeros(100)}, {"step": 1})
    trunc = tmp_path / "t.safetensors"
    trunc.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ck.CheckpointError, match="truncated or corrupt"):
        ck.load_checkpoint(trunc)
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ck.CheckpointError, match="not a toydiff checkpoint"):
        ck.load_checkpoint(tmp_path / "plain.safetensors")
    with pytest.raises(TypeError, match="JSON"):
        ck.save_checkpoint(tmp_path / "x.safetensors", {"w": torch.zeros(1)}, {"bad": object()})


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = ck.save_checkpoint(tmp_path / "c.safetensors", {"w": torch.ones(3)}, {"step": 1})
    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(ck.os, "replace", boom)
    with pytest.raises(OSError):
        ck.save_checkpoint(path, {"w": torch.zeros(3)}, {"step": 2})
    assert ck.load_checkpoint(path)[1]["step"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_optimizer_state_survives_split_and_join(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, skeleton = ck.split_state(opt.state_dict(), "optim")
    path = ck.save_checkpoint(tmp_path / "o.safetensors", tensors, {"optim": skeleton})
    loaded, meta = ck.load_checkpoint(path)
    opt2 = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=5.0)
    opt2.load_state_dict(ck.join_state(meta["optim"], loaded))
    assert opt2.param_groups[0]["lr"] == 1e-3
    for k in (0, 1):
        assert torch.equal(opt2.state[opt2.param_groups[0]["params"][k]]["exp_avg"],
                           opt.state[opt.param_groups[0]["params"][k]]["exp_avg"])
    with pytest.raises(ck.CheckpointError, match="missing tensor"):
        ck.join_state(meta["optim"], {})


def test_load_weights_casts_and_names_what_does_not_fit():
    from torch import nn

    from toydiff.checkpoint import checkpoint_kind, load_weights

    net = nn.Linear(3, 2)
    half = {f"ema.{k}": v.half() + 1 for k, v in nn.Linear(3, 2).state_dict().items()}
    load_weights(net, half, "ema.", source="ck")
    assert net.weight.dtype == torch.float32 and torch.equal(net.weight, half["ema.weight"].float())
    with pytest.raises(ck.CheckpointError, match="ck holds no 'model' weights"):
        load_weights(net, half, "model.", source="ck")
    with pytest.raises(ck.CheckpointError, match=r"ck does not fit the net: missing \['bias'\]"):
        load_weights(net, {"w.weight": half["ema.weight"]}, "w.", source="ck", what="the net")
    with pytest.raises(ck.CheckpointError, match=r"weight has shape \(2, 3\), the net needs \(4, 3\)"):
        load_weights(nn.Linear(3, 4), half, "ema.", source="ck", what="the net")
    assert checkpoint_kind({"kind": "a"}) == "a" and checkpoint_kind({"format": "b"}) == "b"
    assert checkpoint_kind({}) is None
