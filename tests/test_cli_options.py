"""Parsing of the options apply and grad share (--stride, --dilation, --pad, --bias)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convcli.cli.options import check_stdin_once, parse_bias, parse_pad, parse_pair, stdin_count
from convcli.errors import ConvcliError, InputFileError, ParameterError


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
    [("same", "same"), ("VALID", "valid"), ("2", 2), ("1,2", (1, 2)), ("0,1,2,3", (0, 1, 2, 3)), ("1x2", (1, 2)),
     ("3X4", (3, 4)), ("1×2", (1, 2))],
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


@pytest.mark.parametrize("text", ["2X3", "2×3", " 2 x 3 "])
def test_parse_pair_accepts_every_pair_separator(text: str) -> None:
    assert parse_pair(text, "--stride") == (2, 3)


def test_parse_bias_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys
    from types import SimpleNamespace

    buffer = io.BytesIO()
    np.save(buffer, np.array([0.5, -1.0], np.float32))
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(buffer.getvalue())))
    np.testing.assert_array_equal(parse_bias("-"), [0.5, -1.0])
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(b"0.5")))
    with pytest.raises(InputFileError, match=r"cannot read '<stdin>' as \.npy"):
        parse_bias("-")


def test_check_stdin_once() -> None:
    check_stdin_once(("INPUT '-'", 1), ("-k -", 0), ("--bias -", 0))
    check_stdin_once(("INPUT '-'", 0))
    with pytest.raises(ParameterError, match=r"^standard input can be read once only, but INPUT '-' and --bias - read "
                                             r"it; give the others as files$"):
        check_stdin_once(("INPUT '-'", 1), ("-k -", 0), ("--bias -", 1))
    with pytest.raises(ParameterError, match=r"but -k - \(2 times\) read it"):
        check_stdin_once(("INPUT '-'", 0), ("-k -", 2))
    assert stdin_count("-", " - ", "x.npy", None) == 2


def test_choices_match_the_library() -> None:
    """The CLI's choice enums list exactly what the library accepts."""
    from convcli.cli.options import DisplayChoice, FormatChoice, PaddingModeChoice
    from convcli.engine.geometry import PADDING_MODES
    from convcli.io.display import DISPLAY_MODES
    from convcli.io.outputs import OUTPUT_FORMATS

    assert [c.value for c in PaddingModeChoice] == list(PADDING_MODES)
    assert [c.value for c in DisplayChoice] == list(DISPLAY_MODES)
    assert sorted(c.value for c in FormatChoice) == sorted(OUTPUT_FORMATS)
