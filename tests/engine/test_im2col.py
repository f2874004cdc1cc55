"""im2col / col2im: the pinned layout, the naive reference, known col2im results, the adjoint
identity; the padding windows (source_index, read_window, add_window) and the items' columns
(Workspace.columns, FlatTile.fold and scatter) behind the layer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from reference import PADDING_MODES, conv2d_forward, conv_cases, im2col_reference, pad_input, position_coded

from convcli import col2im, im2col
from convcli.engine.geometry import plan_geometry
from convcli.engine.padding import Lattice, add_window, read_window, source_index, window
from convcli.engine.tiles import Chunk, Tile, TilePlan, Workspace
from convcli.errors import ConvcliError, ShapeError

# --------------------------------------------------------------------------- layout


def test_im2col_layout_hand_computed() -> None:
    """Rows are (n, oh, ow) in C order, columns (c, i, j) channel-major; x[n,c,i,j] = 1000n+100c+10i+j+1."""
    x = position_coded((2, 2, 3, 3))
    col = im2col(x, 2, 2)
    image0 = np.array(
        [
            # c=0: (0,0) (0,1) (1,0) (1,1)   c=1: same taps
            [1, 2, 11, 12, 101, 102, 111, 112],  # oh=0, ow=0
            [2, 3, 12, 13, 102, 103, 112, 113],  # oh=0, ow=1
            [11, 12, 21, 22, 111, 112, 121, 122],  # oh=1, ow=0
            [12, 13, 22, 23, 112, 113, 122, 123],  # oh=1, ow=1
        ],
        dtype=np.float64,
    )
    assert col.shape == (2 * 2 * 2, 2 * 2 * 2)
    np.testing.assert_array_equal(col[:4], image0)
    np.testing.assert_array_equal(col[4:], image0 + 1000)


def test_im2col_layout_padding_and_stride() -> None:
    """3x3 image [[1,2,3],[11,12,13],[21,22,23]], 2x2 kernel, stride 2, pad 1 (zeros)."""
    x = position_coded((1, 1, 3, 3))
    col = im2col(x, 2, 2, stride=2, pad=1)
    expected = np.array(
        [
            [0, 0, 0, 1],  # window at padded (0, 0): only its bottom-right tap is inside
            [0, 0, 2, 3],
            [0, 11, 0, 21],
            [12, 13, 22, 23],
        ],
        dtype=np.float64,
    )
    np.testing.assert_array_equal(col, expected)


def test_im2col_layout_dilation_and_asymmetric_stride() -> None:
    """4x5 image, 2x2 kernel dilated (2, 1), stride (1, 3): taps (0,0) (0,1) (2,0) (2,1)."""
    x = position_coded((1, 1, 4, 5))  # x[i, j] = 10i + j + 1
    col = im2col(x, 2, 2, stride=(1, 3), dilation=(2, 1))
    # OH = (4 - 3) // 1 + 1 = 2, OW = (5 - 2) // 3 + 1 = 2
    expected = np.array(
        [
            [1, 2, 21, 22],  # (oh, ow) = (0, 0)
            [4, 5, 24, 25],  # (0, 1): columns 3, 4
            [11, 12, 31, 32],  # (1, 0)
            [14, 15, 34, 35],  # (1, 1)
        ],
        dtype=np.float64,
    )
    np.testing.assert_array_equal(col, expected)


# 1-D rows [1, 2, 3, 4], kernel 1x3, pad 2 each side: the windows each mode gives.
MODE_WINDOWS = {
    "zeros": [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 0]],
    "reflect": [[3, 2, 1], [2, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 3], [4, 3, 2]],
    "replicate": [[1, 1, 1], [1, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4], [4, 4, 4]],
    "circular": [[3, 4, 1], [4, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 1], [4, 1, 2]],
    "symmetric": [[2, 1, 1], [1, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4], [4, 4, 3]],
    "constant:0.5": [[0.5, 0.5, 1], [0.5, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0.5], [4, 0.5, 0.5]],
}


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_im2col_padding_modes_hand_computed(mode: str) -> None:
    row = np.array([1.0, 2.0, 3.0, 4.0])
    expected = np.array(MODE_WINDOWS[mode], dtype=np.float64)
    col_w = im2col(row.reshape(1, 1, 1, 4), 1, 3, pad=(0, 0, 2, 2), padding_mode=mode)
    np.testing.assert_array_equal(col_w, expected)
    col_h = im2col(row.reshape(1, 1, 4, 1), 3, 1, pad=(2, 2, 0, 0), padding_mode=mode)
    np.testing.assert_array_equal(col_h, expected)


# source_index for size 4, p = -3 .. 6 (np.pad of arange(4) by 3 gives the same)
SOURCE_INDEX = {
    "zeros": [-1, -1, -1, 0, 1, 2, 3, -1, -1, -1],
    "reflect": [3, 2, 1, 0, 1, 2, 3, 2, 1, 0],
    "replicate": [0, 0, 0, 0, 1, 2, 3, 3, 3, 3],
    "circular": [1, 2, 3, 0, 1, 2, 3, 0, 1, 2],
    "symmetric": [2, 1, 0, 0, 1, 2, 3, 3, 2, 1],
}


@pytest.mark.parametrize("mode", SOURCE_INDEX)
def test_source_index(mode: str) -> None:
    assert source_index(np.arange(-3, 7), 4, mode).tolist() == SOURCE_INDEX[mode]


def test_corners_follow_np_pad() -> None:
    """Corner padding combines both axes as np.pad does (checked on every mode)."""
    x = position_coded((1, 2, 3, 4))
    for mode in PADDING_MODES:
        pads = (2, 1, 3, 2) if mode != "reflect" else (2, 2, 3, 3)
        full = im2col(x, 1, 1, pad=pads, padding_mode=mode)  # 1x1 kernel: col is the padded image
        padded = pad_input(x, pads, mode)
        np.testing.assert_array_equal(full, padded.transpose(0, 2, 3, 1).reshape(-1, 2), err_msg=mode)


# --------------------------------------------------------------------------- against the reference


@given(case=conv_cases(max_kernel=4), data=st.data())
@settings(max_examples=60, deadline=None)
def test_im2col_matches_reference(
    case: tuple[tuple[int, int, int, int], tuple[int, int, int, int], dict[str, object]], data: st.DataObject
) -> None:
    x_shape, w_shape, kw = case
    x = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal(x_shape)
    args = {k: kw[k] for k in ("stride", "pad", "dilation", "padding_mode")}
    got = im2col(x, w_shape[2], w_shape[3], **args)  # type: ignore[arg-type]
    want = im2col_reference(x, w_shape[2], w_shape[3], **args)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, want)  # a copy: exact


def test_im2col_times_weights_is_the_convolution() -> None:
    """The book's use: col @ W.reshape(FN, -1).T, reshaped, is conv2d."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6))
    W = rng.standard_normal((4, 3, 3, 2))
    col = im2col(x, 3, 2, stride=(2, 1), pad=(1, 0, 0, 1), dilation=(1, 2), padding_mode="replicate")
    out = (col @ W.reshape(4, -1).T).reshape(2, 3, 5, 4).transpose(0, 3, 1, 2)  # OH=3, OW=5
    want = conv2d_forward(x, W, stride=(2, 1), pad=(1, 0, 0, 1), dilation=(1, 2), padding_mode="replicate")
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float32), (np.uint8, np.float32),
     (np.int16, np.float32)],
)
def test_dtypes(dtype: type, expected: type) -> None:
    x = (position_coded((1, 2, 4, 4)) % 100).astype(dtype)
    col = im2col(x, 3, 3, pad=1)
    assert col.dtype == expected
    np.testing.assert_array_equal(col, im2col_reference(x, 3, 3, pad=1))
    back = col2im(col, x.shape, 3, 3, pad=1)
    assert back.dtype == expected
    assert col2im(col.astype(dtype), x.shape, 3, 3, pad=1).dtype == expected


# --------------------------------------------------------------------------- col2im


def _outer(a: list[int], b: list[int]) -> NDArray[np.float64]:
    return np.outer(a, b).astype(np.float64)


# (input shape, kernel, kwargs, overlap count map) - col2im of a column matrix of ones
OVERLAP_COUNTS = [
    ((1, 1, 4, 4), (3, 3), {}, _outer([1, 2, 2, 1], [1, 2, 2, 1])),
    ((1, 1, 4, 4), (3, 3), {"pad": 1}, _outer([2, 3, 3, 2], [2, 3, 3, 2])),
    ((1, 1, 5, 5), (3, 3), {"stride": 2}, _outer([1, 1, 2, 1, 1], [1, 1, 2, 1, 1])),
    ((1, 1, 5, 4), (2, 1), {"stride": (1, 2)}, _outer([1, 2, 2, 2, 1], [1, 0, 1, 0])),  # columns 1, 3 unused
    ((1, 1, 1, 5), (1, 2), {"dilation": 2}, _outer([1], [1, 1, 2, 1, 1])),
    ((1, 1, 4, 4), (2, 2), {"pad": "same"}, _outer([1, 2, 2, 2], [1, 2, 2, 2])),  # extra pad bottom/right
    # padding gradients flow back to the pixels the padding copied
    ((1, 1, 3, 3), (3, 3), {"pad": 1, "padding_mode": "replicate"}, _outer([3, 3, 3], [3, 3, 3])),
    ((1, 1, 3, 3), (3, 3), {"pad": 1, "padding_mode": "reflect"}, _outer([2, 5, 2], [2, 5, 2])),
    ((1, 1, 3, 3), (3, 3), {"pad": 1, "padding_mode": "circular"}, _outer([3, 3, 3], [3, 3, 3])),
    ((1, 1, 4, 3), (2, 3), {"pad": (1, 0, 1, 1), "padding_mode": "replicate"}, _outer([3, 2, 2, 1], [3, 3, 3])),
]


@pytest.mark.parametrize(("shape", "kernel", "kw", "expected"), OVERLAP_COUNTS)
def test_col2im_of_ones_is_the_overlap_count(
    shape: tuple[int, int, int, int], kernel: tuple[int, int], kw: dict[str, object], expected: NDArray[np.float64]
) -> None:
    rows = im2col(np.zeros(shape), *kernel, **kw).shape[0]  # type: ignore[arg-type]
    ones = np.ones((rows, shape[1] * kernel[0] * kernel[1]))
    got = col2im(ones, shape, *kernel, **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got[0, 0], expected)


def test_col2im_counts_per_image_and_channel() -> None:
    shape = (3, 2, 4, 4)
    ones = np.ones((3 * 2 * 2, 2 * 9), dtype=np.float32)
    got = col2im(ones, shape, 3, 3)
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, np.broadcast_to(_outer([1, 2, 2, 1], [1, 2, 2, 1]), shape))


def test_col2im_single_tap_lands_on_its_pixel() -> None:
    """A one-hot column entry goes exactly to the pixel im2col read it from (position check)."""
    x = position_coded((2, 2, 5, 4))
    kw: dict[str, object] = {"stride": (2, 1), "pad": (1, 0, 2, 1), "dilation": (1, 2)}
    col = im2col(x, 2, 3, **kw)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    for _ in range(20):
        r, c = rng.integers(col.shape[0]), rng.integers(col.shape[1])
        one_hot = np.zeros_like(col)
        one_hot[r, c] = 1.0
        back = col2im(one_hot, x.shape, 2, 3, **kw)  # type: ignore[arg-type]
        if col[r, c] == 0:  # read from zero padding: nothing flows back
            assert not back.any()
        else:
            assert back.sum() == 1.0
            assert x[back == 1.0][0] == col[r, c]


def test_col2im_refuses_wrong_shape() -> None:
    with pytest.raises(ShapeError, match=r"col must have shape \(8, 18\) .*\(2, 2, 4, 4\).*got \(8, 17\)") as info:
        col2im(np.zeros((8, 17)), (2, 2, 4, 4), 3, 3)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ConvcliError, match=r"input_data must be 4-D .*\(4, 4\)"):
        im2col(np.zeros((4, 4)), 3, 3)
    with pytest.raises(ConvcliError, match=r"kernel 5×5 is larger than the padded input 4×4"):
        im2col(np.zeros((1, 1, 4, 4)), 5, 5)
    with pytest.raises(ConvcliError, match=r"stride must be >= 1, got 0"):
        col2im(np.zeros((4, 9)), (1, 1, 4, 4), 3, 3, stride=0)


# --------------------------------------------------------------------------- adjoint identity


@given(case=conv_cases(max_kernel=4, max_groups=1, max_per_group=3), data=st.data())
@settings(max_examples=100, deadline=None)
def test_adjoint_identity(
    case: tuple[tuple[int, int, int, int], tuple[int, int, int, int], dict[str, object]], data: st.DataObject
) -> None:
    """<im2col(x), y> == <x, col2im(y)> for every padding mode, stride, dilation and pad (for
    constant padding, im2col is affine: its linear part im2col(x) - im2col(0))."""
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    args = {k: kw[k] for k in ("stride", "pad", "dilation", "padding_mode")}
    x = rng.standard_normal(x_shape)
    col = im2col(x, w_shape[2], w_shape[3], **args)  # type: ignore[arg-type]
    col -= im2col(np.zeros(x_shape), w_shape[2], w_shape[3], **args)  # type: ignore[arg-type]
    y = rng.standard_normal(col.shape)
    back = col2im(y, x_shape, w_shape[2], w_shape[3], **args)  # type: ignore[arg-type]
    assert back.shape == x_shape
    lhs, rhs = float(np.vdot(col, y)), float(np.vdot(x, back))
    scale = float(np.abs(col).ravel() @ np.abs(y).ravel())
    assert abs(lhs - rhs) <= 1e-12 * scale


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_adjoint_identity_exact_integers(mode: str) -> None:
    """With small integers both sides are exact, so they are equal, not just close."""
    rng = np.random.default_rng(7)
    x = rng.integers(-5, 6, (2, 3, 6, 7)).astype(np.float64)
    kw: dict[str, object] = {"stride": (2, 1), "pad": (2, 1, 1, 2), "dilation": (1, 2), "padding_mode": mode}
    col = im2col(x, 3, 2, **kw) - im2col(np.zeros_like(x), 3, 2, **kw)  # type: ignore[arg-type]
    y = rng.integers(-5, 6, col.shape).astype(np.float64)
    assert np.vdot(col, y) == np.vdot(x, col2im(y, x.shape, 3, 2, **kw))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- tile functions


@given(case=conv_cases(max_kernel=4, max_groups=2, max_per_group=3, max_batch=3, max_extra=6), data=st.data())
@settings(max_examples=80, deadline=None)
def test_items_are_blocks_of_im2col_and_adjoint(
    case: tuple[tuple[int, int, int, int], tuple[int, int, int, int], dict[str, object]], data: st.DataObject
) -> None:
    """The columns of any item (a tile of images and output rows × a chunk of channels, kernel rows
    and columns) are exactly that block of the full im2col, junk columns aside; FlatTile.fold then
    scatter is their adjoint."""
    x_shape, w_shape, kw = case
    geom = plan_geometry(x_shape, w_shape, **kw)  # type: ignore[arg-type]
    draw = data.draw
    n0 = draw(st.integers(0, geom.batch - 1))
    n1 = draw(st.integers(n0 + 1, geom.batch))
    row0 = draw(st.integers(0, geom.out_h - 1))
    row1 = draw(st.integers(row0 + 1, geom.out_h))
    k0 = draw(st.integers(0, geom.channels_per_group - 1))
    k1 = draw(st.integers(k0 + 1, geom.channels_per_group))
    i0 = draw(st.integers(0, geom.kernel_h - 1))
    i1 = draw(st.integers(i0 + 1, geom.kernel_h))
    j0 = draw(st.integers(0, geom.kernel_w - 1))
    j1 = draw(st.integers(j0 + 1, geom.kernel_w))
    tile, chunk = Tile(n0, n1, row0, row1), Chunk(k0, k1, i0, i1, j0, j1)
    plan = TilePlan(geom, [tile], [chunk])
    lay = plan.layout(chunk)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(x_shape)

    ws = Workspace(plan, np.dtype(np.float64), grad_window=True)
    ws.inp[chunk.shape].flat[:] = np.nan  # every element a valid column reads must be written
    col = ws.columns(x, tile, chunk)  # (G*kc, taps, nb, rows*wq)
    g, kc, ic, jc = geom.groups, k1 - k0, i1 - i0, j1 - j0
    ow = geom.out_w
    got = col.reshape(g, kc, ic, jc, n1 - n0, row1 - row0, lay.wq)[..., :ow]
    args = {k: kw[k] for k in ("stride", "pad", "dilation", "padding_mode")}
    full = im2col(x, geom.kernel_h, geom.kernel_w, **args)  # type: ignore[arg-type]
    full = full.reshape(geom.batch, geom.out_h, ow, g, geom.channels_per_group, geom.kernel_h, geom.kernel_w)
    want = full[n0:n1, row0:row1, :, :, k0:k1, i0:i1, j0:j1].transpose(3, 4, 5, 6, 0, 1, 2)
    np.testing.assert_array_equal(got, want)

    got = got.copy()
    zero = ws.columns(np.zeros(x_shape), tile, chunk)  # constant padding makes the columns affine in x
    linear = got - zero.reshape(got.shape[:-1] + (lay.wq,))[..., :ow]
    y = rng.standard_normal(col.shape)
    y.reshape(*col.shape[:3], row1 - row0, lay.wq)[..., ow:] = 0  # junk columns carry no gradient
    assert ws.grad is not None
    window = ws.grad[chunk.shape]
    window.flat.fill(0)
    window.fold(y)
    dx = np.zeros(x_shape)
    window.scatter(dx, tile, chunk)
    assert not dx[:n0].any() and not dx[n1:].any()
    valid = y.reshape(*col.shape[:3], row1 - row0, lay.wq)[..., :ow]
    lhs, rhs = float(np.vdot(linear, valid)), float(np.vdot(x, dx))
    assert abs(lhs - rhs) <= 1e-12 * float(np.abs(linear).ravel() @ np.abs(valid).ravel())


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular", "symmetric", "constant"])
def test_read_window_matches_np_pad_far_beyond_the_image(mode: str) -> None:
    """Padding larger than the image (a kernel wider than the photo) follows np.pad's periodic
    extension for the mirror and wrap modes, on a lattice with steps, and add_window is its adjoint."""
    x = position_coded((1, 2, 3, 4))
    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap",
               "symmetric": "symmetric", "constant": "constant"}[mode]
    extra = {"constant_values": 7.5} if mode == "constant" else {}
    padded = np.pad(x, [(0, 0), (0, 0), (9, 10), (11, 8)], mode=np_mode, **extra)  # type: ignore[call-overload]
    rows, cols = Lattice(-9, 2, 11, 3), Lattice(-11, 3, 8, 4)
    win = window(rows, cols, mode)
    out = np.full((1, 2, 11, 8), np.nan)
    read_window(x, out, win, 7.5)
    np.testing.assert_array_equal(out, padded[:, :, ::2, ::3][:, :, :11, :8])
    y = np.random.default_rng(1).standard_normal(out.shape)
    back = np.zeros_like(x)
    add_window(back, y, win)
    if mode == "constant":
        assert float(np.vdot(out - 7.5 * (padded[:, :, ::2, ::3][:, :, :11, :8] == 7.5), y)) == pytest.approx(
            float(np.vdot(x, back)))
    else:
        assert float(np.vdot(out, y)) == pytest.approx(float(np.vdot(x, back)))
