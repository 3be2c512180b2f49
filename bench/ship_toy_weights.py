"""Train the shipped toy checkpoints (the app's instant start) with each data set's default recipe, seed 0,
and keep only what sampling needs: the EMA weights and the metadata without optimiser / RNG state.

    PYTHONPATH=. python bench/ship_toy_weights.py two_gaussians 8gaussians     # 3 and 7 min on one busy core
    PYTHONPATH=. python bench/ship_toy_weights.py few_step/8gaussians          # the few-step run: ~1 min of CPU

Retrain them whenever a default recipe changes: tests/toydiff/test_integrity.py checks that every shipped
checkpoint's metadata is :func:`~toydiff.toy.recipes.default_recipe`'s (8gaussians retrains bit for bit).

Writes ``toydiff/toy/weights/<name>/checkpoint.safetensors`` and prints a table of size and losses. A name
``few_step/<data set>`` is the data set's few-step run (:data:`FEW_STEP`: flow-map distillation from the exact
teacher, the best measured few-step method, docs/flow.md), which the Labs page's few-step section shows beside the
exact map.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

from toydiff.training.checkpoint import load_checkpoint, save_checkpoint
from toydiff.toy.run import CHECKPOINT_NAME, load_toy, train_toy
from toydiff.threads import configure_threads

WEIGHTS = Path(__file__).resolve().parents[1] / "toydiff" / "toy" / "weights"
DROP_META = ("optimizer", "rng_states")
#: the shipped few-step runs' process keywords (``train_toy``'s), under ``weights/few_step/<data set>``
FEW_STEP = {"process": "jump", "objective": "distill", "teacher": "exact"}


def strip(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` keeping the ``ema.`` tensors and the metadata less optimiser / RNG state."""
    tensors, meta = load_checkpoint(src)
    keep = {k: v for k, v in tensors.items() if k.startswith("ema.")}
    return save_checkpoint(dst, keep, {k: v for k, v in meta.items() if k not in DROP_META})


def main(names: list[str]) -> None:
    configure_threads(1)
    print("| data set | seconds | size (kB) | held-out loss | floor |\n|---|---:|---:|---:|---:|")
    for name in names:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            few = name.startswith("few_step/")
            train_toy(name.removeprefix("few_step/"), out=tmp, progress=False, seed=0, **(FEW_STEP if few else {}))
            out = strip(Path(tmp) / CHECKPOINT_NAME, WEIGHTS / name / CHECKPOINT_NAME)
        h = load_toy(out).history
        print(f"| {name} | {time.perf_counter() - t0:.0f} | {out.stat().st_size / 1e3:.0f} | {h.val_loss[-1]:.4f} | "
              f"{h.floor:.4f} |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["two_gaussians", "8gaussians"])
