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


def test_a_band_runs_the_same_path_as_the_whole() -> None:
    """A depthwise 3×3 multiplies its taps in place (no columns) for a band of rows too, as the
    picture path computes it (a band's plan once lost that and ran im2col: 1.5x slower)."""
    from convcli.engine.trace import Trace

    x = np.random.default_rng(0).integers(0, 256, (1, 3, 64, 48), dtype=np.uint8)
    w = np.random.default_rng(1).standard_normal((3, 1, 3, 3)).astype(np.float32)  # full rank: no 1-D passes
    layer = Convolution(w, None, pad="same", groups=3)
    labels = []
    for run in (lambda: layer.forward(x), lambda: layer.forward_rows(x, 10, 40)):
        layer.trace = Trace()
        run()
        labels.append(sorted({op.label for step in layer.trace.steps for op in step.operations}))
    assert labels[0] == labels[1]
    assert any("multiplied in place" in label for label in labels[1])
