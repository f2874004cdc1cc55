"""A picture as a few lines of terminal text: half-block characters, two pixels per character.

Each character ``▀`` shows two pixels of a column: the upper one in its foreground colour,
the lower one in its background colour, so a ``W``×``H`` thumbnail takes ``W`` columns and
``ceil(H / 2)`` lines.  :func:`thumbnail` shrinks a picture to fit, :func:`half_blocks`
turns it into a :class:`rich.text.Text` (true colour; rich reduces it for the terminal).

Neighbours: ``apply --preview`` prints it on standard error (:mod:`convcli.cli.apply`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from rich.style import Style
from rich.text import Text

__all__ = ["HALF_BLOCK", "PREVIEW_WIDTH", "half_blocks", "thumbnail"]

#: The upper half block: foreground the upper pixel, background the lower one.
HALF_BLOCK = "▀"
#: The widest preview, in characters (= pixels).
PREVIEW_WIDTH = 64


def thumbnail(pixels: NDArray[np.unsignedinteger], width: int = PREVIEW_WIDTH) -> NDArray[np.uint8]:
    """A picture's thumbnail, RGB, at most ``width`` pixels wide and ``width`` high (aspect kept).

    Parameters
    ----------
    pixels : ndarray, shape (H, W, C), uint8 or uint16
        C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); alpha is left out.

    Returns
    -------
    ndarray, shape (h, w, 3), uint8
        Box-filtered; a picture that already fits is kept pixel for pixel.
    """
    array = np.asarray(pixels)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    colour = array[:, :, :3] if array.shape[2] >= 3 else np.repeat(array[:, :, :1], 3, axis=2)
    h, w = colour.shape[:2]
    ratio = min(1.0, width / w, width / h)
    if ratio >= 1.0:
        return np.ascontiguousarray(colour, dtype=np.uint8)
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(colour, dtype=np.uint8), "RGB")
                      .resize(size, Image.Resampling.BOX))


def half_blocks(picture: NDArray[np.uint8]) -> Text:
    """``picture`` (h, w, 3) as ``ceil(h / 2)`` lines of ``w`` half blocks (an odd last row: black below)."""
    h, w = picture.shape[:2]
    text = Text()
    for y in range(0, h, 2):
        for x in range(w):
            top = tuple(int(v) for v in picture[y, x])
            bottom = tuple(int(v) for v in picture[y + 1, x]) if y + 1 < h else (0, 0, 0)
            text.append(HALF_BLOCK, Style(color=f"rgb({top[0]},{top[1]},{top[2]})",
                                          bgcolor=f"rgb({bottom[0]},{bottom[1]},{bottom[2]})"))
        if y + 2 < h:
            text.append("\n")
    return text
