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
