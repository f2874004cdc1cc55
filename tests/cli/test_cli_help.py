"""Every command's --help, through Typer's CliRunner: each option listed and documented."""

from __future__ import annotations

import pytest
import typer.main
from cli_helpers import ok

from convcli.cli import app

# ---------------------------------------------------------------- help


@pytest.mark.parametrize("name", ["apply", "grad", "kernels", "info", "shape", "explain"])
def test_help_mentions_every_option(name: str) -> None:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    result = ok(name, "--help")
    assert result.stderr == ""
    text = result.stdout
    for param in command.params:
        names = [o for o in param.opts if o.startswith("-")]
        for option in names:
            assert option in text, (name, option)
        if not names:  # an argument: its help text is shown
            assert (param.help or "")[:20] in text.replace("\n", " ") or param.name in text.lower(), param.name
    assert "Usage: convcli " + name in " ".join(text.split())


def test_root_help_lists_commands() -> None:
    text = ok("--help").stdout
    for command in ("apply", "grad", "kernels", "info", "shape", "explain"):
        assert command in text
    assert ok("--version").stdout.startswith("convcli ")
