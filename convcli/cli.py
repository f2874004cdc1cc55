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
from .errors import ConvcliError, InputFileError, OutputFileError, ParameterError

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
    """--bias: a number, a comma-separated list ('0.1,0.2'), or a .npy file (any shape, flattened).

    Numbers are tried first, so a file is read when the text ends in .npy or is no list of numbers.
    """
    import numpy as np

    from .arrays import load_npy, read_source

    usage = "a number, a comma-separated list or a .npy file"
    name = text.strip()
    values: Any = None
    if not name.lower().endswith(".npy"):
        try:
            values = np.array([float(v) for v in name.replace(";", ",").split(",")], dtype=np.float64)
        except ValueError:
            if not os.path.isfile(name):
                raise ParameterError(f"--bias must be {usage}, got {text!r}") from None
    if values is None:
        if not os.path.exists(name):
            raise InputFileError(f"--bias file {name!r} not found; expected {usage}")
        array = load_npy(read_source(name), name)
        if array.dtype.kind not in "biuf":
            raise ParameterError(f"--bias file {name!r} holds {array.dtype} values; expected real numbers")
        if array.size == 0:
            raise ParameterError(f"--bias file {name!r} is empty (shape {array.shape}); expected at least one value")
        values = array.astype(np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ParameterError(f"--bias values must be finite (no nan or inf), got {text!r}")
    return values


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
            yield lambda done, total: bar.update(task, completed=done, total=total)  # the caller's count wins


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
            "Default: clip for kernels that sum to > 0, offset for zero-sum kernels such as sobel.",
        ),
    ] = None,
    bit_depth: Annotated[
        int, typer.Option("--bit-depth", help="PNG bit depth: 8 or 16 (a 16-bit PNG holds one map: one file per map).")
    ] = 8,
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
    from .kernelspec import parse_kernel

    report = _Reporter(quiet)
    options = layer_options(bias, stride, pad, dilation, groups, padding_mode, flip, normalize, dtype)
    stdin_kernels = [spec for spec in kernel if spec.strip() == "-"]
    if inputs.count("-") + len(stdin_kernels) > 1:
        what = "INPUT '-' and -k -" if "-" in inputs and stdin_kernels else "'-'"
        raise ParameterError(f"{what}: standard input can be read once only; give the others as files")
    if output == "-" and sys.stdout.isatty():
        raise OutputFileError("-o - writes binary data, not to a terminal; redirect it to a file or a pipe")
    kernels = [parse_kernel(spec) for spec in kernel]
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
    # every file read is an input: images, kernel files and a --bias file are never overwritten
    read = [*inputs, *kernel, *([bias] if bias is not None else [])]
    protect = [s.strip() for s in read if s.strip() != "-" and os.path.isfile(s.strip())]
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

    import numpy as np

    from .arrays import load_input
    from .filtering import working_dtype
    from .gradients import (
        backward,
        build_grad_layer,
        check_options,
        default_tolerance,
        gradient_check,
        load_dout,
        plan_outputs,
        write_outputs,
    )
    from .kernelspec import parse_kernel

    report = _Reporter(quiet)
    if check:
        check_options(check_samples, eps, seed, tol)
    stdin_kernels = sum(k.strip() == "-" for k in kernel)
    uses = (("INPUT", input == "-"), ("--dout", dout == "-"), ("-k", stdin_kernels > 0))
    readers = [name for name, reads in uses if reads]
    if len(readers) > 1 or stdin_kernels > 1:
        both = " and ".join(readers) if len(readers) > 1 else "-k"
        raise ParameterError(f"{both} read standard input '-', which can be read once only; give the others as files")
    read = [input, dout, *kernel, *([bias] if bias is not None else [])]
    protect = [s.strip() for s in read if s.strip() != "-" and os.path.isfile(s.strip())]
    stem = "stdin" if input == "-" else os.path.splitext(os.path.basename(os.path.normpath(input)))[0]
    default = os.path.join("" if input == "-" else os.path.dirname(input), f"{stem}-grad.npz")
    targets = plan_outputs(output, {"dx": dx_path, "dW": dw_path, "db": db_path}, default, protect)
    if any(t.path == "-" for t in targets) and sys.stdout.isatty():
        raise OutputFileError("'-' writes binary data, not to a terminal; redirect it to a file or a pipe")

    options = layer_options(bias, stride, pad, dilation, groups, padding_mode, flip, normalize, dtype)
    kernels_ = [parse_kernel(spec) for spec in kernel]
    item = load_input(input, gray=gray, keep_alpha=keep_alpha)
    for note in item.notes:
        report.say(f"convcli: {item.name}: {note}")
    work_dtype = working_dtype(item.data, options.dtype)
    x = item.data.astype(work_dtype, copy=False)
    layer = build_grad_layer(kernels_, x.shape[1], options, work_dtype)
    expected = layer.output_shape(x.shape)
    upstream = load_dout(dout, expected, work_dtype)
    grads = backward(layer, x, upstream, kernels_, options)

    norms = [("dx", grads.dx), ("dW", grads.dW), ("db", grads.db)]
    norms += [("dK", grads.dK)] if grads.dK is not None else []
    report.say(
        f"convcli: x {_shape(x.shape)} -> y {_shape(expected)} ({work_dtype}); "
        + ", ".join(f"|{name}| {np.linalg.norm(value):.6g} ({_shape(value.shape)})" for name, value in norms)
        + f"; forward+backward {grads.seconds * 1000:.1f} ms"
    )
    if check:
        tolerance = default_tolerance(work_dtype) if tol is None else tol
        start = time.perf_counter()
        rows = gradient_check(x, grads, upstream, samples=check_samples, eps=eps, seed=seed, tolerance=tolerance)
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
        where = "standard output" if target.path == "-" else target.path
        if target.what == "npz":
            report.say(f"convcli: wrote {where} (npz: dx, dW, db{', dK' if grads.dK is not None else ''})")
        else:
            name = "dK" if target.what == "dW" and grads.dK is not None else target.what
            report.say(f"convcli: wrote {name} to {where} ({target.format}, {_shape(shape)})")


def _print_check(rows: Sequence[Any], tolerance: float, caption: str = "") -> None:
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
    notes = [f"{row.name}: {row.note}" for row in rows if getattr(row, "note", "")]
    Console(stderr=True).print(table)
    for note in notes:
        Console(stderr=True).print(note, markup=False, highlight=False)


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

    from .kernels import BUILTINS, format_matrix

    console = Console()
    if spec is None:
        table = Table(title="Built-in kernels (apply as cross-correlation; --flip for true convolution)")
        table.add_column("kernel", style="bold", no_wrap=True)
        table.add_column("what it does")
        for builtin in BUILTINS.values():
            table.add_row(builtin.usage, builtin.summary)
        console.print(table)
        return
    from .kernelspec import parse_kernel  # (not for the list: it brings the file readers, Pillow)

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
    """Print shape, dtype and min/max/mean of images and arrays, as convcli loads them.

    An .npz with several arrays and none named x (such as 'grad' writes) gets one row per array, as stored.
    """
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    from .arrays import load_input, load_npz, read_source

    table = Table()
    for column in ("file", "kind", "shape (N, C, H, W)", "dtype", "min", "max", "mean", "notes"):
        table.add_column(column, overflow="fold")
    for source in files:
        members = _npz_members(source)
        if members is not None:
            for key, value in load_npz(read_source(source), source).items():
                table.add_row(f"{source}:{key}", "npz member", _shape(value.shape) or "()", str(value.dtype),
                              *_stats(value), "shape as stored")
            continue
        item = load_input(source, gray=gray, keep_alpha=keep_alpha)
        data = item.data
        table.add_row(item.name, item.kind, _shape(data.shape), str(data.dtype), *_stats(data), "; ".join(item.notes))
    console = Console()
    if not console.is_terminal:  # a pipe or a file: the table's natural width, no folded numbers
        width = Measurement.get(console, console.options.update_width(100_000), table).maximum
        console = Console(width=max(console.width, width))
    console.print(table)


def _npz_members(source: str) -> Optional[list[str]]:
    """Names in an .npz file that 'apply' could not read as one input (several, none named x), else None."""
    import zipfile

    if source == "-" or not os.path.isfile(source):
        return None
    try:
        with open(source, "rb") as handle:
            if handle.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
                return None
        with zipfile.ZipFile(source) as archive:
            names = [n[:-4] if n.endswith(".npy") else n for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile):
        return None  # load_input gives the error
    return names if len(names) > 1 and "x" not in names else None


def _stats(data: Any) -> tuple[str, str, str]:
    """min, max and mean as text; '-' for an empty or non-numeric array."""
    if data.size == 0 or data.dtype.kind not in "biuf":
        return "-", "-", "-"
    return f"{data.min():.6g}", f"{data.max():.6g}", f"{data.mean(dtype='float64'):.6g}"


def main() -> None:
    """Entry point of the ``convcli`` console script and ``python -m convcli``."""
    app()
