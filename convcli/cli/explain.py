"""``convcli explain``: its options, one call to :func:`convcli.commands.explain.explain_command`, rich tables.

Neighbours: the arithmetic is :mod:`convcli.commands.explain`; the layer options it shares
with ``apply`` and ``grad`` are :mod:`convcli.cli.options`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from .app import EXIT_EPILOG, HelpfulCommand, app
from .options import (
    LAYER,
    KernelOpt,
    LayerArgs,
    QuietOpt,
    Reporter,
    check_stdin_once,
    check_stdin_usable,
    console,
    shared_layer_options,
    stdin_count,
)

if TYPE_CHECKING:
    from ..commands.explain import ColumnMatrix, ExplainReport, GradExplanation, PixelExplanation

#: Kernels up to this size are drawn as grids (patch, kernel, products); larger ones as a sum only.
GRID_MAX = 9

#: Output pixels (columns of im2col) per table of ``--columns``.
COLUMNS_PER_TABLE = 12


@app.command(cls=HelpfulCommand, epilog=EXIT_EPILOG)
@shared_layer_options
def explain(
    input: Annotated[
        str,
        typer.Argument(metavar="INPUT", help="An image or an array, as for apply, or '-' for standard input.",
                       show_default=False),
    ],
    kernel: KernelOpt,
    at: Annotated[
        str,
        typer.Option(
            "--at", metavar="Y,X",
            help="The output pixel (row, column; from 0) to explain; with --grad, the input pixel.",
            show_default=False,
        ),
    ],
    layer: LayerArgs = LAYER,
    fmap: Annotated[
        Optional[int],
        typer.Option(
            "--map", metavar="N",
            help="The output map (channel of the result; c·M + m for M 2-D kernels on channel c). Default: maps "
            "0-3. With --grad: the input channel (default 0).",
            show_default=False,
        ),
    ] = None,
    image: Annotated[int, typer.Option("--image", metavar="N", help="The image of a batch (from 0).")] = 0,
    grad: Annotated[
        bool,
        typer.Option("--grad", metavar="", help="Explain dx at input pixel --at: which outputs and taps read it "
                     "(through the padding too) and the sum of W·dout over them."),
    ] = False,
    dout: Annotated[
        str,
        typer.Option("--dout", metavar="FILE|ones|randn[:SEED]",
                     help="--grad: the upstream gradient, as grad's --dout."),
    ] = "ones",
    columns: Annotated[
        bool,
        typer.Option("--columns", metavar="",
                     help="Also print the whole column matrix (im2col) of the image, rows c (i,j), columns "
                     "(oy,ox), padding marked; small inputs only (at most 2000 entries)."),
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """One output pixel by hand: the input patch it reads (padding shown), the kernel, the products, their sum.

    The same input, kernel and layer options as 'apply' describe the same layer, and the sum
    printed equals the value apply writes at that pixel (shown beside it, as the layer
    computes it). With --grad it explains dx[y, x] instead; --columns shows im2col itself.

    Examples:

      convcli explain photo.png -k sobel-x --at 0,0

      convcli explain x.npy -k gaussian:1 --stride 2 --padding-mode reflect --at 3,4 --columns

      convcli explain x.npy -k laplacian --at 0,1 --grad --dout randn:1
    """
    from ..commands import explain as command
    from .options import parse_pair

    position = parse_pair(at, "--at")
    if not isinstance(position, tuple):
        from ..errors import ParameterError, quote

        raise ParameterError(f"--at takes a pixel as Y,X (row, column), got {quote(at)}")
    readers = (("INPUT '-'", stdin_count(input)), ("-k -", stdin_count(*kernel)), ("--bias -", stdin_count(layer.bias)))
    check_stdin_once(*readers)
    check_stdin_usable(*readers)
    report = Reporter(quiet)
    result = command.explain_command(input, kernel, layer, (int(position[0]), int(position[1])), fmap=fmap,
                                     image=image, grad=grad, dout=dout, columns=columns, report=report)
    _print(result)
    report.flush()


def _num(v: float) -> str:
    return f"{v + 0.0:.6g}"  # + 0.0: no "-0"


def _print(result: ExplainReport) -> None:
    import sys

    # a file or a pipe gets whole rows; in a terminal rich fits the tables to its width
    out = console(highlight=False, width=None if sys.stdout.isatty() else 240)
    for pixel in result.pixels:
        _print_pixel(out, result.subject, pixel)
    if result.grad is not None:
        _print_grad(out, result.subject, result.grad)
    if result.columns is not None:
        _print_columns(out, result.columns)
    for note in result.notes:
        out.print(note, markup=False)


def _grid(title: str, rows: list[str], cols: list[str], cells: list[list[str]]) -> Any:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    table.add_column("", style="bold")
    for col in cols:
        table.add_column(col, justify="right")
    for label, row in zip(rows, cells):
        table.add_row(label, *row)
    return table


def _print_pixel(out: Any, subject: str, pixel: PixelExplanation) -> None:
    g = pixel.geometry
    oy, ox = pixel.at
    (sh, sw), (dh, dw) = g.stride, g.dilation
    top, _, left, _ = g.pads
    mode = f"constant:{g.pad_value:g}" if g.padding_mode == "constant" else g.padding_mode
    out.print(f"out[{pixel.image}, {pixel.map}, {oy}, {ox}] of {subject}: filter {pixel.map} (group {pixel.group}) "
              f"reads rows {oy}·{sh} − {top} + i·{dh}, columns {ox}·{sw} − {left} + j·{dw} of the input, padding "
              f"{mode} (a cell marked ← reads the padding: the input pixel it copies, or the pad value)", markup=False)
    small = g.kernel_h <= GRID_MAX and g.kernel_w <= GRID_MAX
    per_channel = g.kernel_h * g.kernel_w
    for start in range(0, len(pixel.taps), per_channel) if small else []:
        taps = pixel.taps[start:start + per_channel]
        channel = taps[0].channel
        rows = [str(taps[i * g.kernel_w].row) for i in range(g.kernel_h)]
        cols = [str(taps[j].col) for j in range(g.kernel_w)]

        def cell(t: Any) -> str:
            if not t.padded:
                return _num(t.value)
            return f"{_num(t.value)} ←" + ("pad" if t.source is None else f"({t.source[0]},{t.source[1]})")

        grid = [[cell(t) for t in taps[i * g.kernel_w:(i + 1) * g.kernel_w]] for i in range(g.kernel_h)]
        out.print(_grid(f"input channel {channel}: the patch (input row × column)", rows, cols, grid))
        k_rows = [str(i) for i in range(g.kernel_h)]
        k_cols = [str(j) for j in range(g.kernel_w)]
        kernel = [[_num(t.weight) for t in taps[i * g.kernel_w:(i + 1) * g.kernel_w]] for i in range(g.kernel_h)]
        out.print(_grid(f"W[{pixel.map}, {channel - pixel.group * g.channels_per_group}]: the kernel (i × j)",
                        k_rows, k_cols, kernel))
        terms = [[_num(t.product) for t in taps[i * g.kernel_w:(i + 1) * g.kernel_w]] for i in range(g.kernel_h)]
        out.print(_grid("patch × kernel, tap by tap", k_rows, k_cols, terms))
    if not small:
        out.print(f"({len(pixel.taps)} taps: kernels over {GRID_MAX}×{GRID_MAX} are summed without grids)",
                  markup=False)
    products = sum(t.product for t in pixel.taps)
    padded = sum(1 for t in pixel.taps if t.padded)
    out.print(f"sum of the {len(pixel.taps)} products ({padded} read from the padding) = {_num(products)}",
              markup=False)
    out.print(f"+ bias {_num(pixel.bias)} = {_num(pixel.total)}   (float64, by hand)", markup=False)
    out.print(f"the layer apply runs gives {_num(pixel.engine)} ({pixel.dtype}); difference "
              f"{abs(pixel.engine - pixel.total):.3g}", markup=False)


def _print_grad(out: Any, subject: str, grad: GradExplanation) -> None:
    y, x = grad.at
    out.print(f"dx[{grad.image}, {grad.channel}, {y}, {x}] of {subject}: the outputs whose taps read input pixel "
              f"({y}, {x}), and dx = Σ W[f, c, i, j] · dout[f, oy, ox] over them", markup=False)
    rows = [f"out[{t.map}, {t.oy}, {t.ox}]" for t in grad.contributions]
    cells = [[f"({t.i},{t.j})", f"({t.row},{t.col})" + ("" if (t.row, t.col) == (y, x) else " ← padding"),
              _num(t.weight), _num(t.dout), _num(t.product)] for t in grad.contributions]
    if cells:
        out.print(_grid("contributions", rows, ["tap (i,j)", "read at", "W", "dout", "W·dout"], cells))
    else:
        out.print("no output reads this pixel (the stride or valid padding skips it): dx is 0", markup=False)
    out.print(f"dx = {_num(grad.total)}   (float64, by hand, {len(grad.contributions)} terms)", markup=False)
    out.print(f"the layer grad runs gives {_num(grad.engine)}; difference {abs(grad.engine - grad.total):.3g}",
              markup=False)


def _print_columns(out: Any, cols: ColumnMatrix) -> None:
    out.print(f"the column matrix col: {len(cols.rows)} rows (channel, tap) × {len(cols.columns)} columns (output "
              "pixels (oy,ox)); * marks a value read from the padding; out = W · col", markup=False)
    cells = [[_num(v) + ("*" if p else "") for v, p in zip(vals, pads)] for vals, pads in zip(cols.values, cols.padded)]
    for start in range(0, len(cols.columns), COLUMNS_PER_TABLE):  # a few output pixels per table, so it stays legible
        stop = start + COLUMNS_PER_TABLE
        out.print(_grid("", cols.rows, cols.columns[start:stop], [row[start:stop] for row in cells]))
