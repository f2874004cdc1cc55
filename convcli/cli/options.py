"""The CLI's options, declared once: ``Annotated`` aliases, the shared layer options, their text parsers.

``apply`` and ``grad`` take the same layer options (the same options describe the
same layer).  They are declared here once, in :data:`SHARED_OPTIONS`, and
:func:`shared_layer_options` adds them to a command: the command declares one parameter
``layer: LayerArgs`` and receives them collected into a :class:`LayerArgs`, which the
library turns into a :class:`~convcli.kernels.bank.LayerOptions` once the outputs are
checked (:meth:`LayerArgs.layer_options`).  The choices (padding modes, display modes,
output formats) are built from the library's own tuples, never copied; a padding mode is
checked by the library's own rule (it takes aliases and ``constant:VALUE``).

This module imports neither numpy nor the library's commands, so ``convcli --help`` stays quick.

Neighbours: the Typer app and its one-line errors are :mod:`convcli.cli.app`; each command
is :mod:`convcli.cli.apply`, :mod:`convcli.cli.grad`, :mod:`convcli.cli.info`,
:mod:`convcli.cli.kernels`; what the commands do is :mod:`convcli.commands`.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Optional, TypeVar, cast

import typer

from ..engine.geometry import ALGORITHMS
from ..errors import ParameterError, quote, visible
from ..io.formats import DISPLAY_MODES, OUTPUT_FORMATS

if TYPE_CHECKING:
    from ..kernels.bank import LayerOptions

#: The compute dtypes the CLI offers: the two the engine computes in (convcli.engine.dtypes); the
#: library's ``LayerOptions.dtype`` takes any numpy float dtype name.
COMPUTE_DTYPES: tuple[str, ...] = ("float32", "float64")

# Typer offers a Literal's values as a choice; the Literals are built from the library's tuples.
if TYPE_CHECKING:
    AlgorithmName = str
    DisplayName = str
    FormatName = str
    DtypeName = str
else:
    AlgorithmName = Literal[ALGORITHMS]
    DisplayName = Literal[DISPLAY_MODES]
    FormatName = Literal[OUTPUT_FORMATS]
    DtypeName = Literal[COMPUTE_DTYPES]


# ---------------------------------------------------------------- text parsers


def _numbers(text: str) -> list[str]:
    """The parts of 'H,W', 'HxW' or 'H×W' (and longer lists), stripped."""
    return [p.strip() for p in re.split(r"[,xX×]", text)]


def parse_pair(text: str, name: str) -> object:
    """'2' -> 2, '2,1' or '2x1' -> (2, 1) for --stride and --dilation."""
    parts = _numbers(text)
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ParameterError(f"{name} must be an integer or 'H,W', got {quote(text)}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise ParameterError(f"{name} must be an integer or 'H,W', got {quote(text)}")


def parse_pad(text: str) -> Any:
    """--pad: 'same', 'valid', 'P', 'PH,PW' (or 'PHxPW', as --stride) or 'TOP,BOTTOM,LEFT,RIGHT'."""
    if text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    parts = _numbers(text)
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ParameterError(
            f"--pad must be same, valid, an integer, 'PH,PW' or 'TOP,BOTTOM,LEFT,RIGHT', got {quote(text)}"
        ) from None
    if len(values) == 1:
        return values[0]
    if len(values) in (2, 4):
        return tuple(values)
    raise ParameterError(f"--pad takes 1, 2 or 4 integers, got {len(values)} in {quote(text)}")


def check_stdin_once(*uses: tuple[str, int]) -> None:
    """Refuse to read standard input twice: ``uses`` are (option as typed, how many times it reads '-').

    Raises
    ------
    ParameterError
        Naming every reader: "standard input can be read once only, but INPUT '-' and -k - read it".
    """
    readers = [(name, count) for name, count in uses if count]
    if sum(count for _, count in readers) > 1:
        named = " and ".join(name if count == 1 else f"{name} ({count} times)" for name, count in readers)
        raise ParameterError(
            f"standard input can be read once only, but {named} read it; give the others as files"
        )


def stdin_count(*values: Optional[str]) -> int:
    """How many of ``values`` (option values as given; None when not given) are '-'."""
    return sum(1 for v in values if v is not None and v.strip() == "-")


def check_stdin_usable(*uses: tuple[str, int]) -> None:
    """Refuse, before any work, to read standard input that is a terminal: nothing would ever come.

    ``uses`` are as for :func:`check_stdin_once`.

    Raises
    ------
    ParameterError
        "INPUT '-' reads standard input, which is a terminal; ..."
    """
    from ..io.streams import stdin_state

    readers = [name for name, count in uses if count]
    if readers and stdin_state() == "terminal":
        raise ParameterError(
            f"{readers[0]} reads standard input, which is a terminal; pipe or redirect the data into convcli "
            "(... < FILE, or PROGRAM | convcli ...), or name a file"
        )


# ---------------------------------------------------------------- options, declared once


KernelOpt = Annotated[
    list[str],
    typer.Option(
        "--kernel",
        "-k",
        metavar="KERNEL",
        help="Kernel: a built-in name with arguments (sobel-x, gaussian:2, box:5; see 'convcli kernels'), "
        "an ImageMagick kernel read as ImageMagick reads it (Sobel:45, 'Kirsch:@' for its 45° rotations, "
        "'Sobel:>' for 90°, DoG:0,1,2, Gaussian:0x2, '3x3+0+0: 1,2,1,...' with its origin, nan for a hole, "
        "';' between kernels), an inline matrix ('1,2,1;2,4,2;1,2,1'), a file (.npy, .npz with W and b, .txt, "
        ".csv, .json), or '-' for a kernel file on standard input. gaussian, log and laplacian are convcli's "
        "with convcli's arguments (gaussian:2 is sigma 2) and ImageMagick's with its own (Gaussian:0x2, "
        "Laplacian:0). Repeat to stack a filter bank.",
        show_default=False,
    ),
]
BiasOpt = Annotated[
    Optional[str],
    typer.Option(
        metavar="B|B,B,...|FILE",
        help="Bias: a number, one value per kernel or per output map ('0.1,0.2'), a .npy file, or '-' for .npy "
        "bytes on standard input."
    ),
]
StrideOpt = Annotated[str, typer.Option(metavar="N|H,W", help="Stride: N, or 'H,W' (also HxW).")]
PadOpt = Annotated[
    str,
    typer.Option(
        metavar="same|valid|N|H,W|T,B,L,R",
        help="Padding: same (output the input's size / stride), valid (none), N, 'H,W' (also HxW) or 'T,B,L,R'."
    ),
]
DilationOpt = Annotated[
    str, typer.Option(metavar="N|H,W", help="Dilation (spacing between kernel taps): N, or 'H,W' (also HxW).")
]
GroupsOpt = Annotated[
    Optional[int],
    typer.Option(metavar="N", help="Channel groups of a 4-D kernel (default 1). 2-D kernels are always depthwise."),
]
PaddingModeOpt = Annotated[
    Optional[str],
    typer.Option(
        "--padding-mode",
        metavar="MODE",
        help="What the padding holds: zeros; replicate (the edge pixel, aaa|abc); reflect (PyTorch's: cb|abc, "
        "= scipy's 'mirror', OpenCV's REFLECT_101); symmetric (cba|abc, = scipy's and OpenCV's 'reflect', "
        "ImageMagick's 'mirror'); circular (wrap around); constant:VALUE. Other tools' names: edge, nearest "
        "(replicate); tile, wrap (circular); black (zeros), gray (constant:0.5), white (constant:1); reflect101; "
        "mirror is ImageMagick's (symmetric): for scipy's mirror use reflect, for scipy's or OpenCV's reflect use "
        "symmetric. Default: replicate for images (ImageMagick's -virtual-pixel edge: no dark frame), zeros for "
        "arrays (PyTorch).",
        show_default=False,
    ),
]
FlipOpt = Annotated[
    bool,
    typer.Option(
        "--flip",
        metavar="",
        help="True convolution: rotate kernels 180°, with their origin (default: correlation). With --flip an "
        "ImageMagick kernel gives ImageMagick's -morphology Convolve.",
    ),
]
AlgorithmOpt = Annotated[
    AlgorithmName,
    typer.Option(
        "--algorithm",
        metavar="|".join(ALGORITHMS),
        help="How the forward pass runs (the result is the same to float rounding): im2col (the 2-D path: "
        "every tap a column, one GEMM); separable (kernels of low rank as vertical and horizontal 1-D passes); "
        "banded (each kernel row a banded matrix, the image read in place: large kernels); running-sum (box "
        "kernels on 8- and 16-bit images: exact integer running sums, any size at one cost); auto picks the "
        "cheapest for the kernels' size, rank and the input (4-D layer kernels: im2col).",
        case_sensitive=False,
    ),
]
NormalizeOpt = Annotated[
    bool, typer.Option("--normalize", metavar="", help="Divide each kernel by its sum (left alone when the sum is 0).")
]
ScaleOpt = Annotated[
    Optional[str],
    typer.Option(
        "--scale",
        metavar="FACTOR[!|^][,BLEND][%]",
        help="ImageMagick's -define convolve:scale for 2-D kernels: multiply by FACTOR; '!' first divides by "
        "|sum| (a zero-sum kernel by its positive sum); '^' scales positive taps to sum 1 and negative ones to "
        "-1; BLEND is then added at the origin (a blend with the image: '!,100%' turns a blur into a sharpen); "
        "'%' makes both percentages. Not with --normalize.",
        show_default=False,
    ),
]
DtypeOpt = Annotated[
    Optional[DtypeName],
    typer.Option(
        metavar="|".join(COMPUTE_DTYPES),
        help="Compute dtype. Default: a float array's own dtype; images and integers use float32.",
    ),
]
GrayOpt = Annotated[bool, typer.Option("--gray", metavar="", help="Convert inputs to one luma channel first.")]
KeepAlphaOpt = Annotated[
    bool, typer.Option("--keep-alpha", metavar="", help="Keep an image's alpha as a channel (default: dropped).")
]
MaxPixelsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--max-pixels",
        metavar="N",
        help="The most pixels an image may decode to, all pages read counted (default 89478485, Pillow's "
        "bomb limit); checked from the file's headers before it is decoded.",
        show_default=False,
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="Print nothing but errors.")]
ExplainOpt = Annotated[
    bool,
    typer.Option(
        "--explain",
        metavar="",
        help="Print on stderr the path the data took, as the engine recorded it: input shape, padding, the "
        "algorithm chosen and why, the tiles, each GEMM (M×K · K×N, how many, FLOPs, time), the workers' peak "
        "extra memory, the output shape (and for grad the backward's products). Printed even with --quiet.",
    ),
]

#: The options apply and grad share, in the order their --help lists them: (parameter, type, default).
SHARED_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("bias", BiasOpt, None),
    ("stride", StrideOpt, "1"),
    ("pad", PadOpt, "same"),
    ("dilation", DilationOpt, "1"),
    ("groups", GroupsOpt, None),
    ("padding_mode", PaddingModeOpt, None),
    ("algorithm", AlgorithmOpt, "auto"),
    ("flip", FlipOpt, False),
    ("normalize", NormalizeOpt, False),
    ("scale", ScaleOpt, None),
    ("dtype", DtypeOpt, None),
    ("gray", GrayOpt, False),
    ("keep_alpha", KeepAlphaOpt, False),
    ("max_pixels", MaxPixelsOpt, None),
)


@dataclass
class LayerArgs:
    """The shared options as typed (:data:`SHARED_OPTIONS`); the library's ``SharedOptions``.

    :meth:`layer_options` parses them when the library asks, after the outputs are checked,
    so a bad output name is reported before ``--bias`` reads a file.
    """

    bias: Optional[str] = None
    stride: str = "1"
    pad: str = "same"
    dilation: str = "1"
    groups: Optional[int] = None
    padding_mode: Optional[str] = None
    algorithm: str = "auto"
    flip: bool = False
    normalize: bool = False
    scale: Optional[str] = None
    dtype: Optional[str] = None
    gray: bool = False
    keep_alpha: bool = False
    max_pixels: Optional[int] = None

    def layer_options(self) -> LayerOptions:
        """The options as a :class:`~convcli.kernels.bank.LayerOptions`, the bias read."""
        from ..kernels.bank import LayerOptions
        from ..kernels.bias import parse_bias
        from ..kernels.scale import parse_scale

        if self.groups is not None and self.groups < 1:
            raise ParameterError(f"--groups must be a positive integer, got {self.groups}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ParameterError(f"--max-pixels must be a positive integer, got {self.max_pixels}")
        return LayerOptions(
            stride=parse_pair(self.stride, "--stride"),
            pad=parse_pad(self.pad),
            dilation=parse_pair(self.dilation, "--dilation"),
            groups=self.groups,
            padding_mode=None if self.padding_mode is None else _padding_mode(self.padding_mode),
            flip=self.flip,
            normalize=self.normalize,
            scale=None if self.scale is None else parse_scale(self.scale),
            dtype=self.dtype,
            bias=None if self.bias is None else parse_bias(self.bias),
            algorithm=self.algorithm.lower(),
        )


def _padding_mode(text: str) -> str:
    """--padding-mode, checked by the library's rule and named as the option in the message."""
    from ..engine.geometry import parse_padding_mode

    try:
        return str(parse_padding_mode(text))
    except ParameterError as error:
        raise ParameterError(error.message.replace("padding_mode", "--padding-mode", 1)) from None


#: The default of a command's ``layer`` parameter (never used: :func:`shared_layer_options` fills it).
LAYER = LayerArgs()

_Command = TypeVar("_Command", bound=Callable[..., Any])


def shared_layer_options(command: _Command) -> _Command:
    """Give a command the shared options in place of its ``layer: LayerArgs`` parameter.

    Typer reads a command's options from ``inspect.signature`` and its annotations; the
    wrapper's signature has the :data:`SHARED_OPTIONS` where the command has
    ``layer``, and the wrapper collects their values into the :class:`LayerArgs` it passes
    as ``layer``.
    """
    signature = inspect.signature(command, eval_str=True)
    if "layer" not in signature.parameters:
        raise TypeError(f"{command.__name__} has no 'layer' parameter to put the shared options in")
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name != "layer":
            parameters.append(parameter)
            continue
        parameters.extend(
            inspect.Parameter(name, parameter.kind, default=default, annotation=annotation)
            for name, annotation, default in SHARED_OPTIONS
        )

    @functools.wraps(command)
    def with_shared_options(*args: Any, **kwargs: Any) -> Any:
        shared = {name: kwargs.pop(name) for name, _, _ in SHARED_OPTIONS}
        return command(*args, layer=LayerArgs(**shared), **kwargs)

    with_shared_options.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_shared_options.__annotations__ = {p.name: p.annotation for p in parameters}
    with_shared_options.__annotations__["return"] = signature.return_annotation
    return cast(_Command, with_shared_options)


# ---------------------------------------------------------------- messages


def print_equivalents(sets: list[Any]) -> None:
    """``--show-equivalent``: each tool's call (:mod:`convcli.commands.equivalent`) on stderr, or why there is none."""
    err = console(stderr=True, highlight=False, soft_wrap=True)
    for found in sets:
        err.print(f"the same job as apply on {found.subject}, in other tools:", markup=False)
        for item in found.items:
            err.print(f"\n# {item.tool}" + ("" if item.code is not None else ": cannot express this job"),
                      markup=False)
            for note in item.notes:
                err.print(f"#   {note}", markup=False)
            if item.code is not None:
                err.print(item.code, markup=False)


def print_explained(runs: list[Any]) -> None:
    """The ``--explain`` lines of each run (:func:`convcli.commands.trace_view.explain_lines`) on stderr."""
    from ..commands.trace_view import explain_lines

    err = console(stderr=True, highlight=False, soft_wrap=True)
    for run in runs:
        for line in explain_lines(run):
            err.print(line, markup=False)


def console(**options: Any) -> Any:
    """A rich Console whose broken pipe (``| head``) ends convcli as SIGPIPE does, not with rich's exit 1."""
    from rich.console import Console

    class PipeAwareConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(32, "Broken pipe")

    return PipeAwareConsole(**options)


def show_preview(written: Sequence[Any], report: Reporter) -> None:
    """``--preview``: the thumbnail of the first picture written, in half blocks on stderr when it is a terminal.

    When stderr is no terminal (a log, a pipe) the picture would be escape codes in a file:
    a note says so instead.  Printed before the report's lines, so the picture comes first.
    """
    thumb = next((w.thumbnail for w in written if getattr(w, "thumbnail", None) is not None), None)
    if thumb is None:
        report.say("--preview: no picture was written (arrays only); nothing to show")
        return
    if sys.stderr is None or not sys.stderr.isatty():
        report.say("--preview: standard error is not a terminal; no preview")
        return
    if report.quiet:
        return
    from rich.console import Console

    from ..visual.preview import half_blocks

    Console(stderr=True).print(half_blocks(thumb))


class Reporter:
    """Messages and progress on stderr (the library's ``Reporter``); progress only when stderr is a terminal.

    Messages wait until the command has succeeded (:meth:`flush`): a command that fails
    prints its one error line and nothing else.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.lines: dict[str, None] = {}  # in order, each line once

    def say(self, message: str) -> None:
        """``convcli: MESSAGE`` on stderr when the command succeeds, unless quiet (each line once)."""
        if not self.quiet:
            self.lines.setdefault(f"convcli: {visible(message)}")

    def flush(self) -> None:
        """Print the messages said so far."""
        for line in self.lines:
            typer.echo(line, err=True)
        self.lines.clear()

    @contextmanager
    def progress(self, description: str, total: int, *, show: bool = True) -> Iterator[Callable[[float, int], None]]:
        """A ``report(done, total)`` for a rich progress bar; a no-op unless ``show`` and stderr is a terminal."""
        if self.quiet or not show or sys.stderr is None or not sys.stderr.isatty():
            yield lambda done, total: None
            return
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda done, total: bar.update(task, completed=done, total=total)  # the caller's count wins
