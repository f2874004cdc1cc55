"""The convcli command-line tool: a thin Typer layer over the library.

Commands translate options into library calls and library errors into one line on
stderr with an exit code; no maths happens here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Any, Callable, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import ConvcliError, ParameterError

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
            _fail("out of memory; try fewer or smaller inputs, or --dtype float32", 1)
        except OSError as error:
            where = f" {error.filename!r}" if error.filename else ""
            _fail(f"{error.strerror or error}{':' if where else ''}{where}", 1)
        except Exception as error:
            if not (hasattr(error, "format_message") and hasattr(error, "exit_code")):
                raise
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


def _fail(message: str, code: int) -> None:
    typer.echo(f"convcli: error: {message}", err=True)
    sys.exit(code)


app = typer.Typer(
    name="convcli",
    cls=_OneLineErrors,
    help="im2col 2-D convolution for images and arrays: filter, back-propagate, inspect.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
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

    Images load as float NCHW in [0, 1]; .npy arrays (HW, CHW or NCHW) as they are.
    '-' reads standard input or writes standard output.
    """


# ---------------------------------------------------------------- option parsing


def parse_pair(text: str, name: str) -> object:
    """'2' -> 2, '2,1' -> (2, 1) for --stride and --dilation."""
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ParameterError(f"{name} must be an integer or 'H,W', got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise ParameterError(f"{name} must be an integer or 'H,W', got {text!r}")


def parse_pad(text: str) -> Any:
    """--pad: 'same', 'valid', 'P', 'PH,PW' or 'TOP,BOTTOM,LEFT,RIGHT'."""
    if text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ParameterError(
            f"--pad must be same, valid, an integer, 'PH,PW' or 'TOP,BOTTOM,LEFT,RIGHT', got {text!r}"
        ) from None
    if len(values) == 1:
        return values[0]
    if len(values) in (2, 4):
        return tuple(values)
    raise ParameterError(f"--pad takes 1, 2 or 4 integers, got {len(values)} in {text!r}")


def parse_bias(text: str) -> Any:
    """--bias: a number, a comma-separated list, or a .npy file."""
    import numpy as np

    if text.endswith(".npy") or os.path.exists(text):
        from .arrays import load_npy, read_source

        return load_npy(read_source(text), text).astype(np.float64).ravel()
    try:
        values = [float(v) for v in text.replace(";", ",").split(",")]
    except ValueError:
        raise ParameterError(f"--bias must be a number, a comma-separated list or a .npy file, got {text!r}") from None
    if not np.all(np.isfinite(values)):
        raise ParameterError(f"--bias values must be finite, got {text!r}")
    return np.asarray(values)


class PaddingModeChoice(str, Enum):
    zeros = "zeros"
    reflect = "reflect"
    replicate = "replicate"
    circular = "circular"


class DtypeChoice(str, Enum):
    float32 = "float32"
    float64 = "float64"


class DisplayChoice(str, Enum):
    clip = "clip"
    abs = "abs"
    minmax = "minmax"
    offset = "offset"


class FormatChoice(str, Enum):
    png = "png"
    tiff = "tiff"
    npy = "npy"
    npz = "npz"


# Options shared by apply and grad, defined once: the same options describe the same layer.
KernelOpt = Annotated[
    list[str],
    typer.Option(
        "--kernel",
        "-k",
        help="Kernel: a built-in name with arguments (sobel-x, gaussian:2, box:5; see 'convcli kernels'), "
        "an inline matrix ('1,2,1;2,4,2;1,2,1' or ImageMagick's '3x3: 1,2,1,...'), or a file "
        "(.npy, .npz with W and b, .txt, .csv, .json). Repeat to stack a filter bank.",
        show_default=False,
    ),
]
BiasOpt = Annotated[
    Optional[str],
    typer.Option(help="Bias: a number, one value per kernel or per output map ('0.1,0.2'), or a .npy file."),
]
StrideOpt = Annotated[str, typer.Option(help="Stride: N or 'H,W'.")]
PadOpt = Annotated[
    str,
    typer.Option(help="Padding: same (output the input's size / stride), valid (none), N, 'H,W' or 'T,B,L,R'."),
]
DilationOpt = Annotated[str, typer.Option(help="Dilation (spacing between kernel taps): N or 'H,W'.")]
GroupsOpt = Annotated[
    Optional[int],
    typer.Option(help="Channel groups of a 4-D kernel (default 1). 2-D kernels are always depthwise.", min=1),
]
PaddingModeOpt = Annotated[
    PaddingModeChoice, typer.Option("--padding-mode", help="What the padding holds.", case_sensitive=False)
]
FlipOpt = Annotated[bool, typer.Option("--flip", help="True convolution: rotate kernels 180° (default: correlation).")]
NormalizeOpt = Annotated[
    bool, typer.Option("--normalize", help="Divide each kernel by its sum (left alone when the sum is 0).")
]
DtypeOpt = Annotated[
    Optional[DtypeChoice],
    typer.Option(help="Compute dtype. Default: a float array's own dtype; images and integers use float32."),
]
GrayOpt = Annotated[bool, typer.Option("--gray", help="Convert inputs to one luma channel first.")]
KeepAlphaOpt = Annotated[
    bool, typer.Option("--keep-alpha", help="Keep an image's alpha as a channel (default: dropped).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


def layer_options(
    bias: Optional[str],
    stride: str,
    pad: str,
    dilation: str,
    groups: Optional[int],
    padding_mode: PaddingModeChoice,
    flip: bool,
    normalize: bool,
    dtype: Optional[DtypeChoice],
) -> Any:
    """The shared layer options as a :class:`convcli.filtering.LayerOptions`."""
    from .filtering import LayerOptions

    return LayerOptions(
        stride=parse_pair(stride, "--stride"),
        pad=parse_pad(pad),
        dilation=parse_pair(dilation, "--dilation"),
        groups=groups,
        padding_mode=padding_mode.value,
        flip=flip,
        normalize=normalize,
        dtype=None if dtype is None else dtype.value,
        bias=None if bias is None else parse_bias(bias),
    )


class _Reporter:
    """Messages and progress on stderr; progress only when stderr is a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def say(self, message: str) -> None:
        if not self.quiet:
            typer.echo(message, err=True)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int, int], None]]:
        if self.quiet or total < 2 or not sys.stderr.isatty():
            yield lambda done, total: None
            return
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda done, total: bar.update(task, completed=done)


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(s) for s in shape)


# ---------------------------------------------------------------- commands


@app.command()
def apply(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Images (PNG, JPEG, TIFF, BMP, WebP, GIF), .npy arrays (HW, CHW or NCHW), or '-' for standard input.",
            show_default=False,
        ),
    ],
    kernel: KernelOpt,
    output: Annotated[
        Optional[str],
        typer.Option(
            "--output",
            "-o",
            help="Output file, a template with {stem} and {map}, or '-' for standard output (.npy unless "
            "--format). Default: beside each input, named STEM-KERNEL.png (.npy for array inputs).",
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
            "Default: clip for kernels that sum to > 0, offset for zero-sum kernels such as sobel.",
        ),
    ] = None,
    bit_depth: Annotated[int, typer.Option("--bit-depth", help="PNG bit depth: 8 or 16 (16: one channel).")] = 8,
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
    from .arrays import load_input
    from .filtering import OutputOptions, apply_filters
    from .kernels import parse_kernel

    report = _Reporter(quiet)
    options = layer_options(bias, stride, pad, dilation, groups, padding_mode, flip, normalize, dtype)
    kernels = [parse_kernel(spec) for spec in kernel]
    if inputs.count("-") > 1:
        raise ParameterError("standard input '-' can be given once only")
    loaded = [load_input(source, gray=gray, keep_alpha=keep_alpha) for source in inputs]
    for item in loaded:
        for note in item.notes:
            report.say(f"convcli: {item.name}: {note}")
    out_options = OutputOptions(
        output=output,
        format=None if format is None else format.value,
        display=None if display is None else display.value,
        bit_depth=bit_depth,
    )
    protect = [s for s in inputs if s != "-"]
    with report.progress("filtering", len(loaded)) as on_batch:
        written = apply_filters(loaded, kernels, options, out_options, protect=protect, on_batch=on_batch)
    for done in written:
        target = "standard output" if done.path == "-" else done.path
        how = f", display {done.display}" if done.display else ""
        report.say(f"convcli: wrote {target} ({done.format}, {_shape(done.shape)}{how})")


@app.command()
def grad(
    input: Annotated[
        str, typer.Argument(help="Image, .npy array (HW, CHW or NCHW), or '-' for standard input.", show_default=False)
    ],
    kernel: KernelOpt,
    dout: Annotated[
        str,
        typer.Option(
            "--dout",
            help="Upstream gradient dL/dy: a .npy of the forward output's shape (N, FN, OH, OW), '-' for standard "
            "input, or a generator: ones, randn[:SEED].",
            show_default=False,
        ),
    ],
    output: Annotated[
        Optional[str],
        typer.Option(
            "--output",
            "-o",
            help="An .npz holding dx, dW, db (and dK for 2-D kernels), or '-' for standard output. "
            "Default: STEM-grad.npz beside the input, unless --dx/--dw/--db are given.",
        ),
    ] = None,
    dx_path: Annotated[
        Optional[str], typer.Option("--dx", help="Write dx alone: .npy (raw) or .png (display-mapped).")
    ] = None,
    dw_path: Annotated[
        Optional[str],
        typer.Option(
            "--dw",
            help="Write the weight gradient alone: .npy or .png. For 2-D kernels this is dK, in the kernels' own "
            "shape: (FH, FW) for one, (M, FH, FW) for M.",
        ),
    ] = None,
    db_path: Annotated[Optional[str], typer.Option("--db", help="Write db alone (.npy), shape (FN,).")] = None,
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
        DisplayChoice, typer.Option(help="How --dx/--dw PNGs map gradients to pixels.")
    ] = DisplayChoice.minmax,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Compare dx, dW, db with float64 central differences on sampled entries; exit 1 if any relative "
            "error exceeds --tol.",
        ),
    ] = False,
    check_samples: Annotated[int, typer.Option("--check-samples", help="Entries sampled per tensor.", min=1)] = 20,
    eps: Annotated[float, typer.Option("--eps", help="Central-difference step.")] = 1e-3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampled entries.")] = 0,
    tol: Annotated[
        Optional[float],
        typer.Option("--tol", help="Relative-error tolerance of --check. Default: 1e-3 (float32), 1e-6 (float64)."),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Backward pass: dx, dW and db of the layer 'apply' would run, for an upstream gradient.

    The loss is L = sum(y * dout); with dout = y (from 'apply -o -') it is ½‖y‖².
    The same options as 'apply' describe the same layer.

    Examples:

      convcli grad x.npy -k w.npy --dout randn:0 --check

      convcli apply x.npy -k w.npy -o - | convcli grad x.npy -k w.npy --dout - -o g.npz
    """
    import numpy as np

    from .arrays import load_input, load_npy, npy_bytes, npz_bytes, read_source, write_output
    from .display import to_display
    from .filtering import working_dtype
    from .gradients import backward, build_grad_layer, default_tolerance, gradient_check, make_dout
    from .images import encode_png
    from .kernels import parse_kernel

    report = _Reporter(quiet)
    if input == "-" and dout == "-":
        raise ParameterError("INPUT and --dout cannot both read standard input; give one of them as a file")
    options = layer_options(bias, stride, pad, dilation, groups, padding_mode, flip, normalize, dtype)
    kernels_ = [parse_kernel(spec) for spec in kernel]
    item = load_input(input, gray=gray, keep_alpha=keep_alpha)
    for note in item.notes:
        report.say(f"convcli: {item.name}: {note}")
    work_dtype = working_dtype(item.data, options.dtype)
    x = item.data.astype(work_dtype, copy=False)
    layer = build_grad_layer(kernels_, x.shape[1], options, work_dtype)
    expected = layer.output_shape(x.shape)
    upstream = make_dout(dout, expected, work_dtype)
    if upstream is None:
        upstream = load_npy(read_source(dout), "standard input" if dout == "-" else dout)
    grads = backward(layer, x, upstream, kernels_, options)
    protect = [] if input == "-" else [input]

    weight_grad = grads.dW if grads.dK is None else grads.dK
    separate = {"dx": dx_path, "dW": dw_path, "db": db_path}
    for name, path in separate.items():
        if path is None:
            continue
        value = {"dx": grads.dx, "dW": weight_grad, "db": grads.db}[name]
        if path.lower().endswith(".png") and name != "db":
            maps = value if value.ndim == 2 else value.reshape(-1, *value.shape[-2:])
            maps = maps[None] if maps.ndim == 2 else maps
            pixels = to_display(maps[:1] if maps.shape[0] not in (1, 3, 4) else maps, display.value)
            if maps.shape[0] not in (1, 3, 4):
                report.say(f"convcli: {path}: {name} has {maps.shape[0]} maps; the PNG shows the first")
            write_output(path, encode_png(pixels), protect=protect)
        elif path.lower().endswith(".npy") or path == "-":
            write_output(path, npy_bytes(value), protect=protect)
        else:
            raise ParameterError(f"--{name.lower()} {path!r}: expected a .npy or .png name")
        report.say(f"convcli: wrote {name} to {path} ({_shape(value.shape)})")
    if output is not None or not any(separate.values()):
        target = output or os.path.join(os.path.dirname(item.name), f"{item.stem}-grad.npz")
        arrays = {"dx": grads.dx, "dW": grads.dW, "db": grads.db}
        if grads.dK is not None:
            arrays["dK"] = grads.dK
        write_output(target, npz_bytes(arrays), protect=protect)
        report.say(f"convcli: wrote {'standard output' if target == '-' else target} ({', '.join(arrays)})")
    report.say(
        f"convcli: x {_shape(x.shape)} -> y {_shape(expected)}; |dx| {np.linalg.norm(grads.dx):.6g}, "
        f"|dW| {np.linalg.norm(grads.dW):.6g}, |db| {np.linalg.norm(grads.db):.6g}; "
        f"forward+backward {grads.seconds * 1000:.1f} ms ({work_dtype})"
    )
    if check:
        rows = gradient_check(x, grads, upstream, samples=check_samples, eps=eps, seed=seed, tolerance=tol)
        _print_check(rows, default_tolerance(work_dtype) if tol is None else tol)
        if not all(row.passed for row in rows):
            failed = ", ".join(row.name for row in rows if not row.passed)
            _fail(f"gradient check failed for {failed}", 1)


def _print_check(rows: Sequence[Any], tolerance: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Gradient check: analytic vs float64 central differences (tolerance {tolerance:g})")
    for column in ("tensor", "samples", "max abs error", "max rel error", "result"):
        table.add_column(column)
    for row in rows:
        verdict = "[green]ok[/green]" if row.passed else "[red]FAIL[/red]"
        table.add_row(row.name, str(row.samples), f"{row.max_abs:.3g}", f"{row.max_rel:.3g}", verdict)
    Console(stderr=True).print(table)


@app.command()
def kernels(
    spec: Annotated[
        Optional[str],
        typer.Argument(
            help="A kernel spec to print as a matrix (e.g. gaussian:1.5, sobel-x, a file).", show_default=False
        ),
    ] = None,
) -> None:
    """List the built-in kernels, or print one kernel's matrix."""
    from rich.console import Console
    from rich.table import Table

    from .kernels import BUILTINS, format_matrix, parse_kernel

    console = Console()
    if spec is None:
        table = Table(title="Built-in kernels (apply as cross-correlation; --flip for true convolution)")
        table.add_column("kernel", style="bold", no_wrap=True)
        table.add_column("what it does")
        for builtin in BUILTINS.values():
            table.add_row(builtin.usage, builtin.summary)
        console.print(table)
        return
    kern = parse_kernel(spec)
    weights = kern.weights
    if weights.ndim == 2:
        typer.echo(f"{kern.label}: {_shape(weights.shape)}, sum {weights.sum():.6g}")
        typer.echo(format_matrix(weights))
        return
    typer.echo(f"{kern.label}: layer {_shape(weights.shape)} (FN, C/groups, FH, FW)")
    for f in range(weights.shape[0]):
        for c in range(weights.shape[1]):
            typer.echo(f"[{f}, {c}]")
            typer.echo(format_matrix(weights[f, c]))


@app.command()
def info(
    files: Annotated[
        list[str], typer.Argument(help="Images, .npy/.npz arrays, or '-' for standard input.", show_default=False)
    ],
    gray: GrayOpt = False,
    keep_alpha: KeepAlphaOpt = False,
) -> None:
    """Print shape, dtype and min/max/mean of images and arrays, as convcli loads them."""
    from rich.console import Console
    from rich.table import Table

    from .arrays import load_input

    table = Table()
    for column in ("file", "kind", "shape (N, C, H, W)", "dtype", "min", "max", "mean", "notes"):
        table.add_column(column)
    for source in files:
        item = load_input(source, gray=gray, keep_alpha=keep_alpha)
        data = item.data
        table.add_row(
            item.name,
            item.kind,
            _shape(data.shape),
            str(data.dtype),
            f"{data.min():.6g}",
            f"{data.max():.6g}",
            f"{data.mean(dtype='float64'):.6g}",
            "; ".join(item.notes),
        )
    Console().print(table)


def main() -> None:
    """Entry point of the ``convcli`` console script and ``python -m convcli``."""
    app()
