"""Parsing of the options apply and grad share (--stride, --dilation, --pad), standard input read once, the choices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convcli.cli.options import check_stdin_once, parse_pad, parse_pair, stdin_count
from convcli.errors import ParameterError


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


@pytest.mark.parametrize("text", ["2X3", "2×3", " 2 x 3 "])
def test_parse_pair_accepts_every_pair_separator(text: str) -> None:
    assert parse_pair(text, "--stride") == (2, 3)


def test_check_stdin_once() -> None:
    check_stdin_once(("INPUT '-'", 1), ("-k -", 0), ("--bias -", 0))
    check_stdin_once(("INPUT '-'", 0))
    with pytest.raises(ParameterError, match=r"^standard input can be read once only, but INPUT '-' and --bias - read "
                                             r"it; give the others as files$"):
        check_stdin_once(("INPUT '-'", 1), ("-k -", 0), ("--bias -", 1))
    with pytest.raises(ParameterError, match=r"but -k - \(2 times\) read it"):
        check_stdin_once(("INPUT '-'", 0), ("-k -", 2))
    assert stdin_count("-", " - ", "x.npy", None) == 2


def test_the_cli_accepts_exactly_the_library_choices(tmp_path: Path) -> None:
    """The choices are built from the library's own tuples (padding modes: its own parser, aliases
    included): every value accepted, any other refused."""
    from cli_helpers import ok, run

    from convcli.engine.geometry import PADDING_ALIASES, PADDING_MODES
    from convcli.io.formats import DISPLAY_MODES, OUTPUT_FORMATS

    x = tmp_path / "x.npy"
    np.save(x, np.ones((1, 1, 5, 5)))
    apply = ["apply", x, "-k", "box:3", "-q"]
    for mode in [*PADDING_MODES, *PADDING_ALIASES, "constant:0.25"]:
        ok(*apply, "--padding-mode", mode.upper(), "-o", tmp_path / "p.npy")  # case-insensitive
        ok("grad", x, "-k", "box:3", "--dout", "ones", "-q", "--padding-mode", mode, "-o", tmp_path / "g.npz")
    for mode in DISPLAY_MODES:
        ok(*apply, "--display", mode, "-o", tmp_path / "d.png")
        ok("grad", x, "-k", "box:3", "--dout", "ones", "-q", "--display", mode, "--dx", tmp_path / "dx.png")
    for fmt in OUTPUT_FORMATS:
        ok(*apply, "--format", fmt, "-o", "-")
    for command, option, value in (("apply", "--display", "gamma"),
                                   ("apply", "--format", "jpg"), ("grad", "--display", "gamma")):
        result = run(command, x, "-k", "box:3", "--dout", "ones", option, value) if command == "grad" else run(
            *apply, option, value)
        assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.stderr, result.stderr
    for command in ("apply", "grad"):
        args = [command, x, "-k", "box:3", "--padding-mode", "mirrored", "-o", tmp_path / "bad.npz"]
        result = run(*args, "--dout", "ones") if command == "grad" else run(*args)
        assert result.exit_code == 2 and "--padding-mode must be one of" in result.stderr, result.stderr
