"""convcli.errors: the error hierarchy's exit codes and the one-line helper every module uses."""

from __future__ import annotations

import pytest

from convcli.errors import ConvcliError, InputFileError, KernelSpecError, MemoryLimitError, one_line


@pytest.mark.parametrize(
    ("reason", "limit", "expected"),
    [
        (ValueError("two\nlines\t and  spaces"), None, "two lines and spaces"),
        (OverflowError(), None, "OverflowError"),
        ("x" * 200, 120, "x" * 117 + "..."),
        ("short", 120, "short"),
        (KeyError("k"), None, "'k'"),
    ],
)
def test_one_line(reason: object, limit: int, expected: str) -> None:
    assert one_line(reason, limit) == expected


def test_exit_codes() -> None:
    assert MemoryLimitError("m").exit_code == 1 and isinstance(MemoryLimitError("m"), ConvcliError)
    assert InputFileError("i").exit_code == 3 and KernelSpecError("k").exit_code == 2


def test_quote_cuts_long_text_and_says_how_long() -> None:
    from convcli.errors import quote

    assert quote("box:x") == "'box:x'"
    assert quote("z" * 100_000) == "'" + "z" * 37 + "...' (100000 characters)"
    assert quote("a\x1b[31mb") == "'a\\x1b[31mb'"  # repr: control characters as escapes


def test_visible_and_name_of() -> None:
    from convcli.errors import name_of, visible

    assert visible("a\x1b[2Jb\nc\td\x7f") == "a\\x1b[2Jb\\nc\\td\\x7f"
    assert visible("é ü ×") == "é ü ×"
    long = "d/" * 300 + "f.png"
    shown = name_of(long)
    assert len(shown) <= 202 and shown.endswith("f.png'") and "..." in shown


def test_interrupted_knows_its_signal() -> None:
    import signal

    from convcli.errors import Interrupted

    stop = Interrupted(signal.SIGTERM)
    assert isinstance(stop, KeyboardInterrupt) and stop.signum == signal.SIGTERM and stop.name == "SIGTERM"


def test_reworded_warnings_one_line_once_each() -> None:
    import warnings

    from convcli.errors import ConvcliWarning, reworded_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with reworded_warnings("py2.npy"):
            warnings.warn("two\nlines", UserWarning, stacklevel=1)
            warnings.warn("two\nlines", UserWarning, stacklevel=1)
            warnings.warn("overflow", RuntimeWarning, stacklevel=1)
    texts = [(w.category, str(w.message)) for w in caught]
    expected = [(RuntimeWarning, "overflow"), (ConvcliWarning, "'py2.npy': two lines")]
    assert sorted(texts, key=str) == sorted(expected, key=str)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with reworded_warnings("x"):
                warnings.warn("dropped", UserWarning, stacklevel=1)
                raise ValueError("the block failed")
        except ValueError:
            pass
    assert caught == []  # a failure says one thing
