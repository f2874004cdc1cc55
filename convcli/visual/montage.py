"""A labelled grid of feature maps: every map of every image in one picture, honest about sign and scale.

Each :class:`Tile` is one map with its label (image, channel, kernel or filter) and its
value range.  :func:`montage` draws them in rows (one row per :attr:`Tile.row`, wrapped
after :data:`MAX_COLUMNS` cells), each map coloured by its own scale
(:func:`convcli.visual.colormap.scale_for`: diverging red/blue around a white 0 when it
has negative values, gray otherwise), enlarged with nearest-neighbour (whole pixels, so
a 3×3 kernel's taps are 3×3 squares) to at least :data:`MIN_SIDE` pixels, or shrunk to at
most :data:`MAX_SIDE`; under each map its legend: the real range ``[min, max]`` and what
full colour means (``±top`` or ``0..top``).

Neighbours: the colours are :mod:`convcli.visual.colormap`; ``apply --montage`` and
``grad --montage`` build the tiles (:mod:`convcli.commands.apply`,
:mod:`convcli.commands.grad`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from .colormap import Scale, colorize, scale_for

__all__ = [
    "BACKGROUND", "MAX_COLUMNS", "MAX_SIDE", "MIN_SIDE", "Placed", "Tile", "enlarge", "format_value", "legend",
    "MAX_TILES", "montage", "shrink", "tile_pixels",
]

#: The most maps one montage draws.
MAX_TILES = 1024

#: A map's longest side is enlarged (by a whole factor) to at least this many pixels...
MIN_SIDE = 96
#: ... and shrunk to at most this many.
MAX_SIDE = 256
#: Cells on one line of the grid before it wraps.
MAX_COLUMNS = 12
#: The grid's background and text colours.
BACKGROUND = (40, 40, 40)
TEXT = (235, 235, 235)
FRAME = (128, 128, 128)
#: Pixels around each cell.
GAP = 8


@dataclass
class Tile:
    """One map of the montage.

    Attributes
    ----------
    values : ndarray, shape (H, W)
        The map's values (floats, as computed).
    label : str
        What the map is: ``"photo · r · sobel-x"``.
    row : int
        Tiles with the same row share a line of the grid (in order of first appearance).
    range : (float, float) or None
        The map's real (min, max) of finite values, shown in the legend (None: computed here).
    scale_range : (float, float) or None
        The range its colours are scaled by (apply: the valid interior, so the padding's
        artefacts do not set it); default :attr:`range`.
    """

    values: NDArray[np.generic]
    label: str
    row: int = 0
    range: Optional[tuple[float, float]] = None
    scale_range: Optional[tuple[float, float]] = None


@dataclass
class Placed:
    """Where :func:`montage` drew one tile: its map's box ``(left, top, right, bottom)``, the factor the map
    was enlarged by (< 1: shrunk), its scale and the legend's two lines."""

    box: tuple[int, int, int, int]
    factor: float
    scale: Scale
    legend: tuple[str, str]


def format_value(value: float) -> str:
    """A legend number: 4 significant digits (``-0.7622``, ``1.5e+04``), ``0`` for zero."""
    return "0" if value == 0 else f"{value:.4g}"


def legend(found: Optional[tuple[float, float]], scale: Scale) -> tuple[str, str]:
    """The two legend lines of a map: ``"[min, max]"`` and ``"colour ±top"`` or ``"gray 0..top"``."""
    first = "no finite value" if found is None else f"[{format_value(found[0])}, {format_value(found[1])}]"
    second = f"colour ±{format_value(scale.top)}" if scale.signed else f"gray 0..{format_value(scale.top)}"
    return first, second


def enlarge(picture: NDArray[np.uint8], factor: int) -> NDArray[np.uint8]:
    """``picture`` (H, W, 3) with each pixel a ``factor``×``factor`` square (nearest-neighbour)."""
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)


def _finite_range(values: NDArray[np.generic]) -> Optional[tuple[float, float]]:
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def tile_pixels(tile: Tile) -> tuple[NDArray[np.uint8], float, Scale, Optional[tuple[float, float]]]:
    """A tile's picture (h, w, 3), the factor it was resized by, its scale and its real range.

    Maps whose longest side is under :data:`MIN_SIDE` are enlarged by the whole factor
    ``ceil(MIN_SIDE / side)``; over :data:`MAX_SIDE` shrunk (a box filter) to fit.
    """
    values = np.asarray(tile.values)
    found = tile.range if tile.range is not None else _finite_range(values)
    scaling = tile.scale_range if tile.scale_range is not None else found
    scale = scale_for(*(scaling if scaling is not None else (None, None)))
    picture = colorize(values, scale)
    side = max(picture.shape[:2])
    if side < MIN_SIDE:
        factor = math.ceil(MIN_SIDE / side)
        return enlarge(picture, factor), float(factor), scale, found
    if side > MAX_SIDE:
        ratio = MAX_SIDE / side
        size = (max(1, round(picture.shape[1] * ratio)), max(1, round(picture.shape[0] * ratio)))
        shrunk = Image.fromarray(picture, "RGB").resize(size, Image.Resampling.BOX)
        return np.asarray(shrunk), ratio, scale, found
    return picture, 1.0, scale, found


def montage(tiles: Sequence[Tile], title: Optional[str] = None) -> tuple[NDArray[np.uint8], list[Placed]]:
    """Draw ``tiles`` as a labelled grid.

    Parameters
    ----------
    tiles : sequence of Tile
    title : str, optional
        A line above the grid.

    Returns
    -------
    picture : ndarray, shape (H, W, 3), uint8
    placed : list of Placed
        One per tile, in order: where its map is and what its legend says.

    Notes
    -----
    Cost: the tiles' pictures, at most :data:`MAX_SIDE` squared each.
    """
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
        return int(right - left), int(bottom)

    line = text_size("Ag[0]")[1] + 2
    drawn = [tile_pixels(t) for t in tiles]
    legends = [legend(found, scale) for _, _, scale, found in drawn]
    cell_w = max([p.shape[1] for p, *_ in drawn] + [text_size(t.label)[0] for t in tiles]
                 + [text_size(s)[0] for pair in legends for s in pair] + [1]) + 2
    # rows of the grid: each tile's row in order of first appearance, wrapped after MAX_COLUMNS cells
    order: dict[int, list[int]] = {}
    for index, t in enumerate(tiles):
        order.setdefault(t.row, []).append(index)
    lines = [members[i:i + MAX_COLUMNS] for members in order.values() for i in range(0, len(members), MAX_COLUMNS)]
    heights = [max(drawn[i][0].shape[0] for i in members) + 2 for members in lines]
    columns = max((len(members) for members in lines), default=1)
    head = line + GAP if title else 0
    width = GAP + columns * (cell_w + GAP)
    height = GAP + head + sum(h + 3 * line + GAP for h in heights)
    width = max(width, text_size(title)[0] + 2 * GAP if title else 0)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((GAP, GAP), title, fill=TEXT, font=font)
    placed: list[Optional[Placed]] = [None] * len(tiles)
    y = GAP + head
    for members, h in zip(lines, heights):
        for column, index in enumerate(members):
            picture, factor, scale, _ = drawn[index]
            x = GAP + column * (cell_w + GAP)
            draw.text((x, y), tiles[index].label, fill=TEXT, font=font)
            top = y + line
            draw.rectangle((x, top, x + picture.shape[1] + 1, top + picture.shape[0] + 1), outline=FRAME)
            canvas.paste(Image.fromarray(picture, "RGB"), (x + 1, top + 1))
            below = top + h + 1
            draw.text((x, below), legends[index][0], fill=TEXT, font=font)
            draw.text((x, below + line), legends[index][1], fill=TEXT, font=font)
            box = (x + 1, top + 1, x + 1 + picture.shape[1], top + 1 + picture.shape[0])
            placed[index] = Placed(box, factor, scale, legends[index])
        y += h + 3 * line + GAP
    return np.asarray(canvas), [p for p in placed if p is not None]


def shrink(values: NDArray[np.generic]) -> NDArray[np.float64]:
    """A map (H, W) reduced for a tile: the mean of each ``f``×``f`` block, ``f = ceil(max(H, W) / MAX_SIDE)``.

    Maps that fit :data:`MAX_SIDE` come back as they are (in float64); NaN blocks stay NaN.
    The reduced map is what a montage keeps of a large result, so it holds no float copy
    of it; the range for the legend is taken from the full map first.
    """
    v = np.asarray(values, dtype=np.float64)
    f = math.ceil(max(v.shape) / MAX_SIDE)
    if f <= 1:
        return v
    h, w = (v.shape[0] // f) * f or v.shape[0], (v.shape[1] // f) * f or v.shape[1]
    v = v[:h, :w]
    fh, fw = min(f, h), min(f, w)
    return v[: h - h % fh, : w - w % fw].reshape(h // fh, fh, w // fw, fw).mean(axis=(1, 3))
