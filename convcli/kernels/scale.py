"""``--scale``: ImageMagick's ``-define convolve:scale``, its arithmetic, and its chain rule.

The syntax is ImageMagick's geometry ``FACTOR[!|^][,BLEND][%]``
(:func:`~convcli.kernels.imagemagick.parse_geometry`), applied to each 2-D kernel as given:

``FACTOR``
    Multiply every tap (default 1).
``!``
    Normalise first: divide by ``|sum|``; a zero-sum kernel (``|sum| < 1e-12``) by the sum
    of its positive taps instead, so an edge kernel's output stays within ±1.  (Unlike
    ``--normalize``, a negative sum keeps its signs.)
``^``
    Normalise the positive taps to sum 1 and the negative taps to sum -1 (either side
    left alone when it is empty): a zero-sum kernel for correlation searches.
``,BLEND``
    Then add BLEND to the origin tap: a blend of the filter with the image itself
    (``-define convolve:scale='!,100%'`` turns a blur into a sharpen).
``%``
    FACTOR and BLEND are percentages.

A zero tap counts as positive, as in ImageMagick.  :func:`scale_kernel` is the forward
mapping; :func:`scale_gradient` takes a gradient for the scaled kernel back to the kernel
as given, holding the branch the forward took (which side each tap is on, whether the
kernel was zero-sum): that is the derivative wherever it exists.  :func:`smooth_taps`
says where it does.

Neighbours: the geometry parser is :mod:`convcli.kernels.imagemagick`; the bank applies the
scale (:mod:`convcli.kernels.bank`), the gradient takes it back (:mod:`convcli.kernels.gradient`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import ParameterError, quote
from .imagemagick import MAGICK_EPSILON, parse_geometry

__all__ = ["KernelScale", "parse_scale", "scale_gradient", "scale_kernel", "smooth_taps"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class KernelScale:
    """A parsed ``--scale``.

    Attributes
    ----------
    factor : float
        What every (normalised) tap is multiplied by.
    normalize : {None, "!", "^"}
        ``!``: by ``|sum|`` (zero-sum: the positive sum); ``^``: each sign to sum ±1.
    blend : float or None
        Added to the origin tap after scaling; None when not given.
    text : str
        As the user wrote it.
    """

    factor: float = 1.0
    normalize: Optional[str] = None
    blend: Optional[float] = None
    text: str = ""


def parse_scale(text: str, name: str = "--scale") -> KernelScale:
    """Read ImageMagick's ``convolve:scale`` syntax, e.g. ``"!"``, ``"0.5"``, ``"50%!"``, ``"!,100%"``, ``"^"``.

    Raises
    ------
    ParameterError
        Not a geometry, or a value that is not finite.

    Examples
    --------
    >>> parse_scale("!,100%")
    KernelScale(factor=1.0, normalize='!', blend=1.0, text='!,100%')
    >>> parse_scale("50%").factor, parse_scale("50%").blend
    (0.5, None)
    """
    usage = "FACTOR[!|^][,BLEND][%], ImageMagick's -define convolve:scale (e.g. '!', '0.5', '!,100%', '^')"
    geometry = parse_geometry(text) if text.strip() else None
    if geometry is None:
        raise ParameterError(f"{name} must be {usage}; got {quote(text)}")
    rho, sigma = geometry.rho, geometry.sigma
    if geometry.has("%"):
        rho, sigma = rho * 0.01, sigma * 0.01
    factor = rho if geometry.has("rho") else 1.0
    blend = sigma if geometry.has("sigma") else None
    if not math.isfinite(factor) or (blend is not None and not math.isfinite(blend)):
        raise ParameterError(f"{name} values must be finite numbers, got {quote(text)}")
    normalize = "^" if geometry.has("^") else ("!" if geometry.has("!") else None)
    return KernelScale(factor, normalize, blend, text.strip())


def _sides(values: FloatArray) -> tuple[float, float]:
    """(sum of the taps >= 0, sum of the taps < 0): ImageMagick's positive and negative ranges."""
    return float(values[values >= 0].sum()), float(values[values < 0].sum())


def _multipliers(values: FloatArray, scale: KernelScale) -> tuple[float, float]:
    """What taps >= 0 and taps < 0 are multiplied by (ImageMagick's ``ScaleKernelInfo``)."""
    positive, negative = _sides(values)
    if scale.normalize == "^":
        pos = positive if abs(positive) >= MAGICK_EPSILON else 1.0
        neg = -negative if abs(negative) >= MAGICK_EPSILON else 1.0
        return scale.factor / pos, scale.factor / neg
    if scale.normalize == "!":
        total = positive + negative
        divisor = abs(total) if abs(total) >= MAGICK_EPSILON else positive
        return scale.factor / divisor, scale.factor / divisor
    return scale.factor, scale.factor


def scale_kernel(values: FloatArray, origin: tuple[int, int], scale: KernelScale) -> FloatArray:
    """The kernel ``values`` (FH, FW) scaled as ``scale`` says, BLEND added at ``origin`` (row, column).

    Returns
    -------
    ndarray, shape (FH, FW), float64

    Raises
    ------
    ParameterError
        ``!`` or ``^`` asked of a kernel whose taps are all 0.
    """
    if scale.normalize is not None and not np.any(values):
        raise ParameterError(f"--scale {quote(scale.text)} cannot normalise a kernel whose taps are all 0")
    pos, neg = _multipliers(values, scale)
    out = np.where(values >= 0, values * pos, values * neg)
    if scale.blend is not None:
        out[origin] += scale.blend
    return out


def scale_gradient(values: FloatArray, scale: KernelScale, grad: NDArray[np.floating]) -> FloatArray:
    """The chain rule through :func:`scale_kernel`: dL/dk from ``grad`` = dL/dk' for the scaled kernel k'.

    With ``p`` the taps' multiplier (one per sign), ``k' = p * k`` elementwise; the
    normalisations make ``p`` a function of the sums:

    * plain: ``dL/dk = FACTOR * g``;
    * ``!``, ``s = |sum k|``: ``dL/dk = (FACTOR/s) * (g - sign(sum k) * <g, k> / s)``;
      zero-sum, ``s = P`` (sum of the taps >= 0): the correction only on those taps;
    * ``^``: each side separately, ``P`` for the taps >= 0 and ``N = -sum(k < 0)`` for the
      others: ``dL/dk_j = (FACTOR/P) * (g_j - <g, k>_+ / P)`` on the positive side and
      ``(FACTOR/N) * (g_j + <g, k>_- / N)`` on the negative side (an empty side, whose
      divisor is 1, gets no correction).

    BLEND adds a constant: no term.

    Parameters
    ----------
    values : ndarray, shape (FH, FW)
        The kernel as given.
    grad : ndarray, shape (FH, FW)
        dL/dk' for the scaled kernel.

    Returns
    -------
    ndarray, shape (FH, FW), float64
    """
    k = np.asarray(values, dtype=np.float64)
    g = np.asarray(grad, dtype=np.float64)
    f = scale.factor
    positive_side = k >= 0
    if scale.normalize is None:
        return f * g
    positive, negative = _sides(k)
    if scale.normalize == "!":
        total = positive + negative
        if abs(total) >= MAGICK_EPSILON:
            s = abs(total)
            return (f / s) * (g - math.copysign(1.0, total) * float(np.sum(g * k)) / s)
        # zero-sum: s = P, the sum of the taps >= 0 (a tap exactly 0 counts, adding nothing)
        return (f / positive) * (g - np.where(positive_side, float(np.sum(g * k)) / positive, 0.0))
    out = np.empty_like(g)
    if abs(positive) >= MAGICK_EPSILON:
        inner = float(np.sum((g * k)[positive_side]))
        out[positive_side] = (f / positive) * (g[positive_side] - inner / positive)
    else:
        out[positive_side] = f * g[positive_side]
    if abs(negative) >= MAGICK_EPSILON:
        n = -negative
        inner = float(np.sum((g * k)[~positive_side]))
        out[~positive_side] = (f / n) * (g[~positive_side] + inner / n)
    else:
        out[~positive_side] = f * g[~positive_side]
    return out


def smooth_taps(values: FloatArray, scale: KernelScale) -> NDArray[np.bool_]:
    """Where L is differentiable in a tap through the scale: ndarray of bool, shape (FH, FW).

    ``!`` on a zero-sum kernel: nowhere (moving any tap leaves the zero-sum branch and the
    kernel is divided by its tiny sum).  ``^``: not at taps exactly 0 (moving one makes it
    positive or negative, two different multipliers).  Otherwise everywhere.
    """
    k = np.asarray(values, dtype=np.float64)
    if scale.normalize == "!":
        positive, negative = _sides(k)
        return np.full(k.shape, abs(positive + negative) >= MAGICK_EPSILON)
    if scale.normalize == "^":
        return k != 0
    return np.ones(k.shape, dtype=bool)
