"""Kernels + options -> a layer: the weights, bias and groups of one :class:`~convcli.engine.layer.Convolution`.

:func:`filter_bank` stacks parsed :class:`~convcli.kernels.kernel.Kernel` objects: M 2-D
kernels become a depthwise bank (groups = C), placed in one frame by their origins
(:mod:`convcli.kernels.frame`: kernels of different sizes or with an ImageMagick origin are
embedded in a common zero kernel centred on each origin) and scaled by ``--scale``
(:mod:`convcli.kernels.scale`); 4-D layer kernels are concatenated along FN.
:class:`LayerOptions` holds the options ``apply`` and ``grad`` share, and :func:`build_layer`
turns kernels and those options into the :class:`~convcli.engine.layer.Convolution` for an
input of C channels, so the same options always describe the same layer, the bias
spread over the filters by :func:`convcli.kernels.bias.expand_bias`.

Neighbours: the kernel type and the zero-sum test that ``normalize`` uses are
:mod:`convcli.kernels.kernel`; where kernels sit, :mod:`convcli.kernels.frame`; ``--scale``,
:mod:`convcli.kernels.scale`; the way back, from the layer's ``dW`` to the kernels as
given (dK), is :mod:`convcli.kernels.gradient`; the engine that runs the layer is
:mod:`convcli.engine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.dtypes import float_dtype
from ..engine.geometry import PadSpec, parse_padding_mode
from ..engine.layer import Convolution
from ..errors import KernelSpecError, ParameterError, ShapeError
from .bias import expand_bias
from .frame import Frame, embed, kernel_frame, running_origin
from .kernel import FloatArray, Kernel, filter_sums, is_zero_sum
from .scale import KernelScale, scale_kernel

__all__ = [
    "LayerOptions", "LayerWeights", "build_layer", "check_range", "filter_bank", "kernel_stack", "layer_from_weights",
    "layer_weights", "prepared_kernel", "working_dtype",
]


# ---------------------------------------------------------------- the filter bank


def kernel_stack(kernels: Sequence[Kernel]) -> FloatArray:
    """The kernels as given, stacked in float64: one entry per kernel (2-D) or per filter (4-D).

    Returns
    -------
    ndarray
        (M, FH, FW) for M 2-D kernels of one size; the layers concatenated along FN,
        (FN, C/groups, FH, FW), for 4-D kernels.

    Raises
    ------
    KernelSpecError
        2-D kernels of different sizes (their frame is :func:`convcli.kernels.frame.kernel_frame`).
    """
    arrays = [np.asarray(k.weights, dtype=np.float64) for k in kernels]
    if kernels and kernels[0].is_layer:
        return np.concatenate(arrays)
    if len({a.shape for a in arrays}) > 1:
        raise KernelSpecError("kernel_stack: 2-D kernels of different sizes have no common stack; see kernel_frame")
    return np.stack(arrays)


def prepared_kernel(kernel: Kernel, *, flip: bool = False, normalize: bool = False,
                    scale: Optional[KernelScale] = None) -> FloatArray:
    """One 2-D kernel's values after ``scale`` or ``normalize`` (not flipped, not embedded): (FH, FW), float64.

    ``scale`` adds its BLEND at the kernel's running origin
    (:func:`convcli.kernels.frame.running_origin`, which depends on ``flip``).
    """
    values = np.array(kernel.weights, dtype=np.float64)
    if scale is not None:
        return scale_kernel(values, running_origin(kernel, flip), scale)
    if normalize:  # the sum of the kernel as given, before the flip: the one kernel_gradient tests
        total, l1 = float(values.sum()), float(np.abs(values).sum())
        if not is_zero_sum(total, l1):
            values /= total
    return values


def _depthwise(kernels: list[Kernel], channels: int, flip: bool, normalize: bool,
               scale: Optional[KernelScale]) -> tuple[FloatArray, Optional[FloatArray], Frame]:
    """M 2-D kernels as (C*M, 1, FH, FW) in their common frame: filter c*M + m is kernel m."""
    frame = kernel_frame(kernels, flip)
    stack = np.stack([
        embed(prepared_kernel(k, flip=flip, normalize=normalize, scale=scale), frame, m)
        for m, k in enumerate(kernels)
    ])
    if flip:
        stack = stack[..., ::-1, ::-1]
    weights = np.tile(stack, (channels, 1, 1))[:, None]
    bias = None
    if any(k.bias is not None for k in kernels):
        per_kernel = [0.0 if k.bias is None else float(k.bias[0]) for k in kernels]
        bias = np.tile(np.array(per_kernel), channels)
    return weights, bias, frame


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
                flip: bool = False, normalize: bool = False,
                scale: Optional[KernelScale] = None) -> tuple[FloatArray, Optional[FloatArray], int]:
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
        Rotate every kernel 180° (both spatial axes), with its origin: true convolution.
    normalize : bool
        Divide each 2-D kernel (each filter of a layer) by its sum; left alone when
        it is zero-sum (:func:`is_zero_sum`: ``|sum| <= 1e-12 * max(1, sum |w|)``).
        A negative sum flips the signs.
    scale : KernelScale, optional
        ImageMagick's ``convolve:scale`` for each 2-D kernel (:mod:`convcli.kernels.scale`);
        not with ``normalize``, not for layer kernels.

    Returns
    -------
    W : ndarray, shape (FN, C // groups, FH, FW), float64
        M 2-D kernels give ``(C*M, 1, FH, FW)``, depthwise: output channel
        ``c*M + m`` is kernel m on channel c (PyTorch's grouped order).  Kernels of
        different sizes, or with origins ``pad="same"`` would not put over the output
        pixel, are embedded in one frame (:func:`convcli.kernels.frame.kernel_frame`;
        FH, FW are then its sides).  4-D kernels with equal ``(C/groups, FH, FW)`` are
        concatenated along FN.
    b : ndarray, shape (FN,), or None
        The file biases (zeros for kernels without one), None when no kernel has one.
        For 2-D kernels the bias of kernel m is repeated: ``b[c*M + m]``.
    groups : int
        ``channels`` for 2-D kernels, else the given groups.

    Raises
    ------
    KernelSpecError
        No kernels, 2-D and 4-D mixed, 4-D kernels of different (C/groups, FH, FW).
    ShapeError
        ``channels`` not positive, or a layer's ``W.shape[1] * groups != channels``.
    ParameterError
        ``groups`` not a positive integer, not ``channels`` for 2-D kernels, or not
        dividing FN; ``scale`` with ``normalize`` or with layer kernels.
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
    if scale is not None and normalize:
        raise ParameterError("--scale and --normalize both rescale kernels; give one (--scale '!' normalises)")
    if layers:
        if scale is not None:
            raise ParameterError(
                f"--scale applies to 2-D kernels (ImageMagick's), not to layer kernel '{layers[0].label}' "
                f"{layers[0].weights.shape}; use --normalize for a layer"
            )
        weights, bias, groups = _layer(kernels, int(channels), groups)
        weights = np.array(weights, dtype=np.float64)
        if normalize:  # sums of the filters as given, before the flip: the ones kernel_gradient tests
            sums, l1 = filter_sums(weights)
            keep = ~np.asarray(is_zero_sum(sums, l1), dtype=bool).reshape(-1)
            weights[keep] /= sums[keep, None, None, None]
        if flip:
            weights = weights[..., ::-1, ::-1]
        return np.ascontiguousarray(weights), bias, groups
    if groups is not None and groups != channels:
        raise ParameterError(
            f"groups={groups} does not fit 2-D kernels: they filter each of the {channels} channel(s) on its "
            f"own (groups = C = {channels}); leave groups unset or use a 4-D layer kernel"
        )
    weights, bias, _ = _depthwise(kernels, int(channels), flip, normalize, scale)
    return np.ascontiguousarray(weights, dtype=np.float64), bias, int(channels)


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
    padding_mode : str or None
        A padding mode (:func:`convcli.engine.geometry.parse_padding_mode`).  None: by the
        input's kind, which the commands know (:func:`convcli.commands.common.padding_for`:
        replicate for images, zeros for arrays); :func:`layer_from_weights` takes None as
        zeros, the arrays' default.
    flip : bool
        Rotate kernels 180° (true convolution instead of cross-correlation).
    normalize : bool
        Divide each kernel by its sum (left alone when the sum is 0).
    scale : KernelScale or None
        ImageMagick's ``convolve:scale`` for 2-D kernels (:func:`convcli.kernels.scale.parse_scale`).
    dtype : str or None
        "float32" or "float64"; None keeps a float input's dtype (others become float32).
    bias : ndarray, shape (), (M,) or (FN,), or None
        Replaces any bias a kernel file carries.  A scalar applies to every map; M
        values (one per 2-D kernel) repeat over the input channels; one value per
        4-D layer kernel applies to each of its filters; FN values, one per map.
    algorithm : str
        The layer's forward algorithm (:data:`convcli.engine.layer.ALGORITHMS`); "auto"
        means the cheapest for 2-D kernels and im2col for 4-D layer kernels.
    """

    stride: object = 1
    pad: PadSpec = "same"
    dilation: object = 1
    groups: Optional[int] = None
    padding_mode: Optional[str] = None
    flip: bool = False
    normalize: bool = False
    dtype: Optional[str] = None
    bias: Optional[NDArray[np.floating]] = None
    scale: Optional[KernelScale] = None
    algorithm: str = "auto"


def working_dtype(data: NDArray[np.generic], requested: Optional[str]) -> np.dtype:
    """The dtype to compute in: ``requested``, else the input's float dtype, else float32."""
    return np.dtype(requested) if requested is not None else float_dtype(data.dtype)


@dataclass
class LayerWeights:
    """A layer's parameters in float64, before they are cast to the compute dtype.

    Attributes
    ----------
    W : ndarray, shape (FN, C/groups, FH, FW), float64
        After scale or normalize, framing and flip, as the layer runs them.
    b : ndarray, shape (FN,), float64, or None
    groups : int
    layer_kernels : bool
        True when the weights came from 4-D layer kernels (they keep the im2col path under "auto").
    """

    W: FloatArray
    b: Optional[NDArray[np.floating]]
    groups: int
    layer_kernels: bool = False


def layer_weights(kernels: Sequence[Kernel], channels: int, options: LayerOptions) -> LayerWeights:
    """The float64 weights, bias and groups the kernels and options give a ``channels``-channel input.

    See :func:`convcli.kernels.bank.filter_bank`; ``options.bias``, when given, replaces the
    kernels' file biases (:func:`expand_bias`).
    """
    weights, file_bias, groups = filter_bank(
        kernels, channels, groups=options.groups, flip=options.flip, normalize=options.normalize, scale=options.scale
    )
    bias: Optional[NDArray[np.floating]] = file_bias
    if options.bias is not None:
        per_kernel = [k.filters for k in kernels] if kernels[0].is_layer else None
        bias = expand_bias(options.bias, weights.shape[0], len(kernels), channels, per_kernel=per_kernel)
    return LayerWeights(weights, bias, groups, kernels[0].is_layer)


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


def layer_from_weights(
    weights: LayerWeights, options: LayerOptions, dtype: np.dtype, divisor: Optional[float] = None
) -> Convolution:
    """The Convolution of ``weights`` cast to ``dtype``, with the options' geometry and algorithm.

    ``divisor``, when given, builds the layer for integer samples that stand for
    ``samples / divisor`` (8- and 16-bit images): W is divided by it, and a constant
    padding value multiplied, so that the layer maps samples to the same result as the
    values, to float rounding, and the engine converts the samples a tile at a time.

    Raises
    ------
    KernelSpecError
        A filter too large for ``dtype`` (:func:`check_range`).
    """
    check_range(weights, dtype)
    algorithm = "im2col" if weights.layer_kernels and options.algorithm == "auto" else options.algorithm
    w, mode = weights.W, "zeros" if options.padding_mode is None else options.padding_mode
    if divisor is not None:
        w = w / divisor
        parsed = parse_padding_mode(mode)
        if parsed.name == "constant":
            mode = f"constant:{parsed.value * divisor!r}"
    return Convolution(
        w.astype(dtype),
        None if weights.b is None else np.asarray(weights.b, dtype=dtype),
        options.stride,
        options.pad,
        dilation=options.dilation,
        groups=weights.groups,
        padding_mode=mode,
        algorithm=algorithm,
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
