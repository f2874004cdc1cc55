"""Convolution.forward_rows: any band of output rows, computed alone, equals that band of forward."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import conv_cases

from convcli import Convolution
from convcli.errors import ParameterError


@given(case=conv_cases(max_kernel=5, max_extra=6), data=st.data())
@settings(max_examples=80, deadline=None)
def test_a_band_of_rows_equals_the_same_rows_of_forward(
    case: tuple[tuple[int, int, int, int], tuple[int, int, int, int], dict[str, object]], data: st.DataObject
) -> None:
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    algorithm = "im2col" if w_shape[1] > 1 else data.draw(st.sampled_from(["im2col", "separable", "banded"]))
    tile_bytes = data.draw(st.sampled_from([1, 500, 1 << 22]))
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    layer = Convolution(w, rng.standard_normal(w_shape[0]), algorithm=algorithm, tile_bytes=tile_bytes, **kw)  # type: ignore[arg-type]
    full = layer.forward(x)
    out_h = full.shape[2]
    r0 = data.draw(st.integers(0, out_h - 1))
    r1 = data.draw(st.integers(r0 + 1, out_h))
    band = layer.forward_rows(x, r0, r1)
    np.testing.assert_allclose(band, full[:, :, r0:r1], rtol=1e-12, atol=1e-12)


def test_rows_out_of_range_are_refused() -> None:
    layer = Convolution(np.ones((1, 1, 3, 3)), None, pad=1)
    x = np.ones((1, 1, 5, 5))
    for rows in [(0, 0), (-1, 2), (3, 6), (4, 2)]:
        with pytest.raises(ParameterError, match=r"rows must satisfy 0 <= row0 < row1 <= OH = 5"):
            layer.forward_rows(x, *rows)
