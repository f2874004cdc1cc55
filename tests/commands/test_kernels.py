"""convcli.commands.kernels: format_matrix, how ``convcli kernels`` prints a kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convcli.commands.kernels import format_matrix
from convcli.errors import ShapeError
from convcli.kernels.builtins import (
    SOBEL_X,
    SOBEL_Y,
)
from convcli.kernels.files import load_kernel_bytes
from convcli.kernels.spec import parse_kernel


def test_format_matrix() -> None:
    assert format_matrix(parse_kernel("gaussian:1:3").weights).count("\n") == 2
    assert format_matrix(np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16) == (
        "0.0625  0.125  0.0625\n"
        "0.125   0.25   0.125\n"
        "0.0625  0.125  0.0625"
    )
    assert format_matrix(SOBEL_X) == "-1  0  1\n-2  0  2\n-1  0  1"
    assert format_matrix(SOBEL_Y) == "-1  -2  -1\n 0   0   0\n 1   2   1"
    assert format_matrix(np.array([[-0.0, 1 / 3]])) == "0  0.333333"
    assert format_matrix(np.array([[10.5, -2]])) == "10.5  -2"
    assert format_matrix(np.ones((1, 2, 1, 1))) == "[0, 0]\n1\n[0, 1]\n1"
    with pytest.raises(ShapeError):
        format_matrix(np.ones((2, 2, 2)))


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                  elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)))
def test_format_matrix_reads_back(weights: np.ndarray) -> None:
    text = format_matrix(weights)
    lines = text.split("\n")
    assert len(lines) == weights.shape[0]
    back = load_kernel_bytes(text.encode(), "text").weights
    np.testing.assert_allclose(back, weights, rtol=1e-5, atol=1e-300)


def test_format_matrix_columns_align() -> None:
    text = format_matrix(np.array([[1.5, -20.25], [100.0, 0.125]]))
    assert text.split("\n") == ["  1.5  -20.25", "100      0.125"]
