"""Large kernels as banded matrices: the image is read in place, the kernel is unfolded instead.

im2col copies every input pixel once per kernel tap (a 31×31 kernel: 961 copies), which
is what makes a large kernel that reads one channel slow: its GEMM has a single row per
filter, so the copies, not the multiply-adds, set the time.  Here the roles swap.  For a
block of ``bw`` output columns, kernel row i contributes

    out[r, w0 + w] += sum_q  xpad[r*sh + i*dh, w0*sw + q] * T_i[q, w]

with ``T_i[w*sw + j*dw, w] = K[i, j]`` - the kernel row written out as a banded
(Toeplitz) matrix, "im2col of the kernel".  The left operand is a plain view of the
padded rows (no copy), so every product is a GEMM of (rows × L) by (L × bw), with
``L = (bw-1)*sw + (FW-1)*dw + 1``; the band holds FW taps of each L, so about
``FW / L`` of the multiply-adds are useful (BLAS runs them ~20× faster than the copies
they replace).  Used for filters that read few channels and kernels of 7×7 and up
(:func:`convcli.engine.layer.choose_algorithm`); tiles of output rows (and, for kernels
taller than the budget allows, chunks of kernel rows) keep memory bounded.

The backward pass of stride-1 layers runs the same way: dx is the "full" correlation of
dout with the flipped kernel over the padded extent, folded back into the image by the
padding's adjoint (:func:`convcli.engine.padding.add_window`); dW, for each kernel column
j, is one GEMM of dout's rows against the padded rows' column window at j, of which the
diagonals are the kernel's rows.
"""

from __future__ import annotations

from time import perf_counter
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from .geometry import ConvGeometry, ceil_div, plan_geometry
from .padding import Lattice, add_window, read_window, window
from .parallel import TileCounter, Turnstile, run_tiles
from .tiles import PARALLEL_MIN_MACS, Tile, clip_tiles, even_split
from .trace import active_trace

__all__ = ["backward_banded", "block_width", "correlate_rows", "forward_banded"]

#: Output rows a tile holds at most (the GEMM's M dimension).
MAX_ROWS = 256

#: Kernel rows whose views are stacked into one GEMM (its K = STACK × L): a copy of the rows
#: that costs a fraction of the GEMM and makes it several times faster than one GEMM per row.
STACK = 16


def block_width(geom: ConvGeometry) -> int:
    """Output columns per block: 64 for kernels up to 32 columns wide, else 32 (less of T is zeros)."""
    return min(64 if geom.kernel_w <= 32 else 32, max(8, geom.out_w))


def _toeplitz(out: NDArray[np.floating], taps: NDArray[np.floating], bw: int, stride: int, dilation: int) -> None:
    """Write kernel rows as banded matrices: ``out[..., w*stride + j*dilation, f*bw + w] = taps[..., f, j]``.

    Parameters
    ----------
    out : ndarray, shape (..., L, F*bw)
        Filled in place (zeros off the band).
    taps : ndarray, shape (..., F, FW)
        One kernel row per filter.
    """
    out[...] = 0
    fw = taps.shape[-1]
    w = np.arange(bw)
    rows = (w[None, :] * stride + np.arange(fw)[:, None] * dilation)  # (FW, bw)
    for f in range(taps.shape[-2]):
        cols = f * bw + np.broadcast_to(w[None, :], rows.shape)
        out[..., rows, cols] = taps[..., f, :, None]


def _tiles(geom: ConvGeometry, rows: int) -> list[Tile]:
    bands = even_split(geom.out_h, ceil_div(geom.out_h, rows))
    return [Tile(n, n + 1, r0, r1) for n in range(geom.batch) for r0, r1 in bands]


def _plan(geom: ConvGeometry, itemsize: int, budget: int, width: int) -> tuple[int, list[tuple[int, int]]]:
    """Output rows per tile and chunks of kernel rows, so that one channel's window of rows fits ``budget``."""
    (sh, _), (dh, _) = geom.stride, geom.dilation
    per_row = width * itemsize  # one padded row of one channel
    rows = min(geom.out_h, MAX_ROWS)
    fit = max(1, budget // per_row)  # padded rows that fit
    while rows > 1 and (rows - 1) * sh + 1 > fit // 2:
        rows = max(1, rows // 2)
    left = fit - (rows - 1) * sh  # rows left for the kernel's reach
    per = max(1, min(geom.kernel_h, (left - 1) // dh + 1 if left > 0 else 1))
    return rows, even_split(geom.kernel_h, ceil_div(geom.kernel_h, per))


class _Scratch:
    """One worker's buffers: the window of padded rows, banded matrices, stacked rows, a GEMM's output, the tile."""

    def __init__(self, window_elems: int, band_elems: int, gemm_elems: int, tile_elems: int, stack_elems: int,
                 dtype: np.dtype) -> None:
        self.window = np.empty(window_elems, dtype=dtype)
        self.band = np.empty(band_elems, dtype=dtype)
        self.tmp = np.empty(gemm_elems, dtype=dtype)
        self.values = np.empty(tile_elems, dtype=dtype)
        self.stack = np.empty(stack_elems, dtype=dtype)


def _correlate_tiles(
    x: NDArray[np.generic],
    geom: ConvGeometry,
    w: NDArray[np.floating],
    dtype: np.dtype,
    tile_bytes: int,
    store: Callable[[Tile, NDArray[np.floating]], None],
    ordered: bool,
    progress: Optional[Callable[[int, int], None]] = None,
    rows_wanted: Optional[tuple[int, int]] = None,
    serial: bool = False,
    label: str = "out = padded rows · T (each kernel row a banded matrix)",
) -> None:
    """The banded correlation, tile by tile: ``store(tile, values)`` receives each output tile.

    ``values`` has shape (FN, rows, OW); ``store`` runs in tile order when ``ordered``;
    ``rows_wanted``, when given, restricts the tiles to those output rows; ``serial``
    keeps the tiles on the calling thread (a caller that is itself a worker); ``label``
    names the GEMM in an active trace (:mod:`convcli.engine.trace`).
    """
    g = geom
    (sh, sw), (dh, dw) = g.stride, g.dilation
    top, _, left, _ = g.pads
    groups, cg, fg = g.groups, g.channels_per_group, g.filters_per_group
    bw = block_width(g)
    blocks = ceil_div(g.out_w, bw)
    span = (bw - 1) * sw + (g.kernel_w - 1) * dw + 1  # L: the columns one block reads
    width = (blocks - 1) * bw * sw + span  # the columns the window holds (the last block's junk included)
    rows, chunks = _plan(g, dtype.itemsize, tile_bytes, width)
    tiles = clip_tiles(_tiles(g, rows), rows_wanted)
    w6 = w.reshape(groups, fg, cg, g.kernel_h, g.kernel_w)
    # the banded matrices T[g, k, i]: precomputed when small, else built per tile and kernel row
    t_elems = groups * cg * g.kernel_h * span * fg * bw
    bands = None
    if t_elems * dtype.itemsize <= tile_bytes:
        bands = np.empty((groups, cg, g.kernel_h, span, fg * bw), dtype=dtype)
        _toeplitz(bands, w6.transpose(0, 2, 3, 1, 4), bw, sw, dw)
    max_chunk = max(i1 - i0 for i0, i1 in chunks)
    window_rows = (rows - 1) * sh + (max_chunk - 1) * dh + 1
    order = Turnstile() if ordered else None
    finished = TileCounter(len(tiles), progress)
    src = x.reshape(g.batch, groups, cg, g.height, g.width)

    item = dtype.itemsize
    row = width * item  # bytes per row of the window
    stack = min(STACK, max(i1 - i0 for i0, i1 in chunks))
    trace = active_trace()

    def make() -> _Scratch:
        return _Scratch(cg * window_rows * width, stack * span * fg * bw, rows * fg * bw, g.filters * rows * g.out_w,
                        rows * stack * span, dtype)

    def work(t: int, scratch: _Scratch) -> None:
        tile = tiles[t]
        nr = tile.rows
        values = scratch.values[: g.filters * nr * g.out_w].reshape(g.filters, nr, g.out_w)
        for gi in range(groups):
            res = values[gi * fg:(gi + 1) * fg]  # (FG, rows, OW)
            first = True
            for i0, i1 in chunks:
                hw = (nr - 1) * sh + (i1 - 1 - i0) * dh + 1
                win = scratch.window[: cg * hw * width].reshape(cg, hw, width)
                rows_at = Lattice(tile.row0 * sh - top + i0 * dh, 1, hw, g.height)
                read_window(src[tile.n0, gi], win, window(rows_at, Lattice(-left, 1, width, g.width), g.padding_mode),
                            g.pad_value)
                for k in range(cg):
                    for s0 in range(i0, i1, STACK):  # STACK kernel rows per GEMM: K = n*L, not L
                        s1 = min(i1, s0 + STACK)
                        n = s1 - s0
                        if bands is not None:
                            band = bands[gi, k, s0:s1].reshape(n * span, fg * bw)
                        else:
                            built = scratch.band[: n * span * fg * bw].reshape(n, span, fg * bw)
                            _toeplitz(built, w6[gi, :, k, s0:s1].transpose(1, 0, 2), bw, sw, dw)
                            band = built.reshape(n * span, fg * bw)
                        stacked = scratch.stack[: nr * n * span].reshape(nr, n, span)
                        base = win[k, (s0 - i0) * dh:]
                        for blk in range(blocks):
                            c0 = blk * bw * sw
                            cut = min(bw, g.out_w - blk * bw)
                            # rows r*sh + i*dh, columns c0 : c0 + L of the window: (nr, n, L)
                            view = np.lib.stride_tricks.as_strided(
                                base[:, c0:], shape=(nr, n, span), strides=(sh * row, dh * row, item), writeable=False)
                            if n == 1:
                                lhs = view[:, 0]
                            else:
                                np.copyto(stacked, view)
                                lhs = stacked.reshape(nr, n * span)
                            out = scratch.tmp[: nr * fg * bw].reshape(nr, fg, bw)
                            start = perf_counter()
                            np.matmul(lhs, band, out=out.reshape(nr, fg * bw))  # the GEMM
                            if trace is not None:
                                trace.gemm(label, lhs.shape, band.shape, perf_counter() - start)
                            dst = res[:, :, blk * bw:blk * bw + cut]
                            if first:
                                np.copyto(dst, out[:, :, :cut].transpose(1, 0, 2))
                            else:
                                np.add(dst, out[:, :, :cut].transpose(1, 0, 2), out=dst)
                        first = False
        if order is None:
            store(tile, values)
        else:
            with order.turn(t):
                store(tile, values)
        finished.tick()

    macs = g.batch * g.out_h * g.out_w * g.filters * cg * g.kernel_h * span
    run_tiles(len(tiles), make, work, order, parallel=not serial and macs >= PARALLEL_MIN_MACS * len(tiles))


def _storer(out: NDArray[np.floating], bias: Optional[NDArray[np.floating]],
            r0: int) -> Callable[[Tile, NDArray[np.floating]], None]:
    """A tile's values (FN, rows, OW) into ``out`` (N, FN, R, OW), whose row 0 is output row ``r0``, bias added."""

    def store(tile: Tile, values: NDArray[np.floating]) -> None:
        dst = out[tile.n0, :, tile.row0 - r0:tile.row1 - r0]
        if bias is None:
            np.copyto(dst, values)
        else:
            np.add(values, bias[:, None, None], out=dst)

    return store


def correlate_rows(
    x: NDArray[np.generic],
    geom: ConvGeometry,
    w: NDArray[np.floating],
    bias: Optional[NDArray[np.floating]],
    dtype: np.dtype,
    tile_bytes: int,
    out: NDArray[np.floating],
    label: str = "out = padded rows · T (each kernel row a banded matrix)",
) -> None:
    """:func:`forward_banded` into ``out`` (N, FN, OH, OW), on the calling thread (for callers that are workers).

    ``label`` names its GEMMs in an active trace.
    """

    _correlate_tiles(x, geom, w, dtype, tile_bytes, _storer(out, bias, 0), ordered=False, serial=True, label=label)


def forward_banded(
    x: NDArray[np.generic],
    geom: ConvGeometry,
    w: NDArray[np.floating],
    bias: Optional[NDArray[np.floating]],
    dtype: np.dtype,
    tile_bytes: int,
    progress: Optional[Callable[[int, int], None]] = None,
    rows: Optional[tuple[int, int]] = None,
) -> NDArray[np.floating]:
    """The forward pass with kernels as banded matrices (see the module notes).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    geom : ConvGeometry
    w : ndarray, shape (FN, C/groups, FH, FW), dtype ``dtype``
    bias : ndarray, shape (FN,), or None
    dtype : numpy.dtype
    tile_bytes : int
        Budget of one channel's window of padded rows (and of the precomputed banded matrices).
    progress : callable(done, total), optional
    rows : (int, int), optional
        Compute only output rows ``r0:r1``.

    Returns
    -------
    out : ndarray, shape (N, FN, OH, OW), or (N, FN, r1 - r0, OW) with ``rows``
        Equal to the im2col path's to float rounding.
    """
    r0, r1 = (0, geom.out_h) if rows is None else rows
    out = np.empty((geom.batch, geom.filters, r1 - r0, geom.out_w), dtype=dtype)

    _correlate_tiles(x, geom, w, dtype, tile_bytes, _storer(out, bias, r0), ordered=False, progress=progress,
                     rows_wanted=rows)
    return out


def backward_banded(
    x: NDArray[np.generic],
    dout: NDArray[np.generic],
    geom: ConvGeometry,
    w: NDArray[np.floating],
    dtype: np.dtype,
    tile_bytes: int,
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """dx and dW of a stride-1 layer with the banded products (see the module notes).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    dout : ndarray, shape (N, FN, OH, OW)
    geom : ConvGeometry
        Stride (1, 1); any padding mode and dilation.
    w : ndarray, shape (FN, C/groups, FH, FW), dtype ``dtype``
    dtype : numpy.dtype
    tile_bytes : int

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dW : ndarray, shape (FN, C/groups, FH, FW)
    """
    g = geom
    if g.stride != (1, 1):
        raise ValueError("backward_banded needs stride 1")
    groups, cg, fg, kh, kw = g.groups, g.channels_per_group, g.filters_per_group, g.kernel_h, g.kernel_w
    (dh, dw) = g.dilation
    top, _, left, _ = g.pads
    grad = np.asarray(dout).astype(dtype, copy=False)
    # dx: the full correlation of dout with the flipped, transposed kernel gives the gradient of
    # the padded input (Hp × Wp); the padding's adjoint folds it back into the image
    w_flip = np.ascontiguousarray(
        w.reshape(groups, fg, cg, kh, kw).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    ).reshape(g.channels, fg, kh, kw)
    reach = (dh * (kh - 1), dw * (kw - 1))
    full = plan_geometry(grad.shape, w_flip.shape, 1, (reach[0], reach[0], reach[1], reach[1]), g.dilation, groups)
    dx = np.zeros(g.input_shape, dtype=dtype)
    hp, wp = g.padded_hw

    def fold(tile: Tile, values: NDArray[np.floating]) -> None:
        rows = Lattice(tile.row0 - top, 1, tile.rows, g.height)
        win = window(rows, Lattice(-left, 1, wp, g.width), g.padding_mode)
        add_window(dx[tile.n0], values[:, :, :wp], win)

    assert full.out_h == hp and full.out_w == wp
    _correlate_tiles(grad, full, w_flip, dtype, tile_bytes, fold, ordered=True,
                     label="dx_padded = dout rows · T (the flipped kernel's rows as banded matrices)")
    return dx, _weight_gradient(x, grad, g, dtype, tile_bytes)


def _weight_gradient(
    x: NDArray[np.generic], grad: NDArray[np.floating], geom: ConvGeometry, dtype: np.dtype, tile_bytes: int
) -> NDArray[np.floating]:
    """dW of a stride-1 layer: per kernel column j, dout's rows times the padded rows' window at j; diagonals give i."""
    g = geom
    groups, cg, fg, kh, kw = g.groups, g.channels_per_group, g.filters_per_group, g.kernel_h, g.kernel_w
    (dh, dw) = g.dilation
    top, _, left, _ = g.pads
    ow = g.out_w
    rows = max(1, min(g.out_h, kh, MAX_ROWS))  # about the kernel's height: the GEMM's waste stays below 2x
    tiles = _tiles(g, rows)
    src = x.reshape(g.batch, groups, cg, g.height, g.width)
    dsrc = grad.reshape(g.batch, groups, fg, g.out_h, ow)
    width = ow + dw * (kw - 1)
    window_rows = rows + dh * (kh - 1)
    dw_sum = np.zeros((groups, fg, cg, kh, kw), dtype=dtype)
    order = Turnstile()
    trace = active_trace()

    class _Buffers:
        def __init__(self) -> None:
            self.win = np.empty(cg * window_rows * width, dtype=dtype)
            self.prod = np.empty(fg * rows * window_rows, dtype=dtype)
            self.part = np.empty((groups, fg, cg, kh, kw), dtype=dtype)

    def work(t: int, buf: _Buffers) -> None:
        tile = tiles[t]
        nr = tile.rows
        hw = nr + dh * (kh - 1)
        for gi in range(groups):
            win = buf.win[: cg * hw * width].reshape(cg, hw, width)
            rows_at = Lattice(tile.row0 - top, 1, hw, g.height)
            read_window(src[tile.n0, gi], win, window(rows_at, Lattice(-left, 1, width, g.width), g.padding_mode),
                        g.pad_value)
            d = dsrc[tile.n0, gi, :, tile.row0:tile.row1].reshape(fg * nr, ow)  # (FG*rows, OW)
            prod = buf.prod[: fg * nr * hw].reshape(fg, nr, hw)
            for k in range(cg):
                for j in range(kw):
                    rhs = win[k, :, j * dw:j * dw + ow].T
                    start = perf_counter()
                    np.matmul(d, rhs, out=prod.reshape(fg * nr, hw))
                    if trace is not None:
                        trace.gemm("dW[:, :, :, j] = dout rows · x rows at column jᵀ (diagonals give i)", d.shape,
                                   rhs.shape, perf_counter() - start)
                    # prod[f, r, r + i*dh] over r is dW[f, k, i, j]'s share of this tile
                    diag = np.lib.stride_tricks.as_strided(
                        prod, shape=(fg, kh, nr), strides=(nr * hw * prod.itemsize, dh * prod.itemsize,
                                                           (hw + 1) * prod.itemsize), writeable=False)
                    np.sum(diag, axis=2, out=buf.part[gi, :, k, :, j])
        with order.turn(t):
            np.add(dw_sum, buf.part, out=dw_sum)

    macs = g.batch * g.out_h * ow * g.filters * cg * kw * (rows + dh * (kh - 1))
    run_tiles(len(tiles), _Buffers, work, order, parallel=macs >= PARALLEL_MIN_MACS * len(tiles))
    return dw_sum.reshape(g.filters, cg, kh, kw)
