"""The separable path: factors of low-rank kernels, and two 1-D passes equal to the 2-D path.

The stated bound (convcli.engine.separable): both paths are within
``(FH + FW + 2)·eps·(S ⋆ |x|)`` of the exact result, S = sum_k |u_k| |v_k|ᵀ, so the two
differ by at most twice that (plus the dropped singular values, zero for the kernels here).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from reference import PADDING_MODES, conv_cases

from convcli import Convolution
from convcli.engine.geometry import plan_geometry
from convcli.engine.layer import choose_algorithm
from convcli.engine.separable import Factors, factorize, separable_cost_ratio
from convcli.errors import ParameterError

SOBEL = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def _bound(x: NDArray[np.floating], w: NDArray[np.floating], factors: Factors, b: NDArray[np.floating],
           kw: dict[str, object], dtype: type) -> NDArray[np.float64]:
    """Twice the stated bound of either path, per output pixel: 2 ((FH+FW+2) eps (S ⋆ |x| + |b|) + dropped).

    ``dropped`` is what the terms left out can add: their singular values (each at most
    ``max(FH, FW)·eps`` of the largest, which also bounds the SVD's own rounding of the
    kept ones) times the patch's ``sum |x|``.
    """
    s = np.einsum("fki,fkj->fij", np.abs(factors.cols), np.abs(factors.rows))[:, None]
    fh, fw = s.shape[2:]
    eps = float(np.finfo(dtype).eps)
    layer = Convolution(s, np.abs(b).astype(np.float64), algorithm="im2col", **kw)  # type: ignore[arg-type]
    sigma = np.linalg.svd(w[:, 0].astype(np.float64), compute_uv=False)  # (FN, min(FH, FW)), largest first
    dropped = sigma[:, factors.rank:].sum(axis=1) + max(fh, fw) * eps * sigma[:, 0]
    ones = Convolution(np.broadcast_to(dropped[:, None, None, None], s.shape).copy(), None, algorithm="im2col",
                       **kw)  # type: ignore[arg-type]
    absx = np.abs(x).astype(np.float64)
    return 2 * ((fh + fw + 2) * eps * layer.forward(absx) + ones.forward(absx))


def _depthwise(kernels: NDArray[np.float64], channels: int) -> NDArray[np.float64]:
    """(M, FH, FW) kernels as a depthwise layer's W (C*M, 1, FH, FW), filter c*M + m = kernel m."""
    return np.tile(kernels, (channels, 1, 1))[:, None]


def test_integer_rank_one_kernels_get_exact_integer_factors() -> None:
    w = _depthwise(np.stack([SOBEL, SOBEL.T, np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])[:3, :3]]), 2)
    factors = factorize(w, np.dtype(np.float32))
    assert factors.exact and factors.rank == 1
    assert np.array_equal(factors.cols, np.round(factors.cols)) and np.array_equal(factors.rows, np.round(factors.rows))
    rebuilt = np.einsum("fki,fkj->fij", factors.cols, factors.rows)
    np.testing.assert_array_equal(rebuilt, w[:, 0])


@pytest.mark.parametrize(("rank", "noise", "expected"), [(1, 0.0, 1), (2, 0.0, 2), (3, 0.0, 3), (1, 1e-3, 5)])
def test_svd_rank(rank: int, noise: float, expected: int) -> None:
    """Random kernels of rank 1, 2, 3 are found so; a near-separable kernel (noise far above
    float rounding) keeps every term."""
    rng = np.random.default_rng(rank)
    k = sum(np.outer(rng.standard_normal(5), rng.standard_normal(7)) for _ in range(rank))
    k = k + noise * rng.standard_normal(k.shape)
    factors = factorize(k[None, None], np.dtype(np.float32))
    assert not factors.exact and factors.rank == expected
    np.testing.assert_allclose(np.einsum("fki,fkj->fij", factors.cols, factors.rows)[0], k, atol=1e-12)


@given(case=conv_cases(max_kernel=5, max_per_group=1, max_extra=8), data=st.data())
@settings(max_examples=120, deadline=None)
def test_separable_equals_im2col_within_the_stated_bound(
    case: tuple[tuple[int, int, int, int], tuple[int, int, int, int], dict[str, object]], data: st.DataObject
) -> None:
    """Every geometry (strides, dilations, pads, even kernels, every padding mode): separable,
    low-rank and full-rank kernels through two 1-D passes equal the 2-D path."""
    x_shape, w_shape, kw = case
    fn = int(kw["groups"]) * data.draw(st.integers(1, 3))  # type: ignore[call-overload]  # M kernels per channel
    _, _, fh, fw = w_shape
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rank = data.draw(st.integers(1, min(fh, fw)))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    w = np.stack([sum(np.outer(rng.standard_normal(fh), rng.standard_normal(fw)) for _ in range(rank))
                  for _ in range(fn)])[:, None].astype(dtype)
    x = rng.standard_normal(x_shape).astype(dtype)
    b = rng.standard_normal(fn).astype(dtype)
    want = Convolution(w, b, algorithm="im2col", **kw).forward(x)  # type: ignore[arg-type]
    layer = Convolution(w, b, algorithm="separable", **kw)  # type: ignore[arg-type]
    got = layer.forward(x)
    assert layer.choice is not None and layer.choice.factors is not None
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.all(np.abs(got - want) <= _bound(x, w, layer.choice.factors, b, kw, dtype))


def test_a_rank_two_kernel_whose_dropped_term_counts() -> None:
    """A 3×4 kernel of rank 2 in float64 (found by the property test above): the third
    singular value, dropped, adds about 4e-16 beyond the rounding of the kept terms."""
    kw: dict[str, object] = {"stride": 1, "pad": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros"}
    rng = np.random.default_rng(935020538)
    w = sum(np.outer(rng.standard_normal(3), rng.standard_normal(4)) for _ in range(2))[None, None]
    x = rng.standard_normal((1, 1, 3, 5))
    b = rng.standard_normal(1)
    want = Convolution(w, b, algorithm="im2col", **kw).forward(x)  # type: ignore[arg-type]
    layer = Convolution(w, b, algorithm="separable", **kw)  # type: ignore[arg-type]
    got = layer.forward(x)
    assert layer.choice is not None and layer.choice.factors is not None and layer.choice.factors.rank == 2
    assert np.all(np.abs(got - want) <= _bound(x, w, layer.choice.factors, b, kw, np.float64))


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_separable_matches_scipy_and_the_2d_path_for_a_gaussian_larger_than_the_image(mode: str) -> None:
    """A 31×31 gaussian on a 12×9 image ('same' padding far larger than the image), every mode."""
    scipy = pytest.importorskip("scipy.ndimage")
    g = np.exp(-(np.arange(31) - 15) ** 2 / 50.0)
    k = np.outer(g, g) / np.outer(g, g).sum()
    x = np.random.default_rng(0).random((1, 2, 12, 9))
    got = Convolution(_depthwise(k[None], 2), None, pad="same", groups=2, padding_mode=mode,
                      algorithm="separable").forward(x)
    want = Convolution(_depthwise(k[None], 2), None, pad="same", groups=2, padding_mode=mode,
                       algorithm="im2col").forward(x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)
    scipy_mode = {"zeros": "constant", "reflect": "mirror", "replicate": "nearest", "circular": "wrap",
                  "symmetric": "reflect", "constant:0.5": "constant"}[mode]
    cval = 0.5 if mode == "constant:0.5" else 0.0
    for c in range(2):
        expected = scipy.correlate(x[0, c], k, mode=scipy_mode, cval=cval)
        np.testing.assert_allclose(got[0, c], expected, rtol=0, atol=1e-12)


def test_auto_picks_separable_only_where_it_is_cheaper() -> None:
    geom = plan_geometry((1, 3, 64, 64), (3, 1, 7, 7), pad="same", groups=3)
    g = np.exp(-(np.arange(7) - 3) ** 2 / 4.0)
    smooth = _depthwise(np.outer(g, g)[None], 3)
    assert choose_algorithm(geom, smooth, np.dtype(np.float32), "auto").algorithm == "separable"
    noisy = smooth + np.random.default_rng(0).standard_normal(smooth.shape)
    assert choose_algorithm(geom, noisy, np.dtype(np.float32), "auto").algorithm == "banded"  # full rank, 7×7
    small = plan_geometry((1, 3, 64, 64), (3, 1, 3, 3), pad="same", groups=3)
    sobel = _depthwise(SOBEL[None], 3)
    choice = choose_algorithm(small, sobel, np.dtype(np.float32), "auto")
    assert choice.algorithm == "im2col" and "68%" in choice.reason  # 3 + 3 taps of 9 (+ padding): not worth it
    assert separable_cost_ratio(geom, 1) < 0.4
    layer_geom = plan_geometry((1, 3, 64, 64), (4, 3, 7, 7), pad="same")
    assert choose_algorithm(layer_geom, np.ones((4, 3, 7, 7)), np.dtype(np.float32), "auto").algorithm == "im2col"


def test_separable_refuses_filters_that_read_several_channels() -> None:
    layer = Convolution(np.ones((2, 3, 3, 3)), None, algorithm="separable")
    with pytest.raises(ParameterError, match=r"'separable' needs filters that read one channel .*\(2, 3, 3, 3\)"):
        layer.forward(np.ones((1, 3, 5, 5)))
    with pytest.raises(ParameterError,
                       match=r"algorithm must be one of auto, im2col, separable, banded, running-sum, got .fft."):
        Convolution(np.ones((2, 3, 3, 3)), None, algorithm="fft")


def test_backward_differentiates_the_kernel_as_given_whatever_ran_forward() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 11, 10))
    g = np.exp(-(np.arange(5) - 2) ** 2 / 3.0)
    w = _depthwise(np.outer(g, g)[None], 3) + 0.0
    dout = rng.standard_normal((2, 3, 11, 10))
    grads = []
    for algorithm in ("im2col", "separable"):
        layer = Convolution(w, np.zeros(3), pad="same", groups=3, padding_mode="reflect", algorithm=algorithm)
        layer.forward(x)
        grads.append((layer.backward(dout), layer.dW, layer.db))
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_separable_tiles_bound_memory_and_agree_across_tile_sizes() -> None:
    """Tiny budgets split both passes (kernel rows, columns) and the band; results agree."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 23, 17)).astype(np.float32)
    w = _depthwise(np.outer(rng.standard_normal(9), rng.standard_normal(7))[None], 2).astype(np.float32)
    whole = Convolution(w, None, pad="same", groups=2, algorithm="separable", tile_bytes=10**9).forward(x)
    for tile_bytes in (1, 100, 3000, 50_000):
        got = Convolution(w, None, pad="same", groups=2, algorithm="separable", tile_bytes=tile_bytes).forward(x)
        np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-5)
