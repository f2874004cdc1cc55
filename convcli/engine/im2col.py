"""im2col and col2im: the convolution as one matrix product, and its adjoint, whole.

These keep the seed's call signature and row layout: one row per output pixel
(N*OH*OW rows), one column per kernel tap (C*FH*FW columns, channel-major).  They build
the whole matrix, which is what they are for: to look at, and to check the engine
against.  :class:`convcli.Convolution` never calls them; it builds the same columns an
item at a time (:meth:`convcli.engine.tiles.Workspace.columns`), so its memory stays
bounded.

Both are written as plainly as the book's: tap (i, j) of every output pixel is one
window of the padded input (:func:`convcli.engine.padding.read_window`), and col2im adds
each tap's window back (:func:`~convcli.engine.padding.add_window`, its exact adjoint).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..errors import ShapeError
from .dtypes import float_dtype
from .geometry import ConvGeometry, PadSpec, plan_geometry
from .padding import Lattice, Window, add_window, read_window, window

__all__ = ["col2im", "im2col"]


def _image_geometry(
    shape: tuple[int, ...], filter_h: int, filter_w: int, stride: object, pad: PadSpec,
    dilation: object, padding_mode: str,
) -> ConvGeometry:
    if len(shape) != 4:
        raise ShapeError(f"input_data must be 4-D (N, C, H, W), got shape {tuple(shape)}")
    return plan_geometry(
        tuple(shape), (1, shape[1], filter_h, filter_w), stride, pad, dilation, 1, padding_mode
    )


def _tap_window(geom: ConvGeometry, i: int, j: int) -> Window:
    """Where tap (i, j) of every output pixel reads: rows ``oh*sh + i*dh - top``, columns likewise."""
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    top, _, left, _ = geom.pads
    rows = Lattice(i * dh - top, sh, geom.out_h, geom.height)
    return window(rows, Lattice(j * dw - left, sw, geom.out_w, geom.width), geom.padding_mode)


def im2col(
    input_data: NDArray[np.generic], filter_h: int, filter_w: int, stride: object = 1,
    pad: PadSpec = 0, *, dilation: object = 1, padding_mode: str = "zeros",
) -> NDArray[np.floating]:
    """Unroll every receptive field of ``input_data`` into a row of a matrix.

    Parameters
    ----------
    input_data : ndarray, shape (N, C, H, W)
        Input images.  float64 is kept; other dtypes become float32.
    filter_h, filter_w : int
        Kernel size FH, FW.
    stride, dilation : int or (h, w)
        Step between receptive fields and between taps, each >= 1.
    pad : int, (h, w), (top, bottom, left, right), "same" or "valid"
        Padding added around each image.
    padding_mode : str
        What the padding holds: zeros, reflect, replicate, circular, symmetric,
        ``constant:VALUE``, or an alias (:func:`~convcli.engine.geometry.parse_padding_mode`).

    Returns
    -------
    col : ndarray, shape (N*OH*OW, C*FH*FW)
        Row ``(n*OH + oh)*OW + ow`` holds the receptive field of output pixel
        ``(oh, ow)`` of image ``n``; column ``(c*FH + i)*FW + j`` is tap ``(i, j)`` of
        channel ``c``, i.e. ``x_padded[n, c, oh*sh + i*dh, ow*sw + j*dw]``.
        ``OH = floor((H + top + bottom - dh*(FH-1) - 1) / sh) + 1``, likewise OW.

    Notes
    -----
    The result holds FH*FW times more elements than the output; use
    :class:`convcli.Convolution` for large inputs, which works in bounded tiles.

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> im2col(x, 2, 2)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    x = np.asarray(input_data)
    geom = _image_geometry(x.shape, filter_h, filter_w, stride, pad, dilation, padding_mode)
    n, c, oh, ow = geom.batch, geom.channels, geom.out_h, geom.out_w
    col = np.empty((n, oh, ow, c, filter_h, filter_w), dtype=float_dtype(x.dtype))
    taps = col.transpose(3, 0, 4, 5, 1, 2)  # (C, N, FH, FW, OH, OW) view: tap (i, j) is taps[:, :, i, j]
    src = x.transpose(1, 0, 2, 3)
    for i in range(filter_h):
        for j in range(filter_w):
            read_window(src, taps[:, :, i, j], _tap_window(geom, i, j), geom.pad_value)
    return col.reshape(n * oh * ow, c * filter_h * filter_w)


def col2im(
    col: NDArray[np.generic], input_shape: tuple[int, int, int, int], filter_h: int,
    filter_w: int, stride: object = 1, pad: PadSpec = 0, *, dilation: object = 1,
    padding_mode: str = "zeros",
) -> NDArray[np.floating]:
    """Adjoint of :func:`im2col`: sum every row of ``col`` back into image space.

    ``<im2col(x), y> == <x, col2im(y)>`` for all x, y: overlapping receptive fields add
    up, and padding gradients flow back to the pixels the padding copied.

    Parameters
    ----------
    col : ndarray, shape (N*OH*OW, C*FH*FW)
        Layout as returned by :func:`im2col`.
    input_shape : (N, C, H, W)
        Shape of the image batch to rebuild.
    filter_h, filter_w, stride, pad, dilation, padding_mode
        As given to :func:`im2col`.

    Returns
    -------
    ndarray, shape (N, C, H, W)
        float64 for float64 ``col``, else float32.

    Notes
    -----
    No padded copy: each tap's window is added straight into the result.
    """
    y = np.asarray(col)
    geom = _image_geometry(tuple(input_shape), filter_h, filter_w, stride, pad, dilation, padding_mode)
    n, c, oh, ow = geom.batch, geom.channels, geom.out_h, geom.out_w
    expected = (n * oh * ow, c * filter_h * filter_w)
    if y.shape != expected:
        raise ShapeError(f"col must have shape {expected} for input_shape {tuple(input_shape)}, got {y.shape}")
    dtype = float_dtype(y.dtype)
    taps = y.reshape(n, oh, ow, c, filter_h, filter_w).transpose(3, 0, 4, 5, 1, 2).astype(dtype, copy=False)
    dx = np.zeros((n, c, geom.height, geom.width), dtype=dtype)
    dst = dx.transpose(1, 0, 2, 3)
    for i in range(filter_h):
        for j in range(filter_w):
            add_window(dst, taps[:, :, i, j], _tap_window(geom, i, j))
    return dx
