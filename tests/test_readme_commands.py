"""Every shell command README.md shows runs, and runs again: twice in a row, from one folder, as a reader would
(the first in a fresh interpreter, the second in the test's process; the second run of a costly one on a smaller
sample, or in-process in the CLI tests).

The commands come from README.md's code blocks (lines starting with ``toydiff``; the two set-up commands at
the top start with ``pip`` / ``apt-get`` and are not taken). Each one must match exactly one entry of the
lists below, so a command added to the README fails this test until someone says what it costs:

- :data:`CHEAP`: run twice in a row (the second run rewrites what the first wrote; :data:`SECOND_RUN_SMALLER` makes
  it cheaper), each within its budget;
- :data:`STAND_IN`: long trainings into a run folder; the shipped weights stand in for their result (copied
  into the folder the command names), and the command itself must then refuse at once (exit 2), saying to
  pass ``--resume`` or ``--overwrite``: what a reader re-running the README sees;
- :data:`SKIPPED`: long trainings and evaluations, the app, and commands needing an optional extra.

The commands run in a temporary folder (their relative outputs land there, not in the checkout), through the
``toydiff`` entry point of this checkout (``toydiff.cli.main`` in a fresh interpreter).
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
WEIGHTS = ROOT / "toydiff" / "toy" / "weights"

#: command prefix (whitespace-normalised) -> CPU-time budget per run (user + system s of its process: on a shared
#: CPU the wall time says more about the neighbours than the command; the wall limit is 5x the budget)
CHEAP = {
    "toydiff demo": 120,
    "toydiff toy sample --run runs/toy": 60,
    "toydiff toy report --run runs/8g": 120,
    "toydiff toy report --oracle --dataset 8gaussians": 90,
    "toydiff toy guidance": 180,
    "toydiff toy likelihood --oracle --dataset two_gaussians": 120,
    "toydiff toy memorise --dataset 8gaussians": 90,
    "toydiff check-sampler toydiff:heun": 120,
    "toydiff mnist lab sdedit": 120,
}
#: cheap commands whose second run takes a smaller sample (appended flags): it writes the same files, so the rerun
#: contract is checked at a fraction of the cost; a command that writes nothing (check-sampler) runs once
SECOND_RUN_SMALLER = {
    "toydiff demo": ["--n", "500"],
}
#: cheap commands run once here, whose rerun contract is checked in-process on a small sample instead (the same
#: writer; a fresh interpreter per rerun costs seconds of imports): prefix -> the test that checks it
RERUN_CHECKED_ELSEWHERE = {
    "toydiff toy report --run runs/8g": "tests/toydiff/toy/test_toy_cli.py::test_train_sample_report_and_resume",
    "toydiff toy report --oracle --dataset 8gaussians": "tests/toydiff/toy/test_toy_cli.py::test_report_2d_oracle",
    "toydiff toy guidance": "tests/toydiff/toy/test_guidance_toy.py::test_toy_guidance_command_writes_json_and_figures",
}
#: run-folder trainings: prefix -> the shipped weights that stand in for the run (toydiff/toy/weights/<name>)
STAND_IN = {
    "toydiff toy train --out runs/toy": "two_gaussians",
    "toydiff toy train --dataset 8gaussians --out runs/8g": "8gaussians",
}
#: prefix -> why it is not run here
SKIPPED = {
    "toydiff app": "a server that runs until stopped (tests/apps cover it)",
    "toydiff toy train --dataset 8gaussians --process flow": "a long training (minutes)",
    "toydiff toy reflow": "needs the flow run above, and trains",
    "toydiff mnist train": "a long training (minutes to hours)",
    "toydiff mnist sample": "100 UNet samples plus a guidance sweep: minutes on a shared CPU",
    "toydiff mnist eval": "5000 UNet samples and FID: minutes",
    "toydiff check-sampler diffusers:": "needs the peers extra (diffusers)",
}
#: at least this many README commands run twice (the test cannot pass by matching nothing)
MIN_CHEAP = 8


def readme_commands(text: str) -> list[str]:
    """The ``toydiff ...`` lines of the fenced code blocks of ``text``, comments removed, whitespace normalised."""
    cmds = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            if line.split(" ", 1)[0] == "toydiff":
                cmds.append(" ".join(shlex.split(line, comments=True)))
    return cmds


def kind_of(cmd: str) -> str:
    """``"cheap"``, ``"stand-in"`` or ``"skipped"``: the one list whose prefix ``cmd`` starts with."""
    kinds = [k for k, table in (("cheap", CHEAP), ("stand-in", STAND_IN), ("skipped", SKIPPED))
             for prefix in table if (cmd + " ").startswith(prefix if prefix.endswith(":") else prefix + " ")]
    assert len(kinds) == 1, f"README command {cmd!r} matches {kinds or 'no list'}: add it to one of CHEAP, " \
                            "STAND_IN, SKIPPED in tests/test_readme_commands.py"
    return kinds[0]


def _prefix(cmd: str, table: dict) -> str:
    return next(p for p in table if (cmd + " ").startswith(p if p.endswith(":") else p + " "))


def run_toydiff(cmd: str, cwd: Path, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    """``cmd`` (a ``toydiff ...`` line) through this checkout's ``toydiff.cli.main``, in ``cwd``; (result, CPU
    seconds of its process)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "MPLBACKEND": "Agg"}
    argv = [sys.executable, "-c", "import sys; from toydiff.cli import main; sys.exit(main())",
            *shlex.split(cmd)[1:]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def run_in_process(cmd: str, cwd: Path, monkeypatch) -> tuple[int, str, float]:
    """``cmd`` through ``toydiff.cli.main`` in this process, in ``cwd``: (exit code, stderr, CPU seconds). For a
    second run: the first ran in a fresh interpreter, and the rerun contract does not need another one (whose
    start, about 3 s of CPU for python, torch and toydiff, was most of a cheap command's cost). The thread policy it
    configures is given back."""
    import contextlib
    import io
    import time

    import torch

    from toydiff import threads
    from toydiff.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(threads, "_configured", threads._configured)
    err, n_threads, t0 = io.StringIO(), torch.get_num_threads(), time.process_time()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                code = main(shlex.split(cmd)[1:])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
    finally:
        torch.set_num_threads(n_threads)
    return int(code or 0), err.getvalue(), time.process_time() - t0


def test_readme_commands_are_all_classified():
    cmds = readme_commands(README.read_text())
    assert len(cmds) >= MIN_CHEAP + len(STAND_IN), cmds
    kinds = [kind_of(c) for c in cmds]
    assert kinds.count("cheap") >= MIN_CHEAP, list(zip(cmds, kinds))
    assert kinds.count("stand-in") == len(STAND_IN), list(zip(cmds, kinds))
    assert set(SECOND_RUN_SMALLER) | set(RERUN_CHECKED_ELSEWHERE) <= set(CHEAP)
    assert not set(SECOND_RUN_SMALLER) & set(RERUN_CHECKED_ELSEWHERE)


def _of_kind(kind: str) -> list[str]:
    return [c for c in readme_commands(README.read_text()) if kind_of(c) == kind]


@pytest.fixture
def repo_root(tmp_path):
    """A stand-in for the repo root after README's trainings: the shipped weights in their ``--out`` folders."""
    for cmd, name in STAND_IN.items():
        args = shlex.split(cmd)
        shutil.copytree(WEIGHTS / name, tmp_path / args[args.index("--out") + 1])
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("cmd", _of_kind("cheap"))
def test_readme_command_runs_twice_in_a_row(cmd, repo_root, monkeypatch):
    """Twice in a row: exit 0 both times, within its CPU budget, the second run rewriting every file the first wrote
    and adding none, no temporary file left. The first run is a fresh interpreter, the second :func:`run_in_process`;
    the second run of a :data:`SECOND_RUN_SMALLER` command takes a smaller sample; a command that writes nothing
    runs once."""
    budget = CHEAP[_prefix(cmd, CHEAP)]
    writes = "--out" in shlex.split(cmd) or cmd == "toydiff demo"  # check-sampler only prints its table
    smaller = next((extra for p, extra in SECOND_RUN_SMALLER.items() if (cmd + " ").startswith(p + " ")), [])
    once = not writes or any((cmd + " ").startswith(p + " ") for p in RERUN_CHECKED_ELSEWHERE)
    seen = [_mtimes(repo_root)]
    for attempt, line in ((1, cmd), (2, shlex.join(shlex.split(cmd) + smaller)))[: 1 if once else 2]:
        if attempt == 1:
            out, seconds = run_toydiff(line, repo_root, timeout=5 * budget)
            code, stderr = out.returncode, out.stderr
        else:
            code, stderr, seconds = run_in_process(line, repo_root, monkeypatch)
        seen.append(_mtimes(repo_root))
        assert code == 0, f"{line} (run {attempt}): exit {code}: {stderr[-800:]}"
        assert seconds <= budget, f"{line} (run {attempt}): {seconds:.0f} CPU s, over its {budget} s budget"
    if not writes:
        assert seen[0] == seen[1], f"{cmd} wrote files"
        return
    if once:
        assert seen[1] != seen[0], f"{cmd} wrote nothing"
        assert not list(repo_root.rglob(".*.tmp")) and not list(repo_root.rglob("*.tmpdir")), "temporary files left"
        return
    before, first, second = seen
    wrote = [q for q in first if before.get(q) != first[q]]
    assert wrote, f"{cmd} wrote nothing"
    kept = [q.name for q in wrote if second.get(q) == first[q]]
    new = [q.name for q in second if q not in first]
    assert not kept and not new, f"{cmd}: the second run left {kept} as they were and wrote new files {new}"
    assert not list(repo_root.rglob(".*.tmp")) and not list(repo_root.rglob("*.tmpdir")), "temporary files left"


@pytest.mark.parametrize("cmd", _of_kind("stand-in"))
def test_readme_training_into_an_existing_run_names_the_way_out(cmd, repo_root):
    """A run-folder training whose folder holds a run (the shipped weights stand in) exits 2 naming --resume and
    --overwrite."""
    out, _ = run_toydiff(cmd, repo_root, timeout=120)
    msg = (out.stderr.strip().splitlines() or [""])[-1]
    assert out.returncode == 2 and "--overwrite" in msg and "--resume" in msg, (out.returncode, out.stderr[-500:])


def _mtimes(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
