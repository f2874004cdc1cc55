"""The backward pass: dx and dW of a convolution, an item at a time, in two ways.

The book's backward keeps forward's ``col`` and computes ``dW = col.T @ dout`` and
``dcol = dout @ W``, then ``dx = col2im(dcol)``.  Both functions here recompute each
item's columns instead of keeping them, so memory stays bounded:

* :func:`backward_by_col2im` is the book's way, per item: ``dW += col @ doutᵀ``,
  ``dcol = Wᵀ @ dout``, then col2im of the tile (:meth:`FlatTile.fold`) and the padding
  folded back into dx (:meth:`FlatTile.scatter`).  Any stride, padding and mode.
* :func:`backward_by_correlation` needs no col2im: with stride 1 and zero padding, dx
  is a forward correlation of dout with the flipped, transposed kernel, so each dx tile
  is one GEMM over dout's columns; the same columns against the tile's own pixels of x
  give dW.  Used where it applies (:func:`correlation_pads`).

dW (and dx, wherever items overlap) are summed in item order, so results do not depend
on the number of threads.
"""

from __future__ import annotations

from time import perf_counter
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from .geometry import ConvGeometry, plan_geometry
from .parallel import Turnstile, run_tiles
from .tiles import TilePlan, Workspace, plan_tiles, zero_junk
from .trace import active_trace

__all__ = ["backward_by_col2im", "backward_by_correlation", "correlation_pads"]


def correlation_pads(geom: ConvGeometry) -> Optional[tuple[int, int, int, int]]:
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


def backward_by_col2im(
    x: NDArray[np.generic],
    dout: NDArray[np.generic],
    plan: TilePlan,
    weights: list[NDArray[np.floating]],
    dtype: np.dtype,
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """dx and dW the book's way, item by item: ``dW += col @ doutᵀ``, ``dx += col2im(Wᵀ @ dout)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        The forward's input.
    dout : ndarray, shape (N, FN, OH, OW)
        Gradient with respect to the forward's output.
    plan : TilePlan
        The forward's plan.
    weights : list of ndarray, shape (groups, FN/groups, kc*ic*jc)
        :meth:`TilePlan.weights` in ``dtype``.
    dtype : numpy.dtype

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dW : ndarray, shape (FN, C/groups, FH, FW)
    """
    g = plan.geom
    fn, groups, fg = g.filters, g.groups, g.filters_per_group
    dx = np.zeros(g.input_shape, dtype=dtype)
    dw_t = np.zeros((groups, g.channels_per_group, g.kernel_h, g.kernel_w, fg), dtype=dtype)  # dW transposed
    order = Turnstile()
    trace = active_trace()

    def work(index: int, ws: Workspace) -> None:
        tile, chunk, _ = plan.item(index)
        lay = plan.layout(chunk)
        start = perf_counter()
        col = ws.columns(x, tile, chunk)  # im2col of the item: (C', taps, nb, rows*wq)
        unfolded = perf_counter()
        zero_junk(col, tile, lay.wq, g.out_w)  # so that non-finite junk cannot reach dW
        grad = ws.result(tile, chunk, fn)  # dout's tile at the GEMM's pitch, junk columns zero
        grad[..., g.out_w:] = 0
        np.copyto(grad[..., : g.out_w], dout[tile.n0:tile.n1, :, tile.row0:tile.row1, :].transpose(1, 0, 2, 3))
        cols = tile.images * col.shape[3]
        grad3 = grad.reshape(groups, fg, cols)
        col3 = col.reshape(groups, -1, cols)
        assert ws.dw is not None and ws.grad is not None
        dw = ws.dw[: col3.shape[1] * groups * fg].reshape(groups, col3.shape[1], fg)
        np.matmul(col3, grad3.transpose(0, 2, 1), out=dw)  # dWᵀ = col @ doutᵀ (BLAS's fastest shape for it)
        dw_done = perf_counter()
        w_t = weights[index % len(plan.chunks)].transpose(0, 2, 1)
        np.matmul(w_t, grad3, out=col3)  # dcol = Wᵀ @ dout
        dcol_done = perf_counter()
        window = ws.grad[chunk.shape]
        window.flat.fill(0)
        window.fold(col)  # col2im of the tile
        if trace is not None:
            trace.copy("im2col of x: read the window, one run per tap", col3.shape, col.nbytes, unfolded - start)
            trace.gemm("dWᵀ = col · doutᵀ", col3.shape, grad3.transpose(0, 2, 1).shape, dw_done - unfolded)
            trace.gemm("dcol = Wᵀ · dout", w_t.shape, grad3.shape, dcol_done - dw_done)
            trace.copy("col2im: add each tap's run back into the window", window.flat.shape, window.flat.nbytes,
                       perf_counter() - dcol_done)
        kc, ic, jc = chunk.shape
        with order.turn(index):  # in item order: the same sums whatever the thread count
            block = dw_t[:, chunk.k0:chunk.k1, chunk.i0:chunk.i1, chunk.j0:chunk.j1, :]
            np.add(block, dw.reshape(groups, kc, ic, jc, fg), out=block)
            window.scatter(dx, tile, chunk)

    def make() -> Workspace:
        return Workspace(plan, dtype, backward=True, grad_window=True)

    run_tiles(len(plan), make, work, order, parallel=plan.worth_threads)
    dW = np.ascontiguousarray(dw_t.transpose(0, 4, 1, 2, 3)).reshape(fn, g.channels_per_group, g.kernel_h, g.kernel_w)
    return dx, dW


def backward_by_correlation(
    x: NDArray[np.generic],
    dout: NDArray[np.generic],
    geom: ConvGeometry,
    w: NDArray[np.floating],
    pads: tuple[int, int, int, int],
    dtype: np.dtype,
    tile_bytes: int,
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """dx and dW of a stride-1, zero-padded convolution, one GEMM pair per dx item, no col2im.

    dx is a forward correlation of dout (padded by ``pads``, see :func:`correlation_pads`)
    with the flipped, transposed kernel: ``dx_tile = W_flipᵀ @ col(dout)``, every dx pixel
    one GEMM column.  The same column tile gives dW:
    ``dW[f, c, i, j] = sum_p x[c, p] * col[f, (FH-1-i, FW-1-j), p]``, one more GEMM with
    the tile's own pixels of x (no unfold of x).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    dout : ndarray, shape (N, FN, OH, OW)
    geom : ConvGeometry
        The forward's geometry.
    w : ndarray, shape (FN, C/groups, FH, FW), dtype ``dtype``
    pads : (top, bottom, left, right)
        From :func:`correlation_pads`.
    dtype : numpy.dtype
    tile_bytes : int
        The budget of the correlation's own tile plan.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dW : ndarray, shape (FN, C/groups, FH, FW)
    """
    groups, kh, kw = geom.groups, geom.kernel_h, geom.kernel_w
    fg, cg = geom.filters_per_group, geom.channels_per_group
    w_flip = np.ascontiguousarray(  # (C, FN/groups, FH, FW): per group, the transposed filters with taps reversed
        w.reshape(groups, fg, cg, kh, kw).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    ).reshape(geom.channels, fg, kh, kw)
    grad = dout.astype(dtype, copy=False)
    dgeom = plan_geometry(grad.shape, w_flip.shape, 1, pads, geom.dilation, groups, "zeros")
    plan = plan_tiles(dgeom, dtype.itemsize, tile_bytes)
    weights = plan.weights(w_flip)
    dx = np.empty(geom.input_shape, dtype=dtype)
    dw_flip = np.zeros((groups, fg, kh, kw, cg), dtype=dtype)  # dW with taps reversed, transposed
    width = geom.width
    order = Turnstile()

    def make() -> Workspace:
        return Workspace(plan, dtype, backward=True, dw_cols=cg, pixels=True)

    trace = active_trace()

    def work(index: int, ws: Workspace) -> None:
        tile, chunk, first = plan.item(index)
        lay = plan.layout(chunk)
        start = perf_counter()
        col = ws.columns(grad, tile, chunk)  # im2col of dout for this dx item
        zero_junk(col, tile, lay.wq, width)
        unfolded = perf_counter()
        cols = tile.images * col.shape[3]
        col3 = col.reshape(groups, -1, cols)
        res = ws.result(tile, chunk, geom.channels)
        w_flipped = weights[index % len(plan.chunks)]
        np.matmul(w_flipped, col3, out=res.reshape(groups, cg, cols))  # dx tile
        dx_done = perf_counter()
        pixels = ws.pixels(tile, chunk, geom.channels)  # the tile's x at the GEMM's pitch, junk zero
        np.copyto(pixels[..., :width], x[tile.n0:tile.n1, :, tile.row0:tile.row1, :].transpose(1, 0, 2, 3))
        assert ws.dw is not None
        dw = ws.dw[: col3.shape[1] * groups * cg].reshape(groups, col3.shape[1], cg)
        x_t = pixels.reshape(groups, cg, cols).transpose(0, 2, 1)
        np.matmul(col3, x_t, out=dw)  # dW, taps reversed
        if trace is not None:
            trace.copy("im2col of dout (padded by the kernel's reach)", col3.shape, col.nbytes, unfolded - start)
            trace.gemm("dx = W_flippedᵀ · col(dout)", w_flipped.shape, col3.shape, dx_done - unfolded)
            trace.gemm("dW_flipped = col(dout) · xᵀ", col3.shape, x_t.shape, perf_counter() - dx_done)
        src = res[..., :width].transpose(1, 0, 2, 3)
        dst = dx[tile.n0:tile.n1, :, tile.row0:tile.row1, :]
        kc, ic, jc = chunk.shape
        with order.turn(index):  # in item order: the same sums whatever the thread count
            if first:
                np.copyto(dst, src)
            else:
                np.add(dst, src, out=dst)
            block = dw_flip[:, chunk.k0:chunk.k1, chunk.i0:chunk.i1, chunk.j0:chunk.j1, :]
            np.add(block, dw.reshape(groups, kc, ic, jc, cg), out=block)

    run_tiles(len(plan), make, work, order, parallel=plan.worth_threads)
    dW = dw_flip[:, :, ::-1, ::-1, :].transpose(0, 1, 4, 2, 3)
    return dx, np.ascontiguousarray(dW).reshape(geom.filters, cg, kh, kw)
