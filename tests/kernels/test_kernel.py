"""convcli.kernels.kernel: the Kernel type, the zero-sum test and the sign of a bank's sums."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import KernelSpecError
from convcli.kernels.kernel import Kernel, filter_sums, is_zero_sum, kernel_sum_sign, zero_sum_filters
from convcli.kernels.spec import parse_kernel

# ---------------------------------------------------------------- Kernel


def test_kernel_checks_and_copies() -> None:
    source = np.arange(4.0).reshape(2, 2)
    kernel = Kernel(source, label="k")
    source[0, 0] = 9
    assert kernel.weights[0, 0] == 0 and not kernel.weights.flags.writeable
    assert Kernel(np.arange(3.0)).weights.shape == (1, 3)
    assert Kernel(np.ones((2, 1, 3, 3))).is_layer
    with pytest.raises(KernelSpecError, match="3-D array"):
        Kernel(np.ones((2, 3, 3)))
    with pytest.raises(KernelSpecError, match="bias b must have shape"):
        Kernel(np.ones((2, 1, 3, 3)), np.ones(3))


# ---------------------------------------------------------------- the zero-sum test and kernel_sum_sign


def test_kernel_sum_sign() -> None:
    k = parse_kernel
    assert kernel_sum_sign([k("gaussian:1"), k("box:3"), k("sharpen")]) == 1
    assert kernel_sum_sign([k("sobel-x")]) == 0
    assert kernel_sum_sign([k("gaussian:1"), k("laplacian")]) == 0
    assert kernel_sum_sign([k("log:2")]) == 0
    assert kernel_sum_sign([k("-1,-2")]) == -1
    assert kernel_sum_sign([k("-1,-2"), k("1")]) == 0
    assert kernel_sum_sign([k("-1,-2"), k("1")], normalize=True) == 1
    layer = np.ones((2, 1, 3, 3))
    layer[1] = -1
    assert kernel_sum_sign([Kernel(layer)]) == 0
    assert kernel_sum_sign([Kernel(np.abs(layer))]) == 1


def test_is_zero_sum_is_relative_to_the_taps() -> None:
    assert is_zero_sum(1e-13) and not is_zero_sum(2e-12)  # without magnitudes: absolute
    assert is_zero_sum(1e-9, 1e4) and not is_zero_sum(1e-7, 1e4)
    np.testing.assert_array_equal(is_zero_sum(np.array([0.0, 1.0, np.nan]), np.array([2.0, 1.0, 1.0])),
                                  [True, False, False])
    log = parse_kernel("log:0.01").weights  # taps ~1e4, sum ~1e-12: rounding noise
    sums, l1 = filter_sums(log[None])
    assert abs(sums[0]) > 1e-12 and zero_sum_filters(log[None]).tolist() == [True]
    assert kernel_sum_sign([Kernel(log)]) == 0
