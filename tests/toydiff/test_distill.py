"""Progressive distillation (toydiff.training.distill): the round's target against the teacher's own sampler."""

import pytest
import torch
from torch import nn

import toydiff as td
from toydiff.processes import interpolants
from toydiff.processes.flow import InterpolantProcess
from toydiff.processes.vp import VPProcess
from toydiff.training.distill import ProgressiveDistillation, ddim_move, distil, halving_rounds
from toydiff.training.engine import TensorBatches, TrainConfig, Trainer

GM = td.GaussianMixture([0.3, 0.7], [[-1.5, 0.0], [1.0, 0.5]], [[[0.1, 0], [0, 0.2]], [[0.3, 0.1], [0.1, 0.2]]])
PROCESSES = {"vp": VPProcess(td.schedules.linear(T=1000)), "flow": InterpolantProcess(interpolants.linear())}


@pytest.mark.parametrize("name", PROCESSES)
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_target_step_lands_on_the_teachers_two_sampler_steps(name, steps):
    """One DDIM step with the x-target from each student boundary = two steps of the teacher's own sampler
    (its 2N-step grid, run by process.sample): catches a grid that does not nest or a shifted step pairing."""
    proc = PROCESSES[name]
    exact = proc.exact_fn(GM)
    obj = ProgressiveDistillation(proc, exact, steps)
    xs = []
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    final = proc.sample(exact, x_T, **proc.step_options(2 * steps), callback=lambda d: xs.append(d["x_t"]))
    xs.append(final)  # xs[k]: the state before teacher step k; xs[2N]: the result
    for i in range(steps):
        idx = torch.full((64,), i)
        t, _, s = obj._times(idx, x_T)
        x_tilde = obj.target(xs[2 * i], idx)
        torch.testing.assert_close(ddim_move(proc, xs[2 * i], x_tilde, t, s), xs[2 * i + 2], rtol=1e-7, atol=1e-7)
        # the neighbouring teacher states are not where it lands (the test can fail)
        assert not torch.allclose(ddim_move(proc, xs[2 * i], x_tilde, t, s), xs[2 * i + 1], atol=1e-3)
    # a student whose x_0 estimate is the target reproduces the 2N-step teacher at N steps through the sampler
    if steps == 1:
        torch.testing.assert_close(obj.target(x_T, torch.zeros(64, dtype=torch.long)), final, rtol=1e-7, atol=1e-7)


def test_loss_is_zero_for_the_exact_two_step_student_and_errors():
    proc = PROCESSES["flow"]
    exact = proc.exact_fn(GM)
    obj = ProgressiveDistillation(proc, exact, 1)  # 1 step from t = 1: the student must give the 2-step result
    x0 = GM.sample(32, torch.Generator().manual_seed(1))
    loss, terms = obj.loss(lambda x, t: exact(x, t / proc.time_scale), x0, generator=torch.Generator().manual_seed(2))
    assert float(loss) > 1e-3 and terms.per_sample.shape == (32,)  # the exact field at 1 step is not its 2-step map
    with pytest.raises(ValueError, match="weighting"):
        ProgressiveDistillation(proc, exact, 2, weighting="min-snr")
    with pytest.raises(ValueError, match="steps"):
        ProgressiveDistillation(proc, exact, 0)
    with pytest.raises(TypeError, match="teacher_fn"):
        ProgressiveDistillation(proc, None, 2)
    with pytest.raises(ValueError, match="linear path"):
        ProgressiveDistillation(InterpolantProcess(interpolants.cosine()), exact, 2)
    with pytest.raises(ValueError, match="divisible"):
        halving_rounds(12, 3)
    assert halving_rounds(8, 3) == [(8, 4), (4, 2), (2, 1)]


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 32), nn.SiLU(), nn.Linear(32, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, t.float()[:, None] / 1000], 1))


def test_rounds_train_resume_and_record_the_teacher(tmp_path):
    """Two rounds 4 → 2 → 1 through the engine: checkpoints record the round and its teacher, a resume of a
    finished round trains nothing, a changed teacher is refused."""
    proc = PROCESSES["vp"]
    x = GM.sample(128, torch.Generator().manual_seed(3)).float()
    teacher = _Tiny()
    config = TrainConfig(max_steps=6, batch_size=64, lr=3e-3, ema_decay=None, seed=0)
    trainers = []

    def make(student, objective, path):
        trainers.append(Trainer(student, objective, TensorBatches(x, 64), config, checkpoint=path))
        return trainers[-1]

    student = distil(teacher, proc, make, start_steps=4, rounds=2, teacher_sha256="abc", out=tmp_path)
    assert isinstance(student, _Tiny) and len(trainers) == 2
    from toydiff.training.checkpoint import load_checkpoint

    _, meta = load_checkpoint(tmp_path / "round2_1steps.safetensors")
    d = meta["distilled"]
    assert (d["round"], d["steps"], d["teacher_steps"], meta["step"]) == (2, 1, 2, 6)
    assert d["sampler"] == {"method": "ddim", "steps": 1, "spacing": "trailing"} and len(d["teacher_sha256"]) == 64
    _, meta1 = load_checkpoint(tmp_path / "round1_2steps.safetensors")
    assert meta1["distilled"]["teacher_sha256"] == "abc"
    first = [trainers[0].history.records, trainers[0].step]
    trainers.clear()
    distil(teacher, proc, make, start_steps=4, rounds=2, teacher_sha256="abc", out=tmp_path, resume=True)
    assert trainers[0].step == 6 == first[1]  # loaded, nothing retrained
    from toydiff.training.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="another distillation round"):
        distil(teacher, proc, make, start_steps=4, rounds=2, teacher_sha256="other", out=tmp_path, resume=True)
