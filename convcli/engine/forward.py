"""The forward pass: im2col and one GEMM per item, the book's ``np.dot(col, col_W)`` a tile at a time.

The book's forward builds ``col = im2col(x)`` (N*OH*OW × C*FH*FW, all at once) and
computes ``out = col @ W.T``.  :func:`forward_im2col` does the same product an item at a
time (see :mod:`convcli.engine.tiles`): the item's columns are gathered and unfolded,
then ``res = W_chunk @ col`` - transposed with respect to the book (filters × pixels),
so the columns need no transpose and the output tile comes out channel-first, as NCHW
wants it.
"""

from __future__ import annotations

from time import perf_counter
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from .parallel import TileCounter, Turnstile, run_tiles
from .tiles import TilePlan, Workspace, clip_tiles
from .trace import active_trace

__all__ = ["forward_im2col"]

Progress = Optional[Callable[[int, int], None]]


def forward_im2col(
    x: NDArray[np.generic],
    plan: TilePlan,
    weights: list[NDArray[np.floating]],
    bias: Optional[NDArray[np.floating]],
    dtype: np.dtype,
    *,
    rows: Optional[tuple[int, int]] = None,
    progress: Progress = None,
) -> NDArray[np.floating]:
    """``out = W * x + b`` over the plan's items.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Any real dtype; each item's window is converted to ``dtype`` as it is read.
    plan : TilePlan
    weights : list of ndarray, shape (groups, FN/groups, kc*ic*jc)
        :meth:`TilePlan.weights` in ``dtype``: one block per chunk.
    bias : ndarray, shape (FN,), or None
    dtype : numpy.dtype
        The compute dtype.
    rows : (int, int), optional
        Compute only output rows ``r0:r1`` (a band of the whole output; padding and
        context are the whole image's).
    progress : callable(done, total), optional
        Called after every finished tile, from the worker threads.

    Returns
    -------
    out : ndarray, shape (N, FN, OH, OW)
        ``OH = floor((H + top + bottom - dh*(FH-1) - 1) / sh) + 1``, likewise OW; with
        ``rows``, (N, FN, r1 - r0, OW).

    Notes
    -----
    With one chunk, every item writes its own part of ``out``.  With several, an
    output tile is the sum of its chunks' GEMMs, added in item order (a
    :class:`~convcli.engine.parallel.Turnstile`), so results do not depend on the
    number of threads.
    """
    g = plan.geom
    r0, r1 = (0, g.out_h) if rows is None else rows
    if rows is not None:
        plan = TilePlan(g, clip_tiles(plan.tiles, rows), plan.chunks, direct=plan.direct)
    out = np.empty((g.batch, g.filters, r1 - r0, g.out_w), dtype=dtype)
    bias4 = None if bias is None else bias[None, :, None, None]
    order = Turnstile() if plan.chunked else None
    finished = TileCounter(len(plan.tiles), progress)
    trace = active_trace()

    def direct(index: int, ws: Workspace) -> None:
        """Depthwise: each tap's run times its weight, added up; no columns."""
        tile, chunk, _ = plan.item(index)
        res = ws.result(tile, chunk, g.filters)  # (FN, nb, rows, wq)
        flat = res.reshape(g.filters, tile.images, -1)
        start = perf_counter()
        inp = ws.gathered(x, tile, chunk)
        gathered = perf_counter()
        taps = weights[0].reshape(g.groups, -1)
        inp.multiply_add(taps, flat, ws.col[: flat.size].reshape(flat.shape))
        if trace is not None:  # per group: (1 × taps) by (taps × pixels), a one-row GEMM done as multiply-adds
            trace.copy("read the window (padding filled as read)", inp.flat.shape, inp.flat.nbytes, gathered - start)
            trace.gemm("out = w · runs (each tap's run multiplied in place, no column copy)",
                       (g.groups, 1, taps.shape[1]), (g.groups, taps.shape[1], tile.images * flat.shape[2]),
                       perf_counter() - gathered)
        _store(out[tile.n0:tile.n1, :, tile.row0 - r0:tile.row1 - r0, :], res[..., : g.out_w].transpose(1, 0, 2, 3),
               bias4)
        finished.tick()

    def work(index: int, ws: Workspace) -> None:
        tile, chunk, first = plan.item(index)
        res = ws.result(tile, chunk, g.filters)  # (FN, nb, rows, wq)
        start = perf_counter()
        col = ws.columns(x, tile, chunk)  # im2col of the item: (C', taps, nb, rows*wq)
        unfolded = perf_counter()
        cols = tile.images * col.shape[3]
        w = weights[index % len(plan.chunks)]
        col3 = col.reshape(g.groups, -1, cols)
        np.matmul(w, col3, out=res.reshape(g.groups, g.filters_per_group, cols))  # the GEMM
        if trace is not None:
            trace.copy("im2col: read the window, copy one run per tap", col3.shape, col.nbytes, unfolded - start)
            trace.gemm("out = W · col", w.shape, col3.shape, perf_counter() - unfolded)
        src = res[..., : g.out_w].transpose(1, 0, 2, 3)  # junk columns stay behind
        dst = out[tile.n0:tile.n1, :, tile.row0 - r0:tile.row1 - r0, :]
        if order is None:
            _store(dst, src, bias4)
            finished.tick()
            return
        last = index % len(plan.chunks) == len(plan.chunks) - 1
        with order.turn(index):  # partial sums in item order: the same whatever the thread count
            if first:
                _store(dst, src, bias4)
            else:
                np.add(dst, src, out=dst)
        if last:
            finished.tick()

    run_tiles(len(plan), lambda: Workspace(plan, dtype), direct if plan.direct else work, order,
              parallel=plan.worth_threads)
    return out


def _store(dst: NDArray[np.floating], src: NDArray[np.floating], bias4: Optional[NDArray[np.floating]]) -> None:
    if bias4 is None:
        np.copyto(dst, src)
    else:
        np.add(src, bias4, out=dst)
