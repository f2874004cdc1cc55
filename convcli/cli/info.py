"""``convcli info``: the rows of :func:`convcli.commands.info.info_rows`, printed as a table.

Neighbours: what each row holds is :mod:`convcli.commands.info`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app
from .options import GrayOpt, KeepAlphaOpt


@app.command()
def info(
    files: Annotated[
        list[str],
        typer.Argument(help="Images, arrays (.npy, .npz, .txt/.csv), or '-' for standard input.", show_default=False),
    ],
    gray: GrayOpt = False,
    keep_alpha: KeepAlphaOpt = False,
) -> None:
    """Print shape, dtype and min/max/mean of images and arrays, as convcli loads them.

    An .npz with several arrays and none named x (such as 'grad' writes) gets one row per array, as stored.
    """
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    from ..commands.info import COLUMNS, info_rows

    rows = info_rows(files, gray=gray, keep_alpha=keep_alpha)
    table = Table()
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row.cells())
    console = Console()
    if not console.is_terminal:  # a pipe or a file: the table's natural width, no folded numbers
        width = Measurement.get(console, console.options.update_width(100_000), table).maximum
        console = Console(width=max(console.width, width))
    console.print(table)
