"""The same engine over dask arrays: each output block from its input window through :class:`~convcli.Convolution`.

Optional (``pip install "convcli[dask]"``); nothing else in convcli imports this module.

:func:`apply` turns a layer and a dask array (N, C, H, W) into the dask array of
``layer.forward(x)``, without computing anything.  How it stays exact:

* **padding first, for the whole array** - the layer's padding is added around the whole
  array's edges once (:func:`pad`), by the engine's own rule
  (:func:`convcli.engine.padding.source_index`): the mirror and wrap modes read the far
  edge of the *array*, not of a chunk, whatever the pad's size;
* **one window per output block** - output block rows ``o0:o1`` read padded rows
  ``o0*s : (o1-1)*s + d*(k-1) + 1``: the block's own rows and a halo of the kernel's reach
  ``d*(k-1)`` (the layer's padding split as it splits it - asymmetric for even kernels and
  'same' - is already in the padded array); columns likewise;
* **the same layer, unpadded** - each window goes through a copy of the layer with
  ``pad=0`` (same weights, bias, stride, dilation, groups, algorithm), so output blocks
  tile the whole output exactly, strides included.

Results equal the local engine's to float rounding (blocks regroup the BLAS products).
Channels are never split (a filter reads all its group's channels); images (N) and output
rows and columns are.

:func:`run_images` maps a list of image jobs over a dask.distributed client, one task per
image, and hands each result back as it finishes (see :mod:`convcli.commands.apply_dask`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional, Union, cast

import numpy as np
from numpy.typing import NDArray

from .engine.dtypes import compute_dtype
from .engine.geometry import ConvGeometry
from .engine.layer import Convolution
from .engine.padding import source_index
from .errors import ConvcliError, ShapeError

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["DEFAULT_CHUNK", "apply", "block_layer", "pad", "require"]

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


def _pad_axis(x: da.Array, axis: int, before: int, after: int, mode: str, value: float) -> da.Array:
    """``x`` with ``before`` and ``after`` entries of padding along ``axis``, by :func:`source_index`."""
    import dask.array as da

    if before == 0 and after == 0:
        return x
    size = x.shape[axis]
    parts: list[Optional[da.Array]] = []
    for coords in (np.arange(-before, 0), np.arange(size, size + after)):
        if coords.size == 0:
            parts.append(None)
            continue
        if mode in ("zeros", "constant"):
            shape = list(x.shape)
            shape[axis] = coords.size
            chunks = list(x.chunks)
            chunks[axis] = (coords.size,)
            parts.append(da.full(tuple(shape), value if mode == "constant" else 0, dtype=x.dtype, chunks=tuple(chunks)))
        else:
            index = source_index(coords, size, mode)
            parts.append(da.take(x, index, axis=axis))
    pieces = [p for p in (parts[0], x, parts[1]) if p is not None]
    return da.concatenate(pieces, axis=axis)


def pad(x: da.Array, geom: ConvGeometry) -> da.Array:
    """The padded input of ``geom`` as a dask array: rows, then columns, as the engine reads them.

    Parameters
    ----------
    x : dask array, shape (N, C, H, W)
    geom : ConvGeometry
        Its ``pads`` (top, bottom, left, right), ``padding_mode`` and ``pad_value``.

    Returns
    -------
    dask array, shape (N, C, H + top + bottom, W + left + right)
        ``padded[..., i, j] = x[..., source_index(i - top), source_index(j - left)]`` for the
        copying modes; the constant (0 for zeros) where a coordinate is outside for the others.
    """
    top, bottom, left, right = geom.pads
    rows = _pad_axis(x, 2, top, bottom, geom.padding_mode, geom.pad_value)
    return _pad_axis(rows, 3, left, right, geom.padding_mode, geom.pad_value)


def _splits(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(total, start + size)) for start in range(0, total, size)]


def _output_block(chunk: int, stride: int) -> int:
    """Output rows (or columns) per block: an input chunk's worth, at least one."""
    return max(1, math.ceil(chunk / stride))


def _forward_block(window: NDArray[np.generic], layer: Convolution) -> NDArray[np.floating]:
    return layer.forward_rows(window, 0, layer.output_shape(window.shape)[2])


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


def _apply(x: da.Array, layer: Convolution, chunks: Optional[Union[int, tuple[int, int]]]) -> da.Array:
    dam = require("dask.array", "dask")
    if x.ndim != 4:
        raise ShapeError(f"x must be 4-D (N, C, H, W), got {x.ndim}-D shape {x.shape}")
    geom = layer.geometry(tuple(int(n) for n in x.shape))
    W = np.asarray(layer.W)
    dtype = compute_dtype(np.empty(0, x.dtype), W, None if layer.b is None else np.asarray(layer.b))
    x = x.astype(dtype).rechunk({1: -1})
    sh, sw = geom.stride
    if chunks is None:
        rows, cols = _output_block(x.chunks[2][0], sh), _output_block(x.chunks[3][0], sw)
    else:
        rows, cols = (chunks, chunks) if isinstance(chunks, int) else chunks
    padded = pad(x, geom)
    inner = block_layer(layer)
    dh, dw = geom.dilation
    reach_h, reach_w = dh * (geom.kernel_h - 1) + 1, dw * (geom.kernel_w - 1) + 1
    images = [0, *np.cumsum(x.chunks[0]).tolist()]
    grid = []
    for n0, n1 in zip(images[:-1], images[1:]):
        plane = []
        for o0, o1 in _splits(geom.out_h, rows):
            line = []
            for p0, p1 in _splits(geom.out_w, cols):
                window = padded[n0:n1, :, o0 * sh:(o1 - 1) * sh + reach_h, p0 * sw:(p1 - 1) * sw + reach_w]
                window = window.rechunk(window.shape)
                shape = (int(n1 - n0), geom.filters, o1 - o0, p1 - p0)
                line.append(dam.map_blocks(_forward_block, window, inner, dtype=dtype, chunks=shape,
                                           meta=np.empty((0, 0, 0, 0), dtype)))
            plane.append(line)
        grid.append([plane])
    return dam.block(grid)
