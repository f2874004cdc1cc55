"""Kernels with origins, holes and different sizes in one layer: the frame, the forward, and dK.

The reference here knows nothing of frames: each kernel is applied on its own, as ImageMagick
defines it, ``out(y, x) = sum K[v, u] * padded(x)[y + v - Y, x + u - X]`` for origin (Y, X)
(a correlation whose origin tap lies over the output pixel; under ``flip`` the kernel turns
180° and its origin with it), padding done with ``np.pad``.  dK is checked against float64
central differences of that reference, one tap at a time, holes excluded.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest
from grad_helpers import grads_for, rng_array

from convcli.kernels.bank import LayerOptions, build_layer, filter_bank
from convcli.kernels.frame import kernel_frame, running_origin
from convcli.kernels.gradient import gradient_layout, smooth_entries
from convcli.kernels.kernel import Kernel
from convcli.kernels.scale import KernelScale, parse_scale, scale_kernel
from convcli.kernels.spec import parse_kernels

NP_PAD = {"zeros": "constant", "replicate": "edge", "symmetric": "symmetric", "circular": "wrap", "reflect": "reflect"}


def reference(x: np.ndarray, kernels: list[Kernel], flip: bool, mode: str,
              scale: Optional[KernelScale] = None) -> np.ndarray:
    """(N, C*M, H, W): kernel m on channel c, about its origin, the naive way."""
    n, c, h, w = x.shape
    pad = 12
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=NP_PAD[mode])  # type: ignore[call-overload]
    out = np.zeros((n, c * len(kernels), h, w))
    for m, kernel in enumerate(kernels):
        values = np.array(kernel.weights, dtype=np.float64)
        oy, ox = running_origin(kernel, flip)
        if scale is not None:
            values = scale_kernel(values, (oy, ox), scale)
        if flip:
            values = values[::-1, ::-1]
            oy, ox = values.shape[0] - 1 - oy, values.shape[1] - 1 - ox
        for v in range(values.shape[0]):
            for u in range(values.shape[1]):
                window = xp[:, :, pad + v - oy:pad + v - oy + h, pad + u - ox:pad + u - ox + w]
                out[:, m::len(kernels)] += values[v, u] * window
    return out


CASES = [
    pytest.param("3x3+0+0: 1,2,4,8,16,32,64,128,256", id="corner-origin"),
    pytest.param("4x3+3+1: 1,2,3,4,5,6,7,8,9,10,11,12", id="even-origin"),
    pytest.param("2x2: 1,2,4,8", id="even-default"),
    pytest.param("3x3+2+1@: 1,2,4,8,16,32,64,128,256", id="rotated-origins"),
    pytest.param("Blur:0x1;Blur:0x1+90;Sobel:45", id="mixed-sizes"),
    pytest.param("3x3: 1,nan,4,-,16,32,64,128,nan", id="holes"),
    pytest.param("Comet:0x2+90;3x1+2+0: 1,2,3", id="off-centre-rows"),
    pytest.param("box:2;sobel-x;box:4", id="convcli-even-with-odd"),  # no origins: where 'same' puts each alone
]


@pytest.mark.parametrize("spec", CASES)
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("mode", ["zeros", "replicate", "symmetric"])
def test_forward_places_each_kernel_about_its_origin(spec: str, flip: bool, mode: str) -> None:
    kernels = list(parse_kernels(spec).kernels)
    x = rng_array((1, 2, 7, 9), 3)
    layer = build_layer(kernels, 2, LayerOptions(flip=flip, padding_mode=mode), np.dtype(np.float64))
    np.testing.assert_allclose(layer.forward(x), reference(x, kernels, flip, mode), rtol=1e-12, atol=1e-12)


def test_frame_is_centred_on_the_origins() -> None:
    kernels = list(parse_kernels("3x3+0+0: 1,2,3,4,5,6,7,8,9;Sobel").kernels)
    frame = kernel_frame(kernels)
    assert frame.embedded and frame.shape == (5, 5) and frame.offsets == ((2, 2), (1, 1))
    w, _, _ = filter_bank(kernels, 1)
    np.testing.assert_array_equal(w[0, 0, 2:, 2:], np.arange(1, 10).reshape(3, 3))
    same = kernel_frame(list(parse_kernels("Sobel;Kirsch:45").kernels))
    assert not same.embedded and same.shape == (3, 3)
    # convcli's even kernels keep PyTorch's padding, flipped or not: no frame
    assert not kernel_frame([Kernel(np.ones((2, 2)))], flip=True).embedded
    # ImageMagick's even kernels have their origin (0, 0): under flip it turns to (1, 1), so they are framed
    assert kernel_frame(list(parse_kernels("2x2: 1,2,3,4").kernels), flip=True).embedded


@pytest.mark.parametrize("spec", CASES)
@pytest.mark.parametrize(("flip", "scale"), [(False, None), (True, None), (True, "!,0.5"), (False, "^")])
def test_dK_is_central_differences_of_the_reference(spec: str, flip: bool, scale: Optional[str]) -> None:
    kernels = list(parse_kernels(spec).kernels)
    option = None if scale is None else parse_scale(scale)
    if option is not None and option.normalize == "^" and any(np.any(k.weights == 0) for k in kernels):
        kernels = [Kernel(np.where(k.tap_mask, k.weights + 0.01, 0), None, k.label, origin=k.origin, taps=k.taps)
                   for k in kernels]  # '^' has no derivative at a 0 tap
    options = LayerOptions(flip=flip, padding_mode="replicate", scale=option)
    x = rng_array((1, 2, 6, 8), 5)
    grads, dout = grads_for(x, kernels, options)
    assert grads.dK is not None
    dK = grads.dK if len(kernels) > 1 else grads.dK[None]
    layout = gradient_layout(kernels, flip)
    for m, kernel in enumerate(kernels):
        r0, c0 = layout.offsets[m]
        h, w = kernel.size
        got = dK[m, r0:r0 + h, c0:c0 + w]
        numeric = np.zeros((h, w))
        for v, u in np.ndindex(h, w):
            if not kernel.tap_mask[v, u]:
                continue
            for sign in (1, -1):
                moved = np.array(kernel.weights)
                moved[v, u] += sign * 1e-6
                changed = [*kernels[:m], Kernel(moved, None, kernel.label, origin=kernel.origin, taps=kernel.taps),
                           *kernels[m + 1:]]
                numeric[v, u] += sign * np.sum(reference(x, changed, flip, "replicate", option) * dout) / 2e-6
        smooth = smooth_entries(kernels, options)[m]  # a zero-sum kernel under '!' jumps: no derivative there
        np.testing.assert_allclose(got[smooth], numeric[smooth], rtol=1e-6, atol=1e-6 * np.abs(numeric).max())
        assert np.all(got[~kernel.tap_mask] == 0)  # holes are no weights
        outside = np.ones(dK.shape[1:], bool)
        outside[r0:r0 + h, c0:c0 + w] = False
        assert np.all(dK[m][outside] == 0)  # the frame around a smaller kernel is no weight either


def test_dK_shape() -> None:
    x = rng_array((1, 1, 6, 6))
    same = list(parse_kernels("3x3+0+0@: 1,2,3,4,5,6,7,8,9").kernels)
    grads, _ = grads_for(x, same, LayerOptions(flip=True))
    assert grads.dK is not None and grads.dK.shape == (8, 3, 3)  # the kernels' own size, not their 5×5 frame
    mixed = list(parse_kernels("Blur:0x1;Blur:0x1+90").kernels)
    grads, _ = grads_for(x, mixed, LayerOptions())
    assert grads.dK is not None and grads.dK.shape == (2, 9, 9)  # a 1×9 and a 9×1 kernel: their frame
