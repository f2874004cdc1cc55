"""convcli.io.display: the four display mappings, exact values, NaN/inf, default choice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from convcli.errors import ParameterError, ShapeError
from convcli.io.display import DISPLAY_MODES, default_display, to_display, to_pixels

VALUES = np.array([[[-2.0, -0.5, 0.0, 0.25, 0.5, 1.0, 3.0]]], dtype=np.float32)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("clip", [0.0, 0.0, 0.0, 0.25, 0.5, 1.0, 1.0]),
        ("abs", [1.0, 0.5, 0.0, 0.25, 0.5, 1.0, 1.0]),
        ("offset", [0.0, 0.0, 0.5, 0.75, 1.0, 1.0, 1.0]),
        ("minmax", [0.0, 0.3, 0.4, 0.45, 0.5, 0.6, 1.0]),
    ],
)
def test_modes_exact_values(mode: str, expected: list[float]) -> None:
    out = to_display(VALUES, mode)
    assert out.dtype == np.float32 and out.shape == VALUES.shape
    np.testing.assert_allclose(out[0, 0], expected, rtol=0, atol=1e-7)


def test_minmax_is_per_channel() -> None:
    maps = np.array([[[0.0, 10.0]], [[-1.0, -3.0]], [[5.0, 7.0]]])
    out = to_display(maps, "minmax")
    np.testing.assert_array_equal(out[:, 0], [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize(("value", "shown"), [(0.0, 0.0), (0.7, 0.7), (5.0, 1.0), (-2.0, 0.0)])
def test_minmax_constant_map_shows_as_clip(value: float, shown: float) -> None:
    out = to_display(np.full((1, 3, 4), value, np.float32), "minmax")
    np.testing.assert_array_equal(out, np.float32(shown))


def test_minmax_rounding_noise_counts_as_constant() -> None:
    plane = np.full((1, 2, 2), 0.5, np.float32)
    plane[0, 0, 0] = np.nextafter(np.float32(0.5), np.float32(1))
    out = to_display(plane, "minmax")
    np.testing.assert_allclose(out, 0.5, atol=1e-7)


def test_minmax_stretches_tiny_but_real_ranges() -> None:
    maps = np.array([[[1e-9, 2e-9, 3e-9]]])
    np.testing.assert_allclose(to_display(maps, "minmax")[0, 0], [0.0, 0.5, 1.0], atol=1e-7)


@pytest.mark.parametrize("mode", DISPLAY_MODES)
def test_nan_becomes_zero(mode: str) -> None:
    maps = np.array([[[np.nan, 0.2, 0.6]]], np.float32)
    out = to_display(maps, mode)
    assert out[0, 0, 0] == 0.0
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("clip", [1.0, 0.0]), ("abs", [1.0, 1.0]), ("offset", [1.0, 0.0]), ("minmax", [1.0, 0.0])],
)
def test_infinities(mode: str, expected: list[float]) -> None:
    maps = np.array([[[np.inf, -np.inf, 0.0, 1.0]]])
    out = to_display(maps, mode)
    np.testing.assert_array_equal(out[0, 0, :2], expected)


def test_minmax_ignores_infinities_for_the_range() -> None:
    maps = np.array([[[np.inf, 2.0, 4.0, 6.0, np.nan]]])
    np.testing.assert_array_equal(to_display(maps, "minmax")[0, 0], [1.0, 0.0, 0.5, 1.0, 0.0])


def test_minmax_huge_range_does_not_overflow() -> None:
    maps = np.array([[[-3e38, 0.0, 3e38]]], np.float32)
    with np.errstate(all="raise"):
        np.testing.assert_allclose(to_display(maps, "minmax")[0, 0], [0.0, 0.5, 1.0], atol=1e-7)


def test_all_nan_map() -> None:
    maps = np.full((2, 2, 2), np.nan)
    for mode in DISPLAY_MODES:
        np.testing.assert_array_equal(to_display(maps, mode), 0.0)


def test_float64_and_integer_inputs() -> None:
    maps = np.array([[[0.1, 0.9]]], np.float64)
    out = to_display(maps, "clip")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, maps.astype(np.float32))
    ints = np.array([[[-1, 0, 2]]], np.int16)
    np.testing.assert_array_equal(to_display(ints, "abs")[0, 0], [1.0, 0.0, 1.0])


def test_input_is_not_modified() -> None:
    maps = VALUES.copy()
    for mode in DISPLAY_MODES:
        to_display(maps, mode)
    np.testing.assert_array_equal(maps, VALUES)


@given(
    arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5))),
    st.sampled_from(DISPLAY_MODES),
)
def test_output_always_in_unit_range(maps: np.ndarray, mode: str) -> None:
    out = to_display(maps, mode)
    assert out.shape == maps.shape and out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1))


def test_unknown_mode() -> None:
    with pytest.raises(ParameterError, match="display mode must be one of clip, abs, minmax, offset, got 'log'"):
        to_display(VALUES, "log")


@pytest.mark.parametrize("shape", [(4, 4), (1, 1, 4, 4)])
def test_wrong_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ShapeError, match=r"shape \(C, H, W\)"):
        to_display(np.zeros(shape), "clip")


def test_complex_refused() -> None:
    with pytest.raises(ParameterError, match="real numbers"):
        to_display(np.zeros((1, 2, 2), np.complex64), "clip")


@pytest.mark.parametrize(
    ("sums", "mode"),
    [
        ([1.0], "clip"),
        ([1.0, 0.5, 9.0], "clip"),
        ([0.0], "offset"),
        ([1.0, 0.0], "offset"),
        ([1e-13], "offset"),
        ([2e-12], "clip"),
        ([-1.0], "offset"),
        ([float("nan")], "offset"),
        ([], "clip"),
    ],
)
def test_default_display(sums: list[float], mode: str) -> None:
    assert default_display(sums) == mode


@pytest.mark.parametrize(
    ("sums", "magnitudes", "mode"),
    [
        ([1e-9], [3.6e4], "offset"),  # log:0.01's rounding noise, relative to taps of ~1e4: zero-sum
        ([1e-7], [1e4], "clip"),  # above 1e-12 * 1e4: a real (tiny) positive sum
        ([1e-13], [0.5], "offset"),  # small taps: the absolute 1e-12 floor
        ([1.0, 2e-9], [1.0, 4e3], "offset"),
        ([1.0, 1.0], [1.0, 3.0], "clip"),
    ],
)
def test_default_display_zero_sum_is_relative_to_the_taps(
    sums: list[float], magnitudes: list[float], mode: str
) -> None:
    assert default_display(sums, magnitudes) == mode


def test_display_modes_constant() -> None:
    assert DISPLAY_MODES == ("clip", "abs", "minmax", "offset")


def test_montage_lays_out_cells_each_mapped_alone() -> None:
    from convcli.io.display import montage

    cells = np.zeros((2, 3, 1, 2, 2), np.float32)
    for r in range(2):
        for k in range(3):
            cells[r, k, 0] = [[0, 1], [2, 3 + r + k]]  # distinct ranges: minmax maps each to [0, 1] alone
    out = montage(cells, "minmax")
    assert out.shape == (1, 2 * 3 - 1, 3 * 3 - 1)
    np.testing.assert_array_equal(out[0, 2, :], 1.0)  # the white gap row between the two rows
    np.testing.assert_array_equal(out[0, :, 2], 1.0)
    for r in range(2):
        for k in range(3):
            cell = out[0, 3 * r : 3 * r + 2, 3 * k : 3 * k + 2]
            assert cell[0, 0] == 0.0 and cell[1, 1] == 1.0
            np.testing.assert_allclose(cell[0, 1], 1 / (3 + r + k), rtol=1e-6)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("mode", ["clip", "abs", "offset", "minmax"])
def test_to_pixels_rounds_what_to_display_shows(mode: str, bits: int) -> None:
    """A picture large enough to be mapped in parts on several threads, NaN and infinities in some
    parts only (each part picks its own clipping), ties at k + 0.5 rounded to even as np.rint does."""
    rng = np.random.default_rng(5)
    maps = (rng.standard_normal((3, 900, 700)) * 0.6).astype(np.float32)
    maps[0, 10:20, :5] = np.nan
    maps[1, 400, 3] = np.inf
    maps[2, 800, 9] = -np.inf
    maps[:, 600:610] = np.round(rng.standard_normal((3, 10, 700)) * 300) / 255  # ties in offset mode
    top = np.float32(255 if bits == 8 else 65535)
    if mode == "offset":  # documented as 255·v + 127.5 in the maps' precision (not 255·(0.5 + v))
        scaled = np.nan_to_num(maps * top + top / 2, nan=0.0, posinf=top, neginf=0.0)
        want = np.rint(np.clip(scaled, 0, top)).transpose(1, 2, 0)
    else:
        want = np.rint(to_display(maps, mode) * top).transpose(1, 2, 0)
    whole = np.zeros((1000, 700, 3), np.uint8 if bits == 8 else np.uint16)
    got = to_pixels(maps, mode, bits, out=whole[50:950])  # a band of a larger picture
    assert got.base is whole.base or got.base is whole
    np.testing.assert_array_equal(whole[50:950], want)
    assert not whole[:50].any() and not whole[950:].any()
