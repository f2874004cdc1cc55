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
from typing import Callable, Optional, Union

import numpy as np
from numpy.typing import NDArray

from ..engine.geometry import valid_region
from ..engine.layer import Convolution
from ..io.display import ELEMENTWISE_MODES, map_range, to_pixels
from ..io.formats import PICTURE_FORMATS
from ..io.images import encode_pixels, encode_tiff_float
from ..io.outputs import npy_bytes, npz_bytes

__all__ = ["BAND_BYTES", "FileSpec", "Rendered", "render"]

#: Bytes of float result one band of the picture path computes at a time.
BAND_BYTES = 64 << 20


@dataclass
class FileSpec:
    """One file of a batch: images ``first:stop`` of its result, the maps ``maps`` (None: all), as ``format``."""

    first: int
    stop: int
    maps: Optional[tuple[int, ...]]
    format: str
    bits: int = 8


@dataclass
class Rendered:
    """One file's bytes, the shape (n, maps, OH, OW) of what it holds, its maps' value ranges and,
    for pictures, the pixels it encodes (H, W, maps) of its first image."""

    spec: FileSpec
    data: bytes
    shape: tuple[int, ...]
    ranges: list[Optional[tuple[float, float]]]
    pixels: Optional[NDArray[np.unsignedinteger]] = None


def _maps(spec: FileSpec) -> Union[slice, list[int]]:
    return slice(None) if spec.maps is None else list(spec.maps)


def _runs(displays: Sequence[str]) -> list[tuple[int, int, str]]:
    """``displays`` as runs ``(start, stop, mode)`` of consecutive maps that share a mode."""
    runs: list[tuple[int, int, str]] = []
    for j, mode in enumerate(displays):
        if runs and runs[-1][2] == mode:
            runs[-1] = (runs[-1][0], j + 1, mode)
        else:
            runs.append((j, j + 1, mode))
    return runs


def _extend(ranges: list[Optional[tuple[float, float]]], band: NDArray[np.floating]) -> None:
    """Widen each map's running (min, max) of finite values by a band (N, FN, rows, OW)."""
    for j in range(band.shape[1]):
        found = map_range(band[:, j])
        if found is None:
            continue
        old = ranges[j]
        ranges[j] = found if old is None else (min(old[0], found[0]), max(old[1], found[1]))


def render(
    layer: Convolution,
    data: NDArray[np.generic],
    files: Sequence[FileSpec],
    displays: Sequence[str],
    *,
    png_level: int,
    quality: int,
    progress: Optional[Callable[[float], None]] = None,
    transform: Optional[Callable[[NDArray[np.floating]], NDArray[np.floating]]] = None,
    keep: Optional[Callable[[NDArray[np.floating]], None]] = None,
) -> Iterator[Rendered]:
    """Run ``layer`` over ``data`` and yield each file's bytes, with the shape and value range of what it holds.

    Parameters
    ----------
    layer : Convolution
    data : ndarray, shape (N, C, H, W)
        The batch's samples (integers are converted a tile at a time by the engine).
    files : sequence of FileSpec
        The batch's outputs.
    displays : sequence of str
        How pictures map each map's floats to pixels (one mode per map of the result, after
        ``transform``).  minmax takes each map's range over the outputs whose window lies
        inside the input (:func:`convcli.engine.geometry.valid_region`), so the padding's
        artefacts do not set it; values outside are clipped.
    png_level, quality : int
        PNG's zlib level; JPEG's and WebP's quality.
    progress : callable(fraction), optional
        Told the fraction of the batch done.
    transform : callable(maps) -> maps, optional
        Applied to the layer's result (N, FN, rows, OW) before anything is written, a band
        of rows at a time where the pictures allow it (``--combine`` reduces the maps of
        several kernels to one per channel: :func:`convcli.kernels.combine.combine_maps`).
    keep : callable(result), optional
        Given the whole float result (N, FN, OH, OW) (for a montage); the result is then
        computed whole, not a band at a time.

    Yields
    ------
    Rendered
        In the order of ``files``.
    """
    n, fn, oh, ow = layer.output_shape(data.shape)
    if transform is not None:
        fn = transform(np.zeros((1, fn, 1, 1), dtype=np.float32)).shape[1]
    pictures = all(f.format in PICTURE_FORMATS for f in files) and all(d in ELEMENTWISE_MODES for d in displays)
    depths = {f.bits for f in files}
    runs = _runs(displays)
    if pictures and len(depths) == 1 and keep is None:
        bits = depths.pop()
        pixels = np.empty((n, oh, ow, fn), dtype=np.uint8 if bits == 8 else np.uint16)
        rows = max(1, min(oh, BAND_BYTES // max(1, n * fn * ow * 4)))
        ranges: list[Optional[tuple[float, float]]] = [None] * fn
        saved, layer.progress = layer.progress, None
        try:
            for r0 in range(0, oh, rows):
                r1 = min(oh, r0 + rows)
                band = layer.forward_rows(data, r0, r1)  # (N, FN, rows, OW) floats, then pixels at once
                if transform is not None:
                    band = transform(band)
                _extend(ranges, band)
                for k in range(n):
                    for j0, j1, mode in runs:
                        to_pixels(band[k, j0:j1], mode, bits, out=pixels[k, r0:r1, :, j0:j1])
                if progress is not None:
                    progress(r1 / oh)
        finally:
            layer.progress = saved
        for spec in files:
            picture = pixels[spec.first][:, :, _maps(spec)]
            shape = (spec.stop - spec.first, picture.shape[2], oh, ow)
            data_bytes = encode_pixels(picture, spec.format, level=png_level, quality=quality)
            yield Rendered(spec, data_bytes, shape, [ranges[j] for j in _indices(spec, fn)], picture)
        return
    if progress is not None:
        layer.progress = lambda done, total: progress(done / total)
    result = layer.forward(data)
    if transform is not None:
        result = transform(result)
    if keep is not None:
        keep(result)
    region = valid_region(layer.geometry(tuple(data.shape)))
    for spec in files:
        maps = result[spec.first:spec.stop, _maps(spec)]
        chosen = [displays[j] for j in _indices(spec, fn)]
        ranges = [map_range(maps[:, j]) for j in range(maps.shape[1])]
        if spec.format in PICTURE_FORMATS:
            picture = _pixels(maps[0], chosen, spec.bits, region)
            encoded = encode_pixels(picture, spec.format, level=png_level, quality=quality)
            yield Rendered(spec, encoded, tuple(maps.shape), ranges, picture)
        else:
            yield Rendered(spec, _encode(maps, spec), tuple(maps.shape), ranges)


def _indices(spec: FileSpec, fn: int) -> list[int]:
    """The result's map indices one file holds."""
    return list(range(fn)) if spec.maps is None else list(spec.maps)


def _pixels(maps: NDArray[np.floating], displays: Sequence[str], bits: int,
            region: tuple[slice, slice]) -> NDArray[np.unsignedinteger]:
    """Pixels (OH, OW, maps) of one image's maps (maps, OH, OW), each map through its own display."""
    out = np.empty((*maps.shape[1:], maps.shape[0]), dtype=np.uint8 if bits == 8 else np.uint16)
    for j0, j1, mode in _runs(displays):
        to_pixels(maps[j0:j1], mode, bits, out=out[:, :, j0:j1], region=region)
    return out


def _encode(maps: NDArray[np.floating], spec: FileSpec) -> bytes:
    """Bytes of an array file from float maps (n, maps, OH, OW); a TIFF holds one image (n = 1)."""
    if spec.format == "npy":
        return npy_bytes(maps)
    if spec.format == "npz":
        return npz_bytes({"y": maps})
    return encode_tiff_float(maps[0])
