"""The same engine over dask arrays: each output block from its input window through :class:`~convcli.Convolution`.

Optional (``pip install "convcli[dask]"``); nothing else in convcli imports this module.

:func:`apply` turns a layer and a dask array (N, C, H, W) into the dask array of
``layer.forward(x)``, without computing anything.  How it stays exact:

* **one window per output block** - output block rows ``o0:o1`` read padded rows
  ``o0*s : (o1-1)*s + d*(k-1) + 1``: the block's own rows and a halo of the kernel's reach
  ``d*(k-1)`` (the layer's padding split as it splits it - asymmetric for even kernels and
  'same');
* **padding by the engine's rule, for the whole array** - each padded index is mapped to
  the input index it copies by :func:`convcli.engine.padding.source_index` over the
  *array*'s size (:func:`axis_windows`), so the mirror and wrap modes read the array's far
  edge, whatever the pad's size and wherever the chunks fall; the constant modes fill;
* **the same layer, unpadded** - each window goes through a copy of the layer with
  ``pad=0`` (same weights, bias, stride, dilation, groups, algorithm), so output blocks
  tile the whole output exactly, strides included.

The graph has two tasks per chunk: a block's window takes the chunks it reads whole as
they are, and the parts it needs of the others from one *halo* task per chunk (that
chunk's edges for all its neighbours, copied); the block task assembles the window and
runs the engine on one thread (Dask already keeps each core busy with a task).

Results equal the local engine's to float rounding (blocks regroup the BLAS products).
Channels are never split (a filter reads all its group's channels); images (N) and output
rows and columns are.

Many images over a cluster, one task each, are :func:`convcli.commands.apply_dask.map_images`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union, cast

import numpy as np
from numpy.typing import NDArray

from .engine.dtypes import compute_dtype
from .engine.layer import Convolution
from .engine.padding import source_index
from .engine.parallel import capped_threads
from .errors import ConvcliError, ShapeError

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["DEFAULT_CHUNK", "AxisWindow", "Run", "apply", "axis_windows", "block_layer", "require"]

#: Output rows and columns per block when neither ``chunks`` nor the input's chunks say.
DEFAULT_CHUNK = 4096

EXTRA_HINT = 'pip install "convcli[dask]"'


class MissingExtraError(ConvcliError):
    """An optional library convcli needs for this job is not installed."""

    exit_code = 2


def require(module: str, extra: str) -> Any:
    """Import ``module``, or raise one line naming the extra that installs it.

    Raises
    ------
    MissingExtraError
        ``module`` is not installed.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"this needs {module.split('.')[0]}, which is not installed; pip install \"convcli[{extra}]\""
        ) from None


def block_layer(layer: Convolution) -> Convolution:
    """A copy of ``layer`` without padding: what each padded window goes through."""
    return Convolution(
        np.asarray(layer.W), None if layer.b is None else np.asarray(layer.b), layer.stride, 0,
        dilation=layer.dilation, groups=layer.groups, padding_mode="zeros", tile_bytes=layer.tile_bytes,
        algorithm=layer.algorithm,
    )


def _splits(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(total, start + size)) for start in range(0, total, size)]


def _output_block(chunk: int, stride: int) -> int:
    """Output rows (or columns) per block: an input chunk's worth, at least one."""
    return max(1, math.ceil(chunk / stride))


def apply(
    x: Union[da.Array, NDArray[np.generic]],
    layer: Convolution,
    *,
    chunks: Optional[Union[int, tuple[int, int]]] = None,
) -> da.Array:
    """``layer.forward(x)`` as a lazy dask array, computed block by block with convcli's engine.

    Parameters
    ----------
    x : dask array or ndarray, shape (N, C, H, W)
        Any real dtype (converted to the compute dtype chunk by chunk).  An ndarray is
        wrapped with :data:`DEFAULT_CHUNK` chunks.
    layer : Convolution
        Any geometry and padding mode.
    chunks : int or (rows, cols), optional
        Output rows and columns per block; default the input's first chunk sizes divided
        by the stride (so blocks follow the input's chunking).  Images keep the input's
        chunks along N.

    Returns
    -------
    dask array, shape (N, FN, OH, OW)
        Equal to ``layer.forward(x.compute())`` to float rounding; dtype as the layer
        computes (float32 for float32 or integer data with float32 weights).

    Raises
    ------
    ShapeError, ParameterError
        As :meth:`Convolution.geometry` raises for this input.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.random.default_rng(0).random((1, 1, 64, 48), chunks=(1, 1, 16, 16)).astype("float32")
    >>> y = apply(x, Convolution(np.ones((1, 1, 3, 3), np.float32), pad="same", padding_mode="circular"))
    >>> y.shape, y.chunks[2]
    ((1, 1, 64, 48), (16, 16, 16, 16))
    """
    dam = require("dask.array", "dask")
    if not isinstance(x, dam.Array):
        x = dam.from_array(np.asarray(x), chunks=(1, -1, DEFAULT_CHUNK, DEFAULT_CHUNK))
    return _apply(cast("da.Array", x), layer, chunks)



# ----------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Run:
    """Window positions ``start : start + length`` along one axis, read from one input chunk.

    They read the chunk's indices ``source, source + step, ...`` (``step`` -1, 0 or 1:
    a mirror's reversed edge, a replicated edge, or plain rows).
    """

    start: int
    length: int
    source: int
    step: int

    def window(self) -> slice:
        return slice(self.start, self.start + self.length)

    def piece(self, lo: int) -> slice:
        """The run's indices in a piece that starts at chunk index ``lo`` (broadcast when ``step`` is 0)."""
        first = self.source - lo
        if self.step == 0:
            return slice(first, first + 1)
        if self.step == 1:
            return slice(first, first + self.length)
        last = first - self.length
        return slice(first, last if last >= 0 else None, -1)


@dataclass(frozen=True)
class AxisWindow:
    """Where one output block's window reads along one axis.

    ``pieces[j] = (lo, hi, runs)``: the window reads indices ``lo:hi`` of input chunk
    ``j`` (chunk-local), placed by ``runs``; ``fill`` - some positions are the constant
    padding, read from no chunk.
    """

    length: int
    fill: bool
    pieces: dict[int, tuple[int, int, tuple[Run, ...]]]


def axis_windows(size: int, chunks: Sequence[int], splits: Sequence[tuple[int, int]], stride: int, reach: int,
                 before: int, mode: str) -> list[AxisWindow]:
    """How each output block's window along one axis reads the input's chunks.

    Parameters
    ----------
    size : int
        The input's length along the axis.
    chunks : sequence of int
        The input's chunk lengths along it (summing to ``size``).
    splits : sequence of (o0, o1)
        Each output block's range of output indices.
    stride, reach : int
        The layer's stride and the kernel's reach ``d*(k-1) + 1`` along the axis.
    before : int
        The padding before the first index (top or left).
    mode : str
        The padding mode (:func:`~convcli.engine.padding.source_index`).

    Returns
    -------
    list of AxisWindow, one per split
        Output block ``o0:o1`` reads padded indices ``o0*stride : (o1-1)*stride + reach``.
    """
    bounds = np.concatenate([[0], np.cumsum(chunks)]).astype(np.intp)
    out = []
    for o0, o1 in splits:
        index = source_index(np.arange(o0 * stride - before, (o1 - 1) * stride + reach - before), size, mode)
        out.append(_axis_window(index, bounds))
    return out


def _axis_window(index: NDArray[np.intp], bounds: NDArray[np.intp]) -> AxisWindow:
    """Split a window's source indices (-1: the constant) into runs of one chunk and a constant step."""
    n = index.size
    chunk = np.searchsorted(bounds, index, side="right") - 1
    step = np.diff(index)
    # joined[p]: positions p and p+1 can be in one run (same chunk, both read, step -1, 0 or 1)
    joined = (index[:-1] >= 0) & (chunk[:-1] == chunk[1:]) & (np.abs(step) <= 1)
    # a run starting at i goes on while joined and the step stays step[i]; it ends at the first
    # p > i where that fails (position p is its last), or where joining fails (p its last)
    breaks = np.flatnonzero(~joined[1:] | (step[1:] != step[:-1])) + 1 if n > 2 else np.zeros(0, np.intp)
    pieces: dict[int, list[Run]] = {}
    fill = False
    i = 0
    while i < n:
        if index[i] < 0:
            fill = True
            i += 1
            continue
        if i < n - 1 and joined[i]:
            after = breaks[np.searchsorted(breaks, i, side="right"):]
            end = int(after[0]) if after.size else n - 1  # the run's last position
            run = Run(i, end - i + 1, int(index[i]), int(step[i]))
        else:
            run = Run(i, 1, int(index[i]), 0)
        pieces.setdefault(int(chunk[i]), []).append(run)
        i += run.length
    placed = {}
    for j, runs in pieces.items():
        ends = [r.source + r.step * (r.length - 1) for r in runs]
        lo = min(min(r.source for r in runs), min(ends)) - int(bounds[j])
        hi = max(max(r.source for r in runs), max(ends)) + 1 - int(bounds[j])
        placed[j] = (lo, hi, tuple(Run(r.start, r.length, r.source - int(bounds[j]), r.step) for r in runs))
    return AxisWindow(n, fill, placed)


def _halo(chunk: NDArray[np.generic], regions: dict[tuple[int, int], tuple[int, int, int, int]]
          ) -> dict[tuple[int, int], NDArray[np.generic]]:
    """The parts of one input chunk that neighbouring blocks read, copied (small, and sent alone)."""
    return {block: np.ascontiguousarray(chunk[..., r0:r1, c0:c1]) for block, (r0, r1, c0, c1) in regions.items()}


def _forward_window(layer: Convolution, images: tuple[int, int], block: tuple[int, int], rows: AxisWindow,
                    cols: AxisWindow, fill: float, dtype: np.dtype[Any], places: list[tuple[int, int]],
                    sources: list[Any]) -> NDArray[np.floating]:
    """One output block: its window assembled from whole chunks and halos, through the unpadded layer.

    ``images`` is the window's (N, C) and ``dtype`` its dtype (the samples', or the compute
    dtype); ``sources[k]`` is input chunk ``places[k]`` (row chunk, column chunk): the chunk
    itself, or its halo dict (:func:`_halo`) to take this block's part from.  A window of
    padding alone has no sources.
    """
    pieces = [data[block] if isinstance(data, dict) else data for data in sources]
    shape = (*images, rows.length, cols.length)
    window = np.full(shape, fill, dtype) if rows.fill or cols.fill else np.empty(shape, dtype)
    for (i, j), piece in zip(places, pieces):
        r_lo, _, r_runs = rows.pieces[i]
        c_lo, _, c_runs = cols.pieces[j]
        for r in r_runs:
            for q in c_runs:
                window[:, :, r.window(), q.window()] = piece[:, :, r.piece(r_lo), q.piece(c_lo)]
    # One engine thread a task: Dask runs a task on each of its threads already (two workers
    # of one thread on two cores ran each block 2-3x slower with two engine threads each).
    with capped_threads(1):
        return layer.forward_rows(window, 0, layer.output_shape(shape)[2])


def _apply(x: da.Array, layer: Convolution, chunks: Optional[Union[int, tuple[int, int]]]) -> da.Array:
    dam = require("dask.array", "dask")
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    if x.ndim != 4:
        raise ShapeError(f"x must be 4-D (N, C, H, W), got {x.ndim}-D shape {x.shape}")
    geom = layer.geometry(tuple(int(n) for n in x.shape))
    W = np.asarray(layer.W)
    dtype = compute_dtype(np.empty(0, x.dtype), W, None if layer.b is None else np.asarray(layer.b))
    x = x.rechunk({1: -1})
    sh, sw = geom.stride
    if chunks is None:
        rows, cols = _output_block(x.chunks[2][0], sh), _output_block(x.chunks[3][0], sw)
    else:
        rows, cols = (chunks, chunks) if isinstance(chunks, int) else chunks
    top, _, left, _ = geom.pads
    dh, dw = geom.dilation
    row_splits, col_splits = _splits(geom.out_h, rows), _splits(geom.out_w, cols)
    row_windows = axis_windows(geom.height, x.chunks[2], row_splits, sh, dh * (geom.kernel_h - 1) + 1, top,
                               geom.padding_mode)
    col_windows = axis_windows(geom.width, x.chunks[3], col_splits, sw, dw * (geom.kernel_w - 1) + 1, left,
                               geom.padding_mode)
    fill = geom.pad_value if geom.padding_mode == "constant" else 0.0
    # integer samples stay integers in the windows where the padding is one of their values: the
    # engine converts them a tile at a time, and runs boxes on them as exact running sums
    kept = x.dtype.kind in "iu" and float(fill).is_integer() and (
        int(np.iinfo(x.dtype).min) <= fill <= int(np.iinfo(x.dtype).max))
    window_dtype = x.dtype if kept else dtype

    token = tokenize(x, W, layer.b, geom, rows, cols, layer.algorithm, layer.tile_bytes)
    name, halo_name, layer_key = f"convcli-forward-{token}", f"convcli-halo-{token}", f"convcli-layer-{token}"
    row_chunks, col_chunks = x.chunks[2], x.chunks[3]
    # Each block reads whole chunks in place and the parts of the others it needs from one
    # halo task per chunk (a task per chunk, not per piece: measured, the per-task cost of
    # many small slices dominated small kernels).
    halos: dict[tuple[int, int], dict[tuple[int, int], tuple[int, int, int, int]]] = {}
    wants: dict[tuple[int, int], list[tuple[int, int, bool]]] = {}
    for bi, rw in enumerate(row_windows):
        for bj, cw in enumerate(col_windows):
            for i, (r0, r1, _) in rw.pieces.items():
                for j, (c0, c1, _) in cw.pieces.items():
                    whole = (r0, r1, c0, c1) == (0, row_chunks[i], 0, col_chunks[j])
                    if not whole:
                        halos.setdefault((i, j), {})[(bi, bj)] = (r0, r1, c0, c1)
                    wants.setdefault((bi, bj), []).append((i, j, whole))
    dsk: dict[Any, Any] = {layer_key: block_layer(layer)}
    for n in range(len(x.chunks[0])):
        for (i, j), regions in halos.items():
            dsk[(halo_name, n, 0, i, j)] = (_halo, (x.name, n, 0, i, j), regions)
        images = (x.chunks[0][n], geom.channels)
        for bi, rw in enumerate(row_windows):
            for bj, cw in enumerate(col_windows):
                sources = wants.get((bi, bj), [])
                places = [(i, j) for i, j, _ in sources]
                keys = [(x.name if whole else halo_name, n, 0, i, j) for i, j, whole in sources]
                dsk[(name, n, 0, bi, bj)] = (_forward_window, layer_key, images, (bi, bj), rw, cw, fill,
                                             window_dtype, places, keys)
    # (dask's Array does not match its own DaskCollection protocol for mypy)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[cast(Any, x)])
    out_chunks = (x.chunks[0], (geom.filters,), tuple(o1 - o0 for o0, o1 in row_splits),
                  tuple(o1 - o0 for o0, o1 in col_splits))
    return cast("da.Array", dam.Array(graph, name, out_chunks, dtype=dtype, meta=np.empty((0, 0, 0, 0), dtype)))
