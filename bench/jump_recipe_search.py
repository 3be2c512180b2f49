"""The jump process's recipes (MeanFlow, shortcut models) judged against the exact flow map at 1, 2, 4, 8 NFE.

    python bench/jump_recipe_search.py --dataset 8gaussians                   # the default recipe, both objectives
    python bench/jump_recipe_search.py --dataset two_gaussians --candidates all --seeds 3
    python bench/jump_recipe_search.py --candidates shortcut --seed 0 --json s0.json   # one seed per process, then
    python bench/jump_recipe_search.py --merge s0.json s1.json s2.json                 # the table of all of them

Each candidate (an objective and changes to the data family's jump recipe, :data:`toydiff.toy.recipes.RECIPE_JUMP_2D`
/ ``RECIPE_JUMP_1D``) is trained once per seed (1 thread; the train time is printed, inflated by a shared machine)
and sampled with 1, 2, 4 and 8 jumps (:meth:`toydiff.processes.jump.JumpProcess.sample`) from the SAME x_1 draws
as the exact map. Per row, mean over seeds, with the metrics of ``bench/few_step_judge.py`` (whose exact-oracle
Euler / Heun / DPM++ rows are the reference at the same NFE):
  path RMS / std: sqrt(mean ((x̂_0 − Φ_{1→0}(x_1)) / std_d)²) in data units, std_d the data's exact std per
      coordinate, Φ the exact flow map of the run's own normalised oracle (:func:`toydiff.exact.flow_map.flow_map`);
  distance (sliced W1 in 2-D, W1 in 1-D) to fresh true samples, mean ± sd, next to the two-sample floor at the same
      n: the mean over 8 independent pairs of true sets (``few_step_judge.floor_draws``: the same draws for every
      row, and the same statistic as ``bench/few_step_judge.py``'s floor, so the two benches' rows compare);
  modes covered and the off-mode share (:func:`toydiff.toy.metrics.mode_stats`).
Tables are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from few_step_judge import distance, floor_draws  # noqa: E402

from toydiff.processes.jump import JumpProcess  # noqa: E402
from toydiff.threads import configure_threads  # noqa: E402
from toydiff.toy import metrics  # noqa: E402
from toydiff.toy.datasets import Normalizer, get_dataset  # noqa: E402
from toydiff.toy.recipes import default_recipe  # noqa: E402
from toydiff.toy.models import network_config_for  # noqa: E402
from toydiff.toy.run import CHECKPOINT_NAME, ToyRun, toy_trainer  # noqa: E402

NFES = (1, 2, 4, 8)
#: name -> (objective, changes): recipe fields, ``time_scale`` (the process's), the objective's own options
CANDIDATES = {
    "meanflow": ("meanflow", {}),
    "meanflow, equal time": ("meanflow", {"epochs": 1 / 3}),
    "shortcut": ("shortcut", {}),
    "meanflow, time scale 1": ("meanflow", {"time_scale": 1.0}),
    "meanflow, time scale 100": ("meanflow", {"time_scale": 100.0}),
    "meanflow, time scale 1000": ("meanflow", {"time_scale": 1000.0}),
    "meanflow, adaptive p 1": ("meanflow", {"adaptive_p": 1.0}),
    "meanflow, adaptive p 0.5": ("meanflow", {"adaptive_p": 0.5}),
    "meanflow, flow share 0.5": ("meanflow", {"flow_share": 0.5}),
    "meanflow, 2x epochs": ("meanflow", {"epochs": 2}),
    "meanflow, width 256": ("meanflow", {"width": 256}),
    "meanflow, logit-normal t": ("meanflow", {"t_sampling": "logit-normal"}),
    "shortcut, 2x epochs": ("shortcut", {"epochs": 2}),
    "shortcut, 3x epochs": ("shortcut", {"epochs": 3}),
    "meanflow, adaptive p 1, 2x epochs": ("meanflow", {"adaptive_p": 1.0, "epochs": 2}),
    "shortcut, consistency share 0.5": ("shortcut", {"consistency_share": 0.5}),
    "shortcut, logit-normal t": ("shortcut", {"t_sampling": "logit-normal"}),
    "shortcut, width 256": ("shortcut", {"width": 256}),
    "shortcut, 3x epochs, consistency share 0.5": ("shortcut", {"epochs": 3, "consistency_share": 0.5}),
    "distill": ("distill", {}),
    "distill, uniform pairs": ("distill", {"pairs": "uniform"}),
    "distill, 1/2 epochs": ("distill", {"epochs": 0.5}),
}
_PROCESS_KEYS = ("time_scale",)
_OBJECTIVE_KEYS = ("adaptive_p", "flow_share", "consistency_share", "max_steps", "pairs", "grid", "pool")
DEFAULT = ("distill", "shortcut", "meanflow, equal time")


def recipe_for(name: str, changes: dict):
    base = default_recipe(name, "jump")
    changes = dict(changes)
    if "epochs" in changes:
        changes["epochs"] = int(base.epochs * changes["epochs"])
    return replace(base, **changes)


def judge_run(run, ds, n: int, seed: int, add) -> None:
    """Sample ``run`` with 1/2/4/8 jumps and its exact map from the same x_1 (``seed``); ``add(nfe, x, exact, a)``."""
    g = torch.Generator().manual_seed(10_000 + seed)
    x1 = torch.randn(n, ds.dim, generator=g, dtype=torch.float64)
    a = ds.sample(n, g).double().numpy()
    exact = run.normalizer.inverse(run.oracle.flow_map(x1, 1.0, 0.0, run.process.interp))
    fn = run.denoiser_fn()
    for nfe in NFES:
        add(nfe, run.normalizer.inverse(run.process.sample(fn, x1, steps=nfe).double()), exact, a)
    add("∞ (exact map)", exact, exact, a)


def search(dataset: str, names, seeds, n: int, save: str | None = None) -> tuple[dict, dict]:
    """Rows ``{(name, nfe): {metric: [per seed]}}`` of each candidate trained with each seed in ``seeds`` (an
    iterable of ints), and the floor (:func:`few_step_judge.floor_draws`); ``save``: a folder, each run's checkpoint
    written to ``save/<candidate>-seed<k>``."""
    ds = get_dataset(dataset)
    std = Normalizer.from_mixture(ds.mixture).std
    rows: dict = {}
    for name in names:
        objective, changes = CANDIDATES[name]
        proc = JumpProcess(objective_kind=objective, teacher="exact" if objective == "distill" else None,
                           **{k: v for k, v in changes.items() if k in _PROCESS_KEYS})
        recipe = recipe_for(dataset, {k: v for k, v in changes.items() if k not in _PROCESS_KEYS + _OBJECTIVE_KEYS})
        obj = proc.objective(t_sampling=recipe.t_sampling, **{k: v for k, v in changes.items() if k in _OBJECTIVE_KEYS})
        for seed in seeds:
            t0, c0 = time.perf_counter(), time.process_time()
            trainer, normalizer = toy_trainer(ds, obj, network_config_for(recipe.model_config(ds.dim), proc),
                                              recipe.train_config(seed=seed), recipe.n_train, 2000, seed, recipe.fresh)
            run = ToyRun(ds, proc, normalizer, trainer.eval_model.eval(), trainer.fit(progress=False))
            secs, cpu = time.perf_counter() - t0, time.process_time() - c0

            def add(nfe, x, exact, a):
                xn = x.numpy()
                ms = metrics.mode_stats(xn, ds.mixture)
                r = rows.setdefault((name, nfe), {"path": [], "dist": [], "covered": [], "off": [], "secs": [],
                                                  "cpu": []})
                r["path"].append(float((((x - exact) / std) ** 2).mean().sqrt()))
                r["dist"].append(distance(xn, a))
                r["covered"].append(ms["covered"])
                r["off"].append(ms["off_mode_share"])
                r["secs"].append(secs)
                r["cpu"].append(cpu)

            judge_run(run, ds, n, seed, add)
            if save:
                trainer.save(Path(save) / f"{name.replace(' ', '').replace(',', '-')}-seed{seed}" / CHECKPOINT_NAME)
            print(f"  {name} seed {seed}: trained in {secs:.0f} s ({cpu:.0f} s CPU)", file=sys.stderr)
    return rows, {"dist": floor_draws(ds, n)}


def table(ds, rows: dict, floor: dict, n: int, seeds: int) -> str:
    dname = "W1" if ds.dim == 1 else "sliced W1"
    fl, fl_sd = float(np.mean(floor["dist"])), float(np.std(floor["dist"]))
    out = [f"{ds.name}: jump process, mean ± sd over {seeds} training seeds; n = {n}; path error in data std units; "
           f"{dname} floor (true vs true, n = {n}, mean ± sd over {len(floor['dist'])} draws) {fl:.4f} ± {fl_sd:.4f}",
           "",
           f"| candidate | NFE | path RMS / std | {dname} (× floor) | floor | modes | off-mode | train s (CPU s) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (name, nfe), r in rows.items():
        d, d_sd = float(np.mean(r["dist"])), float(np.std(r["dist"]))
        out.append(f"| {name} | {nfe} | {np.mean(r['path']):.4f} | {d:.4f} ± {d_sd:.4f} ({d / fl:.2f}×) | "
                   f"{fl:.4f} ± {fl_sd:.4f} | {np.mean(r['covered']):.1f}/{ds.mixture.K} | "
                   f"{100 * np.mean(r['off']):.2f} % | {np.mean(r['secs']):.0f} ({np.mean(r['cpu']):.0f}) |")
    return "\n".join(out)


def merge(dataset: str, paths, n: int) -> int:
    """Print the table of the rows in ``paths`` (``--json`` files of one ``n``), each row's seeds pooled."""
    ds, rows, seen = get_dataset(dataset), {}, set()
    for path in paths:
        d = json.loads(Path(path).read_text())
        if d["n"] != n:
            print(f"jump_recipe_search: {path} has n = {d['n']}, not --n {n}", file=sys.stderr)
            return 2
        for (name, nfe), r in d["rows"]:
            dest = rows.setdefault((name, nfe), {k: [] for k in r})
            for k, v in r.items():
                dest[k].extend(v)
            seen.add(len(rows[(name, nfe)]["path"]))
    print(table(ds, rows, {"dist": floor_draws(ds, n)}, n, max(seen)))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="8gaussians", help="a toy data set with an exact mixture")
    p.add_argument("--candidates", default=";".join(DEFAULT),
                   help=f"names separated by semicolons, or all: {'; '.join(CANDIDATES)}")
    p.add_argument("--n", type=int, default=4000, help="samples per set")
    p.add_argument("--seeds", type=int, default=3, help="training seeds averaged over")
    p.add_argument("--seed", type=int, action="append", metavar="K",
                   help="train only seed K (repeatable; for running seeds as separate processes, see --json)")
    p.add_argument("--json", metavar="PATH", help="also write the raw per-seed rows to PATH")
    p.add_argument("--merge", nargs="+", metavar="PATH", help="print the table of --json files (trains nothing)")
    p.add_argument("--save", metavar="DIR", help="write each run's checkpoint under DIR")
    args = p.parse_args(argv)
    if args.merge:
        return merge(args.dataset, args.merge, args.n)
    names = list(CANDIDATES) if args.candidates == "all" else [c.strip() for c in args.candidates.split(";")]
    bad = [c for c in names if c not in CANDIDATES]
    if bad or args.n < 10 or args.seeds < 1:
        p.error(f"unknown candidates {bad}" if bad else "--n must be at least 10 and --seeds at least 1")
    configure_threads(1)
    ds = get_dataset(args.dataset)
    t0 = time.perf_counter()
    seeds = args.seed if args.seed else range(args.seeds)
    rows, floor = search(args.dataset, names, seeds, args.n, args.save)
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "rows": [[k, v] for k, v in rows.items()]}))
    print(table(ds, rows, floor, args.n, len(seeds)))
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
