"""``convcli info``: the rows of :func:`convcli.commands.info.info_rows`, printed as a table or as JSON.

The table fits the terminal (or ``COLUMNS``, when set), and is as wide as it needs in a
pipe or a file; names and notes are printed as they are (never read as markup), control
characters made visible.  ``--json`` prints the same rows for scripts.

Neighbours: what each row holds is :mod:`convcli.commands.info`.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Optional

import typer

from .app import EXIT_EPILOG, HelpfulCommand, app
from .options import GrayOpt, KeepAlphaOpt, MaxPixelsOpt, check_stdin_once, check_stdin_usable, console, stdin_count


@app.command(cls=HelpfulCommand, epilog=EXIT_EPILOG)
def info(
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE...",
            help="Images, arrays (.npy, .npz, .txt/.csv), or '-' for standard input.",
            show_default=False,
        ),
    ],
    gray: GrayOpt = False,
    keep_alpha: KeepAlphaOpt = False,
    max_pixels: MaxPixelsOpt = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            metavar="",
            help="Print the rows as a JSON list of objects (file, kind, shape, dtype, min, max, mean, notes), "
            "for scripts.",
        ),
    ] = False,
) -> None:
    """Print shape, dtype and min/max/mean of images and arrays, as convcli loads them.

    An .npz with several arrays and none named x (such as 'grad' writes) gets one row per array, as stored.

    Examples:

      convcli info photo.png gradients.npy

      convcli apply photo.png -k sobel-x -o - | convcli info -

      convcli info --json grads.npz
    """
    from ..commands.info import COLUMNS, info_rows
    from ..errors import OutputFileError, ParameterError, visible
    from ..io.limits import ReadLimits
    from ..io.outputs import stdout_open

    if max_pixels is not None and max_pixels < 1:
        raise ParameterError(f"--max-pixels must be a positive integer, got {max_pixels}")
    readers = (("FILE '-'", stdin_count(*files)),)
    check_stdin_once(*readers)
    check_stdin_usable(*readers)
    if not stdout_open():
        raise OutputFileError("standard output is closed; 'convcli info' prints its table there")
    rows = info_rows(files, gray=gray, keep_alpha=keep_alpha, limits=ReadLimits.of(max_pixels))
    if as_json:
        typer.echo(json.dumps([row.record() for row in rows], indent=2))
        return

    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(visible(cell)) for cell in row.cells()))  # as they are: never markup
    out = console(highlight=False)
    if not out.is_terminal and not _columns():  # a pipe or a file: the table's natural width
        width = Measurement.get(out, out.options.update_width(100_000), table).maximum
        out = console(width=max(out.width, width), highlight=False)
    out.print(table)


def _columns() -> Optional[int]:
    """``COLUMNS``, when it is set to a width: the table fits it, terminal or not."""
    value = os.environ.get("COLUMNS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None
