"""Two-process DistributedDataParallel training on CPU (gloo): ranks stay in step, rank 0 checkpoints, and a
run stopped mid-epoch resumes to the very weights of an uninterrupted one."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from image_track.training import TrainConfig, train

    dist.init_process_group("gloo")  # one group for the three runs (train() uses it and leaves it open)
    cfg = dict(preset="tiny", num_classes=10, subset=64, batch_size=16, max_steps=3, val_size=16,
               sample_every_epoch=False, progress=False, device="cpu", model_overrides={"widths": (4, 8, 8)})
    full = os.path.join(out_dir, "full")
    h = train(TrainConfig(out_dir=full, **cfg))
    torch.save({"state": h.model.state_dict(), "step": h.step}, os.path.join(out_dir, f"rank{rank}.pt"))
    cut = os.path.join(out_dir, "cut")
    h = train(TrainConfig(out_dir=cut, minutes=1e-9, **cfg))  # rank 0's clock stops both after one step
    assert h.stopped == "time budget" and h.step == 1
    h = train(TrainConfig(out_dir=cut, resume=os.path.join(cut, "checkpoint.safetensors"), **cfg))
    assert h.step == 3 and h.stopped == "finished"
    dist.barrier()  # rank 0 still writes its files: leave the group together, not while it is mid-way
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_training_and_resume(tmp_path):
    world = 2
    mp.spawn(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(world))
    assert r0["step"] == r1["step"] == 3
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k  # DDP kept the replicas identical
    from toydiff.training.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(tmp_path / "full" / "checkpoint.safetensors")
    assert meta["step"] == 3 and len(meta["rng_states"]) == world and meta["rng_states"][0] != meta["rng_states"][1]
    for k, v in r0["state"].items():
        assert torch.equal(tensors[f"model.{k}"], v)
    resumed, meta_r = load_checkpoint(tmp_path / "cut" / "checkpoint.safetensors")
    assert resumed.keys() == tensors.keys()
    for k in tensors:  # weights, EMA and optimizer state, bit for bit
        assert torch.equal(resumed[k], tensors[k]), k
    assert meta_r["rng_states"] == meta["rng_states"]
    assert meta_r["history"]["step_losses"] == meta["history"]["step_losses"]
