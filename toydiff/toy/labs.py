"""Exact answers for a toy run: its likelihood (PF-ODE and the ELBO by step) and its memorisation, next to the oracle.

    rep = likelihood_report(run, n=200, seed=0)      # KL(p ‖ p_θ) = NLL − H for the model and for the oracle
    mem = memorisation_report(run, n=2000, seed=0)   # copy rates of the model and of the training set's own ε*

Everything happens in the run's normalised units (where the network and the oracle live): a KL is unchanged
by the normalisation. The functions return plain dicts (JSON-able) plus the arrays the figures need.
"""

from __future__ import annotations

from typing import Callable

import torch

from toydiff.checks import check_int
from toydiff.evaluation.elbo import elbo_terms
from toydiff.exact.empirical import EmpiricalDistribution
from toydiff.evaluation.likelihood import pf_ode_likelihood
from toydiff.evaluation.memorisation import COPY_RATIO, copy_stats
from toydiff.toy.run import ToyRun

__all__ = ["differentiable_eps", "likelihood_report", "training_points", "memorisation_report"]


def differentiable_eps(run: ToyRun) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The run's network as its process's samplers call it (:meth:`Process.network_fn`; VP: ``eps(x_t [B, D],
    t LongTensor [B])``), with gradients (float32 inside, float64 out)."""
    if run.model is None:
        raise ValueError("the run has no network (an oracle run)")
    net = run.process.network_fn(run.model.eval())
    return lambda x, t: net(x.float(), t).double()


def _require_schedule(run: ToyRun, what: str) -> None:
    """These labs run over a discrete noise schedule (the VP ε formulas of the ELBO, the PF-ODE, the empirical ε*)."""
    if run.schedule is None:
        raise ValueError(f"{what} need a process over a noise schedule (--process vp), not {run.process.describe()}")


def _held_out(run: ToyRun, n: int, seed: int) -> torch.Tensor:
    """``n`` fresh points of the data set (seeded), normalised: ``[n, D]`` float64."""
    g = torch.Generator().manual_seed(10_000 + seed)
    return run.normalizer.forward(run.dataset.sample(n, g).double())


def likelihood_report(run: ToyRun, *, n: int = 200, n_elbo: int = 2000, seed: int = 0, rtol: float = 1e-4,
                      variance: str = "beta") -> tuple[dict, dict]:
    """PF-ODE NLL, entropy H = −E log p and KL = NLL − H (nats per sample) on ``n`` held-out points, for the
    run's network (if any) and the exact oracle; the ELBO's terms by step on ``n_elbo`` points for both.

    Returns ``(summary, arrays)``: the JSON summary and ``{"x" (the held-out points [n, D], model units),
    "exact_log_p", "<who>_log_p", "<who>_elbo" ...}``.
    """
    n, n_elbo = check_int(n, "n", min=2), check_int(n_elbo, "n_elbo", min=2)
    oracle = run.oracle
    if oracle is None:
        raise ValueError(f"dataset {run.dataset.name!r} has no exact mixture: its entropy and KL are unknown")
    x = _held_out(run, n, seed)
    exact_lp = oracle.log_prob(x)
    H = float(-exact_lp.mean())
    _require_schedule(run, "the PF-ODE likelihood and the ELBO")
    fns = {"oracle": run.process.exact_fn(oracle)}
    if run.model is not None:
        fns["model"] = differentiable_eps(run)
    summary = {"dataset": run.dataset.name, "n": n, "seed": seed, "rtol": rtol, "entropy": H,
               "schedule": run.schedule.name, "T": run.schedule.T,
               "terminal_alpha_bar": float(run.schedule.alpha_bars[-1])}
    arrays = {"x": x, "exact_log_p": exact_lp}
    x_elbo = _held_out(run, n_elbo, seed + 1)
    for who, fn in fns.items():
        r = pf_ode_likelihood(fn, x, run.schedule, rtol=rtol, atol=rtol)
        terms = elbo_terms(fn, x_elbo, run.schedule, variance=variance, generator=torch.Generator().manual_seed(seed))
        nll = float(-r.log_prob.mean())
        summary[who] = {"nll": nll, "kl": nll - H, "kl_stderr": float((r.log_prob - exact_lp).std() / n**0.5),
                        "nfe": r.nfe, "elbo": terms.total, "elbo_minus_entropy": terms.total - float(
                            -oracle.log_prob(x_elbo).mean()), "elbo_prior": terms.prior, "elbo_variance": variance}
        arrays[f"{who}_log_p"], arrays[f"{who}_elbo"] = r.log_prob, terms
    return summary, arrays


def training_points(run: ToyRun) -> torch.Tensor:
    """The (normalised) points a ``--fixed-data`` run revisited every epoch, ``[n_train, D]`` float64."""
    meta = run.metadata
    if run.model is None or meta.get("fresh_data", True):
        raise ValueError("memorisation needs a run trained on fixed points (toydiff toy train --fixed-data)")
    g = torch.Generator().manual_seed(int(meta["data_seed"]))
    x = run.dataset.sample(int(meta["n_train"]) + int(meta["n_val"]), g)  # the draw of toy_trainer, replayed
    return run.normalizer.forward(x[: int(meta["n_train"])].double())


def memorisation_report(run: ToyRun, train: torch.Tensor, *, n: int = 2000, seed: int = 0, method: str = "ddpm",
                        steps: int | None = None, ratio: float = COPY_RATIO) -> tuple[dict, dict]:
    """Copy rates (nearest / second-nearest training point < ``ratio``) of ``n`` samples from the run's network
    and from the training set's own optimal denoiser (:class:`~toydiff.exact.EmpiricalDistribution`), same x_T.

    ``train`` ``[n_train, D]`` in model units. Returns ``(summary, arrays)`` with the samples and copy flags.
    """
    n = check_int(n, "n", min=1)
    _require_schedule(run, "the empirical denoiser")
    emp = EmpiricalDistribution(train)
    fns = {"empirical": run.process.exact_fn(emp)}
    if run.model is not None:
        fns = {"model": run.denoiser_fn()} | fns
    summary = {"dataset": run.dataset.name, "n_train": train.shape[0], "n": n, "seed": seed, "method": method,
               "steps": steps or run.schedule.T, "ratio": ratio}
    arrays = {"train": train}
    for who, fn in fns.items():
        g = torch.Generator().manual_seed(seed)
        x_T = torch.randn(n, train.shape[1], generator=g, dtype=torch.float64)
        x = run.process.sample(fn, x_T, method=method, steps=steps, generator=g)
        st = copy_stats(x, train, ratio=ratio)
        summary[who] = {"copy_rate": st.rate, "unique_copied": st.unique,
                        "median_nn_distance": float(st.distance.median())}
        arrays[who], arrays[f"{who}_copy"] = x, st.is_copy
    return summary, arrays
