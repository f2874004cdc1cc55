"""The Convolution layer against the naive reference: forward, dx, dW, db; dtypes; drop-in
behaviour (W and b used in place); tiling; argument checks; optional PyTorch comparison."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from reference import (
    PADDING_MODES,
    assert_close,
    check_layer,
    conv2d_backward,
    conv2d_forward,
    conv_cases,
    numerical_gradient,
    position_coded,
    power_of_two_taps,
    resolve_pads,
)

from convcli import Convolution, conv2d
from convcli.engine.geometry import ConvGeometry, plan_geometry
from convcli.engine.layer import DEFAULT_TILE_BYTES, plan_tiles
from convcli.engine.tiles import TilePlan
from convcli.errors import ConvcliError, ParameterError, ShapeError

Case = tuple[tuple[int, int, int, int], tuple[int, int, int, int], dict[str, object]]


def _bias(fn: int, dtype: type = np.float64) -> NDArray[np.floating]:
    """Distinct dyadic biases 0.5, 1.5, 2.5, ... (exact in any float dtype)."""
    return (np.arange(fn) + 0.5).astype(dtype)


# --------------------------------------------------------------------------- hand-computed


def test_hand_computed_cross_correlation() -> None:
    """x[i, j] = 10i + j, W = [[1, 2], [4, 8]]: out[oh, ow] = 15 * (10 oh + ow) + 130.

    130 = 1*0 + 2*1 + 4*10 + 8*11.  A flipped kernel (true convolution) would add 35, a window
    shifted by one row 150 more, by one column 15 more.
    """
    i, j = np.indices((4, 5))
    x = (10 * i + j).astype(np.float64).reshape(1, 1, 4, 5)
    W = np.array([[[[1.0, 2.0], [4.0, 8.0]]]])
    out = Convolution(W).forward(x)
    oh, ow = np.indices((3, 4))
    np.testing.assert_array_equal(out[0, 0], 15 * (10 * oh + ow) + 130)


def test_hand_computed_gradients() -> None:
    """dout = one-hot at (oh, ow) = (1, 2): dx is W placed at rows 1-2, columns 2-3; dW is the window."""
    i, j = np.indices((4, 5))
    x = (10 * i + j).astype(np.float64).reshape(1, 1, 4, 5)
    W = np.array([[[[1.0, 2.0], [4.0, 8.0]]]])
    layer = Convolution(W, np.zeros(1))
    layer.forward(x)
    dout = np.zeros((1, 1, 3, 4))
    dout[0, 0, 1, 2] = 1.0
    dx = layer.backward(dout)
    expected = np.zeros((4, 5))
    expected[1:3, 2:4] = [[1, 2], [4, 8]]
    np.testing.assert_array_equal(dx[0, 0], expected)
    np.testing.assert_array_equal(layer.dW[0, 0], [[12, 13], [22, 23]])  # type: ignore[index]
    np.testing.assert_array_equal(layer.db, [1.0])


def test_same_puts_the_extra_pixel_bottom_right() -> None:
    """2x2 kernel, 'same': pads (0, 1, 0, 1), so out[0, 0] sees x[0:2, 0:2] and the last row and
    column see zero padding below/right of the image."""
    i, j = np.indices((4, 4))
    x = (10 * i + j + 1).astype(np.float64).reshape(1, 1, 4, 4)
    W = np.array([[[[1.0, 2.0], [4.0, 8.0]]]])
    out = Convolution(W, pad="same").forward(x)
    assert out.shape == (1, 1, 4, 4)
    assert out[0, 0, 0, 0] == 1 * 1 + 2 * 2 + 4 * 11 + 8 * 12
    assert out[0, 0, 3, 3] == 1 * 34  # only the top-left tap is inside
    assert out[0, 0, 3, 0] == 1 * 31 + 2 * 32
    np.testing.assert_array_equal(out, conv2d_forward(x, W, pad=(0, 1, 0, 1)))
    assert not np.array_equal(out, conv2d_forward(x, W, pad=(1, 0, 1, 0)))


def test_same_with_stride_two() -> None:
    """H = W = 6, 3x3, stride 2: output 3x3, total padding 1, all of it bottom/right."""
    x = position_coded((1, 1, 6, 6))
    W = power_of_two_taps((1, 1, 3, 3))
    layer = check_layer(x, W, _bias(1), exact=True, stride=2, pad="same")
    out = layer.forward(x)
    assert out.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(out, conv2d_forward(x, W, _bias(1), stride=2, pad=(0, 1, 0, 1)))
    # out[0, 0] is the window x[0:3, 0:3] with no padding at all
    assert out[0, 0, 0, 0] == 0.5 + float(np.sum(W[0, 0] * x[0, 0, :3, :3]))


# --------------------------------------------------------------------------- parametrized table

TABLE: list[tuple[tuple[int, int, int, int], tuple[int, int, int, int], dict[str, object]]] = [
    ((1, 1, 5, 5), (1, 1, 3, 3), {}),
    ((2, 3, 6, 5), (4, 3, 3, 3), {"pad": 1}),
    ((2, 2, 7, 8), (3, 2, 2, 3), {"stride": 2, "pad": (1, 0)}),
    ((1, 2, 8, 7), (2, 2, 3, 2), {"stride": (2, 3), "pad": (1, 2, 0, 1)}),
    ((1, 1, 9, 9), (1, 1, 3, 3), {"dilation": 2, "pad": 2}),
    ((1, 2, 6, 9), (2, 2, 2, 3), {"dilation": (2, 3)}),
    ((2, 4, 5, 5), (4, 2, 3, 3), {"groups": 2, "pad": 1}),
    ((1, 3, 6, 6), (6, 1, 3, 3), {"groups": 3, "pad": "same"}),  # depthwise, multiplier 2
    ((1, 3, 7, 7), (3, 1, 5, 5), {"groups": 3, "pad": 2}),  # depthwise 5x5, as photos are filtered
    ((1, 2, 4, 4), (3, 2, 4, 4), {}),  # kernel fills the input: 1x1 output
    ((2, 3, 7, 7), (2, 3, 1, 1), {"stride": 3}),
    ((1, 1, 8, 8), (1, 1, 2, 2), {"stride": 3, "pad": 1}),  # stride > kernel: pixels skipped
    ((1, 1, 4, 5), (1, 1, 2, 2), {"pad": "same"}),
    ((1, 2, 6, 7), (2, 2, 3, 3), {"stride": 2, "pad": "same"}),
    ((1, 2, 6, 7), (2, 2, 3, 3), {"stride": 2, "pad": "valid"}),
    ((1, 1, 6, 6), (1, 1, 3, 3), {"pad": "same", "dilation": 2, "padding_mode": "reflect"}),
    ((1, 1, 3, 3), (1, 1, 3, 3), {"pad": 3, "padding_mode": "circular"}),  # pad == size
    ((1, 1, 3, 4), (1, 1, 2, 2), {"pad": 2, "padding_mode": "reflect"}),  # pad == H - 1
    ((1, 1, 2, 2), (1, 1, 3, 3), {"pad": 4, "padding_mode": "replicate"}),  # pad > size
    ((1, 1, 1, 1), (2, 1, 3, 3), {"pad": 1, "padding_mode": "replicate"}),
    *[((1, 2, 5, 5), (2, 2, 3, 3), {"pad": 1, "padding_mode": m}) for m in PADDING_MODES],
    *[
        ((2, 2, 5, 6), (4, 1, 3, 2), {"groups": 2, "stride": (2, 1), "pad": (2, 1, 1, 2), "dilation": (1, 2),
                                      "padding_mode": m})
        for m in PADDING_MODES
    ],
    *[((1, 1, 5, 4), (1, 1, 2, 3), {"stride": 2, "pad": "same", "padding_mode": m}) for m in PADDING_MODES],
]


@pytest.mark.parametrize(("x_shape", "w_shape", "kw"), TABLE)
def test_table_exact(
    x_shape: tuple[int, int, int, int], w_shape: tuple[int, int, int, int], kw: dict[str, object]
) -> None:
    """Position-coded input, all-distinct taps, float64: every value must match exactly."""
    check_layer(position_coded(x_shape), power_of_two_taps(w_shape), _bias(w_shape[0]), exact=True, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("x_shape", "w_shape", "kw"), TABLE)
def test_table_random(
    x_shape: tuple[int, int, int, int], w_shape: tuple[int, int, int, int], kw: dict[str, object], dtype: type
) -> None:
    rng = np.random.default_rng(abs(hash((x_shape, w_shape))) % 2**32)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    check_layer(x, W, b, **kw)
    check_layer(x, W, None, **kw)


# --------------------------------------------------------------------------- hypothesis sweeps


@given(case=conv_cases(max_kernel=4), bias=st.booleans())
@settings(max_examples=100, deadline=None)
def test_sweep_exact(case: Case, bias: bool) -> None:
    x_shape, w_shape, kw = case
    b = _bias(w_shape[0]) if bias else None
    check_layer(position_coded(x_shape), power_of_two_taps(w_shape), b, exact=True, **kw)


@given(
    case=conv_cases(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
    tile_bytes=st.sampled_from([1, 100, 1000, DEFAULT_TILE_BYTES]),
)
@settings(max_examples=150, deadline=None)
def test_sweep_random(case: Case, dtype: type, seed: int, tile_bytes: int) -> None:
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    check_layer(x, W, b, tile_bytes=tile_bytes, **kw)


# --------------------------------------------------------------------------- central differences

GRAD_CASES: list[dict[str, object]] = [
    {"pad": 1},
    {"stride": 2, "pad": (1, 2, 0, 1)},
    {"stride": (1, 2), "dilation": (2, 1), "pad": "same"},
    {"groups": 2, "pad": 1, "dilation": 2},
    {"groups": 2, "stride": 2, "pad": "same"},
]


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("kw", GRAD_CASES)
def test_gradients_central_differences(kw: dict[str, object], mode: str) -> None:
    """dx, dW, db of the layer equal float64 central differences of its own forward."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 5, 6))
    W = rng.standard_normal((4, 2 // int(kw.get("groups", 1)), 3, 2))  # type: ignore[call-overload]
    b = rng.standard_normal(4)
    layer = Convolution(W, b, padding_mode=mode, tile_bytes=200, **kw)  # type: ignore[arg-type]
    out = layer.forward(x)
    g = rng.standard_normal(out.shape)

    def loss() -> float:
        return float(np.sum(layer.forward(x) * g))

    num_dx = numerical_gradient(loss, x)
    num_dW = numerical_gradient(loss, W)  # perturbs W in place: the layer sees it
    num_db = numerical_gradient(loss, b)
    layer.forward(x)
    dx = layer.backward(g)
    for name, got, want in (("dx", dx, num_dx), ("dW", layer.dW, num_dW), ("db", layer.db, num_db)):
        assert got is not None
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_reference_backward_matches_central_differences(mode: str) -> None:
    """The reference's own backward loops agree with central differences of its forward."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 2, 4, 5))
    W = rng.standard_normal((2, 1, 2, 3))
    b = rng.standard_normal(2)
    kw: dict[str, object] = {"stride": (2, 1), "pad": (1, 2, 2, 1), "dilation": (1, 2), "groups": 2,
                             "padding_mode": mode}
    g = rng.standard_normal(conv2d_forward(x, W, b, **kw).shape)  # type: ignore[arg-type]

    def loss() -> float:
        return float(np.sum(conv2d_forward(x, W, b, **kw) * g))  # type: ignore[arg-type]

    dx, dW, db = conv2d_backward(x, W, g, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(dW, numerical_gradient(loss, W), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(db, numerical_gradient(loss, b), rtol=1e-7, atol=1e-7)


def test_reference_matches_scipy() -> None:
    """The reference against an outside oracle: scipy's correlate2d / convolve2d."""
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 9))
    k = rng.standard_normal((3, 4))
    ref = conv2d_forward(x.reshape(1, 1, 7, 9), k.reshape(1, 1, 3, 4))[0, 0]
    np.testing.assert_allclose(ref, signal.correlate2d(x, k, mode="valid"), rtol=1e-12)
    np.testing.assert_allclose(ref, signal.convolve2d(x, k[::-1, ::-1], mode="valid"), rtol=1e-12)
    full = conv2d_forward(x.reshape(1, 1, 7, 9), k.reshape(1, 1, 3, 4), pad=(2, 3))[0, 0]
    np.testing.assert_allclose(full, signal.correlate2d(x, k, mode="full"), rtol=1e-12)
    wrap = conv2d_forward(x.reshape(1, 1, 7, 9), k.reshape(1, 1, 3, 3 + 1), pad=(1, 1, 1, 2),
                          padding_mode="circular")[0, 0]
    np.testing.assert_allclose(wrap, signal.correlate2d(x, k, mode="same", boundary="wrap"), rtol=1e-12)
    out = Convolution(k.reshape(1, 1, 3, 4)).forward(x.reshape(1, 1, 7, 9))[0, 0]
    np.testing.assert_allclose(out, signal.correlate2d(x, k, mode="valid"), rtol=1e-12)


# --------------------------------------------------------------------------- dtypes

DTYPE_CASES = [
    # x, W, b -> out/dx dtype, dW dtype, db dtype
    (np.float32, np.float32, np.float32, np.float32, np.float32, np.float32),
    (np.float64, np.float64, np.float64, np.float64, np.float64, np.float64),
    (np.uint8, np.float32, np.float32, np.float32, np.float32, np.float32),
    (np.int64, np.float32, np.float32, np.float32, np.float32, np.float32),
    (np.int16, np.int64, np.int64, np.float32, np.float32, np.float32),  # integers count as float32
    (np.uint8, np.float64, np.float64, np.float64, np.float64, np.float64),
    (np.float32, np.float64, np.float64, np.float64, np.float64, np.float64),  # numpy promotion
    (np.float64, np.float32, np.float32, np.float64, np.float32, np.float32),  # dW/db keep W's/b's dtype
    (np.float32, np.float32, np.float64, np.float64, np.float32, np.float64),
]


@pytest.mark.parametrize(("xt", "wt", "bt", "out_t", "dw_t", "db_t"), DTYPE_CASES)
def test_dtypes(xt: type, wt: type, bt: type, out_t: type, dw_t: type, db_t: type) -> None:
    x = (position_coded((2, 2, 5, 5)) % 97).astype(xt)
    W = (np.arange(2 * 2 * 3 * 3).reshape(2, 2, 3, 3) % 5 - 2).astype(wt)
    b = np.array([1, -2]).astype(bt)
    layer = Convolution(W, b, pad=1, padding_mode="reflect")
    out = layer.forward(x)
    assert out.dtype == out_t
    dx = layer.backward(np.ones_like(out))
    assert dx.dtype == out_t and dx.shape == x.shape
    assert layer.dW is not None and layer.db is not None
    assert layer.dW.dtype == dw_t and layer.dW.shape == W.shape
    assert layer.db.dtype == db_t and layer.db.shape == b.shape
    # small integers: every dtype computes these exactly
    np.testing.assert_array_equal(out, conv2d_forward(x, W, b, pad=1, padding_mode="reflect"))
    ref_dx, ref_dW, ref_db = conv2d_backward(x, W, np.ones(out.shape), pad=1, padding_mode="reflect")
    np.testing.assert_array_equal(dx, ref_dx)
    np.testing.assert_array_equal(layer.dW, ref_dW)
    np.testing.assert_array_equal(layer.db, ref_db)


def test_dout_dtype_does_not_change_the_gradient_dtype() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    W = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    layer = Convolution(W, np.zeros(3, np.float32))
    out = layer.forward(x)
    dx = layer.backward(np.ones(out.shape, dtype=np.float64))
    assert dx.dtype == np.float32
    assert layer.dW.dtype == np.float32 and layer.db.dtype == np.float32  # type: ignore[union-attr]


def test_no_bias() -> None:
    layer = check_layer(position_coded((1, 2, 4, 4)), power_of_two_taps((3, 2, 3, 3)), None, exact=True, pad=1)
    assert layer.b is None and layer.db is None


# --------------------------------------------------------------------------- drop-in behaviour


def test_keeps_the_arrays_it_is_given() -> None:
    W = power_of_two_taps((2, 1, 2, 2))
    b = _bias(2)
    layer = Convolution(W, b)
    x = position_coded((1, 1, 4, 4))
    out = layer.forward(x)
    layer.backward(np.ones_like(out))
    assert layer.W is W and layer.b is b
    assert layer.dW is not W and layer.db is not b


def test_in_place_weight_update_is_seen() -> None:
    x = position_coded((1, 2, 5, 5))
    W = power_of_two_taps((3, 2, 3, 3))
    b = _bias(3)
    layer = Convolution(W, b, pad=1)
    before = layer.forward(x)
    W[...] += 1
    b[1] -= 10
    after = layer.forward(x)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, conv2d_forward(x, W, b, pad=1))
    W[0, 1, 2, 0] = -7.0  # one tap
    np.testing.assert_array_equal(layer.forward(x), conv2d_forward(x, W, b, pad=1))


def test_sgd_step_in_place() -> None:
    """W -= lr * dW (the book's optimizer) changes what the next forward computes, and lowers the loss."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    target = rng.standard_normal((4, 2, 8, 8)).astype(np.float32)
    W = (0.1 * rng.standard_normal((2, 3, 3, 3))).astype(np.float32)
    b = np.zeros(2, np.float32)
    W_id, b_id = id(W), id(b)
    layer = Convolution(W, b, pad="same")
    losses = []
    for _ in range(5):
        out = layer.forward(x)
        losses.append(float(0.5 * np.sum((out - target) ** 2)))
        layer.backward(out - target)
        W -= 1e-3 * layer.dW  # type: ignore[operator]
        b -= 1e-3 * layer.db  # type: ignore[operator]
        assert id(W) == W_id and id(b) == b_id and layer.W is W
        assert_close(layer.forward(x), conv2d_forward(x, W, b, pad="same").astype(np.float32), "after step")
    assert losses[-1] < losses[0]


def _book_numerical_gradient(f: object, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """numerical_gradient as the book writes it: np.nditer, x[idx] = tmp + h, in place."""
    h = 1e-4
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)  # type: ignore[operator]
        x[idx] = tmp_val - h
        fxh2 = f(x)  # type: ignore[operator]
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        x[idx] = tmp_val
        it.iternext()
    return grad


def test_book_numerical_gradient_on_layer_params() -> None:
    """The book's gradient check: perturb layer.W / layer.b in place, the loss closes over the layer."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 2, 6, 5))
    layer = Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), stride=1, pad=1)
    t = rng.standard_normal(layer.output_shape(x.shape))

    def loss(_: object) -> float:
        return float(0.5 * np.sum((layer.forward(x) - t) ** 2))

    num_W = _book_numerical_gradient(loss, layer.W)  # type: ignore[arg-type]
    num_b = _book_numerical_gradient(loss, layer.b)  # type: ignore[arg-type]
    out = layer.forward(x)
    layer.backward(out - t)
    np.testing.assert_allclose(layer.dW, num_W, rtol=1e-6, atol=1e-6)  # type: ignore[arg-type]
    np.testing.assert_allclose(layer.db, num_b, rtol=1e-6, atol=1e-6)  # type: ignore[arg-type]


def test_book_call_signature_and_functional_form() -> None:
    x = position_coded((2, 3, 6, 6))
    W = power_of_two_taps((4, 3, 3, 3))
    b = _bias(4)
    positional = Convolution(W, b, 2, 1).forward(x)  # Convolution(W, b, stride, pad) as in the book
    np.testing.assert_array_equal(positional, conv2d_forward(x, W, b, stride=2, pad=1))
    np.testing.assert_array_equal(conv2d(x, W, b, 2, 1), positional)
    depthwise = power_of_two_taps((3, 1, 3, 3))
    kw: dict[str, object] = {"pad": "same", "dilation": 2, "groups": 3, "padding_mode": "circular"}
    np.testing.assert_array_equal(conv2d(x, depthwise, None, **kw), conv2d_forward(x, depthwise, None, **kw))  # type: ignore[arg-type]
    assert Convolution(W, b, 2, 1).output_shape(x.shape) == (2, 4, 3, 3)


def test_non_contiguous_inputs() -> None:
    """Views with odd strides (NHWC transposed, reversed, sliced) give the same result as copies."""
    base = position_coded((2, 7, 8, 3)).transpose(0, 3, 1, 2)  # NCHW view of NHWC data
    views = [base, base[:, :, ::-1], base[:, :, 1::2, ::-1]]
    W = power_of_two_taps((4, 3, 2, 3))
    W_f = np.asfortranarray(W)
    for x in views:
        layer = Convolution(W_f, _bias(4), stride=(1, 2), pad=1, padding_mode="reflect")
        out = layer.forward(x)
        np.testing.assert_array_equal(out, conv2d_forward(np.ascontiguousarray(x), W, _bias(4), stride=(1, 2), pad=1,
                                                          padding_mode="reflect"))
        dout = np.ones(out.shape)[:, :, ::-1]
        dx = layer.backward(dout)
        ref_dx, ref_dW, _ = conv2d_backward(x, W, dout, stride=(1, 2), pad=1, padding_mode="reflect")
        np.testing.assert_array_equal(dx, ref_dx)
        np.testing.assert_array_equal(layer.dW, ref_dW)  # type: ignore[arg-type]


def test_backward_uses_the_last_forward() -> None:
    W = power_of_two_taps((2, 1, 3, 3))
    layer = Convolution(W, None, pad=1)
    layer.forward(position_coded((1, 1, 4, 4)))
    x2 = position_coded((2, 1, 6, 5))
    out2 = layer.forward(x2)
    dout = np.ones_like(out2)
    dx = layer.backward(dout)
    assert dx.shape == x2.shape
    np.testing.assert_array_equal(layer.dW, conv2d_backward(x2, W, dout, pad=1)[1])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- tiling

TILE_SIZES = [1, 7, 333, 4097, 50_000, DEFAULT_TILE_BYTES, 10**12]

TILING_CASES: list[tuple[tuple[int, int, int, int], tuple[int, int, int, int], dict[str, object]]] = [
    ((3, 2, 11, 9), (4, 2, 3, 3), {"pad": 1}),
    ((3, 6, 11, 13), (6, 3, 3, 3), {"groups": 2, "pad": 2, "padding_mode": "reflect"}),
    ((2, 3, 10, 7), (3, 1, 5, 5), {"groups": 3, "pad": 2, "padding_mode": "replicate"}),
    ((2, 2, 12, 9), (2, 2, 3, 2), {"stride": (2, 1), "dilation": (2, 1), "pad": (2, 3, 1, 0),
                                   "padding_mode": "circular"}),
    ((5, 2, 9, 9), (2, 2, 4, 4), {"stride": 3, "pad": "same", "padding_mode": "reflect"}),  # bands disjoint
    ((1, 1, 17, 5), (1, 1, 3, 3), {"dilation": 3, "pad": 3, "padding_mode": "circular"}),
    ((4, 3, 7, 8), (6, 3, 2, 3), {"stride": (1, 2), "dilation": 2, "pad": "same", "padding_mode": "replicate"}),
]


def _dout(shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Integer-valued upstream gradient -3 .. 3."""
    return (np.arange(int(np.prod(shape))).reshape(shape) % 7 - 3).astype(np.float64)


def _run(layer: Convolution, x: NDArray[np.generic]) -> list[NDArray[np.floating]]:
    """out, dx, dW, db of one forward and backward (dout from :func:`_dout`)."""
    out = layer.forward(x)
    dx = layer.backward(_dout(out.shape).astype(out.dtype))
    return [out, dx, layer.dW, layer.db]  # type: ignore[list-item]


@pytest.mark.parametrize(("x_shape", "w_shape", "kw"), TILING_CASES)
def test_tiling_exact(
    x_shape: tuple[int, int, int, int], w_shape: tuple[int, int, int, int], kw: dict[str, object]
) -> None:
    """Integer-valued float32 data (all sums exact): every tile size gives identical results,
    equal to the reference."""
    rng = np.random.default_rng(sum(x_shape))
    x = rng.integers(-4, 5, x_shape).astype(np.float32)
    W = rng.integers(-4, 5, w_shape).astype(np.float32)
    b = rng.integers(-4, 5, w_shape[0]).astype(np.float32)
    results = []
    for tile_bytes in TILE_SIZES:
        layer = Convolution(W, b, tile_bytes=tile_bytes, **kw)  # type: ignore[arg-type]
        results.append(_run(layer, x))
    first = results[0]
    ref = [conv2d_forward(x, W, b, **kw), *conv2d_backward(x, W, _dout(first[0].shape), **kw)]  # type: ignore[arg-type]
    for name, got, want in zip(("out", "dx", "dW", "db"), first, ref):
        np.testing.assert_array_equal(got, want, err_msg=name)
    for tile_bytes, res in zip(TILE_SIZES, results):
        for name, got, want in zip(("out", "dx", "dW", "db"), res, first):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want, err_msg=f"{name}, tile_bytes={tile_bytes}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("x_shape", "w_shape", "kw"), TILING_CASES)
def test_tiling_random(
    x_shape: tuple[int, int, int, int], w_shape: tuple[int, int, int, int], kw: dict[str, object], dtype: type
) -> None:
    """Random data: results agree across tile sizes to float rounding, NOT bit for bit.

    Measured (OpenBLAS, numpy 2.4): float32 forward differs in the last bits between tile
    sizes (the GEMM's width changes with the tile, and BLAS picks other kernels / summation
    orders); dW differs because the per-tile partial sums are added in another grouping;
    dx differs where bands overlap (stride < dilated kernel) because overlapping
    contributions are added in another order.  db is computed from dout alone and is
    identical.  Differences are ~1e-7 relative in float32 and ~1e-15 in float64, so this
    test asserts closeness (RTOL of the dtype), and test_tiling_exact asserts bit-identity
    where arithmetic is exact.
    """
    rng = np.random.default_rng(sum(x_shape) + 1)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    whole = _run(Convolution(W, b, tile_bytes=10**12, **kw), x)  # type: ignore[arg-type]
    for tile_bytes in TILE_SIZES[:-1]:
        res = _run(Convolution(W, b, tile_bytes=tile_bytes, **kw), x)  # type: ignore[arg-type]
        for name, got, want in zip(("out", "dx", "dW", "db"), res, whole):
            assert_close(got, want, f"{name}, tile_bytes={tile_bytes}")
        np.testing.assert_array_equal(res[3], whole[3])


def _covered_once(plan: TilePlan) -> None:
    """The tiles partition the output and the chunks the reduction, each exactly once."""
    geom = plan.geom
    covered = np.zeros((geom.batch, geom.out_h), int)
    for t in plan.tiles:
        covered[t.n0:t.n1, t.row0:t.row1] += 1
    assert (covered == 1).all()
    taps = np.zeros((geom.channels_per_group, geom.kernel_h, geom.kernel_w), int)
    for c in plan.chunks:
        taps[c.k0:c.k1, c.i0:c.i1, c.j0:c.j1] += 1
    assert (taps == 1).all()


def test_plan_tiles_shapes() -> None:
    geom = plan_geometry((5, 2, 9, 8), (3, 2, 3, 3), pad=1)  # OH = 9, OW = 8
    row_pitch = geom.padded_hw[1]  # stride 1: the GEMM computes W + left + right columns per row
    row_bytes = 2 * 3 * 3 * row_pitch * 4
    image_bytes = row_bytes * geom.out_h
    span = plan_tiles(geom, 4, row_bytes)  # one row fits: a tile still holds the kernel's span, 3 output rows
    assert len(span.chunks) == 1 and len(span.tiles) == 5 * 3
    assert all(t.n1 - t.n0 == 1 and t.row1 - t.row0 == 3 for t in span.tiles)
    odd = plan_tiles(geom, 4, 5 * row_bytes - 1)  # 4 rows fit: evened out to 3 tiles of 3 rows
    assert [t.row1 - t.row0 for t in odd.tiles[:3]] == [3, 3, 3] and len(odd.tiles) == 5 * 3
    uneven = plan_tiles(geom, 4, 6 * row_bytes)  # 6 rows fit: 2 tiles, evened to 5 + 4
    assert [(t.row0, t.row1) for t in uneven.tiles[:2]] == [(0, 5), (5, 9)] and len(uneven.tiles) == 5 * 2
    multi = plan_tiles(geom, 4, 2 * image_bytes + 5)  # 2 images per tile: 2, 2, 1
    assert [(t.n0, t.n1, t.row0, t.row1) for t in multi.tiles] == [(0, 2, 0, 9), (2, 4, 0, 9), (4, 5, 0, 9)]
    whole = plan_tiles(geom, 4, 10**12)
    assert [(t.n0, t.n1, t.row0, t.row1) for t in whole.tiles] == [(0, 5, 0, geom.out_h)]
    for plan in (span, odd, uneven, multi, whole, plan_tiles(geom, 8, 12345)):
        assert len(plan.chunks) == 1
        _covered_once(plan)


def test_plan_splits_the_reduction_when_one_row_is_too_large() -> None:
    """Under one row's columns the reduction is cut: whole kernel rows first, with as many output
    rows per tile as fit beside them; then single rows and runs of kernel columns; then runs of
    channels (one tap each)."""
    geom = plan_geometry((2, 2, 9, 8), (3, 2, 3, 3), pad=1)
    tap_row = 2 * row_pitch(geom) * 4  # one tap, one output row, both channels
    rows = plan_tiles(geom, 4, 3 * tap_row)  # one kernel row (3 taps) of one output row fits
    assert [(c.i0, c.i1, c.j0, c.j1, c.k0, c.k1) for c in rows.chunks] == [(0, 1, 0, 3, 0, 2), (1, 2, 0, 3, 0, 2),
                                                                             (2, 3, 0, 3, 0, 2)]
    assert all(t.rows == 1 for t in rows.tiles)
    two_rows = plan_tiles(geom, 4, 6 * tap_row)  # two of those fit: a kernel row beside 2 output rows
    assert [(c.i0, c.i1) for c in two_rows.chunks] == [(0, 1), (1, 2), (2, 3)]
    assert [t.rows for t in two_rows.tiles[:5]] == [2, 2, 2, 2, 1]
    tall_geom = plan_geometry((2, 2, 9, 8), (3, 2, 25, 3), pad="same")  # one row: 75 taps
    tall = plan_tiles(tall_geom, 4, 74 * tap_row)  # 24 kernel rows × output rows: all 9 rows beside 2 kernel rows
    assert [(c.i0, c.i1) for c in tall.chunks] == [(2 * k, 2 * k + 2) for k in range(12)] + [(24, 25)]
    assert [t.rows for t in tall.tiles] == [9, 9]
    cols = plan_tiles(geom, 4, 2 * tap_row)  # less than a kernel row: runs of columns
    assert {(c.i1 - c.i0, c.k1 - c.k0) for c in cols.chunks} == {(1, 2)} and len(cols.chunks) > 3
    channels = plan_tiles(geom, 4, tap_row // 2)  # not even one tap of both channels: one channel at a time
    assert {c.shape for c in channels.chunks} == {(1, 1, 1)} and len(channels.chunks) == 18
    for plan in (cols, channels):
        assert all(t.rows == 1 and t.images == 1 for t in plan.tiles) and len(plan.tiles) == 2 * 9
    for plan in (rows, two_rows, tall, cols, channels):
        assert plan.chunked
        _covered_once(plan)


def row_pitch(geom: ConvGeometry) -> int:
    return geom.out_w + geom.dilation[1] * (geom.kernel_w - 1) // geom.stride[1]


def test_tiling_multi_image_tiles_with_short_last_tile() -> None:
    """5 images at 2 per tile: the last tile holds 1 image in buffers sized for 2."""
    x = position_coded((5, 2, 6, 6))
    W = power_of_two_taps((3, 2, 3, 3))
    geom = plan_geometry(x.shape, W.shape, pad=1, padding_mode="replicate")
    image_bytes = 2 * 9 * geom.padded_hw[1] * geom.out_h * 8  # the GEMM's row pitch is the padded width
    layer = check_layer(x, W, _bias(3), exact=True, pad=1, padding_mode="replicate", tile_bytes=2 * image_bytes)
    assert len(plan_tiles(geom, 8, layer.tile_bytes).tiles) == 3


# --------------------------------------------------------------------------- argument checks

LAYER_ERRORS: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, object], type, str]] = [
    ((3, 8, 8), (1, 3, 3, 3), {}, ShapeError, r"x must be 4-D \(N, C, H, W\), got 3-D shape \(3, 8, 8\)"),
    ((1, 1, 3, 8, 8), (1, 3, 3, 3), {}, ShapeError, r"x must be 4-D .*5-D shape \(1, 1, 3, 8, 8\)"),
    ((2, 4, 8, 8), (5, 3, 3, 3), {}, ShapeError, r"x has 4 channels but W expects 3 \(W.shape\[1\]=3 × groups=1\)"),
    ((2, 4, 8, 8), (6, 1, 3, 3), {"groups": 2}, ShapeError, r"x has 4 channels but W expects 2 .*groups=2"),
    ((2, 4, 8, 8), (6, 2, 3, 3), {"groups": 3}, ParameterError, r"groups=3 does not divide the input's 4 channels"),
    ((2, 6, 8, 8), (4, 2, 3, 3), {"groups": 3}, ParameterError, r"groups=3 does not divide the 4 filters"),
    ((1, 3, 8, 8), (2, 3, 3, 3), {"stride": 0}, ParameterError, r"stride must be >= 1, got 0"),
    ((1, 3, 8, 8), (2, 3, 3, 3), {"stride": (2, 0)}, ParameterError, r"stride must be >= 1, got \(2, 0\)"),
    ((1, 3, 8, 8), (2, 3, 3, 3), {"dilation": -1}, ParameterError, r"dilation must be >= 1, got -1"),
    ((1, 3, 8, 8), (2, 3, 3, 3), {"pad": -2}, ParameterError, r"pad must be >= 0, got -2"),
    ((1, 3, 8, 8), (2, 3, 3, 3), {"pad": (1, 1, -1, 1)}, ParameterError, r"pad must be >= 0, got \(1, 1, -1, 1\)"),
    ((1, 3, 24, 32), (2, 3, 40, 40), {}, ShapeError, r"kernel 40×40 is larger than the padded input 24×32"),
    ((1, 3, 4, 4), (2, 3, 3, 3), {"dilation": 2, "pad": (0, 1)}, ShapeError,
     r"kernel 3×3 \(dilated to 5×5\) is larger than the padded input 4×6"),
    ((1, 1, 4, 4), (1, 1, 3, 3), {"padding_mode": "wrapped"}, ParameterError,
     r"padding_mode must be one of .*'wrapped'"),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "kw", "cls", "pattern"), LAYER_ERRORS)
def test_forward_refuses(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], kw: dict[str, object], cls: type, pattern: str
) -> None:
    shape_free = cls is ParameterError and not any(word in pattern for word in ("divide", "reflect"))
    if shape_free:  # stride, dilation, pad, padding mode: refused when the layer is built
        with pytest.raises(cls, match=pattern) as info:
            Convolution(np.ones(w_shape), np.zeros(w_shape[0]), **kw)  # type: ignore[arg-type]
        assert isinstance(info.value, ConvcliError) and isinstance(info.value, ValueError)
        return
    layer = Convolution(np.ones(w_shape), np.zeros(w_shape[0]), **kw)  # type: ignore[arg-type]
    with pytest.raises(cls, match=pattern) as info:
        layer.forward(np.ones(x_shape))
    assert isinstance(info.value, ConvcliError) and isinstance(info.value, ValueError)
    assert layer.x is None  # a refused forward leaves no state behind


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"stride": 0}, "stride must be >= 1"),
        ({"dilation": (1, 0)}, "dilation must be >= 1"),
        ({"pad": -1}, "pad must be >= 0"),
        ({"pad": "full"}, "pad must be an int"),
        ({"groups": 0}, "groups must be >= 1"),
        ({"padding_mode": "wrapped"}, "padding_mode must be one of"),
        ({"tile_bytes": 0}, "tile_bytes must be an int >= 1"),
        ({"tile_bytes": None}, "tile_bytes must be an int >= 1"),
    ],
)
def test_constructor_refuses_shape_free_arguments(kw: dict[str, object], pattern: str) -> None:
    with pytest.raises(ParameterError, match=pattern):
        Convolution(np.ones((2, 3, 3, 3)), None, **kw)  # type: ignore[arg-type]


def test_progress_reports_every_tile() -> None:
    x = np.random.default_rng(0).standard_normal((1, 2, 40, 30)).astype(np.float32)
    layer = Convolution(np.ones((3, 2, 3, 3), np.float32), None, pad=1, tile_bytes=2 * 9 * 32 * 4 * 3)
    calls: list[tuple[int, int]] = []
    layer.progress = lambda done, total: calls.append((done, total))
    out = layer.forward(x)
    total = calls[-1][1]
    assert total > 3 and calls == [(k, total) for k in range(1, total + 1)]
    layer.progress = None
    np.testing.assert_array_equal(layer.forward(x), out)


def test_dout_of_wrong_shape() -> None:
    layer = Convolution(np.ones((4, 3, 3, 3)), np.zeros(4), pad=1)
    layer.forward(np.ones((2, 3, 5, 6)))
    for bad in [(2, 4, 5, 5), (2, 4, 6, 5), (1, 4, 5, 6), (2, 3, 5, 6), (4, 5, 6)]:
        pattern = r"dout must have the forward output's shape \(2, 4, 5, 6\), got " + (
            r"\(" + ", ".join(map(str, bad)) + r"\)"
        )
        with pytest.raises(ShapeError, match=pattern) as info:
            layer.backward(np.ones(bad))
        assert isinstance(info.value, ValueError)


def test_backward_before_forward() -> None:
    layer = Convolution(np.ones((1, 1, 3, 3)))
    with pytest.raises(ConvcliError, match=r"backward needs a forward pass first") as info:
        layer.backward(np.ones((1, 1, 3, 3)))
    assert isinstance(info.value, ValueError)


def test_constructor_refuses_bad_w_and_b() -> None:
    with pytest.raises(ShapeError, match=r"W must be 4-D .*got shape \(3, 3\)"):
        Convolution(np.ones((3, 3)))
    with pytest.raises(ShapeError, match=r"b must have shape \(4,\) to match W's 4 filters, got \(3,\)"):
        Convolution(np.ones((4, 1, 3, 3)), np.zeros(3))
    with pytest.raises(ShapeError, match=r"b must have shape \(4,\) .*got \(1, 4\)"):
        Convolution(np.ones((4, 1, 3, 3)), np.zeros((1, 4)))


# --------------------------------------------------------------------------- PyTorch (optional)

TORCH_MODES = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "replicate",
               "circular": "circular"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("x_shape", "w_shape", "kw"), TABLE + TILING_CASES)
def test_matches_torch(
    x_shape: tuple[int, int, int, int], w_shape: tuple[int, int, int, int], kw: dict[str, object], dtype: type
) -> None:
    """Forward and autograd gradients of torch.nn.functional.conv2d (padding modes via F.pad)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    stride, dilation = kw.get("stride", 1), kw.get("dilation", 1)
    groups = int(kw.get("groups", 1))  # type: ignore[call-overload]
    mode = str(kw.get("padding_mode", "zeros"))
    if mode == "symmetric":
        pytest.skip("torch has no symmetric padding (scipy.ndimage's reflect checks it)")
    s = stride if isinstance(stride, tuple) else (stride, stride)
    d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    top, bottom, left, right = resolve_pads(kw.get("pad", 0), x_shape[2:], w_shape[2:], s, d)  # type: ignore[arg-type]

    tx = torch.tensor(x, requires_grad=True)
    tW = torch.tensor(W, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(mode.partition(":")[2] or 0)
        padded = F.pad(tx, (left, right, top, bottom), mode=TORCH_MODES[mode.partition(":")[0]],
                       **({"value": value} if mode.startswith("constant") else {}))
        tout = F.conv2d(padded, tW, tb, stride=s, dilation=d, groups=groups)
    dout = rng.standard_normal(tuple(tout.shape)).astype(dtype)
    tout.backward(torch.tensor(dout))

    layer = Convolution(W, b, **kw)  # type: ignore[arg-type]
    out = layer.forward(x)
    dx = layer.backward(dout)
    assert_close(out, tout.detach().numpy(), "forward")
    assert_close(dx, tx.grad.numpy(), "dx")
    assert_close(layer.dW, tW.grad.numpy(), "dW")  # type: ignore[arg-type]
    assert_close(layer.db, tb.grad.numpy(), "db")  # type: ignore[arg-type]
