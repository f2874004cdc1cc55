"""Shared helpers of the CLI tests: run a command in-process and check its result."""

from __future__ import annotations

from typing import Any, Optional

from typer.testing import CliRunner, Result

from convcli.cli import app

runner = CliRunner()


def run(*args: Any, input: Optional[bytes] = None) -> Result:
    """``convcli ARGS...`` in-process; arguments are str()-ed."""
    return runner.invoke(app, [str(a) for a in args], input=input)


def ok(*args: Any, input: Optional[bytes] = None) -> Result:
    """Like :func:`run`, asserting exit 0 and no traceback."""
    result = run(*args, input=input)
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "Traceback" not in result.stderr
    return result


def assert_one_line_error(result: Result, code: int, *fragments: str) -> str:
    """Exit ``code``, exactly one 'convcli: error:' line on stderr holding every fragment, nothing on stdout."""
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("convcli: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""
    return lines[0]
