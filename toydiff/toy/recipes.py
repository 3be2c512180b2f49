"""The toy track's default recipes: what a run gets without flags, in one place.

    recipe = default_recipe("8gaussians")
    run = train_toy("8gaussians")                        # trains with exactly this recipe
    recipe.schedule(), recipe.model_config(2), recipe.train_config()

:func:`toydiff.toy.run.train_toy`, ``toydiff toy train``, the app's Toy page and the benchmarks all read
:func:`default_recipe`; an argument, flag or widget the caller sets overrides its field. The recipes were
chosen by measurement (``python bench/toy_defaults.py`` prints what they reach; the search behind them is in
README's toy section): one for the 1-D family (the seed exercise's constant β = 0.02, T = 250 schedule) and
one for the 2-D family, whose narrow modes need small noise levels at small t.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from toydiff.processes.schedules import NoiseSchedule, from_name
from toydiff.training.engine import TrainConfig
from toydiff.toy.datasets import ToyDataset, get_dataset
from toydiff.toy.models import MLPConfig

__all__ = ["Recipe", "default_recipe", "RECIPE_1D", "RECIPE_2D", "RECIPE_JUMP_1D", "RECIPE_JUMP_2D"]


@dataclass(frozen=True)
class Recipe:
    """Everything a default toy run fixes: schedule, network, optimisation and data per epoch.

    Attributes:
        schedule_name, schedule_params: the schedule, as :func:`toydiff.processes.schedules.from_name` takes it
            (params as ``((name, value), ...)`` so the recipe stays hashable).
        width, depth, activation, time_input: the MLP (:class:`~toydiff.toy.models.MLPConfig`).
        epochs, batch_size, lr, t_sampling, ema_decay, ema_warmup, lr_schedule, min_lr_ratio: the optimisation
            (:class:`~toydiff.training.TrainConfig`; its other fields keep their defaults).
        n_train: training points per epoch; ``fresh``: new points every epoch.
        flow_target: the regression target of a ``--process flow`` run (:class:`~toydiff.processes.FlowObjective`):
            ``"stf"``, the stable target field over the batch (Xu et al. 2023), or ``"conditional"``.
    """

    schedule_name: str = "constant"
    schedule_params: tuple[tuple[str, float | int], ...] = (("T", 250), ("beta", 0.02))
    width: int = 128
    depth: int = 3
    activation: str = "silu"
    time_input: str = "sinusoidal"
    epochs: int = 60
    batch_size: int = 256
    lr: float = 3e-3
    t_sampling: str = "uniform"
    ema_decay: float | None = 0.995
    ema_warmup: bool = False
    lr_schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    n_train: int = 10_000
    fresh: bool = True
    #: in 1-D and 2-D the batch's points overlap at mid / high noise, and averaging the target over them cut the
    #: trained velocity's squared error by 2–11× at every t for the same steps (+12–50 % time): the error a trained
    #: FM model keeps at 16–32 NFE is gradient noise at t ∈ [0.1, 0.7] (docs/flow.md, "Why the stable target")
    flow_target: str = "stf"
    #: epochs of the processes whose measured recipe trains for another length than ``epochs``: consistency
    #: distillation at 40 epochs of the family's batches beat 20 at every NFE on both families (8gaussians 1 NFE
    #: 1.28× the floor against 1.58×, two_gaussians 1.11× against 1.18×; bench/consistency_recipe.py, docs/measurements.md)
    process_epochs: tuple[tuple[str, int], ...] = (("consistency", 40),)

    def schedule(self) -> NoiseSchedule:
        """The recipe's schedule (a fresh immutable object each call)."""
        return from_name(self.schedule_name, **dict(self.schedule_params))

    def target(self, process) -> str:
        """The regression target of a run of ``process`` (a process object): ``flow_target`` for flow matching
        (its measured default), ``"conditional"`` for every other process."""
        return dict(self.targets()).get(process.name, "conditional")

    def targets(self) -> tuple[tuple[str, str], ...]:
        """``(process name, target)`` for the processes whose recipe target is not ``"conditional"``."""
        return (("flow", self.flow_target),)

    def model_config(self, dim: int) -> MLPConfig:
        """The MLP for points of dimension ``dim``."""
        return MLPConfig(dim=dim, width=self.width, depth=self.depth, activation=self.activation,
                         time_input=self.time_input)

    def train_config(self, process=None, **overrides) -> TrainConfig:
        """The :class:`TrainConfig` of the recipe for ``process`` (a process object: its :attr:`process_epochs`
        if listed); ``overrides`` replace any of its fields (``seed=3``)."""
        epochs = dict(self.process_epochs).get(getattr(process, "name", None), self.epochs)
        base = TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=self.lr, t_sampling=self.t_sampling,
                           ema_decay=self.ema_decay, ema_warmup=self.ema_warmup, lr_schedule=self.lr_schedule,
                           min_lr_ratio=self.min_lr_ratio)
        return replace(base, **overrides)


#: the 1-D family: the seed exercise's constant β = 0.02, T = 250; 100 epochs of 40 000 fresh points in batches of
#: 512 (7 900 steps), lr 5e-3 with cosine decay floored at 0.1 × the peak, EMA 0.999 with warm-up: the larger batch
#: (less gradient noise in ε at mid/high noise, where the mode weights are decided), the longer EMA and the higher
#: lr lowered the W1 ratio's mean over training seeds 10–12 from 1.43 to 1.10; low-noise t (P(t) ∝ 1/√(t+1)): the
#: last few steps set the modes' means and spread (a uniform-t run sampled with the exact ε* at t < 5 went from
#: 1.12× to 0.91× the oracle's W1, the mode weights already right), and drawing t = 0 eight times as often as
#: uniform t does took the worst of training seeds 10–13 from 1.23 to 1.03 (bench/toy_recipe_search.py, 60–67)
RECIPE_1D = Recipe(epochs=100, batch_size=512, n_train=40_000, lr=5e-3, ema_decay=0.999, ema_warmup=True,
                   min_lr_ratio=0.1, t_sampling="low-noise")
#: the 2-D family: β linear from 1e-4 (σ at t = 0 is 0.01, below the 8 Gaussians' normalised mode std 0.105)
#: to 0.04 over T = 250 (ᾱ at T−1 ≈ 0.0066, as the seed schedule's), more of the training t drawn at low noise
#: (the low-noise t distribution); MLP 128 × 4 for 200 epochs of batch 128: the same train time as the
#: earlier 128 × 3 for 250 epochs, and a lower 8 Gaussians off-mode share on both search seeds
RECIPE_2D = Recipe(schedule_name="linear", schedule_params=(("T", 250), ("beta_start", 1e-4), ("beta_end", 0.04)),
                   depth=4, epochs=200, batch_size=128, t_sampling="low-noise")

#: the jump process (shortcut models / MeanFlow, :class:`toydiff.processes.jump.JumpProcess`), per family: the shortcut
#: objective (its step costs a third of MeanFlow's JVP step), uniform t, batch 256 (2-D) / 512 (1-D); MeanFlow at the
#: same train time stayed behind (bench/jump_recipe_search.py). 2-D: 360 epochs (76 CPU s, 1 thread), twice the first
#: recipe's 180: on 8gaussians, 3 seeds, n = 4000, the 2-jump path error went from 0.109 to 0.095 data std and sliced
#: W1 from 1.80x to 1.50x the floor (1 jump: 1.87x to 1.53x); 1-D: 240 epochs (55 CPU s), twice the first 120: on
#: two_gaussians the 2-jump path error went from 0.090 to 0.067 and W1 from 1.78x to 1.29x the floor (1 jump: 1.73x to
#: 1.30x) (docs/measurements.md, "Issue #24 tuning"). Flow-map distillation (``--objective distill``) on the same recipes,
#: exact teacher, 3 seeds: 8gaussians 1 / 2 jumps at 1.03x / 1.07x the floor, path 0.036 / 0.045, 62 CPU s;
#: two_gaussians at the exact map's own distance, path 0.021 / 0.025, 45 CPU s (docs/flow.md)
RECIPE_JUMP_1D = replace(RECIPE_1D, epochs=240, batch_size=512, n_train=20_000, t_sampling="uniform")
RECIPE_JUMP_2D = replace(RECIPE_2D, epochs=360, batch_size=256, t_sampling="uniform")

_BY_DIM = {1: RECIPE_1D, 2: RECIPE_2D}
#: per-data-set recipes where the measurements asked for one (none beyond the families today)
_BY_NAME: dict[str, Recipe] = {}
#: per-process recipes by family, where a process trains differently (few-step jumps)
_BY_PROCESS: dict[tuple[str, int], Recipe] = {("jump", 1): RECIPE_JUMP_1D, ("jump", 2): RECIPE_JUMP_2D}


def default_recipe(dataset: "str | ToyDataset" = "two_gaussians", process: str | None = None) -> Recipe:
    """The default recipe of a toy data set (a name from :data:`toydiff.toy.datasets.DATASETS`, or a
    :class:`~toydiff.toy.datasets.ToyDataset`: its name's recipe if it has one, else its family's); ``process``
    (a registry name): that process's recipe for the family where it has its own (``"jump"``)."""
    ds = get_dataset(dataset) if isinstance(dataset, str) else dataset
    if ds.dim not in _BY_DIM:
        raise ValueError(f"no default recipe for {ds.dim}-D data (toy data sets are 1-D or 2-D)")
    if isinstance(process, str) and (process, ds.dim) in _BY_PROCESS:
        return _BY_PROCESS[(process, ds.dim)]
    return _BY_NAME.get(ds.name, _BY_DIM[ds.dim])
