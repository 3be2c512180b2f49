"""The kit's verdict on every diffusers scheduler and k-diffusion sampler installed, as a markdown table.

    python bench/check_peers.py            # both libraries, default steps 12,24,48,96 and the full timestep sweep
    python bench/check_peers.py --quick    # steps 12,24,48, timesteps of 1..64 only

A scheduler that cannot run on a discrete VP schedule (no ``trained_betas``, flow matching, ...) is listed as
skipped with the reason. Nothing here is asserted: tests/peers pins the verdicts.
"""

from __future__ import annotations

import argparse
import time
import warnings

from toydiff.testing import DEFAULT_STEPS, DEFAULT_SWEEP, check_sampler, from_diffusers, from_k_diffusion
from toydiff.testing.adapters import k_diffusion_sampling

DIFFUSERS = [
    ("DDIMScheduler", {}), ("DDIMScheduler", {"timestep_spacing": "trailing"}),
    ("DDIMScheduler", {"timestep_spacing": "linspace"}), ("DDIMScheduler", {"steps_offset": 1}),
    ("DDPMScheduler", {}), ("DDPMScheduler", {"timestep_spacing": "trailing"}),
    ("DDPMScheduler", {"timestep_spacing": "trailing", "variance_type": "fixed_large"}),
    ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "timestep_spacing": "trailing"}),
    ("DPMSolverMultistepScheduler", {"final_sigmas_type": "sigma_min"}),
    ("DPMSolverSinglestepScheduler", {}), ("UniPCMultistepScheduler", {}), ("DEISMultistepScheduler", {}),
    ("EulerDiscreteScheduler", {}), ("EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
    ("HeunDiscreteScheduler", {}), ("LMSDiscreteScheduler", {}), ("KDPM2DiscreteScheduler", {}),
    ("PNDMScheduler", {}), ("PNDMScheduler", {"set_alpha_to_one": True}), ("EulerAncestralDiscreteScheduler", {}),
    ("KDPM2AncestralDiscreteScheduler", {}), ("DPMSolverSDEScheduler", {}), ("SASolverScheduler", {}),
    ("LCMScheduler", {}), ("TCDScheduler", {}), ("IPNDMScheduler", {}),
]
K_DIFFUSION = ["sample_euler", "sample_heun", "sample_dpm_2", "sample_lms", "sample_dpmpp_2m",
               "sample_euler_ancestral", "sample_dpm_2_ancestral", "sample_dpmpp_2s_ancestral", "sample_dpmpp_sde",
               "sample_dpmpp_2m_sde", "sample_dpmpp_3m_sde"]


def _line(rep, seconds: float) -> str:
    bad = "; ".join(f"**{r.name}**: {r.detail}" for r in rep.failures) or "—"
    order = "stochastic" if rep.stochastic else (f"{rep.order:.2f}" if rep.order is not None else "—")
    return f"| `{rep.sampler}` | {'PASS' if rep.passed else 'FAIL'} | {order} | {bad} | {seconds:.1f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    steps, sweep = ((12, 24, 48), range(1, 65)) if args.quick else (DEFAULT_STEPS, DEFAULT_SWEEP)
    samplers = []
    try:
        import diffusers

        samplers += [(f"diffusers:{n}", lambda n=n, c=c: from_diffusers(getattr(diffusers, n), **c)) for n, c in DIFFUSERS]
    except ImportError:
        print("diffusers is not installed")
    try:
        K = k_diffusion_sampling()
        samplers += [(f"k-diffusion:{n}", lambda n=n: from_k_diffusion(getattr(K, n), sigmas="karras")) for n in K_DIFFUSION]
    except ImportError:
        print("k-diffusion is not installed")
    print("| sampler | verdict | order | failing properties | s |\n|---|---|---:|---|---:|")
    for label, build in samplers:
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rep = check_sampler(build(), steps, sweep=sweep, n_samples=1000)
        except (TypeError, ValueError) as e:
            print(f"| `{label}` | skipped | — | {e} | — |")
            continue
        print(_line(rep, time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
