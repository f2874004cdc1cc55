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
    png: Annotated[
        Optional[str],
        typer.Option(
            "--png",
            metavar="FILE.png|-",
            help="Also draw the spec's kernels into a PNG: a square cell per tap coloured by value (red positive, "
            "blue negative, white 0, scaled by the kernel's max |tap|), the numbers in the cells when they fit, "
            "each kernel's range below it.",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", metavar="", help="With --png: print neither the matrices nor the 'wrote' line."),
    ] = False,
) -> None:
    """List the built-in kernels and the ImageMagick kernels convcli reads, or print a spec's matrices.

    Examples:

      convcli kernels

      convcli kernels gaussian:1.5

      convcli kernels "3x3: 0,-1,0,-1,5,-1,0,-1,0"

      convcli kernels "Kirsch:@"

      convcli kernels edge.txt

      convcli kernels "Kirsch:@" --png kirsch.png
    """
    from ..commands import kernels as command
    from ..errors import OutputFileError, ParameterError, visible
    from ..io.outputs import stdout_open

    check_stdin_usable(("KERNEL '-'", stdin_count(spec)))
    if png is not None:
        if spec is None:
            raise ParameterError("--png draws a kernel; give one, e.g. 'convcli kernels sobel-x --png sobel.png'")
        if spec == "-":
            raise ParameterError("--png needs a kernel that can be read twice; give a file, not '-'")
        from ..io.outputs import protected_files

        width, height = command.write_kernel_png(spec, png, protect=protected_files(spec))
        if not quiet:
            typer.echo(f"convcli: wrote {visible(repr(png)) if png != '-' else 'standard output'} "
                       f"(png, {width}×{height} pixels)", err=True)
        if quiet or png == "-":
            return
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
