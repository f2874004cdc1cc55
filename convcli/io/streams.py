"""Reading a source's bytes, bounded: files, FIFOs, standard input; devices refused; never a hang.

:func:`read_source` is the one way convcli reads what a user names (inputs, kernel files,
``--dout``, ``--bias``, ``info``), or ``-`` for standard input.  It

- refuses character and block devices (``/dev/zero``, ``/dev/urandom``, a disk), named
  directly or through a symbolic link, before opening them;
- reads a FIFO like standard input, except that it never waits for a writer that is not
  there: one that has no writer within :data:`FIFO_WAIT_SECONDS` is an error, one that
  has a writer is read until the writer closes it;
- refuses standard input that is closed (``<&-``) or a terminal (a usage error: nothing
  would ever come);
- stops at the most bytes the source could need (:func:`convcli.io.limits.byte_budget`,
  decided from its first bytes) and says so with the numbers.

Neighbours: the limits themselves are :mod:`convcli.io.limits`; what the bytes become is
:mod:`convcli.io.inputs` (inputs), :mod:`convcli.io.arrays` (arrays) and
:mod:`convcli.kernels.spec` (kernel files).
"""

from __future__ import annotations

import os
import stat
import sys
import time
from typing import Callable, Optional, Union

from ..errors import InputFileError, ParameterError, name_of
from .limits import DEFAULTS, HEAD_BYTES, ReadLimits, byte_budget, format_bytes

__all__ = ["FIFO_WAIT_SECONDS", "ROLES", "read_source", "stdin_state"]

#: What a source can be read as (see :func:`convcli.io.limits.byte_budget`).
ROLES = ("input", "kernel", "array")

#: How long a FIFO without a writer is waited for (``CONVCLI_FIFO_WAIT`` seconds, default 5):
#: long enough for a writer started beside convcli to open it, never forever.
FIFO_WAIT_SECONDS = 5.0

_CHUNK = 1 << 20

_DEFAULT_WHAT = {"input": "input file", "kernel": "kernel file", "array": "file"}
_STDIN_WHAT = {"input": "standard input", "kernel": "kernel from standard input", "array": "standard input"}


def _fifo_wait() -> float:
    try:
        return max(0.0, float(os.environ.get("CONVCLI_FIFO_WAIT", FIFO_WAIT_SECONDS)))
    except ValueError:
        return FIFO_WAIT_SECONDS


def stdin_state() -> str:
    """What standard input is: "closed", "terminal", "device", "file", "pipe" or "stream" (no file descriptor)."""
    stream = getattr(sys.stdin, "buffer", None) if sys.stdin is not None else None
    if stream is None:
        return "closed"
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return "stream"  # a stand-in (tests, an embedding program): read it as it is
    try:
        info = os.fstat(fd)
    except OSError:
        return "closed"
    if os.isatty(fd):
        return "terminal"
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        return "device"
    return "file" if stat.S_ISREG(info.st_mode) else "pipe"


def _device_kind(mode: int) -> Optional[str]:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def _fill(read: Callable[[int], bytes], chunks: list[bytes], have: int, upto: int) -> tuple[int, bool]:
    """Read into ``chunks`` until they hold ``upto`` bytes or the source ends: (bytes held, ended)."""
    while have < upto:
        piece = read(min(upto - have, _CHUNK))
        if not piece:
            return have, True
        chunks.append(piece)
        have += len(piece)
    return have, False


def _read_bounded(read: Callable[[int], bytes], where: str, role: str, *, text: Union[bool, str], limits: ReadLimits,
                  size: Optional[int] = None, first: bytes = b"") -> bytes:
    """Read with ``read(n)`` (blocking; b"" at the end) no further than the source's budget.

    ``size`` is a regular file's size, known before reading: one larger than its budget is
    refused unread.  ``first`` holds bytes already read from the source.
    """
    chunks: list[bytes] = [first] if first else []
    have, ended = _fill(read, chunks, len(first), HEAD_BYTES)
    while True:
        head = b"".join(chunks)
        chunks = [head]
        budget = byte_budget(head, role, where, text=text, limits=limits, complete=ended)
        if budget is not None or ended:
            break
        have, ended = _fill(read, chunks, have, have + HEAD_BYTES)  # the rest of a .npy header
    if budget is None:  # ended inside a .npy header: the decoder says it is truncated
        return head
    if budget.exact:  # a .npy: exactly what its header declares (a short one is reported by the decoder)
        if not ended:
            have, ended = _fill(read, chunks, have, budget.nbytes)
        data = b"".join(chunks)
        return data[: budget.nbytes] if len(data) > budget.nbytes else data
    if budget.nbytes <= len(head):  # no known format: the first bytes are all the decoder needs
        return head
    if size is not None and size > budget.nbytes:
        raise InputFileError(
            f"{where} holds {format_bytes(size)}, more than {format_bytes(budget.nbytes)} ({budget.reason}); "
            "it was not read"
        )
    if not ended:
        have, ended = _fill(read, chunks, have, budget.nbytes + 1)  # one byte more tells "too large"
    if have > budget.nbytes:
        raise InputFileError(
            f"{where} holds more than {format_bytes(budget.nbytes)} ({budget.reason}); stopped reading there"
        )
    return b"".join(chunks)


def _read_stdin(role: str, what: Optional[str], text: Union[bool, str], limits: ReadLimits) -> bytes:
    where = what or _STDIN_WHAT[role]
    state = stdin_state()
    if state == "closed":
        what = "" if where == "standard input" else f" ({where})"
        raise InputFileError(f"standard input is closed{what}; give the data on standard input or as a file")
    if state == "terminal":
        raise ParameterError(
            "'-' reads standard input, but it is a terminal; pipe or redirect the data into convcli "
            "(... < FILE, or PROGRAM | convcli ...), or name a file"
        )
    if state == "device":
        raise InputFileError(f"{where} is a device (such as /dev/zero), not a file or a pipe; refusing to read it")
    stream = sys.stdin.buffer
    try:
        data = _read_bounded(stream.read, where, role, text=text, limits=limits)
    except OSError as exc:
        raise InputFileError(f"cannot read {where}: {exc.strerror or exc}") from None
    if not data:
        raise InputFileError(
            "standard input is empty; expected .npy or image bytes" if role == "input" else f"{where} is empty"
        )
    return data


def _wait_for_writer(fd: int, where: str) -> bytes:
    """A FIFO opened without waiting: wait at most :data:`FIFO_WAIT_SECONDS` for a writer; its first byte, if any.

    A non-blocking read tells the cases apart: data (a writer wrote), ``EAGAIN`` (a writer
    holds it open: its data is then waited for as a pipe's is), end of file (no writer, yet).
    """
    deadline = time.monotonic() + _fifo_wait()
    while True:
        try:
            first = os.read(fd, 1)
        except BlockingIOError:
            return b""
        if first:
            return first
        if time.monotonic() >= deadline:
            raise InputFileError(
                f"{where} is a FIFO that no program writes to (waited {_fifo_wait():g} s); "
                "start the program that writes it first"
            )
        time.sleep(0.02)


def _os_error(where: str, exc: OSError) -> InputFileError:
    if isinstance(exc, FileNotFoundError):
        return InputFileError(f"{where} not found")
    if isinstance(exc, IsADirectoryError):
        return InputFileError(f"{where} is a directory, not a file")
    if isinstance(exc, PermissionError):
        return InputFileError(f"cannot read {where}: permission denied")
    return InputFileError(f"cannot read {where}: {exc.strerror or exc}")


def read_source(source: str, *, role: str = "input", what: Optional[str] = None,
                limits: ReadLimits = DEFAULTS, text: Union[None, bool, str] = None) -> bytes:
    """All the bytes of a source that its use could need: a file, a FIFO, or standard input for ``-``.

    Parameters
    ----------
    source : str
        A path, or ``-`` for standard input.
    role : {"input", "kernel", "array"}
        What the bytes are read as; it sets the budget (:func:`convcli.io.limits.byte_budget`).
    what : str, optional
        How messages name a file ("kernel file", "--dout file"); default from ``role``.
    limits : ReadLimits
        The image limits an input's budget follows.
    text : bool or "sniff", optional
        Whether the source may be a text array (default: for an input, a name ending .txt
        or .csv; for standard input, "sniff": when its first bytes are plain text).

    Returns
    -------
    bytes
        Never empty.  A ``.npy`` is read to the end of the data its header declares; a
        source of no known format only to its first :data:`~convcli.io.limits.HEAD_BYTES`.

    Raises
    ------
    InputFileError
        Missing, a directory, a device or socket, no permission, a FIFO without a writer,
        closed standard input, other read errors, no bytes at all, or more bytes than the
        budget (the message gives the numbers).
    ParameterError
        ``-`` while standard input is a terminal.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if text is None:
        text = "sniff" if source == "-" else role == "input" and source.lower().endswith((".txt", ".csv"))
    if source == "-":
        return _read_stdin(role, None if what is None else f"{what} (standard input)", text, limits)
    where = f"{what or _DEFAULT_WHAT[role]} {name_of(source)}"
    if "\x00" in source:  # no file can have this name (os.stat would raise ValueError)
        raise InputFileError(f"{where} not found (a file name cannot hold a NUL character)")
    try:
        info = os.stat(source)  # follows links: /dev/zero behind a symlink is still a device
    except OSError as exc:
        raise _os_error(where, exc) from None
    if stat.S_ISDIR(info.st_mode):
        if role == "input" and what is None:
            raise InputFileError(f"input {name_of(source)} is a directory, not a file")
        raise InputFileError(f"{where} is a directory, not a file")
    device = _device_kind(info.st_mode)
    if device is not None:  # refused unopened: opening some devices does something
        raise InputFileError(f"{where} is {device}, not a file; refusing to read it")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(source, flags | getattr(os, "O_BINARY", 0))  # O_NONBLOCK: a FIFO opens at once
    except OSError as exc:
        raise _os_error(where, exc) from None
    fifo = False
    try:
        opened = os.fstat(fd)
        device = _device_kind(opened.st_mode)
        if device is not None:  # swapped for a device since the stat: still refused
            raise InputFileError(f"{where} is {device}, not a file; refusing to read it")
        fifo = stat.S_ISFIFO(opened.st_mode)
        first = _wait_for_writer(fd, where) if fifo else b""
        os.set_blocking(fd, True)
        size = opened.st_size if stat.S_ISREG(opened.st_mode) else None
        data = _read_bounded(lambda n: os.read(fd, n), where, role, text=text, limits=limits, size=size,
                             first=first)
    except OSError as exc:
        raise _os_error(where, exc) from None
    finally:
        os.close(fd)
    if not data:
        if fifo:
            raise InputFileError(f"{where} is a FIFO whose writer closed it without writing anything")
        raise InputFileError(f"{where} is empty")
    return data
