"""Training throughput of a UNet preset on this CPU: float32 against bf16 autocast, side by side.

    python bench/cpu_amp.py                  # tiny preset, batch 32 and 128, 1 and 2 threads (~1 minute)
    python bench/cpu_amp.py --compile        # adds torch.compile rows (each compiles for ~20 s first)

Each row times forward + backward + AdamW steps of ``--preset`` (channels_last, as image_track.training runs
it) after warm-up steps, with autocast on or off in the same process, so the ratio column compares like with
like. bf16 autocast only pays where the CPU has AMX tiles (``image_track.training.bf16_autocast`` turns it on
only there); elsewhere expect a ratio below 1.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from toydiff.threads import configure_threads

from image_track.models import build_model


def images_per_s(preset: str, batch: int, amp: bool, compile_: bool, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    model = build_model(preset).to(memory_format=torch.channels_last)
    f = torch.compile(model) if compile_ else model
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    t = torch.randint(0, 1000, (batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = f(x, t)
        loss = (out.float() - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batch * steps / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--batches", default="32,128")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--compile", action="store_true")
    a = p.parse_args(argv)
    amx = torch.cpu._is_amx_tile_supported()
    print(f"{a.preset} preset, training steps on the CPU (AMX tiles: {'yes' if amx else 'no'})\n")
    print("| threads | batch | torch.compile | float32 img/s | bf16 autocast img/s | bf16 / float32 |")
    print("|---:|---:|---|---:|---:|---:|")
    for threads in (int(v) for v in a.threads.split(",")):
        configure_threads(threads)
        for batch in (int(v) for v in a.batches.split(",")):
            for comp in ((False, True) if a.compile else (False,)):
                warm = 20 if comp else 5
                f32 = images_per_s(a.preset, batch, False, comp, a.steps, warm)
                b16 = images_per_s(a.preset, batch, True, comp, a.steps, warm)
                print(f"| {threads} | {batch} | {'yes' if comp else 'no'} | {f32:.0f} | {b16:.0f} | {b16 / f32:.2f} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
