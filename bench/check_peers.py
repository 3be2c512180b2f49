"""The kit's verdict on every sampler class of the installed diffusers and every ``sample_*`` of k-diffusion.

    python bench/check_peers.py            # default steps 12,24,48,96 (few-step: 2,4) and the full timestep sweep
    python bench/check_peers.py --quick    # steps 12,24,48, timesteps of 1..64 only
    python bench/check_peers.py --only FlowMatch,EDM,LCM,TCD,FlowMap   # classes whose name contains one of these
    PYTHONPATH=.:/path/to/flow_matching python bench/check_peers.py --only flow_matching   # the optional extra

Every scheduler class diffusers exports is listed: run under the kit (one line per configuration in ``CONFIGS``,
the default configuration otherwise), or "not checked" with the reason (``NOT_CHECKABLE``, or the adapter's refusal).
Few-step samplers (consistency, flow map: ``KitSampler.family == "few-step"``) run at 2 and 4 steps and are judged
by the ``flow map`` row at 1 step. Nothing here is asserted: tests/peers pins the verdicts.
"""

from __future__ import annotations

import argparse
import inspect
import time
import warnings

import torch

from toydiff.testing import DEFAULT_STEPS, DEFAULT_SWEEP, check_sampler, from_diffusers, from_k_diffusion
from toydiff.testing.adapters import k_diffusion_sampling

#: configurations run per class (a class not named here runs once with its defaults)
CONFIGS = {
    "DDIMScheduler": [{}, {"timestep_spacing": "trailing"}, {"timestep_spacing": "linspace"}, {"steps_offset": 1}],
    "DDPMScheduler": [{}, {"timestep_spacing": "trailing"},
                      {"timestep_spacing": "trailing", "variance_type": "fixed_large"}],
    "DPMSolverMultistepScheduler": [{"algorithm_type": "dpmsolver++", "solver_order": 2},
                                    {"algorithm_type": "dpmsolver++", "solver_order": 2, "timestep_spacing": "trailing"},
                                    {"final_sigmas_type": "sigma_min"}],
    "EulerDiscreteScheduler": [{}, {"timestep_spacing": "trailing"}],
    "PNDMScheduler": [{}, {"set_alpha_to_one": True}],
    # CogVideoX defaults to v-prediction and rescales the SNR by 3: both off, so the oracle's ε* on its ᾱ fits
    "CogVideoXDDIMScheduler": [{"prediction_type": "epsilon", "snr_shift_scale": 1.0}],
    "FlowMatchEulerDiscreteScheduler": [{}, {"shift": 3.0}, {"use_dynamic_shifting": True, "mu": 1.15},
                                        {"use_dynamic_shifting": True, "mu": 0.5, "time_shift_type": "linear"},
                                        {"use_karras_sigmas": True}, {"shift_terminal": 0.1},
                                        {"stochastic_sampling": True}],
    "FlowMatchHeunDiscreteScheduler": [{}, {"shift": 3.0}],
    "FlowMatchLCMScheduler": [{}, {"shift": 3.0}],
    "FlowMapEulerDiscreteScheduler": [{}, {"shift": 3.0}],
    "EDMEulerScheduler": [{}, {"sigma_schedule": "exponential"}],
    "EDMDPMSolverMultistepScheduler": [{}, {"solver_order": 3}, {"algorithm_type": "sde-dpmsolver++"}],
    "LCMScheduler": [{}],
    "TCDScheduler": [{}, {"eta": 1.0}],
}

#: classes the kit cannot run, and why
NOT_CHECKABLE = {
    "AmusedScheduler": "masked-token generation over a codebook: no Gaussian noise process",
    "BlockRefinementScheduler": "block-wise refinement of a discrete token sequence: no Gaussian noise process",
    "DiscreteDDIMScheduler": "uniform-corruption discrete (token) diffusion: no Gaussian noise process",
    "EntropyBoundScheduler": "uniform-corruption discrete (token) diffusion: no Gaussian noise process",
    "VQDiffusionScheduler": "VQ token diffusion: no Gaussian noise process",
    "DDIMInverseScheduler": "inversion (data to noise), not a sampler",
    "DPMSolverMultistepInverseScheduler": "inversion (data to noise), not a sampler",
    "RePaintScheduler": "inpainting: step() needs the original image and a mask",
    "KarrasVeScheduler": "deprecated stub (takes *args, **kwargs; no sampler)",
    "UnCLIPScheduler": "deprecated in favour of DDPMScheduler; its own squaredcos schedule (no trained_betas)",
    "ScoreSdeVeScheduler": "VE predictor-corrector: step_pred/step_correct with a score model; no adapter written",
    "DDPMWuerstchenScheduler": "Wuerstchen's continuous cosine schedule, its own ratio timesteps; no adapter written",
    "CosineDPMSolverMultistepScheduler": "Stable Audio's arctan c_noise and v-prediction; no exact model written",
    "CMStochasticIterativeScheduler": "consistency model with its own sigma-space c_skip/c_out; no adapter written",
    "SCMScheduler": "TrigFlow sCM (Lu & Song 2024); no adapter written",
    "HeliosScheduler": "multi-stage pyramid video schedule (stages, stage_range); no adapter written",
    "HeliosDMDScheduler": "multi-stage DMD video schedule (stages, stage_range); no adapter written",
    "PiflowScheduler": "the model outputs a flow policy on a grid, not a prediction; no exact model written",
    "RFD4ProteinaScheduler": "per-modality protein flow sampler with temporal score rescaling; no adapter written",
    "CogVideoXDPMScheduler": "step() needs the previous x_0 estimate and timestep_back (state kept by the pipeline)",
    "IPNDMScheduler": "its own fixed schedule: its timesteps are not indices into the oracle's alpha_bar",
    "MiniMaxH3Scheduler": "inverted rectified-flow clock (x_t = t x_0 + (1 - t) eps); no adapter written",
}
K_ORDERS = {"sample_euler": 1, "sample_heun": 2, "sample_dpm_2": 2, "sample_dpmpp_2m": 2}


def _line(rep, family: str, seconds: float) -> str:
    bad = "; ".join(f"**{r.name}**: {r.detail}" for r in rep.failures) or "—"
    fm = next((r.detail.split(" (needs")[0].replace("|x_0 - exact flow map| by steps ", "1-step flow map ")
               for r in rep.rows if r.name == "flow map"), None)
    order = fm or ("stochastic" if rep.stochastic else (f"{rep.order:.2f}" if rep.order is not None else "—"))
    return f"| `{rep.sampler}` | {family} | {'PASS' if rep.passed else 'FAIL'} | {order} | {bad} | {seconds:.1f} |"


def _diffusers_jobs(only):
    try:
        import diffusers
    except ImportError:
        print("diffusers is not installed")
        return []
    from toydiff.testing.peer_families import diffusers_family

    jobs = []
    for name in sorted(n for n in dir(diffusers) if n.endswith("Scheduler") and inspect.isclass(getattr(diffusers, n))):
        if only and not any(o in name for o in only):
            continue
        cls = getattr(diffusers, name)
        if name in NOT_CHECKABLE:
            jobs.append((f"diffusers:{name}", None, NOT_CHECKABLE[name]))
            continue
        try:
            family = diffusers_family(cls)
        except TypeError as e:
            jobs.append((f"diffusers:{name}", None, str(e)))
            continue
        jobs += [(f"diffusers:{name}", lambda c=c, cls=cls: from_diffusers(cls, **c), family)
                 for c in CONFIGS.get(name, [{}])]
    return jobs


def _k_jobs(only):
    try:
        K = k_diffusion_sampling()
    except ImportError:
        print("k-diffusion is not installed")
        return []
    names = sorted(n for n in dir(K) if n.startswith("sample_") and (not only or any(o in n for o in only)))
    return [(f"k-diffusion:{n}", lambda n=n: from_k_diffusion(getattr(K, n), sigmas="karras",
                                                              order=K_ORDERS.get(n)), "k-diffusion") for n in names]


def _extra_jobs(only):
    """facebookresearch flow_matching's ODESolver (optional: ``pip install --no-deps flow_matching``); torchcfm."""
    if only and not any(o in "flow_matching torchcfm" for o in only):
        return []
    try:
        from toydiff.testing.peer_families import from_flow_matching

        from_flow_matching("euler")
    except ImportError as e:
        return [("flow_matching:ODESolver", None, f"not installed ({e})")]
    jobs = [(f"flow_matching:ODESolver[{m}]", lambda m=m, o=o: from_flow_matching(m, order=o), "flow")
            for m, o in (("euler", 1), ("midpoint", 2), ("rk4", 4))]
    reason = ("no sampler of its own (training losses and paths; it samples through torchdyn's NeuralODE) and its "
              "import needs POT")
    return jobs + [("torchcfm", None, reason)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated substrings of the sampler names to run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    only = [o for o in args.only.split(",") if o]
    steps, sweep = ((12, 24, 48), range(1, 65)) if args.quick else (DEFAULT_STEPS, DEFAULT_SWEEP)
    print("| sampler | family | verdict | order / flow map | failing properties | s |\n|---|---|---|---|---|---:|")
    start = time.perf_counter()
    for label, build, family in _diffusers_jobs(only) + _k_jobs(only) + _extra_jobs(only):
        if build is None:
            print(f"| `{label}` | — | not checked | — | {family} | — |", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sampler = build()
                few = sampler.family == "few-step"
                rep = check_sampler(sampler, (2, 4) if few else steps, sweep=sweep, n_samples=500 if few else 1000)
        except (TypeError, ValueError) as e:
            print(f"| `{label}` | {family} | not checked | — | {e} | — |", flush=True)
            continue
        print(_line(rep, family, time.perf_counter() - t0), flush=True)
    print(f"\ntotal {time.perf_counter() - start:.0f} s (1 torch thread)")


if __name__ == "__main__":
    main()
