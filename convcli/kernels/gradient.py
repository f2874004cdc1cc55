"""The inverse of the bank: the gradient for the kernels as given (dK), from the layer's ``dW``.

:func:`convcli.kernels.bank.filter_bank` turns kernels into a layer's weights
(scale or normalize, frame, flip, stack); :func:`kernel_gradient` takes the layer's weight
gradient back through those steps by the chain rule.  :func:`gradient_layout` says where
each kernel's taps sit in dK, which the numerical check (:mod:`convcli.commands.gradcheck`)
uses to perturb them one at a time.

Neighbours: the forward mapping is :mod:`convcli.kernels.bank`; where kernels sit in the
layer, :mod:`convcli.kernels.frame`; the scale's chain rule, :mod:`convcli.kernels.scale`;
the zero-sum test that decides whether ``normalize`` touched a kernel,
:mod:`convcli.kernels.kernel`; the backward pass that produces ``dW``,
:mod:`convcli.commands.grad`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from .bank import LayerOptions, kernel_stack
from .frame import crop, gradient_offsets, gradient_shape, kernel_frame
from .kernel import Kernel, is_zero_sum, zero_sum_filters
from .scale import scale_gradient, smooth_taps

__all__ = ["GradientLayout", "gradient_layout", "kernel_gradient", "smooth_entries"]


@dataclass(frozen=True)
class GradientLayout:
    """Where each 2-D kernel's taps sit in dK.

    Attributes
    ----------
    shape : (int, int)
        (FH, FW) of each kernel's entry: the kernels' own size when they share one, else
        their common frame's (:func:`convcli.kernels.frame.gradient_shape`).
    offsets : tuple of (int, int)
        The top-left of kernel m in its entry.
    """

    shape: tuple[int, int]
    offsets: tuple[tuple[int, int], ...]

    def locate(self, kernels: Sequence[Kernel], flat_index: int) -> Optional[tuple[int, int]]:
        """(kernel m, flat index into its weights) of flat entry ``flat_index`` of dK, or None where it is no tap."""
        fh, fw = self.shape
        m, rest = divmod(int(flat_index), fh * fw)
        row, col = divmod(rest, fw)
        (r0, c0), kernel = self.offsets[m], kernels[m]
        r, c = row - r0, col - c0
        if not (0 <= r < kernel.size[0] and 0 <= c < kernel.size[1]) or not kernel.tap_mask[r, c]:
            return None
        return m, r * kernel.size[1] + c


def gradient_layout(kernels: Sequence[Kernel], flip: bool = False) -> GradientLayout:
    """The :class:`GradientLayout` of 2-D ``kernels`` (flip moves the origins of kernels without one)."""
    frame = kernel_frame(kernels, flip)
    return GradientLayout(gradient_shape(kernels, frame), gradient_offsets(kernels, frame))


def _unscale(g: NDArray[np.floating], kernel: Kernel, options: LayerOptions) -> NDArray[np.floating]:
    """One 2-D kernel's gradient taken back through ``scale`` or ``normalize``; holes get 0."""
    raw = np.asarray(kernel.weights, dtype=np.float64)
    if options.scale is not None:
        g = scale_gradient(raw, options.scale, g)
    elif options.normalize and not is_zero_sum(float(raw.sum()), float(np.abs(raw).sum())):
        total = float(raw.sum())
        g = (g - np.sum(g * (raw / total))) / total
    return np.where(kernel.tap_mask, g, 0.0)


def kernel_gradient(
    dW: NDArray[np.floating], kernels: Sequence[Kernel], channels: int, options: LayerOptions
) -> Optional[NDArray[np.floating]]:
    """Gradient with respect to the kernels as the user gave them, from the layer's ``dW``.

    The layer runs ``W = stack(flip(frame(scale(kernels))))`` (``normalize`` in place of
    ``scale``); the chain rule back through it:

    * stack: M 2-D kernels become the depthwise weights (C*M, 1, FH, FW), filter
      ``c*M + m`` being kernel m on channel c, so ``dK[m] = sum_c dW[c*M + m, 0]``.
      Layer kernels are concatenated along FN: dK is dW, cut nowhere.
    * flip (true convolution): ``dK`` is flipped back (rotated 180°).
    * frame: each kernel's part of the common frame is cut out
      (:func:`convcli.kernels.frame.crop`).
    * scale: :func:`convcli.kernels.scale.scale_gradient`.
    * normalize: each filter is ``w = k / s`` with ``s = sum(k)``, so
      ``dL/dk = (g - <g, w>) / s`` for its gradient ``g``; a zero-sum kernel
      (:func:`convcli.kernels.kernel.is_zero_sum`, the test normalize uses) is not normalized and
      keeps ``g``.
    * holes (ImageMagick's ``nan`` taps) are no weights: 0.

    Parameters
    ----------
    dW : ndarray, shape (FN, C/groups, FH, FW)
        Gradient with respect to the layer's weights.
    kernels : sequence of Kernel
        All 2-D or all 4-D, as given to :func:`convcli.kernels.bank.filter_bank`.
    channels : int
        Input channels C.
    options : LayerOptions
        Its ``flip``, ``normalize`` and ``scale``.

    Returns
    -------
    ndarray or None
        2-D kernels: shape (FH, FW) for one kernel, (M, FH, FW) for M of one size; M
        kernels of different sizes give (M, FH', FW') in their common frame
        (:func:`gradient_layout`), 0 outside each kernel.  Layer kernels: (FN, C/groups,
        FH, FW) with ``flip`` or ``normalize``, else None (dW is already the gradient with
        respect to them).  dW's dtype.
    """
    layers = any(k.is_layer for k in kernels)
    if layers:
        if not (options.flip or options.normalize):
            return None
        raws = kernel_stack(kernels)
        zero = zero_sum_filters(raws)
        result = np.empty_like(dW)
        for index, raw in enumerate(raws):
            g = dW[index][..., ::-1, ::-1] if options.flip else dW[index]
            if options.normalize and not zero[index]:
                total = float(raw.sum())
                g = (g - np.sum(g * (raw / total))) / total
            result[index] = g
        return result
    fh, fw = dW.shape[2:]
    grads = dW.reshape(channels, len(kernels), fh, fw).sum(axis=0)  # filter c*M + m is kernel m
    if options.flip:
        grads = grads[..., ::-1, ::-1]
    frame = kernel_frame(kernels, options.flip)
    layout = gradient_layout(kernels, options.flip)
    result = np.zeros((len(kernels), *layout.shape), dtype=dW.dtype)
    for m, kernel in enumerate(kernels):
        g = _unscale(np.asarray(crop(grads[m], frame, m, kernel.size), dtype=np.float64), kernel, options)
        r, c = layout.offsets[m]
        result[m, r:r + kernel.size[0], c:c + kernel.size[1]] = g
    return result[0] if len(kernels) == 1 else result


def smooth_entries(kernels: Sequence[Kernel], options: LayerOptions) -> list[NDArray[np.bool_]]:
    """Per 2-D kernel, where L is differentiable in its taps: all taps but where ``scale`` or ``normalize`` jump.

    ``normalize`` leaves a zero-sum kernel alone but divides any perturbed copy by its
    tiny sum; ``scale`` jumps likewise (:func:`convcli.kernels.scale.smooth_taps`).
    """
    out = []
    for kernel in kernels:
        raw = np.asarray(kernel.weights, dtype=np.float64)
        smooth = kernel.tap_mask.copy()
        if options.scale is not None:
            smooth &= smooth_taps(raw, options.scale)
        elif options.normalize and is_zero_sum(float(raw.sum()), float(np.abs(raw).sum())):
            smooth[:] = False
        out.append(smooth)
    return out
