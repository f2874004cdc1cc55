"""``convcli shape``: its options, one call to :func:`convcli.commands.shape.shape_chain`, a rich table or JSON.

Neighbours: the geometry and costs are :mod:`convcli.commands.shape`; the layer options it
shares with ``apply`` (stride, pad, dilation, groups) are declared in :mod:`convcli.cli.options`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .app import EXIT_EPILOG, HelpfulCommand, app
from .options import (
    COMPUTE_DTYPES,
    DilationOpt,
    DtypeName,
    PadOpt,
    StrideOpt,
    console,
    parse_pad,
    parse_pair,
)

if TYPE_CHECKING:
    from ..commands.shape import ShapeRow


@app.command(cls=HelpfulCommand, epilog=EXIT_EPILOG)
def shape(
    input_shape: Annotated[
        str,
        typer.Argument(
            metavar="[N×]C×H×W",
            help="The input's shape: HxW (one channel), CxHxW or NxCxHxW (x, X or ×). No data is read.",
            show_default=False,
        ),
    ],
    kernel: Annotated[
        Optional[str],
        typer.Option(
            "--kernel", "-k", metavar="KH×KW|K",
            help="The first layer's kernel size (7x7, or 7 for square), with --stride, --pad, --dilation, "
            "--groups and --out. Leave it out to describe every layer with --layer.",
            show_default=False,
        ),
    ] = None,
    stride: StrideOpt = "1",
    pad: PadOpt = "same",
    dilation: DilationOpt = "1",
    groups: Annotated[
        Optional[int],
        typer.Option(metavar="G", help="The first layer's channel groups (with --out). Default: 1 with --out, "
                     "else C (depthwise).", show_default=False),
    ] = None,
    out: Annotated[
        Optional[int],
        typer.Option(
            "--out", metavar="FN",
            help="The first layer's output channels (filters). Default: as many as the input has, depthwise "
            "(groups = C), as apply runs a 2-D kernel; with --out and no --groups, groups = 1.",
            show_default=False,
        ),
    ] = None,
    layers: Annotated[
        Optional[list[str]],
        typer.Option(
            "--layer", "-l", metavar="k=KHxKW,...",
            help="A further layer, after -k's (repeat for a chain, in order): 'k=KHxKW,stride=S,pad=P,dilation=D,"
            "groups=G,out=FN', every key but k optional; pairs as HxW, a four-sided pad as TxBxLxR, pad same unless "
            "given; without out the layer is depthwise.",
            show_default=False,
        ),
    ] = None,
    dtype: Annotated[
        DtypeName,
        typer.Option(metavar="|".join(COMPUTE_DTYPES), help="The activations' dtype (for their bytes)."),
    ] = "float32",
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="Print JSON on standard output instead of the table.")
    ] = False,
) -> None:
    """The geometry calculator: output size, padding applied, receptive field, FLOPs and memory, with no data.

    Each layer's numbers are the engine's (the shape 'apply' gives and the padding it
    applies, an odd 'same' total putting the extra pixel bottom/right). FLOPs are
    2·N·FN·OH·OW·(C/groups)·KH·KW; params FN·(C/groups)·KH·KW + FN; activations the output's
    bytes; "im2col" the whole column matrix the book's im2col would hold (convcli holds a
    few MB of it at a time).

    Examples:

      convcli shape 3x224x224 -k 7x7 --stride 2 --pad 3 --out 64

      convcli shape 3x224x224 -k 7 --stride 2 --pad 3 --out 64 --layer 'k=3x3,stride=2,pad=1,out=64'

      convcli shape 1x28x28 --layer k=5x5,pad=valid,out=6 --layer k=5x5,pad=valid,out=16 --json
    """
    from ..commands import shape as command
    from ..errors import ParameterError, quote

    chain: list[command.LayerSpec] = []
    if kernel is not None:
        size = parse_pair(kernel, "-k")
        if min(size if isinstance(size, tuple) else (size,)) < 1:
            raise ParameterError(f"-k must be a kernel size KHxKW of at least 1x1, got {quote(kernel)}")
        chain.append(command.LayerSpec(
            kernel=size if isinstance(size, tuple) else (size, size),
            stride=parse_pair(stride, "--stride"),  # type: ignore[arg-type]
            pad=parse_pad(pad), dilation=parse_pair(dilation, "--dilation"),  # type: ignore[arg-type]
            groups=groups, out=out,
        ))
    elif out is not None or groups is not None:
        raise ParameterError("--out and --groups describe -k's layer; give -k KHxKW (or put them in --layer)")
    chain.extend(command.parse_layer(text) for text in layers or [])
    rows = command.shape_chain(command.parse_input_shape(input_shape), chain, dtype)
    if as_json:
        typer.echo(command.shape_json(rows))
        return
    _print_table(rows)


def _print_table(rows: list[ShapeRow]) -> None:
    from rich.table import Table

    from ..commands.trace_view import format_bytes, format_count

    def dims(values: tuple[int, ...]) -> str:
        return "×".join(str(v) for v in values)

    table = Table(title="convcli shape: each layer's geometry and cost")
    for column in ("layer", "input", "weights", "pad t,b,l,r", "output", "receptive field", "FLOPs", "params",
                   "activations", "im2col"):
        table.add_column(column, justify="left" if column in ("layer", "pad t,b,l,r") else "right", no_wrap=True)
    for row in rows:
        table.add_row(
            row.layer, dims(row.input_shape), dims(row.weight_shape) + ("" if row.groups == 1 else f" g{row.groups}"),
            ",".join(str(p) for p in row.pads), dims(row.output_shape), dims(row.receptive_field),
            format_count(row.flops), format_count(row.params), format_bytes(row.activation_bytes),
            format_bytes(row.columns_bytes),
        )
    if len(rows) > 1:
        table.add_row(
            "total", "", "", "", dims(rows[-1].output_shape), dims(rows[-1].receptive_field),
            format_count(sum(r.flops for r in rows)), format_count(sum(r.params for r in rows)),
            format_bytes(sum(r.activation_bytes for r in rows)), "", style="bold",
        )
    import sys

    # a table read from a file or a pipe keeps its rows whole; in a terminal rich fits it to the width
    console(width=None if sys.stdout.isatty() else 200).print(table)
