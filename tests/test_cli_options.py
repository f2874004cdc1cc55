"""Parsing of the options apply and grad share (--stride, --dilation, --pad, --bias)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convcli.cli_options import parse_bias, parse_pad, parse_pair
from convcli.errors import ConvcliError, ParameterError


@pytest.mark.parametrize(
    ("text", "expected"), [("2", 2), (" 3 ", 3), ("2,1", (2, 1)), ("1, 4", (1, 4)), ("2x3", (2, 3))]
)
def test_parse_pair(text: str, expected: object) -> None:
    assert parse_pair(text, "--stride") == expected


@pytest.mark.parametrize("text", ["", "a", "1.5", "1,2,3", "2,"])
def test_parse_pair_refuses(text: str) -> None:
    with pytest.raises(ParameterError, match="--dilation must be an integer or 'H,W'"):
        parse_pair(text, "--dilation")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("same", "same"), ("VALID", "valid"), ("2", 2), ("1,2", (1, 2)), ("0,1,2,3", (0, 1, 2, 3))],
)
def test_parse_pad(text: str, expected: object) -> None:
    assert parse_pad(text) == expected


@pytest.mark.parametrize(("text", "message"), [("full", "--pad must be same, valid"), ("1,2,3", "1, 2 or 4 integers")])
def test_parse_pad_refuses(text: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        parse_pad(text)


def test_parse_bias_numbers_and_file(tmp_path: Path) -> None:
    np.testing.assert_array_equal(parse_bias("0.5"), [0.5])
    np.testing.assert_array_equal(parse_bias("0.1,-2;3"), [0.1, -2.0, 3.0])
    path = tmp_path / "b.npy"
    np.save(path, np.array([[1, 2], [3, 4]], dtype=np.int16))
    got = parse_bias(str(path))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [1, 2, 3, 4])


@pytest.mark.parametrize("text", ["nan", "1,inf", "abc", "missing.npy"])
def test_parse_bias_refuses(text: str) -> None:
    with pytest.raises(ConvcliError, match="--bias"):
        parse_bias(text)
