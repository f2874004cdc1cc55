"""``convcli kernels``: the listing of the built-ins, or one kernel's matrix, printed.

Neighbours: the rows and the matrix come from :mod:`convcli.commands.kernels`.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .app import EXIT_EPILOG, HelpfulCommand, app
from .options import check_stdin_usable, console, stdin_count


@app.command(cls=HelpfulCommand, epilog=EXIT_EPILOG)
def kernels(
    spec: Annotated[
        Optional[str],
        typer.Argument(
            metavar="[KERNEL]",
            help="A kernel spec to print as a matrix (e.g. gaussian:1.5, sobel-x, 'Kirsch:@', a file, or '-' for "
            "a kernel file on standard input); a list or rotation set prints each kernel.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List the built-in kernels and the ImageMagick kernels convcli reads, or print a spec's matrices.

    Examples:

      convcli kernels

      convcli kernels gaussian:1.5

      convcli kernels "3x3: 0,-1,0,-1,5,-1,0,-1,0"

      convcli kernels "Kirsch:@"

      convcli kernels edge.txt
    """
    from ..commands import kernels as command
    from ..errors import OutputFileError, visible
    from ..io.outputs import stdout_open

    check_stdin_usable(("KERNEL '-'", stdin_count(spec)))
    if not stdout_open():
        raise OutputFileError("standard output is closed; 'convcli kernels' prints there")
    if spec is not None:
        for index, (heading, matrix) in enumerate(command.describe_kernels(spec)):
            if index:
                typer.echo("")
            typer.echo(visible(heading))
            typer.echo(matrix)
        return
    from rich.table import Table

    for title, rows in ((command.LISTING_TITLE, command.kernel_listing()),
                        (command.IMAGEMAGICK_TITLE, command.imagemagick_listing())):
        table = Table(title=title)
        table.add_column("kernel", style="bold", no_wrap=True)
        table.add_column("what it does")
        for usage, summary in rows:
            table.add_row(usage, summary)
        console().print(table)
