import pytest
import torch

from toydiff.training import checkpoint as ck


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

    from toydiff.training.checkpoint import checkpoint_kind, load_weights

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


def test_a_flipped_byte_in_tensor_data_is_caught_by_the_content_hash(tmp_path):
    path = ck.save_checkpoint(tmp_path / "c.safetensors", {"w": torch.arange(8.0), "b": torch.ones(2, 2)},
                              {"step": 1})
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # the low bit of a float in the data section: still finite, still parseable
    (tmp_path / "f.safetensors").write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointError, match=r"f\.safetensors is corrupt.*content hash"):
        ck.load_checkpoint(tmp_path / "f.safetensors")
    assert ck.load_checkpoint(path)[1] == {"step": 1}  # the original verifies
    from safetensors.torch import load_file, save_file

    header = {"toydiff": '{"step": 2}', "toydiff.sha256": ck.content_hash(load_file(str(path)), '{"step": 1}')}
    save_file(load_file(str(path)), str(tmp_path / "edited.safetensors"), metadata=header)  # metadata edited by hand
    with pytest.raises(ck.CheckpointError, match=r"edited\.safetensors is corrupt"):
        ck.load_checkpoint(tmp_path / "edited.safetensors")
    assert ck.content_hash({"w": torch.zeros(2)}) != ck.content_hash({"w": torch.zeros(1, 2)})  # shapes count
    assert ck.content_hash({"w": torch.zeros(2)}) != ck.content_hash({"v": torch.zeros(2)})  # names count


def test_files_without_a_hash_still_load(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(3)}, str(tmp_path / "old.safetensors"), metadata={"toydiff": '{"step": 4}'})
    tensors, meta = ck.load_checkpoint(tmp_path / "old.safetensors")
    assert meta == {"step": 4} and torch.equal(tensors["w"], torch.ones(3))


def test_non_finite_weights_are_refused_unless_allowed(tmp_path):
    w = torch.zeros(5)
    w[3] = float("nan")
    path = ck.save_checkpoint(tmp_path / "n.safetensors", {"w": w, "i": torch.arange(3)}, {"step": 1})
    with pytest.raises(ck.CheckpointError, match=r"n\.safetensors: tensor 'w' holds 1 NaN"):
        ck.load_checkpoint(path)
    tensors, _ = ck.load_checkpoint(path, allow_non_finite=True)
    assert torch.isnan(tensors["w"][3])


@pytest.mark.parametrize("text, needle", [("[1, 2]", "must be a JSON object, got list"), ("{oops", "not valid JSON")])
def test_metadata_that_is_not_a_json_object_names_the_file(tmp_path, text, needle):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(1)}, str(tmp_path / "m.safetensors"), metadata={"toydiff": text})
    with pytest.raises(ck.CheckpointError, match=r"m\.safetensors") as e:
        ck.load_checkpoint(tmp_path / "m.safetensors")
    assert needle in str(e.value)


def test_leftover_temporaries_are_removed_by_the_next_write_but_a_live_one_is_kept(tmp_path):
    import fcntl
    import os

    stale, live = tmp_path / ".c.safetensors.abc.tmp", tmp_path / ".d.safetensors.xyz.tmp"
    stale.write_bytes(b"half a checkpoint")
    live.write_bytes(b"being written")
    for p in (stale, live):
        os.utime(p, (1_000_000, 1_000_000))  # old enough
    with open(live, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # a writer still at work
        ck.save_checkpoint(tmp_path / "e.safetensors", {"w": torch.ones(1)}, {})
    assert not stale.exists() and live.exists()
    fresh = tmp_path / ".f.safetensors.new.tmp"
    fresh.write_bytes(b"just created")  # too young to judge: spared
    ck.save_checkpoint(tmp_path / "e.safetensors", {"w": torch.ones(1)}, {})
    assert fresh.exists() and not live.exists()


def test_require_kind_says_what_the_file_is_and_what_was_needed():
    assert ck.require_kind({"kind": "toydiff.toy"}, ("toydiff.toy",), "a.safetensors", "x") == "toydiff.toy"
    with pytest.raises(ck.CheckpointError, match=r"^a\.safetensors is a toy-track checkpoint \(toydiff toy train\); "
                                                 r"mnist sample needs an image_track checkpoint$"):
        ck.require_kind({"kind": "toydiff.toy"}, ("image_track.train/1",), "a.safetensors",
                        "mnist sample needs an image_track checkpoint")
    with pytest.raises(ck.CheckpointError, match="without a kind tag"):
        ck.require_kind({}, ("toydiff.toy",), "b", "needed")


def test_the_run_lock_keeps_a_second_writer_out_and_is_reentrant(tmp_path):
    import fcntl

    with ck.run_lock(tmp_path / "run") as folder:
        with ck.run_lock(tmp_path / "run"):  # the same process again: fine
            pass
        with open(folder / ".toydiff.lock", "rb") as other:  # another open file: another writer
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(tmp_path / "run" / ".toydiff.lock", "rb") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released
        with pytest.raises(ck.RunLockedError, match="another process is writing"):
            with ck.run_lock(tmp_path / "run"):
                pass


def test_read_metadata_reads_the_header_only(tmp_path):
    from safetensors.torch import save_file

    path = ck.save_checkpoint(tmp_path / "c.safetensors", {"w": torch.zeros(1000)}, {"kind": "toydiff.toy", "step": 3})
    assert ck.read_metadata(path) == ck.load_checkpoint(path)[1]
    assert ck.read_metadata(path)["kind"] == "toydiff.toy"
    # damage past the header: the metadata still reads (no tensor is touched), the verified load refuses
    data = bytearray(path.read_bytes())
    data[-8:] = b"\xff" * 8
    path.write_bytes(bytes(data))
    assert ck.read_metadata(path)["step"] == 3
    with pytest.raises(ck.CheckpointError):
        ck.load_checkpoint(path)
    save_file({"w": torch.zeros(2)}, tmp_path / "plain.safetensors")  # safetensors without toydiff metadata
    save_file({"w": torch.zeros(2)}, tmp_path / "list.safetensors", metadata={"toydiff": "[1, 2]"})
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    for name in ("plain", "list", "junk", "missing"):
        assert ck.read_metadata(tmp_path / f"{name}.safetensors") is None, name
