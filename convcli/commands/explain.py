"""``convcli explain``: one output pixel by hand - the patch it reads, the kernel, the products, their sum.

A teaching view, so its arithmetic is its own, in float64, written the way the
definition reads (nothing here calls the engine to get the numbers it explains)::

    out[n, f, oy, ox] = b[f] + sum_{c, i, j} W[f, c, i, j]
                                  * xpad[n, g·C/groups + c, oy·sh − top + i·dh, ox·sw − left + j·dw]

where a coordinate outside the image is read through the padding mode
(:func:`padded_index`).  Beside it stands the value the layer ``apply`` runs computes
for the same pixel (:attr:`PixelExplanation.engine`), so a reader sees they agree.
With ``--grad``, the other direction: which outputs (and taps) read input pixel
(y, x) - through the padding too - and ``dx[n, c, y, x] = sum W[f, c', i, j] · dout[n, f, oy, ox]``
over them, beside ``grad``'s dx.  :func:`column_matrix` is im2col of a small input,
every entry labelled.

Neighbours: the Typer command and its tables are :mod:`convcli.cli.explain`; the layer
``apply`` builds is :func:`convcli.kernels.bank.layer_from_weights`; what the engine did
on a whole run (``--explain``) is :mod:`convcli.commands.trace_view`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.geometry import ConvGeometry, plan_geometry
from ..errors import ParameterError
from ..io.inputs import load_input
from ..kernels.bank import LayerOptions, layer_from_weights, layer_weights, working_dtype
from ..kernels.spec import parse_kernels
from .common import QUIET, Reporter, SharedOptions, padding_for, read_limits, said_warnings, target_name

__all__ = [
    "COLUMNS_MAX_CELLS", "ColumnMatrix", "Contribution", "ExplainReport", "GradExplanation", "PixelExplanation", "Tap",
    "column_matrix", "explain_command", "explain_grad", "explain_pixel", "padded_index",
]

#: ``--columns`` prints the whole column matrix only up to this many entries.
COLUMNS_MAX_CELLS = 2000


def padded_index(index: int, size: int, mode: str) -> Optional[int]:
    """Which input index a (possibly padded) coordinate reads, or None for zeros/constant padding.

    Parameters
    ----------
    index : int
        Coordinate along one axis; ``0 <= index < size`` is inside the image.
    size : int
        The axis' length.
    mode : str
        zeros, constant, replicate (``aaa|abc``), reflect (``cb|abc``), symmetric
        (``cba|abc``) or circular (``bc|abc``); any distance from the edge (the
        reflections repeat).

    Examples
    --------
    >>> [padded_index(i, 3, "reflect") for i in (-2, -1, 3, 4)]
    [2, 1, 1, 0]
    >>> [padded_index(i, 3, "symmetric") for i in (-2, -1, 3, 4)]
    [1, 0, 2, 1]
    """
    if 0 <= index < size:
        return index
    if mode in ("zeros", "constant"):
        return None
    if mode == "replicate":
        return min(max(index, 0), size - 1)
    if mode == "circular":
        return index % size
    if mode == "reflect":
        if size == 1:
            return 0
        period = 2 * (size - 1)
        m = index % period
        return period - m if m >= size else m
    if mode == "symmetric":
        period = 2 * size
        m = index % period
        return period - 1 - m if m >= size else m
    raise ParameterError(f"unknown padding mode {mode!r}")


@dataclass(frozen=True)
class Tap:
    """One term of an output pixel's sum.

    Attributes
    ----------
    channel : int
        The input channel read (absolute index).
    i, j : int
        The kernel tap.
    row, col : int
        The coordinate read, relative to the unpadded image (outside it: padding).
    source : (int, int) or None
        The input pixel the padding mode reads there (None: the pad constant).
    value, weight : float
        The input value read and the kernel weight.
    """

    channel: int
    i: int
    j: int
    row: int
    col: int
    source: Optional[tuple[int, int]]
    value: float
    weight: float

    @property
    def padded(self) -> bool:
        """True when the coordinate lies in the padding."""
        return self.source != (self.row, self.col)

    @property
    def product(self) -> float:
        return self.value * self.weight


@dataclass
class PixelExplanation:
    """Output pixel ``out[image, map, y, x]`` computed by hand.

    Attributes
    ----------
    image, map : int
    at : (int, int)
        (OY, OX).
    group : int
        The channel group the filter reads.
    geometry : ConvGeometry
    taps : list of Tap
        In (channel, i, j) order.
    bias : float
    total : float
        ``bias + sum(tap.product)``, in float64.
    engine : float
        The same pixel as the layer ``apply`` runs computes it (its dtype).
    dtype : str
        The layer's compute dtype.
    """

    image: int
    map: int
    at: tuple[int, int]
    group: int
    geometry: ConvGeometry
    taps: list[Tap]
    bias: float
    total: float
    engine: float
    dtype: str


@dataclass(frozen=True)
class Contribution:
    """One term of ``dx[n, c, y, x]``: output (map, oy, ox) read the pixel through tap (i, j).

    Attributes
    ----------
    map, oy, ox : int
    i, j : int
    row, col : int
        The padded coordinate the tap read (it differs from (y, x) when the pixel was
        read through the padding: reflect, replicate, symmetric, circular).
    weight, dout : float
    """

    map: int
    oy: int
    ox: int
    i: int
    j: int
    row: int
    col: int
    weight: float
    dout: float

    @property
    def product(self) -> float:
        return self.weight * self.dout


@dataclass
class GradExplanation:
    """``dx[image, channel, y, x]`` computed by hand from the outputs that read it.

    Attributes
    ----------
    image, channel : int
    at : (int, int)
    contributions : list of Contribution
    total : float
        Their sum, in float64.
    engine : float
        ``grad``'s dx at the same place.
    """

    image: int
    channel: int
    at: tuple[int, int]
    contributions: list[Contribution]
    total: float
    engine: float


@dataclass
class ColumnMatrix:
    """im2col of one image and one group, every entry labelled.

    Attributes
    ----------
    rows : list of str
        ``"c{channel} ({i},{j})"``: K = C/groups·FH·FW rows.
    columns : list of str
        ``"(oy,ox)"``: one per output pixel, OH·OW.
    values : ndarray, shape (K, OH*OW)
    padded : ndarray of bool, shape (K, OH*OW)
        Entries read from the padding.
    """

    rows: list[str]
    columns: list[str]
    values: NDArray[np.float64]
    padded: NDArray[np.bool_]


def _read(x: NDArray[np.float64], geom: ConvGeometry, n: int, channel: int, row: int, col: int
          ) -> tuple[Optional[tuple[int, int]], float]:
    r = padded_index(row, geom.height, geom.padding_mode)
    c = padded_index(col, geom.width, geom.padding_mode)
    if r is None or c is None:
        return None, geom.pad_value
    return (r, c), float(x[n, channel, r, c])


def explain_pixel(x: NDArray[np.float64], w: NDArray[np.float64], b: Optional[NDArray[np.float64]],
                  geom: ConvGeometry, image: int, fmap: int, at: tuple[int, int]) -> tuple[list[Tap], float, float]:
    """The taps of output pixel ``(image, fmap, at)``, the bias, and ``bias + sum of products``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float64
    w : ndarray, shape (FN, C/groups, FH, FW), float64
    b : ndarray, shape (FN,), or None
    geom : ConvGeometry
    image, fmap : int
    at : (int, int)
        (OY, OX), inside the output.
    """
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    top, _, left, _ = geom.pads
    group = fmap // geom.filters_per_group
    oy, ox = at
    taps = []
    for k in range(geom.channels_per_group):
        channel = group * geom.channels_per_group + k
        for i in range(geom.kernel_h):
            for j in range(geom.kernel_w):
                row, col = oy * sh - top + i * dh, ox * sw - left + j * dw
                source, value = _read(x, geom, image, channel, row, col)
                taps.append(Tap(channel, i, j, row, col, source, value, float(w[fmap, k, i, j])))
    bias = 0.0 if b is None else float(b[fmap])
    return taps, bias, bias + float(sum(t.product for t in taps))


def column_matrix(x: NDArray[np.float64], geom: ConvGeometry, image: int, group: int) -> ColumnMatrix:
    """im2col of image ``image``, group ``group``: K = C/groups·FH·FW rows, one column per output pixel.

    Raises
    ------
    ParameterError
        More than :data:`COLUMNS_MAX_CELLS` entries (the matrix would not be readable).
    """
    k = geom.channels_per_group * geom.kernel_h * geom.kernel_w
    p = geom.out_h * geom.out_w
    if k * p > COLUMNS_MAX_CELLS:
        raise ParameterError(
            f"--columns prints the whole column matrix, {k}×{p} = {k * p} entries here; expected at most "
            f"{COLUMNS_MAX_CELLS}: use a smaller input or kernel (or a larger stride)"
        )
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    top, _, left, _ = geom.pads
    values = np.empty((k, p))
    padded = np.zeros((k, p), dtype=bool)
    rows = []
    for kc in range(geom.channels_per_group):
        channel = group * geom.channels_per_group + kc
        for i in range(geom.kernel_h):
            for j in range(geom.kernel_w):
                r = (kc * geom.kernel_h + i) * geom.kernel_w + j
                rows.append(f"c{channel} ({i},{j})")
                for oy in range(geom.out_h):
                    for ox in range(geom.out_w):
                        row, col = oy * sh - top + i * dh, ox * sw - left + j * dw
                        source, values[r, oy * geom.out_w + ox] = _read(x, geom, image, channel, row, col)
                        padded[r, oy * geom.out_w + ox] = source != (row, col)
    columns = [f"({oy},{ox})" for oy in range(geom.out_h) for ox in range(geom.out_w)]
    return ColumnMatrix(rows, columns, values, padded)


def explain_grad(w: NDArray[np.float64], dout: NDArray[np.float64], geom: ConvGeometry, image: int, channel: int,
                 at: tuple[int, int]) -> tuple[list[Contribution], float]:
    """The outputs and taps that read input pixel ``(image, channel, at)``, and ``sum W · dout`` over them.

    Rows and columns are found apart (a tap reads row ``oy·sh − top + i·dh``, whatever
    the column), so the cost is (OH·FH + OW·FW) plus one term per contribution.
    """
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    top, _, left, _ = geom.pads
    y, x = at
    mode = geom.padding_mode
    rows = [(oy, i, oy * sh - top + i * dh) for oy in range(geom.out_h) for i in range(geom.kernel_h)
            if padded_index(oy * sh - top + i * dh, geom.height, mode) == y]
    cols = [(ox, j, ox * sw - left + j * dw) for ox in range(geom.out_w) for j in range(geom.kernel_w)
            if padded_index(ox * sw - left + j * dw, geom.width, mode) == x]
    group, k = divmod(channel, geom.channels_per_group)
    terms = []
    for f in range(group * geom.filters_per_group, (group + 1) * geom.filters_per_group):
        for oy, i, row in rows:
            for ox, j, col in cols:
                terms.append(Contribution(f, oy, ox, i, j, row, col, float(w[f, k, i, j]),
                                          float(dout[image, f, oy, ox])))
    return terms, float(sum(t.product for t in terms))


def _check_index(value: int, size: int, what: str, axis: str) -> None:
    if not 0 <= value < size:
        raise ParameterError(f"{what} {value} is outside the {axis} (0 to {size - 1})")


@dataclass
class ExplainReport:
    """What ``convcli explain`` prints: the subject, the pixel(s) and, with ``--columns``, the column matrix."""

    subject: str
    pixels: list[PixelExplanation]
    kernel: NDArray[np.float64]
    grad: Optional[GradExplanation] = None
    columns: Optional[ColumnMatrix] = None
    notes: tuple[str, ...] = ()


def explain_command(
    source: str,
    kernels: Sequence[str],
    shared: SharedOptions,
    at: tuple[int, int],
    *,
    fmap: Optional[int] = None,
    image: int = 0,
    grad: bool = False,
    dout: str = "ones",
    columns: bool = False,
    report: Reporter = QUIET,
) -> ExplainReport:
    """``convcli explain``: read the input and kernels as ``apply`` does, explain one pixel.

    Parameters
    ----------
    source : str
        The input (a path or ``-``).
    kernels : sequence of str
        Kernel specs, as ``apply -k``.
    shared : SharedOptions
        The same layer options as ``apply``'s (padding mode default by the input's kind).
    at : (int, int)
        Output pixel (OY, OX); with ``grad``, input pixel (Y, X).
    fmap : int, optional
        Output map (with ``grad``: input channel).  Default: every one, up to 4.
    image : int
        Index in the batch.
    grad : bool
        Explain ``dx`` at input pixel ``at`` instead, for the upstream gradient ``dout``.
    dout : str
        As ``grad --dout`` (ones, randn[:SEED], a .npy file).
    columns : bool
        Also the column matrix of the image (and the group of the first map explained).
    report : Reporter
        Told the input's notes and library warnings.

    Raises
    ------
    ParameterError
        ``at``, ``fmap`` or ``image`` outside the output (or input), or ``--columns`` on
        an input too large to print.
    """
    options: LayerOptions = shared.layer_options()
    with said_warnings(report):
        parsed = [kernel for spec in kernels for kernel in parse_kernels(spec).kernels]
        item = load_input(source, gray=shared.gray, keep_alpha=shared.keep_alpha, limits=read_limits(shared))
    for note in item.notes:
        report.say(f"{target_name(item.name)}: {note}")
    options = padding_for(options, item.kind)
    n, c, h, w = item.shape
    weights = layer_weights(parsed, c, options)
    dtype = working_dtype(item.samples, options.dtype)
    layer = layer_from_weights(weights, options, dtype, item.divisor)  # the layer apply runs on these samples
    geom = plan_geometry(item.shape, weights.W.shape, options.stride, options.pad, options.dilation, weights.groups,
                         str(options.padding_mode))
    _check_index(image, n, "--image", "batch")
    values = np.asarray(item.data, dtype=np.float64)
    w64 = np.asarray(weights.W, dtype=np.float64)
    b64 = None if weights.b is None else np.asarray(weights.b, dtype=np.float64)
    subject = target_name(item.name)
    if grad:
        from .grad import run_grad

        _check_index(at[0], h, "--at row", "input's rows")
        _check_index(at[1], w, "--at column", "input's columns")
        channel = 0 if fmap is None else fmap
        _check_index(channel, c, "--map (an input channel with --grad)", "input's channels")
        run = run_grad(item.data, parsed, options, dout)
        upstream = np.asarray(run.dout, dtype=np.float64)
        terms, total = explain_grad(w64, upstream, geom, image, channel, at)
        engine = float(run.grads.dx[image, channel, at[0], at[1]])
        result = ExplainReport(subject, [], w64, GradExplanation(image, channel, at, terms, total, engine))
    else:
        _check_index(at[0], geom.out_h, "--at row", "output's rows")
        _check_index(at[1], geom.out_w, "--at column", "output's columns")
        maps = list(range(min(geom.filters, 4))) if fmap is None else [fmap]
        for m in maps:
            _check_index(m, geom.filters, "--map", "output maps")
        data = item.samples if item.divisor is not None or item.samples.dtype.kind != "f" else \
            item.samples.astype(dtype, copy=False)
        row = layer.forward_rows(data[image:image + 1], at[0], at[0] + 1)[0, :, 0, at[1]]
        pixels = []
        for m in maps:
            taps, bias, total = explain_pixel(values, w64, b64, geom, image, m, at)
            pixels.append(PixelExplanation(image, m, at, m // geom.filters_per_group, geom, taps, bias, total,
                                           float(row[m]), str(dtype)))
        notes = () if fmap is not None or geom.filters <= 4 else (
            f"maps 0-3 of {geom.filters} shown; --map N for another",)
        result = ExplainReport(subject, pixels, w64, notes=notes)
    if columns:
        group = result.pixels[0].group if result.pixels else (0 if fmap is None else fmap) // geom.channels_per_group
        result.columns = column_matrix(values, geom, image, group)
    return result
