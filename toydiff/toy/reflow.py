"""One round of reflow on the toy track (Liu et al. 2023, "Flow Straight and Fast", the 2-rectified flow).

    pairs = reflow_pairs(run, 40_000, seed=1)               # (x_0 = ODE(x_1), x_1) with the trained model
    run2 = reflow(run, n_pairs=40_000, epochs=30)            # retrained on the coupled pairs
    straightness(run), straightness(run2)                    # mean ‖x_1 − x_0‖ / path length, 1 = straight

A flow-matching model's ODE maps each noise x_1 to a sample x_0. Training the same loss again, but with
each x_0 paired with *its* x_1 instead of an independent draw (the batches carry ``noise=``, which
:class:`~toydiff.processes.FlowObjective` uses as the coupling), gives a field whose paths cross less,
hence straighter, so few-step Euler loses less. The retrained network starts from the first model's weights
(as Liu et al. do). Everything is in the run's normalised units; the pairs are drawn with the run's own
sampler (default Heun, 32 steps) from x_1 seeded by ``seed``.

Which loss is which. The held-out loss a toy run records (``val_loss``) is the flow-matching loss on
*independent* pairs (x_0 held-out data points, x_1 ~ N(0, I) drawn apart): the 1-rectified objective, whose
minimiser is the exact marginal field and whose floor is that field's loss on the same draws (``history.floor``;
a floor for data-distributed x_0 only, which is why reflow scores it on data points, not on the model's own
x_0, which the oracle's field does not minimise).
Reflow minimises another loss, the one on *coupled* pairs (x_1 and the ODE's x_0 of it); its minimiser is the
straighter 2-rectified field, which predicts each pair's own x_1 − x_0 rather than E[x_1 − x_0 | x_t] under
independent pairs. So while reflow works, the independent held-out loss *rises* above its floor and the
coupled held-out loss (``coupled_val_loss``, on held-out coupled pairs, no closed-form floor) falls.
:func:`reflow` records both, before training and at every epoch.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import torch

from toydiff.checks import check_int
from toydiff.training.hooks import Callback, HeldOutLoss
from toydiff.training.checkpoint import run_lock
from toydiff.training.engine import TrainConfig
from toydiff.toy.recipes import default_recipe
from toydiff.toy.training import ToyTrainer

__all__ = ["reflow_pairs", "PairBatches", "reflow", "straightness", "COUPLED_KEYS"]

#: the history record keys of the held-out loss on coupled pairs (the reflow objective)
COUPLED_KEYS = ("coupled_val_loss", "coupled_val_by_bucket")


def reflow_pairs(run, n: int, *, seed: int = 1, method: str = "heun", steps: int = 32,
                 batch: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_0 [n, D], x_1 [n, D])`` float32 in model units: x_1 ~ N(0, I) from ``seed``, x_0 its image under
    the run's learned ODE (``method``, ``steps``)."""
    _require_flow(run)
    check_int(n, "n", min=1)
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(n, run.dataset.dim, generator=g, dtype=torch.float64)
    fn = run.denoiser_fn()
    x0 = torch.cat([run.process.sample(fn, x1[i:i + batch], method=method, steps=steps) for i in range(0, n, batch)])
    return x0.float(), x1.float()


class PairBatches:
    """Shuffled batches of coupled pairs: ``(x0[idx], {"noise": x1[idx]})``, a new permutation every epoch."""

    def __init__(self, x0: torch.Tensor, x1: torch.Tensor, batch_size: int):
        if x0.shape != x1.shape or x0.ndim < 2:
            raise ValueError(f"x0 and x1 must share a shape [N, *event], got {tuple(x0.shape)} and {tuple(x1.shape)}")
        self.x0, self.x1, self.batch_size = x0, x1, check_int(batch_size, "batch_size", min=1)
        self.steps_per_epoch = math.ceil(x0.shape[0] / batch_size)

    def epoch(self, epoch: int, start: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, dict]]:
        if start:
            raise ValueError("PairBatches cannot resume in the middle of an epoch")
        for idx in torch.randperm(self.x0.shape[0], generator=generator).split(self.batch_size):
            yield self.x0[idx], {"noise": self.x1[idx]}


def reflow(run, *, n_pairs: int = 40_000, epochs: int | None = None, config: TrainConfig | None = None,
           seed: int = 1, method: str = "heun", steps: int = 32, out: str | Path | None = None,
           progress: bool = False, source: str | None = None, losses: dict | None = None):
    """Retrain ``run`` (a flow :class:`~toydiff.toy.run.ToyRun` with a model) on ``n_pairs`` pairs of its own
    ODE (:func:`reflow_pairs`), starting from its weights; return the new run.

    ``config`` defaults to the data set's recipe with ``epochs`` (default a third of the recipe's, at least
    1) and a short warm-up; ``out``: a run folder (``checkpoint.safetensors``, ``history.json``) that
    :func:`~toydiff.toy.run.load_toy` reads like any flow run (its metadata names ``reflow_of``: ``source``).
    Every epoch's record also holds the held-out loss on coupled pairs (:data:`COUPLED_KEYS`); ``losses``, if
    given, is filled with :func:`_loss_summary`'s: both held-out losses before and after, and the floor.
    """
    from toydiff.toy.run import CHECKPOINT_NAME, ToyRun

    _require_flow(run)
    if run.model is None:
        raise ValueError("run has no trained model (an oracle run): reflow retrains a trained flow model")
    recipe = default_recipe(run.dataset)
    if config is None:
        config = recipe.train_config(epochs=epochs or max(1, recipe.epochs // 3), seed=seed, warmup_steps=10)
    elif epochs is not None:
        config = replace(config, epochs=check_int(epochs, "epochs", min=1))
    x0, x1 = reflow_pairs(run, n_pairs, seed=seed, method=method, steps=steps)
    n_val = max(1, min(2_000, n_pairs // 10))
    model = type(run.model)(run.model.config)
    model.load_state_dict(run.model.state_dict())
    meta = {**{k: v for k, v in run.metadata.items() if k in ("dataset", "model_config", "normalizer")},
            "reflow_of": source, "reflow_pairs": n_pairs, "reflow_sampler":
            f"{method}, {steps} steps", "n_train": n_pairs - n_val, "n_val": n_val, "data_seed": seed,
            "fresh_data": False}
    # the pairs are coupled: each x_0 has its own x_1
    objective = run.training_objective.with_target("conditional")
    # held out: data points (the independent-pairs loss next to the oracle's floor, valid for data-distributed
    # x_0 only) and the coupled pairs x0[:n_val], x1[:n_val] (the reflow objective); neither touches training
    data_val = run.normalizer.forward(run.dataset.sample(n_val, torch.Generator().manual_seed(seed + 2)).double())
    trainer = ToyTrainer(model, objective, x0[n_val:], data_val.to(x0.dtype), config, oracle=run.oracle,
                         metadata=meta, data=PairBatches(x0[n_val:], x1[n_val:], config.batch_size))
    start = _track_coupled_loss(trainer, objective, x0[:n_val], x1[:n_val])
    if out is None:
        history = trainer.fit(progress=progress)
    else:
        out = Path(out)
        with run_lock(out):
            history = trainer.fit(progress=progress, checkpoint=out / CHECKPOINT_NAME)
            import json

            from toydiff.outputs import atomic_write_text

            atomic_write_text(out / "history.json", json.dumps(history.to_dict(), indent=1))
    if losses is not None:
        losses.update(_loss_summary(history, start))
    return ToyRun(run.dataset, run.process, run.normalizer, trainer.eval_model.eval(), history,
                  dict(trainer.metadata) | objective.metadata(), objective)


def _track_coupled_loss(trainer: ToyTrainer, objective, x0_val: torch.Tensor, x1_val: torch.Tensor) -> dict:
    """Add to ``trainer`` the held-out loss on the coupled pairs ``(x0_val, x1_val)`` ([n_val, D] each, at the
    held-out times), recorded per epoch under :data:`COUPLED_KEYS`; return both held-out losses of the starting
    (1-rectified) model. Evaluation only: no random draw, training unchanged."""
    held = trainer.held_out
    coupled = HeldOutLoss(x0_val, held.t, x1_val, n_buckets=held.n_buckets, keys=COUPLED_KEYS)

    def keep(trainer_, stats) -> None:  # after the toy record of the epoch is appended
        trainer_.history.records[-1].update({k: stats.record[k] for k in COUPLED_KEYS})

    trainer.hooks.extend([coupled, Callback(on_epoch_end=keep)])
    fn = objective.network_fn(trainer.eval_model.eval())
    return {"independent": held.evaluate(fn, objective)[0], "coupled": coupled.evaluate(fn, objective)[0]}


def _loss_summary(history, start: dict) -> dict:
    """The held-out losses of the model before (1-rectified) and after reflow: on independent pairs (the
    1-rectified objective, next to its floor: the exact marginal field's loss on the same draws) and on coupled
    pairs (the reflow objective, no closed-form floor)."""
    last = history.records[-1]
    return {"independent": {"before": start["independent"], "after": last["val_loss"], "floor": history.floor},
            "coupled": {"before": start["coupled"], "after": last[COUPLED_KEYS[0]], "floor": None},
            "coupled_by_epoch": [r[COUPLED_KEYS[0]] for r in history.records]}


def straightness(run, n: int = 2_000, *, seed: int = 0, steps: int = 128, exact: bool = False) -> float:
    """Mean over ``n`` paths of ‖x_1 − x_0‖ / (length of the path of the run's ODE from x_1 to x_0), in model
    units: 1 for straight paths (Liu et al. 2023). Paths by Heun with ``steps`` steps from x_1 seeded ``seed``."""
    _require_flow(run)
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(check_int(n, "n", min=1), run.dataset.dim, generator=g, dtype=torch.float64)
    length = torch.zeros(n, dtype=torch.float64)

    def add(info: dict) -> None:
        length.add_((info["x_prev"] - info["x_t"]).flatten(1).norm(dim=1))

    x0 = run.process.sample(run.denoiser_fn(exact), x1, method="heun", steps=steps, callback=add)
    return float(((x0 - x1).flatten(1).norm(dim=1) / length).mean())


def _require_flow(run) -> None:
    """Reflow needs an ODE over continuous time whose objective takes coupled noise (``with_target``)."""
    if run.schedule is not None or not hasattr(run.training_objective, "with_target"):
        raise ValueError(f"run must be a flow run (toydiff toy train --process flow), not {run.process.describe()}: "
                         "reflow straightens a flow")
