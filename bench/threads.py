"""Wall and CPU time of the toy default training at 1 and 2 torch threads, on a quiet CPU and under load.

    python bench/threads.py                      # toydiff toy train defaults (two_gaussians, 100 epochs)
    python bench/threads.py --epochs 3 --threads 1,2 --image-steps 20

Each cell runs ``toydiff toy train --out <tmp> --quiet [--epochs E] --threads N`` in a fresh process (imports
included) and reads its wall time and its CPU time (user + system, from ``os.wait4``). "loaded": the bench
first starts one busy-loop process per core (bounded by ``--load-cap`` seconds, stopped at the end). With
``--image-steps S`` it also times S training steps of the image track's ``tiny`` UNet (batch 32, 28 x 28,
forward + backward + AdamW) the same way. The policy this measures is :mod:`toydiff.threads`. Timings on a
shared machine are noisy: say so when quoting them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CLI = "import sys; from toydiff.cli import main; sys.exit(main())"
_BUSY = "import time\nend = time.time() + {cap}\nwhile time.time() < end:\n    pass\n"
_IMAGE = """
import time, torch
from toydiff.threads import configure_threads
from image_track.models import build_model
configure_threads({n})
torch.manual_seed(0)
m = build_model("tiny")
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
x, t = torch.randn(32, 1, 28, 28), torch.randint(0, 1000, (32,))
for _ in range({steps}):
    loss = (m(x, t) - x).square().mean()
    opt.zero_grad(); loss.backward(); opt.step()
"""


def timed(cmd: list[str], timeout: float) -> tuple[float, float]:
    """(wall s, CPU s) of ``cmd`` run to its end; a failure is a RuntimeError with its stderr. Stopped after
    ``timeout`` s: (inf, CPU s so far)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("OMP_NUM_THREADS", None)
    t0 = time.perf_counter()
    err_file = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err_file)
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > timeout:
            p.kill()
            _, status, usage = os.wait4(p.pid, 0)
            err_file.close()
            return float("inf"), usage.ru_utime + usage.ru_stime
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err_file.seek(0)
    err = err_file.read().decode(errors="replace")
    err_file.close()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {err[-1000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def start_load(cap_s: float) -> list[subprocess.Popen]:
    """One busy-loop process per core, each ending by itself after ``cap_s`` seconds at the latest."""
    return [subprocess.Popen([sys.executable, "-c", _BUSY.format(cap=cap_s)]) for _ in range(os.cpu_count() or 1)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cells(epochs: int | None, threads: list[int], image_steps: int) -> dict[str, list[str]]:
    """workload name -> command per thread count (``{n}`` filled in later)."""
    epochs_flag = [] if epochs is None else ["--epochs", str(epochs)]
    work = {"toy train (defaults" + ("" if epochs is None else f", --epochs {epochs}") + ")":
            [sys.executable, "-c", _CLI, "toy", "train", "--out", "{out}", "--quiet", *epochs_flag,
             "--threads", "{n}"]}
    if image_steps:
        work[f"image track: tiny UNet, {image_steps} steps of batch 32"] = [sys.executable, "-c", "{image}"]
    return work


def run(epochs: int | None, threads: list[int], image_steps: int, load_cap: float, cell_timeout: float) -> list[tuple]:
    rows = []
    for load in ("quiet", "loaded"):
        procs = start_load(load_cap) if load == "loaded" else []
        try:
            for name, cmd in cells(epochs, threads, image_steps).items():
                for n in threads:
                    with tempfile.TemporaryDirectory() as tmp:
                        args = [c.format(out=f"{tmp}/run", n=n, image=_IMAGE.format(n=n, steps=image_steps))
                                for c in cmd]
                        wall, cpu = timed(args, cell_timeout)
                    rows.append((name, load, n, wall, cpu))
                    print(f"  {name}, {load}, {n} thread(s): {wall:.1f} s wall, {cpu:.1f} s CPU", file=sys.stderr)
        finally:
            stop_load(procs)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3,
                   help="toy train --epochs (default 3: the full 100 took 2-3 min a cell here, far more loaded; "
                        "0: the recipe's)")
    p.add_argument("--cell-timeout", type=float, default=600.0, help="a cell still running after this is stopped "
                   "and reported as '> T' (default 600 s)")
    p.add_argument("--threads", default="1,2", help="thread counts to compare (default 1,2)")
    p.add_argument("--image-steps", type=int, default=20, help="tiny UNet steps (0: skip the image track)")
    p.add_argument("--load-cap", type=float, default=900.0, help="the busy loops stop by themselves after this (s)")
    a = p.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    load = os.getloadavg()[0]
    rows = run(a.epochs or None, threads, a.image_steps, a.load_cap, a.cell_timeout)
    print(f"{os.cpu_count()} cores; 1-min load average {load:.1f} before the bench ('quiet' = no busy loops of "
          "the bench's own; the machine may be shared)\n")
    print("| workload | load | threads | wall s | CPU s |\n|---|---|---:|---:|---:|")
    for name, load_, n, wall, cpu in rows:
        print(f"| {name} | {load_} | {n} | " + (f"{wall:.1f}" if wall < float("inf") else "> timeout")
              + f" | {cpu:.1f} |")


if __name__ == "__main__":
    main()
