"""Few-step generation judged against the exact flow map: what a perfect model gives at 1, 2, 4 and 8 evaluations.

    python bench/few_step_judge.py                          # 8gaussians, n = 4000, 3 seeds (~20 s, 1 thread)
    python bench/few_step_judge.py --dataset two_gaussians  # the 1-D mixture
    python bench/few_step_judge.py --checkpoint runs/mf/checkpoint.safetensors   # + a trained few-step run's rows
    python bench/few_step_judge.py --figure jump_error.png --cloud one_jump.png  # + the error-against-t figure

Issue #24's framing: a few-step method (consistency models, Song et al. 2023; Mean Flows, Geng et al. 2025; reflow)
approximates the probability-flow map Φ_{1→0}, so it should be judged against that map itself, not only against
samples. On a Gaussian mixture both the velocity field and the map are exact (:mod:`toydiff.exact.flow_map`), so
the only error left is the sampler's discretisation error: this is what a *perfect* diffusion / flow model gives
at a given budget, the bar any few-step method must beat.

Setting: the linear interpolant x_t = (1 − t) x_0 + t ε (rectified flow, Liu et al. 2023, "Flow Straight and Fast")
on the data normalised by the mixture's exact moments, with the exact velocity E[ε − x_0 | x_t]
(``gm.velocity_fn(interp)``). Samplers: Euler, Heun (Karras et al. 2022, "Elucidating the Design Space";
2 evaluations per step), DPM++(2M) (Lu et al. 2022, "DPM-Solver++"), each at the step count whose evaluation count
(``td.function_evaluations``) is exactly the NFE; "—" where none is. Every sampler starts from the SAME x_1 draws.

Rows: the exact-oracle solvers (``--solvers``), then one row per ``--checkpoint`` (a few-step toy run loaded with
:func:`toydiff.toy.run.load_toy`, whose process has ``.sample`` / ``.jump``), judged against its own oracle (the
mixture in the checkpoint's normalisation) from the same x_1 and truth sets (the seeds are shared). The metrics are
:func:`toydiff.evaluation.few_step.judge`'s. Distances are in data units.

Per row, mean over ``--seeds`` seeds (each seed: fresh x_1 [n, D], fresh true set a [n, D], second true set b):
  (a) path RMS/std: sqrt(mean over samples and coordinates of ((x̂_0 − Φ_{1→0}(x_1)) / std_d)²), std_d the data's
      exact per-coordinate std (i.e. the RMS error in model units), from the same x_1;
  (b) distance to fresh true samples (data units; sliced W1 in 2-D, 128 projections; W1 in 1-D) next to the
      two-sample noise floor at the same n (mean ± sd over seeds); the floor is the mean over :data:`FLOOR_DRAWS`
      independent pairs of true sets (:func:`floor_draws`, fixed seeds, the same statistic and draws as
      ``bench/jump_recipe_search.py``, so the two benches' rows compare; one pair is noisy: sd 20–30 % at n = 4000);
  (c) modes covered (components holding ≥ 1/4 of their expected share, points assigned by responsibility) and
      off-mode share (points more than 3 component stds, Mahalanobis, from every component),
      :func:`toydiff.toy.metrics.mode_stats`.
The row "exact map (the floor)" is Φ_{1→0}(x_1) itself (scipy DOP853, rtol = atol = 1e-10): path error 0 by
construction, its distance being a perfect generator's. Tables are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

import toydiff as td
from toydiff.evaluation import few_step as fs
from toydiff.threads import configure_threads
from toydiff.toy import metrics
from toydiff.toy.datasets import Normalizer, get_dataset

NFES = (1, 2, 4, 8)
CURVE_TS = tuple(np.round(np.linspace(0.05, 1.0, 20), 3))  # the error-against-t figure's starting times


def distance(x: np.ndarray, ref: np.ndarray) -> float:
    """W1 in 1-D, sliced W1 otherwise (data units), ``x``, ``ref`` ``[n, D]``."""
    return metrics.wasserstein1(x, ref) if x.shape[1] == 1 else metrics.sliced_wasserstein(x, ref)


#: independent two-sample floor draws, the same for every row of this bench and bench/jump_recipe_search.py
FLOOR_DRAWS = 8


def floor_draws(ds, n: int, draws: int = FLOOR_DRAWS) -> list[float]:
    """The two-sample noise floor at ``n``: :func:`distance` between two independent true sets ``[n, D]`` of ``ds``
    (data units), for ``draws`` fixed seeds (20 000 + i, apart from every judged draw); its mean is the floor."""
    out = []
    for i in range(draws):
        g = torch.Generator().manual_seed(20_000 + i)
        out.append(distance(ds.sample(n, g).double().numpy(), ds.sample(n, g).double().numpy()))
    return out


def judged(ds, methods, gm, norm: Normalizer, process, n: int, seeds: int, nfes=NFES) -> fs.JudgeResult:
    """:func:`fs.judge` with distances and modes in data units (``norm`` maps the model units of ``gm`` back)."""
    data = lambda x: norm.inverse(torch.from_numpy(x)).numpy()  # noqa: E731
    return fs.judge(methods, gm, process, nfes, n=n, seeds=seeds,
                    distance=lambda x, a: distance(data(x), data(a)),
                    modes=lambda x: metrics.mode_stats(data(x), ds.mixture))


def checkpoint_method(path: str, ds):
    """``(method, gm, normalizer, process)`` of a trained few-step toy run; ``ValueError`` on a mismatch."""
    from toydiff.toy.run import load_toy

    run = load_toy(path)
    if run.dataset.name != ds.name:
        raise ValueError(f"--checkpoint {path} was trained on {run.dataset.name!r}, not --dataset {ds.name!r}")
    try:  # a few-step process: its own jumps; a flow run (reflow, a distilled student): Euler on its field
        method = fs.method_of_run(run, source=path)
    except TypeError as e:
        raise ValueError(f"--checkpoint {path}: {e}") from None
    return method, run.oracle, run.normalizer, method.process


def run(ds, n: int, seeds: int, solvers, checkpoints) -> tuple[fs.JudgeResult, list]:
    """The oracle rows and each checkpoint's rows in one result; also ``[(method, gm, process)]`` for the figure."""
    norm = Normalizer.from_mixture(ds.mixture)
    gm, interp = norm.oracle(ds.mixture), td.interpolants.linear()
    oracle = [fs.OracleSolver(gm, interp, m) for m in solvers]
    res = judged(ds, oracle, gm, norm, interp, n, seeds)
    curves = [(m, gm, interp, norm) for m in oracle] + [(fs.ExactMap(gm, interp), gm, interp, norm)]
    for path in checkpoints:
        method, cgm, cnorm, proc = checkpoint_method(path, ds)
        r = judged(ds, [method], cgm, cnorm, proc, n, seeds)
        res.rows.update({k: v for k, v in r.rows.items() if k[0] == method.label})
        curves.append((method, cgm, proc, cnorm))
    res.floor["dist"] = floor_draws(ds, n)  # the floor statistic of bench/jump_recipe_search.py, for every row
    return res, curves


def figures(curves: list, ds, fig_path: str | None, cloud_path: str | None, n: int) -> None:
    """The error-against-t PNG (one jump x_t → 0 at 1 and 2 evaluations, :func:`fs.jump_error_curves`) and the
    one-jump cloud PNG (the oracle's group: ``n`` seeded x_1, each method at 1 and 2 evaluations, the exact map)."""
    import matplotlib

    matplotlib.use("Agg")
    from toydiff.toy.figures.few_step import jump_error_mpl, one_jump_mpl

    groups: dict = {}  # one group per oracle (a checkpoint has its own normalisation): Φ once per t per group
    for m, gm, proc, norm in curves:
        groups.setdefault(id(gm), (gm, proc, norm, []))[3].append(m)
    if fig_path:
        errors = {}
        for gm, proc, _, methods in groups.values():
            errors.update(fs.jump_error_curves(fs.at_budgets(methods), gm, proc, CURVE_TS, n=n, seed=0))
        fig = jump_error_mpl(CURVE_TS, errors, title=f"{ds.name}: one jump x_t → 0 vs the exact map (n = {n} per t)")
        fig.savefig(fig_path, dpi=120)
        print(f"wrote {fig_path}")
    if cloud_path:  # in the oracle's model units; a checkpoint's points (and its own exact map) carried over
        gm0, _, norm0, _ = next(iter(groups.values()))
        x_1 = torch.randn(n, gm0.D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        jumps, refs = {}, {}
        for gm, proc, norm, methods in groups.values():
            units = lambda x: norm0.forward(norm.inverse(x.double()))  # noqa: E731
            ref = units(fs.ExactMap(gm, proc).jump(x_1, 1.0, 0.0))
            for m in fs.at_budgets(methods):
                if not isinstance(m, fs.ExactMap):
                    jumps[m.label], refs[m.label] = units(m.jump(x_1, 1.0, 0.0)), ref
        exact = refs[next(iter(refs))] if refs else fs.ExactMap(gm0, td.interpolants.linear()).jump(x_1, 1.0, 0.0)
        one_jump_mpl(x_1, jumps, exact, refs, title=f"{ds.name}: {n} seeded x_1 moved in one jump, coloured by the "
                     "distance to the exact map").savefig(cloud_path, dpi=120)
        print(f"wrote {cloud_path}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="8gaussians", help="a toy data set with an exact mixture")
    p.add_argument("--n", type=int, default=4000, help="samples per set (generated, fresh true, floor)")
    p.add_argument("--seeds", type=int, default=3, help="independent draws averaged over")
    p.add_argument("--solvers", default=",".join(fs.SOLVERS),
                   help=f"comma-separated exact-oracle solvers among {','.join(fs.SOLVERS)}, or 'none'")
    p.add_argument("--checkpoint", action="append", default=[], metavar="PATH",
                   help="a trained few-step toy run (repeatable): its rows beside the oracle's")
    p.add_argument("--figure", metavar="PNG", help="write the error-against-t figure")
    p.add_argument("--cloud", metavar="PNG", help="write the one-jump cloud figure")
    p.add_argument("--figure-n", type=int, default=500, help="points per t (and in the cloud) for the figures")
    args = p.parse_args(argv)
    if args.n < 10 or args.seeds < 1 or args.figure_n < 2:
        p.error("--n must be at least 10, --seeds at least 1 and --figure-n at least 2")
    solvers = [] if args.solvers == "none" else [s for s in args.solvers.split(",") if s]
    if bad := [s for s in solvers if s not in fs.SOLVERS]:
        p.error(f"--solvers: unknown {bad}; choose among {list(fs.SOLVERS)} or 'none'")
    configure_threads(1)
    ds = get_dataset(args.dataset)
    if not ds.has_oracle:
        p.error(f"--dataset {args.dataset!r} has no exact mixture")
    t0 = time.perf_counter()
    try:
        res, curves = run(ds, args.n, args.seeds, solvers, args.checkpoint)
    except (OSError, ValueError, TypeError) as e:
        print(f"few_step_judge: {e}", file=sys.stderr)
        return 2
    dname = "W1" if ds.dim == 1 else "sliced W1"
    print(f"{ds.name} (D = {ds.dim}, K = {ds.mixture.K} modes), linear interpolant; n = {args.n} per set, mean ± sd "
          f"over {args.seeds} seeds; path error in units of the data's per-coordinate std; noise floor: mean ± sd over "
          f"{FLOOR_DRAWS} independent pairs of true sets at n (floor_draws, as bench/jump_recipe_search.py)\n")
    print(fs.judge_table(res, dist_name=dname))
    figures(curves, ds, args.figure, args.cloud, args.figure_n)
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
