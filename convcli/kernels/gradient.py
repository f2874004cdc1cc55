"""The inverse of the bank: the gradient for the kernels as given (dK), from the layer's ``dW``.

:func:`convcli.kernels.bank.filter_bank` turns kernels into a layer's weights
(stack, flip, normalize); :func:`kernel_gradient` takes the layer's weight gradient back
through those steps by the chain rule.

Neighbours: the forward mapping is :mod:`convcli.kernels.bank`; the zero-sum test that
decides whether ``normalize`` touched a kernel is :mod:`convcli.kernels.kernel`; the
backward pass that produces ``dW`` is :mod:`convcli.commands.grad`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from .bank import LayerOptions, kernel_stack
from .kernel import Kernel, zero_sum_filters

__all__ = ["kernel_gradient"]


def kernel_gradient(
    dW: NDArray[np.floating], kernels: Sequence[Kernel], channels: int, options: LayerOptions
) -> Optional[NDArray[np.floating]]:
    """Gradient with respect to the kernels as the user gave them, from the layer's ``dW``.

    The layer runs ``W = normalize(flip(stack(kernels)))``; the chain rule back through it:

    * stack: M 2-D kernels become the depthwise weights (C*M, 1, FH, FW), filter
      ``c*M + m`` being kernel m on channel c, so ``dK[m] = sum_c dW[c*M + m, 0]``.
      Layer kernels are concatenated along FN: dK is dW, cut nowhere.
    * flip (true convolution): ``dK`` is flipped back (rotated 180°).
    * normalize: each filter is ``w = k / s`` with ``s = sum(k)``, so
      ``dL/dk = (g - <g, w>) / s`` for its gradient ``g``; a zero-sum kernel
      (:func:`convcli.kernels.kernel.is_zero_sum`, the test normalize uses) is not normalized and
      keeps ``g``.

    Parameters
    ----------
    dW : ndarray, shape (FN, C/groups, FH, FW)
        Gradient with respect to the layer's weights.
    kernels : sequence of Kernel
        All 2-D or all 4-D, as given to :func:`convcli.kernels.bank.filter_bank`.
    channels : int
        Input channels C.
    options : LayerOptions
        Its ``flip`` and ``normalize``.

    Returns
    -------
    ndarray or None
        2-D kernels: shape (FH, FW) for one kernel, (M, FH, FW) for M.  Layer
        kernels: (FN, C/groups, FH, FW) with ``flip`` or ``normalize``, else None (dW
        is already the gradient with respect to them).  dW's dtype.
    """
    layers = any(k.is_layer for k in kernels)
    if layers and not (options.flip or options.normalize):
        return None
    fh, fw = dW.shape[2:]
    if layers:
        grads = dW
    else:
        grads = dW.reshape(channels, len(kernels), fh, fw).sum(axis=0)  # filter c*M + m is kernel m
    raws = kernel_stack(kernels)
    zero = zero_sum_filters(raws)
    result = np.empty_like(grads)
    for index, raw in enumerate(raws):
        g = grads[index]
        if options.flip:
            g = g[..., ::-1, ::-1]
        if options.normalize and not zero[index]:
            total = float(raw.sum())
            g = (g - np.sum(g * (raw / total))) / total
        result[index] = g
    return result[0] if not layers and len(kernels) == 1 else result
