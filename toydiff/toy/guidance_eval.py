"""What guidance samples, measured against the exact answer on a labelled 2-D mixture.

For a guidance weight w (the ``"scale"`` convention, ε_u + w (ε_c − ε_u)), the sampler is compared with

* the **tilted target** p(x | y)^w p(x)^(1−w), normalised on a grid (:func:`toydiff.exact.guidance.tilted_target`),
  the density CFG is often said to sample — it does only at w ∈ {0, 1} (the guided field at t > 0 is not
  the noised tilted density's score), so the distance measures that gap;
* **p(x | y)**, the class the user asked for;
* the **off-data share** (points > 3 Mahalanobis σ from every component of p(x)), **mode coverage** (class-y
  components holding ≥ ¼ of their weight, :func:`toydiff.toy.metrics.mode_stats`) and the **class share**
  (points whose most responsible component has class y).

Distances are sliced Wasserstein-1 (:func:`toydiff.toy.metrics.sliced_wasserstein`) in data units; each has a
noise floor: the same distance between two independent draws of the target of the same size.

    rows = guidance_table(oracle_denoisers(ds), schedule, normalizer, ds.mixture, y=0, ws=(0, 1, 2, 4, 8))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

from toydiff.checks import check_int, check_number
from toydiff.exact.mixture import GaussianMixture
from toydiff.exact.guidance import TiltedTarget, labelled_eps_fn, tilted_target, widened
from toydiff.sampling.guidance import classifier_free_guidance
from toydiff.sampling.loop import sample
from toydiff.processes.schedules import NoiseSchedule
from toydiff.toy.datasets import Normalizer
from toydiff.toy.metrics import mode_stats, sliced_wasserstein

__all__ = ["GuidanceRow", "Denoisers", "oracle_denoisers", "oracle_autoguidance", "model_denoisers", "guided_samples",
           "guidance_row", "guidance_table"]

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GuidanceRow:
    """One line of the guidance table (distances in data units, sliced W1)."""

    source: str
    w: float
    interval: str
    sw_tilted: float
    sw_tilted_floor: float
    sw_cond: float
    sw_cond_floor: float
    off_data: float
    modes_covered: int
    n_modes: int
    class_share: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Denoisers:
    """What a guided sampler combines, in model units: ``cond(y)`` (the good denoiser) and ``bad(y)`` (ε_u for
    CFG, a weaker model for autoguidance), a name, and ``bad_law(mixture, y)``: the law ``bad`` is exact for,
    in data units, which sets the target p_good^w p_bad^(1−w) (default: the unconditional mixture)."""

    name: str
    cond: Callable[[int], EpsFn]
    bad: Callable[[int], EpsFn]
    bad_law: Callable[[GaussianMixture, int], GaussianMixture] = lambda mixture, y: mixture


def oracle_denoisers(mixture: GaussianMixture, normalizer: Normalizer, schedule: NoiseSchedule) -> Denoisers:
    """The exact ε*(· | y) and ε* of the labelled ``mixture`` (data units) in the normalised model units."""
    fn = labelled_eps_fn(normalizer.oracle(mixture), schedule)
    null = mixture.n_classes

    def bind(label: int) -> EpsFn:
        return lambda x, t: fn(x, t, torch.full((x.shape[0],), label, dtype=torch.long))

    return Denoisers("exact", bind, lambda y: bind(null))


def oracle_autoguidance(mixture: GaussianMixture, normalizer: Normalizer, schedule: NoiseSchedule,
                        factor: float = 1.5) -> Denoisers:
    """Autoguidance (Karras et al. 2024) with exact models: good = ε*(· | y), bad = the ε* of p(x | y) with every
    covariance widened by ``factor²`` (:func:`toydiff.exact.guidance.widened`)."""
    norm = normalizer.oracle(mixture)
    return Denoisers("exact-auto", lambda y: norm.condition(y).eps_fn(schedule),
                     lambda y: widened(norm.condition(y), factor).eps_fn(schedule),
                     lambda gm, y: widened(gm.condition(y), factor))


def model_denoisers(run) -> Denoisers:
    """The two denoisers of a :class:`~toydiff.toy.conditional.ConditionalRun` (label y and the null label)."""
    return Denoisers("model", run.eps_fn, lambda y: run.eps_fn(None))


def guided_samples(den: Denoisers, schedule: NoiseSchedule, normalizer: Normalizer, y: int, w: float, *,
                   n: int = 2000, seed: int = 0, interval: tuple[int, int] | None = None, method: str = "ddpm",
                   steps: int | None = None) -> torch.Tensor:
    """``n`` CFG samples ``[n, D]`` (data units, float64) at weight ``w`` (``"scale"``), guided only at
    ``interval = (t_min, t_max)`` if given; x_T and the sampler noise come from ``seed``."""
    t_min, t_max = interval if interval is not None else (None, None)
    eps = classifier_free_guidance(den.cond(y), den.bad(y), w, t_min=t_min, t_max=t_max)
    g = torch.Generator().manual_seed(check_int(seed, "seed", min=0))
    x_T = torch.randn(check_int(n, "n", min=10), normalizer.mean.numel(), generator=g, dtype=torch.float64)
    return normalizer.inverse(sample(eps, x_T, schedule, method=method, steps=steps, generator=g))


def guidance_row(x: torch.Tensor, mixture: GaussianMixture, y: int, w: float, *, source: str = "", interval: str = "",
                 seed: int = 0, grid: int = 256, target: TiltedTarget | None = None) -> GuidanceRow:
    """Score guided samples ``x [N, 2]`` (data units) against the exact targets of class ``y`` at weight ``w``
    (``target``: the tilted target, if already computed; else CFG's on a ``grid × grid`` grid)."""
    cond = mixture.condition(y)
    g = torch.Generator().manual_seed(check_int(seed, "seed", min=0) + 7)
    target = target if target is not None else tilted_target(cond, mixture, check_number(w, "w"), n=grid)
    a, b = target.sample(x.shape[0], g), target.sample(x.shape[0], g)
    c, d = cond.sample(x.shape[0], g), cond.sample(x.shape[0], g)
    m = mode_stats(x, cond)
    owner = mixture.responsibilities(x.double()).argmax(1)
    return GuidanceRow(source=source, w=float(w), interval=interval,
                       sw_tilted=sliced_wasserstein(x, a, seed=seed), sw_tilted_floor=sliced_wasserstein(b, a, seed=seed),
                       sw_cond=sliced_wasserstein(x, c, seed=seed), sw_cond_floor=sliced_wasserstein(d, c, seed=seed),
                       off_data=mode_stats(x, mixture)["off_mode_share"], modes_covered=m["covered"],
                       n_modes=m["n_modes"], class_share=float((mixture.labels[owner] == y).double().mean()))


def guidance_table(den: Denoisers, schedule: NoiseSchedule, normalizer: Normalizer, mixture: GaussianMixture, *,
                   y: int = 0, ws: Sequence[float] = (0, 1, 2, 4, 8), intervals: dict | None = None, n: int = 2000,
                   seed: int = 0, method: str = "ddpm", steps: int | None = None,
                   keep: dict | None = None, targets: dict | None = None) -> list[GuidanceRow]:
    """One :class:`GuidanceRow` per (interval, w). ``intervals``: name → ``(t_min, t_max)`` or ``None`` (default:
    ``{"full": None}``). ``keep``: a dict that receives the samples under ``(interval name, w)``. ``targets``:
    w → :class:`~toydiff.exact.guidance.TiltedTarget`, filled where missing (reuse one dict only across
    denoisers with the same ``bad_law``)."""
    rows, targets = [], ({} if targets is None else targets)
    for w in ws:
        if float(w) not in targets:
            targets[float(w)] = tilted_target(mixture.condition(y), den.bad_law(mixture, y), check_number(w, "w"))
    for name, iv in (intervals or {"full": None}).items():
        for w in ws:
            x = guided_samples(den, schedule, normalizer, y, w, n=n, seed=seed, interval=iv, method=method, steps=steps)
            if keep is not None:
                keep[(name, float(w))] = x
            rows.append(guidance_row(x, mixture, y, w, source=den.name, interval=name, seed=seed,
                                     target=targets[float(w)]))
    return rows
