"""The project-wide error hierarchy.

Every error convcli raises for bad input is a :class:`ConvcliError`.  It is also a
``ValueError``, so library users can catch it the usual way, and it carries the exit
code the command-line tool ends with.  The message names the parameter and the
actual numbers, in one line, so the CLI (:mod:`convcli.cli.app`) can print it as it is.
"""

from __future__ import annotations

import re
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional


class ConvcliError(ValueError):
    """Base class of convcli's errors.

    Parameters
    ----------
    message : str
        One line saying what is wrong and what was expected.
    """

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ParameterError(ConvcliError):
    """A convolution parameter (stride, pad, dilation, groups...) is invalid."""

    exit_code = 2


class ShapeError(ConvcliError):
    """Array shapes do not fit together (channels, kernel size, dout shape...)."""

    exit_code = 2


class KernelSpecError(ConvcliError):
    """A kernel specification (name, inline matrix or file) cannot be understood."""

    exit_code = 2


class InputFileError(ConvcliError):
    """An input file is missing, unreadable or not of a supported format.

    Parameters
    ----------
    message : str
        The whole line, naming the file.
    reason : str, optional
        What is wrong, without the file's name (default: the message), for a caller that
        names the file its own way (the kernel-file reader says "kernel file 'k.npy' ...").
    """

    exit_code = 3

    def __init__(self, message: str, reason: Optional[str] = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


class OutputFileError(ConvcliError):
    """An output cannot be written (bad format, would overwrite an input...)."""

    exit_code = 4


class BrokenOutputPipe(OutputFileError):
    """Standard output (or an output FIFO) was closed by its reader before everything was written.

    The command-line tool ends quietly, as a process killed by SIGPIPE (``| head`` stopped
    reading); a library caller gets an :class:`OutputFileError`.
    """


class GradientCheckError(ConvcliError):
    """A numerical gradient check failed (the message names each tensor and its error)."""

    exit_code = 1


class MemoryLimitError(ConvcliError):
    """The result would not fit in memory (the message gives its shape and size)."""

    exit_code = 1


def one_line(reason: object, limit: Optional[int] = None) -> str:
    """An exception (or any text) as one line, for a message that must stay one line.

    Parameters
    ----------
    reason : object
        Usually an exception from a library; its ``str``.
    limit : int, optional
        Cut to at most this many characters, ending in ``...``.

    Returns
    -------
    str
        Runs of white space (newlines too) become one space; an empty text becomes the
        type's name (``OverflowError``).
    """
    text = " ".join(str(reason).split()) or type(reason).__name__
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class ConvcliWarning(UserWarning):
    """Something the user should know that is no error (a library's warning, reworded as one line)."""


@contextmanager
def reworded_warnings(name: str) -> Iterator[None]:
    """Warnings a library gives inside the block come out as one :class:`ConvcliWarning` per text, naming ``name``.

    numpy and Pillow warn with several lines (the message, then the line of their source
    that warned), and often twice for one cause; here each distinct text is warned once, as
    one line, ``"'py2.npy': Reading `.npy` ... created on Python 2. ..."``.  RuntimeWarnings
    (floating-point overflow and the like) are passed on as they are.  Warnings of a block
    that raises are dropped with it: a failure says one thing.

    Parameters
    ----------
    name : str
        The source, as messages name it (quoted by ``repr``).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: set[str] = set()
    for record in caught:
        if issubclass(record.category, RuntimeWarning):
            warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
            continue
        text = one_line(record.message, 240)
        if not issubclass(record.category, ConvcliWarning):
            # a name already quoted by its caller ("kernel file 'k.npy'") is kept as it is
            label = name if name.endswith(("'", '"')) and " " in name else name_of(name)
            text = f"{label}: {text}"
        if text not in seen:
            seen.add(text)
            warnings.warn(ConvcliWarning(text), stacklevel=3)


class Interrupted(KeyboardInterrupt):
    """The process got SIGINT, SIGTERM or SIGHUP: a KeyboardInterrupt that knows its signal.

    The command-line tool turns SIGTERM and SIGHUP into this exception (SIGINT is Python's own
    KeyboardInterrupt), so that every one of them unwinds through the same clean-up: temporary
    files removed, replaced outputs put back.

    Parameters
    ----------
    signum : int
        The signal's number.
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        """The signal's name: ``SIGINT``, ``SIGTERM``, ``SIGHUP``."""
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


#: Characters a message never prints as they are: C0 and C1 controls and DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\n``), so it cannot drive a terminal.

    >>> visible("a\\x1b[31mb\\nc")
    'a\\\\x1b[31mb\\\\nc'
    """
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return _CONTROL.sub(lambda m: named.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def quote(text: object, limit: int = 40) -> str:
    """A user's text quoted for a message: at most ``limit`` characters of it, controls made visible.

    Parameters
    ----------
    text : object
        What the user typed (or a token read from a file); its ``str``.
    limit : int
        The most characters shown; a longer text is cut and says how long it was.

    Returns
    -------
    str
        ``repr``-style quoting: ``'box:x'``, or ``'zzzzz...' (100000 characters)``.

    >>> quote("sobel-q")
    "'sobel-q'"
    >>> quote("9" * 5000, 8)
    "'99999...' (5000 characters)"
    """
    value = str(text)
    if len(value) <= limit:
        return repr(value)
    return f"{repr(value[: max(1, limit - 3)] + '...')} ({len(value)} characters)"


def name_of(path: str, limit: int = 200) -> str:
    """A file name quoted for a message: ``repr`` (controls escaped), the middle cut when it is very long."""
    if len(path) <= limit:
        return repr(path)
    half = (limit - 3) // 2
    return repr(path[:half] + "..." + path[-half:])
