"""Shared set-up of the grad tests (commands/test_grad*.py, kernels/test_gradient.py): kernels, arrays, gradients."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from convcli.commands.grad import Gradients, backward, build_grad_layer
from convcli.kernels.bank import LayerOptions
from convcli.kernels.kernel import Kernel

F64 = NDArray[np.float64]
# all taps distinct and non-symmetric, so a missing or extra flip shows; sums far from 0
K1 = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0], [64.0, 128.0, 256.0]]) / 100
K2 = np.array([[0.5, -1.0, 3.0], [2.0, 0.25, -4.0], [1.5, 6.0, 0.75]])
K3 = np.array([[-2.0, 1.0, 0.3], [0.7, 5.0, -1.1], [2.2, -0.4, 1.9]])


def rng_array(shape: tuple[int, ...], seed: int = 0, dtype: Any = np.float64) -> NDArray[Any]:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def grads_for(
    x: NDArray[Any], kernels: list[Kernel], options: LayerOptions, dout: Optional[NDArray[Any]] = None, seed: int = 1
) -> tuple[Gradients, NDArray[Any]]:
    layer = build_grad_layer(kernels, x.shape[1], options, x.dtype)
    if dout is None:
        dout = rng_array(layer.output_shape(x.shape), seed, x.dtype)
    return backward(layer, x, dout, kernels, options), dout

