"""``toydiff toy likelihood`` and ``toydiff toy memorise``: exact likelihood and memorisation checks of a toy run.

    toydiff toy likelihood --oracle --dataset 8gaussians --out lik/       # the ODE on the exact ε*: KL ≈ 0
    toydiff toy likelihood --run runs/8g --out lik/                       # KL(p ‖ p_θ) = NLL − H, ELBO by step
    toydiff toy memorise --run runs/mem64 --out mem/                      # a --fixed-data run: copy rates
    toydiff toy memorise --dataset 8gaussians --n-train 64 --out mem/     # the empirical ε* alone

Each writes figures (PNG) and a JSON summary into ``--out``; bad input is one stderr line and exit status 2.
"""

from __future__ import annotations

import json

import torch

from toydiff.cli import OneLineParser, check_writable, fail

from toydiff.options import positive, seed_arg
from toydiff.sampling.loop import METHODS
from toydiff.toy.datasets import DATASETS

__all__ = ["add_parsers", "HANDLERS"]

PROG = "toydiff toy"


def _rtol(s: str) -> float:
    v = float(s)
    if not 1e-12 <= v <= 0.1:
        raise ValueError(f"expected a tolerance in [1e-12, 0.1], got {s!r}")
    return v


def add_parsers(sub) -> None:
    """Add ``likelihood`` and ``memorise`` to the ``toydiff toy`` sub-parsers ``sub``."""
    lk = sub.add_parser("likelihood", help="PF-ODE NLL, KL(p || p_theta) and the ELBO by step, next to the oracle")
    src = lk.add_argument_group("denoiser (one of)")
    src.add_argument("--run", help="a run folder or checkpoint written by 'toydiff toy train'")
    src.add_argument("--oracle", action="store_true", help="the exact eps* of --dataset's mixture alone")
    lk.add_argument("--dataset", choices=DATASETS, default="two_gaussians", help="for --oracle without --run")
    lk.add_argument("--n", type=positive(int), default=200, help="held-out points for the PF-ODE (default 200)")
    lk.add_argument("--n-elbo", type=positive(int), default=2000, help="held-out points for the ELBO (default 2000)")
    lk.add_argument("--rtol", type=_rtol, default=1e-4, help="solve_ivp rtol = atol (default 1e-4)")
    lk.add_argument("--variance", choices=("beta", "posterior"), default="beta", help="reverse variance of the ELBO")
    lk.add_argument("--seed", type=seed_arg, default=0)
    lk.add_argument("--out", required=True, help="output folder (likelihood.png, elbo.png, likelihood.json)")

    mm = sub.add_parser("memorise", help="copy rates of a --fixed-data run and of its training set's exact eps*")
    mm.add_argument("--run", help="a run trained with --fixed-data (its training points are replayed)")
    mm.add_argument("--dataset", choices=DATASETS, default="two_gaussians", help="without --run")
    mm.add_argument("--n-train", type=positive(int), default=None, help="without --run: training points drawn")
    mm.add_argument("--n", type=positive(int), default=2000, help="samples (default 2000)")
    mm.add_argument("--method", choices=METHODS, default="ddpm")
    mm.add_argument("--steps", type=positive(int), default=None, help="respaced sampling steps (default: every step)")
    mm.add_argument("--seed", type=seed_arg, default=0)
    mm.add_argument("--out", required=True, help="output folder (memorise.png, memorise.json)")


def _likelihood(a) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from toydiff.toy import labs, plots_labs
    from toydiff.toy.run import load_toy, oracle_run

    if (a.run is None) == (not a.oracle):
        fail(f"{PROG} likelihood: error: give exactly one of --run RUN or --oracle")
    out = check_writable(a.out, "--out", folder=True)
    run = load_toy(a.run) if a.run is not None else oracle_run(a.dataset)
    summary, arr = labs.likelihood_report(run, n=a.n, n_elbo=a.n_elbo, seed=a.seed, rtol=a.rtol, variance=a.variance)
    who = [w for w in ("model", "oracle") if w in summary]
    out.mkdir(parents=True, exist_ok=True)
    plots_labs.likelihood_check(arr["exact_log_p"], {w: arr[f"{w}_log_p"] for w in who},
                                title=f"{run.dataset.name}: PF-ODE vs exact").savefig(out / "likelihood.png", dpi=110)
    plots_labs.elbo_by_step({w: arr[f"{w}_elbo"] for w in who},
                            title=f"{run.dataset.name}: ELBO terms ({a.variance} variance)").savefig(out / "elbo.png",
                                                                                                 dpi=110)
    (out / "likelihood.json").write_text(json.dumps(summary, indent=1))
    print(f"{run.dataset.name}: entropy H = {summary['entropy']:.4f} nats ({a.n} held-out points)")
    for w in who:
        s = summary[w]
        print(f"  {w:>6}: NLL {s['nll']:.4f}  KL = NLL - H {s['kl']:+.4f} ± {s['kl_stderr']:.4f}  "
              f"ELBO - H {s['elbo_minus_entropy']:+.4f}  ({s['nfe']} ODE evaluations)")
    print(f"wrote likelihood.png, elbo.png and likelihood.json to {out}")
    return 0


def _memorise(a) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from toydiff.toy import labs, plots_labs
    from toydiff.toy.run import load_toy, oracle_run

    if (a.run is None) == (a.n_train is None):
        fail(f"{PROG} memorise: error: give exactly one of --run RUN or --n-train N")
    out = check_writable(a.out, "--out", folder=True)
    if a.run is not None:
        run = load_toy(a.run)
        train = labs.training_points(run)
    else:
        run = oracle_run(a.dataset)
        if a.n_train < 2:
            fail(f"{PROG} memorise: error: --n-train must be at least 2 (a copy needs a second-nearest point)")
        train = run.normalizer.forward(run.dataset.sample(a.n_train, torch.Generator().manual_seed(a.seed)).double())
    summary, arr = labs.memorisation_report(run, train, n=a.n, seed=a.seed, method=a.method, steps=a.steps)
    who = [w for w in ("model", "empirical") if w in summary]
    out.mkdir(parents=True, exist_ok=True)
    plots_labs.memorisation_scatter(train, {w: arr[w] for w in who}, {w: arr[f"{w}_copy"] for w in who},
                                    title=f"{run.dataset.name}, {train.shape[0]} training points "
                                          f"(copy: nearest/second < 1/3)").savefig(out / "memorise.png", dpi=110)
    (out / "memorise.json").write_text(json.dumps(summary, indent=1))
    for w in who:
        print(f"{w:>9}: copy rate {summary[w]['copy_rate']:.1%} of {a.n} samples "
              f"({summary[w]['unique_copied']} of {train.shape[0]} training points copied)")
    print(f"wrote memorise.png and memorise.json to {out}")
    return 0


HANDLERS = {"likelihood": _likelihood, "memorise": _memorise}
