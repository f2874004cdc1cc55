"""Separable and low-rank kernels: a 2-D kernel that is a sum of r outer products runs as r pairs of 1-D passes.

A box, gaussian, sobel, scharr, prewitt or binomial kernel is the outer product of a
column and a row, ``K = u vᵀ``: correlating with K is correlating the columns of the
image with u and then its rows with v, FH + FW taps per pixel instead of FH·FW (a 49×49
gaussian: 98 instead of 2401).  A kernel of rank r is r such pairs; its SVD says which r.

Both passes are the engine's own im2col + GEMM over bounded tiles (:mod:`convcli.engine.tiles`),
one tile of output rows at a time, so the intermediate image never exists whole:

1. **vertical** - an (FH, 1) kernel per term over the input, with the layer's padding on
   all four sides: the padded width is kept, so the second pass needs no padding;
2. **horizontal** - a (1, FW) kernel per term over the first pass's band, summing the r
   terms in its GEMM and adding the bias.

Only filters that read one channel each (``W`` of shape (FN, 1, FH, FW): depthwise, the
way images are filtered) run this way.  Results equal the 2-D path to float rounding:
with ``S = sum_k |u_k| |v_k|ᵀ`` (entrywise; ``S = |K|`` for rank 1), both paths are within
``(FH + FW + 2)·eps·(S * |x_patch|)`` of the exact result, ``eps`` of the compute dtype,
plus the dropped singular values: a term is kept while its singular value is above
``max(FH, FW)·eps`` times the largest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from time import perf_counter
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from .banded import correlate_rows
from .geometry import ConvGeometry, ceil_div, plan_geometry
from .padding import Lattice, read_window, window
from .parallel import TileCounter, run_tiles, single_threaded_blas
from .tiles import (
    PARALLEL_MIN_MACS,
    Tile,
    TilePlan,
    Workspace,
    chunk_pitch,
    clip_tiles,
    even_split,
    split_for_rows,
)
from .trace import active_trace

__all__ = ["AUTO_RATIO", "Factors", "factorize", "forward_separable", "separable_cost_ratio"]

#: The separable path is chosen by "auto" when it takes at most this fraction of the
#: 2-D path's multiply-adds (it makes two passes and writes an intermediate band).
AUTO_RATIO = 0.6

#: A 1-D pass of at least this many taps runs as a banded GEMM (:mod:`convcli.engine.banded`):
#: the image's rows in place and the taps unfolded, instead of one copy of the image per tap.
BANDED_TAPS = 8


@dataclass(frozen=True)
class Factors:
    """Each filter as a sum of outer products: ``W[f, 0] = sum_k outer(cols[f, k], rows[f, k])``.

    Attributes
    ----------
    cols : ndarray, shape (FN, r, FH), float64
    rows : ndarray, shape (FN, r, FW), float64
    exact : bool
        True when found by exact integer arithmetic (integer kernels of rank 1).
    """

    cols: NDArray[np.float64]
    rows: NDArray[np.float64]
    exact: bool

    @property
    def rank(self) -> int:
        """r, the terms per filter (the largest rank among the filters)."""
        return int(self.cols.shape[1])


def _exact_rank_one(k: NDArray[np.float64]) -> Optional[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """``(u, v)`` with ``outer(u, v) == k`` exactly, for an integer-valued kernel of rank <= 1, else None.

    The row is the first nonzero row divided by the gcd of its entries, so both factors
    are integers; the factors count only when their outer product, in float64, is ``k``.
    """
    nonzero = np.flatnonzero(np.any(k != 0, axis=1))
    if nonzero.size == 0:
        return np.zeros(k.shape[0]), np.zeros(k.shape[1])
    first = k[nonzero[0]]
    if np.max(np.abs(k)) >= 2.0**53:  # beyond float64's integers
        return None
    ints = first.astype(np.int64)
    g = math.gcd(*(int(abs(v)) for v in ints if v))
    v = first / g
    pivot = int(np.flatnonzero(v)[0])
    u = k[:, pivot] / v[pivot]
    if not np.all(u == np.round(u)) or not np.array_equal(np.outer(u, v), k):
        return None
    return u, v


def factorize(w: NDArray[np.generic], dtype: np.dtype) -> Factors:
    """The low-rank factors of each filter of a one-channel-per-filter layer.

    Parameters
    ----------
    w : ndarray, shape (FN, 1, FH, FW)
        The filters (any real dtype; factorized in float64).
    dtype : numpy.dtype
        The compute dtype, whose ``eps`` sets the tolerance of the rank.

    Returns
    -------
    Factors
        Integer-valued filters of rank 1 get exact integer factors; otherwise the SVD
        ``K = U diag(s) Vᵀ`` gives ``cols = U·sqrt(s)``, ``rows = sqrt(s)·Vᵀ``, keeping the
        terms whose singular value is above ``max(FH, FW)·eps·s_max`` (at least one).
    """
    every = np.asarray(w, dtype=np.float64)[:, 0]
    # a depthwise bank repeats its M kernels for every channel: factorize each distinct one once
    seen: dict[bytes, int] = {}
    which = np.array([seen.setdefault(f.tobytes(), len(seen)) for f in every], dtype=np.intp)
    k = every[[list(which).index(i) for i in range(len(seen))]]
    _, fh, fw = k.shape
    if np.all(k == np.round(k)):
        pairs = [_exact_rank_one(kf) for kf in k]
        if all(p is not None for p in pairs):
            cols = np.stack([p[0] for p in pairs if p is not None])[:, None]
            rows = np.stack([p[1] for p in pairs if p is not None])[:, None]
            return Factors(cols[which], rows[which], True)
    with single_threaded_blas():  # LAPACK's threads only slow small SVDs down (and stall when cores are busy)
        u, s, vt = np.linalg.svd(k)  # (F, FH, m), (F, m), (F, m, FW)
    tol = max(fh, fw) * float(np.finfo(dtype).eps)
    kept = s > tol * s[:, :1]
    rank = max(1, int(np.max(np.sum(kept, axis=1))))
    root = np.sqrt(np.where(kept, s, 0.0))[:, :rank]
    cols = u[:, :, :rank].transpose(0, 2, 1) * root[:, :, None]
    rows = vt[:, :rank, :] * root[:, :, None]
    return Factors(cols[which], rows[which], False)


def _pass_geometries(geom: ConvGeometry, rank: int) -> tuple[ConvGeometry, ConvGeometry]:
    """Geometries of the vertical pass (x → band) and the horizontal pass (band → output)."""
    n, c, h, w = geom.input_shape
    fg = geom.filters_per_group
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    mode = "zeros" if geom.padding_mode == "zeros" else (
        f"constant:{geom.pad_value!r}" if geom.padding_mode == "constant" else geom.padding_mode
    )
    first = plan_geometry((n, c, h, w), (c * fg * rank, 1, geom.kernel_h, 1), (sh, 1), geom.pads, (dh, 1), c, mode)
    second = plan_geometry(first.output_shape, (c * fg, rank, 1, geom.kernel_w), (1, sw), 0, (1, dw), c * fg)
    return first, second


def separable_cost_ratio(geom: ConvGeometry, rank: int) -> float:
    """Multiply-adds of the two passes over those of the 2-D path (both count every filter and pixel)."""
    first, second = _pass_geometries(geom, rank)
    two_passes = first.out_h * first.out_w * geom.kernel_h * rank + second.out_h * second.out_w * geom.kernel_w * rank
    return two_passes / (geom.out_h * geom.out_w * geom.kernel_h * geom.kernel_w)


def forward_separable(
    x: NDArray[np.generic],
    geom: ConvGeometry,
    factors: Factors,
    bias: Optional[NDArray[np.floating]],
    dtype: np.dtype,
    tile_bytes: int,
    progress: Optional[Callable[[int, int], None]] = None,
    out_rows: Optional[tuple[int, int]] = None,
) -> NDArray[np.floating]:
    """The forward pass of a separable (or low-rank) layer: r vertical and r horizontal 1-D passes per filter.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    geom : ConvGeometry
        The layer's geometry; its filters read one channel each (W.shape[1] == 1).
    factors : Factors
        From :func:`factorize` of the layer's W.
    bias : ndarray, shape (FN,), or None
    dtype : numpy.dtype
    tile_bytes : int
        Budget of each pass's column tile, and of the band between the passes.
    progress : callable(done, total), optional
        Called after every tile.
    out_rows : (int, int), optional
        Compute only output rows ``r0:r1``.

    Returns
    -------
    out : ndarray, shape (N, FN, OH, OW), or (N, FN, r1 - r0, OW) with ``out_rows``
        Equal to the 2-D path's to the rounding stated in the module notes.
    """
    r = factors.rank
    first, second = _pass_geometries(geom, r)
    c, fg, itemsize = geom.channels, geom.filters_per_group, dtype.itemsize
    band_channels, width = first.filters, first.out_w  # the band between the passes: (C*FG*r, nb, rows, Wp)
    (sh, _), (dh, _) = geom.stride, geom.dilation
    top, _, left, _ = geom.pads
    horizontal_banded = geom.kernel_w >= BANDED_TAPS
    vertical_banded = geom.kernel_h >= BANDED_TAPS
    # a tile's rows: the band and each pass's own buffers fit the budget (im2col's columns before any split;
    # a banded pass's window of padded rows)
    per_row = max(
        band_channels * width,
        c * (1 if vertical_banded else geom.kernel_h) * width,
        band_channels * (1 if horizontal_banded else geom.kernel_w) * chunk_pitch(second, geom.kernel_w),
    ) * itemsize
    rows = max(1, tile_bytes // per_row)
    if rows >= geom.out_h:  # whole images, as many as fit
        parts = ceil_div(geom.batch, max(1, tile_bytes // (geom.out_h * per_row)))
        tiles = [Tile(n0, n1, 0, geom.out_h) for n0, n1 in even_split(geom.batch, parts)]
    else:
        bands = even_split(geom.out_h, ceil_div(geom.out_h, rows))
        tiles = [Tile(n, n + 1, r0, r1) for n in range(geom.batch) for r0, r1 in bands]
    tiles = clip_tiles(tiles, out_rows)
    r0, r1 = (0, geom.out_h) if out_rows is None else out_rows
    most = max(t.images * t.rows for t in tiles)
    plan1 = TilePlan(first, tiles, split_for_rows(first, most, itemsize, tile_bytes))
    local = [Tile(0, t.images, 0, t.rows) for t in tiles]  # where each tile's band sits in its own buffer
    plan2 = TilePlan(second, local, split_for_rows(second, most, itemsize, tile_bytes))
    # the passes' weights: vertical (C*FG*r, 1, FH, 1), horizontal (C*FG, r, 1, FW), terms of filter f together
    w1 = np.ascontiguousarray(factors.cols.reshape(c * fg * r, 1, geom.kernel_h, 1), dtype=dtype)
    w2 = np.ascontiguousarray(factors.rows.reshape(c * fg, r, 1, geom.kernel_w), dtype=dtype)
    weights1, weights2 = plan1.weights(w1), plan2.weights(w2)
    out = np.empty((geom.batch, geom.filters, r1 - r0, geom.out_w), dtype=dtype)
    bias4 = None if bias is None else bias[None, :, None, None]
    finished = TileCounter(len(tiles), progress)

    most_rows = max(t.rows for t in tiles)
    reach = (most_rows - 1) * sh + (geom.kernel_h - 1) * dh + 1  # input rows behind a tile
    vertical_banded = vertical_banded and c * fg * r * most_rows * reach * itemsize <= 4 * tile_bytes
    toeplitz = None
    # the vertical GEMMs take SUB rows at a time: a banded matrix of SUB rows is SUB + FH - 1 wide, so about
    # FH / (SUB + FH) of its products are the kernel's (about half, with SUB near FH)
    sub = min(most_rows, max(32, 2 * geom.kernel_h))
    sub_reach = (sub - 1) * sh + (geom.kernel_h - 1) * dh + 1
    if vertical_banded:  # T[c, f, row, row*sh + i*dh] = u[c, f, i]: each vertical kernel as a banded matrix
        toeplitz = np.zeros((c, fg * r, sub, sub_reach), dtype=dtype)
        row = np.arange(sub)[:, None]
        taps = row * sh + np.arange(geom.kernel_h)[None, :] * dh
        toeplitz[:, :, row, taps] = w1.reshape(c, fg * r, 1, geom.kernel_h)
    band_geoms: dict[tuple[int, int], ConvGeometry] = {}
    trace = active_trace()

    class _Buffers:
        def __init__(self) -> None:
            self.one, self.two = Workspace(plan1, dtype), Workspace(plan2, dtype)
            self.band = np.empty(band_channels * most * width, dtype=dtype)
            self.window = np.empty(c * reach * width, dtype=dtype) if vertical_banded else None

    def vertical(tile: Tile, band: NDArray[np.floating], bufs: _Buffers) -> None:
        """band (C*FG*r, nb, rows, Wp) = the vertical kernels times the window of padded rows, one GEMM per channel."""
        assert toeplitz is not None and bufs.window is not None
        nrows = tile.rows
        span = (nrows - 1) * sh + (geom.kernel_h - 1) * dh + 1
        win = bufs.window[: c * span * width].reshape(c, span, width)
        rows_at = Lattice(tile.row0 * sh - top, 1, span, geom.height)
        cols_at = Lattice(-left, 1, width, geom.width)
        for k in range(tile.images):
            read_window(x[tile.n0 + k], win, window(rows_at, cols_at, geom.padding_mode), geom.pad_value)
            for ch in range(c):
                for s0 in range(0, nrows, sub):
                    n = min(sub, nrows - s0)
                    reach_n = (n - 1) * sh + (geom.kernel_h - 1) * dh + 1
                    t = toeplitz[ch, :, :n, :reach_n]
                    rows_in = win[ch, s0 * sh:s0 * sh + reach_n]  # (reach, Wp): a view of the window
                    res = band[ch * fg * r:(ch + 1) * fg * r, k, s0:s0 + n]  # (FG*r, n, Wp)
                    start = perf_counter()
                    lhs = t.reshape(fg * r * n, reach_n)
                    if fg * r == 1:
                        np.matmul(t[0], rows_in, out=res[0])
                    else:
                        res[...] = (lhs @ rows_in).reshape(fg * r, n, width)
                    if trace is not None:
                        trace.gemm("vertical: band = T(u) · padded rows (each column kernel a banded matrix)",
                                   lhs.shape, rows_in.shape, perf_counter() - start)

    def horizontal(tile: Tile, source: NDArray[np.floating], dst: NDArray[np.floating]) -> None:
        """dst (nb, FN, rows, OW) = the horizontal kernels, as banded matrices, over the band (nb, C*FG*r, rows, Wp)."""
        key = (tile.images, tile.rows)
        if key not in band_geoms:
            band_geoms[key] = plan_geometry(source.shape, w2.shape, (1, geom.stride[1]), 0,
                                            (1, geom.dilation[1]), c * fg)
        correlate_rows(source, band_geoms[key], w2, bias, dtype, tile_bytes, dst,
                       label="horizontal: out = band rows · T(v) (each row kernel a banded matrix)")

    def work(t: int, bufs: _Buffers) -> None:
        tile, here = tiles[t], local[t]
        nb, nrows = tile.images, tile.rows
        band = bufs.band[: band_channels * nb * nrows * width].reshape(band_channels, nb, nrows, width)
        for index, chunk in enumerate([] if vertical_banded else plan1.chunks):  # vertical pass: band = u ⋆ x
            start = perf_counter()
            col = bufs.one.columns(x, tile, chunk)
            unfolded = perf_counter()
            cols = nb * col.shape[3]
            res = band if index == 0 else bufs.one.result(tile, chunk, band_channels)
            col3 = col.reshape(c, -1, cols)
            np.matmul(weights1[index], col3, out=res.reshape(c, fg * r, cols))
            if trace is not None:
                trace.copy("vertical: im2col of x, one run per column tap", col3.shape, col.nbytes, unfolded - start)
                trace.gemm("vertical: band = u · col", weights1[index].shape, col3.shape, perf_counter() - unfolded)
            if index:
                np.add(band, res, out=band)
        if vertical_banded:
            vertical(tile, band, bufs)
        source = band.transpose(1, 0, 2, 3)  # (nb, C*FG*r, rows, Wp): the second pass's input
        dst = out[tile.n0:tile.n1, :, tile.row0 - r0:tile.row1 - r0, :]
        if horizontal_banded:
            horizontal(tile, source, dst)
        for index, chunk in enumerate([] if horizontal_banded else plan2.chunks):  # out = sum_k v_k ⋆ band_k (+ b)
            start = perf_counter()
            col = bufs.two.columns(source, here, chunk)
            unfolded = perf_counter()
            cols = nb * col.shape[3]
            res = bufs.two.result(here, chunk, c * fg)
            col3 = col.reshape(c * fg, -1, cols)
            np.matmul(weights2[index], col3, out=res.reshape(c * fg, 1, cols))
            if trace is not None:
                trace.copy("horizontal: im2col of the band, one run per row tap", col3.shape, col.nbytes,
                           unfolded - start)
                trace.gemm("horizontal: out = v · col(band), the r terms summed", weights2[index].shape, col3.shape,
                           perf_counter() - unfolded)
            src = res[..., : geom.out_w].transpose(1, 0, 2, 3)
            if index:
                np.add(dst, src, out=dst)
            elif bias4 is None:
                np.copyto(dst, src)
            else:
                np.add(src, bias4, out=dst)
        finished.tick()

    macs = geom.batch * geom.filters * r * (first.out_h * first.out_w * geom.kernel_h
                                            + geom.out_h * geom.out_w * geom.kernel_w)
    run_tiles(len(tiles), _Buffers, work, parallel=macs >= PARALLEL_MIN_MACS * len(tiles))
    return out
