"""``convcli apply``: its options, one call to :func:`convcli.commands.apply.apply_command`.

Neighbours: what the command does (reading, filtering, naming and writing outputs) is
:mod:`convcli.commands.apply`; the options it shares with ``grad`` are
:mod:`convcli.cli.options`.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..io.formats import DISPLAY_MODES, OUTPUT_FORMATS
from .app import EXIT_EPILOG, HelpfulCommand, app
from .options import (
    LAYER,
    DisplayName,
    FormatName,
    KernelOpt,
    LayerArgs,
    QuietOpt,
    Reporter,
    check_stdin_once,
    check_stdin_usable,
    shared_layer_options,
    stdin_count,
)


@app.command(cls=HelpfulCommand, epilog=EXIT_EPILOG)
@shared_layer_options
def apply(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT...",
            help="Images (PNG, JPEG, TIFF, BMP, WebP, GIF), arrays (.npy, .npz with x or one array, .txt/.csv; "
            "HW, CHW or NCHW), or '-' for standard input.",
            show_default=False,
        ),
    ],
    kernel: KernelOpt,
    output: Annotated[
        Optional[str],
        typer.Option(
            "--output",
            "-o",
            metavar="FILE|DIR/|-",
            help="Output file, a template with {stem} and {map}, a directory (existing, or ending in '/') to write "
            "the default names into, or '-' for standard output (.npy unless --format). Default: beside each input, "
            "named STEM-KERNEL.png (.npy for array inputs).",
        ),
    ] = None,
    layer: LayerArgs = LAYER,
    format: Annotated[
        Optional[FormatName],
        typer.Option(
            "--format",
            "-f",
            metavar="|".join(OUTPUT_FORMATS),
            help="Output format: png (mapped to pixels), tiff (float), npy or npz (raw float NCHW, never scaled). "
            "Default: from -o's extension.",
        ),
    ] = None,
    display: Annotated[
        Optional[DisplayName],
        typer.Option(
            metavar="|".join(DISPLAY_MODES),
            help="How PNG maps floats to pixels: clip to [0, 1], abs, minmax (per map), offset (0.5 + value). "
            "Default: clip when every kernel's sum (after --normalize) is positive; offset when any kernel sums "
            "to zero (sobel-x, laplacian, log) or to a negative number.",
        ),
    ] = None,
    bit_depth: Annotated[
        Optional[int],
        typer.Option(
            "--bit-depth",
            metavar="8|16",
            help="PNG bit depth: 8 or 16 (a 16-bit PNG holds one map: one file per map). Default: from the "
            "inputs, 16 for one-map PNGs when every input is a 16-bit image (16-bit gray PNG or TIFF, float "
            "TIFF), else 8.",
            show_default=False,
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Filter images and arrays with one or more kernels and write the feature maps.

    A 2-D kernel filters each channel on its own, so RGB stays RGB; a 4-D kernel
    (FN, C/groups, FH, FW) is a convolution layer that mixes channels. Inputs of the
    same size run as one batch. Output: one PNG per image when there are 1, 3 or 4
    maps, one per map otherwise; .npy/.npz hold the raw (N, FN, OH, OW) result.

    Examples:

      convcli apply photo.png -k sobel-x -o edges.png

      convcli apply photo.png -k gaussian:2 -o - | convcli apply - -k sobel-x -o edges.png
    """
    from ..commands import apply as command

    readers = (
        ("INPUT '-'", stdin_count(*inputs)), ("-k -", stdin_count(*kernel)), ("--bias -", stdin_count(layer.bias))
    )
    check_stdin_once(*readers)
    check_stdin_usable(*readers)
    out = command.OutputOptions(output=output, format=format, display=display, bit_depth=bit_depth)
    report = Reporter(quiet)
    command.apply_command(inputs, kernel, layer, out, report)
    report.flush()
