"""convcli.kernels.bank: filter banks (depthwise order, flip, normalize, groups, biases)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kernel_helpers import correlate, distinct

from convcli.engine.layer import Convolution
from convcli.errors import ConvcliError, InputFileError, KernelSpecError, ParameterError, ShapeError
from convcli.kernels.bank import filter_bank, kernel_stack
from convcli.kernels.bias import parse_bias
from convcli.kernels.builtins import SOBEL_X
from convcli.kernels.kernel import Kernel
from convcli.kernels.spec import parse_kernel

# ---------------------------------------------------------------- filter banks


def test_depthwise_order_is_c_times_m_plus_m() -> None:
    kernels = [Kernel(distinct(3, 3, 0), label="a"), Kernel(distinct(3, 3, 9), label="b")]
    w, b, groups = filter_bank(kernels, 3)
    assert w.shape == (6, 1, 3, 3) and groups == 3 and b is None
    assert w.dtype == np.float64 and w.flags.c_contiguous and w.flags.writeable
    for c in range(3):
        for m in range(2):
            np.testing.assert_array_equal(w[c * 2 + m, 0], kernels[m].weights)


def test_depthwise_bank_through_the_engine() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 8))
    kernels = [Kernel(distinct(3, 3, 0)), Kernel(distinct(3, 3, 9) * -1)]
    w, b, groups = filter_bank(kernels, 3)
    out = Convolution(w, b, groups=groups).forward(x)
    assert out.shape == (2, 6, 5, 6)
    for n in range(2):
        for c in range(3):
            for m in range(2):
                np.testing.assert_allclose(out[n, c * 2 + m], correlate(x[n, c], kernels[m].weights), rtol=1e-12)


def test_depthwise_groups_argument() -> None:
    kernel = [parse_kernel("sobel-x")]
    assert filter_bank(kernel, 3, groups=3)[2] == 3
    with pytest.raises(ParameterError, match="groups=1 does not fit 2-D kernels"):
        filter_bank(kernel, 3, groups=1)


def test_2d_kernels_of_different_sizes_share_a_frame_centred_on_their_origins() -> None:
    w, _, _ = filter_bank([parse_kernel("sobel-x"), parse_kernel("identity")], 1)
    assert w.shape == (2, 1, 3, 3)
    np.testing.assert_array_equal(w[1, 0], [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(w[0, 0], parse_kernel("sobel-x").weights)
    # box:2 has its origin at (0, 0), where 'same' padding puts an even kernel's: it sits bottom-right of centre
    w, _, _ = filter_bank([parse_kernel("sobel-x"), parse_kernel("box:2")], 1)
    np.testing.assert_array_equal(w[1, 0], [[0, 0, 0], [0, 0.25, 0.25], [0, 0.25, 0.25]])


def test_flip_rotates_both_axes() -> None:
    k = distinct(2, 3)
    w, _, _ = filter_bank([Kernel(k)], 2, flip=True)
    for c in range(2):
        np.testing.assert_array_equal(w[c, 0], k[::-1, ::-1])
    layer = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    w, _, _ = filter_bank([Kernel(layer)], 3, flip=True)
    np.testing.assert_array_equal(w, layer[:, :, ::-1, ::-1])


def test_flip_is_true_convolution() -> None:
    x = np.random.default_rng(2).standard_normal((1, 1, 6, 7))
    k = distinct(3, 3)
    w, _, g = filter_bank([Kernel(k)], 1, flip=True)
    out = Convolution(w, groups=g).forward(x)
    scipy_signal = pytest.importorskip("scipy.signal")
    np.testing.assert_allclose(out[0, 0], scipy_signal.convolve2d(x[0, 0], k, mode="valid"), rtol=1e-12)


def test_normalize() -> None:
    kernels = [parse_kernel("1,2,1;2,4,2;1,2,1"), parse_kernel("sobel-x"), parse_kernel("-1,-3"), parse_kernel("log:1")]
    w, _, _ = filter_bank(kernels[:2], 2, normalize=True)
    np.testing.assert_allclose(w[0, 0], np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    np.testing.assert_array_equal(w[1, 0], SOBEL_X)  # zero-sum: left alone
    np.testing.assert_allclose(w[2, 0], w[0, 0])
    w, _, _ = filter_bank([kernels[2]], 1, normalize=True)
    np.testing.assert_allclose(w[0, 0], [[0.25, 0.75]])  # divided by its (negative) sum
    w, _, _ = filter_bank([kernels[3]], 1, normalize=True)
    np.testing.assert_array_equal(w[0, 0], kernels[3].weights)  # sum ~1e-18: left alone
    w, _, _ = filter_bank([Kernel(np.array([[1.0, -1.0 + 5e-13]]))], 1, normalize=True)
    np.testing.assert_array_equal(w[0, 0], [[1.0, -1.0 + 5e-13]])  # zero-sum: |sum| <= 1e-12 * max(1, sum |w|)
    w, _, _ = filter_bank([Kernel(np.array([[1.0, -1.0 + 1e-9]]))], 1, normalize=True)
    np.testing.assert_allclose(w[0, 0], np.array([[1.0, -1.0 + 1e-9]]) / 1e-9, rtol=1e-6)


def test_normalize_layer_per_filter() -> None:
    layer = np.stack([np.ones((2, 3, 3)), np.ones((2, 3, 3)) * 3, np.zeros((2, 3, 3))])
    layer[2, 0, 0, 0], layer[2, 1, 0, 0] = 1, -1
    w, _, _ = filter_bank([Kernel(layer)], 2, normalize=True)
    np.testing.assert_allclose(w[0], 1 / 18)
    np.testing.assert_allclose(w[1], 1 / 18)
    np.testing.assert_array_equal(w[2], layer[2])


def test_layer_channels_and_groups() -> None:
    layer = Kernel(np.ones((4, 2, 3, 3)), label="lay")
    w, b, g = filter_bank([layer], 2)
    assert w.shape == (4, 2, 3, 3) and g == 1 and b is None
    assert filter_bank([layer], 4, groups=2)[2] == 2
    with pytest.raises(ShapeError) as info:
        filter_bank([layer], 3)
    message = str(info.value)
    assert "2 channel(s) per group" in message and "groups=1 = 2" in message and "has 3" in message
    with pytest.raises(ShapeError, match="groups=2 = 4 input channels, but the input has 2"):
        filter_bank([layer], 2, groups=2)
    with pytest.raises(ParameterError, match="groups=3 must divide the number of filters FN=4"):
        filter_bank([Kernel(np.ones((4, 1, 3, 3)))], 3, groups=3)
    with pytest.raises(ParameterError, match="positive integer"):
        filter_bank([layer], 2, groups=0)


def test_layers_concatenate_with_biases() -> None:
    a = Kernel(np.ones((2, 3, 3, 3)), np.array([1.0, 2.0]), "a")
    b = Kernel(np.full((1, 3, 3, 3), 2.0), None, "b")
    w, bias, g = filter_bank([a, b], 3)
    assert w.shape == (3, 3, 3, 3) and g == 1
    np.testing.assert_array_equal(w[2], 2.0)
    np.testing.assert_array_equal(bias, [1.0, 2.0, 0.0])
    with pytest.raises(KernelSpecError, match=r"same \(C/groups, FH, FW\)"):
        filter_bank([a, Kernel(np.ones((1, 3, 5, 5)), label="big")], 3)


def test_depthwise_bias_is_repeated_per_channel() -> None:
    kernels = [Kernel(np.ones((3, 3)), np.array(0.5)), Kernel(np.ones((3, 3)))]
    _, b, _ = filter_bank(kernels, 3)
    np.testing.assert_array_equal(b, [0.5, 0, 0.5, 0, 0.5, 0])


def test_bank_errors() -> None:
    with pytest.raises(KernelSpecError, match="cannot mix 2-D kernel 'sobel-x'"):
        filter_bank([parse_kernel("sobel-x"), Kernel(np.ones((1, 1, 3, 3)))], 1)
    with pytest.raises(KernelSpecError, match="no kernel"):
        filter_bank([], 3)
    with pytest.raises(ShapeError, match="channels must be a positive integer"):
        filter_bank([parse_kernel("sobel-x")], 0)


def test_normalize_leaves_large_tap_zero_sum_kernels_alone() -> None:
    log = parse_kernel("log:0.01")
    w, _, _ = filter_bank([log], 1, normalize=True)
    np.testing.assert_array_equal(w[0, 0], log.weights)  # not divided by its ~1e-12 sum (weights ~1e16)
    w, _, _ = filter_bank([log], 1, normalize=True, flip=True)
    np.testing.assert_array_equal(w[0, 0], log.weights[::-1, ::-1])


def test_kernel_stack() -> None:
    a, b = parse_kernel("sobel-x"), parse_kernel("box:3")
    stack = kernel_stack([a, b])
    assert stack.shape == (2, 3, 3) and stack.dtype == np.float64
    np.testing.assert_array_equal(stack[0], SOBEL_X)
    layer = Kernel(np.arange(24.0).reshape(2, 3, 2, 2))
    assert kernel_stack([layer, layer]).shape == (4, 3, 2, 2)


# ---------------------------------------------------------------- parse_bias: a bias given as text or a .npy file


def test_parse_bias_numbers_and_file(tmp_path: Path) -> None:
    np.testing.assert_array_equal(parse_bias("0.5"), [0.5])
    np.testing.assert_array_equal(parse_bias("0.1,-2;3"), [0.1, -2.0, 3.0])
    path = tmp_path / "b.npy"
    np.save(path, np.array([[1, 2], [3, 4]], dtype=np.int16))
    got = parse_bias(str(path))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [1, 2, 3, 4])


@pytest.mark.parametrize("text", ["nan", "1,inf", "abc", "missing.npy"])
def test_parse_bias_refuses(text: str) -> None:
    with pytest.raises(ConvcliError, match="--bias"):
        parse_bias(text)


def test_parse_bias_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys
    from types import SimpleNamespace

    buffer = io.BytesIO()
    np.save(buffer, np.array([0.5, -1.0], np.float32))
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(buffer.getvalue())))
    np.testing.assert_array_equal(parse_bias("-"), [0.5, -1.0])
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(b"0.5")))
    with pytest.raises(InputFileError, match=r"cannot read '<stdin>' as \.npy"):
        parse_bias("-")


def test_check_range_refuses_filters_that_overflow_the_compute_dtype() -> None:
    from convcli.errors import KernelSpecError
    from convcli.kernels.bank import LayerWeights, check_range

    huge = LayerWeights(np.full((1, 1, 1, 1), 1e308), None, 1)
    with pytest.raises(KernelSpecError, match=r"too large for float32: .* 1e\+308, more than float32 holds .*"
                                              r"use --dtype float64"):
        check_range(huge, np.dtype(np.float32))
    check_range(huge, np.dtype(np.float64))  # fits there
    twice = LayerWeights(np.full((1, 1, 1, 2), 1e308), None, 1)
    with pytest.raises(KernelSpecError, match="more than float64 holds .*; scale it down"):
        check_range(twice, np.dtype(np.float64))
    biased = LayerWeights(np.ones((1, 1, 1, 1)), np.array([1e39]), 1)
    with pytest.raises(KernelSpecError, match="float32"):
        check_range(biased, np.dtype(np.float32))
    check_range(LayerWeights(np.full((2, 1, 3, 3), 1e30), None, 1), np.dtype(np.float32))
