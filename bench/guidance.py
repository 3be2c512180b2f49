"""What guidance samples, against w, on the exact oracle and on a trained conditional MLP.

    python bench/guidance.py                       # moons_mixture, y = 0; oracle + a 60-epoch model, minutes
    python bench/guidance.py --quick               # oracle only, fewer samples
    python bench/guidance.py --dataset 8gaussians_4class --epochs 40

Rows (``toydiff.toy.guidance_eval``): CFG in the "scale" convention ε_u + w (ε_c − ε_u) at every step
("full") and only where σ_t ∈ (0.28, 5.42] ("limited", Kynkäänniemi et al. 2024), for the exact ε* and a
conditional MLP trained with label dropout 0.1 on the 2-D recipe; and exact autoguidance (Karras et al. 2024:
bad model = p(x|y) with every covariance widened 1.5²), scored against *its* target p(x|y)^w p_bad^(1−w).
Columns: sliced W1 (data units) of the guided samples to the tilted target and to p(x|y), each next to
its noise floor (two independent target draws of the same size), the off-data share (> 3σ from every
component of p(x)), the class-y modes holding ≥ ¼ of their weight, and the share of samples in class y.
DDPM (Ho et al. 2020) with ``--steps`` respaced steps, n samples per row, one seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toydiff.sampling.guidance import guidance_interval  # noqa: E402
from toydiff.toy import guidance_eval as ge  # noqa: E402
from toydiff.toy.cli.guidance import _print_table  # noqa: E402
from toydiff.toy.datasets import Normalizer  # noqa: E402
from toydiff.toy.labelled import get_labelled  # noqa: E402
from toydiff.toy.recipes import RECIPE_2D  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="moons_mixture")
    p.add_argument("--y", type=int, default=0)
    p.add_argument("--w", default="0,1,2,4,8")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--epochs", type=int, default=60, help="conditional MLP training; 0: oracle only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="oracle only, n = 500, 50 steps")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.steps, a.epochs = 500, 50, 0
    ws = [float(v) for v in a.w.split(",")]
    ds, schedule = get_labelled(a.dataset), RECIPE_2D.schedule()
    gm, nz = ds.mixture, Normalizer.from_mixture(ds.mixture)
    intervals = {"full": None, "limited": guidance_interval(schedule)}
    print(f"{ds.name}, y = {a.y}, DDPM {a.steps} steps, n = {a.n}, seed {a.seed}; limited interval: steps "
          f"{intervals['limited'][0]} <= t < {intervals['limited'][1]} of {schedule.T}")
    t0 = time.perf_counter()
    kw = dict(y=a.y, ws=ws, intervals=intervals, n=a.n, seed=a.seed, steps=a.steps)
    rows = ge.guidance_table(ge.oracle_denoisers(gm, nz, schedule), schedule, nz, gm, **kw)
    rows += ge.guidance_table(ge.oracle_autoguidance(gm, nz, schedule), schedule, nz, gm,
                              **(kw | {"ws": [w for w in ws if w >= 1], "intervals": {"full": None}}))
    print(f"oracle rows: {time.perf_counter() - t0:.0f} s")
    if a.epochs:
        from toydiff.toy.conditional import train_conditional

        t0 = time.perf_counter()
        run = train_conditional(ds, epochs=a.epochs, seed=a.seed)
        h = run.history
        print(f"conditional MLP: {a.epochs} epochs in {time.perf_counter() - t0:.0f} s; held-out ε-loss "
              f"{h.val_loss[-1]:.4f}, exact conditional floor {h.floor:.4f}")
        rows += ge.guidance_table(ge.model_denoisers(run), schedule, run.normalizer, gm, **kw)
    _print_table(rows)


if __name__ == "__main__":
    main()
