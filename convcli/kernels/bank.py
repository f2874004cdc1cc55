"""Kernels into a layer: the weights, bias and groups of one :class:`~convcli.layer.Convolution`.

:func:`filter_bank` stacks parsed :class:`~convcli.kernels.Kernel` objects: M 2-D kernels
become a depthwise bank (groups = C), 4-D layer kernels are concatenated along FN.
:func:`is_zero_sum` is convcli's one test of a zero-sum filter: ``normalize`` leaves such a
filter alone, the default PNG display offsets its output, and the kernel gradient skips the
normalisation's chain rule for it.  :func:`kernel_sum_sign` tells from the kernels' sums how
their output is best shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import KernelSpecError, ParameterError, ShapeError
from .builtins import FloatArray, Kernel

__all__ = [
    "ZERO_SUM_RTOL", "filter_bank", "filter_sums", "is_zero_sum", "kernel_stack", "kernel_sum_sign", "zero_sum_filters",
]

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


def kernel_stack(kernels: Sequence[Kernel]) -> FloatArray:
    """The kernels as given, stacked in float64: one entry per kernel (2-D) or per filter (4-D).

    Returns
    -------
    ndarray
        (M, FH, FW) for M 2-D kernels; the layers concatenated along FN,
        (FN, C/groups, FH, FW), for 4-D kernels.
    """
    arrays = [np.asarray(k.weights, dtype=np.float64) for k in kernels]
    if kernels and kernels[0].is_layer:
        return np.concatenate(arrays)
    return np.stack(arrays)


def _depthwise(kernels: list[Kernel], channels: int) -> tuple[FloatArray, Optional[FloatArray]]:
    """Stack M same-size 2-D kernels as (C*M, 1, FH, FW): filter c*M + m is kernel m."""
    first = kernels[0]
    for k in kernels[1:]:
        if k.size != first.size:
            raise KernelSpecError(
                f"2-D kernels in one bank must have the same size: '{first.label}' is {first.size[0]}×{first.size[1]} "
                f"but '{k.label}' is {k.size[0]}×{k.size[1]} (give them separately, or widen one, e.g. identity:3)"
            )
    stack = np.stack([k.weights for k in kernels])
    weights = np.tile(stack, (channels, 1, 1))[:, None]
    bias = None
    if any(k.bias is not None for k in kernels):
        per_kernel = [0.0 if k.bias is None else float(k.bias[0]) for k in kernels]
        bias = np.tile(np.array(per_kernel), channels)
    return weights, bias


def _layer(kernels: list[Kernel], channels: int, groups: Optional[int]) -> tuple[
    FloatArray, Optional[FloatArray], int
]:
    """Concatenate 4-D kernels along FN and check them against the input."""
    first = kernels[0]
    for k in kernels[1:]:
        if k.weights.shape[1:] != first.weights.shape[1:]:
            raise KernelSpecError(
                f"layer kernels '{first.label}' {first.weights.shape} and '{k.label}' {k.weights.shape} cannot be "
                f"stacked: they need the same (C/groups, FH, FW), got {first.weights.shape[1:]} and "
                f"{k.weights.shape[1:]}"
            )
    g = 1 if groups is None else groups
    if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
        raise ParameterError(f"groups must be a positive integer, got {groups!r}")
    weights = np.concatenate([k.weights for k in kernels])
    per_group = weights.shape[1]
    if per_group * g != channels:
        raise ShapeError(
            f"layer kernel '{first.label}' of shape {first.weights.shape} takes {per_group} channel(s) per group "
            f"× groups={g} = {per_group * g} input channels, but the input has {channels}"
        )
    if weights.shape[0] % g:
        raise ParameterError(f"groups={g} must divide the number of filters FN={weights.shape[0]}")
    bias = None
    if any(k.bias is not None for k in kernels):
        bias = np.concatenate([np.zeros(k.filters) if k.bias is None else k.bias for k in kernels])
    return weights, bias, int(g)


def filter_bank(kernels: Sequence[Kernel], channels: int, *, groups: Optional[int] = None,
                flip: bool = False, normalize: bool = False) -> tuple[FloatArray, Optional[FloatArray], int]:
    """Stack kernels into the weights of one :class:`~convcli.layer.Convolution`.

    Parameters
    ----------
    kernels : sequence of Kernel
        Either all 2-D or all 4-D.
    channels : int
        Input channels C.
    groups : int, optional
        For 4-D kernels, the layer's groups (default 1); for 2-D kernels only None
        or ``channels``.
    flip : bool
        Rotate every kernel 180° (both spatial axes): true convolution.
    normalize : bool
        Divide each 2-D kernel (each filter of a layer) by its sum; left alone when
        it is zero-sum (:func:`is_zero_sum`: ``|sum| <= 1e-12 * max(1, sum |w|)``).
        A negative sum flips the signs.

    Returns
    -------
    W : ndarray, shape (FN, C // groups, FH, FW), float64
        M 2-D kernels give ``(C*M, 1, FH, FW)``, depthwise: output channel
        ``c*M + m`` is kernel m on channel c (PyTorch's grouped order); the 2-D
        kernels must all have the same size.  4-D kernels with equal
        ``(C/groups, FH, FW)`` are concatenated along FN.
    b : ndarray, shape (FN,), or None
        The file biases (zeros for kernels without one), None when no kernel has one.
        For 2-D kernels the bias of kernel m is repeated: ``b[c*M + m]``.
    groups : int
        ``channels`` for 2-D kernels, else the given groups.

    Raises
    ------
    KernelSpecError
        No kernels, 2-D and 4-D mixed, 2-D kernels of different sizes, 4-D
        kernels of different (C/groups, FH, FW).
    ShapeError
        ``channels`` not positive, or a layer's ``W.shape[1] * groups != channels``.
    ParameterError
        ``groups`` not a positive integer, not ``channels`` for 2-D kernels, or not
        dividing FN.
    """
    kernels = list(kernels)
    if not kernels:
        raise KernelSpecError("no kernel given; expected at least one")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ShapeError(f"channels must be a positive integer, got {channels!r}")
    layers = [k for k in kernels if k.is_layer]
    if layers and len(layers) != len(kernels):
        flat = next(k for k in kernels if not k.is_layer)
        raise KernelSpecError(
            f"cannot mix 2-D kernel '{flat.label}' ({flat.size[0]}×{flat.size[1]}) with layer kernel "
            f"'{layers[0].label}' {layers[0].weights.shape}: a 2-D kernel filters each channel on its own, "
            "a 4-D one mixes channels; use one kind"
        )
    if layers:
        weights, bias, groups = _layer(kernels, int(channels), groups)
    else:
        if groups is not None and groups != channels:
            raise ParameterError(
                f"groups={groups} does not fit 2-D kernels: they filter each of the {channels} channel(s) on its "
                f"own (groups = C = {channels}); leave groups unset or use a 4-D layer kernel"
            )
        weights, bias = _depthwise(kernels, int(channels))
        groups = int(channels)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if normalize:  # sums of the kernels as given, before the flip: the ones kernel_gradient tests
        sums, l1 = filter_sums(weights)
        keep = ~np.asarray(is_zero_sum(sums, l1), dtype=bool).reshape(-1)
        weights[keep] /= sums[keep, None, None, None]
    if flip:
        weights = np.ascontiguousarray(weights[..., ::-1, ::-1])
    return weights, bias, groups


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
