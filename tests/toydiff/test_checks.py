"""toydiff.checks: the shared argument checks name the argument and refuse bools, NaN and out-of-range values."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from toydiff.checks import check_choice, check_finite, check_int, check_number, check_tensor


@given(st.integers(-10**6, 10**6))
def test_check_int_accepts_ints_in_range(v):
    assert check_int(v, "n") == v
    if v < 0:
        with pytest.raises(ValueError, match=r"^n must be in \[0, "):
            check_int(v, "n", min=0)


@pytest.mark.parametrize("bad", [True, False, 1.0, "3", None, torch.tensor(1.0), torch.tensor(True)])
def test_check_int_refuses_non_ints_naming_the_argument(bad):
    with pytest.raises(TypeError, match="^steps must be an int"):
        check_int(bad, "steps")


def test_check_int_accepts_numpy_and_torch_integers():
    assert check_int(np.int64(4), "n") == 4 and type(check_int(np.int64(4), "n")) is int
    assert check_int(torch.tensor(5), "n", max=5) == 5
    with pytest.raises(ValueError, match=r"n must be in \[-inf, 5\], got 6"):
        check_int(6, "n", max=5)


@pytest.mark.parametrize("bad, err", [(math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError),
                                      (True, TypeError), ("1", TypeError), (None, TypeError)])
def test_check_number_refuses_nan_inf_and_non_numbers(bad, err):
    with pytest.raises(err, match="^w must be"):
        check_number(bad, "w")


def test_check_number_bounds_and_inf():
    assert check_number(3, "w", min=0) == 3.0
    assert check_number(math.inf, "w", allow_inf=True) == math.inf
    with pytest.raises(ValueError, match=r"w must be in \[1, inf\], got 0.5"):
        check_number(0.5, "w", min=1)


def test_check_choice():
    assert check_choice("ddim", "method", ("ddpm", "ddim")) == "ddim"
    with pytest.raises(ValueError, match=r"method must be one of \('ddpm', 'ddim'\), got 'heun'"):
        check_choice("heun", "method", ("ddpm", "ddim"))
    with pytest.raises(ValueError, match="method must be one of"):
        check_choice(["unhashable"], "method", {"ddpm"})


def test_check_tensor_and_finite():
    x = torch.zeros(3, 2)
    assert check_tensor(x, "x") is x
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        check_tensor([1.0], "x")
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        check_tensor(torch.zeros(3, dtype=torch.long), "x")
    with pytest.raises(ValueError, match=r"x must have shape \[B, \.\.\.\]"):
        check_tensor(torch.zeros(0, 2), "x")
    y = x.clone()
    y[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"x contains 1 NaN or infinite value\(s\) out of 6"):
        check_finite(y, "x")
