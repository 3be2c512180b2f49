"""The exact flow map of a Gaussian mixture (toydiff.exact.flow_map via GaussianMixture.flow_map /
consistency_fn / average_velocity): closed form for one Gaussian, fine Heun for a mixture, the group laws."""

import math

import pytest
import torch

import toydiff as td
from toydiff.processes import InterpolantProcess, VPProcess
from toydiff.processes.schedules import NoiseSchedule

TOL = {"rtol": 1e-8, "atol": 1e-8}
LIN, COS = td.interpolants.linear(), td.interpolants.cosine()
S = td.schedules.cosine(T=200) if hasattr(td.schedules, "cosine") else td.schedules.linear(T=1000)
GM2 = td.GaussianMixture.diagonal([0.3, 0.5, 0.2], [[-2.0, 0.0], [1.5, 1.0], [0.0, -2.0]],
                                  [[0.5, 0.8], [0.6, 0.4], [0.7, 0.7]])
GM1 = td.GaussianMixture([1.0, 2.0], [[-1.0], [1.0]], [[[0.3]], [[0.2]]])


def points(n: int, d: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def coefs(process, t) -> tuple[float, float]:
    if isinstance(process, NoiseSchedule):
        if t == -1:
            return 1.0, 0.0
        ab = float(process.alpha_bars[t])
        return math.sqrt(ab), math.sqrt(1 - ab)
    return float(process.alpha(t)), float(process.sigma(t))


def heun(gm, x, times, interp):
    """Heun's method on dx/dt = E[u | x_t] over ``times`` (either direction), written out here."""
    u = gm.velocity_fn(interp)
    for a, b in zip(times[:-1], times[1:]):
        ta, tb = torch.full((x.shape[0],), a, dtype=torch.float64), torch.full((x.shape[0],), b, dtype=torch.float64)
        d1 = u(x, ta)
        xe = x + (b - a) * d1
        x = x + (b - a) * 0.5 * (d1 + u(xe, tb))
    return x


# --- one Gaussian: the map is affine ------------------------------------------------------------------------
CASES = [(LIN, 0.9, 0.1), (LIN, 0.1, 0.9), (LIN, 1.0, 0.0), (LIN, 0.0, 1.0), (LIN, 0.7, 0.3),
         (COS, 0.8, 0.2), (COS, 0.2, 0.8), (COS, 1.0, 0.05), (COS, 0.0, 0.6),
         (S, 150, 10), (S, 10, 150), (S, 199, -1), (S, -1, 120), (S, 0, -1)]


@pytest.mark.parametrize("process,t,s", CASES, ids=lambda v: getattr(v, "name", str(v)))
def test_one_gaussian_matches_the_closed_form_affine_map(process, t, s):
    m, v = torch.tensor([0.7, -1.2], dtype=torch.float64), torch.tensor([0.3, 2.5], dtype=torch.float64)
    gm = td.GaussianMixture.diagonal([1.0], m[None], v.sqrt()[None])
    x = points(6, 2, seed=1, scale=1.5)
    (at, st), (as_, ss) = coefs(process, t), coefs(process, s)
    want = as_ * m + (as_**2 * v + ss**2).sqrt() / (at**2 * v + st**2).sqrt() * (x - at * m)
    got = gm.flow_map(x, t, s, process, **TOL)
    assert got.dtype == torch.float64 and got.shape == x.shape
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


# --- a mixture ---------------------------------------------------------------------------------------------
def test_from_pure_noise_agrees_with_fine_heun_through_td_sample():
    x1 = points(8, 2, seed=2)
    for interp in (LIN, COS):
        ref = td.sample(GM2.velocity_fn(interp), x1, interp, method="heun", steps=1000)  # Heun's error here ~6e-6
        torch.testing.assert_close(GM2.flow_map(x1, 1.0, 0.0, interp, **TOL), ref, rtol=0, atol=5e-5)


@pytest.mark.parametrize("t,s", [(0.85, 0.15), (0.15, 0.85), (1.0, 0.4), (0.3, 1.0)])
@pytest.mark.parametrize("gm,d", [(GM1, 1), (GM2, 2)], ids=["1d", "2d"])
def test_mixture_agrees_with_fine_heun_both_directions(gm, d, t, s):
    x = points(6, d, seed=3, scale=1.3)
    got = gm.flow_map(x, t, s, LIN, **TOL)
    ref = heun(gm, x, torch.linspace(t, s, 401).tolist(), LIN)  # Heun's error here ~3e-6
    torch.testing.assert_close(got, ref, rtol=0, atol=5e-5)
    assert (got - x).abs().max() > 1e-2  # it moved


@pytest.mark.parametrize("process,t,u,s", [(LIN, 0.9, 0.5, 0.05), (COS, 1.0, 0.3, 0.7), (S, 180, 40, -1),
                                          (S, -1, 90, 30)], ids=["linear", "cosine", "vp", "vp-up"])
def test_round_trip_composition_and_identity(process, t, u, s):
    x = points(5, 2, seed=4)
    x_s = GM2.flow_map(x, t, s, process, **TOL)
    torch.testing.assert_close(GM2.flow_map(x_s, s, t, process, **TOL), x, rtol=0, atol=1e-6)
    two = GM2.flow_map(GM2.flow_map(x, t, u, process, **TOL), u, s, process, **TOL)
    torch.testing.assert_close(two, x_s, rtol=0, atol=1e-6)
    assert torch.equal(GM2.flow_map(x, t, t, process), x)


def test_vp_schedule_agrees_with_the_karras_probability_flow():
    x = points(4, 2, seed=5)
    sig = lambda k: math.sqrt((1 - float(S.alpha_bars[k])) / float(S.alpha_bars[k]))  # noqa: E731
    ref = GM2.probability_flow(x, [sig(150), sig(20)])[-1]
    torch.testing.assert_close(GM2.flow_map(x, 150, 20, S), ref, rtol=0, atol=1e-7)


def test_every_pair_in_one_call_matches_the_closed_form():
    """All the cases of one process in ONE call (per-sample times: rows toward the data and away from it, across
    σ̃ = 1, from and to the singular end, carried in one ODE system on their own clocks): each row its closed form."""
    m, v = torch.tensor([0.7, -1.2], dtype=torch.float64), torch.tensor([0.3, 2.5], dtype=torch.float64)
    gm = td.GaussianMixture.diagonal([1.0], m[None], v.sqrt()[None])
    for process in (LIN, COS, S):
        pairs = [(t, s) for p, t, s in CASES if p is process]
        x = points(len(pairs), 2, seed=3, scale=1.5)
        if isinstance(process, NoiseSchedule):
            tt, ss = torch.tensor([t for t, _ in pairs]), torch.tensor([s for _, s in pairs])
        else:
            tt, ss = (torch.tensor(c, dtype=torch.float64) for c in zip(*pairs))
        got = gm.flow_map(x, tt, ss, process, **TOL)
        for i, (t, s) in enumerate(pairs):
            (at, st), (as_, ss_) = coefs(process, t), coefs(process, s)
            want = as_ * m + (as_**2 * v + ss_**2).sqrt() / (at**2 * v + st**2).sqrt() * (x[i] - at * m)
            torch.testing.assert_close(got[i], want, rtol=1e-6, atol=1e-6, msg=f"{process.name}: {t} -> {s}")


def test_per_sample_times_group_like_scalar_calls():
    x = points(6, 2, seed=6)
    t = torch.tensor([0.9, 0.5, 0.9, 1.0, 0.2, 0.5], dtype=torch.float64)
    s = torch.tensor([0.1, 0.5, 0.1, 0.0, 0.7, 0.0], dtype=torch.float64)
    got = GM2.flow_map(x, t, s, COS, **TOL)
    for i in range(6):
        torch.testing.assert_close(got[i:i + 1], GM2.flow_map(x[i:i + 1], float(t[i]), float(s[i]), COS, **TOL),
                                   rtol=0, atol=1e-7)
    steps = torch.tensor([100, -1, 30, 100, 5, 150])
    got = GM2.flow_map(x, steps, -1, S, **TOL)
    torch.testing.assert_close(got[0], GM2.flow_map(x[:1], 100, -1, S, **TOL)[0], rtol=0, atol=1e-7)
    assert torch.equal(got[1], x[1])


def test_process_objects_give_the_same_map_and_event_shapes_are_kept():
    x = points(3, 2, seed=7).reshape(3, 1, 2)
    a = GM2.flow_map(x, 0.8, 0.1, InterpolantProcess(LIN), **TOL)
    assert a.shape == (3, 1, 2)
    torch.testing.assert_close(a, GM2.flow_map(x, 0.8, 0.1, LIN, **TOL), rtol=0, atol=0)
    torch.testing.assert_close(GM2.flow_map(x, 120, -1, VPProcess(S)), GM2.flow_map(x, 120, -1, S), rtol=0, atol=0)


def test_the_backward_map_moves_points_toward_the_data_modes():
    gm = td.GaussianMixture.diagonal([1, 1, 1, 1], [[-3.0, -3.0], [-3.0, 3.0], [3.0, -3.0], [3.0, 3.0]], 0.3)
    x = gm.flow_map(gm.sample(64, torch.Generator().manual_seed(8)), 0.0, 0.9, LIN, **TOL)  # exact x_0.9 draws

    def to_modes(y):
        return torch.cdist(y, gm.means).min(dim=1).values.mean()

    assert to_modes(gm.flow_map(x, 0.9, 0.1, LIN, **TOL)) < 0.5 * to_modes(x)
    assert to_modes(gm.flow_map(x, 0.9, 0.1, LIN, **TOL)) < to_modes(gm.flow_map(x, 0.1, 0.9, LIN, **TOL))


# --- the consistency function -------------------------------------------------------------------------------
def test_consistency_fn_is_the_identity_at_the_clean_end_only():
    x = points(5, 2, seed=9)
    assert torch.equal(GM2.consistency_fn(LIN)(x, 0.0), x)
    assert (GM2.consistency_fn(LIN)(x, 0.01) - x).abs().max() > 1e-4
    f_vp = GM2.consistency_fn(S)
    assert torch.equal(f_vp(x, -1), x)
    x0_step = f_vp(x, 0)  # step 0 is not clean: ᾱ_0 < 1, an off-by-one would return x here
    assert (x0_step - x).abs().max() > 1e-6
    torch.testing.assert_close(x0_step, GM2.flow_map(x, 0, -1, S), rtol=0, atol=0)


@pytest.mark.parametrize("process,clean,times", [(LIN, 0.0, [0.2, 0.6, 1.0]), (COS, 0.0, [0.3, 0.95]),
                                                 (S, -1, [10, 100, 199])], ids=["linear", "cosine", "vp"])
def test_consistency_fn_maps_every_point_of_one_path_to_its_start(process, clean, times):
    x0 = GM2.sample(4, torch.Generator().manual_seed(10))
    f = GM2.consistency_fn(process, **TOL)
    for t in times:
        torch.testing.assert_close(f(GM2.flow_map(x0, clean, t, process, **TOL), t), x0, rtol=0, atol=1e-6)


# --- the average velocity ------------------------------------------------------------------------------------
@pytest.mark.parametrize("interp", [LIN, COS], ids=["linear", "cosine"])
def test_average_velocity_reproduces_the_flow_map(interp):
    x = points(5, 2, seed=11)
    r, t = torch.tensor([0.1, 0.3, 0.0, 0.9, 0.5], dtype=torch.float64), 0.8
    u = GM2.average_velocity(x, r, t, interp, **TOL)
    torch.testing.assert_close(x - (t - r)[:, None] * u, GM2.flow_map(x, t, r, interp, **TOL), rtol=0, atol=1e-8)


def test_average_velocity_tends_to_the_instantaneous_velocity():
    x = points(5, 2, seed=12)
    v = GM2.velocity(x, 0.6, LIN)
    torch.testing.assert_close(GM2.average_velocity(x, 0.6, 0.6, LIN), v, rtol=0, atol=0)
    for r in (0.6 - 1e-4, 0.6 + 1e-4):  # from either side; a sign error flips u* and fails by 2|v|
        torch.testing.assert_close(GM2.average_velocity(x, r, 0.6, LIN, **{"rtol": 1e-11, "atol": 1e-11}), v,
                                   rtol=0, atol=1e-3)


# --- refusals ------------------------------------------------------------------------------------------------
def test_bad_input_is_refused_naming_the_argument():
    x = points(3, 2)
    with pytest.raises(ValueError, match="t must"):
        GM2.flow_map(x, 1.5, 0.0, LIN)
    with pytest.raises(ValueError, match="s must"):
        GM2.flow_map(x, 10, 200, S)
    with pytest.raises(ValueError, match="s must"):
        GM2.flow_map(x, 10, -2, S)
    with pytest.raises(TypeError, match="t must"):
        GM2.flow_map(x, 10.5, -1, S)
    with pytest.raises(TypeError, match="process must"):
        GM2.flow_map(x, 0.5, 0.0, "linear")
    with pytest.raises(ValueError, match="x must have shape"):
        GM2.flow_map(points(3, 3), 0.5, 0.0, LIN)
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \[B=3\]"):
        GM2.flow_map(x, torch.tensor([0.5, 0.2], dtype=torch.float64), 0.0, LIN)
    with pytest.raises(ValueError, match="x contains"):
        GM2.flow_map(torch.tensor([[0.0, math.nan]] * 3, dtype=torch.float64), 0.5, 0.0, LIN)
    with pytest.raises(TypeError, match="process must be an interpolant"):
        GM2.average_velocity(x, 10, 20, S)
    with pytest.raises(ValueError, match="r must"):
        GM2.average_velocity(x, -0.1, 0.5, LIN)
