"""One batch of ``apply``: the forward pass and the bytes of each of its output files.

Where every output of a batch is a picture (PNG, JPEG, WebP) and the display maps each
value on its own (clip, abs, offset), the result is never held as floats: the layer
computes a band of output rows at a time (:meth:`convcli.Convolution.forward_rows`),
each band is mapped to pixels at once (:func:`convcli.io.display.to_pixels`), and only the
integer picture - a quarter of the float result - exists whole.  Otherwise (arrays,
float TIFF, minmax) the whole float result is computed and each file encoded from it.

Neighbours: which batches and files there are is :mod:`convcli.commands.apply`; encoders
are :mod:`convcli.io.images` and :mod:`convcli.io.png`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.layer import Convolution
from ..io.display import ELEMENTWISE_MODES, to_pixels
from ..io.formats import PICTURE_FORMATS
from ..io.images import encode_pixels, encode_tiff_float
from ..io.outputs import npy_bytes, npz_bytes

__all__ = ["BAND_BYTES", "FileSpec", "render"]

#: Bytes of float result one band of the picture path computes at a time.
BAND_BYTES = 64 << 20


@dataclass
class FileSpec:
    """One file of a batch: images ``first:stop`` of its result, one map (``map_index``) or all, as ``format``."""

    first: int
    stop: int
    map_index: Optional[int]
    format: str
    bits: int = 8


def _maps(spec: FileSpec) -> slice:
    return slice(None) if spec.map_index is None else slice(spec.map_index, spec.map_index + 1)


def render(
    layer: Convolution,
    data: NDArray[np.generic],
    files: Sequence[FileSpec],
    display: str,
    *,
    png_level: int,
    quality: int,
    progress: Optional[Callable[[float], None]] = None,
    transform: Optional[Callable[[NDArray[np.floating]], NDArray[np.floating]]] = None,
) -> Iterator[tuple[FileSpec, bytes, tuple[int, ...]]]:
    """Run ``layer`` over ``data`` and yield each file's bytes, with the shape of what it holds.

    Parameters
    ----------
    layer : Convolution
    data : ndarray, shape (N, C, H, W)
        The batch's samples (integers are converted a tile at a time by the engine).
    files : sequence of FileSpec
        The batch's outputs.
    display : str
        How pictures map floats to pixels.
    png_level, quality : int
        PNG's zlib level; JPEG's and WebP's quality.
    progress : callable(fraction), optional
        Told the fraction of the batch done.
    transform : callable(maps) -> maps, optional
        Applied to the layer's result (N, FN, rows, OW) before anything is written, a band
        of rows at a time where the pictures allow it (``--combine`` reduces the maps of
        several kernels to one per channel: :func:`convcli.kernels.combine.combine_maps`).

    Yields
    ------
    (FileSpec, bytes, shape)
        ``shape`` is (n, maps, OH, OW) of the result the file holds.
    """
    n, fn, oh, ow = layer.output_shape(data.shape)
    if transform is not None:
        fn = transform(np.zeros((1, fn, 1, 1), dtype=np.float32)).shape[1]
    pictures = all(f.format in PICTURE_FORMATS for f in files) and display in ELEMENTWISE_MODES
    depths = {f.bits for f in files}
    if pictures and len(depths) == 1:
        bits = depths.pop()
        pixels = np.empty((n, oh, ow, fn), dtype=np.uint8 if bits == 8 else np.uint16)
        rows = max(1, min(oh, BAND_BYTES // max(1, n * fn * ow * 4)))
        saved, layer.progress = layer.progress, None
        try:
            for r0 in range(0, oh, rows):
                r1 = min(oh, r0 + rows)
                band = layer.forward_rows(data, r0, r1)  # (N, FN, rows, OW) floats, then pixels at once
                if transform is not None:
                    band = transform(band)
                for k in range(n):
                    to_pixels(band[k], display, bits, out=pixels[k, r0:r1])
                if progress is not None:
                    progress(r1 / oh)
        finally:
            layer.progress = saved
        for spec in files:
            picture = pixels[spec.first, :, :, _maps(spec)]
            shape = (spec.stop - spec.first, picture.shape[2], oh, ow)
            yield spec, encode_pixels(picture, spec.format, level=png_level, quality=quality), shape
        return
    if progress is not None:
        layer.progress = lambda done, total: progress(done / total)
    result = layer.forward(data)
    if transform is not None:
        result = transform(result)
    for spec in files:
        maps = result[spec.first:spec.stop, _maps(spec)]
        yield spec, _encode(maps, spec, display, png_level, quality), tuple(maps.shape)


def _encode(maps: NDArray[np.floating], spec: FileSpec, display: str, png_level: int, quality: int) -> bytes:
    """Bytes of one file from float maps (n, maps, OH, OW); pictures and TIFF hold one image (n = 1)."""
    if spec.format == "npy":
        return npy_bytes(maps)
    if spec.format == "npz":
        return npz_bytes({"y": maps})
    if spec.format == "tiff":
        return encode_tiff_float(maps[0])
    return encode_pixels(to_pixels(maps[0], display, spec.bits), spec.format, level=png_level, quality=quality)
