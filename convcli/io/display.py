"""Float feature maps → displayable pixel values in [0, 1].

A convolution's output is not an image: an edge filter gives values around 0, both signs;
a blur keeps [0, 1]; a layer gives anything.  :func:`to_display` maps values to [0, 1] in
one of four ways before :func:`convcli.io.images.encode_png` rounds them to integers:

========  ==============================================================================
clip      ``v`` clipped to [0, 1]: for filters that keep the image's range (blur, sharpen)
abs       ``|v|`` clipped to [0, 1]: edge strength, either sign
minmax    per map ``(v - min) / (max - min)``: stretch each map to the full range, the range
          taken over a region when one is given (``apply``: the valid interior)
offset    ``0.5 + v`` clipped to [0, 1]: signed responses, 0 is mid-gray
========  ==============================================================================

NaN shows as 0 in every mode; +inf as 1 and -inf as 0 (in ``abs``, both infinities as 1).
:func:`default_display` picks the mode that suits a filter bank (through the one zero-sum
test, :func:`convcli.kernels.kernel.is_zero_sum`); :func:`montage` lays maps out as a grid.

Neighbours: the modes' names are :mod:`convcli.io.formats`; PNG encoding is
:mod:`convcli.io.images`; which display ``apply`` and ``grad`` use is theirs
(:mod:`convcli.commands.apply`, :mod:`convcli.commands.grad`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..engine.parallel import run_tiles
from ..errors import ParameterError, ShapeError
from ..kernels.kernel import is_zero_sum
from .formats import DISPLAY_MODES, check_display

__all__ = [
    "CONSTANT_EPS", "DISPLAY_MODES", "ELEMENTWISE_MODES", "Region", "check_display", "default_display", "map_range",
    "montage", "to_display", "to_pixels",
]

#: Display modes that map each value on its own (minmax needs each map's range first), so a
#: result can be turned into pixels a band of rows at a time.
ELEMENTWISE_MODES: tuple[str, ...] = ("clip", "abs", "offset")

#: :func:`to_pixels` maps parts of a picture on the engine's threads from this many values on.
PARALLEL_PIXELS = 1 << 20

#: A map whose range is at most this many float eps of its magnitude counts as constant in ``minmax``.
CONSTANT_EPS = 64


#: A region of a map: (rows, columns) slices.
Region = tuple[slice, slice]


def map_range(plane: NDArray[np.generic], region: Optional[Region] = None) -> Optional[tuple[float, float]]:
    """(min, max) of a map's finite values, over ``region`` when it holds any, else over the whole map.

    Returns None when the map has no finite value.
    """
    if region is not None:
        found = _finite_range(np.asarray(plane[region]))
        if found is not None:
            return found
    return _finite_range(np.asarray(plane))


def _finite_range(values: NDArray[np.generic]) -> Optional[tuple[float, float]]:
    """(min, max) of the finite values, or None; one pass of min and max when every value is finite."""
    if values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    if np.isfinite(lo) and np.isfinite(hi):
        return lo, hi
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def _minmax(maps: NDArray[np.floating], region: Optional[Region] = None) -> NDArray[np.floating]:
    """Stretch each map (C, H, W) to [0, 1] over its finite values (those in ``region`` when it holds any),
    values outside that range clipped; constant maps are clipped instead."""
    out = np.empty_like(maps)
    eps = float(np.finfo(maps.dtype).eps)
    for c, plane in enumerate(maps):
        found = map_range(plane, region)
        if found is None:
            out[c] = np.clip(plane, 0.0, 1.0)
            continue
        lo, hi = found  # Python floats: no float32 overflow below
        if hi - lo <= CONSTANT_EPS * eps * max(abs(lo), abs(hi)):
            out[c] = np.clip(plane, 0.0, 1.0)
        else:
            out[c] = np.clip((plane.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0)
    return out


def to_display(maps: NDArray[np.generic], mode: str, region: Optional[Region] = None) -> NDArray[np.float32]:
    """Map float feature maps to [0, 1] for display.

    Parameters
    ----------
    maps : ndarray, shape (C, H, W)
        Any real dtype; computed in float64 when ``maps`` is float64, else float32.
    mode : {"clip", "abs", "minmax", "offset"}
        clip: ``clip(v, 0, 1)``.  abs: ``clip(|v|, 0, 1)``.  minmax: per map (channel),
        ``(v - min) / (max - min)`` over the map's finite values; a constant map (range
        within ``64 * eps * max(|min|, |max|)``, rounding noise) has nothing to stretch and
        is shown as clip would show it, so an all-zero response is black, not gray.
        offset: ``clip(0.5 + v, 0, 1)``.
    region : (slice, slice), optional
        minmax only: take each map's range over this part of it (the outputs whose window
        lies inside the input, so that padding does not set the range); values outside
        the range are clipped.  An empty region, or one with no finite value, is ignored.

    Returns
    -------
    ndarray, shape (C, H, W), float32
        Values in [0, 1]; NaN becomes 0.

    Raises
    ------
    ParameterError
        ``mode`` is not one of :data:`DISPLAY_MODES`.
    ShapeError
        ``maps`` is not 3-D.
    """
    check_display(mode, "display mode")
    array = np.asarray(maps)
    if array.ndim != 3:
        raise ShapeError(f"display maps must have shape (C, H, W), got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ParameterError(f"display maps must be real numbers, got dtype {array.dtype}")
    values: NDArray[np.floating] = array.astype(np.float64 if array.dtype == np.float64 else np.float32, copy=False)
    if mode == "clip":
        shown = np.clip(values, 0.0, 1.0)
    elif mode == "abs":
        shown = np.abs(values)
        np.clip(shown, 0.0, 1.0, out=shown)
    elif mode == "offset":
        shown = values + 0.5
        np.clip(shown, 0.0, 1.0, out=shown)
    else:
        shown = _minmax(values, region)
    np.fmax(shown, 0.0, out=shown)  # NaN -> 0, in place (shown is a new array)
    return shown.astype(np.float32, copy=False)


def to_pixels(maps: NDArray[np.generic], mode: str, bits: int = 8,
              out: Optional[NDArray[np.unsignedinteger]] = None,
              region: Optional[Region] = None) -> NDArray[np.unsignedinteger]:
    """Feature maps as integer pixels: the display mode, scaled to 255 (or 65535), rounded.

    The same mapping as :func:`to_display` followed by rounding ``255·v`` to the nearest
    integer (not truncating), so ``k/255`` comes back exactly; NaN becomes 0, +inf the top
    value.  clip, abs and offset are computed as ``255·v`` (``|255·v|``, ``255·v + 127.5``)
    in the maps' own float precision, a band of rows at a time so the temporaries stay in
    cache, the bands of a large picture on the engine's worker threads (``out`` may be one
    band of a larger picture); minmax goes through
    :func:`to_display` for its per-map range.

    Parameters
    ----------
    maps : ndarray, shape (C, H, W)
        Any real dtype.
    mode : {"clip", "abs", "minmax", "offset"}
    bits : {8, 16}
    out : ndarray, shape (H, W, C), uint8 (bits 8) or uint16 (bits 16), optional
        Written in place; any strides.
    region : (slice, slice), optional
        minmax's range region (:func:`to_display`).

    Returns
    -------
    ndarray, shape (H, W, C)
        ``out``, or a new array.
    """
    check_display(mode, "display mode")
    array = np.asarray(maps)
    if array.ndim != 3:
        raise ShapeError(f"display maps must have shape (C, H, W), got shape {array.shape}")
    if bits not in (8, 16):
        raise ParameterError(f"bit depth must be 8 or 16, got {bits}")
    channels, height, width = array.shape
    if out is None:
        out = np.empty((height, width, channels), dtype=np.uint8 if bits == 8 else np.uint16)
    top = 255.0 if bits == 8 else 65535.0
    source = to_display(array, mode, region) if mode not in ELEMENTWISE_MODES else array
    work = np.float64 if source.dtype == np.float64 else np.float32
    step = max(1, (1 << 18) // max(1, width * channels))  # rows a part: its temporaries stay in cache
    starts = range(0, height, step)

    def scratch() -> tuple[NDArray[np.floating], NDArray[np.unsignedinteger]]:
        rows = min(step, height)
        return np.empty((channels, rows, width), dtype=work), np.empty((channels, rows, width), dtype=out.dtype)

    def part(i: int, buffers: tuple[NDArray[np.floating], NDArray[np.unsignedinteger]]) -> None:
        r0 = starts[i]
        band = source[:, r0:r0 + step]
        t, pixels = buffers[0][:, : band.shape[1]], buffers[1][:, : band.shape[1]]
        np.multiply(band, top, out=t, casting="unsafe")
        if mode == "abs":
            np.abs(t, out=t)
        elif mode == "offset":
            np.add(t, top / 2, out=t)
        if np.isnan(t.min()):  # (one reduction: NaN wins it) NaN -> 0, as fmax does; clip keeps NaN
            np.fmax(t, 0.0, out=t)
            np.fmin(t, top, out=t)
        else:
            np.clip(t, 0.0, top, out=t)  # -inf -> 0, +inf -> top
        np.rint(t, out=t)
        np.copyto(pixels, t, casting="unsafe")
        rows = out[r0:r0 + step]
        for c in range(channels):  # interleaved a channel at a time: 3-5x faster than one transposed copy
            rows[:, :, c] = pixels[c]

    run_tiles(len(starts), scratch, part, parallel=array.size >= PARALLEL_PIXELS)
    return out


def default_display(kernel_sums: ArrayLike, magnitudes: Optional[ArrayLike] = None) -> str:
    """The display mode that suits a filter bank.

    Parameters
    ----------
    kernel_sums : sequence of float
        Sum of each filter's taps, as the layer runs them (after flip and normalize).
    magnitudes : sequence of float, optional
        Sum of the absolute values of each filter's taps, for the zero-sum test
        (:func:`convcli.kernels.kernel.is_zero_sum`: ``|sum| <= 1e-12 * max(1, magnitude)``);
        default ``|sum|``, an absolute test.

    Returns
    -------
    str
        "clip" when every filter's sum is positive and not zero-sum (smoothing-like
        filters keep the image's range), else "offset": zero-sum (sobel, laplacian,
        log), negative or NaN sums give signed responses around 0.  An empty sequence
        gives "clip".
    """
    sums = np.asarray(kernel_sums, dtype=np.float64).reshape(-1)
    zero = np.asarray(is_zero_sum(sums, None if magnitudes is None else np.asarray(magnitudes, dtype=np.float64)))
    return "clip" if bool(np.all((sums > 0) & ~zero)) else "offset"


def montage(cells: NDArray[np.generic], mode: str) -> NDArray[np.float32]:
    """Lay out maps as a grid, each mapped on its own, 1 pixel of white between them.

    Parameters
    ----------
    cells : ndarray, shape (R, K, C, h, w)
        R rows of K cells, each a C-channel map (C = 1 gray, 3 or 4 colour).
    mode : str
        The display mode of :func:`to_display`, applied to each cell on its own.

    Returns
    -------
    ndarray, shape (C, R*(h+1) - 1, K*(w+1) - 1), float32 in [0, 1]
    """
    rows, cols, channels, h, w = cells.shape
    canvas = np.ones((channels, rows * (h + 1) - 1, cols * (w + 1) - 1), dtype=np.float32)
    for r in range(rows):
        for k in range(cols):
            canvas[:, r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = to_display(cells[r, k], mode)
    return canvas
