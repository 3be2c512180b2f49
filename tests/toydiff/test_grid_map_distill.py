"""Flow-map distillation onto the student's grid (toydiff.training.distill.GridMapDistillation, teacher_paths):
the paths are the teacher's sampler run, the target step lands on the path, a student learns the map."""

import pytest
import torch
from torch import nn

import toydiff as td
from toydiff.processes import interpolants
from toydiff.processes.base import CheckpointMismatch
from toydiff.processes.flow import InterpolantProcess
from toydiff.processes.vp import VPProcess
from toydiff.training.distill import GridMapDistillation, ddim_move, one_step_x_target, teacher_paths
from toydiff.training.engine import TensorBatches, TrainConfig, Trainer

GM = td.GaussianMixture([0.3, 0.7], [[-1.5, 0.0], [1.0, 0.5]], [[[0.1, 0], [0, 0.2]], [[0.3, 0.1], [0.1, 0.2]]])
PROCESSES = {"vp": VPProcess(td.schedules.linear(T=1000)), "flow": InterpolantProcess(interpolants.linear())}
TIMES = {"vp": [999, 749, 499, 249, -1], "flow": [1.0, 0.75, 0.5, 0.25, 0.0]}


def _x_T(n=64, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("name", PROCESSES)
def test_paths_are_the_teachers_sampler_run_at_the_times(name):
    """Column 0 is x_T, the last column the sampler's result, a middle column the state the sampler passes at that
    time (recorded independently here): a path kept at the wrong step or backwards fails."""
    proc, times = PROCESSES[name], TIMES[name]
    exact, x_T = proc.exact_fn(GM), _x_T()
    paths = teacher_paths(proc, exact, x_T, times, method="dpm++2m", steps=8, clip_x0=None)
    assert paths.shape == (64, 5, 2) and paths.dtype == torch.float32
    seen = {}
    final = proc.sample(exact, x_T, **(proc.step_options(8) | {"method": "dpm++2m"}),
                        callback=lambda d: seen.setdefault(float(d["t"]), d["x_t"].clone()))
    torch.testing.assert_close(paths[:, 0], x_T.float())
    torch.testing.assert_close(paths[:, -1], final.float())
    for k in (1, 2, 3):
        torch.testing.assert_close(paths[:, k], seen[float(times[k])].float())
        assert not torch.allclose(paths[:, k], paths[:, k + 1], atol=1e-2)


@pytest.mark.parametrize("name", PROCESSES)
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_target_step_lands_on_the_path_and_the_loss_is_zero_for_the_teachers_own_grid(name, steps):
    """With paths run by the student's own sampler (DDIM / Euler on its N-step grid) the teacher IS the perfect
    student: zero loss and zero jump errors; the same teacher against 16-step DPM++ paths is not."""
    proc = PROCESSES[name]
    exact = proc.exact_fn(GM)
    obj = GridMapDistillation(proc, steps, TIMES[name])
    opts = proc.step_options(steps)
    fn = exact if name == "vp" else (lambda x, t: exact(x, t / proc.time_scale))  # the sampler's view → the model's
    grid = proc.step_grid(steps)
    own_times = [grid[0][0]] + [s for _, s in grid]
    own_obj = GridMapDistillation(proc, steps, own_times)
    own = teacher_paths(proc, exact, _x_T(), own_times, method=opts["method"], steps=steps, clip_x0=None).double()
    loss, terms = own_obj.loss(fn, own, generator=torch.Generator().manual_seed(1))
    assert terms.per_sample.shape == (64,) and float(loss) < 1e-10
    assert float(own_obj.jump_errors(exact, own).max()) < 1e-6
    fine = teacher_paths(proc, exact, _x_T(), TIMES[name], method="dpm++2m", steps=16, clip_x0=None).double()
    assert float(obj.jump_errors(exact, fine).max()) > 1e-3
    # the x-target's one step lands on the path's next column; from the wrong column it does not
    for j in range(steps):
        t, s = obj.starts[j].repeat(64), obj.ends[j].repeat(64)
        z_t, z_s = fine[:, int(obj.col_t[j])], fine[:, int(obj.col_s[j])]
        if name == "flow":
            t, s = t.double(), s.double()
        x = one_step_x_target(proc, z_t, z_s, t, s)
        torch.testing.assert_close(ddim_move(proc, z_t, x, t, s), z_s, rtol=1e-9, atol=1e-9)
    # the same paths read backwards (clean end first) are far from the perfect student's zero
    assert float(own_obj.loss(fn, own.flip(1), generator=torch.Generator().manual_seed(1))[0]) > 1e-2


def test_an_explicit_grid_is_the_students_own():
    """A student on its own grid (999, 249): two jumps read off the matching columns, the sampler's record keeps the
    grid, the exact teacher's DDIM on that grid is its perfect student, and a trailing 2-step record is another
    distillation; a flow process takes step counts only."""
    proc, times = PROCESSES["vp"], TIMES["vp"]
    exact = proc.exact_fn(GM)
    obj = GridMapDistillation(proc, (999, 249), times)
    assert obj.steps == 2 and obj.starts.tolist() == [999, 249] and obj.ends.tolist() == [249, -1]
    assert obj.col_t.tolist() == [0, 3] and obj.col_s.tolist() == [3, 4]
    assert obj.metadata()["distilled"]["sampler"] == {"method": "ddim", "steps": [999, 249], "spacing": "trailing"}
    seen = {}
    final = proc.sample(exact, _x_T(), **proc.step_options((999, 249)),
                        callback=lambda d: seen.setdefault(int(d["t_prev"]), d["x_prev"].clone()))
    own = torch.stack([_x_T(), seen[249], final], 1)
    own_obj = GridMapDistillation(proc, [999, 249], [999, 249, -1])
    assert float(own_obj.loss(exact, own, generator=torch.Generator().manual_seed(1))[0]) < 1e-10
    fine = teacher_paths(proc, exact, _x_T(), times, method="dpm++2m", steps=16, clip_x0=None).double()
    x = one_step_x_target(proc, fine[:, 0], fine[:, 3], obj.starts[:1].repeat(64), obj.ends[:1].repeat(64))
    torch.testing.assert_close(ddim_move(proc, fine[:, 0], x, obj.starts[:1].repeat(64), obj.ends[:1].repeat(64)),
                               fine[:, 3], rtol=1e-9, atol=1e-9)
    with pytest.raises(CheckpointMismatch, match="another distillation"):
        obj.check_resume(GridMapDistillation(proc, 2, times).metadata())
    with pytest.raises(ValueError, match="descending"):
        GridMapDistillation(proc, (249, 999), times)
    with pytest.raises(ValueError, match="times must hold"):
        GridMapDistillation(proc, (999, 374), times)
    with pytest.raises(TypeError, match="steps"):
        GridMapDistillation(PROCESSES["flow"], (1.0, 0.25), TIMES["flow"])


def test_bad_input_names_the_argument():
    proc = PROCESSES["vp"]
    exact = proc.exact_fn(GM)
    with pytest.raises(ValueError, match="times must hold"):
        GridMapDistillation(proc, 4, [999, 499, -1])
    with pytest.raises(ValueError, match="times must hold"):
        teacher_paths(proc, exact, _x_T(), [999, 700, -1], steps=16)
    with pytest.raises(ValueError, match=r"times\[0\]"):
        teacher_paths(proc, exact, _x_T(), [749, -1], steps=16)
    with pytest.raises(ValueError, match="method"):
        teacher_paths(proc, exact, _x_T(), [999, -1], steps=4, method="rk45")
    with pytest.raises(ValueError, match="paths must be"):
        GridMapDistillation(proc, 2, [999, 499, -1]).loss(exact, torch.zeros(4, 5, 2))
    with pytest.raises(ValueError, match="weighting"):
        GridMapDistillation(proc, 2, [999, 499, -1], weighting="min-snr")
    two = GridMapDistillation(proc, 2, [999, 749, 499, 249, -1])
    two.check_resume(two.metadata())  # its own record resumes; another student's is refused
    with pytest.raises(CheckpointMismatch, match="another distillation"):
        two.check_resume(GridMapDistillation(proc, 4, [999, 749, 499, 249, -1]).metadata())


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, t.float()[:, None] / 1000], 1))


def test_a_student_learns_the_two_jumps_better_than_the_exact_teachers_ddim():
    """A small MLP trained through the engine on the exact teacher's paths beats the exact ε*'s own 2-step DDIM
    on held-out paths: the summed landing error (what the default weighting minimises) and the last jump, which
    draws the sample; the checkpoint metadata says what it is."""
    proc = PROCESSES["vp"]
    exact = proc.exact_fn(GM)
    times = [999, 499, -1]
    train = teacher_paths(proc, exact, _x_T(4096, seed=2), times, steps=16, clip_x0=None)
    held = teacher_paths(proc, exact, _x_T(1024, seed=3), times, steps=16, clip_x0=None)
    obj = GridMapDistillation(proc, 2, times, info={"teacher": "exact"})
    torch.manual_seed(0)
    student = _Tiny()
    config = TrainConfig(max_steps=600, batch_size=256, lr=3e-3, ema_decay=None, seed=0, lr_schedule="cosine")
    Trainer(student, obj, TensorBatches(train, 256), config).fit()
    learned = obj.jump_errors(lambda x, t: student(x.float(), t).double(), held.double())
    ddim = obj.jump_errors(exact, held.double())
    assert float(learned.pow(2).sum()) < 0.6 * float(ddim.pow(2).sum()) and learned[-1] < 0.8 * ddim[-1], \
        (learned, ddim)
    meta = obj.metadata()["distilled"]
    assert meta["steps"] == 2 and meta["times"] == times and meta["teacher"] == "exact"
    assert meta["sampler"] == {"method": "ddim", "steps": 2, "spacing": "trailing"}
