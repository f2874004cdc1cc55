"""A kernel as a picture: one square cell per tap, coloured by value, its number printed when it fits.

The colours are the montage's diverging map (:func:`convcli.visual.colormap.diverging`),
scaled by the kernel's own ``max|w|``: white is exactly 0, red positive, blue negative, so
a blur is white-to-red and an edge kernel shows its two signs.  Cells are
``clamp(384 // max(FH, FW), 2, 48)`` pixels, a 3×3 kernel 48 pixels a tap, with 1 pixel
of gray between them; a number is printed in every cell when all of them fit (small
kernels), in black on light cells and white on dark ones.  An ImageMagick hole (no tap)
is the NaN colour with ``-``.  Several kernels (a rotation set, a layer's [f, c] slices)
sit side by side, each with its heading and its range.

Neighbours: ``convcli kernels SPEC --png`` (:mod:`convcli.commands.kernels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from .colormap import NAN_COLOUR, diverging
from .montage import BACKGROUND, FRAME, GAP, TEXT, format_value

__all__ = ["KernelCells", "cell_size", "kernel_grid", "kernel_picture", "tap_text"]

#: Kernels on one line of the picture before it wraps.
PER_LINE = 8


@dataclass
class KernelCells:
    """One kernel to draw: its taps (FH, FW), where it has none (holes), and its heading."""

    weights: NDArray[np.floating]
    heading: str
    holes: Optional[NDArray[np.bool_]] = None


def cell_size(shape: Sequence[int]) -> int:
    """Pixels a side of one tap's cell: ``clamp(384 // max(FH, FW), 2, 48)``."""
    return int(min(48, max(2, 384 // max(shape))))


def tap_text(value: float) -> str:
    """A tap's number as printed in its cell: 3 significant digits, no leading zero (``.125``, ``-2``, ``1e+03``)."""
    text = "0" if value == 0 else f"{value:.3g}"
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def kernel_grid(kernel: KernelCells, font: Optional[ImageFont.ImageFont | ImageFont.FreeTypeFont] = None
                ) -> Image.Image:
    """The cells of one kernel, with 1 pixel of frame around and between them.

    Tap (y, x) fills the square whose top-left pixel is ``(1 + x*(cell+1), 1 + y*(cell+1))``,
    ``cell`` pixels a side (:func:`cell_size`).
    """
    font = ImageFont.load_default() if font is None else font
    w = np.asarray(kernel.weights, dtype=np.float64)
    fh, fw = w.shape
    holes = np.zeros(w.shape, bool) if kernel.holes is None else np.asarray(kernel.holes, bool)
    cell = cell_size(w.shape)
    taps = w[~holes & np.isfinite(w)]
    top = float(np.abs(taps).max()) if taps.size else 0.0
    colours = diverging(w / top if top > 0 else np.zeros_like(w))
    colours[holes] = NAN_COLOUR
    step = cell + 1
    image = Image.new("RGB", (fw * step + 1, fh * step + 1), FRAME)
    draw = ImageDraw.Draw(image)
    texts = [["-" if holes[y, x] else tap_text(float(w[y, x])) for x in range(fw)] for y in range(fh)]
    sizes = [[draw.textbbox((0, 0), t, font=font) for t in row] for row in texts]
    fits = all(b[2] - b[0] <= cell - 2 and b[3] <= cell - 2 for row in sizes for b in row)
    for y in range(fh):
        for x in range(fw):
            left, upper = 1 + x * step, 1 + y * step
            colour = tuple(int(c) for c in colours[y, x])
            draw.rectangle((left, upper, left + cell - 1, upper + cell - 1), fill=colour)
            if fits:
                box = sizes[y][x]
                light = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 140
                draw.text((left + (cell - (box[2] - box[0])) // 2 - box[0], upper + (cell - box[3]) // 2),
                          texts[y][x], fill=(0, 0, 0) if light else (255, 255, 255), font=font)
    return image


def kernel_picture(kernels: Sequence[KernelCells]) -> NDArray[np.uint8]:
    """Every kernel's cells, side by side (wrapping after :data:`PER_LINE`), each with heading and range.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
    """
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = int(probe.textbbox((0, 0), "Ag[0]", font=font)[3]) + 2
    drawn = [kernel_grid(k, font) for k in kernels]
    captions = []
    for k in kernels:
        w = np.asarray(k.weights, dtype=np.float64)
        taps = w[~np.asarray(k.holes, bool)] if k.holes is not None else w.ravel()
        taps = taps[np.isfinite(taps)]
        span = f"[{format_value(float(taps.min()))}, {format_value(float(taps.max()))}]" if taps.size else "no taps"
        top = float(np.abs(taps).max()) if taps.size else 0.0
        captions.append((k.heading, f"{span}, colour ±{format_value(top)}"))
    cell_w = max([im.width for im in drawn] + [int(probe.textbbox((0, 0), t, font=font)[2])
                                               for pair in captions for t in pair])
    lines = [list(range(i, min(i + PER_LINE, len(drawn)))) for i in range(0, len(drawn), PER_LINE)]
    heights = [max(drawn[i].height for i in members) for members in lines]
    columns = max((len(m) for m in lines), default=1)
    canvas = Image.new("RGB", (GAP + columns * (cell_w + GAP), GAP + sum(h + 2 * line + GAP + 2 for h in heights)),
                       BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    y = GAP
    for members, h in zip(lines, heights):
        for column, index in enumerate(members):
            x = GAP + column * (cell_w + GAP)
            draw.text((x, y), captions[index][0], fill=TEXT, font=font)
            canvas.paste(drawn[index], (x, y + line))
            draw.text((x, y + line + h + 2), captions[index][1], fill=TEXT, font=font)
        y += h + 2 * line + GAP + 2
    return np.asarray(canvas)
