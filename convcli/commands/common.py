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
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

from ..kernels.bank import LayerOptions
from ..kernels.bias import parse_bias

__all__ = [
    "DEFAULT_PADDING", "QUIET", "LayerJob", "Progress", "Reporter", "SharedOptions", "format_shape", "padding_for",
    "target_name",
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
    """

    layer: LayerOptions = field(default_factory=LayerOptions)
    bias: Optional[str] = None
    gray: bool = False
    keep_alpha: bool = False

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
    return "standard output" if path == "-" else repr(path)


def padding_for(options: LayerOptions, kind: str) -> LayerOptions:
    """``options`` with a padding mode: its own, else :data:`DEFAULT_PADDING` of the input's ``kind``."""
    if options.padding_mode is not None:
        return options
    return dataclasses.replace(options, padding_mode=DEFAULT_PADDING.get(kind, "zeros"))
