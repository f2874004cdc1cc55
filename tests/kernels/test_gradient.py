"""convcli.kernels.gradient: dK, the gradient for the kernels as given, through backward.

References are this file's own: float64 central differences of the loss ``L = sum(y * dout)``
over the *whole* output, perturbing one entry at a time (tests/reference.py's
:func:`numerical_gradient`), with layer weights built here from the user's kernels by hand
(flip, then divide by the sum), not through :func:`convcli.kernels.bank.filter_bank`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from grad_helpers import F64, K1, K2, K3, grads_for, rng_array
from reference import numerical_gradient

from convcli import Convolution
from convcli.kernels.bank import LayerOptions
from convcli.kernels.gradient import kernel_gradient
from convcli.kernels.kernel import Kernel
from convcli.kernels.spec import parse_kernel


def prepared(kernel: F64, flip: bool, normalize: bool) -> F64:
    """What the layer runs for a user kernel: rotated 180° under flip, divided by its sum under normalize."""
    k = np.array(kernel, dtype=np.float64)
    if flip:
        k = k[..., ::-1, ::-1]
    if normalize:  # a sum counts as zero when |sum| <= 1e-12 * max(1, sum |k|)
        flat = k.reshape(k.shape[0], -1) if k.ndim == 4 else k.reshape(1, -1)
        sums, l1 = flat.sum(axis=1), np.abs(flat).sum(axis=1)
        keep = np.abs(sums) > 1e-12 * np.maximum(1.0, l1)
        if k.ndim == 4:
            k[keep] /= sums[keep, None, None, None]
        elif keep[0]:
            k = k / sums[0]
    return k


def depthwise_loss(
    x: F64, kernels: list[F64], dout: F64, flip: bool, normalize: bool, **geometry: Any
) -> float:
    """L = sum(y * dout) for 2-D kernels applied to every channel, built by hand: filter c*M + m is kernel m."""
    c, m = x.shape[1], len(kernels)
    w = np.stack([prepared(k, flip, normalize) for k in kernels])
    weights = np.tile(w, (c, 1, 1))[:, None]
    layer = Convolution(weights, None, geometry.pop("stride", 1), geometry.pop("pad", "same"), groups=c, **geometry)
    assert weights.shape[0] == c * m
    return float(np.sum(layer.forward(x) * dout))


DK_CASES = [
    pytest.param([K1], False, False, {}, id="one"),
    pytest.param([K1], True, False, {}, id="flip"),
    pytest.param([K2], False, True, {}, id="normalize"),
    pytest.param([K2], True, True, {}, id="flip-normalize"),
    pytest.param([K1, K2, K3], False, False, {}, id="three"),
    pytest.param([K1, K2, K3], True, True, {}, id="three-flip-normalize"),
    pytest.param([K2, K3], True, True, {"stride": 2, "dilation": 2, "padding_mode": "circular"}, id="geometry"),
    pytest.param([K3, K1], False, True, {"pad": "valid", "padding_mode": "replicate"}, id="valid"),
]


@pytest.mark.parametrize(("kernels", "flip", "normalize", "geometry"), DK_CASES)
def test_dK_is_the_numerical_gradient_for_the_kernels_as_given(
    kernels: list[F64], flip: bool, normalize: bool, geometry: dict[str, Any]
) -> None:
    x = rng_array((2, 3, 9, 8), 3)  # RGB-like: three channels share each kernel
    options = LayerOptions(flip=flip, normalize=normalize, **geometry)
    grads, dout = grads_for(x, [Kernel(k) for k in kernels], options)
    assert grads.dK is not None
    assert grads.dK.shape == ((3, 3) if len(kernels) == 1 else (len(kernels), 3, 3))
    stack = np.stack(kernels).astype(np.float64)

    def loss() -> float:
        return depthwise_loss(x, list(stack), dout, flip, normalize, **geometry)

    numeric = numerical_gradient(loss, stack, eps=1e-5)
    np.testing.assert_allclose(grads.dK, numeric.reshape(grads.dK.shape), rtol=1e-6, atol=1e-6)


def test_dK_without_flip_or_normalize_sums_dW_over_channels() -> None:
    x = rng_array((1, 3, 5, 5), 0)
    grads, _ = grads_for(x, [Kernel(K1), Kernel(K2)], LayerOptions())
    assert grads.dK is not None
    np.testing.assert_allclose(grads.dK, grads.dW[:, 0].reshape(3, 2, 3, 3).sum(axis=0))


@pytest.mark.parametrize(("flip", "normalize"), [(True, False), (False, True), (True, True)])
def test_dK_for_layer_kernels_under_flip_or_normalize(flip: bool, normalize: bool) -> None:
    x = rng_array((1, 4, 6, 5), 0)
    w1, w2 = rng_array((2, 2, 3, 2), 1) + 0.3, rng_array((2, 2, 3, 2), 2) + 0.3
    options = LayerOptions(groups=2, flip=flip, normalize=normalize)
    grads, dout = grads_for(x, [Kernel(w1), Kernel(w2)], options)
    assert grads.dK is not None and grads.dK.shape == (4, 2, 3, 2)
    raw = np.concatenate([w1, w2])

    def loss() -> float:
        layer = Convolution(prepared(raw, flip, normalize), None, 1, "same", groups=2)
        return float(np.sum(layer.forward(x) * dout))

    np.testing.assert_allclose(grads.dK, numerical_gradient(loss, raw, eps=1e-5), rtol=1e-6, atol=1e-6)


def test_kernel_gradient_of_a_zero_sum_kernel_under_normalize_is_left_alone() -> None:
    sobel = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    dW = rng_array((3, 1, 3, 3), 0)
    got = kernel_gradient(dW, [Kernel(sobel)], 3, LayerOptions(normalize=True))
    np.testing.assert_allclose(got, dW[:, 0].sum(axis=0))


def test_kernel_gradient_of_a_large_tap_zero_sum_kernel_under_normalize_is_left_alone() -> None:
    log = parse_kernel("log:0.01").weights  # taps ~1e4, sum ~1e-12 (rounding): zero-sum, as normalize judges it
    assert abs(log.sum()) > 1e-12
    dW = rng_array((2, 1, 3, 3), 0)
    got = kernel_gradient(dW, [Kernel(log)], 2, LayerOptions(normalize=True))
    np.testing.assert_allclose(got, dW[:, 0].sum(axis=0))
