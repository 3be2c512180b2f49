"""How long the Motion page's animations take to precompute, and how big they are (one torch thread, as the app).

    PYTHONPATH=. python bench/motion_frames.py [dataset] [particles] [steps]     # default 8gaussians 2000 50

Uses the shipped checkpoint of the data set (toydiff/toy/weights). Prints a table: seconds to compute the
frames and build the Plotly figure, frames, and the figure's JSON size (what the browser receives).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from toydiff.toy import motion
from toydiff.toy.figures.motion import forward_animation_plotly, race_animation_plotly, reverse_animation_plotly
from toydiff.toy.run import load_toy
from toydiff.threads import configure_threads

WEIGHTS = Path(__file__).resolve().parents[1] / "toydiff" / "toy" / "weights"


def main(dataset: str = "8gaussians", n: int = 2000, steps: int = 50) -> None:
    configure_threads(1)
    run = load_toy(WEIGHTS / dataset)
    oracle, s = run.oracle, run.schedule
    g = torch.Generator().manual_seed(0)
    rows = []

    def timed(name, make):
        t0 = time.perf_counter()
        fig = make()
        secs = time.perf_counter() - t0
        rows.append((name, secs, len(fig.frames), len(fig.to_json()) / 1e6))

    x0 = run.normalizer.forward(run.dataset.sample(n, g).double())
    timed(f"forward, {n} particles", lambda: forward_animation_plotly(
        motion.forward_motion(x0, s, frames=steps, generator=g), oracle))
    x_T = torch.randn(n, run.dataset.dim, generator=g, dtype=torch.float64)
    fields = {"learned ε̂": run.eps_fn(), "exact ε*": oracle.eps_fn(s)}
    timed(f"reverse ddim, {n} particles, learned + exact arrows", lambda: reverse_animation_plotly(
        motion.reverse_motion(run.eps_fn(), x_T, s, method="ddim", steps=steps), mixture=oracle, fields=fields))
    timed("race: exact PF-ODE, DDIM, DDPM (1 particle)", lambda: race_animation_plotly(
        motion.particle_race(oracle, s, x_T[:1], eps_fn=run.eps_fn(), steps=steps), mixture=oracle))
    print(f"{dataset}, {steps} steps, 1 torch thread\n")
    print("| animation | seconds | frames | JSON (MB) |\n|---|---:|---:|---:|")
    for name, secs, frames, mb in rows:
        print(f"| {name} | {secs:.2f} | {frames} | {mb:.1f} |")


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0] if a else "8gaussians", int(a[1]) if len(a) > 1 else 2000, int(a[2]) if len(a) > 2 else 50)
