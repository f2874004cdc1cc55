"""The colour maps: a diverging map mirrored around a white 0, gray for unsigned values."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from convcli.visual.colormap import NAN_COLOUR, Scale, colorize, diverging, scale_for


def test_zero_is_white_and_the_ends_are_red_and_blue() -> None:
    got = diverging(np.array([0.0, 1.0, -1.0]))
    assert got[0].tolist() == [255, 255, 255]
    assert got[1][0] > got[1][2]  # +1 red
    assert got[2][2] > got[2][0]  # -1 blue


@given(st.lists(st.floats(-1, 1), min_size=1, max_size=50))
def test_a_sign_flip_swaps_red_and_blue(values: list[float]) -> None:
    t = np.array(values)
    np.testing.assert_array_equal(diverging(-t), diverging(t)[:, ::-1])


def test_lightness_falls_with_magnitude() -> None:
    t = np.linspace(0, 1, 50)
    total = diverging(t).astype(int).sum(axis=1)
    assert np.all(np.diff(total) <= 0)


def test_scales() -> None:
    assert scale_for(-2.0, 1.0) == Scale(True, 2.0)
    assert scale_for(0.0, 0.5) == Scale(False, 1.0)  # pictures keep their gray levels
    assert scale_for(0.0, 4.0) == Scale(False, 4.0)
    assert scale_for(None, None) == Scale(False, 1.0)


def test_gray_keeps_8_bit_levels_and_nan_is_marked() -> None:
    levels = np.arange(256) / 255
    got = colorize(levels[None], Scale(False, 1.0))[0]
    np.testing.assert_array_equal(got[:, 0], np.arange(256))
    assert np.all(got[:, 0] == got[:, 2])
    assert colorize(np.array([[np.nan]]), Scale(True, 1.0))[0, 0].tolist() == list(NAN_COLOUR)
