"""``toydiff discrete sample``: draw sequences from a trained run or the exact denoiser; print the exact KL / TV
to the table next to the count floor at that n.

    toydiff discrete sample --run runs/discrete --steps 64 --n 4000 --out samples.npy
    toydiff discrete sample --exact --dataset words --method maskgit --steps 16
"""

from __future__ import annotations

import torch

from toydiff.cli import check_writable
from toydiff.discrete.cli.common import add_denoiser_flags, add_sampling_flags, draw, run_for

__all__ = ["HELP", "add_parser", "run"]

HELP = "draw sequences (a run or --exact); print their exact KL / TV to the table and the count floor"


def add_parser(sub) -> None:
    s = sub.add_parser("sample", help=HELP, description=HELP + ".")
    add_denoiser_flags(s)
    add_sampling_flags(s)
    s.add_argument("--out", default=None, help="write the sequences [n, L] as .npy (rewritten atomically)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")


def _bar(a, steps: int):
    if a.quiet:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc="sample", unit="step")
    return bar, lambda info: bar.update(1)


def run(a) -> int:
    """Run ``toydiff discrete sample``."""
    from toydiff.discrete import judge
    from toydiff.outputs import save_npy

    out = check_writable(a.out, "--out") if a.out is not None else None
    r = run_for(a)
    r.process.nfe(a.method, a.steps or r.process.default_steps)  # a method the process lacks: exit 2 before work
    r.process.time_grid(a.steps or r.process.default_steps)  # more steps than T: exit 2 before work
    bar, cb = _bar(a, a.steps or r.process.default_steps)
    try:
        x = draw(r, a, exact=a.exact, callback=cb)
    finally:
        if bar is not None:
            bar.close()
    kl, tv = judge.kl_tv(r.dist, x)
    floor = judge.count_floor(r.dist, a.n, draws=10, generator=torch.Generator().manual_seed(a.seed + 1))
    who = "exact denoiser" if a.exact else f"model {a.run or 'runs/discrete'}"
    print(f"{r.dist!r}, {r.process.describe()}, {who}, {a.method} {a.steps or r.process.default_steps} steps: "
          f"KL {kl:.4f} nats, TV {tv:.4f} (n = {a.n}; count floor KL {floor['kl']:.4f} ± {floor['kl_sd']:.4f}, "
          f"TV {floor['tv']:.4f})")
    if out is not None:
        save_npy(out, x.numpy())
    return 0
