"""The tiled, threaded engine against a naive loop reference, and its invariance.

* ``naive_forward`` / ``naive_backward`` loop over output pixels on an ``np.pad``-ed
  float64 copy; padding gradients go back through an index map built with the same
  ``np.pad`` (so the reference shares no code with the engine).
* Invariance: for a given ``tile_bytes``, forward and backward (out, dx, dW, db) are
  bit-identical whatever the number of worker threads; across tile sizes they are equal
  to float rounding (BLAS kernels round a matrix's edge columns differently, and the
  backward sums over tiles are grouped differently).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from convcli import Convolution, col2im, conv2d, im2col
from convcli.engine import layer as layer_mod

NP_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pads4(pad: object) -> tuple[int, int, int, int]:
    if isinstance(pad, int):
        return pad, pad, pad, pad
    assert isinstance(pad, tuple)
    if len(pad) == 2:
        return pad[0], pad[0], pad[1], pad[1]
    return pad  # type: ignore[return-value]


def _pair(v: object) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else v  # type: ignore[return-value]


def naive_pad(x: np.ndarray, pads: tuple[int, int, int, int], mode: str) -> np.ndarray:
    t, b, l, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), mode=NP_MODES[mode])  # type: ignore[call-overload]


def naive_forward(x, W, b, stride, pad, dilation, groups, mode):
    """Loop reference in float64: one einsum per output pixel."""
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    xp = naive_pad(x.astype(np.float64), _pads4(pad), mode)
    n, c, hp, wp = xp.shape
    fn, cg, fh, fw = W.shape
    oh = (hp - dh * (fh - 1) - 1) // sh + 1
    ow = (wp - dw * (fw - 1) - 1) // sw + 1
    fg = fn // groups
    out = np.zeros((n, fn, oh, ow))
    W64 = W.astype(np.float64)
    for g in range(groups):
        wg = W64[g * fg:(g + 1) * fg]
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, g * cg:(g + 1) * cg, i * sh:i * sh + dh * (fh - 1) + 1:dh,
                           j * sw:j * sw + dw * (fw - 1) + 1:dw]
                out[:, g * fg:(g + 1) * fg, i, j] = np.einsum("ncij,fcij->nf", patch, wg)
    if b is not None:
        out += b.astype(np.float64)[None, :, None, None]
    return out


def naive_backward(x, W, b, stride, pad, dilation, groups, mode, dout):
    """Loop reference gradients (dx, dW, db) in float64."""
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    pads = _pads4(pad)
    xp = naive_pad(x.astype(np.float64), pads, mode)
    fn, cg, fh, fw = W.shape
    fg = fn // groups
    W64 = W.astype(np.float64)
    d64 = dout.astype(np.float64)
    _, _, oh, ow = dout.shape
    dxp = np.zeros_like(xp)
    dW = np.zeros(W.shape)
    for g in range(groups):
        wg = W64[g * fg:(g + 1) * fg]
        for i in range(oh):
            for j in range(ow):
                rs = slice(i * sh, i * sh + dh * (fh - 1) + 1, dh)
                cs = slice(j * sw, j * sw + dw * (fw - 1) + 1, dw)
                d = d64[:, g * fg:(g + 1) * fg, i, j]
                dxp[:, g * cg:(g + 1) * cg, rs, cs] += np.einsum("nf,fcij->ncij", d, wg)
                dW[g * fg:(g + 1) * fg] += np.einsum("nf,ncij->fcij", d, xp[:, g * cg:(g + 1) * cg, rs, cs])
    # map padded positions back to their source pixels with np.pad of an index array
    idx = np.arange(x.size).reshape(x.shape)
    if mode == "zeros":
        idx_p = np.pad(idx, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])), constant_values=-1)
    else:
        idx_p = naive_pad(idx, pads, mode)
    keep = idx_p >= 0
    dx = np.zeros(x.size)
    np.add.at(dx, idx_p[keep], dxp[keep])
    db = None if b is None else d64.sum(axis=(0, 2, 3))
    return dx.reshape(x.shape), dW, db


def _tol(dtype: np.dtype) -> dict[str, float]:
    return {"rtol": 2e-4, "atol": 2e-4} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}


CASES = [
    # (N, C, H, W), (FN, C/g, FH, FW), stride, pad, dilation, groups, mode
    ((2, 3, 9, 11), (4, 3, 3, 3), 1, 1, 1, 1, "zeros"),
    ((2, 4, 10, 9), (6, 2, 3, 2), (2, 1), (1, 2), 1, 2, "reflect"),
    ((1, 3, 12, 13), (6, 1, 3, 3), 1, 2, 2, 3, "replicate"),
    ((3, 2, 8, 8), (2, 2, 5, 5), 2, 2, 1, 1, "circular"),
    ((1, 4, 11, 7), (4, 1, 3, 3), (1, 2), (1, 0, 2, 1), (2, 1), 4, "zeros"),
    ((2, 6, 7, 9), (3, 2, 1, 1), 1, 0, 1, 3, "zeros"),
    ((1, 1, 16, 15), (3, 1, 5, 3), 3, (2, 1), 1, 1, "reflect"),
    ((2, 2, 9, 9), (4, 1, 3, 3), 2, 1, 1, 2, "circular"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("tile_bytes", [1, 700, 1 << 22])
def test_against_naive_reference(case, dtype, tile_bytes) -> None:
    xs, ws, stride, pad, dilation, groups, mode = case
    rng = np.random.default_rng(abs(hash((xs, ws))) % 2**32)
    x = rng.standard_normal(xs).astype(dtype)
    W = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    layer = Convolution(W, b, stride, pad, dilation=dilation, groups=groups, padding_mode=mode,
                        tile_bytes=tile_bytes)
    out = layer.forward(x)
    ref = naive_forward(x, W, b, stride, pad, dilation, groups, mode)
    assert out.dtype == dtype and out.shape == ref.shape
    np.testing.assert_allclose(out, ref, **_tol(np.dtype(dtype)))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    rdx, rdW, rdb = naive_backward(x, W, b, stride, pad, dilation, groups, mode, dout)
    assert dx.dtype == dtype and layer.dW is not None and layer.dW.dtype == dtype
    np.testing.assert_allclose(dx, rdx, **_tol(np.dtype(dtype)))
    np.testing.assert_allclose(layer.dW, rdW, **_tol(np.dtype(dtype)))
    np.testing.assert_allclose(layer.db, rdb, **_tol(np.dtype(dtype)))


def _run(x, W, b, tile_bytes, threads, **kw):
    previous = layer_mod.set_num_threads(threads)
    try:
        layer = Convolution(W, b, tile_bytes=tile_bytes, **kw)
        out = layer.forward(x)
        dx = layer.backward(np.cos(out * 3).astype(out.dtype))
        return out, dx, layer.dW, layer.db
    finally:
        layer_mod.set_num_threads(previous)


INVARIANCE = [
    ((4, 8, 20, 18), (6, 8, 3, 3), {"pad": 1}),
    ((2, 4, 23, 17), (8, 2, 3, 3), {"pad": 1, "stride": 2, "groups": 2, "padding_mode": "reflect"}),
    ((1, 3, 40, 33), (3, 1, 5, 5), {"pad": 2, "groups": 3}),
    ((1, 1, 37, 41), (8, 1, 5, 5), {"pad": 2}),
    ((1, 3, 30, 30), (6, 1, 3, 3), {"pad": 2, "dilation": 2, "groups": 3, "padding_mode": "circular"}),
    ((2, 64, 24, 20), (32, 64, 3, 3), {"pad": 1}),  # K = 576: BLAS blocks the sum
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", INVARIANCE)
def test_identical_across_tiles_and_threads(case, dtype) -> None:
    xs, ws, kw = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal(xs).astype(dtype)
    W = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    base = {}
    for tile_bytes, threads in itertools.product([1, 1000, 30_000, 1 << 30], [1, 2, 3]):
        out, dx, dW, db = _run(x, W, b, tile_bytes, threads, **kw)
        if tile_bytes not in base:
            base[tile_bytes] = (out, dx, dW, db)
        first = base[tile_bytes]
        # same tiles, any number of threads: bit-identical, forward and backward
        for got, want in zip((out, dx, dW, db), first):
            np.testing.assert_array_equal(got, want)
        # any tiles: equal to float rounding (BLAS rounds edge columns differently, and
        # the sums over tiles are grouped differently)
        ref = base[1]
        scale = 5e-5 if dtype == np.float32 else 1e-12
        for got, want in zip((out, dx, dW, db), ref):
            np.testing.assert_allclose(got, want, rtol=scale, atol=scale * float(np.abs(want).max()))


def test_weights_used_in_place() -> None:
    """The layer reads W and b at every call (an optimizer updates them in place)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    layer = Convolution(W, b, pad=1)
    first = layer.forward(x)
    W *= 2
    b += 1
    np.testing.assert_allclose(layer.forward(x), 2 * first + 1, rtol=1e-5, atol=1e-5)


def test_functional_and_im2col_match_reference() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 8))
    W = rng.standard_normal((5, 3, 3, 2))
    out = conv2d(x, W, None, 2, 1, padding_mode="replicate")
    np.testing.assert_allclose(out, naive_forward(x, W, None, 2, 1, 1, 1, "replicate"), rtol=1e-10, atol=1e-10)
    col = im2col(x, 3, 2, 2, 1, padding_mode="replicate")
    y = rng.standard_normal(col.shape)
    assert np.isclose(np.vdot(col, y), np.vdot(x, col2im(y, x.shape, 3, 2, 2, 1, padding_mode="replicate")))


def test_set_num_threads_validates() -> None:
    with pytest.raises(ValueError):
        layer_mod.set_num_threads(0)


def test_capped_threads_holds_for_its_context_alone() -> None:
    import threading

    from convcli.engine.parallel import capped_threads, get_num_threads

    previous = layer_mod.set_num_threads(4)
    seen: list[int] = []
    try:
        with capped_threads(1):
            assert get_num_threads() == 1
            other = threading.Thread(target=lambda: seen.append(get_num_threads()))
            other.start()
            other.join()
            assert layer_mod.set_num_threads(3) == 4  # the setting itself, not the cap
            assert get_num_threads() == 1
        assert get_num_threads() == 3
        assert seen == [4]  # another thread is not capped
        with pytest.raises(ValueError):
            with capped_threads(0):
                pass
    finally:
        layer_mod.set_num_threads(previous)


@pytest.mark.parametrize("threads", [1, 2])
def test_multi_image_tiles_with_short_last_tile(threads) -> None:
    """5 images at 2 per tile (2, 2, 1): the last tile uses buffers sized for 2."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 2, 6, 6))
    W = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    geom = Convolution(W, b, pad=1).geometry(x.shape)
    wq = geom.padded_hw[1]  # the GEMM's row pitch with stride 1
    tile_bytes = 2 * (2 * 9 * wq * geom.out_h * 8)
    tiles = layer_mod.plan_tiles(geom, 8, tile_bytes)
    assert [t.n1 - t.n0 for t in tiles.tiles] == [2, 2, 1]
    out, dx, dW, db = _run(x, W, b, tile_bytes, threads, pad=1, padding_mode="replicate")
    np.testing.assert_allclose(out, naive_forward(x, W, b, 1, 1, 1, 1, "replicate"), rtol=1e-10, atol=1e-10)
    rdx, rdW, rdb = naive_backward(x, W, b, 1, 1, 1, 1, "replicate", np.cos(out * 3))
    for got, want in ((dx, rdx), (dW, rdW), (db, rdb)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
