"""Box kernels on integer samples by running sums: exact against a naive loop, chosen only where exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import conv2d_forward

from convcli import Convolution
from convcli.engine.geometry import plan_geometry
from convcli.engine.layer import choose_algorithm
from convcli.engine.running_sum import accumulator, unsuitable
from convcli.errors import ParameterError

MODES = ["zeros", "replicate", "reflect", "symmetric", "circular", "constant:7"]
SAMPLES = [np.uint8, np.uint16, np.int8, np.int16]


@settings(max_examples=150, deadline=None)
@given(
    samples=st.sampled_from(SAMPLES), n=st.integers(1, 2), c=st.integers(1, 3), fg=st.integers(1, 2),
    h=st.integers(1, 14), w=st.integers(1, 14), fh=st.integers(1, 6), fw=st.integers(1, 6),
    sh=st.integers(1, 3), sw=st.integers(1, 3), same=st.booleans(), pads=st.tuples(*[st.integers(0, 7)] * 4),
    mode=st.sampled_from(MODES), bias=st.booleans(), seed=st.integers(0, 2**16),
)
def test_equals_a_naive_loop(samples: type, n: int, c: int, fg: int, h: int, w: int, fh: int, fw: int, sh: int,
                             sw: int, same: bool, pads: tuple[int, int, int, int], mode: str, bias: bool,
                             seed: int) -> None:
    if not same and (h + pads[0] + pads[1] < fh or w + pads[2] + pads[3] < fw):
        return  # no output: the layer refuses the geometry
    rng = np.random.default_rng(seed)
    info = np.iinfo(samples)
    x = rng.integers(info.min, int(info.max) + 1, (n, c, h, w), dtype=samples)
    taps = rng.standard_normal(c * fg)  # a different box constant per filter
    W = np.broadcast_to(taps[:, None, None, None], (c * fg, 1, fh, fw)).astype(np.float32)
    b = rng.standard_normal(c * fg).astype(np.float32) if bias else None
    pad = "same" if same else pads
    layer = Convolution(W, b, (sh, sw), pad, groups=c, padding_mode=mode, algorithm="running-sum")
    got = layer.forward(x)
    want = conv2d_forward(x.astype(np.float64), W, b, (sh, sw), pad, 1, c, mode)
    assert got.dtype == np.float32 and got.shape == want.shape
    # exact sums rounded once (twice with a bias): within float32's rounding of each result
    scale = np.abs(want) + (np.abs(b)[None, :, None, None] if b is not None else 0)
    assert np.all(np.abs(got - want) <= 2 * np.finfo(np.float32).eps * scale + 1e-30)


def test_bands_equal_the_whole_and_threads_do_not_matter() -> None:
    from convcli.engine.parallel import set_num_threads

    x = np.random.default_rng(1).integers(0, 256, (1, 3, 300, 257), dtype=np.uint8)
    W = np.full((3, 1, 15, 15), 1 / (225 * 255), np.float32)
    layer = Convolution(W, None, pad="same", groups=3, padding_mode="reflect", tile_bytes=64 * 1024)
    whole = layer.forward(x)
    assert layer.choice is not None and layer.choice.algorithm == "running-sum"
    np.testing.assert_array_equal(layer.forward_rows(x, 37, 211), whole[:, :, 37:211])
    previous = set_num_threads(1)
    try:
        np.testing.assert_array_equal(layer.forward(x), whole)
    finally:
        set_num_threads(previous)


def test_a_16_bit_photo_whose_sums_pass_int32_is_still_exact() -> None:
    x = np.full((1, 1, 40, 3000), 65535, np.uint16)
    geom = plan_geometry(x.shape, (1, 1, 21, 21), 1, "same", 1, 1, "replicate")
    assert accumulator(geom, x.dtype) == np.int64  # 65535 · 21 · 3020 > 2**31
    layer = Convolution(np.ones((1, 1, 21, 21), np.float32), None, pad="same", padding_mode="replicate")
    np.testing.assert_array_equal(layer.forward(x), np.float32(65535 * 441))
    assert layer.choice is not None and layer.choice.algorithm == "running-sum"


@pytest.mark.parametrize(
    ("samples", "w", "dilation", "mode", "why"),
    [
        (np.float32, np.ones((1, 1, 5, 5)), 1, "zeros", "float32 samples"),
        (np.int32, np.ones((1, 1, 5, 5)), 1, "zeros", "int32 samples"),
        (np.uint8, np.ones((1, 1, 5, 5)), 2, "zeros", "dilation (2, 2)"),
        (np.uint8, np.ones((1, 1, 5, 5)), 1, "constant:0.5", "constant pad of 0.5"),
        (np.uint8, np.arange(25.0).reshape(1, 1, 5, 5), 1, "zeros", "taps of a filter differ"),
        (np.uint8, np.ones((1, 2, 5, 5)), 1, "zeros", "filters read 2 channels"),
    ],
)
def test_refused_where_it_would_not_be_exact(samples: type, w: np.ndarray, dilation: int, mode: str,
                                             why: str) -> None:
    geom = plan_geometry((1, w.shape[1], 20, 20), w.shape, 1, "same", dilation, 1, mode)
    reason = unsuitable(geom, np.dtype(samples), w)
    assert reason is not None and why in reason
    assert choose_algorithm(geom, w, np.dtype(np.float32), "auto", np.dtype(samples)).algorithm != "running-sum"
    with pytest.raises(ParameterError, match="running-sum"):
        choose_algorithm(geom, w, np.dtype(np.float32), "running-sum", np.dtype(samples))


def test_auto_takes_it_for_boxes_on_integer_samples_only() -> None:
    geom = plan_geometry((1, 3, 64, 64), (3, 1, 15, 15), 1, "same", 1, 3, "replicate")
    box = np.full((3, 1, 15, 15), 1 / 225)
    f32 = np.dtype(np.float32)
    assert choose_algorithm(geom, box, f32, "auto", np.dtype(np.uint8)).algorithm == "running-sum"
    assert choose_algorithm(geom, box, f32, "auto", f32).algorithm == "separable"
    assert choose_algorithm(geom, box, f32, "auto").algorithm == "separable"  # samples default to the dtype

