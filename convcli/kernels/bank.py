"""Kernels + options -> a layer: the weights, bias and groups of one :class:`~convcli.engine.layer.Convolution`.

:func:`filter_bank` stacks parsed :class:`~convcli.kernels.kernel.Kernel` objects: M 2-D
kernels become a depthwise bank (groups = C), 4-D layer kernels are concatenated along FN.
:class:`LayerOptions` holds the options ``apply`` and ``grad`` share, and :func:`build_layer`
turns kernels and those options into the :class:`~convcli.engine.layer.Convolution` for an
input of C channels, so the same options always describe the same layer.  Bias handling
lives here, all of it: :func:`parse_bias` reads a bias given as text or a ``.npy`` file,
:func:`expand_bias` spreads it over the layer's filters.

Neighbours: the kernel type and the zero-sum test that ``normalize`` uses are
:mod:`convcli.kernels.kernel`; the way back, from the layer's ``dW`` to the kernels as
given (dK), is :mod:`convcli.kernels.gradient`; the engine that runs the layer is
:mod:`convcli.engine`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.dtypes import float_dtype
from ..engine.geometry import PadSpec
from ..engine.layer import Convolution
from ..errors import InputFileError, KernelSpecError, ParameterError, ShapeError
from .kernel import FloatArray, Kernel, filter_sums, is_zero_sum

__all__ = [
    "LayerOptions", "LayerWeights", "build_layer", "check_range", "expand_bias", "filter_bank", "kernel_stack",
    "layer_from_weights", "layer_weights", "parse_bias", "working_dtype",
]


# ---------------------------------------------------------------- the filter bank


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
    """Stack kernels into the weights of one :class:`~convcli.engine.layer.Convolution`.

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


# ---------------------------------------------------------------- the layer


@dataclass
class LayerOptions:
    """The layer ``apply`` and ``grad`` build from kernels: the same options give the same layer.

    Attributes
    ----------
    stride, dilation : int or (h, w)
    pad : int, (h, w), "same" or "valid"
    groups : int or None
        None: depthwise for 2-D kernels, 1 for layers.
    padding_mode : str
    flip : bool
        Rotate kernels 180° (true convolution instead of cross-correlation).
    normalize : bool
        Divide each kernel by its sum (left alone when the sum is 0).
    dtype : str or None
        "float32" or "float64"; None keeps a float input's dtype (others become float32).
    bias : ndarray, shape (), (M,) or (FN,), or None
        Replaces any bias a kernel file carries.  A scalar applies to every map; M
        values (one per 2-D kernel) repeat over the input channels; one value per
        4-D layer kernel applies to each of its filters; FN values, one per map.
    """

    stride: object = 1
    pad: PadSpec = "same"
    dilation: object = 1
    groups: Optional[int] = None
    padding_mode: str = "zeros"
    flip: bool = False
    normalize: bool = False
    dtype: Optional[str] = None
    bias: Optional[NDArray[np.floating]] = None


def working_dtype(data: NDArray[np.generic], requested: Optional[str]) -> np.dtype:
    """The dtype to compute in: ``requested``, else the input's float dtype, else float32."""
    return np.dtype(requested) if requested is not None else float_dtype(data.dtype)


@dataclass
class LayerWeights:
    """A layer's parameters in float64, before they are cast to the compute dtype.

    Attributes
    ----------
    W : ndarray, shape (FN, C/groups, FH, FW), float64
        After flip and normalize, as the layer runs them.
    b : ndarray, shape (FN,), float64, or None
    groups : int
    """

    W: FloatArray
    b: Optional[NDArray[np.floating]]
    groups: int


def layer_weights(kernels: Sequence[Kernel], channels: int, options: LayerOptions) -> LayerWeights:
    """The float64 weights, bias and groups the kernels and options give a ``channels``-channel input.

    See :func:`convcli.kernels.bank.filter_bank`; ``options.bias``, when given, replaces the
    kernels' file biases (:func:`expand_bias`).
    """
    weights, file_bias, groups = filter_bank(
        kernels, channels, groups=options.groups, flip=options.flip, normalize=options.normalize
    )
    bias: Optional[NDArray[np.floating]] = file_bias
    if options.bias is not None:
        per_kernel = [k.filters for k in kernels] if kernels[0].is_layer else None
        bias = expand_bias(options.bias, weights.shape[0], len(kernels), channels, per_kernel=per_kernel)
    return LayerWeights(weights, bias, groups)


def check_range(weights: LayerWeights, dtype: np.dtype) -> None:
    """Refuse weights whose filters would overflow ``dtype``: taps adding up (in magnitude) past its largest float.

    A filter's output on values of magnitude at most 1 (an image) is at most the sum of its
    taps' magnitudes plus its bias; past ``np.finfo(dtype).max`` the result is inf or NaN
    everywhere (``1e308`` is finite in float64, inf in float32).

    Raises
    ------
    KernelSpecError
        Naming the filter, its size and the dtype's limit; ``--dtype float64`` is offered
        when the filter fits there.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return
    limit = float(np.finfo(dtype).max)
    with np.errstate(over="ignore", invalid="ignore"):
        flat = np.abs(np.asarray(weights.W, dtype=np.float64)).reshape(len(weights.W), -1)
        size = flat.sum(axis=1)
        if weights.b is not None:
            size = size + np.abs(np.asarray(weights.b, dtype=np.float64))
    bad = np.flatnonzero(~(size <= limit))
    if not bad.size:
        return
    first = int(bad[0])
    worst = float(flat[first].max())
    fits64 = bool(size[first] <= float(np.finfo(np.float64).max))
    advice = "use --dtype float64, or scale the kernel down" if fits64 and dtype != np.float64 else "scale it down"
    raise KernelSpecError(
        f"kernel too large for {dtype}: filter {first}'s taps (up to {worst:.3g}) add up to "
        f"{float(size[first]):.3g}, more than {dtype} holds ({limit:.3g}), so its output would be inf or NaN; {advice}"
    )


def layer_from_weights(weights: LayerWeights, options: LayerOptions, dtype: np.dtype) -> Convolution:
    """The Convolution of ``weights`` cast to ``dtype``, with the options' geometry.

    Raises
    ------
    KernelSpecError
        A filter too large for ``dtype`` (:func:`check_range`).
    """
    check_range(weights, dtype)
    return Convolution(
        weights.W.astype(dtype),
        None if weights.b is None else np.asarray(weights.b, dtype=dtype),
        options.stride,
        options.pad,
        dilation=options.dilation,
        groups=weights.groups,
        padding_mode=options.padding_mode,
    )


def build_layer(kernels: Sequence[Kernel], channels: int, options: LayerOptions, dtype: np.dtype) -> Convolution:
    """Build the Convolution the kernels and options describe for a ``channels``-channel input.

    Returns
    -------
    Convolution
        With W of shape (FN, C/groups, FH, FW) in ``dtype``: (C*M, 1, FH, FW) and
        groups=C for M 2-D kernels (output channel c*M + m).
    """
    return layer_from_weights(layer_weights(kernels, channels, options), options, dtype)


def expand_bias(
    bias: NDArray[np.floating],
    n_filters: int,
    n_kernels: int,
    channels: int,
    *,
    per_kernel: Optional[Sequence[int]] = None,
) -> NDArray[np.floating]:
    """Bias of shape (FN,) from a scalar, one value per kernel, or FN values.

    Parameters
    ----------
    bias : ndarray, any shape
        The values, flattened.
    n_filters : int
        FN, the layer's output maps.
    n_kernels : int
        How many kernels (``-k``) make the bank.
    channels : int
        Input channels C.
    per_kernel : sequence of int, optional
        For 4-D layer kernels, the filters each one contributes (they sum to FN): one
        value per kernel is repeated over that kernel's filters.  None for M 2-D
        kernels, where FN = C*M and value m goes to every output map c*M + m.

    Returns
    -------
    ndarray, shape (FN,), float64
    """
    values = np.asarray(bias, dtype=np.float64).ravel()
    if values.size == 1:
        return np.full(n_filters, values[0])
    if values.size == n_filters:
        return values
    if values.size == n_kernels:
        if per_kernel is not None:
            return np.repeat(values, list(per_kernel))  # kernel k's filters all get value k
        if n_filters == n_kernels * channels:
            return np.tile(values, channels)  # output channel c*M + m gets value m
    raise ShapeError(
        f"--bias has {values.size} values; expected 1, one per kernel ({n_kernels}) or one per output map ({n_filters})"
    )


def parse_bias(text: str, name: str = "--bias") -> NDArray[np.float64]:
    """A bias given as text: a number, a comma-separated list ('0.1,0.2'), a .npy file or '-'.

    Numbers are tried first, so a file is read when the text ends in .npy or is no list of
    numbers; '-' reads .npy bytes from standard input (through :mod:`convcli.io`, with
    ``allow_pickle=False``).  :func:`expand_bias` then fits the values to a layer.

    Parameters
    ----------
    text : str
        The bias as the user wrote it.
    name : str
        How messages name it.

    Returns
    -------
    ndarray, shape (K,), float64
        The values, flattened (a file of any shape); K >= 1, all finite.

    Raises
    ------
    ParameterError
        Text that is neither numbers nor a file, a file of non-numeric values or no values,
        NaN or inf.
    InputFileError
        A file that is missing or cannot be read as ``.npy``.
    """
    from ..errors import quote
    from ..io.arrays import load_npy
    from ..io.inputs import STDIN_NAME
    from ..io.streams import read_source

    usage = "a number, a comma-separated list, a .npy file or '-' (.npy on standard input)"
    source = text.strip()
    values: Any = None
    if source != "-" and not source.lower().endswith(".npy"):
        try:
            values = np.array([float(v) for v in source.replace(";", ",").split(",")], dtype=np.float64)
        except ValueError:
            if not os.path.exists(source) or os.path.isdir(source):  # a device or FIFO: the reader refuses it
                raise ParameterError(f"{name} must be {usage}, got {quote(text)}") from None
    if values is None:
        if source != "-" and not os.path.exists(source):
            raise InputFileError(f"{name} file {source!r} not found; expected {usage}")
        where = f"{name} from standard input" if source == "-" else f"{name} file {source!r}"
        data = read_source(source, role="array", what=f"{name} file")  # bounded; devices refused
        array = load_npy(data, STDIN_NAME if source == "-" else source)
        if array.dtype.kind not in "biuf":
            raise ParameterError(f"{where} holds {array.dtype} values; expected real numbers")
        if array.size == 0:
            raise ParameterError(f"{where} is empty (shape {array.shape}); expected at least one value")
        values = array.astype(np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ParameterError(f"{name} values must be finite (no nan or inf), got {quote(text)}")
    return values
