"""Memory stays bounded: the layer's extra memory is a few tile buffers, not the column matrix.

numpy reports its data allocations to tracemalloc, so the traced peak during a call,
minus what was traced before it and minus the array the call returns, is the memory the
engine needed on top of its inputs and output - deterministically, whatever the machine.
"""

from __future__ import annotations

import tracemalloc
from typing import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from convcli import Convolution

MiB = 1024 * 1024


def extra_peak(call: Callable[[], NDArray[np.floating]]) -> tuple[NDArray[np.floating], int]:
    """Run ``call``; return its result and the traced peak above what existed before it and
    above the result itself (arrays allocated before the call are not counted)."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return result, peak - before - result.nbytes


def test_tracemalloc_sees_numpy_arrays() -> None:
    """The measurement is meaningful: a 10 MiB temporary shows up in the peak."""

    def make() -> NDArray[np.floating]:
        temporary = np.ones(10 * MiB // 8)
        return np.zeros(8) + temporary[:8]

    _, extra = extra_peak(make)
    assert 10 * MiB <= extra < 11 * MiB


def _depthwise(size: int) -> tuple[Convolution, NDArray[np.float32]]:
    x = np.ones((1, 3, size, size), dtype=np.float32)  # values are irrelevant to memory
    W = np.full((3, 1, 5, 5), 0.04, dtype=np.float32)
    b = np.zeros(3, dtype=np.float32)
    return Convolution(W, b, pad=2, groups=3), x


def _forward_backward_extra(size: int) -> tuple[int, int]:
    layer, x = _depthwise(size)
    out, fwd_extra = extra_peak(lambda: layer.forward(x))
    assert out.shape == (1, 3, size, size) and out.dtype == np.float32
    dout = out  # reuse the output as the upstream gradient: x, dout and dx exist, nothing more
    dx, bwd_extra = extra_peak(lambda: layer.backward(dout))
    assert dx.shape == x.shape and dx.dtype == np.float32
    return fwd_extra, bwd_extra


def test_extra_memory_does_not_grow_with_image_size() -> None:
    """(1, 3, 512, 512) and (1, 3, 2048, 2048), depthwise 5x5: 16x more pixels, same extra.

    The seed's im2col would hold 25x the input (100 MiB and 1.6 GiB here).  Measured: about
    2 MiB in forward and backward for both sizes (one 2 MiB column tile plus small buffers).
    """
    small = _forward_backward_extra(512)
    large = _forward_backward_extra(2048)
    for extra in (*small, *large):
        assert extra < 32 * MiB, f"extra {extra / MiB:.1f} MiB"
    # not growing: the 16x larger image needs at most a few MiB more (a longer tile row)
    assert large[0] - small[0] < 4 * MiB
    assert large[1] - small[1] < 4 * MiB


@pytest.mark.parametrize("tile_bytes", [64 * 1024, 1 * MiB, 8 * MiB])
def test_extra_memory_follows_tile_bytes(tile_bytes: int) -> None:
    """Extra memory is about the tile buffers: below 3 column tiles plus 1 MiB, the layer's
    documented cost (a tile holds at least one output row, so a tile is never smaller than one
    row's columns).  Measured: ~1.3x the column tile (column + band + GEMM output buffers)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 300, 256)).astype(np.float32)
    W = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    layer = Convolution(W, np.zeros(8, np.float32), pad=1, padding_mode="reflect", tile_bytes=tile_bytes)
    row_bytes = 4 * 9 * 256 * 4
    bound = 3 * max(tile_bytes, row_bytes) + MiB
    out, fwd_extra = extra_peak(lambda: layer.forward(x))
    _, bwd_extra = extra_peak(lambda: layer.backward(out))
    assert fwd_extra < bound, f"forward extra {fwd_extra / MiB:.2f} MiB, bound {bound / MiB:.2f} MiB"
    assert bwd_extra < bound, f"backward extra {bwd_extra / MiB:.2f} MiB, bound {bound / MiB:.2f} MiB"


#: What the README promises beyond input and output, for any image and kernel.
PROMISED = 32 * MiB


@pytest.mark.slow
def test_a_16_megapixel_rgb_image_through_a_depthwise_5x5() -> None:
    """(1, 3, 8192, 8192) float32 through a depthwise 5x5 layer (groups=3, pad=2) needs under
    :data:`PROMISED` above its input and output in forward, and above x, dout and dx in backward.
    (The seed's column matrix alone would be 8192*8192 x 75 float64 = 37.5 GiB.)

    Takes ~15-20 s on 2 cores and ~2.3 GiB of RAM for x, out (= dout) and dx: ``slow``.
    """
    fwd_extra, bwd_extra = _forward_backward_extra(8192)
    assert fwd_extra < PROMISED, f"forward extra {fwd_extra / MiB:.1f} MiB"
    assert bwd_extra < PROMISED, f"backward extra {bwd_extra / MiB:.1f} MiB"


def _large_kernel_extra(x_shape: tuple[int, int, int, int], kernel: NDArray[np.float32],
                        algorithm: str) -> tuple[int, int]:
    """Forward and backward extra memory of a depthwise 'same' layer with ``kernel`` on every channel."""
    channels = x_shape[1]
    x = np.random.default_rng(0).random(x_shape, dtype=np.float32)
    w = np.tile(kernel[None, None], (channels, 1, 1, 1))
    layer = Convolution(w, None, pad="same", groups=channels, padding_mode="replicate", algorithm=algorithm)
    out, fwd_extra = extra_peak(lambda: layer.forward(x))
    assert out.shape == x.shape
    dx, bwd_extra = extra_peak(lambda: layer.backward(out))
    assert dx.shape == x.shape
    return fwd_extra, bwd_extra


def _box(n: int) -> NDArray[np.float32]:
    return np.full((n, n), 1.0 / (n * n), dtype=np.float32)


def _random_kernel(n: int) -> NDArray[np.float32]:
    return np.random.default_rng(n).standard_normal((n, n)).astype(np.float32)


@pytest.mark.parametrize(
    ("kernel", "algorithm"),
    [
        pytest.param(_box(101), "auto", id="box101-separable"),
        pytest.param(_box(301), "auto", id="box301-separable"),
        pytest.param(_box(101), "im2col", id="box101-im2col", marks=pytest.mark.slow),
        pytest.param(_random_kernel(101), "auto", id="random101-banded"),
        pytest.param(_random_kernel(301), "banded", id="random301-banded", marks=pytest.mark.slow),
    ],
)
def test_kernels_larger_than_a_photo_stay_bounded(kernel: NDArray[np.float32], algorithm: str) -> None:
    """box:101 and box:301 on a 256×192 RGB photo (the kernel larger than the image, 'same' padding):
    forward and backward need under :data:`PROMISED` beyond input and output on every path (the
    im2col path splits the reduction; the separable and banded paths tile their own passes).
    Measured: 3-21 MiB."""
    fwd_extra, bwd_extra = _large_kernel_extra((1, 3, 192, 256), kernel, algorithm)
    assert fwd_extra < PROMISED, f"forward extra {fwd_extra / MiB:.1f} MiB"
    assert bwd_extra < PROMISED, f"backward extra {bwd_extra / MiB:.1f} MiB"


def test_a_box_larger_than_an_8_bit_photo_stays_bounded() -> None:
    """box:301 on a 256×192 RGB 8-bit photo runs by integer running sums: their tile buffers stay
    under :data:`PROMISED` too (forward; backward is the layer's, as above)."""
    x = np.random.default_rng(2).integers(0, 256, (1, 3, 192, 256), dtype=np.uint8)
    layer = Convolution(np.full((3, 1, 301, 301), 1 / 301**2, np.float32), None, pad="same", groups=3,
                        padding_mode="replicate")
    out, extra = extra_peak(lambda: layer.forward(x))
    assert layer.choice is not None and layer.choice.algorithm == "running-sum"
    assert out.shape == (1, 3, 192, 256)
    assert extra < PROMISED, f"forward extra {extra / MiB:.1f} MiB"


@pytest.mark.slow
def test_a_51x51_kernel_on_a_4096_square_image_stays_bounded() -> None:
    """A random 51×51 kernel on a (1, 1, 4096, 4096) float32 image: under :data:`PROMISED` beyond
    input and output, forward and backward (measured ~12-13 MiB; ~30 s under tracemalloc)."""
    fwd_extra, bwd_extra = _large_kernel_extra((1, 1, 4096, 4096), _random_kernel(51), "auto")
    assert fwd_extra < PROMISED, f"forward extra {fwd_extra / MiB:.1f} MiB"
    assert bwd_extra < PROMISED, f"backward extra {bwd_extra / MiB:.1f} MiB"
