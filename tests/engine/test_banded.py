"""The banded path (kernel rows as banded matrices): forward and backward equal the im2col path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import PADDING_MODES, assert_close, conv2d_backward, conv2d_forward, conv_cases

from convcli import Convolution
from convcli.engine.banded import _toeplitz
from convcli.engine.geometry import plan_geometry
from convcli.engine.layer import banded_applies, choose_algorithm


def test_toeplitz_writes_each_kernel_row_on_its_band() -> None:
    """T[w*stride + j*dilation, f*bw + w] = K[f, j], zeros elsewhere."""
    taps = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])  # two filters, FW = 3
    bw, stride, dilation = 4, 2, 3
    span = (bw - 1) * stride + 2 * dilation + 1
    out = np.full((span, 2 * bw), np.nan)
    _toeplitz(out, taps, bw, stride, dilation)
    want = np.zeros_like(out)
    for f in range(2):
        for w in range(bw):
            for j in range(3):
                want[w * stride + j * dilation, f * bw + w] = taps[f, j]
    np.testing.assert_array_equal(out, want)


@given(case=conv_cases(max_kernel=6, max_extra=8), data=st.data())
@settings(max_examples=120, deadline=None)
def test_banded_equals_the_reference_forward_and_backward(
    case: tuple[tuple[int, int, int, int], tuple[int, int, int, int], dict[str, object]], data: st.DataObject
) -> None:
    """Any geometry, groups, padding mode and tile budget: out, dx, dW, db as the naive loop gives them."""
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    tile_bytes = data.draw(st.sampled_from([1, 300, 5000, 1 << 22]))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    layer = Convolution(w, b, algorithm="banded", tile_bytes=tile_bytes, **kw)  # type: ignore[arg-type]
    out = layer.forward(x)
    assert layer.choice is not None and layer.choice.algorithm == "banded"
    assert_close(out, conv2d_forward(x, w, b, **kw), "forward")  # type: ignore[arg-type]
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    ref_dx, ref_dw, ref_db = conv2d_backward(x, w, dout, **kw)  # type: ignore[arg-type]
    assert_close(dx, ref_dx, "dx")
    assert_close(layer.dW, ref_dw, "dW")  # type: ignore[arg-type]
    assert_close(layer.db, ref_db, "db")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_banded_kernel_larger_than_the_image(mode: str) -> None:
    """A 31×25 kernel on a 9×7 image, 'same' padding, every mode: forward and backward as im2col."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 9, 7))
    w = rng.standard_normal((4, 1, 31, 25))
    kw = {"pad": "same", "groups": 2, "padding_mode": mode}
    got, want = Convolution(w, None, algorithm="banded", **kw), Convolution(w, None, algorithm="im2col", **kw)
    np.testing.assert_allclose(got.forward(x), want.forward(x), rtol=0, atol=1e-11)
    dout = rng.standard_normal((1, 4, 9, 7))
    np.testing.assert_allclose(got.backward(dout), want.backward(dout), rtol=0, atol=1e-11)
    np.testing.assert_allclose(got.dW, want.dW, rtol=0, atol=1e-11)  # type: ignore[arg-type]


def test_auto_runs_large_one_channel_kernels_banded() -> None:
    rng = np.random.default_rng(0)
    big = plan_geometry((1, 3, 64, 64), (3, 1, 9, 9), pad="same", groups=3)
    assert banded_applies(big)
    choice = choose_algorithm(big, rng.standard_normal((3, 1, 9, 9)), np.dtype(np.float32), "auto")
    assert choice.algorithm == "banded" and "rank 9" in choice.reason
    small = plan_geometry((1, 3, 64, 64), (3, 1, 5, 5), pad="same", groups=3)
    assert choose_algorithm(small, rng.standard_normal((3, 1, 5, 5)), np.dtype(np.float32), "auto").algorithm == \
        "im2col"
    layer = plan_geometry((1, 8, 64, 64), (16, 8, 9, 9), pad="same")  # a layer mixing channels keeps im2col
    assert choose_algorithm(layer, rng.standard_normal((16, 8, 9, 9)), np.dtype(np.float32), "auto").algorithm == \
        "im2col"
