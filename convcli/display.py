"""Float feature maps → displayable pixel values in [0, 1].

A convolution's output is not an image: an edge filter gives values around 0, both signs;
a blur keeps [0, 1]; a layer gives anything.  :func:`to_display` maps values to [0, 1] in
one of four ways before :func:`convcli.images.encode_png` rounds them to integers:

========  ==============================================================================
clip      ``v`` clipped to [0, 1]: for filters that keep the image's range (blur, sharpen)
abs       ``|v|`` clipped to [0, 1]: edge strength, either sign
minmax    per map ``(v - min) / (max - min)``: stretch each map to the full range
offset    ``0.5 + v`` clipped to [0, 1]: signed responses, 0 is mid-gray
========  ==============================================================================

NaN shows as 0 in every mode; +inf as 1 and -inf as 0 (in ``abs``, both infinities as 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .errors import ParameterError, ShapeError

DISPLAY_MODES: tuple[str, ...] = ("clip", "abs", "minmax", "offset")

#: A map whose range is at most this many float eps of its magnitude counts as constant in ``minmax``.
CONSTANT_EPS = 64


def _minmax(maps: NDArray[np.floating]) -> NDArray[np.floating]:
    """Stretch each map (C, H, W) to [0, 1] over its finite values; constant maps are clipped instead."""
    out = np.empty_like(maps)
    eps = float(np.finfo(maps.dtype).eps)
    for c, plane in enumerate(maps):
        finite = plane[np.isfinite(plane)]
        if finite.size == 0:
            out[c] = np.clip(plane, 0.0, 1.0)
            continue
        lo, hi = float(finite.min()), float(finite.max())  # Python floats: no float32 overflow below
        if hi - lo <= CONSTANT_EPS * eps * max(abs(lo), abs(hi)):
            out[c] = np.clip(plane, 0.0, 1.0)
        else:
            out[c] = np.clip((plane.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0)
    return out


def to_display(maps: NDArray[np.generic], mode: str) -> NDArray[np.float32]:
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
    if mode not in DISPLAY_MODES:
        raise ParameterError(f"display mode must be one of {', '.join(DISPLAY_MODES)}, got {mode!r}")
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
        shown = _minmax(values)
    np.fmax(shown, 0.0, out=shown)  # NaN -> 0, in place (shown is a new array)
    return shown.astype(np.float32, copy=False)


def default_display(kernel_sums: Sequence[float]) -> str:
    """The display mode that suits a filter bank.

    Parameters
    ----------
    kernel_sums : sequence of float
        Sum of each kernel's taps.

    Returns
    -------
    str
        "clip" when every sum is positive (> 1e-12: smoothing-like filters keep the
        image's range), else "offset" (zero-sum or negative filters such as edge
        detectors give signed responses around 0).  An empty sequence gives "clip".
    """
    return "clip" if all(float(s) > 1e-12 for s in kernel_sums) else "offset"
