"""The tiles of ``--montage``: which maps of a run go in the grid, labelled with what they are.

:class:`ApplyMontage` collects the maps of ``apply``'s batches as they are computed (one
:class:`~convcli.visual.montage.Tile` per image, channel and kernel, or per image and
filter for a layer kernel; each map reduced to tile size at once, so no float result is
kept); :func:`grad_tiles` gives the tiles of ``grad``'s dx, dW and dK.  :func:`check_montage`
checks a ``--montage`` name before any work; :func:`montage_png` draws and encodes.

Neighbours: the drawing is :mod:`convcli.visual.montage`; the commands
:mod:`convcli.commands.apply` and :mod:`convcli.commands.grad`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import OutputFileError, ParameterError, quote
from ..io.display import map_range
from ..io.formats import format_for_path
from ..io.images import encode_pixels
from ..visual.montage import MAX_TILES, Tile, montage, shrink
from .apply_outputs import MapName

__all__ = ["ApplyMontage", "check_montage", "grad_tiles", "montage_picture", "montage_png"]


def check_montage(path: Optional[str]) -> None:
    """Refuse a ``--montage`` name that is not a ``.png`` (or ``-``, standard output).

    Raises
    ------
    OutputFileError
    """
    if path is not None and path != "-" and format_for_path(path) != "png":
        raise OutputFileError(f"--montage {quote(path)}: a montage is a PNG; name it .png, or '-' for standard output")


def _count(tiles: int) -> None:
    if tiles > MAX_TILES:
        raise ParameterError(f"--montage draws at most {MAX_TILES} maps, but this run has {tiles}; "
                             "give fewer inputs or kernels, or write the maps as files")


class ApplyMontage:
    """The montage of an ``apply`` run, filled batch by batch (:meth:`add`)."""

    def __init__(self) -> None:
        self.tiles: list[Tile] = []
        self._rows = 0

    def add(self, result: NDArray[np.floating], names: Sequence[MapName], images: Sequence[str], layer: bool,
            region: tuple[slice, slice]) -> None:
        """Tiles for one batch's result.

        Parameters
        ----------
        result : ndarray, shape (N, FN, OH, OW)
        names : sequence of MapName
            What each of the FN maps is.
        images : sequence of str
            A label per image (N of them).
        layer : bool
            A layer kernel's maps: one row per image, labelled by filter; else one row per
            image and channel, a cell per kernel.
        region : (slice, slice)
            The valid interior the colours are scaled by (its range, when it has values).
        """
        _count(len(self.tiles) + result.shape[0] * result.shape[1])
        for k, image in enumerate(images):
            rows: dict[str, int] = {}
            for j, name in enumerate(names):
                key = "" if layer else name.channel
                if key not in rows:
                    rows[key] = self._rows
                    self._rows += 1
                plane = result[k, j]
                label = f"{image} · filter {name.channel} · {name.kernel}" if layer else \
                    f"{image} · {name.channel} · {name.kernel}"
                self.tiles.append(Tile(shrink(plane), label, rows[key], map_range(plane),
                                       map_range(plane, region)))


def grad_tiles(dx: NDArray[np.floating], dW: NDArray[np.floating], dK: Optional[NDArray[np.floating]],
               image: str, kernel_labels: Sequence[str]) -> list[Tile]:
    """The tiles of ``grad --montage``: dx per image and channel, dW per filter and channel, dK per kernel.

    Parameters
    ----------
    dx : ndarray, shape (N, C, H, W)
    dW : ndarray, shape (FN, C/groups, FH, FW)
    dK : ndarray, shape (FH, FW), (M, FH, FW) or (FN, C/groups, FH, FW), or None
    image : str
        The input's label.
    kernel_labels : sequence of str
        The kernels' labels (a dK of M 2-D kernels: one each).
    """
    tiles: list[Tile] = []
    row = 0
    for n in range(dx.shape[0]):
        who = image if dx.shape[0] == 1 else f"{image}[{n}]"
        tiles.extend(Tile(shrink(dx[n, c]), f"dx · {who} · channel {c}", row) for c in range(dx.shape[1]))
        row += 1
    for f in range(dW.shape[0]):
        tiles.extend(Tile(dW[f, c], f"dW · filter {f} · channel {c}", row) for c in range(dW.shape[1]))
        row += dW.shape[1] > 1  # one row per filter of a layer; a depthwise bank's filters (one channel) share one
    row += dW.shape[1] == 1
    if dK is not None:
        k = np.asarray(dK)
        if k.ndim == 2:
            tiles.append(Tile(k, f"dK · {kernel_labels[0] if kernel_labels else 'kernel'}", row))
        elif k.ndim == 3:
            labels = list(kernel_labels) if len(kernel_labels) == k.shape[0] else [str(m) for m in range(k.shape[0])]
            tiles.extend(Tile(k[m], f"dK · {labels[m]}", row) for m in range(k.shape[0]))
        else:
            for f in range(k.shape[0]):
                tiles.extend(Tile(k[f, c], f"dK · filter {f} · channel {c}", row) for c in range(k.shape[1]))
                row += 1
    _count(len(tiles))
    return tiles


def montage_picture(tiles: Sequence[Tile], title: Optional[str] = None) -> NDArray[np.uint8]:
    """The montage of ``tiles``, (H, W, 3) uint8 (:func:`convcli.visual.montage.montage`)."""
    picture, _ = montage(tiles, title)
    return picture


def montage_png(tiles: Sequence[Tile], title: Optional[str] = None) -> bytes:
    """The montage of ``tiles`` as PNG bytes."""
    return encode_pixels(montage_picture(tiles, title), "png", level=9)
