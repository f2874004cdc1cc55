"""The layer that kernels and options describe: the one ``apply`` and ``grad`` both run.

:class:`LayerOptions` holds the options the two commands share; :func:`build_layer` turns
parsed kernels and those options into a :class:`~convcli.layer.Convolution` for an input of
C channels, so the same options always describe the same layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.dtypes import float_dtype
from ..engine.geometry import PadSpec
from ..engine.layer import Convolution
from ..errors import ShapeError
from .bank import filter_bank
from .builtins import FloatArray, Kernel


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

    See :func:`convcli.bank.filter_bank`; ``options.bias``, when given, replaces the
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


def layer_from_weights(weights: LayerWeights, options: LayerOptions, dtype: np.dtype) -> Convolution:
    """The Convolution of ``weights`` cast to ``dtype``, with the options' geometry."""
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
