"""``convcli apply``: its options, one call to :func:`convcli.commands.apply.apply_command`.

Neighbours: what the command does (reading, filtering, naming and writing outputs) is
:mod:`convcli.commands.apply`; the options it shares with ``grad`` are
:mod:`convcli.cli.options`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Optional

import typer

from ..io.formats import DEFAULT_QUALITY, DISPLAY_MODES, OUTPUT_FORMATS, PNG_LEVEL
from ..kernels.combine import COMBINE_MODES
from .app import EXIT_EPILOG, HelpfulCommand, app
from .options import (
    LAYER,
    DisplayName,
    ExplainOpt,
    FormatName,
    KernelOpt,
    LayerArgs,
    QuietOpt,
    Reporter,
    check_stdin_once,
    check_stdin_usable,
    print_equivalents,
    print_explained,
    shared_layer_options,
    show_preview,
    stdin_count,
)

# Typer offers a Literal's values as a choice; built from the library's tuple (no numpy behind it).
if TYPE_CHECKING:
    from ..commands.equivalent import EquivalentSet
    from ..commands.trace_view import ExplainedRun

    CombineName = str
else:
    CombineName = Literal[COMBINE_MODES]


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
            help="Output file, a template with {stem} (input name), {kernel} (kernel label), {channel} (r, g, b, "
            "gray... or a layer's output channel) and {map} (map index), a directory (existing, or ending in '/') "
            "to write the default names into, or '-' for standard output (.npy unless --format). Pictures: one "
            "colour picture per 2-D kernel (the channels of one filtered picture), one file per map otherwise and "
            "whenever the name has {map} or {channel}. Default: beside each input, named STEM-KERNEL.png (.npy for "
            "array inputs); with --montage alone, only the montage.",
        ),
    ] = None,
    layer: LayerArgs = LAYER,
    format: Annotated[
        Optional[FormatName],
        typer.Option(
            "--format",
            "-f",
            metavar="|".join(OUTPUT_FORMATS),
            help="Output format: png, jpeg, webp (pictures: floats mapped to pixels by --display), tiff (float), "
            "npy or npz (raw float NCHW, never scaled). Default: from -o's extension.",
        ),
    ] = None,
    display: Annotated[
        Optional[DisplayName],
        typer.Option(
            metavar="|".join(DISPLAY_MODES),
            help="How pictures (PNG, JPEG, WebP) map floats to pixels: clip to [0, 1], abs, minmax (per map, its "
            "range taken over the valid interior - the outputs whose window lies inside the input - so padding "
            "does not set it; values outside are clipped), offset (0.5 + value). "
            "Default, per kernel: clip when the kernel's sum (after --normalize) is positive; offset when it sums "
            "to zero (sobel-x, laplacian, log) or to a negative number.",
        ),
    ] = None,
    combine: Annotated[
        Optional[CombineName],
        typer.Option(
            "--combine",
            metavar="|".join(COMBINE_MODES),
            help="Reduce the maps of several 2-D kernels to one per channel: sum, max, min, or maxabs (max of "
            "|map|), as ImageMagick's -define morphology:compose=Plus/Lighten/Darken and libvips's compass "
            "--combine; -k 'Kirsch:@' --combine max is the compass edge detector. PNG default display: clip for "
            "max and maxabs (edge strength); sum as the summed kernel; min clip for positive kernels, else offset.",
            show_default=False,
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
    quality: Annotated[
        int,
        typer.Option(
            "--quality", metavar="1-100", help="JPEG and WebP quality, 1 (smallest) to 100 (best)."
        ),
    ] = DEFAULT_QUALITY,
    png_level: Annotated[
        int,
        typer.Option(
            "--png-level",
            metavar="0-9",
            help="PNG zlib level, 0 (no compression) to 9 (smallest, slowest). The default is the fastest, for "
            "files about the size of libvips's.",
        ),
    ] = PNG_LEVEL,
    explain: ExplainOpt = False,
    show_equivalent: Annotated[
        bool,
        typer.Option(
            "--show-equivalent",
            metavar="",
            help="Print on stderr the same job in PyTorch (F.pad + F.conv2d), scipy.ndimage (correlate), OpenCV "
            "(copyMakeBorder + filter2D), ImageMagick (-morphology Correlate) and libvips (vips conv), with each "
            "tool's padding names, or why a tool cannot express it (stride, dilation, several kernels...). "
            "Printed even with --quiet.",
        ),
    ] = False,
    montage: Annotated[
        Optional[str],
        typer.Option(
            "--montage",
            metavar="FILE.png|-",
            help="Also draw every map of every image in one labelled PNG grid (image, channel, kernel; a layer's "
            "filters), small maps enlarged with whole pixels, signed maps red/blue around a white 0 (scale "
            "±max|v| of the valid interior), others gray (white at max(1, max)), each with its value range. "
            "Alone (no -o), only the montage is written.",
            show_default=False,
        ),
    ] = None,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            metavar="",
            help="Print a small colour thumbnail of the first picture written (else the montage) on standard "
            "error, with half-block characters; when standard error is no terminal, a note says so instead.",
        ),
    ] = False,
    stream: Annotated[
        Optional[bool],
        typer.Option(
            "--stream/--in-memory",
            metavar="",
            help="--stream memory-maps .npy inputs and writes a .npy result a band of rows at a time, so arrays "
            "larger than memory go through (resident memory stays a few bands); --in-memory reads and builds "
            "them whole. Default: --stream for .npy inputs of 256 MiB or more.",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            metavar="local|dask",
            help="local: this process (threads). dask: one large input (.npy, Zarr array, TIFF or image) in chunks "
            "on a dask.distributed cluster, the result written block by block to -o FILE.npy or DIR.zarr; or "
            "several images (or a folder of them), one task an image, each written as it finishes; needs "
            'pip install "convcli[dask]" (and "convcli[big]" for Zarr and TIFF).',
        ),
    ] = "local",
    scheduler: Annotated[
        Optional[str],
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="With --engine dask: the address of a running dask scheduler (tcp://HOST:8786). Default: start a "
            "local cluster of --workers processes on 127.0.0.1.",
            show_default=False,
        ),
    ] = None,
    chunk: Annotated[
        int,
        typer.Option("--chunk", metavar="N", help="With --engine dask: input rows and columns per chunk."),
    ] = 4096,
    workers: Annotated[
        int,
        typer.Option("--workers", metavar="N", help="With --engine dask and no --scheduler: local worker processes."),
    ] = 2,
    quiet: QuietOpt = False,
) -> None:
    """Filter images and arrays with one or more kernels and write the feature maps.

    A 2-D kernel filters each channel on its own, so RGB stays RGB; a 4-D kernel
    (FN, C/groups, FH, FW) is a convolution layer that mixes channels. Inputs of the
    same size run as one batch. Output: one colour picture per 2-D kernel (its maps are the
    channels of one filtered picture), one picture per map otherwise and whenever -o has
    {map} or {channel}; .npy/.npz hold the raw (N, FN, OH, OW) result. A summary line ends
    the report (inputs, files, values, time) unless --quiet.

    Examples:

      convcli apply photo.png -k sobel-x -o edges.png

      convcli apply photo.png -k gaussian:2 -o - | convcli apply - -k sobel-x -o edges.png

      convcli apply photo.jpg -k gaussian:3 --quality 95 -o soft.jpg

      convcli apply photo.png -k 'Kirsch:@' --combine max -o compass.png

      convcli apply photo.png -k sobel-x -o edges.png --explain   (how im2col ran it)

      convcli apply photo.png -k gaussian:1 --padding-mode reflect -o soft.png --show-equivalent

      convcli apply photo.png -k sobel-x -k sobel-y -k box:5 --montage bank.png

    Images are padded with their edge pixels (replicate) and arrays with zeros unless
    --padding-mode says otherwise; the "wrote" line says which ran.
    """
    from ..commands import apply as command

    readers = (
        ("INPUT '-'", stdin_count(*inputs)), ("-k -", stdin_count(*kernel)), ("--bias -", stdin_count(layer.bias))
    )
    check_stdin_once(*readers)
    check_stdin_usable(*readers)
    out = command.OutputOptions(
        output=output, format=format, display=display, bit_depth=bit_depth, quality=quality, png_level=png_level,
        stream=stream,
    )
    report = Reporter(quiet)
    if engine not in ("local", "dask"):
        raise typer.BadParameter(f"must be local or dask, got {engine!r}", param_hint="--engine")
    if engine == "dask":
        asked = [name for name, given in (("--montage", montage is not None), ("--explain", explain),
                                          ("--show-equivalent", show_equivalent), ("--preview", preview)) if given]
        if asked:
            verb = "works" if len(asked) == 1 else "work"
            raise typer.BadParameter(f"{', '.join(asked)} {verb} with --engine local only", param_hint="--engine dask")
        from ..commands import apply_dask

        apply_dask.apply_dask_command(inputs, kernel, layer, out, report, combine=combine, scheduler=scheduler,
                                      chunk=chunk, workers=workers)
        report.flush()
        return
    if scheduler is not None:
        raise typer.BadParameter("needs --engine dask", param_hint="--scheduler")
    runs: Optional[list[ExplainedRun]] = [] if explain else None
    same: Optional[list[EquivalentSet]] = [] if show_equivalent else None
    written = command.apply_command(inputs, kernel, layer, out, report, combine=combine, montage=montage,
                                    preview=preview, explain=runs, equivalent=same)
    if runs:
        print_explained(runs)
    if same:
        print_equivalents(same)
    if preview:
        show_preview(written, report)
    report.flush()
