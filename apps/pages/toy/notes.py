"""The Toy sandbox's explanatory texts, computed from the run they describe (its checkpoint metadata and its
loss history) rather than from what a default run would show: whether a model is the default recipe, why its
train and held-out losses differ, and honest plurals."""

from __future__ import annotations

import numpy as np

from toydiff.toy.recipes import Recipe

__all__ = ["plural", "recipe_differences", "recipe_phrase", "loss_gap_note"]


def plural(n: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``, ``1,000 points``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _used(meta: dict) -> dict:
    """The recipe fields a run's metadata records: ``{field: value}``."""
    cfg, m = meta.get("config", {}), meta.get("model_config", {})
    out = {k: cfg[k] for k in ("epochs", "batch_size", "lr", "t_sampling", "ema_decay", "ema_warmup", "lr_schedule",
                               "min_lr_ratio") if k in cfg}
    out |= {k: m[k] for k in ("width", "depth", "activation", "time_input") if k in m}
    if "n_train" in meta:
        out["n_train"] = meta["n_train"]
    sched = meta.get("schedule", {})
    if "name" in sched:
        out["schedule_name"] = sched["name"]
    return out


def recipe_differences(meta: dict, recipe: Recipe) -> dict[str, tuple]:
    """``{field: (this run's value, the recipe's)}`` for every recorded field where the run differs from ``recipe``."""
    diff = {}
    for k, v in _used(meta).items():
        r = getattr(recipe, k)
        same = np.isclose(float(v), float(r)) if isinstance(r, float) and not isinstance(r, bool) else v == r
        if not same:
            diff[k] = (v, r)
    return diff


def recipe_phrase(meta: dict, recipe: Recipe) -> str:
    """"the default recipe" when the run's metadata matches it, else what differs from it."""
    diff = recipe_differences(meta, recipe)
    if not diff:
        return "the default recipe"
    return "the default recipe except " + ", ".join(f"{k} = {v!r} (recipe: {r!r})" for k, (v, r) in diff.items())


def loss_gap_note(meta: dict, train_loss: float, val_loss: float, by_bucket=None) -> str:
    """Why this run's final train and held-out losses differ (or barely do), from its metadata: the train loss
    averages over the run's training t-distribution with the live weights, the held-out over uniform t with
    the EMA weights. ``by_bucket``: the last epoch's held-out loss per t bucket (small t first), which says
    whether the smallest t — the ones "low-noise" oversamples — cost more or less than the average."""
    t_sampling = meta.get("config", {}).get("t_sampling", "uniform")
    gap = train_loss - val_loss
    rel = abs(gap) / max(abs(val_loss), 1e-12)
    where = "above" if gap > 0 else "below"
    size = (f"Here train sits {abs(gap):.4f} {where} held-out ({rel:.0%})" if rel >= 0.01 else
            f"Here they nearly agree (train {where} held-out by {abs(gap):.2g}, under 1 %)")
    if t_sampling == "uniform":
        why = ("this run drew t uniformly, like the held-out loss, so the difference is the weights (live, changing "
               "within the epoch, against the EMA average) and batch noise")
    else:
        b = None if by_bucket is None else np.asarray(by_bucket, dtype=float)
        cost = "" if b is None or not len(b) else (
            f"; the smallest-t bucket's held-out loss, {b[0]:.3g}, is {'above' if b[0] > b.mean() else 'below'} "
            f"its average over t, {b.mean():.3g}")
        why = (f"this run drew t by “{t_sampling}” (more of the smallest t{cost}) while the held-out loss uses "
               "uniform t; the weights differ too (live against the EMA average)")
    return (f"**Why train and held-out losses differ.** {size}: {why}. The held-out loss is the same measure as the "
            "floor: compare held-out with the floor, not train with either.")
