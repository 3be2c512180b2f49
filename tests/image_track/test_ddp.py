"""Two-process DistributedDataParallel training on CPU (gloo): ranks stay in step, rank 0 checkpoints."""

from __future__ import annotations

import os
import socket

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
    from image_track.train import TrainConfig, train

    h = train(TrainConfig(preset="tiny", num_classes=10, subset=64, batch_size=16, max_steps=3, val_size=16,
                          sample_every_epoch=False, progress=False, device="cpu", out_dir=out_dir,
                          model_overrides={"widths": (4, 8, 8)}))
    torch.save({"state": h.model.state_dict(), "step": h.step}, os.path.join(out_dir, f"rank{rank}.pt"))


def test_two_process_gloo_training(tmp_path):
    world = 2
    mp.spawn(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(world))
    assert r0["step"] == r1["step"] == 3
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k  # DDP kept the replicas identical
    from toydiff.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert meta["step"] == 3 and len(meta["rng_states"]) == world and meta["rng_states"][0] != meta["rng_states"][1]
    for k, v in r0["state"].items():
        assert torch.equal(tensors[f"model.{k}"], v)
