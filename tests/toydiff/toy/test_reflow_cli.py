"""``toydiff toy reflow``: which held-out loss it prints, next to which floor, and its loss figure."""

import json

from toydiff.cli import main as toydiff_main
from toydiff.toy.models import MLPConfig
from toydiff.toy.run import train_toy
from toydiff.training.engine import TrainConfig


def test_reflow_prints_both_held_out_losses_with_the_floor_and_writes_loss_png(tmp_path, capsys):
    run = tmp_path / "fm"
    train_toy("two_gaussians", config=TrainConfig(epochs=2, warmup_steps=2), out=run, process="flow",
              model_config=MLPConfig(dim=1, width=16, depth=1), n_train=600, n_val=200, progress=False)
    out = tmp_path / "rf"
    code = toydiff_main(["toy", "reflow", "--run", str(run), "--out", str(out), "--pairs", "600", "--epochs", "2",
                         "--pair-steps", "4", "--n", "200", "--quiet"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert (out / "loss.png").stat().st_size > 10_000
    assert "independent pairs" in text and "coupled pairs" in text and "floor" in text, text
    records = json.loads((out / "history.json").read_text())
    rec, floor = records["records"], records["floor"]
    assert [r["epoch"] for r in rec] == [1, 2] and all(r["coupled_val_loss"] > 0 for r in rec)
    # the floor (the exact marginal field on the same held-out data draws) lies below the model's loss there
    assert floor is not None and all(r["val_loss"] > floor for r in rec)
    assert f"{floor:.4f}" in text and f"{rec[-1]['val_loss']:.4f}" in text and f"{rec[-1]['coupled_val_loss']:.4f}" in text
