"""``toydiff toy sample``: samples of a run (or of the exact oracle) into a .npy file, with any sampler of its process.

    toydiff toy sample --run runs/toy --method ddim --steps 50 --n 10000 --out samples.npy
    toydiff toy sample --oracle --dataset 8gaussians --process flow --out exact.npy

Reads top-down: :func:`~toydiff.toy.cli.common.run_for` (the run, its process from the checkpoint) ->
:meth:`~toydiff.toy.run.ToyRun.sample` -> :meth:`Process.sample <toydiff.processes.base.Process.sample>`.
"""

from __future__ import annotations

from pathlib import Path

from toydiff.cli import check_writable, fail
from toydiff.outputs import save_npy
from toydiff.toy.cli.common import PROG, add_denoiser_flags, add_sampling_flags, run_for, sampler_kwargs, sampler_label

__all__ = ["HELP", "add_parser", "run"]

HELP = "draw samples with any sampler, from a run or the exact oracle"


def add_parser(sub) -> None:
    s = sub.add_parser("sample", help=HELP)
    add_denoiser_flags(s)
    add_sampling_flags(s)
    s.add_argument("--out", required=True, help="a .npy file ([n, D], data units; rewritten if it exists)")


def run(a) -> int:
    """Run ``toydiff toy sample``."""
    out = Path(a.out)
    if out.suffix != ".npy":
        fail(f"{PROG} sample: error: --out must end in .npy, got {a.out!r}")
    check_writable(out, "--out")  # before the sampling, writing nothing
    toy = run_for(a)
    x = toy.sample(a.n, **sampler_kwargs(toy, a), seed=a.seed, exact=a.oracle, progress=True)
    save_npy(out, x)  # atomically: a full disk leaves the previous file, never a truncated one
    src = "exact oracle" if a.oracle else f"run {a.run}"
    print(f"{a.n} samples of {toy.dataset.name} [{a.n}, {toy.dataset.dim}] from the {src} "
          f"({sampler_label(toy, a)}): mean {x.mean(0).tolist()}, std {x.std(0).tolist()}; wrote {out}")
    return 0
