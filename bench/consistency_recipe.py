"""Consistency models on the toy track, judged against the exact flow map: the recipe search behind the defaults.

    python bench/consistency_recipe.py --dataset 8gaussians --candidates cd16 cd8 ct80      # 3 seeds each
    python bench/consistency_recipe.py --dataset 8gaussians --candidates cd16 --teacher runs/8g-flow   # + CD from a flow run

Each candidate (:data:`CANDIDATES`: a :class:`~toydiff.processes.consistency.ConsistencyProcess` and its epochs) is
trained with ``train_toy`` (the data set's recipe otherwise; training seed = evaluation seed, 1 torch thread) and
sampled at NFE 1, 2, 4 and 8 (Song et al. 2023, Algorithm 1, "consistency"; and the deterministic
"consistency-jump", :meth:`ConsistencyProcess.jump`) from fresh x_1 [n, D]. Per row, mean over seeds
(bench/few_step_judge.py's metrics):
  path RMS / std: sqrt(mean((x̂_0 − Φ_{1→0}(x_1))² / std_d²)) of the deterministic jump sampler, in data units over
      the mixture's exact per-coordinate std, against the exact map of the run's own normalised oracle;
  distance (W1 in 1-D, sliced W1 in 2-D, data units) of the Algorithm 1 samples and of the jump samples to a fresh
      true set a, ± sd over seeds, next to the two-sample floor d(b, a) ± sd at the same n;
  modes covered / off-mode share of the Algorithm 1 samples (:func:`toydiff.toy.metrics.mode_stats`);
  train seconds (wall and this process's CPU: the machine is shared, wall is inflated).
Tables are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

import toydiff as td
from toydiff.processes.consistency import ConsistencyProcess
from toydiff.toy import metrics
from toydiff.toy.datasets import get_dataset
from toydiff.toy.recipes import default_recipe
from toydiff.toy.run import train_toy

NFES = (1, 2, 4, 8)
#: name -> (process keywords, epochs or None for the recipe's)
CANDIDATES = {
    "cd16": (dict(objective_name="cd", teacher="exact", n_cd=16, rho=2.0), 20),
    "cd8": (dict(objective_name="cd", teacher="exact", n_cd=8, rho=2.0), 20),
    "cd32": (dict(objective_name="cd", teacher="exact", n_cd=32, rho=2.0), 20),
    "cd16-p0": (dict(objective_name="cd", teacher="exact", n_cd=16, rho=2.0, p_mean=0.0), 20),
    "cd16-e40": (dict(objective_name="cd", teacher="exact", n_cd=16, rho=2.0), 40),
    "ct80": (dict(objective_name="ct", s0=10, s1=80, rho=2.0), 20),
    "ct160": (dict(objective_name="ct", s0=10, s1=160, rho=2.0), 20),
}


def distance(x: np.ndarray, ref: np.ndarray) -> float:
    """W1 in 1-D, sliced W1 otherwise (data units), ``x``, ``ref`` ``[n, D]``."""
    return metrics.wasserstein1(x, ref) if x.shape[1] == 1 else metrics.sliced_wasserstein(x, ref)


def evaluate(run, n: int, seed: int) -> dict:
    """{nfe: {"path", "dist", "dist_jump", "covered", "off"}} and the floor of one trained run."""
    ds, gm, interp = run.dataset, run.oracle, td.interpolants.linear()
    std = ds.mixture.covariance().diagonal().sqrt()
    g = torch.Generator().manual_seed(10_000 + seed)
    x1 = torch.randn(n, ds.dim, generator=g, dtype=torch.float64)
    a, b = ds.sample(n, g).double().numpy(), ds.sample(n, g).double().numpy()
    exact = run.normalizer.inverse(gm.flow_map(x1, 1.0, 0.0, interp))
    fn, out = run.denoiser_fn(), {}
    for nfe in NFES:
        jump = run.normalizer.inverse(run.process.sample(fn, x1, method="consistency-jump", steps=nfe))
        alg1 = run.normalizer.inverse(run.process.sample(fn, x1, method="consistency", steps=nfe,
                                                         generator=torch.Generator().manual_seed(seed)))
        ms = metrics.mode_stats(alg1.numpy(), ds.mixture)
        out[nfe] = {"path": float((((jump - exact) / std) ** 2).mean().sqrt()), "dist": distance(alg1.numpy(), a),
                    "dist_jump": distance(jump.numpy(), a), "covered": ms["covered"], "off": ms["off_mode_share"]}
    out["floor"] = distance(b, a)
    return out


def run_candidate(ds, name: str, seeds: int, n: int, teacher: str | None) -> dict:
    kw, epochs = CANDIDATES[name]
    if teacher is not None:
        kw = kw | {"teacher": teacher}
    recipe = default_recipe(ds)
    rows = []
    for seed in range(seeds):
        w0, c0 = time.perf_counter(), time.process_time()
        run = train_toy(ds, process=ConsistencyProcess(**kw), config=recipe.train_config(
            seed=seed, **({} if epochs is None else {"epochs": epochs})), seed=seed, progress=False, threads=1)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        rows.append(evaluate(run, n, seed) | {"wall": wall, "cpu": cpu})
        print(f"  {name} seed {seed}: {wall:.0f} s wall, {cpu:.0f} s CPU", file=sys.stderr, flush=True)
    return {"kw": kw, "epochs": epochs, "rows": rows}


def table(ds, results: dict, n: int, seeds: int) -> str:
    dname = "W1" if ds.dim == 1 else "sliced W1"
    out = [f"{ds.name}: consistency models, n = {n} per set, mean ± sd over {seeds} seeds (training seed = draw seed)",
           "", f"| candidate | objective | teacher | NFE | path RMS / std (jump) | {dname} Alg. 1 | {dname} jump | "
           f"floor | modes | off-mode | train s (wall / CPU) |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        rows = r["rows"]
        fl = np.array([x["floor"] for x in rows])
        for nfe in NFES:
            col = lambda k: np.array([x[nfe][k] for x in rows])
            d, dj = col("dist"), col("dist_jump")
            out.append(f"| {name} | {r['kw']['objective_name']} | {r['kw'].get('teacher') or '—'} | {nfe} | "
                       f"{col('path').mean():.3f} | {d.mean():.4f} ± {d.std():.4f} ({d.mean() / fl.mean():.2f}×) | "
                       f"{dj.mean():.4f} ± {dj.std():.4f} ({dj.mean() / fl.mean():.2f}×) | {fl.mean():.4f} ± "
                       f"{fl.std():.4f} | {col('covered').mean():.1f}/{ds.mixture.K} | {100 * col('off').mean():.1f} % | "
                       f"{np.mean([x['wall'] for x in rows]):.0f} / {np.mean([x['cpu'] for x in rows]):.0f} |")
    return "\n".join(out)


def exact_jump(ds, n: int) -> str:
    """The exact f* (no training) under both samplers at 2 NFE: how far the deterministic jump leaves Φ_{1→0}."""
    from toydiff.toy.datasets import Normalizer

    norm = Normalizer.from_mixture(ds.mixture)
    gm, proc = norm.oracle(ds.mixture), ConsistencyProcess()
    fn, g = proc.exact_fn(gm, rtol=1e-7, atol=1e-7), torch.Generator().manual_seed(0)
    x1 = torch.randn(n, ds.dim, generator=g, dtype=torch.float64)
    a, b = ds.sample(n, g).double().numpy(), ds.sample(n, g).double().numpy()
    exact, fl = fn(x1, torch.ones(n, dtype=torch.float64)), distance(b, a)
    out = [f"{ds.name}, exact f*, n = {n}, one draw; path RMS in normalised (exact std 1) units", "",
           "| times | path RMS (jump) | distance jump | distance Alg. 1 |", "|---|---:|---:|---:|"]
    for times in ([1.0, 0.5], [1.0, 0.2]):
        j = proc.sample(fn, x1, method="consistency-jump", times=times)
        s = proc.sample(fn, x1, method="consistency", times=times, generator=torch.Generator().manual_seed(1))
        out.append(f"| {times} | {float(((j - exact) ** 2).mean().sqrt()):.4f} | "
                   f"{distance(norm.inverse(j).numpy(), a) / fl:.2f}× | {distance(norm.inverse(s).numpy(), a) / fl:.2f}× |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="8gaussians")
    p.add_argument("--candidates", nargs="+", default=["cd16", "ct80"], choices=tuple(CANDIDATES))
    p.add_argument("--teacher", default=None, help="a trained toy flow run: replaces the cd candidates' exact teacher")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--exact-jump", action="store_true", help="only the exact f* rows at 2 NFE (n = 1000, no training)")
    args = p.parse_args(argv)
    ds = get_dataset(args.dataset)
    torch.set_num_threads(1)
    if args.exact_jump:
        print(exact_jump(ds, 1000))
        return 0
    results = {name: run_candidate(ds, name, args.seeds, args.n, args.teacher if CANDIDATES[name][0]["objective_name"]
                                   == "cd" else None) for name in args.candidates}
    print(table(ds, results, args.n, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
