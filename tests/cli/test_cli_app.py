"""The CLI's shell around every command: one line on stderr whatever goes wrong, no warnings, help texts.

(Each command's own results and errors are in test_cli_apply.py, test_cli_grad.py,
test_cli_kernels.py and test_cli_info.py; real processes and pipes in test_cli_subprocess.py.)
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from convcli.cli import app

runner = CliRunner()


def help_text(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0, result.stderr
    return " ".join(result.stdout.replace("│", " ").split())


def test_an_unexpected_exception_is_one_line_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import convcli.commands.apply

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("something\nwent wrong")

    monkeypatch.setattr(convcli.commands.apply, "apply_filters", broken)
    np.save(tmp_path / "x.npy", np.ones((4, 4)))
    result = runner.invoke(app, ["apply", str(tmp_path / "x.npy"), "-k", "box:3", "-o", str(tmp_path / "o.npy")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "convcli: error: internal error: RuntimeError: something went wrong (please report it)"
    ]
    assert result.stdout == ""


def test_numpy_runtime_warnings_do_not_reach_stderr(tmp_path: Path) -> None:
    np.save(tmp_path / "w.npy", np.array([[np.inf, -np.inf], [1.0, 2.0]]))  # its mean is inf - inf: a warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, ["info", str(tmp_path / "w.npy")])
    assert result.exit_code == 0 and result.stderr == "", result.stderr
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert "nan" in result.stdout  # the value is still shown as it is


def test_input_help_lists_every_input_kind() -> None:
    root = help_text()
    assert ".npz" in root and ".txt/.csv" in root
    for command in ("apply", "grad"):
        text = help_text(command)
        for kind in ("PNG" if command == "apply" else "image", ".npy", ".npz", ".txt/.csv", "'-' for standard input"):
            assert kind in text, (command, kind)
    assert ".txt/.csv" in help_text("info")


def test_option_help_says_what_is_accepted() -> None:
    text = help_text("apply")
    assert "offset when it sums to zero (sobel-x, laplacian, log) or to a negative number" in text
    assert "Default, per kernel" in text and "valid interior" in text
    for option in ("Stride: N, or 'H,W' (also HxW)", "'H,W' (also HxW) or 'T,B,L,R'", "Dilation", "'-' for .npy"):
        assert option in text, option
    assert "16 for one-map PNGs when every input is a 16-bit image" in text
