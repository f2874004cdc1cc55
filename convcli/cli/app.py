"""The convcli command-line tool: a thin Typer layer over the library.

Commands translate options into library calls and library errors into one line on
stderr with an exit code; no maths happens here.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import ConvcliError, one_line
from .options import (
    PROGRESS_MIN_VALUES,
    BiasOpt,
    DilationOpt,
    DisplayChoice,
    DtypeOpt,
    FlipOpt,
    FormatChoice,
    GrayOpt,
    GroupsOpt,
    KeepAlphaOpt,
    KernelOpt,
    NormalizeOpt,
    PaddingModeChoice,
    PaddingModeOpt,
    PadOpt,
    QuietOpt,
    Reporter,
    StrideOpt,
    check_stdin_once,
    format_shape,
    layer_options,
    protected_files,
    refuse_terminal,
    stdin_count,
)

if TYPE_CHECKING:
    from ..commands.gradcheck import CheckRow

# Exit codes: 1 failure, 2 usage (bad option or argument), 3 unreadable input, 4 unwritable output.


class _OneLineErrors(TyperGroup):
    """Typer group whose errors end as one line on stderr: no panel, no traceback."""

    def main(  # type: ignore[override]
        self,
        args: Optional[Sequence[str]] = None,
        prog_name: Optional[str] = None,
        complete_var: Optional[str] = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            with warnings.catch_warnings():
                # numpy's floating-point RuntimeWarnings (overflow, invalid value...) would add lines to
                # stderr; non-finite results are written as they are, and real errors still raise
                warnings.simplefilter("ignore", RuntimeWarning)
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ConvcliError as error:
            _fail(error.message, error.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            _fail("interrupted", 130)
        except BrokenPipeError:
            # the reader of our stdout went away (`| head`): stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        except MemoryError:
            _fail("out of memory; try fewer or smaller inputs", 1)
        except OSError as error:
            where = f" {error.filename!r}" if error.filename else ""
            _fail(f"{error.strerror or error}{':' if where else ''}{where}", 1)
        except Exception as error:
            if not (hasattr(error, "format_message") and hasattr(error, "exit_code")):
                # a bug: still one line and no traceback in a pipeline
                _fail(f"internal error: {type(error).__name__}: {one_line(error, 300)} (please report it)", 1)
            # a usage error from Typer's parser (missing option, bad choice...)
            if type(error).__name__ == "NoArgsIsHelpError":
                typer.echo(error.format_message(), err=True)
                sys.exit(error.exit_code)
            ctx = getattr(error, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _fail(f"{error.format_message()}{hint}", error.exit_code)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"convcli: error: {message}", err=True)
    sys.exit(code)


app = typer.Typer(
    name="convcli",
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """im2col 2-D convolution for images and arrays: filter, back-propagate, inspect.

    Images load as float NCHW in [0, 1]; arrays (.npy, .npz, .txt/.csv; HW, CHW or NCHW) as
    they are. '-' reads standard input or writes standard output.
    """


# ---------------------------------------------------------------- commands


@app.command()
def apply(
    inputs: Annotated[
        list[str],
        typer.Argument(
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
            help="Output file, a template with {stem} and {map}, a directory (existing, or ending in '/') to write "
            "the default names into, or '-' for standard output (.npy unless --format). Default: beside each input, "
            "named STEM-KERNEL.png (.npy for array inputs).",
        ),
    ] = None,
    bias: BiasOpt = None,
    stride: StrideOpt = "1",
    pad: PadOpt = "same",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = None,
    padding_mode: PaddingModeOpt = PaddingModeChoice.zeros,
    flip: FlipOpt = False,
    normalize: NormalizeOpt = False,
    dtype: DtypeOpt = None,
    gray: GrayOpt = False,
    keep_alpha: KeepAlphaOpt = False,
    format: Annotated[
        Optional[FormatChoice],
        typer.Option(
            "--format",
            "-f",
            help="Output format: png (mapped to pixels), tiff (float), npy or npz (raw float NCHW, never scaled). "
            "Default: from -o's extension.",
        ),
    ] = None,
    display: Annotated[
        Optional[DisplayChoice],
        typer.Option(
            help="How PNG maps floats to pixels: clip to [0, 1], abs, minmax (per map), offset (0.5 + value). "
            "Default: clip when every kernel's sum (after --normalize) is positive; offset when any kernel sums "
            "to zero (sobel-x, laplacian, log) or to a negative number.",
        ),
    ] = None,
    bit_depth: Annotated[
        Optional[int],
        typer.Option(
            "--bit-depth",
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
    from ..commands.apply import OutputOptions, apply_filters, check_output_options
    from ..io.inputs import load_input
    from ..kernels.spec import parse_kernel

    report = Reporter(quiet)
    check_stdin_once(
        ("INPUT '-'", stdin_count(*inputs)), ("-k -", stdin_count(*kernel)), ("--bias -", stdin_count(bias))
    )
    out_options = OutputOptions(
        output=output,
        format=None if format is None else format.value,
        display=None if display is None else display.value,
        bit_depth=bit_depth,
    )
    check_output_options(out_options)  # a bad name or option is reported before any input is read
    if output == "-":
        refuse_terminal("-o -")
    options = layer_options(bias, stride, pad, dilation, groups, padding_mode, flip, normalize, dtype)
    kernels = [parse_kernel(spec) for spec in kernel]
    loaded = [load_input(source, gray=gray, keep_alpha=keep_alpha) for source in inputs]
    for item in loaded:
        for note in item.notes:
            report.say(f"convcli: {item.name!r}: {note}")
    protect = protected_files(*inputs, *kernel, bias)
    large = sum(item.data.size for item in loaded) >= PROGRESS_MIN_VALUES
    with report.progress("filtering", len(loaded), show=len(loaded) > 1 or large) as on_progress:
        written = apply_filters(loaded, kernels, options, out_options, protect=protect, on_progress=on_progress)
    for done in written:
        how = f", display {done.display}" if done.display else ""
        how += f", {done.bits}-bit" if done.bits == 16 else ""
        report.say(f"convcli: wrote {_target(done.path)} ({done.format}, {format_shape(done.shape)}{how})")


@app.command()
def grad(
    input: Annotated[
        str,
        typer.Argument(
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
            help="An .npz holding dx, dW, db (and dK, the gradient for the kernels as given), or '-' for standard "
            "output. Default: STEM-grad.npz beside the input, unless --dx/--dw/--db are given.",
        ),
    ] = None,
    dx_path: Annotated[
        Optional[str],
        typer.Option("--dx", help="Write dx alone, shape (N, C, H, W): .npy (raw), .png (display-mapped) or '-'."),
    ] = None,
    dw_path: Annotated[
        Optional[str],
        typer.Option(
            "--dw",
            help="Write the weight gradient alone: .npy, .png or '-'. This is dK when there is one (2-D kernels: "
            "(FH, FW) for one kernel, (M, FH, FW) for M), else dW (FN, C/groups, FH, FW).",
        ),
    ] = None,
    db_path: Annotated[
        Optional[str], typer.Option("--db", help="Write db alone: .npy or '-', shape (FN,), one per output map.")
    ] = None,
    bias: BiasOpt = None,
    stride: StrideOpt = "1",
    pad: PadOpt = "same",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = None,
    padding_mode: PaddingModeOpt = PaddingModeChoice.zeros,
    flip: FlipOpt = False,
    normalize: NormalizeOpt = False,
    dtype: DtypeOpt = None,
    gray: GrayOpt = False,
    keep_alpha: KeepAlphaOpt = False,
    display: Annotated[
        DisplayChoice,
        typer.Option(help="How --dx/--dw PNGs map gradients to pixels (as apply's --display); each map on its own."),
    ] = DisplayChoice.minmax,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Check the gradients: compare dx, dW, db (and dK) at --check-samples random entries each with "
            "float64 central differences of L, print the max abs and rel errors, and exit 1, writing nothing, "
            "when one exceeds --tol.",
        ),
    ] = False,
    check_samples: Annotated[
        int, typer.Option("--check-samples", help="--check: entries sampled per tensor (all when fewer).", min=1)
    ] = 20,
    eps: Annotated[float, typer.Option("--eps", help="--check: central-difference step, > 0.")] = 1e-3,
    seed: Annotated[int, typer.Option("--seed", help="--check: seed of the sampled entries.", min=0)] = 0,
    tol: Annotated[
        Optional[float],
        typer.Option(
            "--tol", help="--check: largest relative error that passes. Default: 1e-3 (float32), 1e-6 (float64)."
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Backward pass: dx, dW, db (and dK) of the layer 'apply' runs, for an upstream gradient dout.

    The loss is L = sum(y·dout), so dout is dL/dy; dout = y (from 'apply -o -') gives the gradient
    of ½‖y‖². The same input, kernel and geometry options as 'apply' describe the same layer.

    dW is for the layer's weights as they run, (FN, C/groups, FH, FW), after --flip and --normalize;
    db is per output map, (FN,), for a zero bias when none is given. dK is for the kernels as you gave
    them. A 2-D kernel filters each channel (filter c·M + m is kernel m on channel c), so
    dK[m] = Σ_c dW[c·M + m, 0], rotated back 180° under --flip and taken through w = k / sum(k) under
    --normalize: dK = (g − ⟨g, w⟩) / sum(k) for g the gradient for w (a zero-sum kernel is left alone).
    dK has the kernels' shape: (FH, FW) for one, (M, FH, FW) for M. Layer (4-D) kernels get a dK,
    (FN, C/groups, FH, FW), only under --flip or --normalize. --dw writes dK when there is one.

    A summary (shapes, norms, time) goes to stderr unless --quiet; so does the --check table.

    Examples:

      convcli grad x.npy -k w.npy --dout randn:0 --check

      convcli grad photo.png -k sobel-x --dout ones --dx dx.png --dw dk.npy

      convcli apply x.npy -k w.npy -o - | convcli grad x.npy -k w.npy --dout - -o g.npz
    """
    import time

    from ..commands.grad import run_grad
    from ..commands.grad_outputs import plan_outputs, write_outputs
    from ..commands.gradcheck import check_options, default_tolerance, gradient_check
    from ..io.inputs import input_stem, load_input
    from ..kernels.spec import parse_kernel

    report = Reporter(quiet)
    if check:
        check_options(check_samples, eps, seed, tol)
    check_stdin_once(
        ("INPUT '-'", stdin_count(input)), ("--dout -", stdin_count(dout)), ("-k -", stdin_count(*kernel)),
        ("--bias -", stdin_count(bias)),
    )
    protect = protected_files(input, dout, *kernel, bias)
    default = os.path.join("" if input == "-" else os.path.dirname(input), f"{input_stem(input)}-grad.npz")
    targets = plan_outputs(output, {"dx": dx_path, "dW": dw_path, "db": db_path}, default, protect)
    if any(t.path == "-" for t in targets):
        refuse_terminal("'-'")

    options = layer_options(bias, stride, pad, dilation, groups, padding_mode, flip, normalize, dtype)
    kernels_ = [parse_kernel(spec) for spec in kernel]
    item = load_input(input, gray=gray, keep_alpha=keep_alpha)
    for note in item.notes:
        report.say(f"convcli: {item.name!r}: {note}")
    run = run_grad(item.data, kernels_, options, dout)
    grads = run.grads
    report.say(
        f"convcli: x {format_shape(run.x.shape)} -> y {format_shape(run.output_shape)} ({run.dtype}); "
        + ", ".join(f"|{name}| {norm:.6g} ({format_shape(shape)})" for name, norm, shape in grads.norms())
        + f"; forward+backward {grads.seconds * 1000:.1f} ms"
    )
    if check:
        tolerance = default_tolerance(run.dtype) if tol is None else tol
        start = time.perf_counter()
        rows = gradient_check(run.x, grads, run.dout, samples=check_samples, eps=eps, seed=seed, tolerance=tolerance)
        if not quiet:
            caption = f"eps {eps:g}, seed {seed}, {time.perf_counter() - start:.2f} s"
            if grads.dK is not None:
                caption = f"dK: for the kernels as given; {caption}"
            _print_check(rows, tolerance, caption)
        failed = [row for row in rows if not row.passed]
        if failed:
            worst = "; ".join(f"{row.name} max rel error {row.max_rel:.3g}" for row in failed)
            _fail(f"gradient check failed: {worst} > tolerance {tolerance:g}; nothing written", 1)
    for target, shape in write_outputs(targets, grads, display.value, protect):
        if target.what == "npz":
            members = "dx, dW, db" + (", dK" if grads.dK is not None else "")
            report.say(f"convcli: wrote {_target(target.path)} (npz: {members})")
        else:
            name = "dK" if target.what == "dW" and grads.dK is not None else target.what
            report.say(f"convcli: wrote {name} to {_target(target.path)} ({target.format}, {format_shape(shape)})")


def _target(path: str) -> str:
    """How a 'wrote' line names an output: "standard output", or the path quoted (one line, whatever its name)."""
    return "standard output" if path == "-" else repr(path)


def _print_check(rows: Sequence[CheckRow], tolerance: float, caption: str = "") -> None:
    """The --check table on stderr: one row per tensor."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Gradient check: analytic vs float64 central differences (tolerance {tolerance:g})",
        caption=caption or None,
    )
    for column in ("tensor", "samples", "max abs error", "max rel error", "result"):
        table.add_column(column)
    for row in rows:
        if not row.samples:
            table.add_row(row.name, "0", "-", "-", "[yellow]not checked[/yellow]")
            continue
        verdict = "[green]ok[/green]" if row.passed else "[red]FAIL[/red]"
        table.add_row(row.name, str(row.samples), f"{row.max_abs:.3g}", f"{row.max_rel:.3g}", verdict)
    notes = [f"{row.name}: {row.note}" for row in rows if row.note]
    Console(stderr=True).print(table)
    for note in notes:
        Console(stderr=True).print(note, markup=False, highlight=False)


@app.command()
def kernels(
    spec: Annotated[
        Optional[str],
        typer.Argument(
            help="A kernel spec to print as a matrix (e.g. gaussian:1.5, sobel-x, a file, or '-' for a kernel "
            "file on standard input).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List the built-in kernels, or print one kernel's matrix."""
    from rich.console import Console
    from rich.table import Table

    from ..kernels.builtins import BUILTINS, format_matrix

    console = Console()
    if spec is None:
        table = Table(title="Built-in kernels (apply as cross-correlation; --flip for true convolution)")
        table.add_column("kernel", style="bold", no_wrap=True)
        table.add_column("what it does")
        for builtin in BUILTINS.values():
            table.add_row(builtin.usage, builtin.summary)
        console.print(table)
        return
    from ..kernels.spec import parse_kernel  # (not for the list: it brings the file readers, Pillow)

    kern = parse_kernel(spec)
    weights = kern.weights
    if weights.ndim == 2:
        typer.echo(f"{kern.label}: {format_shape(weights.shape)}, sum {weights.sum():.6g}")
    else:
        typer.echo(f"{kern.label}: layer {format_shape(weights.shape)} (FN, C/groups, FH, FW)")
    typer.echo(format_matrix(weights))  # a layer: one [f, c] block per filter and channel


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

    from ..io.inputs import STDIN_NAME, array_input, decode_input, load_npz, pick_npz, read_source, sniff

    table = Table()
    for column in ("file", "kind", "shape (N, C, H, W)", "dtype", "min", "max", "mean", "notes"):
        table.add_column(column, overflow="fold")
    for source in files:
        raw = read_source(source)  # once: standard input cannot be read twice
        if sniff(raw) == "npz":
            name = STDIN_NAME if source == "-" else source
            arrays = load_npz(raw, name)
            if len(arrays) > 1 and "x" not in arrays:  # not one input: a row per array, as stored
                for key, value in arrays.items():
                    table.add_row(f"{source}:{key}", "npz member", format_shape(value.shape) or "()",
                                  str(value.dtype), *_stats(value), "shape as stored")
                continue
            item = array_input(pick_npz(arrays, name), source, gray=gray)
        else:
            item = decode_input(raw, source, gray=gray, keep_alpha=keep_alpha)
        data = item.data
        notes = "; ".join(item.notes)
        table.add_row(item.name, item.kind, format_shape(data.shape), str(data.dtype), *_stats(data), notes)
    console = Console()
    if not console.is_terminal:  # a pipe or a file: the table's natural width, no folded numbers
        width = Measurement.get(console, console.options.update_width(100_000), table).maximum
        console = Console(width=max(console.width, width))
    console.print(table)


def _stats(data: Any) -> tuple[str, str, str]:
    """min, max and mean as text; '-' for an empty or non-numeric array."""
    if data.size == 0 or data.dtype.kind not in "biuf":
        return "-", "-", "-"
    return f"{data.min():.6g}", f"{data.max():.6g}", f"{data.mean(dtype='float64'):.6g}"


def main() -> None:
    """Entry point of the ``convcli`` console script and ``python -m convcli``."""
    app()
