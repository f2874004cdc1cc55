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
            help="A kernel spec to print as a matrix (e.g. gaussian:1.5, sobel-x, 'Kirsch:@', a file, or '-' for "
            "a kernel file on standard input); a list or rotation set prints each kernel.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List the built-in kernels and the ImageMagick kernels convcli reads, or print a spec's matrices."""
    from ..commands import kernels as command

    if spec is not None:
        for index, (heading, matrix) in enumerate(command.describe_kernels(spec)):
            if index:
                typer.echo("")
            typer.echo(heading)
            typer.echo(matrix)
        return
    from rich.console import Console
    from rich.table import Table

    for title, rows in ((command.LISTING_TITLE, command.kernel_listing()),
                        (command.IMAGEMAGICK_TITLE, command.imagemagick_listing())):
        table = Table(title=title)
        table.add_column("kernel", style="bold", no_wrap=True)
        table.add_column("what it does")
        for usage, summary in rows:
            table.add_row(usage, summary)
        Console().print(table)
