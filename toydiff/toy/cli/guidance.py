"""``toydiff toy guidance``: what classifier-free guidance samples on a labelled 2-D mixture, against the exact answer.

    toydiff toy guidance --out runs/guidance                              # exact oracle only, seconds to minutes
    toydiff toy guidance --dataset 8gaussians_4class --train-epochs 40 --out runs/g4   # + a trained conditional MLP

For each w (ε_u + w (ε_c − ε_u)) and each interval (every step, and the limited interval of Kynkäänniemi et al.
2024 given by ``--interval-sigma``), prints and writes (``guidance.json``) the sliced W1 of the guided samples to
the tilted target p(x|y)^w p(x)^(1−w) and to p(x|y) (each with its noise floor), the off-data share, mode
coverage and class share; figures ``curves.png``, ``panels_<source>_<interval>.png``, ``posterior.png``.
Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import json


from toydiff.checks import check_int
from toydiff.cli import check_writable
from toydiff.options import float_list, seed_arg
from toydiff.outputs import atomic_write_text, save_figure, staged_folder
from toydiff.exact.guidance import tilted_target
from toydiff.sampling.guidance import guidance_interval
from toydiff.sampling.loop import METHODS
from toydiff.toy.datasets import Normalizer
from toydiff.toy.labelled import LABELLED, get_labelled

__all__ = ["HELP", "add_parser", "run"]

HELP = "guided samples vs the exact tilted target and p(x|y), against w"

_WITH_ORACLE = tuple(n for n in LABELLED if get_labelled(n).has_oracle)


def add_parser(sub) -> None:
    """Register ``guidance`` on the ``toydiff toy`` subparsers ``sub``."""
    g = sub.add_parser("guidance", help=HELP,
                       description=__doc__.split("\n\n")[2].strip())
    g.add_argument("--dataset", choices=_WITH_ORACLE, default="moons_mixture", help="a labelled data set with an oracle")
    g.add_argument("--y", type=int, default=0, help="the class to guide towards")
    g.add_argument("--w", type=float_list, default=[0.0, 1.0, 2.0, 4.0, 8.0],
                   help="guidance weights, comma-separated (ε_u + w (ε_c − ε_u): 0 unconditional, 1 conditional)")
    g.add_argument("--interval-sigma", type=float_list, default=[0.28, 5.42],
                   help="LO,HI: the limited interval guides only where σ_t = √((1−ᾱ)/ᾱ) lies in (LO, HI]")
    g.add_argument("--n", type=int, default=1000, help="samples per (w, interval)")
    g.add_argument("--method", choices=METHODS, default="ddpm", help="sampler")
    g.add_argument("--steps", type=int, default=50, help="respaced sampling steps")
    g.add_argument("--train-epochs", type=int, default=0,
                   help="also train a conditional MLP (label dropout) for this many epochs and measure it; 0: oracle only")
    g.add_argument("--p-uncond", type=float, default=0.1, help="label dropout of that training")
    g.add_argument("--grid", type=int, default=256, help="cells per axis of the tilted target's grid")
    g.add_argument("--seed", type=seed_arg, default=0, help="seed of the samples (and of the training)")
    g.add_argument("--out", required=True, help="output folder")


def _check(a, n_classes: int) -> tuple[float, float]:
    check_int(a.y, "--y", min=0, max=n_classes - 1)
    check_int(a.n, "--n", min=10)
    check_int(a.steps, "--steps", min=1)
    check_int(a.train_epochs, "--train-epochs", min=0)
    check_int(a.grid, "--grid", min=8)
    if not 0 <= a.p_uncond < 1:
        raise ValueError(f"--p-uncond must lie in [0, 1), got {a.p_uncond}")
    if len(a.interval_sigma) != 2 or not 0 <= a.interval_sigma[0] < a.interval_sigma[1]:
        raise ValueError(f"--interval-sigma must be LO,HI with 0 <= LO < HI, got {a.interval_sigma}")
    return a.interval_sigma[0], a.interval_sigma[1]


def _print_table(rows) -> None:
    print(f"{'source':<6} {'interval':<8} {'w':>5} {'SW→tilted':>10} {'floor':>7} {'SW→p(x|y)':>10} {'floor':>7} "
          f"{'off-data':>8} {'modes':>6} {'class':>6}")
    for r in rows:
        print(f"{r.source:<6} {r.interval:<8} {r.w:>5g} {r.sw_tilted:>10.4f} {r.sw_tilted_floor:>7.4f} "
              f"{r.sw_cond:>10.4f} {r.sw_cond_floor:>7.4f} {r.off_data:>8.3f} {r.modes_covered:>3}/{r.n_modes:<2} "
              f"{r.class_share:>6.3f}")


def run(a) -> int:
    """Run ``toydiff toy guidance`` with parsed arguments ``a``."""
    import matplotlib

    matplotlib.use("Agg")
    from toydiff.toy import guidance_eval as ge
    from toydiff.toy.figures.guidance import class_posterior_mpl, guidance_curves_mpl, guided_panels_mpl
    from toydiff.toy.recipes import RECIPE_2D

    ds = get_labelled(a.dataset)
    lo, hi = _check(a, ds.n_classes)
    out = check_writable(a.out, "--out", folder=True)
    schedule, gm = RECIPE_2D.schedule(), ds.mixture
    intervals = {"full": None, "limited": guidance_interval(schedule, lo, hi)}
    sources = [(ge.oracle_denoisers(gm, Normalizer.from_mixture(gm), schedule), Normalizer.from_mixture(gm))]
    if a.train_epochs:
        from toydiff.toy.conditional import train_conditional

        cr = train_conditional(ds, epochs=a.train_epochs, seed=a.seed, p_uncond=a.p_uncond)
        sources.append((ge.model_denoisers(cr), cr.normalizer))
    rows, figures = [], {}
    targets = {float(w): tilted_target(gm.condition(a.y), gm, w, n=a.grid) for w in a.w}
    for den, nz in sources:
        keep: dict = {}
        rows += ge.guidance_table(den, schedule, nz, gm, y=a.y, ws=a.w, intervals=intervals, n=a.n, seed=a.seed,
                                  method=a.method, steps=a.steps, keep=keep, targets=targets)
        for iv in intervals:
            figures[f"panels_{den.name}_{iv}"] = guided_panels_mpl(
                {float(w): keep[(iv, float(w))] for w in a.w}, targets, title=f"{ds.name}, y = {a.y}: {den.name} CFG, {iv} interval")
    figures["curves"] = guidance_curves_mpl(rows, title=f"{ds.name}, y = {a.y}: CFG against w")
    figures["posterior"] = class_posterior_mpl(gm, float(schedule.alpha_bars[intervals["limited"][0]]), a.y)
    summary = {"dataset": ds.name, "y": a.y, "w": a.w, "convention": "scale: eps_u + w (eps_c - eps_u)",
               "intervals": {k: v for k, v in intervals.items()}, "interval_sigma": [lo, hi], "n": a.n,
               "method": a.method, "steps": a.steps, "seed": a.seed, "grid": a.grid, "train_epochs": a.train_epochs,
               "distance": "sliced Wasserstein-1, data units", "rows": [r.to_dict() for r in rows]}
    with staged_folder(out) as tmp:  # a failure leaves no partial report
        for name, fig in figures.items():
            save_figure(fig, tmp / f"{name}.png", dpi=100)
        atomic_write_text(tmp / "guidance.json", json.dumps(summary, indent=1))
    _print_table(rows)
    print(f"limited interval: steps {intervals['limited'][0]} <= t < {intervals['limited'][1]} of {schedule.T}; "
          f"wrote guidance.json and {len(figures)} figures to {out}")
    return 0
