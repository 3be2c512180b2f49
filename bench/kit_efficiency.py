"""The efficiency ratios of correct and wasteful samplers (``toydiff.testing.sharp``), as a markdown table.

    python bench/kit_efficiency.py          # toydiff's methods, and k-diffusion / diffusers where installed

Per sampler and step count: its pathwise error over the largest error of the kit's reference methods of its order
on the same levels (``efficiency_ratios``); the kit's 'efficiency' row passes at <= EFFICIENCY_FACTOR. Nothing is
asserted here.
"""

from __future__ import annotations

import warnings

import torch

from toydiff.testing import check_sampler, from_toydiff
from toydiff.testing.sharp import EFFICIENCY_FACTOR


def candidates():
    out = [(from_toydiff(m, spacing=s), None) for m in ("ddim", "heun", "dpm++2m") for s in ("linspace", "trailing", "logsnr", "karras")]
    try:
        from toydiff.testing.adapters import k_diffusion_sampling
        from toydiff.testing import from_k_diffusion

        K = k_diffusion_sampling()
        out += [(from_k_diffusion(getattr(K, n), sigmas=s), o) for n, o in (("sample_euler", 1), ("sample_heun", 2), ("sample_dpm_2", 2),
                                                                       ("sample_dpmpp_2m", 2), ("sample_lms", 3)) for s in ("linspace", "karras")]
    except ImportError:
        print("k-diffusion is not installed")
    try:
        import diffusers
        from toydiff.testing import from_diffusers

        out += [(from_diffusers(getattr(diffusers, n), **c), o) for n, c, o in (
            ("DDIMScheduler", {"timestep_spacing": "trailing"}, 1), ("EulerDiscreteScheduler", {}, 1), ("HeunDiscreteScheduler", {}, 2),
            ("DPMSolverMultistepScheduler", {}, 2), ("DPMSolverSinglestepScheduler", {}, 2), ("UniPCMultistepScheduler", {}, 2),
            ("LMSDiscreteScheduler", {}, 3))]
    except ImportError:
        print("diffusers is not installed")
    return out


def main() -> None:
    torch.set_num_threads(1)
    print(f"| sampler | order | ratio by steps 12 / 24 / 48 / 96 | efficiency (<= {EFFICIENCY_FACTOR:g}) |")
    print("|---|---|---|---|")
    for sampler, order in candidates():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = check_sampler(sampler, order=order, sweep=(), edges=(1,))
        ratios = " / ".join(f"{rep.efficiency[n]:.2f}" for n in sorted(rep.efficiency))
        row = rep.row("efficiency")
        print(f"| `{rep.sampler}` | {order or sampler.order} | {ratios} | {'PASS' if row.passed else 'FAIL'} |", flush=True)


if __name__ == "__main__":
    main()
