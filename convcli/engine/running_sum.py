"""Box kernels on integer samples: running sums, exact, at one cost for every kernel size.

A filter whose taps are all equal, ``K = c · ones(FH, FW)`` (a box, or a mean filter with
the divisor folded in), correlates to ``c`` times each FH×FW window's sum.  On integer
samples (8- and 16-bit images) that sum is computed exactly with integer running sums,
one tile of output rows at a time:

1. the tile's window of padded rows is read as integers (the padding filled as read);
2. prefix sums down its columns, then one subtraction per output row: each column's sum
   over the FH rows that output row reads;
3. prefix sums along those rows, then one subtraction per output: the FW-wide sums;
4. ``out = c · sum``, computed in float64 and rounded once to the compute dtype (then
   ``+ b`` in it).

Six passes over a tile whatever FH and FW: a 15×15 box costs what a 3×3 does (the 2-D
path multiplies 225 taps per output, the separable one 30).

Exact: the sums are exact integers (int32 where the largest prefix,
``max|sample| · max(padded rows, FH · padded columns)``, fits, else int64), so the result is the exact
correlation rounded once (twice with a bias) - closer than the 2-D path's ``FH·FW``
roundings.  Float samples
keep the other paths: a running sum of floats is as exact as its prefix's magnitude,
not the window's.

Applies (:func:`unsuitable` says why not) to filters that read one channel each with
all taps equal, dilation 1, any stride and padding mode (a constant pad must be an
integer), on integer samples of at most 16 bits.
"""

from __future__ import annotations

from time import perf_counter
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from .geometry import ConvGeometry, ceil_div
from .padding import Lattice, read_window, window
from .parallel import TileCounter, run_tiles
from .tiles import PARALLEL_MIN_MACS, Tile, clip_tiles, even_split
from .trace import active_trace

__all__ = ["accumulator", "box_constants", "forward_running_sum", "unsuitable"]


def box_constants(w: NDArray[np.generic]) -> Optional[NDArray[np.float64]]:
    """Each filter's tap, shape (FN,), when every filter of ``w`` (FN, 1, FH, FW) has all its taps equal; else None."""
    taps = np.asarray(w, dtype=np.float64).reshape(np.shape(w)[0], -1)
    return taps[:, 0].copy() if bool(np.all(taps == taps[:, :1])) else None


def accumulator(geom: ConvGeometry, samples: np.dtype) -> np.dtype:
    """int32 where the largest prefix sum (down all the padded rows, or along a row of FH-row sums) fits, else int64."""
    info = np.iinfo(samples)
    biggest = max(abs(int(info.min)), int(info.max), abs(int(geom.pad_value)))
    padded_height = (geom.out_h - 1) * geom.stride[0] + geom.kernel_h
    padded_width = (geom.out_w - 1) * geom.stride[1] + geom.kernel_w
    largest = biggest * max(padded_height, geom.kernel_h * padded_width)
    return np.dtype(np.int32 if largest < 2**31 else np.int64)


def unsuitable(geom: ConvGeometry, samples: np.dtype, w: NDArray[np.generic]) -> Optional[str]:
    """Why running sums cannot compute this layer exactly, or None when they can."""
    if geom.channels_per_group != 1:
        return f"filters read {geom.channels_per_group} channels each (running sums need one)"
    if geom.dilation != (1, 1):
        return f"dilation {geom.dilation} (running sums need 1)"
    if samples.kind not in "iu" or samples.itemsize > 2:
        return f"{samples} samples (running sums are exact on integers of at most 16 bits)"
    if geom.padding_mode == "constant" and not float(geom.pad_value).is_integer():
        return f"a constant pad of {geom.pad_value!r} on integer samples (running sums need an integer)"
    if box_constants(w) is None:
        return "the taps of a filter differ (running sums need a box: all taps equal)"
    return None


def forward_running_sum(
    x: NDArray[np.generic],
    geom: ConvGeometry,
    constants: NDArray[np.float64],
    bias: Optional[NDArray[np.floating]],
    dtype: np.dtype,
    tile_bytes: int,
    progress: Optional[Callable[[int, int], None]] = None,
    out_rows: Optional[tuple[int, int]] = None,
) -> NDArray[np.floating]:
    """The forward pass of a box layer on integer samples, by running sums (see the module notes).

    Parameters
    ----------
    x : ndarray of integers, shape (N, C, H, W)
    geom : ConvGeometry
        Filters that read one channel each, dilation 1 (:func:`unsuitable` is None).
    constants : ndarray, shape (FN,)
        Each filter's tap (:func:`box_constants`).
    bias : ndarray, shape (FN,), or None
    dtype : numpy.dtype
        The compute (and result) dtype.
    tile_bytes : int
        Budget of a tile's integer buffers.
    progress : callable(done, total), optional
        Called after every tile.
    out_rows : (int, int), optional
        Compute only output rows ``r0:r1``.

    Returns
    -------
    out : ndarray, shape (N, FN, OH, OW), or (N, FN, r1 - r0, OW) with ``out_rows``
        ``constants[f] · (sum of each window) + bias[f]``.
    """
    c, fg = geom.channels, geom.filters_per_group
    (sh, sw), (fh, fw) = geom.stride, (geom.kernel_h, geom.kernel_w)
    top, _, left, _ = geom.pads
    ow = geom.out_w
    width = (ow - 1) * sw + fw  # the padded columns the outputs read
    r0, r1 = (0, geom.out_h) if out_rows is None else out_rows
    acc = accumulator(geom, x.dtype)
    # per output row: a tile's window (sh rows of it), column sums and window sums
    per_row = c * width * acc.itemsize * (sh + 2)
    rows = max(1, min(geom.out_h, tile_bytes // per_row))
    bands = even_split(geom.out_h, ceil_div(geom.out_h, rows))
    tiles = clip_tiles([Tile(n, n + 1, a, b) for n in range(geom.batch) for a, b in bands], out_rows)
    most = max(t.rows for t in tiles)
    most_span = (most - 1) * sh + fh
    out = np.empty((geom.batch, geom.filters, r1 - r0, ow), dtype=dtype)
    scale = constants.reshape(c, fg, 1, 1)
    shift = None if bias is None else np.asarray(bias, dtype).reshape(c, fg, 1, 1)
    finished = TileCounter(len(tiles), progress)
    trace = active_trace()

    class _Buffers:
        def __init__(self) -> None:
            self.window = np.empty(c * most_span * width, dtype=acc)
            self.columns = np.empty(c * most * width, dtype=acc)
            self.sums = np.empty(c * most * ow, dtype=acc)

    def work(t: int, bufs: _Buffers) -> None:
        tile = tiles[t]
        n, nrows = tile.n0, tile.rows
        span = (nrows - 1) * sh + fh
        win = bufs.window[: c * span * width].reshape(c, span, width)
        rows_at = Lattice(tile.row0 * sh - top, 1, span, geom.height)
        cols_at = Lattice(-left, 1, width, geom.width)
        start = perf_counter()
        read_window(x[n], win, window(rows_at, cols_at, geom.padding_mode), geom.pad_value)
        read = perf_counter()
        for i in range(1, span):  # prefix sums down the columns (row by row: numpy's accumulate strides slowly)
            np.add(win[:, i - 1], win[:, i], out=win[:, i])
        cols = bufs.columns[: c * nrows * width].reshape(c, nrows, width)
        cols[:, 0] = win[:, fh - 1]
        np.subtract(win[:, fh - 1 + sh: span: sh], win[:, sh - 1: span - fh: sh], out=cols[:, 1:])
        np.cumsum(cols, axis=2, out=cols)  # prefix sums along the rows (contiguous: fast)
        sums = bufs.sums[: c * nrows * ow].reshape(c, nrows, ow)
        sums[:, :, 0] = cols[:, :, fw - 1]
        np.subtract(cols[:, :, fw - 1 + sw: width: sw], cols[:, :, sw - 1: width - fw: sw], out=sums[:, :, 1:])
        if trace is not None:
            trace.copy("read the window as integers (padding filled as read)", win.shape, win.nbytes, read - start)
            trace.copy("running sums down the columns and along the rows (additions, no products)", sums.shape,
                       win.nbytes + cols.nbytes + sums.nbytes, perf_counter() - read)
        for ch in range(c):  # the channel's fg filters: int × float64, rounded once into the result
            dst = out[n, ch * fg:(ch + 1) * fg, tile.row0 - r0:tile.row1 - r0]
            np.multiply(sums[ch], scale[ch], out=dst, casting="unsafe")
            if shift is not None:
                np.add(dst, shift[ch], out=dst)
        finished.tick()

    work_done = geom.batch * geom.filters * geom.out_h * ow * 6
    run_tiles(len(tiles), _Buffers, work, parallel=work_done >= PARALLEL_MIN_MACS * len(tiles))
    return out
