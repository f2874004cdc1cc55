"""One batch of ``apply`` streamed: a memory-mapped ``.npy`` in, a memory-mapped ``.npy`` out, a band at a time.

Neither the input nor the result is ever held whole: the layer computes a band of output
rows (:meth:`convcli.Convolution.forward_rows`, which reads only the input rows the band
needs, the far edge included for the mirror and wrap modes), the band is stored into the
output's mapping, and the resident pages of both mappings are released
(:meth:`convcli.io.mapped.MappedArray.release`) before the next band.  Resident memory is
then about two bands and the engine's work buffers, whatever the array's size.

The output is the temporary file :class:`~convcli.io.outputs.OutputSet` made beside the
target (:meth:`~convcli.io.outputs.OutputSet.stage_with`): it is renamed over the target
only when the whole run has succeeded, as every other output is.

Neighbours: the in-memory path of a batch is :mod:`convcli.commands.render`; mapping files
:mod:`convcli.io.mapped`; which batches stream :mod:`convcli.commands.apply`.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.layer import Convolution
from ..io.mapped import MappedArray, create_npy

__all__ = ["STREAM_BAND_BYTES", "band_rows", "stream_npy"]

#: Bytes of float result one band of the streamed path computes at a time.
STREAM_BAND_BYTES = 32 << 20


def band_rows(shape: tuple[int, int, int, int], itemsize: int, band_bytes: int = STREAM_BAND_BYTES) -> int:
    """Output rows per band: ``band_bytes`` of result (N * FN * rows * OW values), at least one row."""
    n, fn, oh, ow = shape
    return max(1, min(oh, band_bytes // max(1, n * fn * ow * itemsize)))


def stream_npy(
    layer: Convolution,
    data: NDArray[np.generic],
    source: Optional[MappedArray],
    fd: int,
    path: str,
    shape: tuple[int, int, int, int],
    dtype: np.dtype,
    *,
    transform: Optional[Callable[[NDArray[np.floating]], NDArray[np.floating]]] = None,
    progress: Optional[Callable[[float], None]] = None,
    band_bytes: Optional[int] = None,
) -> None:
    """Write ``layer``'s result over ``data`` into the ``.npy`` file ``fd``, a band of output rows at a time.

    Parameters
    ----------
    layer : Convolution
    data : ndarray, shape (N, C, H, W)
        The input, usually a read-only view of ``source``'s mapping.
    source : MappedArray or None
        The input's mapping, whose pages are released after every band (None: nothing to release).
    fd : int
        An empty file open for reading and writing: it becomes a ``.npy`` of ``shape`` and ``dtype``.
    path : str
        The output's name, for messages.
    shape : (N, FN', OH, OW)
        The result's shape (after ``transform``).
    dtype : numpy.dtype
        The file's dtype (each band is converted to it as it is stored).
    transform : callable(maps) -> maps, optional
        Applied to each band (N, FN, rows, OW) before it is stored (``--combine``).
    progress : callable(fraction), optional
        Told the fraction of the rows done after each band.
    band_bytes : int, optional
        Bytes of result per band (:func:`band_rows`; default :data:`STREAM_BAND_BYTES`).

    Raises
    ------
    OutputFileError
        The file cannot be laid out (a full disk: found before any work).
    """
    out = create_npy(fd, shape, np.dtype(dtype), path)
    oh = shape[2]
    rows = band_rows(shape, np.dtype(dtype).itemsize, STREAM_BAND_BYTES if band_bytes is None else band_bytes)
    saved, layer.progress = layer.progress, None
    try:
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            band = layer.forward_rows(data, r0, r1)
            if transform is not None:
                band = transform(band)
            out.array[:, :, r0:r1] = band
            del band
            # the band is in the page cache (dirty) and the input rows were read: neither need stay resident
            out.release()
            if source is not None:
                source.release()
            if progress is not None:
                progress(r1 / oh)
        out.flush()
    finally:
        layer.progress = saved
        out.close()
