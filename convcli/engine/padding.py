"""Padding: reading a window of the padded input, and the adjoint that adds a window back.

Nothing here builds a padded copy of the input.  A tile reads just the window of the
padded image it needs, straight from ``x`` (:func:`read_window`); coordinates outside
the image take their value from the padding mode:

=========  ==========================================  ====================================
zeros      0                                           PyTorch's default, the book's
constant   one value (``constant:VALUE``)              scipy's ``cval``
replicate  the edge pixel: ``aaa|abcd|ddd``            ImageMagick's edge, OpenCV REPLICATE
reflect    mirror, edge not repeated: ``dcb|abcd|cba``  PyTorch's reflect, OpenCV REFLECT_101
symmetric  mirror, edge repeated: ``cba|abcd|dcb``      scipy's reflect, ImageMagick's mirror
circular   wrap around: ``bcd|abcd|abc``                PyTorch's circular, scipy's wrap
=========  ==========================================  ====================================

The mirror and wrap modes extend periodically, so any padding works, however much
larger than the image (a 301×301 kernel on a 192-row photo); :func:`source_index` is
the whole rule.  :func:`add_window` is the exact adjoint of :func:`read_window`:
gradients that reach padding flow back to the pixels the padding copied (nothing for
zeros and constant).

Windows are read on a lattice, ``row0 + u * row_step`` by ``col0 + v * col_step``, so a
strided convolution reads each of its phase images in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .geometry import ceil_div

__all__ = ["Lattice", "Window", "add_window", "read_window", "source_index", "window"]

#: Modes whose padding is a copy of some pixel (the others hold a constant).
COPYING_MODES = ("replicate", "reflect", "symmetric", "circular")


def source_index(coords: NDArray[np.intp], size: int, mode: str) -> NDArray[np.intp]:
    """The pixel each coordinate of the padded axis reads, or -1 where the padding is a constant.

    Parameters
    ----------
    coords : ndarray of int
        Coordinates along one axis of the unpadded image (negative, or ``>= size``, in
        the padding).
    size : int
        Length of that axis, >= 1.
    mode : {"zeros", "constant", "replicate", "reflect", "symmetric", "circular"}

    Returns
    -------
    ndarray of int, shape of ``coords``
        In ``[0, size)``, or -1 (zeros and constant outside the image).

    Examples
    --------
    >>> source_index(np.arange(-3, 7), 4, "reflect")
    array([3, 2, 1, 0, 1, 2, 3, 2, 1, 0])
    >>> source_index(np.arange(-3, 7), 4, "symmetric")
    array([2, 1, 0, 0, 1, 2, 3, 3, 2, 1])
    """
    c = np.asarray(coords, dtype=np.intp)
    if mode in ("zeros", "constant"):
        return np.where((c >= 0) & (c < size), c, -1)
    if mode == "replicate":
        return np.clip(c, 0, size - 1)
    if mode == "circular":
        return c % size
    if mode == "symmetric":  # period 2n: abcd dcba
        m = c % (2 * size)
        return np.where(m < size, m, 2 * size - 1 - m)
    if mode == "reflect":  # period 2n - 2: abcd cb
        if size == 1:
            return np.zeros_like(c)
        m = c % (2 * size - 2)
        return np.where(m < size, m, 2 * size - 2 - m)
    raise ValueError(f"unknown padding mode {mode!r}")


@dataclass(frozen=True)
class Lattice:
    """Coordinates ``start + k * step`` for ``k`` in ``[0, count)`` along one image axis of length ``size``."""

    start: int
    step: int
    count: int
    size: int

    @property
    def inner(self) -> tuple[int, int]:
        """(lo, hi): the run of k whose coordinate is inside the image (lo == hi when none is)."""
        lo = min(max(0, ceil_div(-self.start, self.step)), self.count)
        hi = max(min(self.count, ceil_div(self.size - self.start, self.step)), lo)
        return lo, hi

    def source_slice(self) -> slice:
        """The image coordinates of the inner run, as a slice."""
        lo, hi = self.inner
        first = self.start + lo * self.step
        return slice(first, first + (hi - lo - 1) * self.step + 1, self.step) if hi > lo else slice(0, 0)

    def outer(self) -> NDArray[np.intp]:
        """The k outside the image, in increasing order."""
        lo, hi = self.inner
        return np.concatenate([np.arange(lo), np.arange(hi, self.count)]).astype(np.intp)

    def sources(self, ks: NDArray[np.intp], mode: str) -> NDArray[np.intp]:
        """The pixel each of the given k reads (:func:`source_index`)."""
        return source_index(self.start + ks * self.step, self.size, mode)


@dataclass(frozen=True, eq=False)
class Window:
    """How to read (and add back) one lattice window: slices for the inside, index arrays for the padding.

    Made once per lattice pair and mode by :func:`window` (cached: a layer's items reuse
    a handful), so an item's read costs a few numpy calls.
    """

    mode: str
    inner_dst: tuple[slice, slice]
    inner_src: tuple[slice, slice]
    whole: bool  # the window lies inside the image: no padding to fill
    fills: tuple[tuple[slice, slice], ...]  # constant modes: the padding's blocks of out
    rows_out: NDArray[np.intp]  # copying modes: out rows in the padding ...
    rows_src: NDArray[np.intp]  # ... the image rows they copy, by out column:
    cols_all: NDArray[np.intp]  # every out column's image column
    cols_out: NDArray[np.intp]  # out columns in the padding (for the inner rows)
    rows_inner: NDArray[np.intp]  # image rows of the inner rows


@lru_cache(maxsize=4096)
def window(rows: Lattice, cols: Lattice, mode: str) -> Window:
    """The :class:`Window` of ``rows`` × ``cols`` under ``mode`` (cached)."""
    (r_lo, r_hi), (c_lo, c_hi) = rows.inner, cols.inner
    inner_dst = (slice(r_lo, r_hi), slice(c_lo, c_hi))
    inner_src = (rows.source_slice(), cols.source_slice())
    whole = r_lo == 0 and r_hi == rows.count and c_lo == 0 and c_hi == cols.count
    empty = np.zeros(0, dtype=np.intp)
    if whole or mode not in COPYING_MODES:
        blocks: list[tuple[slice, slice]] = [] if whole else [
            (slice(0, r_lo), slice(None)), (slice(r_hi, None), slice(None)),
            (slice(r_lo, r_hi), slice(0, c_lo)), (slice(r_lo, r_hi), slice(c_hi, None)),
        ]
        fills = tuple(f for f in blocks if _nonempty(f, rows.count, cols.count))
        return Window(mode, inner_dst, inner_src, whole, fills, empty, empty, empty, empty, empty)
    rows_out = rows.outer()
    cols_out = cols.outer() if r_hi > r_lo else empty
    inner = rows.source_slice()
    return Window(
        mode, inner_dst, inner_src, whole, (), rows_out, rows.sources(rows_out, mode), _all_sources(cols, mode),
        cols_out, np.arange(inner.start, inner.stop, inner.step, dtype=np.intp),
    )


@lru_cache(maxsize=64)
def _all_sources(lattice: Lattice, mode: str) -> NDArray[np.intp]:
    """The pixel every k of ``lattice`` reads, shared by the windows of one row of tiles.

    One array per column lattice (a band of rows of a 32768-pixel-wide image has a few),
    not one per cached :class:`Window`: their many row lattices would otherwise each keep
    a copy as long as the image is wide.
    """
    index = lattice.sources(np.arange(lattice.count, dtype=np.intp), mode)
    index.flags.writeable = False
    return index


def _nonempty(block: tuple[slice, slice], nrows: int, ncols: int) -> bool:
    return all(len(range(*s.indices(n))) > 0 for s, n in zip(block, (nrows, ncols)))


def read_window(src: NDArray[np.generic], out: NDArray[np.floating], win: Window, value: float = 0.0) -> None:
    """Fill ``out`` with a window of the padded image: ``out[..., u, v] = padded(src)[rows(u), cols(v)]``.

    Parameters
    ----------
    src : ndarray, shape (..., H, W)
        The image (any real dtype; a view is fine).  Read only where the window needs it.
    out : ndarray, shape (..., rows.count, cols.count)
        Written in place, converted to its dtype (so an 8-bit image is converted here,
        a tile at a time).
    win : Window
        From :func:`window` for the lattices of rows and columns and the padding mode.
    value : float
        The constant of the "constant" mode (ignored by the others).
    """
    if win.inner_dst[0].stop > win.inner_dst[0].start and win.inner_dst[1].stop > win.inner_dst[1].start:
        out[..., win.inner_dst[0], win.inner_dst[1]] = src[..., win.inner_src[0], win.inner_src[1]]
    if win.whole:
        return
    fill = value if win.mode == "constant" else 0.0
    for r, c in win.fills:
        out[..., r, c] = fill
    if win.rows_out.size:
        out[..., win.rows_out, :] = src[..., win.rows_src[:, None], win.cols_all[None, :]]
    if win.cols_out.size:
        out[..., win.inner_dst[0], win.cols_out] = src[..., win.inner_src[0], :][..., win.cols_all[win.cols_out]]


def add_window(dst: NDArray[np.floating], grad: NDArray[np.floating], win: Window) -> None:
    """Adjoint of :func:`read_window`: add ``grad`` back into the image it was read from.

    Where ``read_window`` copied a pixel into the padding, that pixel receives the
    padding's gradient too (in a fixed order, so sums are reproducible); constant
    padding receives nothing.

    Parameters
    ----------
    dst : ndarray, shape (..., H, W)
        Accumulated in place (a writable view is fine).
    grad : ndarray, shape (..., rows.count, cols.count)
        The gradient with respect to the window.
    win : Window
        As given to :func:`read_window`.
    """
    if win.inner_dst[0].stop > win.inner_dst[0].start and win.inner_dst[1].stop > win.inner_dst[1].start:
        inner = dst[..., win.inner_src[0], win.inner_src[1]]
        np.add(inner, grad[..., win.inner_dst[0], win.inner_dst[1]], out=inner)
    lead: tuple[Any, ...] = (slice(None),) * (dst.ndim - 2)
    if win.cols_out.size:
        index = (*lead, win.rows_inner[:, None], win.cols_all[win.cols_out][None, :])
        np.add.at(dst, index, grad[..., win.inner_dst[0], :][..., win.cols_out])
    if win.rows_out.size:
        index = (*lead, win.rows_src[:, None], win.cols_all[None, :])
        np.add.at(dst, index, grad[..., win.rows_out, :])
