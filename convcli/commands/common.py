"""What the commands share: the options of ``apply`` and ``grad``, the reporter, and how messages name things.

:class:`SharedOptions` is what ``apply`` and ``grad`` are told alike: the layer (stride,
pad, ... and the bias) and how inputs are read (gray, alpha).  The same options describe the
same layer.  :func:`padding_for` resolves the padding mode an input gets when none is given:
``replicate`` for images (ImageMagick's ``-virtual-pixel edge``, libvips's edge: a blurred
photo keeps its border), ``zeros`` for arrays (the book, PyTorch).  :class:`Reporter` is how
a command tells its user what it does (one-line messages, a progress bar); the library's
default, :data:`QUIET`, says nothing.

Neighbours: the commands themselves are :mod:`convcli.commands.apply`,
:mod:`convcli.commands.grad`, :mod:`convcli.commands.info` and
:mod:`convcli.commands.kernels`; the CLI's implementations of both protocols (its options,
printing to stderr) are :mod:`convcli.cli.options`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from ..errors import MemoryLimitError, name_of, one_line
from ..io.limits import ReadLimits
from ..kernels.bank import LayerOptions
from ..kernels.bias import parse_bias

if TYPE_CHECKING:
    from ..engine.layer import Convolution

__all__ = [
    "DEFAULT_PADDING", "QUIET", "LayerJob", "Progress", "Reporter", "SharedOptions", "check_work_size", "format_shape",
    "padding_for", "read_limits", "said_warnings", "target_name",
]

#: The padding mode of each input kind when ``--padding-mode`` is not given.
DEFAULT_PADDING: dict[str, str] = {"image": "replicate", "array": "zeros"}

#: ``report(done, total)``: progress of a long step, ``done`` out of ``total`` (fractional while a step runs).
Progress = Callable[[float, int], None]


class SharedOptions(Protocol):
    """The options ``apply`` and ``grad`` share: the layer they describe and how inputs are read.

    Attributes
    ----------
    bias : str or None
        The bias as given (:func:`convcli.kernels.bias.parse_bias`: numbers, a ``.npy`` file or
        ``-``); a file it names is never overwritten.
    gray : bool
        Read inputs as one luma channel.
    keep_alpha : bool
        Keep an image's alpha as a channel.

    An implementation may also have ``max_pixels`` (int or None): the most pixels an image
    input may decode to (:func:`read_limits`).
    """

    bias: Optional[str]
    gray: bool
    keep_alpha: bool

    def layer_options(self) -> LayerOptions:
        """The layer options, the bias read (called once, after every output has been named and checked)."""
        ...


@dataclass
class LayerJob:
    """:class:`SharedOptions` as plain values, for library callers.

    Attributes
    ----------
    layer : LayerOptions
        Its ``bias`` is replaced by :attr:`bias` when that is given.
    bias : str or None
    gray, keep_alpha : bool
    max_pixels : int or None
        The most pixels an image input may decode to (None: the default,
        :data:`convcli.io.limits.DEFAULT_MAX_PIXELS`).
    """

    layer: LayerOptions = field(default_factory=LayerOptions)
    bias: Optional[str] = None
    gray: bool = False
    keep_alpha: bool = False
    max_pixels: Optional[int] = None

    def layer_options(self) -> LayerOptions:
        """:attr:`layer`, with :attr:`bias` parsed into it when given."""
        if self.bias is None:
            return self.layer
        return dataclasses.replace(self.layer, bias=parse_bias(self.bias))


class Reporter(Protocol):
    """How a command tells its user what it does."""

    def say(self, message: str) -> None:
        """One line for the user (the CLI prefixes "convcli: "; a quiet reporter drops it)."""
        ...

    def progress(self, description: str, total: int, *, show: bool = True) -> AbstractContextManager[Progress]:
        """A context whose value is a :data:`Progress` callback; ``show`` False: the caller expects it short."""
        ...


class _Quiet:
    """A :class:`Reporter` that says nothing."""

    def say(self, message: str) -> None:
        pass

    @contextmanager
    def progress(self, description: str, total: int, *, show: bool = True) -> Iterator[Progress]:
        yield lambda done, total: None


#: The library's default reporter: silent.
QUIET: Reporter = _Quiet()


def format_shape(shape: Sequence[int]) -> str:
    """A shape as messages write it: ``(1, 3, 8, 8)`` -> ``"1×3×8×8"`` (``()`` -> ``""``)."""
    return "×".join(str(s) for s in shape)


def target_name(path: str) -> str:
    """How a message names an output: "standard output", or the path quoted (one line, whatever its name)."""
    return "standard output" if path == "-" else name_of(path)


def read_limits(shared: object) -> ReadLimits:
    """The :class:`~convcli.io.limits.ReadLimits` of a command's options (their ``max_pixels``, when they have one)."""
    return ReadLimits.of(getattr(shared, "max_pixels", None))


def check_work_size(layer: Convolution, x_shape: Sequence[int], dtype: Any, *, backward: bool = False) -> None:
    """Refuse, before any work, a layer whose work buffers could never fit in this machine's memory.

    The engine's buffers grow with the stride (an input window split into stride² phases):
    ``--stride 1000000000`` on a small image asks for exabytes.  The rule is the one
    :func:`convcli.engine.memory.check_result_size` applies to results.

    Raises
    ------
    MemoryLimitError
        Naming the stride, the input's shape and the bytes needed.
    """
    import numpy as np

    from ..engine.memory import physical_memory
    from ..engine.parallel import get_num_threads
    from ..io.limits import format_bytes

    plan = layer.plan(tuple(int(n) for n in x_shape), np.dtype(dtype))
    per_worker = plan.buffer_elements(backward) * np.dtype(dtype).itemsize
    needed = per_worker * max(1, min(get_num_threads(), len(plan)))
    memory = physical_memory()
    if memory is not None and needed > memory:
        geom = plan.geom
        raise MemoryLimitError(
            f"the layer's work buffers for an input of shape {tuple(int(n) for n in x_shape)} with stride "
            f"{geom.stride[0]},{geom.stride[1]} need {format_bytes(needed)}, more than this machine's "
            f"{format_bytes(memory)} of memory; a stride larger than the padded input "
            f"({geom.padded_hw[0]}×{geom.padded_hw[1]}) gives the same one-pixel output"
        )


@contextmanager
def said_warnings(report: Reporter) -> Iterator[None]:
    """Warnings raised in the block are told to ``report`` once each, as one line, when the block succeeds.

    Floating-point RuntimeWarnings (overflow and the like) are left out: non-finite values
    are written as they are.  A block that fails drops its warnings: a failure says one thing.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
    seen: set[str] = set()
    for record in caught:
        text = one_line(record.message, 300)
        if text not in seen:
            seen.add(text)
            report.say(text)


def padding_for(options: LayerOptions, kind: str) -> LayerOptions:
    """``options`` with a padding mode: its own, else :data:`DEFAULT_PADDING` of the input's ``kind``."""
    if options.padding_mode is not None:
        return options
    return dataclasses.replace(options, padding_mode=DEFAULT_PADDING.get(kind, "zeros"))
