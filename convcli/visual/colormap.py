"""Values -> colours, honest about sign and scale.

A *signed* map (one with a negative value) is drawn with a diverging colour map whose
neutral white is exactly 0 and whose two halves are mirror images: ``+t`` is red where
``-t`` is blue with the same lightness, the red and blue channels swapped
(:func:`diverging`).  The scale is symmetric, ``±max|v|``, so equal magnitudes look
equally strong.  An *unsigned* map is gray, 0 black and white at ``max(1, max v)``: values
in [0, 1] (pictures) keep their own gray levels, larger ones are scaled down.

Neighbours: the grids and pictures that use these colours are :mod:`convcli.visual.montage`
and :mod:`convcli.visual.kernel_picture`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

__all__ = ["NAN_COLOUR", "POSITIVE_ANCHORS", "Scale", "colorize", "diverging", "scale_for"]

#: The positive half of the diverging map: (t, (r, g, b)) anchors, t in [0, 1] (ColorBrewer's RdBu reds).
#: The negative half is the same with red and blue swapped.
POSITIVE_ANCHORS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (255, 255, 255)),
    (0.25, (253, 219, 199)),
    (0.5, (244, 165, 130)),
    (0.75, (214, 96, 77)),
    (1.0, (178, 24, 43)),
)

#: The colour of NaN (and of an ImageMagick hole in a kernel): a mid gray-green no map value takes.
NAN_COLOUR: tuple[int, int, int] = (120, 140, 120)


@dataclass(frozen=True)
class Scale:
    """How one map is coloured.

    Attributes
    ----------
    signed : bool
        Diverging colours around 0 (else gray).
    top : float
        The value drawn at full colour: ``±top`` for signed maps, white at ``top`` for unsigned; > 0.
    """

    signed: bool
    top: float


def scale_for(lo: Optional[float], hi: Optional[float]) -> Scale:
    """The :class:`Scale` of a map whose finite values span [lo, hi] (None: no finite value).

    Signed when ``lo < 0``: ``top = max(|lo|, |hi|)``; else gray with ``top = max(1, hi)``.
    """
    if lo is None or hi is None:
        return Scale(False, 1.0)
    if lo < 0:
        top = max(abs(lo), abs(hi))
        return Scale(True, top if top > 0 else 1.0)
    return Scale(False, max(1.0, hi))


def diverging(t: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Colours of ``t`` in [-1, 1] (clipped): white at 0, red toward +1, blue toward -1.

    Parameters
    ----------
    t : ndarray, any shape
        NaN gets :data:`NAN_COLOUR`.

    Returns
    -------
    ndarray, shape t.shape + (3,), uint8
        ``diverging(-t)`` is ``diverging(t)`` with its red and blue channels swapped.
    """
    values = np.asarray(t, dtype=np.float64)
    a = np.clip(np.abs(np.nan_to_num(values)), 0.0, 1.0)
    xs = [p for p, _ in POSITIVE_ANCHORS]
    rgb = np.stack([np.interp(a, xs, [c[i] for _, c in POSITIVE_ANCHORS]) for i in range(3)], axis=-1)
    rgb = np.rint(rgb).astype(np.uint8)
    negative = values < 0
    rgb[negative] = rgb[negative][:, ::-1]  # the mirror half: red and blue swapped
    rgb[np.isnan(values)] = NAN_COLOUR
    return rgb


def colorize(values: NDArray[np.generic], scale: Scale) -> NDArray[np.uint8]:
    """A map's colours: (H, W) values -> (H, W, 3) uint8 by ``scale``.

    Signed: :func:`diverging` of ``v / top``.  Unsigned: gray ``round(255 * v / top)``,
    clipped to [0, 255]; so with ``top = 1`` a picture's 8-bit levels come back exactly.
    +inf is full colour, -inf full negative (or black), NaN :data:`NAN_COLOUR`.
    """
    v = np.asarray(values, dtype=np.float64)
    if scale.signed:
        return diverging(np.clip(v / scale.top, -1.0, 1.0))
    gray = np.rint(np.clip(np.nan_to_num(v, nan=0.0, posinf=scale.top, neginf=0.0) / scale.top, 0.0, 1.0) * 255)
    out = np.repeat(gray.astype(np.uint8)[..., None], 3, axis=-1)
    out[np.isnan(v)] = NAN_COLOUR
    return out
