"""im2col and col2im: the convolution as one matrix product, and its adjoint.

Two layers live here.

* The public :func:`im2col` / :func:`col2im` keep the seed's call signature and row
  layout: one row per output pixel (N*OH*OW rows), one column per kernel tap
  (C*FH*FW columns, channel-major).  They build the whole matrix, which is what they
  are for: to look at.
* The tile functions (:func:`gather_band`, :func:`unfold`, :func:`fold`,
  :func:`scatter_band`) do the same work on a band of output rows at a time, into
  buffers the caller owns and reuses.  :class:`convcli.layer.Convolution` runs on them
  so its memory stays bounded whatever the image size.

Tile layouts (channels first, so a group's taps are contiguous rows of the GEMM)::

    band : (C, nb, rows, W + left + right)       padded input rows of nb images
    col  : (C, FH, FW, nb, tile_rows, OW)         viewed as (C*FH*FW, nb*tile_rows*OW)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import ShapeError
from .dtypes import float_dtype
from .geometry import ConvGeometry, PadSpec, plan_geometry


def pad_source_index(p: int, size: int, mode: str) -> int:
    """Source index of padded coordinate ``p`` (``p < 0`` or ``p >= size`` is padding).

    Returns -1 where the padding is zeros.  ``reflect`` mirrors without repeating the
    edge (PyTorch's reflect, numpy's "reflect"), ``replicate`` repeats the edge,
    ``circular`` wraps around.
    """
    if 0 <= p < size:
        return p
    if mode == "zeros":
        return -1
    if mode == "replicate":
        return 0 if p < 0 else size - 1
    if mode == "circular":
        return p % size
    # reflect: the geometry checks guarantee pad < size, so one bounce suffices
    return -p if p < 0 else 2 * (size - 1) - p


def band_rows(geom: ConvGeometry, tile_rows: int) -> int:
    """Padded input rows needed for ``tile_rows`` output rows."""
    return (tile_rows - 1) * geom.stride[0] + geom.dilation[0] * (geom.kernel_h - 1) + 1


def gather_band(
    x: NDArray[np.generic], n0: int, n1: int, out_row0: int, tile_rows: int,
    geom: ConvGeometry, band: NDArray[np.floating],
) -> None:
    """Copy the padded input rows behind output rows ``out_row0 : out_row0+tile_rows``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        The whole input; only images ``n0:n1`` and the rows needed are read.
    n0, n1 : int
        Image range of the tile.
    out_row0, tile_rows : int
        First output row and number of output rows of the tile.
    geom : ConvGeometry
        Padding and padding mode.
    band : ndarray, shape (C, n1 - n0, band_rows(geom, tile_rows), W + left + right)
        Written in place, cast to its dtype.
    """
    top, _, left, _ = geom.pads
    height, width = geom.height, geom.width
    mode = geom.padding_mode
    first = out_row0 * geom.stride[0] - top  # source row of the band's first row
    rows = band.shape[2]
    src = x[n0:n1].transpose(1, 0, 2, 3)  # (C, nb, H, W) view, no copy
    lo = min(max(0, -first), rows)
    hi = max(min(rows, height - first), lo)
    if hi > lo:
        band[:, :, lo:hi, left:left + width] = src[:, :, first + lo:first + hi, :]
    for r in [*range(lo), *range(hi, rows)]:
        s = pad_source_index(first + r, height, mode)
        if s < 0:
            band[:, :, r, :] = 0
        else:
            band[:, :, r, left:left + width] = src[:, :, s, :]
    padded_w = band.shape[3]
    for col in [*range(left), *range(left + width, padded_w)]:
        s = pad_source_index(col - left, width, mode)
        if s < 0:
            band[:, :, :, col] = 0
        else:
            band[:, :, :, col] = band[:, :, :, left + s]


def scatter_band(
    band: NDArray[np.floating], dx: NDArray[np.floating], n0: int, n1: int,
    out_row0: int, geom: ConvGeometry,
) -> None:
    """Adjoint of :func:`gather_band`: add a band's gradient into ``dx``.

    Padding gradients flow back to the pixels the padding copied (nothing for
    zeros).  ``band`` is modified (its padding columns are folded into the interior).

    Parameters
    ----------
    band : ndarray, shape (C, n1 - n0, rows, W + left + right)
        Gradient with respect to the band.
    dx : ndarray, shape (N, C, H, W)
        Accumulated in place.
    """
    top, _, left, _ = geom.pads
    height, width = geom.height, geom.width
    mode = geom.padding_mode
    first = out_row0 * geom.stride[0] - top
    rows, padded_w = band.shape[2], band.shape[3]
    if mode != "zeros":
        for col in [*range(left), *range(left + width, padded_w)]:
            band[:, :, :, left + pad_source_index(col - left, width, mode)] += band[:, :, :, col]
    dst = dx[n0:n1].transpose(1, 0, 2, 3)
    lo = min(max(0, -first), rows)
    hi = max(min(rows, height - first), lo)
    if hi > lo:
        dst[:, :, first + lo:first + hi, :] += band[:, :, lo:hi, left:left + width]
    if mode != "zeros":
        for r in [*range(lo), *range(hi, rows)]:
            dst[:, :, pad_source_index(first + r, height, mode), :] += band[:, :, r, left:left + width]


def unfold(band: NDArray[np.floating], col: NDArray[np.floating], geom: ConvGeometry) -> None:
    """Fill a column tile from a band: ``col[c, i, j, n, r, w] = band[c, n, r*sh + i*dh, w*sw + j*dw]``.

    Parameters
    ----------
    band : ndarray, shape (C, nb, rows, Wp)
        Padded input rows (from :func:`gather_band`).
    col : ndarray, shape (C, FH, FW, nb, tile_rows, OW)
        Written in place; any strides (a transposed view is fine).

    Notes
    -----
    FH*FW strided copies of C*nb*tile_rows*OW elements each.
    """
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    tile_rows, out_w = col.shape[4], col.shape[5]
    for i in range(geom.kernel_h):
        r = i * dh
        for j in range(geom.kernel_w):
            c = j * dw
            col[:, i, j] = band[:, :, r:r + sh * (tile_rows - 1) + 1:sh, c:c + sw * (out_w - 1) + 1:sw]


def fold(col: NDArray[np.floating], band: NDArray[np.floating], geom: ConvGeometry) -> None:
    """Adjoint of :func:`unfold`: add every tap of ``col`` back into ``band``.

    Parameters
    ----------
    col : ndarray, shape (C, FH, FW, nb, tile_rows, OW)
        Gradient with respect to the column tile.
    band : ndarray, shape (C, nb, rows, Wp)
        Accumulated in place (overlapping taps sum).
    """
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    tile_rows, out_w = col.shape[4], col.shape[5]
    for i in range(geom.kernel_h):
        r = i * dh
        for j in range(geom.kernel_w):
            c = j * dw
            band[:, :, r:r + sh * (tile_rows - 1) + 1:sh, c:c + sw * (out_w - 1) + 1:sw] += col[:, i, j]


def _image_geometry(
    shape: tuple[int, ...], filter_h: int, filter_w: int, stride: object, pad: PadSpec,
    dilation: object, padding_mode: str,
) -> ConvGeometry:
    if len(shape) != 4:
        raise ShapeError(f"input_data must be 4-D (N, C, H, W), got shape {tuple(shape)}")
    return plan_geometry(
        tuple(shape), (1, shape[1], filter_h, filter_w), stride, pad, dilation, 1, padding_mode
    )


def im2col(
    input_data: NDArray[np.generic], filter_h: int, filter_w: int, stride: object = 1,
    pad: PadSpec = 0, *, dilation: object = 1, padding_mode: str = "zeros",
) -> NDArray[np.floating]:
    """Unroll every receptive field of ``input_data`` into a row of a matrix.

    Parameters
    ----------
    input_data : ndarray, shape (N, C, H, W)
        Input images.  Float dtypes are kept; integers become float32.
    filter_h, filter_w : int
        Kernel size FH, FW.
    stride, dilation : int or (h, w)
        Step between receptive fields and between taps, each >= 1.
    pad : int, (h, w), (top, bottom, left, right), "same" or "valid"
        Padding added around each image.
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        What the padding holds.

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
    """
    x = np.asarray(input_data)
    geom = _image_geometry(x.shape, filter_h, filter_w, stride, pad, dilation, padding_mode)
    dtype = float_dtype(x.dtype)
    n, c = geom.batch, geom.channels
    oh, ow = geom.out_h, geom.out_w
    band = np.empty((c, n, band_rows(geom, oh), geom.padded_hw[1]), dtype=dtype)
    gather_band(x, 0, n, 0, oh, geom, band)
    col = np.empty((n, oh, ow, c, filter_h, filter_w), dtype=dtype)
    unfold(band, col.transpose(3, 4, 5, 0, 1, 2), geom)
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
        Same float dtype as ``col`` (integers become float32).

    Notes
    -----
    Extra memory: one padded copy (C, N, H + top + bottom, W + left + right).
    """
    y = np.asarray(col)
    geom = _image_geometry(tuple(input_shape), filter_h, filter_w, stride, pad, dilation, padding_mode)
    n, c = geom.batch, geom.channels
    oh, ow = geom.out_h, geom.out_w
    expected = (n * oh * ow, c * filter_h * filter_w)
    if y.shape != expected:
        raise ShapeError(f"col must have shape {expected} for input_shape {tuple(input_shape)}, got {y.shape}")
    dtype = float_dtype(y.dtype)
    band = np.zeros((c, n, band_rows(geom, oh), geom.padded_hw[1]), dtype=dtype)
    fold(y.reshape(n, oh, ow, c, filter_h, filter_w).transpose(3, 4, 5, 0, 1, 2), band, geom)
    dx = np.zeros((n, c, geom.height, geom.width), dtype=dtype)
    scatter_band(band, dx, 0, n, 0, geom)
    return dx


# ----------------------------------------------------------------------------- flat tiles
#
# The layer's fast path.  A tile's padded input band is split by stride into sh*sw
# "phase" images (phase (a, b) holds band[a::sh, b::sw]; with stride 1 the band is its
# own single phase), each stored flat, row after row, Wq = ceil(Wp / sw) wide.  Tap
# (i, j) of every output pixel of the tile is then ONE contiguous run of that flat
# buffer, starting at a fixed offset: output (r, w) reads phase[r + i*dh//sh,
# w + j*dw//sw].  So the column tile is filled with FH*FW long contiguous copies
# (no short strided rows), and the GEMM computes Wq columns per output row, of which
# the last Wq - OW are junk and never leave the tile (a few % of work at most).


def _strided(flat: NDArray[np.floating], offset: int, shape: tuple[int, ...],
             strides: tuple[int, ...]) -> NDArray[np.floating]:
    """View of ``flat[offset:]`` with ``shape`` and element ``strides``."""
    size = flat.itemsize
    return np.lib.stride_tricks.as_strided(
        flat[offset:], shape=shape, strides=tuple(s * size for s in strides), writeable=True
    )


@dataclass(frozen=True)
class FlatLayout:
    """Geometry of a tile's phase-flat buffer.

    Attributes
    ----------
    channels, images : int
        C and the most images in a tile.
    rows : int
        The most output rows in a tile.
    hq, wq : int
        Rows and columns of one phase image (wq is also the GEMM's row pitch).
    phases : int
        sh * sw.
    region : int
        Elements per (channel, image, phase): ``hq*wq`` plus slack for the last tap.
    taps : tuple of (phase, offset)
        Per kernel tap, in (i, j) row-major order: where its run starts.
    band_hw : (int, int)
        Size of the band buffer the strided case gathers into before splitting.
    """

    channels: int
    images: int
    rows: int
    hq: int
    wq: int
    phases: int
    region: int
    taps: tuple[tuple[int, int], ...]
    band_hw: tuple[int, int]

    @property
    def size(self) -> int:
        """Elements of the phase buffer."""
        return self.channels * self.images * self.phases * self.region

    @property
    def band_size(self) -> int:
        """Elements of the separate band buffer (0 with stride 1: the band is the phase)."""
        return 0 if self.phases == 1 else self.channels * self.images * self.band_hw[0] * self.band_hw[1]


def flat_layout(geom: ConvGeometry, images: int, rows: int) -> FlatLayout:
    """Layout for tiles of at most ``images`` images and ``rows`` output rows."""
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    row_reach = dh * (geom.kernel_h - 1) // sh
    col_reach = dw * (geom.kernel_w - 1) // sw
    wq = -(-geom.padded_hw[1] // sw)
    hq = rows + row_reach
    taps = []
    for i in range(geom.kernel_h):
        for j in range(geom.kernel_w):
            a, sr = (i * dh) % sh, (i * dh) // sh
            b, sc = (j * dw) % sw, (j * dw) // sw
            taps.append((a * sw + b, sr * wq + sc))
    return FlatLayout(
        channels=geom.channels, images=images, rows=rows, hq=hq, wq=wq, phases=sh * sw,
        region=hq * wq + col_reach, taps=tuple(taps), band_hw=(hq * sh, wq * sw),
    )


class FlatTile:
    """A worker's phase-flat buffer (plus the band buffer of strided convolutions).

    The views every tile needs are built once, for the largest tile, and sliced per
    tile (building a strided view costs microseconds; slicing one, a fraction of that).

    Parameters
    ----------
    lay : FlatLayout
        The layout (largest tile) this buffer serves.
    geom : ConvGeometry
        The convolution.
    dtype : dtype
        Float dtype.  The buffers start zeroed, so never-written junk is finite.
    """

    def __init__(self, lay: FlatLayout, geom: ConvGeometry, dtype: np.dtype) -> None:
        self.lay = lay
        c, imgs, reg, p, wq = lay.channels, lay.images, lay.region, lay.phases, lay.wq
        self.phase = np.zeros(lay.size, dtype=dtype)
        self.band: Optional[NDArray[np.floating]] = None
        self._zeroed: dict[tuple[int, int], tuple[tuple[int, int, int, int], int]] = {}  # see gather
        shape = (c, imgs, band_rows(geom, lay.rows), geom.padded_hw[1])
        if p == 1:
            self._band = _strided(self.phase, 0, shape, (imgs * reg, reg, wq, 1))
        else:
            bh, bw = lay.band_hw
            sh, sw = geom.stride
            self.band = np.zeros(lay.band_size, dtype=dtype)
            self._band = _strided(self.band, 0, shape, (imgs * bh * bw, bh * bw, bw, 1))
            six = (c, imgs, sh, sw, lay.hq, wq)
            self._phase6 = _strided(self.phase, 0, six, (imgs * p * reg, p * reg, sw * reg, reg, wq, 1))
            self._band6 = _strided(self.band, 0, six, (imgs * bh * bw, bh * bw, bw, 1, sh * bw, sw))
        tap_strides = (imgs * p * reg, p * reg, 1)
        self._taps = [
            _strided(self.phase, ph * reg + off, (c, imgs, lay.rows * wq), tap_strides) for ph, off in lay.taps
        ]

    def band_view(self, nb: int, rows_in: int) -> NDArray[np.floating]:
        """The (C, nb, rows_in, Wp) padded band: :func:`gather_band` fills it, :func:`scatter_band` reads it."""
        return self._band[:, :nb, :rows_in]

    def gather(self, x: NDArray[np.generic], n0: int, n1: int, out_row0: int, tile_rows: int,
               geom: ConvGeometry) -> None:
        """Fill the phase images of images ``n0:n1``, output rows ``out_row0 :+ tile_rows``.

        :func:`gather_band` then :meth:`split`; with zero padding and a stride, each phase
        image is copied straight from ``x`` instead (one pass, not two).
        """
        nb = n1 - n0
        if self.band is None or geom.padding_mode != "zeros":
            gather_band(x, n0, n1, out_row0, tile_rows, geom, self.band_view(nb, band_rows(geom, tile_rows)))
            self.split(nb)
            return
        sh, sw = geom.stride
        top, _, left, _ = geom.pads
        height, width = geom.height, geom.width
        hq, wq = self.lay.hq, self.lay.wq
        first = out_row0 * sh - top
        src = x[n0:n1].transpose(1, 0, 2, 3)
        for a in range(sh):
            # phase row r holds padded row first + a + r*sh: inside x for r in [rlo, rhi)
            rlo = min(max(0, -(-(-first - a) // sh)), hq)
            rhi = max(min(hq, -(-(height - first - a) // sh)), rlo)
            for b in range(sw):
                clo = min(max(0, -(-(left - b) // sw)), wq)
                chi = max(min(wq, -(-(width + left - b) // sw)), clo)
                dst = self._phase6[:, :nb, a, b]
                if rhi > rlo and chi > clo:
                    y0, x0 = first + a + rlo * sh, b + clo * sw - left
                    dst[:, :, rlo:rhi, clo:chi] = src[:, :, y0:y0 + (rhi - rlo - 1) * sh + 1:sh,
                                                      x0:x0 + (chi - clo - 1) * sw + 1:sw]
                bounds = (rlo, rhi, clo, chi)
                done = self._zeroed.get((a, b))
                if done is not None and done[0] == bounds and nb <= done[1]:
                    continue  # the padding around this interior is zero already
                for sl in ((slice(0, rlo),), (slice(rhi, hq),), (slice(rlo, rhi), slice(0, clo)),
                           (slice(rlo, rhi), slice(chi, wq))):
                    if all(x.stop > x.start for x in sl):
                        dst[(slice(None), slice(None), *sl)] = 0
                self._zeroed[(a, b)] = (bounds, nb)

    def split(self, nb: int) -> None:
        """Copy the band into its sh*sw phase images (strided convolutions only)."""
        if self.band is not None:
            np.copyto(self._phase6[:, :nb], self._band6[:, :nb])

    def merge(self, nb: int) -> None:
        """Adjoint (and inverse) of :meth:`split`: phase images back into the band."""
        if self.band is not None:
            np.copyto(self._band6[:, :nb], self._phase6[:, :nb])

    def unfold(self, col: NDArray[np.floating]) -> None:
        """Fill ``col`` (C, FH*FW, nb, rows*wq) with one contiguous run per tap, channel and image.

        Column ``r*wq + w`` is output pixel (r, w) of the tile (junk for ``w >= OW``).
        """
        nb, length = col.shape[2], col.shape[3]
        for t, src in enumerate(self._taps):
            np.copyto(col[:, t], src[:, :nb, :length])

    def fold(self, col: NDArray[np.floating]) -> None:
        """Adjoint of :meth:`unfold`: add every tap's run back, taps in order."""
        nb, length = col.shape[2], col.shape[3]
        for t, view in enumerate(self._taps):
            dst = view[:, :nb, :length]
            np.add(dst, col[:, t], out=dst)
