"""Every figure of :mod:`toydiff.toy.figures` drawn from small synthetic inputs, for the figure checks
(tests/test_figure_checks.py, :mod:`~toydiff.toy.figures.lint`) and for looking at them side by side
(``bench/figure_gallery.py``). Seconds on a CPU: a 60-step schedule, a few hundred points, exact denoisers.

    for name, (make, plane) in mpl_cases().items():   # plane: the data are points in a plane
        fig = make()
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from toydiff.exact.mixture import GaussianMixture
from toydiff.processes import schedules

__all__ = ["ring", "line", "mpl_cases", "plotly_cases"]

S = schedules.constant(T=60, beta=0.08)


def ring(k: int = 8, radius: float = 2.0, std: float = 0.1) -> GaussianMixture:
    """``k`` equal Gaussians on a circle (2-D), labelled alternately 0 / 1."""
    a = np.linspace(0, 2 * np.pi, k, endpoint=False)
    return GaussianMixture.diagonal([1.0] * k, np.c_[radius * np.cos(a), radius * np.sin(a)].tolist(),
                                    [[std, std]] * k, labels=[i % 2 for i in range(k)])


def line() -> GaussianMixture:
    """The seed exercise's 1-D mixture: weights 1:2, means ∓4, std 1."""
    return GaussianMixture([1.0, 2.0], [[-4.0], [4.0]], [[[1.0]], [[1.0]]])


def _history():
    from toydiff.training.engine import History

    return History(records=[{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "val_by_bucket": [0.5 / e] * 10}
                            for e in (1, 2, 3)], floor=0.2, floor_by_bucket=[0.1] * 10)


def _elbo(scale: float):
    from toydiff.evaluation.elbo import ELBOTerms

    t = torch.arange(S.T, dtype=torch.float64)
    return ELBOTerms(per_t=scale * torch.exp(-t / 12), stderr=torch.zeros(S.T), prior=0.01)


def _paths(gm: GaussianMixture, n: int = 30, d: int = 2):
    from toydiff.sampling.loop import sample
    from toydiff.sampling.trajectory import TrajectoryRecorder

    g = torch.Generator().manual_seed(0)
    rec = TrajectoryRecorder(indices=range(n))
    sample(gm.eps_fn(S), torch.randn(n, d, generator=g, dtype=torch.float64), S, method="ddim", steps=20,
              callback=rec)
    return rec


def _curves():
    return {"ddpm": {"x": [5, 10, 20, 50], "mean": [0.5, 0.2, 0.09, 0.06], "std": [0.02] * 4},
            "ddim": {"x": [5, 10, 20, 50], "mean": [0.6, 0.3, 0.12, 0.08], "std": [0.02] * 4}}


def _grids():
    return {"logsnr": {"log_snr": [-10.0, -5.0, 0.0, 5.0, 9.0], "error": (0.08, 0.01)},
            "optimised": {"log_snr": [-10.0, -3.0, 0.5, 3.0, 6.0], "error": (0.03, 0.004)}}


def _guidance_rows():
    return [dict(source=src, interval="full", w=w, sw_tilted=0.1 / (1 + w) + 0.02, sw_cond=0.05 * w + 0.02,
                 off_data=0.01 * w, modes_covered=4, n_modes=4, class_share=0.9, sw_tilted_floor=0.02,
                 sw_cond_floor=0.02) for src in ("exact", "model") for w in (0.0, 1.0, 3.0)]


def _copies(n: int = 300):
    gm = ring()
    g = torch.Generator().manual_seed(1)
    train, x = gm.sample(40, g), gm.sample(n, g)
    d = torch.cdist(x, train).sort(1).values
    return train, x, (d[:, 0] < d[:, 1] / 3)


def _jumps(d: int = 2, n: int = 200):
    """A few-step cloud: x_1 ``[n, d]``, two made-up one-jump ends and the 'exact' ends; error-against-t curves."""
    g = torch.Generator().manual_seed(2)
    x_1 = torch.randn(n, d, generator=g, dtype=torch.float64)
    exact = 1.5 * x_1 / (1 + x_1.norm(dim=1, keepdim=True))
    ts = np.linspace(0.1, 1.0, 10)
    return x_1, {"one step": torch.zeros_like(x_1), "two steps": 0.7 * exact}, exact, ts, {
        "one step": 0.02 + ts, "two steps": 0.01 + 0.4 * ts ** 2, "exact map": np.zeros_like(ts)}


def _steps():
    from toydiff.toy.figures import steps

    return steps


def mpl_cases() -> dict[str, tuple[Callable, bool]]:
    """``{name: (make() -> matplotlib Figure, plane)}`` for every ``*_mpl`` function of the figures."""
    from toydiff.exact.guidance import tilted_target
    from toydiff.toy.figures import (few_step, guidance, likelihood, memorisation, samples, sampling,
                                     schedules as sch, training)

    gm, g1 = ring(), line()
    g = torch.Generator().manual_seed(0)
    x2, x1 = gm.sample(400, g), g1.sample(400, g)
    rec1, rec2 = _paths(g1, d=1), _paths(gm)
    train, xs, cp = _copies()
    tgt = {w: tilted_target(gm.condition(0), gm, w, n=48) for w in (0.0, 2.0)}
    return {
        "kde_vs_histogram_mpl": (lambda: samples.kde_vs_histogram_mpl(x1, mixture=g1), False),
        "scatter_with_density_mpl": (lambda: samples.scatter_with_density_mpl(x2, mixture=gm), True),
        "samples_vs_truth_mpl": (lambda: samples.samples_vs_truth_mpl(x2, true_samples=gm.sample(300, g)), True),
        "trajectories_1d_mpl": (lambda: samples.trajectories_1d_mpl(rec1.path(), rec1.timesteps, mixture=g1), False),
        "trajectories_2d_mpl": (lambda: samples.trajectories_2d_mpl(rec2.path()), True),
        "loss_curves_mpl": (lambda: training.loss_curves_mpl(_history()), False),
        "eps_comparison_mpl": (lambda: training.eps_comparison_mpl(g1.eps_fn(S), S, 10, oracle=g1), False),
        "vector_fields_mpl": (lambda: training.vector_fields_mpl({"exact": gm.eps_fn(S)}, S, 10, n=9), False),
        "schedule_curves_mpl": (lambda: sch.schedule_curves_mpl(schedules.linear(), schedules.cosine()), False),
        "embedding_mpl": (lambda: sch.embedding_mpl(16, 100), False),
        "forward_density_mpl/1d": (lambda: sch.forward_density_mpl(g1, S, n_samples=300, n_panels=3), False),
        "forward_density_mpl": (lambda: sch.forward_density_mpl(gm, S, n_samples=300, n_panels=5), True),
        "convergence_mpl": (lambda: sampling.convergence_mpl(_curves(), (0.05, 0.01)), False),
        "guided_panels_mpl": (lambda: guidance.guided_panels_mpl({w: x2 for w in tgt}, tgt), True),
        "guidance_curves_mpl": (lambda: guidance.guidance_curves_mpl(_guidance_rows()), False),
        "class_posterior_mpl": (lambda: guidance.class_posterior_mpl(gm, 0.5, 0, n=40), True),
        "likelihood_check_mpl": (lambda: likelihood.likelihood_check_mpl(torch.randn(30, generator=g),
                                                                         {"model": torch.randn(30, generator=g)}), False),
        "elbo_mpl": (lambda: likelihood.elbo_mpl({"oracle": _elbo(1.0), "model": _elbo(1.2)}), False),
        "elbo_mpl/oracle": (lambda: likelihood.elbo_mpl({"oracle": _elbo(1.0)}), False),
        "memorisation_mpl": (lambda: memorisation.memorisation_mpl(
            train, {"empirical": xs}, {"empirical": cp},
            title="8gaussians, 64 training points (copy: nearest/second < 1/3)"), True),
        "jump_error_mpl": (lambda: few_step.jump_error_mpl(_jumps()[3], _jumps()[4]), False),
        "one_jump_mpl": (lambda: few_step.one_jump_mpl(*_jumps()[:3]), True),
        "one_jump_mpl/1d": (lambda: few_step.one_jump_mpl(*_jumps(d=1)[:3]), False),
        "levels_mpl": (lambda: _steps().levels_mpl(_grids()), False),
    }


def plotly_cases() -> dict[str, tuple[Callable, bool]]:
    """``{name: (make() -> plotly Figure, plane)}`` for every ``*_plotly`` function of the figures."""
    from toydiff.exact.guidance import tilted_target
    from toydiff.toy import motion as mo
    from toydiff.toy.figures import (few_step, flow, guidance, likelihood, memorisation, motion, samples, sampling,
                                     schedules as sch, training)

    gm, g1 = ring(), line()
    g = torch.Generator().manual_seed(0)
    x2, x1 = gm.sample(300, g), g1.sample(300, g)
    rec1, rec2 = _paths(g1, d=1), _paths(gm)
    train, xs, cp = _copies()
    tg = tilted_target(gm.condition(0), gm, 2.0, n=40)
    fwd = mo.forward_motion(x2[:100], S, frames=6, generator=g)
    rev = mo.reverse_motion(gm.eps_fn(S), torch.randn(100, 2, generator=g, dtype=torch.float64), S, steps=6)
    race = mo.particle_race(gm, S, torch.randn(1, 2, generator=g, dtype=torch.float64), steps=6)
    grid = np.linspace(-3, 3, 20)
    return {
        "samples_vs_truth_plotly": (lambda: samples.samples_vs_truth_plotly(x2, mixture=gm), True),
        "samples_vs_truth_plotly/1d": (lambda: samples.samples_vs_truth_plotly(x1, mixture=g1), False),
        "trajectories_1d_plotly": (lambda: samples.trajectories_1d_plotly(rec1.path(), rec1.timesteps, mixture=g1),
                                   False),
        "trajectories_2d_plotly": (lambda: samples.trajectories_2d_plotly(rec2.path()), True),
        "loss_curves_plotly": (lambda: training.loss_curves_plotly(_history()), False),
        "eps_comparison_plotly": (lambda: training.eps_comparison_plotly(gm.eps_fn(S), S, 10, oracle=gm), True),
        "schedule_curves_plotly": (lambda: sch.schedule_curves_plotly(sch.schedule_series(
            [schedules.linear(), schedules.cosine()])), False),
        "embedding_plotly": (lambda: sch.embedding_plotly(16, 100), False),
        "convergence_plotly": (lambda: sampling.convergence_plotly(_curves(), (0.05, 0.01)), False),
        "forward_animation_plotly": (lambda: motion.forward_animation_plotly(fwd, gm, grid=20), True),
        "reverse_animation_plotly": (lambda: motion.reverse_animation_plotly(rev, mixture=gm, grid=20,
                                                                             fields={"exact": gm.eps_fn(S)}), True),
        "race_animation_plotly": (lambda: motion.race_animation_plotly(race, mixture=gm, grid=20), True),
        "denoising_animation_plotly": (lambda: motion.denoising_animation_plotly(
            np.zeros((3, 8, 8)), np.zeros((3, 8, 8)), [50, 20, 0]), True),
        "target_panels_plotly": (lambda: guidance.target_panels_plotly([("target", tg), ("again", tg)], x2), True),
        "guidance_curves_plotly": (lambda: guidance.guidance_curves_plotly(_guidance_rows()), False),
        "class_posterior_plotly": (lambda: guidance.class_posterior_plotly(gm, 0.5, 0, n=30), True),
        "paths_plotly": (lambda: flow.paths_plotly({"a": rec2.path(), "b": rec2.path()}), True),
        "likelihood_points_plotly": (lambda: likelihood.likelihood_points_plotly(
            x2[:30], torch.randn(30, generator=g), {"model": torch.randn(30, generator=g)}), False),
        "likelihood_grid_plotly": (lambda: likelihood.likelihood_grid_plotly(
            grid, grid, {"exact": -np.add.outer(grid ** 2, grid ** 2), "model": -np.add.outer(grid ** 2, grid ** 2)}),
            True),
        "elbo_plotly": (lambda: likelihood.elbo_plotly({"oracle": _elbo(1.0), "model": _elbo(1.2)}), False),
        "copies_plotly": (lambda: memorisation.copies_plotly(train, xs, cp), True),
        "copy_rate_plotly": (lambda: memorisation.copy_rate_plotly([10, 30, 100, 300], {"empirical": [1, 0.8, 0.3, 0.1]},
                                                                   ratio=1 / 3), False),
        "jump_error_plotly": (lambda: few_step.jump_error_plotly(_jumps()[3], _jumps()[4]), False),
        "one_jump_plotly": (lambda: few_step.one_jump_plotly(*_jumps()[:3]), True),
        "one_jump_plotly/1d": (lambda: few_step.one_jump_plotly(*_jumps(d=1)[:3]), False),
        "levels_plotly": (lambda: _steps().levels_plotly(_grids()), False),
    }
