"""The Convolution layer: the book's interface over the engine's bounded tiles.

Where the book's lines went (``common/layers.py``'s ``Convolution``, ``common/util.py``)::

    book                                   convcli
    col = im2col(x, FH, FW, stride, pad)   Workspace.columns: one item's columns
                                           (convcli.engine.tiles), never the whole matrix
    out = np.dot(col, col_W) + b           forward_im2col (convcli.engine.forward):
                                           res = W_chunk @ col per item, + b
    dW = np.dot(col.T, dout)               backward_by_col2im / backward_by_correlation
    dcol = np.dot(dout, col_W.T)             (convcli.engine.backward): the same products
    dx = col2im(dcol, ...)                   per item; col2im is FlatTile.fold + scatter

Why it differs from the book:

* **tiles** - the column matrix of a 16-megapixel image and a 5×5 kernel is 9 GB in
  float64; the engine walks the output in items of a few MB instead (a band of output
  rows × a part of the reduction), so memory is bounded for every image and kernel;
* **phase-flat columns** - each item's window of the padded input is stored flat, split
  by stride, so every tap's columns are one contiguous copy and the GEMM runs a few junk
  columns per row that never leave the tile (:mod:`convcli.engine.tiles`);
* **transposed products** - ``W @ col`` (filters × pixels) instead of ``col @ W.T``, so
  the output tile comes out channel-first, as NCHW wants it, with no transpose copy;
* **float32 stays float32**, and items run on worker threads with results that do not
  depend on their number (:mod:`convcli.engine.parallel`).
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import ParameterError, ShapeError
from .backward import backward_by_col2im, backward_by_correlation, correlation_pads
from .banded import backward_banded, forward_banded
from .dtypes import compute_dtype, float_dtype
from .forward import forward_im2col
from .geometry import ALGORITHMS, ConvGeometry, PadSpec, check_layer_args, plan_geometry
from .parallel import get_num_threads, set_num_threads
from .running_sum import box_constants, forward_running_sum, unsuitable
from .separable import AUTO_RATIO, Factors, factorize, forward_separable, separable_cost_ratio
from .tiles import TilePlan, plan_tiles
from .trace import Trace, tracing

__all__ = [
    "ALGORITHMS", "DEFAULT_TILE_BYTES", "Choice", "Convolution", "banded_applies", "choose_algorithm", "conv2d",
    "get_num_threads", "plan_tiles", "set_num_threads",
]

#: Default size of one item's column buffer, in bytes.
DEFAULT_TILE_BYTES = 4 * 1024 * 1024

#: "auto" runs large kernels of filters that read one channel each as banded matrices from
#: this many taps on (7×7): below it, im2col's copies cost less than the banded GEMMs' zeros.
BANDED_MIN_TAPS = 49

#: "auto" runs box kernels on integer samples by running sums from this many taps on.
RUNNING_SUM_MIN_TAPS = 9


#: Why each backward method runs where it does (what ``--explain`` says).
BACKWARD_WHY: dict[str, str] = {
    "col2im": "the book's way, per tile: dW = col · doutᵀ, dcol = Wᵀ · dout, dx = col2im(dcol)",
    "correlation": "stride 1, zero padding: dx is dout correlated with the flipped kernel (no col2im); "
    "dW from the same columns against x",
    "banded": "stride 1, a large kernel on one channel: dx and dW as banded-matrix GEMMs over the rows in place",
}


def banded_applies(geom: ConvGeometry) -> bool:
    """True where "auto" prefers the banded path: one channel per filter, few filters per channel, >= 7×7 taps."""
    return (
        geom.channels_per_group == 1 and geom.filters_per_group <= 8 and geom.out_w >= 8
        and geom.kernel_h * geom.kernel_w >= BANDED_MIN_TAPS
    )


@dataclass(frozen=True)
class Choice:
    """The forward algorithm a layer ran, and why (what ``--explain`` reports).

    Attributes
    ----------
    algorithm : str
        "im2col", "separable", "banded" or "running-sum".
    reason : str
        One line: the rank found, the multiply-adds saved, or why the 2-D path ran.
    factors : Factors or None
        The separable path's factors.
    constants : ndarray, shape (FN,), or None
        The running-sum path's taps, one per filter.
    """

    algorithm: str
    reason: str
    factors: Optional[Factors] = field(default=None, repr=False)
    constants: Optional[NDArray[np.float64]] = field(default=None, repr=False)


def choose_algorithm(geom: ConvGeometry, w: NDArray[np.generic], dtype: np.dtype, requested: str,
                     samples: Optional[np.dtype] = None) -> Choice:
    """Which forward algorithm runs: ``requested``, or for "auto" the cheapest.

    "auto" runs box kernels (all taps equal, at least :data:`RUNNING_SUM_MIN_TAPS`) on
    integer ``samples`` by running sums (exact: :mod:`convcli.engine.running_sum`); else
    the separable path for filters that read one channel each (W of shape (FN, 1, FH, FW),
    FH and FW > 1) whose rank makes the two 1-D passes cost at most
    :data:`~convcli.engine.separable.AUTO_RATIO` of the 2-D path's multiply-adds; else
    the banded path for large kernels on one channel (:func:`banded_applies`); else im2col.
    ``samples`` is the input's dtype (default: the compute dtype).

    Raises
    ------
    ParameterError
        "separable" asked for filters that read several channels; "running-sum" asked for
        a layer it cannot compute exactly.
    """
    samples = dtype if samples is None else np.dtype(samples)
    if requested == "im2col":
        return Choice("im2col", "asked for")
    if requested == "banded":
        return Choice("banded", "asked for")
    why_not = unsuitable(geom, samples, w)
    if requested == "running-sum":
        if why_not is not None:
            raise ParameterError(f"algorithm='running-sum' cannot run this layer: {why_not}")
        return Choice("running-sum", "asked for", constants=box_constants(w))
    if requested == "auto" and why_not is None and geom.kernel_h * geom.kernel_w >= RUNNING_SUM_MIN_TAPS:
        return Choice("running-sum", f"a {geom.kernel_h}×{geom.kernel_w} box on {samples} samples: exact integer "
                      "running sums, six passes whatever its size", constants=box_constants(w))
    one_channel = geom.channels_per_group == 1
    if requested == "separable":
        if not one_channel:
            raise ParameterError(
                f"algorithm='separable' needs filters that read one channel each (W of shape (FN, 1, FH, FW)), "
                f"got W of shape {tuple(np.shape(w))}"
            )
        factors = factorize(w, dtype)
        return Choice("separable", f"asked for: rank {factors.rank}", factors)
    taps = geom.kernel_h * geom.kernel_w
    size = f"{geom.kernel_h}×{geom.kernel_w}"
    if not one_channel:
        return Choice("im2col", f"filters read {geom.channels_per_group} channels each: one GEMM over all {size} taps")
    why = f"a {size} kernel is one-dimensional already"
    if geom.kernel_h > 1 and geom.kernel_w > 1:
        factors = factorize(w, dtype)
        ratio = separable_cost_ratio(geom, factors.rank)
        exact = ", exact integer factors" if factors.exact else ""
        if ratio <= AUTO_RATIO:
            return Choice(
                "separable",
                f"{size} kernel of rank {factors.rank}{exact}: two 1-D passes, {ratio:.0%} of the 2-D multiply-adds",
                factors,
            )
        why = f"{size} kernel of rank {factors.rank}: 1-D passes would cost {ratio:.0%} of the 2-D path"
    if banded_applies(geom):
        return Choice("banded", f"{why}; {taps} taps on one channel: kernel rows as banded matrices")
    return Choice("im2col", why)


class Convolution:
    """2-D convolution layer (cross-correlation, as PyTorch's ``conv2d``) over im2col.

    A drop-in replacement for the book's ``Convolution``: it keeps the ``W`` and ``b``
    arrays it is given (no private copies), so in-place updates by an optimizer are
    seen by the next forward, and ``backward`` sets ``dW`` and ``db``.

    Parameters
    ----------
    W : ndarray, shape (FN, C // groups, FH, FW)
        Filters.
    b : ndarray, shape (FN,), or None
        Bias, one per filter.
    stride : int or (h, w)
        Step between output pixels, >= 1.
    pad : int, (h, w), (top, bottom, left, right), "same" or "valid"
        Padding.  "same" gives an output of ``ceil(H / stride)`` rows (likewise
        columns); when the total padding is odd the extra pixel goes bottom/right.
    dilation : int or (h, w)
        Spacing between kernel taps, >= 1.
    groups : int
        Input channels and filters are split into this many groups, each convolved
        on its own (groups == C with FN == C*M is depthwise).
    padding_mode : str
        What the padding holds: zeros, reflect, replicate, circular (PyTorch's names),
        symmetric (``cba|abc``), ``constant:VALUE``, or an alias such as ImageMagick's
        edge, mirror, tile, gray (:func:`~convcli.engine.geometry.parse_padding_mode`).
    tile_bytes : int
        Target size of one item's column buffer (default 4 MiB; see
        :func:`~convcli.engine.tiles.plan_tiles`).  Results agree to float rounding
        whatever it is (BLAS rounds a matrix's edge columns its own way, and sums over
        items are grouped by item).
    algorithm : {"auto", "im2col", "separable", "banded"}
        How forward runs: "im2col" is the 2-D path; "separable" runs each filter as sums
        of vertical and horizontal 1-D passes (:mod:`convcli.engine.separable`; filters
        that read one channel each); "banded" writes each kernel row as a banded matrix
        and multiplies the image's rows in place (:mod:`convcli.engine.banded`); "auto"
        picks what is cheapest for the kernel's size and rank (:func:`choose_algorithm`).
        The result is the same to float rounding; backward always differentiates the
        kernel as given.

    Attributes
    ----------
    dW : ndarray, shape (FN, C // groups, FH, FW)
        Gradient of the loss with respect to W, set by :meth:`backward`.
    choice : Choice or None
        The algorithm the last :meth:`forward` ran, and why.
    trace : Trace or None
        Set it to a :class:`~convcli.engine.trace.Trace` and every forward and backward
        records into it what ran: geometry, tile plan, algorithm, each GEMM's shape and
        count, buffers and times (what ``--explain`` prints).  None (the default) records
        nothing.
    db : ndarray, shape (FN,), or None
        Gradient with respect to b (None when b is None).

    Notes
    -----
    Computes in the float dtype numpy promotion gives for x, W and b (integers count
    as float32): float32 data with float32 weights stays float32.  Extra memory is a
    few item buffers per worker thread (about ``3 * tile_bytes`` each, whatever the
    kernel's and the image's size), not the column matrix.  Results do not depend on the
    number of threads (:func:`set_num_threads`); across ``tile_bytes`` they agree to
    float rounding.
    """

    def __init__(
        self,
        W: NDArray[np.generic],
        b: Optional[NDArray[np.generic]] = None,
        stride: object = 1,
        pad: PadSpec = 0,
        *,
        dilation: object = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        tile_bytes: int = DEFAULT_TILE_BYTES,
        algorithm: str = "auto",
    ) -> None:
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.dilation = dilation
        self.groups = groups
        self.padding_mode = padding_mode
        self.tile_bytes = tile_bytes
        self.algorithm = algorithm
        self.progress: Optional[Callable[[int, int], None]] = None
        self.choice: Optional[Choice] = None
        self.trace: Optional[Trace] = None
        self._choice_cache: Optional[tuple[object, Choice]] = None
        self.x: Optional[NDArray[np.generic]] = None
        self.dW: Optional[NDArray[np.floating]] = None
        self.db: Optional[NDArray[np.floating]] = None
        self._check_params()

    def _check_params(self) -> tuple[NDArray[np.generic], Optional[NDArray[np.generic]]]:
        W = np.asarray(self.W)
        if W.ndim != 4:
            raise ShapeError(f"W must be 4-D (FN, C/groups, FH, FW), got shape {W.shape}")
        b = None if self.b is None else np.asarray(self.b)
        if b is not None and b.shape != (W.shape[0],):
            raise ShapeError(f"b must have shape ({W.shape[0]},) to match W's {W.shape[0]} filters, got {b.shape}")
        check_layer_args(self.stride, self.pad, self.dilation, self.groups, self.padding_mode)
        if isinstance(self.tile_bytes, bool) or not isinstance(self.tile_bytes, int) or self.tile_bytes < 1:
            raise ParameterError(f"tile_bytes must be an int >= 1, got {self.tile_bytes!r}")
        if self.algorithm not in ALGORITHMS:
            raise ParameterError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        return W, b

    def geometry(self, x_shape: tuple[int, ...]) -> ConvGeometry:
        """Checked geometry of this layer for an input of shape ``x_shape`` (N, C, H, W)."""
        W, _ = self._check_params()
        return plan_geometry(
            tuple(x_shape), W.shape, self.stride, self.pad, self.dilation, self.groups, self.padding_mode
        )

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(N, FN, OH, OW) for an input of shape (N, C, H, W)."""
        return self.geometry(x_shape).output_shape

    def work_bytes(self, x_shape: tuple[int, ...], dtype: Optional[np.dtype] = None, *, backward: bool = False) -> int:
        """About how many bytes of work buffers a forward (and backward) of an input of ``x_shape`` allocates.

        The engine's buffers are a few tiles per worker thread whatever the image and
        kernel (:mod:`convcli.engine.tiles`), plus the weights in the compute dtype; the
        result itself (and x, dout, dx) are not counted.  The memory guard
        (:mod:`convcli.engine.memory`) adds this to the result's size.
        """
        W, b = self._check_params()
        geom = self.geometry(x_shape)
        dtype = np.dtype(dtype) if dtype is not None else compute_dtype(np.empty(0, np.float32), W, b)
        threads = get_num_threads()
        weights = int(np.prod(W.shape)) * dtype.itemsize * 2
        per_worker = plan_tiles(geom, dtype.itemsize, self.tile_bytes).buffer_elements(backward) * dtype.itemsize
        if self.algorithm != "im2col" and geom.channels_per_group == 1:  # separable or banded may run
            # their windows, bands and banded matrices: a few tiles, or a few copies of a small image
            image = (geom.channels * geom.padded_hw[0] * geom.padded_hw[1] + geom.filters * geom.out_h * geom.out_w)
            per_worker = max(per_worker, min(8 * self.tile_bytes, 8 * image * dtype.itemsize))
        return weights + threads * per_worker

    def plan(self, x_shape: tuple[int, ...], dtype: np.dtype) -> TilePlan:
        """The tile plan a forward of an input of shape ``x_shape`` in ``dtype`` follows."""
        return plan_tiles(self.geometry(x_shape), np.dtype(dtype).itemsize, self.tile_bytes)

    def _setup(
        self, x: NDArray[np.generic], *, direct: bool = False
    ) -> tuple[TilePlan, np.dtype, NDArray[np.floating], Optional[NDArray[np.floating]]]:
        """Checked geometry, compute dtype, plan (a forward's may multiply depthwise taps in place), W and b."""
        W, b = self._check_params()
        dtype = compute_dtype(x, W, b)
        plan = plan_tiles(
            plan_geometry(x.shape, W.shape, self.stride, self.pad, self.dilation, self.groups, self.padding_mode),
            dtype.itemsize,
            self.tile_bytes,
            direct=direct,
        )
        return plan, dtype, W.astype(dtype, copy=False), None if b is None else b.astype(dtype, copy=False)

    def forward(self, x: NDArray[np.generic]) -> NDArray[np.floating]:
        """Convolve a batch.

        Parameters
        ----------
        x : ndarray, shape (N, C, H, W)

        Returns
        -------
        out : ndarray, shape (N, FN, OH, OW)
            ``out[n, f, oh, ow] = b[f] + sum_{c,i,j} W[f, c, i, j] *
            x_padded[n, g*C/groups + c, oh*sh + i*dh, ow*sw + j*dw]`` where g is f's
            group; ``OH = floor((H + top + bottom - dh*(FH-1) - 1) / sh) + 1``.
        """
        out = self._forward(x, None)
        self.x = np.asarray(x)
        return out

    def forward_rows(self, x: NDArray[np.generic], row0: int, row1: int) -> NDArray[np.floating]:
        """Output rows ``row0:row1`` of :meth:`forward`, computed alone (for results too large to hold whole).

        Each row equals the same row of ``forward(x)`` (the padding and context are the
        whole image's).  Inference only: it leaves nothing for :meth:`backward`.

        Parameters
        ----------
        x : ndarray, shape (N, C, H, W)
        row0, row1 : int
            ``0 <= row0 < row1 <= OH``.

        Returns
        -------
        ndarray, shape (N, FN, row1 - row0, OW)
        """
        return self._forward(x, (row0, row1))

    def _forward(self, x: NDArray[np.generic], rows: Optional[tuple[int, int]]) -> NDArray[np.floating]:
        x = np.asarray(x)
        if x.ndim != 4:
            raise ShapeError(f"x must be 4-D (N, C, H, W), got {x.ndim}-D shape {x.shape}")
        plan, dtype, w, bias = self._setup(x, direct=True)
        if rows is not None and not (0 <= rows[0] < rows[1] <= plan.geom.out_h):
            raise ParameterError(f"rows must satisfy 0 <= row0 < row1 <= OH = {plan.geom.out_h}, got {rows}")
        # the choice (an SVD for separable kernels) is kept for the next call with the same W, dtype and
        # geometry: a picture computed a band of rows at a time asks for it once per band
        trace = self.trace
        with tracing(trace):
            if trace is not None:
                trace.geometry, trace.dtype, trace.plan = plan.geom, dtype, plan
            with _step(trace, "choose the algorithm"):
                choice = self._choose(plan.geom, w, dtype, x.dtype)
            with _step(trace, f"forward ({choice.algorithm})", choice.reason):
                if choice.constants is not None:
                    out = forward_running_sum(x, plan.geom, choice.constants, bias, dtype, self.tile_bytes,
                                              self.progress, rows)
                elif choice.factors is not None:
                    out = forward_separable(x, plan.geom, choice.factors, bias, dtype, self.tile_bytes, self.progress,
                                            rows)
                elif choice.algorithm == "banded":
                    out = forward_banded(x, plan.geom, w, bias, dtype, self.tile_bytes, self.progress, rows)
                else:
                    out = forward_im2col(x, plan, plan.weights(w), bias, dtype, rows=rows, progress=self.progress)
                if trace is not None:
                    trace.choice = choice
                    trace.result(out)
        self.choice = choice
        return out

    def _choose(self, geom: ConvGeometry, w: NDArray[np.floating], dtype: np.dtype, samples: np.dtype) -> Choice:
        """:func:`choose_algorithm`, kept for the next call with the same W, dtypes and geometry.

        A picture computed a band of rows at a time asks for it once per band (an SVD for
        separable kernels).
        """
        key = (geom, dtype.str, samples.str, self.algorithm,
               hashlib.blake2b(np.ascontiguousarray(w).tobytes()).digest())
        if self._choice_cache is not None and self._choice_cache[0] == key:
            return self._choice_cache[1]
        choice = choose_algorithm(geom, self.W, dtype, self.algorithm, samples)
        self._choice_cache = (key, choice)
        return choice

    def backward(self, dout: NDArray[np.generic]) -> NDArray[np.floating]:
        """Back-propagate ``dout`` through the last :meth:`forward`.

        Parameters
        ----------
        dout : ndarray, shape (N, FN, OH, OW)
            Gradient of the loss with respect to the forward output.

        Returns
        -------
        dx : ndarray, shape (N, C, H, W)
            Gradient with respect to the input.  Also sets ``self.dW`` (W's shape and
            dtype) and ``self.db`` (b's shape and dtype, or None without a bias).

        Notes
        -----
        Large stride-1 kernels on one channel per filter run as banded matrices
        (:func:`~convcli.engine.banded.backward_banded`; not when ``algorithm`` is
        "im2col", which keeps both passes on im2col); otherwise stride 1 with zero
        padding computes dx as a forward correlation of dout with the flipped kernel
        (:func:`~convcli.engine.backward.backward_by_correlation`), and any other geometry
        the book's way, with col2im (:func:`~convcli.engine.backward.backward_by_col2im`).
        """
        if self.x is None:
            raise ShapeError("backward needs a forward pass first: call forward(x) before backward(dout)")
        x = self.x
        W, b = self._check_params()
        dout = np.asarray(dout)
        plan, dtype, w, _ = self._setup(x)
        geom = plan.geom
        if dout.shape != geom.output_shape:
            raise ShapeError(
                f"dout must have the forward output's shape {geom.output_shape}, got {dout.shape}"
            )
        pads = correlation_pads(geom)
        banded = self.algorithm == "banded" or (self.algorithm != "im2col" and banded_applies(geom))
        method = "banded" if geom.stride == (1, 1) and banded else "correlation" if pads is not None else "col2im"
        trace = self.trace
        with tracing(trace), _step(trace, f"backward ({method})", BACKWARD_WHY[method]):
            if method == "banded":
                dx, dW = backward_banded(x, dout, geom, w, dtype, self.tile_bytes)
            elif pads is not None:
                dx, dW = backward_by_correlation(x, dout, geom, w, pads, dtype, self.tile_bytes)
            else:
                dx, dW = backward_by_col2im(x, dout, plan, plan.weights(w), dtype)
            if trace is not None:
                trace.backward = method
                trace.geometry, trace.dtype = geom, dtype
                trace.result(dx, dW)
        self.dW = dW.astype(_w_dtype(W, dtype), copy=False)
        self.db = _bias_grad(dout, b, dtype)
        return dx


def _step(trace: Optional[Trace], name: str, detail: str = "") -> AbstractContextManager[object]:
    """``trace.step(name, detail)``, or nothing when there is no trace."""
    return nullcontext() if trace is None else trace.step(name, detail)


def _w_dtype(W: NDArray[np.generic], dtype: np.dtype) -> np.dtype:
    return float_dtype(W.dtype) if np.issubdtype(W.dtype, np.floating) else dtype


def _bias_grad(
    dout: NDArray[np.generic], b: Optional[NDArray[np.generic]], dtype: np.dtype
) -> Optional[NDArray[np.floating]]:
    if b is None:
        return None
    db = dout.sum(axis=(0, 2, 3), dtype=dtype)
    return db.astype(float_dtype(b.dtype) if np.issubdtype(b.dtype, np.floating) else dtype, copy=False)


def conv2d(
    x: NDArray[np.generic],
    W: NDArray[np.generic],
    b: Optional[NDArray[np.generic]] = None,
    stride: object = 1,
    pad: PadSpec = 0,
    *,
    dilation: object = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
) -> NDArray[np.floating]:
    """Functional form: ``Convolution(W, b, stride, pad, ...).forward(x)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    W : ndarray, shape (FN, C // groups, FH, FW)
    b : ndarray, shape (FN,), or None
    stride, pad, dilation, groups, padding_mode, algorithm
        As :class:`Convolution` takes them.

    Returns
    -------
    ndarray, shape (N, FN, OH, OW)
        See :meth:`Convolution.forward`.
    """
    layer = Convolution(
        W, b, stride, pad, dilation=dilation, groups=groups, padding_mode=padding_mode, algorithm=algorithm
    )
    return layer.forward(x)
