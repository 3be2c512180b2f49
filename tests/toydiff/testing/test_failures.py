"""Whose fault is it? The caller's bad arguments are a ValueError/TypeError (CLI: exit 2, one stderr line); a
misbehaving sampler (raises, NaN, wrong shape, too slow) is a FAILED row with the reason, never a crash or a hang."""

import math
import signal
import sys
import threading
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toydiff.testing import KitSampler, Run, check_sampler
from toydiff.testing.cli import main
from toydiff.testing.runner import DEFAULT_TIMEOUT, Runner

TINY = dict(steps=[3, 6], sweep=[], n_samples=10, edges=(1, 2))  # tiny runs: these tests are about verdicts, not accuracy
PROPS = settings(deadline=None, derandomize=True, max_examples=15)


def one_line_error(capsys, *needles) -> str:
    out, err = capsys.readouterr()
    assert not out and len(err.strip().splitlines()) == 1 and err.startswith("toydiff check-sampler: error:"), err
    for n in needles:
        assert n in err, err
    return err


# --- the caller's arguments -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(order=math.nan), "order"), (dict(order=-1), "order"), (dict(order=0), "order"),
    (dict(order=math.inf), "order"), (dict(min_order=math.nan), "min_order"), (dict(min_order=-0.5), "min_order"),
    (dict(order_tol=math.nan), "order_tol"),
    (dict(steps=[]), "steps"), (dict(steps=[0]), "steps"), (dict(sweep=[0]), "sweep"), (dict(seed=-1), "seed"),
    (dict(n_samples=2), "n_samples"), (dict(timeout=0), "timeout"), (dict(timeout=math.nan), "timeout"),
    (dict(timeout=-1.0), "timeout"),
])
def test_bad_arguments_are_the_callers_value_error(kwargs, name):
    with pytest.raises(ValueError, match=name):
        check_sampler("toydiff:euler", **{**TINY, **kwargs})


@pytest.mark.parametrize("kwargs, name", [(dict(steps=5), "steps"), (dict(steps="12"), "steps"),
                                          (dict(timeout="60"), "timeout"), (dict(problem=3), "problem"),
                                          (dict(order="2"), "order")])
def test_wrongly_typed_arguments_are_a_type_error(kwargs, name):
    with pytest.raises(TypeError, match=name):
        check_sampler("toydiff:euler", **{**TINY, **kwargs})


@PROPS
@given(order=st.one_of(st.floats(max_value=0.0), st.just(math.inf), st.just(-math.inf), st.just(math.nan)))
def test_no_bad_claimed_order_reaches_a_row(order):
    with pytest.raises(ValueError, match="order"):
        check_sampler("toydiff:euler", **TINY, order=order)


def test_a_configuration_the_method_refuses_is_the_callers_error():
    with pytest.raises(ValueError, match="toydiff:heun refuses its configuration: eta=0.5"):
        check_sampler("toydiff:heun", eta=0.5, **TINY)
    with pytest.raises(ValueError, match="eta"):
        check_sampler("toydiff:ddim", eta=1.5, **TINY)


@pytest.mark.parametrize("flags, needle", [
    (["--order", "nan"], "order"), (["--order", "-1"], "order"), (["--order", "inf"], "order"),
    (["--config", "eta=0.5"], "eta=0.5"), (["--timeout", "0"], "--timeout"), (["--timeout", "nan"], "--timeout"),
])
def test_cli_bad_input_exits_2_with_one_line(flags, needle, capsys):
    assert main(["toydiff:heun", "--steps", "3,6", "--sweep", "0"] + flags) == 2
    one_line_error(capsys, needle)


# --- the sampler's misbehaviour ---------------------------------------------------------------------------------

def nan_sampler(eps_fn, x_T, alphas_cumprod, steps, generator):
    return x_T * math.nan


def test_a_sampler_returning_nan_fails_runs_and_clean_end_with_the_reason():
    rep = check_sampler(nan_sampler, **TINY)
    assert {r.name for r in rep.failures} == {"runs", "clean end", "edge steps", "duplicate levels"}, rep.table()
    assert "not finite" in rep.row("runs").detail and "not finite" in rep.row("clean end").detail


def test_a_sampler_returning_nan_on_the_sharp_data_only_fails_clean_end():
    def sharp_nan(eps_fn, x_T, alphas_cumprod, steps, generator):  # the clean-end check runs a batch of 64
        return x_T * math.nan if x_T.shape[0] == 64 else x_T.clone()

    rep = check_sampler(sharp_nan, **TINY)
    assert rep.row("runs").passed and rep.row("clean end").passed is False, rep.table()
    assert "not finite" in rep.row("clean end").detail


@pytest.mark.parametrize("shape", [lambda x: x[:1], lambda x: x.reshape(-1), lambda x: x.numpy()])
def test_a_kit_sampler_returning_the_wrong_shape_or_type_is_a_failed_row(shape):
    sampler = KitSampler("wrong", lambda rec, x_T, steps, g: Run(shape(x_T.clone()), (999.0, -1.0)))
    rep = check_sampler(sampler, **TINY)
    assert {"runs", "clean end"} <= {r.name for r in rep.failures}, rep.table()
    assert "not a tensor of shape (16, 2)" in rep.row("runs").detail


def test_a_stochastic_sampler_failing_on_the_distribution_run_is_a_failed_row():
    def noisy(eps_fn, x_T, alphas_cumprod, steps, generator):
        if x_T.shape[0] == 10:  # the distribution check's batch: n_samples
            raise RuntimeError("out of memory (pretend)")
        return x_T + 1e-3 * torch.randn(x_T.shape, generator=generator, dtype=x_T.dtype)

    rep = check_sampler(noisy, **TINY)
    assert rep.stochastic and rep.row("distribution").passed is False, rep.table()
    assert "RuntimeError: out of memory" in rep.row("distribution").detail


# --- the time limit ---------------------------------------------------------------------------------------------

def sleeper(eps_fn, x_T, alphas_cumprod, steps, generator):
    time.sleep(30)  # outside any denoiser call: only the SIGALRM fallback stops it
    return x_T


def looper(eps_fn, x_T, alphas_cumprod, steps, generator):
    while True:  # calls the denoiser forever: the denoiser's clock check stops it
        eps_fn(x_T, torch.full((x_T.shape[0],), 500))


def swallower(eps_fn, x_T, alphas_cumprod, steps, generator):
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        try:
            eps_fn(x_T, torch.full((x_T.shape[0],), 500))
        except BaseException:  # noqa: BLE001 - a sampler that swallows everything still times out
            pass
    return x_T.clone()


@pytest.mark.parametrize("sampler", [sleeper, looper, swallower])
def test_a_slow_sampler_is_a_timeout_row_not_a_hang(sampler):
    start = time.monotonic()
    rep = check_sampler(sampler, **TINY, timeout=0.2)
    assert time.monotonic() - start < 15  # one time limit (0.2 s), not one per run nor 30 s of sleep, then the sampler is not run again
    assert rep.row("runs").passed is False and "timeout after 0.2 s" in rep.row("runs").detail, rep.table()
    assert not rep.passed


def test_a_timeout_in_the_sweep_still_fails_runs():
    def slow_at_five(eps_fn, x_T, alphas_cumprod, steps, generator):
        if steps == 5:
            time.sleep(30)
        return x_T.clone(), [999, -1]

    rep = check_sampler(slow_at_five, steps=[3, 6], sweep=[5], n_samples=10, timeout=0.2)
    assert rep.row("runs").passed is False and "steps=5: timeout after 0.2 s" in rep.row("runs").detail, rep.table()


def test_the_default_limit_and_no_limit():
    assert DEFAULT_TIMEOUT == 60.0
    assert check_sampler("toydiff:euler", **TINY, timeout=None).passed


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX interval timers")
def test_the_alarm_restores_the_callers_handler_and_timer():
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 60.0)
        rep = check_sampler(sleeper, **TINY, timeout=0.1)
        assert "timeout" in rep.row("runs").detail
        delay, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 30.0 < delay <= 60.0 and not fired  # the caller's timer runs on with what it had left
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_off_the_main_thread_the_denoiser_clock_still_stops_a_looping_sampler():
    out = {}
    worker = threading.Thread(target=lambda: out.update(rep=check_sampler(looper, **TINY, timeout=0.2)))
    worker.start()
    worker.join(20)
    assert not worker.is_alive() and "timeout after 0.2 s" in out["rep"].row("runs").detail


def test_the_runner_skips_a_sampler_after_its_timeout():
    from toydiff.testing import as_sampler, default_problem

    runner, p = Runner(as_sampler(sleeper), timeout=0.1), default_problem(batch=2)
    first, second = runner.attempt(p, p.x_T, 3, 0), runner.attempt(p, p.x_T, 3, 0)
    assert first.error == "steps=3: timeout after 0.1 s" and not first.skipped
    assert second.skipped and second.run is None


def test_cli_timeout_is_a_failed_row_exit_1(capsys, monkeypatch):
    # a spec string cannot name an arbitrary callable, so toydiff's own sample() is slowed down for this test
    from toydiff.sampling import loop

    real = loop.sample

    def slow_sample(*a, **k):
        if k.get("steps") != 1:  # the configuration probe runs one step; let it through
            time.sleep(30)
        return real(*a, **k)

    monkeypatch.setattr(loop, "sample", slow_sample)
    assert main(["toydiff:euler", "--steps", "3,6", "--sweep", "0", "--timeout", "0.2"]) == 1
    out, _ = capsys.readouterr()
    assert "timeout after 0.2 s" in out and "FAILED (runs" in out


# --- a broken peer install --------------------------------------------------------------------------------------

def broken_package(tmp_path, monkeypatch, name: str, files: dict[str, str]) -> None:
    pkg = tmp_path / name
    pkg.mkdir()
    for file, text in files.items():
        (pkg / file).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".") or m.startswith("_kdiffusion")]:
        monkeypatch.delitem(sys.modules, mod)


def test_a_peer_whose_init_raises_is_one_clear_error(tmp_path, monkeypatch, capsys):
    broken_package(tmp_path, monkeypatch, "diffusers", {"__init__.py": "raise RuntimeError('CUDA mismatch')"})
    with pytest.raises(ValueError, match=r"sampler 'diffusers:DDIMScheduler': importing diffusers failed: "
                                         r"RuntimeError: CUDA mismatch"):
        check_sampler("diffusers:DDIMScheduler", **TINY)
    assert main(["diffusers:DDIMScheduler"]) == 2
    one_line_error(capsys, "diffusers:DDIMScheduler", "RuntimeError")


def test_a_broken_k_diffusion_is_one_clear_error(tmp_path, monkeypatch, capsys):
    broken_package(tmp_path, monkeypatch, "k_diffusion", {"__init__.py": "raise RuntimeError('init broke')",
                                                          "sampling.py": "raise RuntimeError('sampling broke')"})
    with pytest.raises(ValueError, match=r"sampler 'k-diffusion:sample_euler': importing k-diffusion failed: "
                                         r"RuntimeError: sampling broke"):
        check_sampler("k-diffusion:sample_euler", **TINY)
    assert "_kdiffusion_sampling.sampling" not in sys.modules  # not cached as if it had loaded
    assert main(["k-diffusion:sample_euler"]) == 2
    one_line_error(capsys, "k-diffusion:sample_euler", "sampling broke")


def test_a_configuration_a_scheduler_refuses_is_the_callers_error():
    diffusers = pytest.importorskip("diffusers")
    from toydiff.testing import from_diffusers

    with pytest.raises(ValueError, match="DPMSolverMultistepScheduler refuses it"):
        from_diffusers(diffusers.DPMSolverMultistepScheduler, algorithm_type="nonsense")
