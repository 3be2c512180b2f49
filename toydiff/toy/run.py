"""One toy-track run end to end: data → normalisation → MLP → training → checkpoint → samples.

The pieces (:mod:`~toydiff.toy.datasets`, :mod:`~toydiff.toy.models`, :mod:`~toydiff.toy.training`,
:func:`toydiff.sample`) compose by hand; this module is the glue the CLI, the benchmarks and notebooks
share, so a run trained by one is loaded by the others::

    run = train_toy("two_gaussians", out="runs/toy")     # the seed exercise, in seconds
    x = run.sample(10_000, method="ddim", steps=50, seed=0)   # [10000, 1], in data units
    exact = oracle_run("two_gaussians").sample(10_000, method="ddim", steps=50, seed=0)

Training happens in normalised units (per-dimension mean/std of the training set, as the seed exercise
does); :meth:`ToyRun.sample` maps back to data units. The oracle of a run is the exact law of the
*normalised* data, so a model and its oracle run through the very same schedule and sampler.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from toydiff.processes import schedules
from toydiff.checks import check_int
from toydiff.outputs import atomic_write_text
from toydiff.threads import thread_scope
from toydiff.training.checkpoint import CheckpointError, load_checkpoint, load_weights, require_kind, run_lock
from toydiff.toy.datasets import Normalizer, ToyDataset, get_dataset
from toydiff.exact.mixture import GaussianMixture
from toydiff.toy.models import MLPConfig, build_mlp, network_config_for
from toydiff.toy.recipes import Recipe, default_recipe
from toydiff.processes.base import Process
from toydiff.processes.registry import objective_from_meta, process_from_dict
from toydiff.toy.process_options import build_process
from toydiff.processes.schedules import NoiseSchedule
from toydiff.training.engine import History, TrainConfig
from toydiff.toy.training import KIND, ToyTrainer

__all__ = ["ToyRun", "default_schedule", "toy_trainer", "train_toy", "load_toy", "oracle_run", "CHECKPOINT_NAME",
           "teacher_velocity"]

CHECKPOINT_NAME = "checkpoint.safetensors"

#: what must match on resume, with the flags of ``toydiff toy train`` that set it
_RESUME_KEYS = {"dataset": "--dataset", "model_config": "the network (--preset, --width, --depth, --activation, "
                "--time-input)", "n_train": "--n-train", "n_val": "--n-val", "data_seed": "--seed",
                "fresh_data": "--fixed-data"}


def default_schedule() -> NoiseSchedule:
    """The seed exercise's schedule: constant β = 0.02 over T = 250 steps (ᾱ_T ≈ 0.0064), the 1-D default.

    Each data set's default schedule is its recipe's: ``default_recipe(name).schedule()``.
    """
    return schedules.constant(T=250, beta=0.02)


@dataclass
class ToyRun:
    """A trained (or exact) toy denoiser with everything needed to sample and judge it.

    Attributes:
        dataset: the toy data set.
        process: the diffusion process (:class:`~toydiff.processes.VPProcess`,
            :class:`~toydiff.processes.InterpolantProcess` or any registered one): its samplers, its network's
            time convention and its exact oracle.
        normalizer: data units ↔ model units.
        model: the network ``model(x_t [B, D], t [B]) -> prediction [B, D]`` in model units (EMA weights), or
            ``None`` for an oracle run.
        history: the training history (``None`` for an oracle run).
        metadata: the checkpoint's JSON metadata.
        objective: the objective the model was trained with (``None``: an oracle run; see :attr:`training_objective`).
    """

    dataset: ToyDataset
    process: Process
    normalizer: Normalizer
    model: nn.Module | None = None
    history: History | None = None
    metadata: dict = field(default_factory=dict)
    objective: object | None = None

    def __post_init__(self):
        if not isinstance(self.process, Process):
            raise TypeError(f"process must be a Process (toydiff.processes), got {type(self.process).__name__}")

    @property
    def schedule(self) -> NoiseSchedule | None:
        """The process's discrete noise schedule (``None`` for a continuous-time process)."""
        return self.process.schedule

    @property
    def training_objective(self):
        """:attr:`objective`, or the process's own (with the checkpoint's regression target) for an oracle run."""
        if self.objective is not None:
            return self.objective
        return self.process.objective(target=self.metadata.get("target", "conditional"))

    @property
    def flow(self):
        """Read-only, for older callers: :attr:`training_objective` of a continuous-time process, else ``None``."""
        return None if self.schedule is not None else self.training_objective

    @property
    def oracle(self) -> GaussianMixture | None:
        """The exact law of the normalised data, or ``None`` if the data set has no closed form."""
        return self.normalizer.oracle(self.dataset.mixture) if self.dataset.has_oracle else None

    def denoiser_fn(self, exact: bool = False) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The denoiser in model units as the process's samplers call it, ``fn(x_t [B, D], t [B]) -> [B, D]``
        (:meth:`Process.network_fn` of the network, no gradients), or with ``exact=True`` (or for an oracle run)
        the oracle's prediction of the same type (:meth:`Process.exact_fn`)."""
        if exact or self.model is None:
            if self.oracle is None:
                raise ValueError(f"dataset {self.dataset.name!r} has no exact mixture: there is no oracle denoiser")
            return self.process.exact_fn(self.oracle)
        net = self.process.network_fn(self.model.eval())

        def fn(x: torch.Tensor, *times: torch.Tensor) -> torch.Tensor:  # (t) or, for two-time networks, (r, t)
            with torch.no_grad():
                return net(x.float(), *times).to(x.dtype)

        return fn

    def eps_fn(self, exact: bool = False) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """:meth:`denoiser_fn` of a process over a noise schedule: ``ε̂(x_t [B, D], t LongTensor [B])``."""
        if self.schedule is None:
            raise ValueError(f"this run's process ({self.process.describe()}) has no ε-predictor over a noise "
                             "schedule; use denoiser_fn() and the process's samplers")
        return self.denoiser_fn(exact)

    def flow_fn(self, exact: bool = False) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """:meth:`denoiser_fn` of a continuous-time process: ``fn(x_t [B, D], t float [B] in [0, 1])``."""
        if self.schedule is not None:
            raise ValueError(f"this run's process ({self.process.describe()}) runs over a noise schedule, not a flow "
                             "path; use denoiser_fn() or eps_fn()")
        return self.denoiser_fn(exact)

    def sample(self, n: int, *, method: str | None = None, steps: int | None = None, seed: int = 0,
               exact: bool = False, callback: Callable[[dict], None] | None = None, progress: bool = False,
               **sampler_kwargs) -> torch.Tensor:
        """``n`` samples ``[n, D]`` in data units, from x_T ~ N(0, I) drawn with ``seed``.

        ``method``, ``steps`` (default: the process's :attr:`~Process.default_method` and
        :attr:`~Process.default_steps`) and ``sampler_kwargs`` (the process's :attr:`~Process.options`: VP
        ``eta``, ``variance``, ``spacing``; flow ``shift``, ``times``) go to :meth:`Process.sample`;
        ``exact=True`` samples with the oracle instead of the model.
        """
        check_int(n, "n", min=1)
        g = torch.Generator().manual_seed(seed)
        # float64 for the model too (it computes in float32 inside): the same seed then gives the model and
        # the oracle the very same x_T and sampler noise, so their samples compare pathwise
        x_T = torch.randn(n, self.dataset.dim, generator=g, dtype=torch.float64)
        x0 = self.process.sample(self.denoiser_fn(exact), x_T, method=method, steps=steps, generator=g,
                                 callback=callback, progress=progress, **sampler_kwargs)
        return self.normalizer.inverse(x0.double())


def toy_trainer(dataset: ToyDataset, objective, model_config: MLPConfig, config: TrainConfig, n_train: int, n_val: int,
                seed: int, fresh: bool = True, data=None) -> tuple[ToyTrainer, Normalizer]:
    """A ready :class:`~toydiff.toy.training.ToyTrainer` and the normalisation: ``n_train + n_val`` points drawn with ``seed``,
    normalised by the training part, the MLP initialised from ``seed``, the oracle (if any) giving the floor.
    ``objective``: what the engine trains (:func:`toydiff.training.engine.make_objective`: a process, its
    objective or a NoiseSchedule); ``data``: other batches."""
    g = torch.Generator().manual_seed(seed)
    x = dataset.sample(n_train + n_val, g)
    normalizer = Normalizer.fit(x[:n_train])
    xn = normalizer.forward(x)
    torch.manual_seed(seed)  # the MLP's initial weights
    model = build_mlp(model_config)
    oracle = normalizer.oracle(dataset.mixture) if dataset.has_oracle else None
    meta = {"dataset": dataset.name, "model_config": asdict(model_config), "normalizer": normalizer.to_dict(),
            "n_train": n_train, "n_val": n_val, "data_seed": seed, "fresh_data": fresh}
    fresh_data = (lambda n, g: normalizer.forward(dataset.sample(n, g))) if fresh else None
    trainer = ToyTrainer(model, objective, xn[:n_train], xn[n_train:], config, oracle=oracle, metadata=meta,
                         fresh_data=fresh_data, data=data)
    bind = getattr(trainer.objective, "bind", None)  # objectives that need the run (consistency models)
    if bind is not None:
        bind(total_steps=trainer.total_steps, teacher_velocity=teacher_velocity(
            getattr(trainer.objective, "teacher", None), dataset, oracle, normalizer))
    return trainer, normalizer


def teacher_velocity(teacher: str | None, dataset: ToyDataset, oracle: GaussianMixture | None,
                     normalizer: Normalizer) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """A distillation teacher's velocity ``v(x [B, D], t float [B])`` in the student's model units: ``"exact"``
    (the normalised data's exact field on the linear path, ``oracle.velocity_fn``), or a trained toy flow run
    (folder or checkpoint) of the same data set, normalisation and linear path, its prediction converted to the
    velocity. ``None`` gives ``None`` (no teacher). A mismatched run is a ValueError naming ``teacher``."""
    if teacher is None:
        return None
    from toydiff.processes.interpolants import linear

    if teacher == "exact":
        if oracle is None:
            raise ValueError(f"teacher 'exact': dataset {dataset.name!r} has no exact mixture")
        return oracle.velocity_fn(linear())
    run = load_toy(teacher)
    proc = run.process
    if run.dataset.name != dataset.name or proc.name != "flow" or proc.interp != linear():
        raise ValueError(f"teacher {teacher!r} must be a linear-path flow run of {dataset.name!r} "
                         f"(it is {proc.describe()} on {run.dataset.name!r})")
    same = all(torch.allclose(getattr(run.normalizer, k), getattr(normalizer, k), rtol=1e-5, atol=1e-8)
               for k in ("mean", "std"))
    if not same:
        meta = run.metadata
        raise ValueError(f"teacher {teacher!r} was trained in another normalisation: train the student on the "
                         f"teacher's data draw (--seed {meta.get('data_seed')} --n-train {meta.get('n_train')})")
    fn = run.denoiser_fn()
    return lambda x, t: proc.interp.to_velocity(fn(x, t), proc.prediction, x, t)


def train_toy(dataset: str | ToyDataset = "two_gaussians", *, model_config: MLPConfig | None = None,
              config: TrainConfig | None = None, n_train: int | None = None, n_val: int = 2_000, seed: int = 0,
              fresh: bool | None = None, out: str | Path | None = None, resume: bool = False, progress: bool = True,
              on_epoch: Callable[[dict], None] | None = None, recipe: Recipe | None = None,
              process: str | Process = "vp", schedule: NoiseSchedule | None = None, interpolant: str | None = None,
              prediction: str | None = None, target: str | None = None, threads: int | None = None,
              objective: str | None = None, teacher: str | None = None) -> ToyRun:
    """Train an MLP denoiser on a toy data set under ``process`` (DDPM: Ho et al. 2020, Algorithm 1) and return the run.

    Every argument left at ``None`` comes from ``recipe`` (default :func:`~toydiff.toy.recipes.default_recipe`
    of the data set: the measured best recipe of its family), so ``train_toy("8gaussians")`` is the default run.

    Args:
        dataset: a name from :data:`toydiff.datasets.DATASETS` or a :class:`ToyDataset`.
        model_config: the MLP (default: the recipe's, for the data's dimension).
        config: optimisation (default: the recipe's :meth:`~toydiff.toy.recipes.Recipe.train_config`).
        n_train, n_val: points drawn (with ``seed``) for training and for the held-out loss (``n_train``:
            default the recipe's).
        fresh: draw ``n_train`` new points every epoch (the normalisation stays the first set's); with
            ``False`` every epoch revisits the same points, as the seed exercise does (default: the recipe's).
        out: folder; ``out/checkpoint.safetensors`` is written atomically after every epoch and
            ``out/history.json`` at the end.
        resume: continue from ``out``'s checkpoint (to the same weights as an uninterrupted run); the
            other arguments must match the checkpoint's, except ``config.epochs``, which may grow.
        process: a process object (:mod:`toydiff.processes`), or the name of one of
            :func:`~toydiff.toy.process_options.build_process` built from its options: ``"vp"`` (DDPM's ε-loss
            over ``schedule``, default the recipe's), ``"flow"`` (the ``prediction`` network, default velocity,
            under the ``interpolant``, default linear) or ``"jump"`` (an average-velocity network under the
            ``interpolant`` trained by ``objective``, ``"meanflow"`` or ``"shortcut"``; its network takes two
            times, :func:`~toydiff.toy.models.network_config_for`). An option of another process is a ValueError.
        objective, teacher: ``process="jump"``: ``"shortcut"`` (default) or ``"meanflow"``; ``process="consistency"``:
            ``"ct"`` (default) or ``"cd"``, and the CD teacher (``"exact"``, default, or a trained toy flow run's path;
            :func:`teacher_velocity`).
        target: the regression target, ``"stf"`` (the stable target field over the batch, Xu et al. 2023) or
            ``"conditional"`` (each pair's own); default: the recipe's for the process (:meth:`Recipe.target`).
        threads: torch CPU threads while training (default: the policy of :mod:`toydiff.threads`, 1); the
            caller's thread count is restored on return.
    """
    ds = get_dataset(dataset) if isinstance(dataset, str) else dataset
    recipe = recipe or default_recipe(ds, getattr(process, "name", process))
    proc = build_process(process, recipe, schedule=schedule, interpolant=interpolant, prediction=prediction,
                         objective=objective, teacher=teacher)
    model_config = network_config_for(model_config or recipe.model_config(ds.dim), proc)
    config = config or recipe.train_config(proc)
    n_train = recipe.n_train if n_train is None else n_train
    fresh = recipe.fresh if fresh is None else fresh
    _check_train_args(model_config, ds, resume, out)
    objective = proc.objective(t_sampling=config.t_sampling, loss_weighting=config.loss_weighting,
                               min_snr_gamma=config.min_snr_gamma, target=recipe.target(proc) if target is None else target)
    with thread_scope(threads):  # the one thread policy (toydiff.threads); the caller's count back after
        trainer, normalizer = toy_trainer(ds, objective, model_config, config, n_train, n_val, seed, fresh)
        if out is None:
            history = trainer.fit(progress=progress, checkpoint=None, on_epoch=on_epoch)
        else:
            with run_lock(out):  # a second writer of this folder fails at once (RunLockedError)
                history = _fit_into(trainer, Path(out), resume, progress, on_epoch)
    return ToyRun(ds, proc, normalizer, trainer.eval_model.eval(), history,
                  dict(trainer.metadata) | trainer.objective.metadata(), trainer.objective)


def _check_train_args(model_config, ds: ToyDataset, resume: bool, out) -> None:
    if model_config.dim != ds.dim:
        raise ValueError(f"model_config.dim is {model_config.dim} but dataset {ds.name!r} has dimension {ds.dim}")
    if resume and out is None:
        raise ValueError("resume needs out, the folder holding the checkpoint")


def _fit_into(trainer: ToyTrainer, out: Path, resume: bool, progress: bool, on_epoch) -> History:
    """Fit ``trainer`` into the run folder ``out`` (resuming its checkpoint if asked); write ``history.json``."""
    ckpt = out / CHECKPOINT_NAME
    if resume:
        if not ckpt.exists():
            raise FileNotFoundError(f"resume: no checkpoint at {ckpt}")
        _, meta = load_checkpoint(ckpt)
        require_kind(meta, (KIND,), ckpt, "--resume needs a toy-track checkpoint (toydiff toy train)")
        changed = [k for k in _RESUME_KEYS if meta.get(k) != trainer.metadata[k]]
        if changed:
            diff = "; ".join(f"{_RESUME_KEYS[k]} ({k}): {meta.get(k)!r} there, {trainer.metadata[k]!r} here"
                             for k in changed)
            raise CheckpointError(f"{ckpt} was trained with other settings ({diff}); --resume keeps a run's settings")
        trainer.load(ckpt)
    history = trainer.fit(progress=progress, checkpoint=ckpt, on_epoch=on_epoch)
    atomic_write_text(out / "history.json", json.dumps(history.to_dict(), indent=1))
    return history


def load_toy(path: str | Path) -> ToyRun:
    """Load a run written by :func:`train_toy` (a checkpoint file, or the folder holding one); its process is
    the one the metadata records (:func:`toydiff.processes.registry.process_from_dict`)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    tensors, meta = load_checkpoint(path)
    require_kind(meta, (KIND,), path, "it is not a toy-track checkpoint (toydiff toy train), which the toy track needs")
    try:
        ds = get_dataset(meta["dataset"])
        model = build_mlp(meta["model_config"])
        process = process_from_dict(meta)
        objective = objective_from_meta(meta)
        normalizer = Normalizer.from_dict(meta["normalizer"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: incomplete toy-track metadata ({e})") from None
    # the EMA weights when there are any: "ema." (or "ema.module.", torch's AveragedModel, in older files)
    prefix = next((p for p in ("ema.module.", "ema.") if any(k.startswith(p) for k in tensors)), "model.")
    load_weights(model, tensors, prefix, source=path, what="the toy MLP")
    return ToyRun(ds, process, normalizer, model.eval(), History.from_dict(meta["history"]), meta, objective)


def oracle_run(dataset: str | ToyDataset = "two_gaussians", process: Process | NoiseSchedule | None = None) -> ToyRun:
    """A run whose denoiser is the exact oracle (no training), normalised by the mixture's exact moments.

    ``process``: default DDPM over the data set's default recipe's schedule (the one a default run trains
    on); a NoiseSchedule means DDPM over it; any process object samples the oracle's prediction under it.
    """
    ds = get_dataset(dataset) if isinstance(dataset, str) else dataset
    if not ds.has_oracle:
        raise ValueError(f"dataset {ds.name!r} has no exact mixture: no oracle run")
    if process is None or isinstance(process, NoiseSchedule):
        process = build_process("vp", default_recipe(ds), schedule=process)
    return ToyRun(ds, process, Normalizer.from_mixture(ds.mixture))
