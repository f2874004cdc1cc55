"""The kernel type and the one zero-sum test: what every stage knows about a kernel.

:class:`Kernel` is one parsed kernel (weights, an optional bias, a label, and for a kernel
written in ImageMagick's language its origin and which positions are taps);
:func:`check_weights` and :func:`check_bias` are the checks every kernel source goes
through.  :func:`is_zero_sum` is convcli's one test of a zero-sum filter: ``normalize``
leaves such a filter alone (:func:`convcli.kernels.bank.filter_bank`), the default PNG
display offsets its output (:func:`convcli.io.display.default_display`), and the kernel
gradient skips the normalisation's chain rule for it
(:func:`convcli.kernels.gradient.kernel_gradient`).  :func:`kernel_sum_sign` tells from
the kernels' sums how their output is best shown.

Neighbours: the named kernels are :mod:`convcli.kernels.builtins`, the spec parser (what
``-k`` reads) :mod:`convcli.kernels.spec`, kernels + options -> a layer
:mod:`convcli.kernels.bank`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import KernelSpecError

#: A float64 array: what kernels are stored as.
FloatArray = NDArray[np.float64]

__all__ = [
    "ZERO_SUM_RTOL", "FloatArray", "Kernel", "check_bias", "check_weights", "filter_sums", "is_zero_sum",
    "kernel_sum_sign", "zero_sum_filters",
]


# ---------------------------------------------------------------- kernel values


def _check_numeric(arr: np.ndarray, where: str, what: str = "values") -> None:
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise KernelSpecError(f"{where}: {what} must be real numbers, got dtype {arr.dtype}")


def check_weights(data: Any, where: str) -> FloatArray:
    """Check kernel weights and return them as a read-only float64 copy.

    Parameters
    ----------
    data : array_like, shape (FH, FW) or (FN, C/groups, FH, FW)
        Real numbers; 0-D becomes 1×1 and 1-D of length N one row (1, N).
    where : str
        How messages name the source ("kernel file 'k.npy'", "inline kernel '1,2'").

    Returns
    -------
    ndarray, shape (FH, FW) or (FN, C/groups, FH, FW), float64, read-only

    Raises
    ------
    KernelSpecError
        Non-numeric values, another rank (3-D...), an empty kernel, nan or inf.
    """
    arr = np.asarray(data)
    _check_numeric(arr, where)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim not in (2, 4):
        raise KernelSpecError(
            f"{where}: a {arr.ndim}-D array of shape {arr.shape} is not a kernel; expected 2-D (FH, FW), one kernel "
            "applied to every channel, or 4-D (FN, C/groups, FH, FW), a layer that mixes channels"
        )
    if arr.size == 0:
        raise KernelSpecError(f"{where}: the kernel is empty (shape {arr.shape})")
    out = np.array(arr, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise KernelSpecError(
            f"{where}: the kernel holds {int(bad.sum())} non-finite value(s) (nan or inf), the first at index {first}"
        )
    out.setflags(write=False)
    return out


def check_bias(data: Any, weights: FloatArray, where: str) -> FloatArray:
    """Check a bias against its weights and return it as a read-only float64 copy.

    Parameters
    ----------
    data : array_like, shape (FN,), or a scalar
        One value per filter; a 2-D kernel is one filter, so one number.
    weights : ndarray, shape (FH, FW) or (FN, C/groups, FH, FW)
        The checked weights (see :func:`check_weights`).
    where : str
        How messages name the source.

    Returns
    -------
    ndarray, shape (FN,), float64, read-only

    Raises
    ------
    KernelSpecError
        Non-numeric values, a shape other than (FN,), nan or inf.
    """
    arr = np.asarray(data)
    _check_numeric(arr, where, "bias values")
    filters = 1 if weights.ndim == 2 else weights.shape[0]
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.shape != (filters,):
        if weights.ndim == 2:
            raise KernelSpecError(
                f"{where}: a 2-D kernel is one filter, so its bias b must be one number, got shape {arr.shape}"
            )
        raise KernelSpecError(
            f"{where}: bias b must have shape ({filters},), one per filter of W {weights.shape}, got {arr.shape}"
        )
    out = np.array(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise KernelSpecError(f"{where}: bias b holds non-finite values (nan or inf)")
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Kernel:
    """One parsed kernel: weights, an optional bias, and a label for file names.

    Parameters
    ----------
    weights : ndarray, shape (FH, FW) or (FN, C/groups, FH, FW)
        A 2-D kernel (applied to every channel on its own) or a 4-D layer.  Stored
        as a read-only float64 copy; 0-D and 1-D input become (1, 1) and (1, N).
    bias : ndarray, shape (FN,), or None
        Only kernel files carry a bias; for a 2-D kernel FN is 1.
    label : str
        Short, file-name-safe name used in output suffixes ("sobel-x", "gaussian-2",
        "inline", a file's stem).

    origin : (int, int) or None
        2-D kernels only: (row, column) of the tap that lies over the output pixel
        (ImageMagick's ``+X+Y``, given as (Y, X)).  None: where ``pad="same"`` puts it,
        ``((FH-1)//2, (FW-1)//2)`` of the kernel as the layer runs it (so an even kernel
        under ``flip`` keeps PyTorch's padding).  :mod:`convcli.kernels.frame` places
        kernels by their origins.
    taps : ndarray of bool, shape (FH, FW), or None
        2-D kernels only: False where a position is not part of the kernel (ImageMagick's
        ``nan`` or ``-``; its weight is 0 and it has no gradient).  None: every position.

    Raises
    ------
    KernelSpecError
        For a 3-D (or other unsupported) shape, an empty kernel, nan/inf, a bias that
        does not match the filters, or an origin or taps that do not fit a 2-D kernel.

    Notes
    -----
    Equality is identity (``eq=False``): arrays have no single truth value.
    """

    weights: FloatArray
    bias: Optional[FloatArray] = None
    label: str = "kernel"
    origin: Optional[tuple[int, int]] = None
    taps: Optional[NDArray[np.bool_]] = None

    def __post_init__(self) -> None:
        where = f"kernel '{self.label}'"
        weights = check_weights(self.weights, where)
        object.__setattr__(self, "weights", weights)
        if self.bias is not None:
            object.__setattr__(self, "bias", check_bias(self.bias, weights, where))
        if (self.origin is not None or self.taps is not None) and weights.ndim != 2:
            raise KernelSpecError(f"{where}: only a 2-D kernel has an origin or taps, got shape {weights.shape}")
        if self.origin is not None:
            row, col = (int(v) for v in self.origin)
            if not (0 <= row < weights.shape[0] and 0 <= col < weights.shape[1]):
                raise KernelSpecError(
                    f"{where}: origin (row {row}, column {col}) lies outside the {weights.shape[0]}×{weights.shape[1]} "
                    "kernel"
                )
            object.__setattr__(self, "origin", (row, col))
        if self.taps is not None:
            taps = np.array(self.taps, dtype=bool)
            if taps.shape != weights.shape:
                raise KernelSpecError(f"{where}: taps of shape {taps.shape} do not match the weights {weights.shape}")
            if not taps.any():
                raise KernelSpecError(f"{where}: the kernel has no taps")
            if np.any(weights[~taps] != 0):
                raise KernelSpecError(f"{where}: a position outside the taps must weigh 0")
            taps.setflags(write=False)
            object.__setattr__(self, "taps", None if taps.all() else taps)

    @property
    def is_layer(self) -> bool:
        """True for a 4-D layer kernel (FN, C/groups, FH, FW)."""
        return self.weights.ndim == 4

    @property
    def filters(self) -> int:
        """Number of filters: 1 for a 2-D kernel, FN for a layer."""
        return 1 if self.weights.ndim == 2 else int(self.weights.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """Spatial size (FH, FW)."""
        return int(self.weights.shape[-2]), int(self.weights.shape[-1])

    @property
    def tap_mask(self) -> NDArray[np.bool_]:
        """Where the kernel has taps: :attr:`taps`, or all True; the weights' shape."""
        return np.ones(self.weights.shape, dtype=bool) if self.taps is None else self.taps



# ---------------------------------------------------------------- the zero-sum test


#: A filter is zero-sum when ``|sum| <= ZERO_SUM_RTOL * max(1, sum |w|)``: relative to the size of
#: its taps, so the rounding noise of large taps (``log:0.01``, taps ~1e4, sum ~1e-12) counts as 0.
ZERO_SUM_RTOL = 1e-12


def is_zero_sum(total: Any, l1: Any = None) -> Any:
    """True where a filter's sum is zero up to rounding: ``|total| <= ZERO_SUM_RTOL * max(1, l1)``.

    Parameters
    ----------
    total : float or ndarray
        Sums of the filters' taps.
    l1 : float or ndarray, optional
        Sums of the absolute values of the taps (same shape as ``total``); default
        ``|total|``, which makes the test absolute (``|total| <= 1e-12``).

    Returns
    -------
    bool or ndarray of bool
        Elementwise; a NaN sum is not zero.
    """
    total = np.asarray(total, dtype=np.float64)
    size = np.abs(total) if l1 is None else np.asarray(l1, dtype=np.float64)
    result = np.abs(total) <= ZERO_SUM_RTOL * np.maximum(1.0, size)
    return bool(result) if result.ndim == 0 else result


def filter_sums(weights: Any) -> tuple[FloatArray, FloatArray]:
    """Sum and sum of absolute values of each filter, in float64.

    Parameters
    ----------
    weights : ndarray, shape (F, ...)
        One filter per entry of the first axis: a stack of 2-D kernels (M, FH, FW) or a
        layer's weights (FN, C/groups, FH, FW).

    Returns
    -------
    sums, l1 : ndarray, shape (F,), float64
    """
    flat = np.asarray(weights, dtype=np.float64).reshape(len(weights), -1)
    return flat.sum(axis=1), np.abs(flat).sum(axis=1)


def zero_sum_filters(weights: Any) -> NDArray[np.bool_]:
    """:func:`is_zero_sum` of each filter of ``weights``, shape (F, ...): ndarray of bool, shape (F,)."""
    return np.asarray(is_zero_sum(*filter_sums(weights)), dtype=bool).reshape(-1)


def kernel_sum_sign(kernels: Sequence[Kernel], *, normalize: bool = False) -> int:
    """Sign shared by the sums of all filters, to choose a display mapping.

    Parameters
    ----------
    kernels : sequence of Kernel
        A layer kernel counts each of its filters (summed over C, FH, FW).
    normalize : bool
        Whether the bank will be normalised (non-zero sums then become 1).

    Returns
    -------
    int
        +1 when every sum is > 0 (smoothing-like: clip the output), -1 when every
        sum is < 0, 0 when any filter is zero-sum (:func:`is_zero_sum`; sobel,
        laplacian, log) or the signs are mixed (offset the output).
    """
    signs = set()
    for k in kernels:
        sums, l1 = filter_sums(k.weights.reshape(k.filters, -1))
        if np.any(is_zero_sum(sums, l1)):
            return 0
        signs.update({1} if normalize else {int(s) for s in np.sign(sums)})
    return signs.pop() if len(signs) == 1 else 0
