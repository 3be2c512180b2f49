"""The solvers of issue 25 in one table: registered order, the kit's measured order on the exact oracle (default
problem, default steps 12..96, each method's default spacing) and the max |diff| to the peers' implementations on
the same levels with the same noise (the set-ups of tests/peers/test_solver_agreement.py).

    python bench/solvers_vs_peers.py            # ~1 min on one free core; needs diffusers and k-diffusion

Stochastic methods have no order: the kit's distribution row (energy distance against its two-sample floor) instead.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import torch

from toydiff.sampling import REGISTRY
from toydiff.testing import check_sampler
from toydiff.threads import configure_threads

ROOT = Path(__file__).resolve().parents[1]


def _peer_module():
    """tests/peers/test_solver_agreement.py, loaded by path (its helpers build the peers' runs)."""
    spec = importlib.util.spec_from_file_location("solver_agreement", ROOT / "tests/peers/test_solver_agreement.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def peer_gaps(p) -> dict[str, list[tuple[str, float]]]:
    """method -> [(peer, max |diff|)] on the agreement tests' levels."""
    K, D, S = p.K, p.diffusers, p.S
    out: dict[str, list[tuple[str, float]]] = {}
    gap = lambda a, b: float((a - b).abs().max())
    ts, sig = p.levels(S, 9, "logsnr")
    out["dpm++3m"] = [("k-diffusion sample_dpmpp_3m_sde(eta=0)", gap(p.ours("dpm++3m", ts), p.k_run(
        K.sample_dpmpp_3m_sde, sig, eta=0.0, noise_sampler=p.draws(0))))]
    ts, sig = p.levels(S, 10, "logsnr")
    out["dpm++3m"].append(("diffusers DPMSolverMultistep(order 3, heun)", gap(p.ours("dpm++3m", ts), p.diffusers_run(
        D.DPMSolverMultistepScheduler, ts, sig, solver_order=3, solver_type="heun", lower_order_final=False))))
    ts, sig = p.levels(S, 8, "logsnr")
    out["unipc"] = [("diffusers UniPCMultistep(bh2)", gap(p.ours("unipc", ts), p.diffusers_run(
        D.UniPCMultistepScheduler, ts, sig)))]
    ts, sig = p.levels(S, 10, "linspace")
    out["euler-ancestral"] = [("k-diffusion sample_euler_ancestral", gap(p.ours("euler-ancestral", ts, seed=3), p.k_run(
        K.sample_euler_ancestral, sig, noise_sampler=p.draws(3))))]
    ts, sig = p.levels(S, 10, "logsnr")
    mine = p.ours("dpm++2m-sde", ts, seed=4)
    out["dpm++2m-sde"] = [("k-diffusion sample_dpmpp_2m_sde(midpoint)", gap(mine, p.k_run(
        K.sample_dpmpp_2m_sde, sig, eta=1.0, noise_sampler=p.draws(4)))),
        ("diffusers DPMSolverMultistep(sde-dpmsolver++)", gap(mine, p.diffusers_run(
            D.DPMSolverMultistepScheduler, ts, sig, seed=4, algorithm_type="sde-dpmsolver++")))]
    s, q = p.geometric_schedule()
    ts = [int(t) for t in torch.linspace(s.T - 4, 0, 7).round()]
    sig = torch.tensor([float(s.sigmas[t]) for t in ts] + [0.0], dtype=torch.float64)
    churn = (q**3 - 1.0) * len(ts)
    mine = p.td.sample(p.GM.eps_fn(s), p.X_T, s, method="edm", steps=ts, s_churn=churn, s_noise=1.003,
                       generator=torch.Generator().manual_seed(5))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        theirs = p.k_run(K.sample_heun, sig, s_churn=churn, s_noise=1.003)
    out["edm"] = [("k-diffusion sample_heun(s_churn)", gap(mine, theirs))]
    return out


def main() -> None:
    configure_threads()
    warnings.simplefilter("ignore")
    gaps = peer_gaps(_peer_module())
    print("| method | registered order | kit on the exact oracle (default steps, spacing) | peer | max abs diff |")
    print("|---|---|---|---|---|")
    for name in ("dpm++3m", "unipc", "edm", "euler-ancestral", "dpm++2m-sde"):
        rep = check_sampler("toydiff:" + name, sweep=(), n_samples=2000)
        if rep.stochastic:
            kit = "stochastic: " + rep.row("distribution").detail.split(" at ")[0]
        else:
            kit = rep.row("order").detail.split(";")[0]
        kit += " (PASS)" if rep.passed else " (FAIL)"
        for i, (peer, g) in enumerate(gaps[name]):
            order = REGISTRY[name].order
            first = (name, "—" if order is None else f"{order:g}", kit) if i == 0 else ("", "", "")
            print(f"| {' | '.join(first)} | {peer} | {g:.1e} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
