"""``toydiff toy likelihood``: the PF-ODE NLL, KL(p || p_θ) = NLL − H and the ELBO by step of a run, next to the oracle.

    toydiff toy likelihood --oracle --dataset 8gaussians --out lik/       # the ODE on the exact ε*: KL ≈ 0
    toydiff toy likelihood --run runs/8g --out lik/                       # KL(p ‖ p_θ) = NLL − H, ELBO by step

Writes likelihood.png, elbo.png and likelihood.json into ``--out``; bad input is one stderr line, exit 2.
"""

from __future__ import annotations

import json

from toydiff.bounds import size_arg
from toydiff.cli import check_writable, fail
from toydiff.options import positive, seed_arg
from toydiff.outputs import atomic_write_text, save_figure, staged_folder
from toydiff.toy.cli.common import PROG
from toydiff.toy.datasets import DATASETS

__all__ = ["HELP", "add_parser", "run"]

HELP = "PF-ODE NLL, KL(p || p_theta) and the ELBO by step, next to the oracle"


def _rtol(s: str) -> float:
    v = float(s)
    if not 1e-12 <= v <= 0.1:
        raise ValueError(f"expected a tolerance in [1e-12, 0.1], got {s!r}")
    return v


def add_parser(sub) -> None:
    lk = sub.add_parser("likelihood", help=HELP)
    src = lk.add_argument_group("denoiser (one of)")
    src.add_argument("--run", help="a run folder or checkpoint written by 'toydiff toy train'")
    src.add_argument("--oracle", action="store_true", help="the exact eps* of --dataset's mixture alone")
    lk.add_argument("--dataset", choices=DATASETS, default="two_gaussians", help="for --oracle without --run")
    lk.add_argument("--n", type=size_arg("n_likelihood"), default=200,
                    help="held-out points for the PF-ODE (default 200)")
    lk.add_argument("--n-elbo", type=positive(int), default=2000, help="held-out points for the ELBO (default 2000)")
    lk.add_argument("--rtol", type=_rtol, default=1e-4, help="solve_ivp rtol = atol")
    lk.add_argument("--variance", choices=("beta", "posterior"), default="beta", help="reverse variance of the ELBO")
    lk.add_argument("--seed", type=seed_arg, default=0, help="seed of the held-out points and the ELBO's noise")
    lk.add_argument("--out", required=True, help="output folder (likelihood.png, elbo.png, likelihood.json)")


def run(a) -> int:
    """Run ``toydiff toy likelihood``."""
    import matplotlib

    matplotlib.use("Agg")
    from toydiff.toy import labs
    from toydiff.toy.figures.likelihood import elbo_mpl, likelihood_check_mpl
    from toydiff.toy.run import load_toy, oracle_run

    if (a.run is None) == (not a.oracle):
        fail(f"{PROG} likelihood: error: give exactly one of --run RUN or --oracle")
    out = check_writable(a.out, "--out", folder=True)
    run = load_toy(a.run) if a.run is not None else oracle_run(a.dataset)
    summary, arr = labs.likelihood_report(run, n=a.n, n_elbo=a.n_elbo, seed=a.seed, rtol=a.rtol, variance=a.variance)
    who = [w for w in ("model", "oracle") if w in summary]
    with staged_folder(out) as tmp:  # a failure leaves no partial report
        save_figure(likelihood_check_mpl(arr["exact_log_p"], {w: arr[f"{w}_log_p"] for w in who},
                                         title=f"{run.dataset.name}: PF-ODE vs exact"), tmp / "likelihood.png", dpi=110)
        save_figure(elbo_mpl({w: arr[f"{w}_elbo"] for w in who},
                             title=f"{run.dataset.name}: ELBO terms ({a.variance} variance)"), tmp / "elbo.png", dpi=110)
        atomic_write_text(tmp / "likelihood.json", json.dumps(summary, indent=1))
    print(f"{run.dataset.name}: entropy H = {summary['entropy']:.4f} nats ({a.n} held-out points)")
    for w in who:
        s = summary[w]
        print(f"  {w:>6}: NLL {s['nll']:.4f}  KL = NLL - H {s['kl']:+.4f} ± {s['kl_stderr']:.4f}  "
              f"ELBO - H {s['elbo_minus_entropy']:+.4f}  ({s['nfe']} ODE evaluations)")
    print(f"wrote likelihood.png, elbo.png and likelihood.json to {out}")
    return 0
