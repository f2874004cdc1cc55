"""The convcli command-line tool: a thin Typer layer over the library."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import __version__

app = typer.Typer(
    name="convcli",
    help="im2col 2-D convolution for images and arrays: filter, inspect, back-propagate.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """im2col 2-D convolution for images and arrays: filter, inspect, back-propagate."""


def main() -> None:
    """Entry point of the ``convcli`` console script."""
    app()
