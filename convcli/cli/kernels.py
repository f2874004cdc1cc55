"""``convcli kernels``: the listing of the built-ins, or one kernel's matrix, printed.

Neighbours: the rows and the matrix come from :mod:`convcli.commands.kernels`.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .app import app


@app.command()
def kernels(
    spec: Annotated[
        Optional[str],
        typer.Argument(
            help="A kernel spec to print as a matrix (e.g. gaussian:1.5, sobel-x, a file, or '-' for a kernel "
            "file on standard input).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List the built-in kernels, or print one kernel's matrix."""
    from ..commands import kernels as command

    if spec is not None:
        heading, matrix = command.describe_kernel(spec)
        typer.echo(heading)
        typer.echo(matrix)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=command.LISTING_TITLE)
    table.add_column("kernel", style="bold", no_wrap=True)
    table.add_column("what it does")
    for usage, summary in command.kernel_listing():
        table.add_row(usage, summary)
    Console().print(table)
