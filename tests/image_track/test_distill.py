"""``toydiff mnist distill`` / image_track.training.distill: a round's checkpoint is an ordinary model that says
it was distilled; one-line errors."""

import pytest
import torch

from image_track.cli import main
from image_track.loaded import default_checkpoint, load_model
from image_track.sampling import generate
from image_track.training.distill import (PATHS_FILE, DistillSettings, distill_mnist, map_distill_mnist,
                                          sampler_keywords)
from toydiff.training.checkpoint import load_checkpoint
from toydiff.training.distill import file_sha256


def test_one_round_of_the_committed_model_is_a_loadable_student(tmp_path):
    paths = distill_mnist(out=tmp_path, rounds=1, start_steps=2, subset=16,
                          settings=DistillSettings(steps=1, batch_size=4, warmup=0, amp=False))
    assert [p.name for p in paths] == ["round1_1steps.safetensors"]
    m = load_model(paths[0])
    d = m.metadata["distilled"]
    assert d["teacher_sha256"] == file_sha256(default_checkpoint(conditional=False))
    assert (d["round"], d["steps"], d["teacher_steps"]) == (1, 1, 2)
    assert d["sampler"] == {"method": "ddim", "steps": 1, "spacing": "trailing"}
    x = generate(m.model, m.process, 2, **sampler_keywords(m.process, 1))
    assert x.shape == (2, 1, 28, 28) and torch.isfinite(x).all()


def test_flow_map_students_of_the_committed_model_keep_its_paths_and_resume(tmp_path):
    """Two students from one set of teacher paths: each checkpoint is a loadable model that names the method, its
    steps and the paths' sampler; the paths file is reused (not recomputed) on a resume, and its columns are the
    teacher's DPM++ run (x_T first, a clipped image last)."""
    settings = DistillSettings(steps=2, batch_size=4, warmup=0, amp=False)
    paths = map_distill_mnist(out=tmp_path, students=(2, 1), pool=6, teacher_steps=4, settings=settings)
    assert [p.name for p in paths] == ["map_2steps.safetensors", "map_1steps.safetensors"]
    tensors, meta = load_checkpoint(tmp_path / PATHS_FILE)
    assert tensors["paths"].shape == (6, 3, 1, 28, 28) and meta["record"]["times"] == [999, 249, -1]  # nearest SNR 1/3
    x_T = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(tensors["paths"][:, 0], x_T)
    assert float(tensors["paths"][:, -1].abs().max()) <= 1.0
    m = load_model(paths[0])
    d = m.metadata["distilled"]
    assert d["method"].startswith("flow-map distillation") and d["steps"] == 2 and d["pool"] == 6
    assert d["teacher_sampler"] == {"method": "dpm++2m", "steps": 4, "spacing": "trailing"}
    assert d["teacher_sha256"] == file_sha256(default_checkpoint(conditional=False)) and d["start"] == "the teacher"
    assert load_model(paths[1]).metadata["distilled"]["start"] == "the 2-step student"  # the default init_from
    assert d["experts"] and m.model.config["starts"] == [999, 249]  # one expert per jump of the 2-step grid
    assert m.model.config["expert"]["name"] == "tiny" and m.model.config["predictions"] == ["x0", "eps"]
    assert m.sampler == {"method": "ddim", "steps": [999, 249], "options": {"spacing": "trailing"}}
    x = generate(m.model, m.process, 2, **m.sampler)
    assert x.shape == (2, 1, 28, 28) and torch.isfinite(x).all()
    stamp = (tmp_path / PATHS_FILE).stat().st_mtime_ns
    again = map_distill_mnist(out=tmp_path, students=(2, 1), pool=6, teacher_steps=4, settings=settings, resume=True)
    assert again == paths and (tmp_path / PATHS_FILE).stat().st_mtime_ns == stamp
    data = bytearray((tmp_path / PATHS_FILE).read_bytes())
    data[-100:] = bytes(100)  # a damaged cache is computed again, to the same paths
    (tmp_path / PATHS_FILE).write_bytes(bytes(data))
    map_distill_mnist(out=tmp_path, students=(2, 1), pool=6, teacher_steps=4, settings=settings, resume=True)
    torch.testing.assert_close(load_checkpoint(tmp_path / PATHS_FILE)[0]["paths"], tensors["paths"])
    with pytest.raises(ValueError, match="students"):
        map_distill_mnist(out=tmp_path / "b", students=(2, 2), pool=6, settings=settings)
    with pytest.raises(ValueError, match="init_from"):
        map_distill_mnist(out=tmp_path / "c", students=(4, 2, 1), pool=6, settings=settings, init_from={1: 2, 2: 4})


def test_distill_cli_map_writes_students_and_refuses_a_full_out(tmp_path, capsys):
    argv = ["distill", "--out", str(tmp_path), "--students", "1", "--pool", "4", "--teacher-steps", "2",
            "--steps-per-round", "1", "--batch-size", "2", "--eval-n", "0", "--quiet"]
    assert main(argv) == 0
    assert (tmp_path / "map_1steps.safetensors").exists()
    assert load_model(tmp_path / "map_1steps.safetensors").model.config["predictions"] == ["x0"]  # an expert
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err, err
    one = tmp_path / "one"
    assert main([*argv[:2], str(one), *argv[3:], "--no-experts", "--workers", "1"]) == 0
    assert load_model(one / "map_1steps.safetensors").model.config["name"] == "tiny"


@pytest.mark.parametrize("argv, message", [
    (["distill", "--method", "progressive", "--rounds", "2", "--start-steps", "6"], "divisible"),
    (["distill", "--students", "4,4"], "--students"),
    (["distill", "--students", "four"], "--students"),
    (["distill", "--students", "4,2", "--steps-per-round", "5,5,5"], "--steps-per-round"),
    (["distill", "--method", "progressive", "--steps-per-round", "5,5"], "--steps-per-round"),
    (["distill", "--method", "progressive", "--weighting", "landing"], "landing"),
    (["distill", "--eval-n", "2"], "--eval-n"),
    (["distill", "--resume", "--overwrite"], "exclude"),
    (["distill", "--checkpoint", "CKPT_COND"], "class-conditional"),
    (["distill", "--grid", "2=999,300"], "teacher's 16-step grid"),
    (["distill", "--grid", "2=999,374", "--grid", "2=999,499"], "once per student"),
    (["distill", "--method", "progressive", "--grid", "2=999,374"], "--grid applies to --method map"),
    (["distill", "--grid", "2"], "N=T1,T2"),
])
def test_distill_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    argv = [str(default_checkpoint(conditional=True)) if a == "CKPT_COND" else a for a in argv]
    assert main([*argv, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o").exists()  # refused before anything is written


def _threads_here() -> int:
    return torch.get_num_threads()


def test_spawned_workers_follow_the_thread_policy():
    """Each worker of --workers runs the policy's one thread: torch would take every core in each spawned process,
    and two workers of two threads on two cores ran 3× slower."""
    from image_track.training.distill import _spawn_pool
    from toydiff.threads import default_threads

    with _spawn_pool(1) as ex:
        assert ex.submit(_threads_here).result() == default_threads()


def test_student_network_gives_each_jump_an_expert_from_its_start():
    """A student with experts begins as its start network in every band, x_0 experts where the band starts below
    SNR 0.04 (t = 999, 749 of the linear schedule) and ε at t = 499, 249; one from a student with experts takes, per
    jump, the expert at that jump's start (the 1-step student: the t = 999 expert)."""
    from image_track.training.distill import student_network
    from image_track.unets.experts import TimeExperts

    m = load_model(default_checkpoint(conditional=False))
    two = student_network(m.model, m.process, 2, experts=True)
    assert isinstance(two, TimeExperts) and two.config["starts"] == [999, 499]
    assert two.predictions == ("x0", "eps")
    assert student_network(m.model, m.process, 4, experts=True).predictions == ("x0", "x0", "eps", "eps")
    assert type(student_network(m.model, m.process, 2, experts=False)) is type(m.model)
    with torch.no_grad():
        two.experts[0].out.bias += 1.0  # mark the t = 999 expert
        two.experts[1].out.bias -= 1.0
    one = student_network(two, m.process, 1, experts=True)
    four = student_network(two, m.process, 4, experts=True)
    assert one.config["starts"] == [999] and one.predictions == ("x0",)
    torch.testing.assert_close(one.experts[0].out.bias, m.model.out.bias + 1.0)
    biases = [float(e.out.bias - m.model.out.bias) for e in four.experts]  # 999, 749 → expert 0; 499, 249 → 1
    assert biases == pytest.approx([1.0, 1.0, -1.0, -1.0])
    with pytest.raises(ValueError, match="experts"):
        student_network(two, m.process, 1, experts=False)


def test_experts_refuse_a_process_without_a_discrete_schedule():
    from image_track.training.distill import student_network
    from toydiff.processes import interpolants
    from toydiff.processes.flow import InterpolantProcess

    m = load_model(default_checkpoint(conditional=False))
    with pytest.raises(ValueError, match="experts"):
        student_network(m.model, InterpolantProcess(interpolants.linear()), 2, experts=True)


def test_student_grids_split_two_steps_at_snr_one_third_on_the_teachers_grid():
    """The 2-step student's boundary is the teacher-grid time nearest SNR 1/3 in log-SNR (t = 374 of the linear
    schedule's 16-step grid, SNR 0.31; 311 has 0.58, 437 about 0.17), other counts keep trailing spacing; an explicit
    grid must have N steps from T − 1 on the teacher's grid."""
    from image_track.training.distill import SPLIT_SNR, student_grids

    m = load_model(default_checkpoint(conditional=False))
    snr = m.process.schedule.snr
    assert float(snr[311]) > SPLIT_SNR > float(snr[374]) and float(snr[374] / SPLIT_SNR) > float(SPLIT_SNR / snr[311])
    assert student_grids(m.process, (4, 2, 1)) == {4: 4, 2: (999, 374), 1: 1}
    assert student_grids(m.process, (2,), teacher_steps=8) == {2: (999, 374)}
    assert student_grids(m.process, (2,), teacher_steps=4) == {2: (999, 249)}  # log-SNR 0.10 beats 499's −2.46
    assert student_grids(m.process, (2,), teacher_steps=2) == {2: (999, 499)}  # the only boundary there
    assert student_grids(m.process, (2,), teacher_steps=1) == {2: 2}  # none: teacher_paths then names the grid
    assert student_grids(m.process, (4, 2), {2: [999, 499]}) == {4: 4, 2: (999, 499)}
    for grids, what in [({2: (999, 300)}, "teacher's"), ({2: (999,)}, "2 descending"), ({2: (749, 249)}, "from 999"),
                        ({3: (999, 499, 249)}, "not among"), ({2: (249, 999)}, "descending")]:
        with pytest.raises(ValueError, match=what):
            student_grids(m.process, (4, 2), grids)


def test_sample_cli_runs_a_student_on_its_own_grid(tmp_path):
    """``toydiff mnist sample --checkpoint`` a distilled student with no sampler flags: its record's DDIM on its grid
    ((999, 249) from a 4-step teacher grid); given flags win."""
    settings = DistillSettings(steps=1, batch_size=2, warmup=0, amp=False)
    student = map_distill_mnist(out=tmp_path, students=(2,), pool=2, teacher_steps=4, settings=settings)[0]
    base = ["sample", "--checkpoint", str(student), "--figures", "grid", "--save-tensor", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "own")]) == 0
    assert load_checkpoint(tmp_path / "own" / "samples.safetensors")[1]["steps"] == [999, 249]
    assert main([*base, "--out", str(tmp_path / "given"), "--steps", "3"]) == 0
    meta = load_checkpoint(tmp_path / "given" / "samples.safetensors")[1]
    assert (meta["method"], meta["steps"]) == ("ddim", 3)
    teacher = load_model(default_checkpoint(conditional=False))  # not distilled: the track's default sampler
    assert teacher.sampler == {"method": "ddim", "steps": 50, "options": {}}
