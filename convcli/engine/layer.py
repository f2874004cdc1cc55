"""The Convolution layer: im2col forward and backward over bounded tiles.

The layer never builds the whole column matrix.  It walks the output in tiles -
several whole images when they are small, a band of output rows of one image when
they are large - sized so the column buffer stays near ``tile_bytes`` (a few MB, so
it is written and read while it is still in cache).  Each tile is one batched GEMM
per group.  backward recomputes each tile's columns instead of keeping them from
forward, so its memory is bounded too.  With stride 1 and zero padding it tiles dx
instead: dx is a forward correlation of dout with the flipped, transposed kernel, and
the same dout column tile gives dW (see :func:`_backward_by_correlation`); otherwise it
folds each tile's column gradient back (col2im).

Speed (see benchmarks/bench.py and BENCHMARKS.md):

* the column tile is filled from a "phase-flat" copy of the padded band with one
  contiguous copy per kernel tap (:class:`convcli.im2col.FlatTile`); the GEMM then
  also computes a few junk columns per output row, which never leave the tile;
* tiles run on worker threads (:mod:`convcli.parallel`), each with its own buffers,
  BLAS held at one thread meanwhile; dW and dx are accumulated in tile order, so
  results are bit-identical whatever the number of threads (for a given
  ``tile_bytes``; across tile sizes they agree to float rounding);
* dW is computed transposed (``col @ grad^T``), the shape OpenBLAS runs fastest.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import ParameterError, ShapeError
from .dtypes import compute_dtype, float_dtype
from .geometry import ConvGeometry, PadSpec, check_layer_args, plan_geometry
from .im2col import FlatLayout, FlatTile, band_rows, flat_layout, scatter_band
from .parallel import Turnstile, get_num_threads, run_tiles, set_num_threads

__all__ = ["DEFAULT_TILE_BYTES", "Convolution", "conv2d", "get_num_threads", "plan_tiles", "set_num_threads"]

#: Default size of one tile's column buffer, in bytes.
DEFAULT_TILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Tile:
    """Images ``n0:n1`` and output rows ``row0:row1`` of one tile."""

    n0: int
    n1: int
    row0: int
    row1: int


def plan_tiles(geom: ConvGeometry, itemsize: int, tile_bytes: int) -> list[Tile]:
    """Split the output into tiles whose column buffer is about ``tile_bytes``.

    Whole images are grouped while one image's columns fit; otherwise each image is
    cut into bands of output rows, at least ``ceil((dilation_h*(FH-1)+1) / stride_h)``
    rows each (so a tile may pass ``tile_bytes`` when one row's columns are large).  Tiles are evened out
    (as many as the budget needs, all about the same size) so that worker threads
    finish together.  The plan depends on the geometry and ``tile_bytes`` only, never
    on the number of threads.
    """
    wq = -(-geom.padded_hw[1] // geom.stride[1])  # the GEMM's row pitch (see flat_layout)
    row_bytes = geom.channels * geom.kernel_h * geom.kernel_w * wq * itemsize
    image_bytes = row_bytes * geom.out_h
    if image_bytes <= tile_bytes:
        per_tile = max(1, tile_bytes // image_bytes)
        return [Tile(n0, n1, 0, geom.out_h) for n0, n1 in _even_split(geom.batch, per_tile)]
    # At least as many rows as the kernel spans (in output rows): a band of input rows
    # is then at most twice its tile's share, and the per-tile overhead of very wide
    # rows (8192-pixel images: one row's columns alone are MBs) stays amortised.
    span_rows = -(-(geom.dilation[0] * (geom.kernel_h - 1) + 1) // geom.stride[0])
    rows = max(1, tile_bytes // row_bytes, min(span_rows, geom.out_h))
    rows = -(-geom.out_h // -(-geom.out_h // rows))  # even out
    return [
        Tile(n, n + 1, r0, min(r0 + rows, geom.out_h))
        for n in range(geom.batch)
        for r0 in range(0, geom.out_h, rows)
    ]


def _even_split(total: int, most: int) -> list[tuple[int, int]]:
    """``range(total)`` cut into as few runs of at most ``most`` as possible, sizes within one."""
    count = -(-total // most)
    base, extra = divmod(total, count)
    bounds = [0]
    for i in range(count):
        bounds.append(bounds[-1] + base + (1 if i < extra else 0))
    return list(zip(bounds[:-1], bounds[1:]))


class _Worker:
    """One worker's buffers, sized for the largest tile and reused by each of its tiles.

    The flat input buffers start zeroed, so the junk columns the GEMM computes (and
    throws away) read finite numbers; ``res``, as backward's gradient tile, has its
    junk columns zeroed once and never written, which keeps them out of dW and dx.
    """

    xg: NDArray[np.floating]  # backward by correlation: the tile's pixels of x, GEMM pitch

    def __init__(self, lay: FlatLayout, geom: ConvGeometry, dtype: np.dtype, backward: bool) -> None:
        cols = lay.images * lay.rows * lay.wq
        k = geom.channels * geom.kernel_h * geom.kernel_w
        self.inp = FlatTile(lay, geom, dtype)
        self.col = np.empty(k * cols, dtype=dtype)
        self.res = (np.zeros if backward else np.empty)(geom.filters * cols, dtype=dtype)
        if backward:
            self.grad = FlatTile(lay, geom, dtype)
            self.dw_t = np.empty((geom.groups, k // geom.groups, geom.filters_per_group), dtype=dtype)


def _correlation_pads(geom: ConvGeometry) -> Optional[tuple[int, int, int, int]]:
    """Padding of dx as a forward correlation of dout, or None where that does not apply.

    With stride 1 and zero padding, ``dx`` is ``dout`` correlated with the flipped,
    transposed kernel, padded by ``dilation*(K-1) - pad`` on each side (the "full"
    correlation, trimmed by the forward's padding).  That needs every such pad >= 0.
    """
    if geom.stride != (1, 1) or geom.padding_mode != "zeros":
        return None
    top, bottom, left, right = geom.pads
    reach_h = geom.dilation[0] * (geom.kernel_h - 1)
    reach_w = geom.dilation[1] * (geom.kernel_w - 1)
    pads = (reach_h - top, reach_h - bottom, reach_w - left, reach_w - right)
    return pads if min(pads) >= 0 else None


class Convolution:
    """2-D convolution layer (cross-correlation, as PyTorch's ``conv2d``) over im2col.

    A drop-in replacement for the book's ``Convolution``: it keeps the ``W`` and ``b``
    arrays it is given (no private copies), so in-place updates by an optimizer are
    seen by the next forward, and ``backward`` sets ``dW`` and ``db``.

    Parameters
    ----------
    W : ndarray, shape (FN, C // groups, FH, FW)
        Filters.
    b : ndarray, shape (FN,), or None
        Bias, one per filter.
    stride : int or (h, w)
        Step between output pixels, >= 1.
    pad : int, (h, w), (top, bottom, left, right), "same" or "valid"
        Padding.  "same" gives an output of ``ceil(H / stride)`` rows (likewise
        columns); when the total padding is odd the extra pixel goes bottom/right.
    dilation : int or (h, w)
        Spacing between kernel taps, >= 1.
    groups : int
        Input channels and filters are split into this many groups, each convolved
        on its own (groups == C with FN == C*M is depthwise).
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        What the padding holds (PyTorch's names).
    tile_bytes : int
        Target size of one tile's column buffer (default 4 MiB); a tile has at
        least as many output rows as the kernel spans, whatever this says.  Results agree
        to float rounding whatever it is (BLAS rounds a matrix's edge columns its
        own way, and the backward sums over tiles are grouped by tile).

    Attributes
    ----------
    dW : ndarray, shape (FN, C // groups, FH, FW)
        Gradient of the loss with respect to W, set by :meth:`backward`.
    db : ndarray, shape (FN,), or None
        Gradient with respect to b (None when b is None).

    Notes
    -----
    Computes in the float dtype numpy promotion gives for x, W and b (integers count
    as float32): float32 data with float32 weights stays float32.  Extra memory is a
    few tile buffers per worker thread (about ``3 * tile_bytes`` each, plus the padded
    band), not the column matrix.  Results do not depend on the number of threads
    (:func:`set_num_threads`); across ``tile_bytes`` they agree to float rounding.
    """

    def __init__(
        self,
        W: NDArray[np.generic],
        b: Optional[NDArray[np.generic]] = None,
        stride: object = 1,
        pad: PadSpec = 0,
        *,
        dilation: object = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        tile_bytes: int = DEFAULT_TILE_BYTES,
    ) -> None:
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.dilation = dilation
        self.groups = groups
        self.padding_mode = padding_mode
        self.tile_bytes = tile_bytes
        self.progress: Optional[Callable[[int, int], None]] = None
        self.x: Optional[NDArray[np.generic]] = None
        self.dW: Optional[NDArray[np.floating]] = None
        self.db: Optional[NDArray[np.floating]] = None
        self._check_params()

    def _check_params(self) -> tuple[NDArray[np.generic], Optional[NDArray[np.generic]]]:
        W = np.asarray(self.W)
        if W.ndim != 4:
            raise ShapeError(f"W must be 4-D (FN, C/groups, FH, FW), got shape {W.shape}")
        b = None if self.b is None else np.asarray(self.b)
        if b is not None and b.shape != (W.shape[0],):
            raise ShapeError(f"b must have shape ({W.shape[0]},) to match W's {W.shape[0]} filters, got {b.shape}")
        check_layer_args(self.stride, self.pad, self.dilation, self.groups, self.padding_mode)
        if isinstance(self.tile_bytes, bool) or not isinstance(self.tile_bytes, int) or self.tile_bytes < 1:
            raise ParameterError(f"tile_bytes must be an int >= 1, got {self.tile_bytes!r}")
        return W, b

    def geometry(self, x_shape: tuple[int, ...]) -> ConvGeometry:
        """Checked geometry of this layer for an input of shape ``x_shape`` (N, C, H, W)."""
        W, _ = self._check_params()
        return plan_geometry(
            tuple(x_shape), W.shape, self.stride, self.pad, self.dilation, self.groups, self.padding_mode
        )

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(N, FN, OH, OW) for an input of shape (N, C, H, W)."""
        return self.geometry(x_shape).output_shape

    def _setup(self, x: NDArray[np.generic]) -> tuple[
        ConvGeometry, np.dtype, NDArray[np.floating], Optional[NDArray[np.floating]], list[Tile], FlatLayout
    ]:
        W, b = self._check_params()
        geom = plan_geometry(x.shape, W.shape, self.stride, self.pad, self.dilation, self.groups, self.padding_mode)
        dtype = compute_dtype(x, W, b)
        w_mat = W.reshape(geom.groups, geom.filters_per_group, -1).astype(dtype, copy=False)
        bias = None if b is None else b.astype(dtype, copy=False)
        tiles = plan_tiles(geom, dtype.itemsize, self.tile_bytes)
        lay = flat_layout(geom, max(t.n1 - t.n0 for t in tiles), max(t.row1 - t.row0 for t in tiles))
        return geom, dtype, w_mat, bias, tiles, lay

    @staticmethod
    def _unfold_tile(
        x: NDArray[np.generic], tile: Tile, geom: ConvGeometry, lay: FlatLayout, wk: _Worker
    ) -> NDArray[np.floating]:
        """Gather the tile's padded band, split it by stride, unfold: col (C, FH*FW, nb, rows*wq)."""
        nb, rows = tile.n1 - tile.n0, tile.row1 - tile.row0
        wk.inp.gather(x, tile.n0, tile.n1, tile.row0, rows, geom)
        length = rows * lay.wq
        col = wk.col[: geom.channels * len(lay.taps) * nb * length].reshape(geom.channels, len(lay.taps), nb, length)
        wk.inp.unfold(col)
        return col

    def forward(self, x: NDArray[np.generic]) -> NDArray[np.floating]:
        """Convolve a batch.

        Parameters
        ----------
        x : ndarray, shape (N, C, H, W)

        Returns
        -------
        out : ndarray, shape (N, FN, OH, OW)
            ``out[n, f, oh, ow] = b[f] + sum_{c,i,j} W[f, c, i, j] *
            x_padded[n, g*C/groups + c, oh*sh + i*dh, ow*sw + j*dw]`` where g is f's
            group; ``OH = floor((H + top + bottom - dh*(FH-1) - 1) / sh) + 1``.
        """
        x = np.asarray(x)
        if x.ndim != 4:
            raise ShapeError(f"x must be 4-D (N, C, H, W), got {x.ndim}-D shape {x.shape}")
        geom, dtype, w_mat, bias, tiles, lay = self._setup(x)
        out = _forward_tiles(x, geom, w_mat, bias, tiles, lay, dtype, progress=self.progress)
        self.x = x
        return out

    def backward(self, dout: NDArray[np.generic]) -> NDArray[np.floating]:
        """Back-propagate ``dout`` through the last :meth:`forward`.

        Parameters
        ----------
        dout : ndarray, shape (N, FN, OH, OW)
            Gradient of the loss with respect to the forward output.

        Returns
        -------
        dx : ndarray, shape (N, C, H, W)
            Gradient with respect to the input.  Also sets ``self.dW`` (W's shape and
            dtype) and ``self.db`` (b's shape and dtype, or None without a bias).
        """
        if self.x is None:
            raise ShapeError("backward needs a forward pass first: call forward(x) before backward(dout)")
        x = self.x
        W, b = self._check_params()
        dout = np.asarray(dout)
        geom, dtype, w_mat, _, tiles, lay = self._setup(x)
        if dout.shape != geom.output_shape:
            raise ShapeError(
                f"dout must have the forward output's shape {geom.output_shape}, got {dout.shape}"
            )
        w_t = w_mat.transpose(0, 2, 1)
        dw_t = np.zeros((geom.groups, w_mat.shape[2], w_mat.shape[1]), dtype=dtype)  # dW transposed
        fn, groups, out_w, wq = geom.filters, geom.groups, geom.out_w, lay.wq
        order = Turnstile()
        corr_pads = _correlation_pads(geom)
        if corr_pads is not None:
            dx, self.dW = _backward_by_correlation(x, dout, geom, dtype, w_mat, corr_pads, self.tile_bytes, W)
            self.db = _bias_grad(dout, b, dtype)
            return dx
        dx = np.zeros(geom.input_shape, dtype=dtype)

        def work(t: int, wk: _Worker) -> None:
            tile = tiles[t]
            nb, rows = tile.n1 - tile.n0, tile.row1 - tile.row0
            col = self._unfold_tile(x, tile, geom, lay, wk)
            cols = nb * col.shape[3]
            grad = wk.res[: fn * cols]
            np.copyto(
                grad.reshape(fn, nb, rows, wq)[..., :out_w],
                dout[tile.n0:tile.n1, :, tile.row0:tile.row1, :].transpose(1, 0, 2, 3),
            )
            if out_w < wq:  # junk columns: zero, so non-finite junk cannot reach dW
                col.reshape(col.shape[0], col.shape[1], nb, rows, wq)[..., out_w:] = 0
            grad3 = grad.reshape(groups, fn // groups, cols)
            col3 = col.reshape(groups, -1, cols)
            # dW^T = col @ grad^T: BLAS runs this shape ~40% faster than grad @ col^T
            np.matmul(col3, grad3.transpose(0, 2, 1), out=wk.dw_t)
            np.matmul(w_t, grad3, out=col3)  # the columns are spent: reuse for dcol
            wk.grad.phase.fill(0)
            wk.grad.fold(col)
            wk.grad.merge(nb)
            band = wk.grad.band_view(nb, band_rows(geom, rows))
            with order.turn(t):  # in tile order: the same sums whatever the thread count
                np.add(dw_t, wk.dw_t, out=dw_t)
                scatter_band(band, dx, tile.n0, tile.n1, tile.row0, geom)

        run_tiles(len(tiles), lambda: _Worker(lay, geom, dtype, backward=True), work, order)
        self.dW = np.ascontiguousarray(dw_t.transpose(0, 2, 1)).reshape(W.shape).astype(_w_dtype(W, dtype), copy=False)
        self.db = _bias_grad(dout, b, dtype)
        return dx


def _w_dtype(W: NDArray[np.generic], dtype: np.dtype) -> np.dtype:
    return float_dtype(W.dtype) if np.issubdtype(W.dtype, np.floating) else dtype


def _bias_grad(
    dout: NDArray[np.generic], b: Optional[NDArray[np.generic]], dtype: np.dtype
) -> Optional[NDArray[np.floating]]:
    if b is None:
        return None
    db = dout.sum(axis=(0, 2, 3), dtype=dtype)
    return db.astype(b.dtype if np.issubdtype(b.dtype, np.floating) else dtype, copy=False)


class _Counter:
    """Counts finished tiles across worker threads and reports ``(done, total)``."""

    def __init__(self, total: int, report: Optional[Callable[[int, int], None]]) -> None:
        self.total, self.report, self.done = total, report, 0
        self.lock = threading.Lock()

    def tick(self) -> None:
        if self.report is None:
            return
        with self.lock:
            self.done += 1
            self.report(self.done, self.total)


def _forward_tiles(
    x: NDArray[np.generic],
    geom: ConvGeometry,
    w_mat: NDArray[np.floating],
    bias: Optional[NDArray[np.floating]],
    tiles: list[Tile],
    lay: FlatLayout,
    dtype: np.dtype,
    make_state: Optional[Callable[[], _Worker]] = None,
    after: Optional[Callable[[int, NDArray[np.floating], _Worker], None]] = None,
    order: Optional[Turnstile] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> NDArray[np.floating]:
    """The forward tile loop: unfold, one GEMM per tile, junk columns dropped on the way out.

    ``after(t, col, worker)``, if given, runs after tile ``t``'s GEMM with its column
    tile (C, taps, nb, rows*wq), whose junk columns are then zeros.  ``progress(done,
    total)``, if given, is called after every tile (from the worker threads).
    """
    out = np.empty(geom.output_shape, dtype=dtype)
    finished = _Counter(len(tiles), progress)
    fn, groups, out_w = geom.filters, geom.groups, geom.out_w
    bias4 = None if bias is None else bias[None, :, None, None]

    def work(t: int, wk: _Worker) -> None:
        tile = tiles[t]
        nb, rows = tile.n1 - tile.n0, tile.row1 - tile.row0
        col = Convolution._unfold_tile(x, tile, geom, lay, wk)
        cols = nb * col.shape[3]
        if after is not None and out_w < lay.wq:  # junk columns: zero, so non-finite junk cannot reach after()
            col.reshape(col.shape[0], col.shape[1], nb, rows, lay.wq)[..., out_w:] = 0
        res = wk.res[: fn * cols].reshape(groups, fn // groups, cols)
        np.matmul(w_mat, col.reshape(groups, -1, cols), out=res)
        src = res.reshape(fn, nb, rows, lay.wq)[..., :out_w].transpose(1, 0, 2, 3)
        dst = out[tile.n0:tile.n1, :, tile.row0:tile.row1, :]
        if bias4 is None:
            np.copyto(dst, src)
        else:
            np.add(src, bias4, out=dst)
        if after is not None:
            after(t, col, wk)
        finished.tick()

    if make_state is None:
        make_state = lambda: _Worker(lay, geom, dtype, backward=False)  # noqa: E731
    run_tiles(len(tiles), make_state, work, order)
    return out


def _backward_by_correlation(
    x: NDArray[np.generic],
    dout: NDArray[np.generic],
    geom: ConvGeometry,
    dtype: np.dtype,
    w_mat: NDArray[np.floating],
    pads: tuple[int, int, int, int],
    tile_bytes: int,
    W: NDArray[np.generic],
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """dx and dW of a stride-1, zero-padded convolution, in one tile loop over dx.

    dx is a forward correlation of dout (padded by ``pads``, see
    :func:`_correlation_pads`) with the flipped, transposed kernel: every dx pixel is one
    GEMM column, nothing to fold or scatter.  The same column tile of dout then gives dW:
    ``dW[f, c, i, j] = sum_p x[c, p] * col[f, (FH-1-i, FW-1-j), p]``, one more GEMM with
    the tile's own pixels of x (no unfold of x).  dW is summed in tile order.
    """
    groups, kh, kw = geom.groups, geom.kernel_h, geom.kernel_w
    fg, cg = geom.filters_per_group, geom.channels // groups
    w_flip = np.ascontiguousarray(  # (groups, C/groups, FN/groups, FH, FW), taps reversed
        w_mat.reshape(groups, fg, cg, kh, kw).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    ).reshape(geom.channels, fg, kh, kw)
    grad = dout.astype(dtype, copy=False)
    dgeom = plan_geometry(grad.shape, w_flip.shape, 1, pads, geom.dilation, groups, "zeros")
    tiles = plan_tiles(dgeom, dtype.itemsize, tile_bytes)
    lay = flat_layout(dgeom, max(t.n1 - t.n0 for t in tiles), max(t.row1 - t.row0 for t in tiles))
    wq, width, channels = lay.wq, geom.width, geom.channels
    taps = kh * kw
    dwp = np.zeros((groups, fg * taps, cg), dtype=dtype)  # dW, flipped taps, transposed
    order = Turnstile()

    def make_state() -> _Worker:
        wk = _Worker(lay, dgeom, dtype, backward=False)
        wk.xg = np.empty(channels * lay.images * lay.rows * wq, dtype=dtype)
        wk.dw_t = np.empty_like(dwp)
        return wk

    def after(t: int, col: NDArray[np.floating], wk: _Worker) -> None:
        tile = tiles[t]
        nb, rows = tile.n1 - tile.n0, tile.row1 - tile.row0
        cols = nb * rows * wq
        xg = wk.xg[: channels * cols].reshape(channels, nb, rows, wq)
        np.copyto(xg[..., :width], x[tile.n0:tile.n1, :, tile.row0:tile.row1, :].transpose(1, 0, 2, 3))
        xg[..., width:] = 0
        np.matmul(col.reshape(groups, -1, cols), xg.reshape(groups, cg, cols).transpose(0, 2, 1), out=wk.dw_t)
        with order.turn(t):  # in tile order: the same sums whatever the thread count
            np.add(dwp, wk.dw_t, out=dwp)

    dx = _forward_tiles(grad, dgeom, w_flip.reshape(groups, cg, -1), None, tiles, lay, dtype, make_state, after, order)
    dW = dwp.reshape(groups, fg, kh, kw, cg)[:, :, ::-1, ::-1, :].transpose(0, 1, 4, 2, 3)
    return dx, np.ascontiguousarray(dW).reshape(W.shape).astype(_w_dtype(W, dtype), copy=False)


def conv2d(
    x: NDArray[np.generic],
    W: NDArray[np.generic],
    b: Optional[NDArray[np.generic]] = None,
    stride: object = 1,
    pad: PadSpec = 0,
    *,
    dilation: object = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> NDArray[np.floating]:
    """Functional form: ``Convolution(W, b, stride, pad, ...).forward(x)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    W : ndarray, shape (FN, C // groups, FH, FW)
    b : ndarray, shape (FN,), or None

    Returns
    -------
    ndarray, shape (N, FN, OH, OW)
        See :meth:`Convolution.forward`.
    """
    layer = Convolution(W, b, stride, pad, dilation=dilation, groups=groups, padding_mode=padding_mode)
    return layer.forward(x)
