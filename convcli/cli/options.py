"""Options shared by convcli's commands, defined once, and their parsing.

``apply`` and ``grad`` take the same layer options (the same options describe the
same layer): the ``Annotated`` aliases here are their single definition, and
:func:`layer_options` turns them into a :class:`convcli.layerspec.LayerOptions`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Any, Callable, Optional

import typer

from ..errors import InputFileError, OutputFileError, ParameterError


def _numbers(text: str) -> list[str]:
    """The parts of 'H,W', 'HxW' or 'H×W' (and longer lists), stripped."""
    return [p.strip() for p in re.split(r"[,xX×]", text)]


def parse_pair(text: str, name: str) -> object:
    """'2' -> 2, '2,1' or '2x1' -> (2, 1) for --stride and --dilation."""
    parts = _numbers(text)
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
    """--pad: 'same', 'valid', 'P', 'PH,PW' (or 'PHxPW', as --stride) or 'TOP,BOTTOM,LEFT,RIGHT'."""
    if text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    parts = _numbers(text)
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
    """--bias: a number, a comma-separated list ('0.1,0.2'), a .npy file (any shape, flattened) or '-'.

    Numbers are tried first, so a file is read when the text ends in .npy or is no list of numbers;
    '-' reads .npy bytes from standard input.
    """
    import numpy as np

    from ..io.inputs import STDIN_NAME, load_npy, read_source

    usage = "a number, a comma-separated list, a .npy file or '-' (.npy on standard input)"
    name = text.strip()
    values: Any = None
    if name != "-" and not name.lower().endswith(".npy"):
        try:
            values = np.array([float(v) for v in name.replace(";", ",").split(",")], dtype=np.float64)
        except ValueError:
            if not os.path.isfile(name):
                raise ParameterError(f"--bias must be {usage}, got {text!r}") from None
    if values is None:
        if name != "-" and not os.path.exists(name):
            raise InputFileError(f"--bias file {name!r} not found; expected {usage}")
        where = "--bias from standard input" if name == "-" else f"--bias file {name!r}"
        array = load_npy(read_source(name), STDIN_NAME if name == "-" else name)
        if array.dtype.kind not in "biuf":
            raise ParameterError(f"{where} holds {array.dtype} values; expected real numbers")
        if array.size == 0:
            raise ParameterError(f"{where} is empty (shape {array.shape}); expected at least one value")
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
        "an inline matrix ('1,2,1;2,4,2;1,2,1' or ImageMagick's '3x3: 1,2,1,...'), a file "
        "(.npy, .npz with W and b, .txt, .csv, .json), or '-' for a kernel file on standard input. "
        "Repeat to stack a filter bank.",
        show_default=False,
    ),
]
BiasOpt = Annotated[
    Optional[str],
    typer.Option(
        help="Bias: a number, one value per kernel or per output map ('0.1,0.2'), a .npy file, or '-' for .npy "
        "bytes on standard input."
    ),
]
StrideOpt = Annotated[str, typer.Option(help="Stride: N, or 'H,W' (also HxW).")]
PadOpt = Annotated[
    str,
    typer.Option(
        help="Padding: same (output the input's size / stride), valid (none), N, 'H,W' (also HxW) or 'T,B,L,R'."
    ),
]
DilationOpt = Annotated[str, typer.Option(help="Dilation (spacing between kernel taps): N, or 'H,W' (also HxW).")]
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
    """The shared layer options as a :class:`convcli.layerspec.LayerOptions`."""
    from ..kernels.layerspec import LayerOptions

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


#: Inputs holding at least this many values get a progress bar even when they are one batch.
PROGRESS_MIN_VALUES = 4_000_000


class Reporter:
    """Messages and progress on stderr; progress only when stderr is a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def say(self, message: str) -> None:
        if not self.quiet:
            typer.echo(message, err=True)

    @contextmanager
    def progress(self, description: str, total: int, *, show: bool = True) -> Iterator[Callable[[float, int], None]]:
        """A ``report(done, total)`` for a rich progress bar; a no-op unless ``show`` and stderr is a terminal."""
        if self.quiet or not show or not sys.stderr.isatty():
            yield lambda done, total: None
            return
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda done, total: bar.update(task, completed=done, total=total)  # the caller's count wins


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


def protected_files(*sources: Optional[str]) -> list[str]:
    """The files among ``sources`` (inputs, --dout, kernel and --bias specs) that outputs must never overwrite.

    None (an option not given), ``-`` and specs that name no file (a built-in kernel, a
    generator, a number) are left out.
    """
    names = [s.strip() for s in sources if s is not None]
    return [name for name in names if name != "-" and os.path.isfile(name)]


def refuse_terminal(what: str) -> None:
    """Raise :class:`OutputFileError` when standard output, which ``what`` writes binary data to, is a terminal."""
    if sys.stdout.isatty():
        raise OutputFileError(f"{what} writes binary data, not to a terminal; redirect it to a file or a pipe")


def format_shape(shape: Sequence[int]) -> str:
    return "×".join(str(s) for s in shape)
