"""The discrete samplers through the one entry point ``td.sample``: every method on every process it runs on
(shape, range, determinism, NFE, the route), convergence to the table on the exact denoiser against the count
floor, and the measure catching a sampler that is wrong (one ancestral step on correlated data)."""

import pytest
import torch

import toydiff as td
from toydiff import discrete as D
from toydiff.discrete import judge

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: a second thread only waits

# two strongly correlated positions and a third: V = 2, L = 3
TABLE = D.TableDistribution(torch.tensor([[[0.3, 0.2], [0.01, 0.01]], [[0.01, 0.01], [0.1, 0.36]]]))
PROCESSES = [D.masked(None, 2), D.uniform(None, 2, schedule="cosine"), D.masked(8, 2, schedule="cosine"),
             D.uniform(32, 2)]
CASES = [(p, m) for p in PROCESSES for m in p.methods]


@pytest.mark.parametrize("proc,method", CASES, ids=[f"{p.name}-{p.T}-{m}" for p, m in CASES])
def test_every_method_through_td_sample(proc, method):
    fn = TABLE.denoiser(proc)
    x_T = proc.prior(64, 3, generator=torch.Generator().manual_seed(0))
    calls = []

    def counted(x, t):
        calls.append(1)
        return fn(x, t)

    run = lambda: td.sample(counted, x_T, proc, method=method, steps=4, generator=torch.Generator().manual_seed(1))
    x0 = run()
    assert x0.shape == (64, 3) and x0.dtype == torch.long
    assert int(x0.min()) >= 0 and int(x0.max()) < 2
    assert len(calls) == proc.nfe(method, 4) == 4
    assert torch.equal(x0, run())
    assert torch.equal(x0, proc.sample(fn, x_T, method=method, steps=4, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("proc,method", [(PROCESSES[0], "tau-leaping"), (PROCESSES[3], "ancestral")])
def test_enough_steps_reach_the_count_floor(proc, method):
    """TV of 2000 samples within the floor's mean + 4 sd; one ancestral step (the correlated positions drawn
    independently) is far outside it: the measure catches a wrong sampler."""
    n, g = 2000, torch.Generator().manual_seed(5)
    floor = judge.count_floor(TABLE, n, draws=10, generator=g)
    fn = TABLE.denoiser(proc)
    x0 = td.sample(fn, proc.prior(n, 3, generator=g), proc, method=method, steps=32, generator=g)
    kl, tv = judge.kl_tv(TABLE, x0)
    assert tv < floor["tv"] + 4 * floor["tv_sd"]
    one = td.sample(fn, proc.prior(n, 3, generator=g), proc, method="ancestral", steps=1, generator=g)
    assert judge.kl_tv(TABLE, one)[1] > floor["tv"] + 10 * floor["tv_sd"]


def test_maskgit_unmasks_on_the_schedule_and_callbacks_see_each_step():
    proc = D.masked(None, 2)
    seen = []
    td.sample(TABLE.denoiser(proc), proc.prior(5, 3), proc, method="maskgit", steps=3,
              callback=lambda d: seen.append(int((d["x_s"] == 2).sum(1).max())))
    assert seen == [2, 1, 0]  # round(3 (1 − ᾱ_s)) masks left after each step of the linear schedule


def test_bad_calls_are_named():
    proc = D.masked(6, 2)
    fn = TABLE.denoiser(proc)
    x_T = proc.prior(2, 3)
    with pytest.raises(ValueError, match="method"):
        td.sample(fn, x_T, proc, method="euler")  # continuous time only
    with pytest.raises(ValueError, match="method"):
        td.sample(fn, x_T, D.uniform(None, 2), method="maskgit")
    with pytest.raises(ValueError, match="steps must be at most"):
        td.sample(fn, x_T, proc, steps=7)
    with pytest.raises(TypeError, match="x_T"):
        td.sample(fn, x_T.float(), proc)
    with pytest.raises(ValueError, match="x_T"):
        td.sample(fn, x_T + 1, proc)
    with pytest.raises(ValueError, match="fn returned shape"):
        td.sample(lambda x, t: torch.ones(2, 3, 5), x_T, proc)
    with pytest.raises(ValueError, match="temperature"):
        td.sample(fn, x_T, proc, temperature=1.0)  # maskgit only
    assert td.sample(fn, x_T, proc, method="maskgit", temperature=4.5).shape == (2, 3)
    bare = D.masked(6)  # no V: the denoiser's output tells it, with no extra call
    calls = []
    out = td.sample(lambda x, t: calls.append(1) or fn(x, t), x_T, bare, steps=3, generator=torch.Generator())
    assert out.shape == (2, 3) and int(out.max()) < 2 and len(calls) == 3
    assert td.sample(fn, x_T, bare, V=2).shape == (2, 3)
    with pytest.raises(ValueError, match="(?i)x_t: symbols"):  # the denoiser's own check, before the sampler's
        td.sample(fn, x_T + 1, bare)


def test_process_metadata_round_trip():
    for proc in PROCESSES:
        assert D.process_from_dict(proc.to_dict()) == proc
        assert proc.describe()
    with pytest.raises(ValueError, match="process"):
        D.process_from_dict({"process": "vp"})
