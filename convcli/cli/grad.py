"""``convcli grad``: its options, one call to :func:`convcli.commands.grad.grad_command`, the check's table.

Neighbours: what the command does (outputs, backward pass, check and its verdict) is
:mod:`convcli.commands.grad`; the options it shares with ``apply`` are
:mod:`convcli.cli.options`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..io.formats import DISPLAY_MODES
from .app import EXIT_EPILOG, HelpfulCommand, app
from .options import (
    LAYER,
    DisplayName,
    ExplainOpt,
    KernelOpt,
    LayerArgs,
    QuietOpt,
    Reporter,
    check_stdin_once,
    check_stdin_usable,
    print_explained,
    shared_layer_options,
    stdin_count,
)

if TYPE_CHECKING:
    from ..commands.grad import CheckReport
    from ..commands.trace_view import ExplainedRun


@app.command(cls=HelpfulCommand, epilog=EXIT_EPILOG)
@shared_layer_options
def grad(
    input: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="An image, an array (.npy, .npz with x or one array, .txt/.csv; HW, CHW or NCHW), or '-' for "
            "standard input.",
            show_default=False,
        ),
    ],
    kernel: KernelOpt,
    dout: Annotated[
        str,
        typer.Option(
            "--dout",
            metavar="FILE|-|ones|randn[:SEED]",
            help="Upstream gradient dL/dy: a .npy of the forward output's shape (N, FN, OH, OW) (an .npz with dout "
            "or y also works), '-' for standard input, or a generator: ones, randn, randn:SEED (standard normal, "
            "SEED default 0). A wrong shape is an error that names the shape expected.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Optional[str],
        typer.Option(
            "--output",
            "-o",
            metavar="FILE.npz|-",
            help="An .npz holding dx, dW, db (and dK, the gradient for the kernels as given), or '-' for standard "
            "output. Default: STEM-grad.npz beside the input, unless --dx/--dw/--db are given.",
        ),
    ] = None,
    dx_path: Annotated[
        Optional[str],
        typer.Option(
            "--dx",
            metavar="FILE|-",
            help="Write dx alone, shape (N, C, H, W): .npy (raw), .png (display-mapped; maps under 96 pixels "
            "enlarged with whole pixels) or '-'.",
        ),
    ] = None,
    dw_path: Annotated[
        Optional[str],
        typer.Option(
            "--dw",
            metavar="FILE|-",
            help="Write the weight gradient alone: .npy, .png (each kernel enlarged with whole pixels, a 3×3 kernel "
            "a 3×3 grid of squares) or '-'. This is dK when there is one (2-D kernels: (FH, FW) for one kernel, "
            "(M, FH, FW) for M), else dW (FN, C/groups, FH, FW).",
        ),
    ] = None,
    db_path: Annotated[
        Optional[str],
        typer.Option(
            "--db", metavar="FILE.npy|-", help="Write db alone: .npy or '-', shape (FN,), one per output map."
        ),
    ] = None,
    montage: Annotated[
        Optional[str],
        typer.Option(
            "--montage",
            metavar="FILE.png|-",
            help="Draw dx (per image and channel), dW (per filter and channel) and dK (per kernel) in one labelled "
            "PNG grid: small maps enlarged with whole pixels, signed ones red/blue around a white 0 (scale "
            "±max|v|), each with its value range. Alone, no .npz is written by default.",
            show_default=False,
        ),
    ] = None,
    layer: LayerArgs = LAYER,
    display: Annotated[
        DisplayName,
        typer.Option(
            metavar="|".join(DISPLAY_MODES),
            help="How --dx/--dw PNGs map gradients to pixels (as apply's --display); each map on its own.",
        ),
    ] = "minmax",
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            metavar="",
            help="Check the gradients: compare dx, dW, db (and dK) at --check-samples random entries each with "
            "float64 central differences of L, print the max abs and rel errors, and exit 1, writing nothing, "
            "when one exceeds --tol.",
        ),
    ] = False,
    check_samples: Annotated[
        int, typer.Option("--check-samples", metavar="N", help="--check: entries sampled per tensor (all when fewer).")
    ] = 20,
    eps: Annotated[float, typer.Option("--eps", metavar="STEP", help="--check: central-difference step, > 0.")] = 1e-3,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="--check: seed of the sampled entries, >= 0.")] = 0,
    tol: Annotated[
        Optional[float],
        typer.Option(
            "--tol",
            metavar="TOL",
            help="--check: largest relative error that passes. Default: 1e-3 (float32), 1e-6 (float64).",
        ),
    ] = None,
    explain: ExplainOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Backward pass: dx, dW, db (and dK) of the layer 'apply' runs, for an upstream gradient dout.

    The loss is L = sum(y·dout), so dout is dL/dy; dout = y (from 'apply -o -') gives the gradient
    of ½‖y‖². The same input, kernel and geometry options as 'apply' describe the same layer.

    dW is for the layer's weights as they run, (FN, C/groups, FH, FW), after --scale or --normalize,
    the kernels' common frame and --flip; db is per output map, (FN,), for a zero bias when none is
    given. dK is for the kernels as you gave them. A 2-D kernel filters each channel (filter c·M + m is
    kernel m on channel c), so dK[m] = Σ_c dW[c·M + m, 0], rotated back 180° under --flip, cut out of
    the frame, and taken through w = k / sum(k) under --normalize: dK = (g − ⟨g, w⟩) / sum(k) for g the
    gradient for w (a zero-sum kernel is left alone), or through --scale by its chain rule. dK has the
    kernels' shape: (FH, FW) for one, (M, FH, FW) for M (kernels of different sizes: their common
    frame); an ImageMagick hole gets 0. Layer (4-D) kernels get a dK, (FN, C/groups, FH, FW), only
    under --flip or --normalize. --dw writes dK when there is one.

    A summary (shapes, norms, time) goes to stderr unless --quiet; so does the --check table.

    Examples:

      convcli grad x.npy -k w.npy --dout randn:0 --check

      convcli grad photo.png -k sobel-x --dout ones --dx dx.png --dw dk.npy

      convcli grad x.npy -k w.npy --dout randn:0 --montage grads.png

      convcli apply x.npy -k w.npy -o - | convcli grad x.npy -k w.npy --dout - -o g.npz

      convcli grad x.npy -k w.npy --dout ones --explain   (the products dW and dx came from)
    """
    from ..commands import grad as command

    checking = command.CheckOptions(check_samples, eps, seed, tol) if check else None  # checked first
    readers = (
        ("INPUT '-'", stdin_count(input)), ("--dout -", stdin_count(dout)), ("-k -", stdin_count(*kernel)),
        ("--bias -", stdin_count(layer.bias)),
    )
    check_stdin_once(*readers)
    check_stdin_usable(*readers)
    outputs = command.GradOutputOptions(output=output, dx=dx_path, dw=dw_path, db=db_path, display=display,
                                        montage=montage)
    report = Reporter(quiet)
    runs: Optional[list[ExplainedRun]] = [] if explain else None
    command.grad_command(input, kernel, dout, layer, outputs, checking, report,
                         show_check=None if quiet else _print_check, explain=runs)
    if runs:
        print_explained(runs)
    report.flush()


def _print_check(report: CheckReport) -> None:
    """The --check table on stderr: one row per tensor, then each row's note."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Gradient check: analytic vs float64 central differences (tolerance {report.tolerance:g})",
        caption=report.caption or None,
    )
    for column in ("tensor", "samples", "max abs error", "max rel error", "result"):
        table.add_column(column)
    for row in report.rows:
        if not row.samples:
            table.add_row(row.name, "0", "-", "-", "[yellow]not checked[/yellow]")
            continue
        verdict = "[green]ok[/green]" if row.passed else "[red]FAIL[/red]"
        table.add_row(row.name, str(row.samples), f"{row.max_abs:.3g}", f"{row.max_rel:.3g}", verdict)
    notes = [f"{row.name}: {row.note}" for row in report.rows if row.note]
    Console(stderr=True).print(table)
    for note in notes:
        Console(stderr=True).print(note, markup=False, highlight=False)
