"""What a user sets for an MNIST training run (:class:`TrainConfig`) and what a run records (:class:`History`).

Every :class:`TrainConfig` field carries its command-line flag in its metadata (:func:`toydiff.options.option`);
:func:`add_config_arguments` generates the ``toydiff mnist train`` flags from the fields and
:func:`config_from_args` reads them back, so a field cannot lack a flag nor be mapped twice.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from toydiff import training as engine
from toydiff.checks import check_choice, check_int, check_number
from toydiff.options import MAX_SEED, device_arg, flag_names, float_list, int_list, seed_arg
from toydiff.training.losses import LOSS_WEIGHTINGS
from toydiff.training.lr import LR_SCHEDULES
from toydiff.options import add_dataclass_arguments, dataclass_values, flag_of, option
from toydiff.processes.base import Process
from toydiff.processes.interpolants import BUILDERS as INTERPOLANTS, PREDICTIONS
from toydiff.processes.registry import PROCESSES, all_methods
from toydiff.processes.schedules import from_name
from toydiff.training.stable_target import TARGETS

from image_track.models import PRESETS

__all__ = ["TrainConfig", "History", "SCHEDULES", "LR_DECAYS", "DATASETS", "RESUME_FIXED", "PROCESS_FIELDS",
           "add_config_arguments", "config_from_args", "engine_config", "config_changes", "build_process",
           "unread_flags"]

SCHEDULES = ("linear", "cosine", "sigmoid")
LR_DECAYS = LR_SCHEDULES
DATASETS = ("mnist", "fashion_mnist")
SAMPLE_METHODS = all_methods()


def _json_dict(text: str) -> dict:
    try:
        d = json.loads(text)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}") from None
    if not isinstance(d, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return d


@dataclass
class TrainConfig:
    """Everything one training run depends on; stored in every checkpoint.

    ``batch_size`` is the global batch (split evenly over DDP processes). ``max_steps`` (if set) overrides
    ``epochs`` as the length of the run and of the learning-rate schedule; ``minutes`` only stops early.
    """

    preset: str = option("tiny", "UNet preset", choices=tuple(PRESETS))
    num_classes: int | None = option(None, "class-conditional with this many classes, 10 for MNIST (default: unconditional)", type=int)
    model_overrides: dict = option({}, "UNet preset overrides as JSON, e.g. '{\"widths\": [8, 16, 16]}'",
                                   type=_json_dict)
    schedule: str = option("linear", "noise schedule (--process vp)", choices=SCHEDULES)
    process: str = option("vp", "vp: DDPM's ε-prediction; flow: flow matching (toydiff.processes' registry)",
                          choices=PROCESSES)
    interpolant: str = option("linear", "--process flow: the path x_t = α x_0 + σ ε", choices=tuple(INTERPOLANTS))
    prediction: str = option("velocity", "--process flow: what the network predicts", choices=PREDICTIONS)
    target: str = option("conditional", "regress on each pair's own target, or on the stable target field over the "
                         "batch (stf, Xu et al. 2023: less gradient noise at high noise; unconditional only)",
                         choices=TARGETS)
    T: int = option(1000, "diffusion steps (--process vp)")
    # data
    dataset: str = option("mnist", "data set", choices=DATASETS)
    data_dir: str | None = option(None, "folder holding the data (default: the package's)", type=str)
    train_split: str = option("train55k", "training split")
    val_split: str | None = option("val5k", "validation split (see also --no-val)", type=str)
    subset: int | None = option(None, "train on the first N images only (default: all)", type=int)
    val_size: int | None = option(2000, "validation images", type=int)
    pad_to_32: bool = option(False, "pad the 28x28 images to 32x32")
    hflip: bool = option(False, "random horizontal flips (FashionMNIST; they change digits)")
    # optimisation
    epochs: int = option(1, "passes over the training set")
    max_steps: int | None = option(None, "run length in steps, overriding --epochs (default: --epochs)", type=int)
    batch_size: int = option(128, "global batch (split over DDP processes)")
    lr: float = option(2e-3, "peak learning rate (AdamW)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    betas: tuple[float, float] = option((0.9, 0.999), "AdamW betas, e.g. 0.9,0.999", type=float_list)
    warmup_steps: int = option(200, "linear warm-up steps")
    lr_decay: str = option("cosine", "decay after warm-up", choices=LR_DECAYS)
    min_lr_ratio: float = option(0.05, "cosine floor, as a fraction of --lr")
    lr_gamma: float = option(0.9995, "exponential decay per step after warm-up")
    grad_clip: float | None = option(1.0, "max gradient norm; 0 disables clipping", zero_is_none=True)
    ema_decay: float = option(0.999, "EMA decay (with warm-up (1+k)/(10+k))")
    loss_weighting: str = option("uniform", "min-snr: Min-SNR-γ weights (Hang et al. 2023)", choices=LOSS_WEIGHTINGS)
    min_snr_gamma: float = option(5.0, "γ of the Min-SNR weights")
    p_uncond: float = option(0.1, "label dropout for classifier-free guidance")
    seed: int = option(0, "seeds weights, data order, t, noise, dropout, flips", type=seed_arg)
    # hardware
    device: str = option("auto", "auto: CUDA (the local rank's GPU) when available, else CPU", type=device_arg)
    amp: bool = option(True, "bf16 autocast where it is fast: CUDA, or a CPU with AMX", flag="--no-amp")
    channels_last: bool = option(True, "channels_last memory format (also faster on CPU)")
    compile: bool = option(False, "torch.compile the network")
    # outputs
    out_dir: str | None = option(None, "output folder (checkpoint.safetensors, history.json, grids)", flag="--out",
                                 type=str, required=True)
    checkpoint_every: int | None = option(None, "also checkpoint every N steps (always at epoch ends; default: only there)", type=int)
    snapshot_steps: tuple[int, ...] = option((), "also write the EMA weights alone at these steps, e.g. a weak "
                                             "model for autoguidance", type=int_list)
    sample_every_epoch: bool = option(True, "a sample grid per epoch", flag="--no-samples")
    sample_method: str = option("ddim", "sampler of the per-epoch grids (a flow run given a DDPM-only one: heun)",
                                choices=SAMPLE_METHODS)
    sample_steps: int = option(50, "sampler steps of the per-epoch grids")
    sample_w: float = option(3.0, "guidance scale of the per-epoch grids (conditional)")
    grid_rows: int = option(10, "rows (and columns) of the per-epoch grids")
    n_buckets: int = option(10, "equal-width t buckets of the loss split")
    minutes: float | None = option(None, "stop cleanly (and checkpoint) after this many minutes (default: no limit)", type=float)
    resume: str | None = option(None, "training checkpoint to continue from (default: a fresh run)", type=str)
    progress: bool = option(True, "progress bar")

    def __post_init__(self):
        self.betas = tuple(self.betas)
        self.snapshot_steps = tuple(self.snapshot_steps)
        for i, v in enumerate(self.snapshot_steps):
            check_int(v, f"snapshot_steps[{i}]", min=1)
        check_choice(self.schedule, "schedule", SCHEDULES)
        check_choice(self.dataset, "dataset", DATASETS)
        check_choice(self.lr_decay, "lr_decay", LR_DECAYS)
        check_choice(self.loss_weighting, "loss_weighting", LOSS_WEIGHTINGS)
        check_choice(self.preset, "preset", tuple(PRESETS))
        check_choice(self.sample_method, "sample_method", SAMPLE_METHODS)
        check_choice(self.process, "process", PROCESSES)
        check_choice(self.interpolant, "interpolant", tuple(INTERPOLANTS))
        check_choice(self.prediction, "prediction", PREDICTIONS)
        if check_choice(self.target, "target", TARGETS) == "stf" and self.num_classes is not None:
            raise ValueError("target 'stf' averages the target over the whole batch, so it needs an unconditional "
                             "model (no --num-classes / --conditional)")
        check_number(self.sample_w, "sample_w")
        check_int(self.seed, "seed", min=0, max=MAX_SEED)
        if len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers, got {self.betas!r}")
        for name in ("batch_size", "epochs", "T", "n_buckets", "grid_rows", "sample_steps"):
            check_int(getattr(self, name), name, min=1)
        check_int(self.sample_steps, "sample_steps", max=self.T)
        for name in ("max_steps", "subset", "val_size", "checkpoint_every", "num_classes"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, min=1)
        check_number(self.p_uncond, "p_uncond", min=0.0)
        if not self.p_uncond < 1.0:
            raise ValueError(f"p_uncond must lie in [0, 1), got {self.p_uncond!r}")
        if self.minutes is not None and not check_number(self.minutes, "minutes") > 0:
            raise ValueError(f"minutes must be positive, got {self.minutes!r}")
        if not isinstance(self.model_overrides, dict):
            raise TypeError(f"model_overrides must be a dict, got {type(self.model_overrides).__name__}")
        engine_config(self)  # the optimisation fields, checked by the engine
        self.objective()  # the process's own checks (e.g. a flow objective trains with uniform weights only)

    def process_object(self) -> Process:
        """The run's process (:func:`build_process`)."""
        return build_process(self)

    def objective(self, device=None):
        """The run's objective: ``process.objective(...)`` with the t sampling, loss weights and target."""
        return self.process_object().objective(
            t_sampling=engine_config(self).t_sampling, loss_weighting=self.loss_weighting,
            min_snr_gamma=self.min_snr_gamma, target=self.target, device=device)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


#: the fields a ``--resume`` must keep (they shape the run's trajectory); the others (length, time budget,
#: outputs, hardware, validation) may change
RESUME_FIXED = ("preset", "num_classes", "model_overrides", "schedule", "T", "dataset", "train_split", "subset",
                "pad_to_32", "hflip", "batch_size", "lr", "weight_decay", "betas", "warmup_steps", "lr_decay",
                "min_lr_ratio", "lr_gamma", "grad_clip", "ema_decay", "loss_weighting", "min_snr_gamma", "p_uncond",
                "seed")


def config_changes(there: dict, here: "TrainConfig") -> list[str]:
    """The :data:`RESUME_FIXED` fields in which a checkpoint's config ``there`` differs from ``here``, each as
    ``"--flag OLD there, NEW here"`` (fields missing from an older checkpoint take their defaults)."""
    now, flags = here.to_dict(), {f.name: flag_of(f) for f in fields(TrainConfig)}
    old = {f.name: json.loads(json.dumps(_field_default(f))) for f in fields(TrainConfig)} | dict(there)
    return [f"{flags[k]} {old.get(k)!r} there, {now[k]!r} here" for k in RESUME_FIXED if old.get(k) != now[k]]


def _field_default(f):
    return f.default_factory() if f.default_factory is not MISSING else f.default


def engine_config(c: TrainConfig) -> engine.TrainConfig:
    """The optimisation part, for :class:`toydiff.training.Trainer` (EMA with warm-up, cosine to a floor)."""
    return engine.TrainConfig(
        epochs=c.epochs, max_steps=c.max_steps, batch_size=c.batch_size, lr=c.lr, weight_decay=c.weight_decay,
        betas=c.betas, warmup_steps=c.warmup_steps, lr_schedule=c.lr_decay, min_lr_ratio=c.min_lr_ratio,
        lr_gamma=c.lr_gamma, ema_decay=c.ema_decay, ema_warmup=True, grad_clip=c.grad_clip, n_buckets=c.n_buckets,
        loss_weighting=c.loss_weighting, min_snr_gamma=c.min_snr_gamma, checkpoint_every=c.checkpoint_every,
        seed=c.seed)


#: the process flags of :class:`TrainConfig` and the metadata key (:meth:`Process.to_dict
#: <toydiff.processes.base.Process.to_dict>`) through which a process reads each: Min-SNR weights are a function
#: of a discrete schedule's SNR, and ``T`` its length
PROCESS_FIELDS = {"schedule": "schedule", "T": "schedule", "loss_weighting": "schedule", "min_snr_gamma": "schedule",
                  "interpolant": "interpolant", "prediction": "prediction"}


class _RunMetadata(Mapping):
    """The run's process keys, each built when a process class reads it (a flow run never builds a schedule)."""

    def __init__(self, c: TrainConfig):
        self._build = {"process": lambda: c.process, "schedule": lambda: from_name(c.schedule, T=c.T).to_dict(),
                       "interpolant": lambda: INTERPOLANTS[c.interpolant]().to_dict(), "prediction": lambda: c.prediction}

    def __getitem__(self, key: str):
        return self._build[key]()

    def __iter__(self):
        return iter(self._build)

    def __len__(self) -> int:
        return len(self._build)


def build_process(c: TrainConfig) -> Process:
    """The process named ``c.process`` (:data:`toydiff.processes.PROCESSES`), built by its class's ``from_dict``
    from the run's metadata: each class reads the keys it knows (a schedule, an interpolant and prediction…)."""
    return PROCESSES[check_choice(c.process, "process", PROCESSES)].from_dict(_RunMetadata(c))


def unread_flags(c: TrainConfig, given) -> list[str]:
    """The fields among ``given`` (typed on the command line) that the run's process does not read, as
    ``"--flag"`` lines: a process field whose metadata key its ``to_dict()`` lacks, or a ``--sample-method``
    outside its ``methods``. The one place that asks the process which flags it reads."""
    process = c.process_object()
    keys, flags = process.to_dict(), {f.name: flag_of(f) for f in fields(TrainConfig)}
    unread = [f"{flags[k]} (it has no {PROCESS_FIELDS[k]})" for k in PROCESS_FIELDS
              if k in given and PROCESS_FIELDS[k] not in keys]
    if "sample_method" in given and c.sample_method not in process.methods:
        unread.append(f"--sample-method {c.sample_method} (it samples with {', '.join(process.methods)})")
    return unread


#: the namespace attribute holding the config fields whose flags were typed (see :func:`add_config_arguments`)
GIVEN = "given_config_fields"
_RECORDING: dict[type, type] = {}


def _recording(action_cls: type) -> type:
    """``action_cls`` that also notes its dest in the namespace's :data:`GIVEN` set when its flag is typed."""
    if action_cls not in _RECORDING:
        def __call__(self, parser, namespace, values, option_string=None):
            action_cls.__call__(self, parser, namespace, values, option_string)
            given = set(getattr(namespace, GIVEN, ()))
            setattr(namespace, GIVEN, given | {self.dest})

        _RECORDING[action_cls] = type(f"Recorded{action_cls.__name__}", (action_cls,), {"__call__": __call__})
    return _RECORDING[action_cls]


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per :class:`TrainConfig` field (dest = the field's name), plus the shorthands
    ``--conditional`` (``--num-classes 10``) and ``--no-val`` (no validation split). The flags typed are
    noted (:data:`GIVEN`), so :func:`config_from_args` can refuse one the run's process would ignore."""
    add_dataclass_arguments(p, TrainConfig)
    names = {f.name for f in fields(TrainConfig)}
    for action in p._actions:
        if action.dest in names:
            action.__class__ = _recording(type(action))
    p.add_argument("--conditional", action="store_true", help="shorthand for --num-classes 10")
    p.add_argument("--no-val", action="store_true", help="no validation split")
    p.add_argument("--overwrite", action="store_true",
                   help="train into an --out that already holds a checkpoint, replacing it (without it, and "
                        "without --resume, such an --out is refused)")


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed flags; a typed flag the run's process does not read (``--interpolant``
    of a DDPM run, ``--T`` or ``--schedule`` of a flow run, a ``--sample-method`` it lacks) is a ValueError."""
    values = dataclass_values(a, TrainConfig)
    if a.conditional and values["num_classes"] is None:
        values["num_classes"] = 10
    if a.no_val:
        values["val_split"] = None
    try:
        config = TrainConfig(**values)
    except (TypeError, ValueError) as e:  # name the flag, not the field (engine fields under their image names)
        flags = {f.name: flag_of(f) for f in fields(TrainConfig)} | {"lr_schedule": "--lr-decay"}
        raise ValueError(flag_names(str(e), flags)) from None
    unread = unread_flags(config, getattr(a, GIVEN, set()))
    if unread:
        raise ValueError(f"--process {config.process} ({config.process_object().describe()}) ignores "
                         f"{'; '.join(unread)}: leave it out")
    return config


@dataclass
class History:
    """What a run records. ``epochs``: one dict per finished (or interrupted) epoch with train/val loss,
    loss by t bucket, learning rate and throughput; ``step_losses``: the training loss at every step."""

    config: dict
    epochs: list[dict] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    step: int = 0
    epoch: int = 0
    train_seconds: float = 0.0
    images_seen: int = 0
    stopped: str = "finished"
    checkpoint: str | None = None
    device: str = "cpu"
    world_size: int = 1

    model: Any = field(default=None, repr=False, compare=False)
    ema_model: Any = field(default=None, repr=False, compare=False)

    @property
    def images_per_s(self) -> float:
        return self.images_seen / self.train_seconds if self.train_seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("model", "ema_model")}
        d = copy.deepcopy(d)
        d["images_per_s"] = self.images_per_s
        return d

    def load_dict(self, d: dict) -> None:
        """Continue the record of a resumed run (this run's config, device and world size stay)."""
        self.epochs, self.step_losses = d.get("epochs", []), d.get("step_losses", [])
        self.train_seconds, self.images_seen = d.get("train_seconds", 0.0), d.get("images_seen", 0)
