"""The project-wide error hierarchy.

Every error convcli raises for bad input is a :class:`ConvcliError`.  It is also a
``ValueError``, so library users can catch it the usual way, and it carries the exit
code the command-line tool ends with.  The message names the parameter and the
actual numbers, in one line, so the CLI (:mod:`convcli.cli.app`) can print it as it is.
"""

from __future__ import annotations

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
