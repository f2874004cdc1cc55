"""Writing outputs: files replaced whole or not at all, ``-`` for stdout, inputs never overwritten.

:func:`write_output` writes atomically (a temporary file in the target's directory, then
``os.replace``) and refuses to write over an input file; :func:`check_targets` checks every
output of a run before the first is written, and :func:`all_or_nothing` removes a run's new
files when one write fails; :func:`protected_files` says which of a run's sources are files
never to overwrite; :func:`refuse_terminal` keeps binary data off a terminal;
:func:`npy_bytes` and :func:`npz_bytes` encode arrays as ``.npy`` and ``.npz`` file bytes.

Neighbours: the output formats by name and extension are :mod:`convcli.io.formats`; PNG and
TIFF encoding is :mod:`convcli.io.images`, floats -> pixels :mod:`convcli.io.display`; how
each command names its outputs is its own module in :mod:`convcli.commands`.
"""

from __future__ import annotations

import errno
import io
import os
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Callable, Optional

import numpy as np
from numpy.typing import ArrayLike

from ..errors import OutputFileError


def npy_bytes(array: ArrayLike) -> bytes:
    """``array`` as ``.npy`` file bytes (dtype and shape kept; no pickles)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def npz_bytes(arrays: Mapping[str, ArrayLike]) -> bytes:
    """Several named arrays as ``.npz`` file bytes (dtypes kept, members stored uncompressed).

    Parameters
    ----------
    arrays : mapping of str to array_like
        Member names (``np.load(...)[name]``) to arrays.

    Returns
    -------
    bytes
        A zip of ``{name}.npy`` members, the layout ``np.savez`` writes; any member
        name works, including ones ``np.savez`` keywords would clash with.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():
            archive.writestr(f"{key}.npy", npy_bytes(value))
    return buffer.getvalue()


def same_file(a: str, b: str) -> bool:
    """True when paths ``a`` and ``b`` name one file (after links, ``..`` and case folding)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _write_stdout(data: bytes) -> None:
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:
        raise OutputFileError("standard output does not accept bytes")
    try:
        # an unbuffered stdout (python -u, PYTHONUNBUFFERED) is a raw FileIO whose write may
        # take only part of the bytes (a pipe whose reader left): loop until all are taken
        view = memoryview(data)
        while view:
            count = stream.write(view)
            view = view[count or 0 :]  # None: a non-blocking stream took nothing yet
        stream.flush()
    except BrokenPipeError:
        raise OutputFileError("standard output was closed before all output was written") from None
    except OSError as exc:
        raise OutputFileError(f"cannot write to standard output: {exc.strerror or exc}") from None


def check_target(path: str, protect: Sequence[str] = ()) -> str:
    """Refuse an output path that :func:`write_output` must not or cannot write.

    :func:`write_output` calls it; a caller writing several files can call it on every
    path first, so that a refusal of the second cannot leave the first written.

    Parameters
    ----------
    path : str
        Output path; ``-`` (standard output) always passes.
    protect : sequence of str
        Paths that must not be overwritten (the inputs; ``-`` entries ignored).  Compared
        as files, so another relative path, a symlink or a hard link to one is refused too.

    Returns
    -------
    str
        The file to replace: ``path``, or the file it points to when it is a symbolic link.

    Raises
    ------
    OutputFileError
        ``path`` is empty or one of ``protect``, its directory is missing or not writable,
        or it is a directory.
    """
    if path == "-":
        return path
    if not path:
        raise OutputFileError("output path is empty")
    for other in protect:
        if other != "-" and os.path.lexists(path) and os.path.exists(other) and same_file(path, other):
            raise OutputFileError(
                f"refusing to overwrite input {other!r} with output {path!r}; choose another output name"
            )
    target = os.path.realpath(path) if os.path.islink(path) else path
    directory = os.path.dirname(target) or "."
    if not os.path.isdir(directory):
        raise OutputFileError(f"output directory {directory!r} does not exist (for {path!r})")
    if os.path.isdir(target):
        raise OutputFileError(f"output {path!r} is a directory; expected a file name")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputFileError(f"cannot write {path!r}: permission denied (directory {directory!r})")
    return target


def write_output(path: str, data: bytes, *, protect: Sequence[str] = ()) -> None:
    """Write ``data`` to ``path`` whole or not at all.

    ``-`` writes to ``sys.stdout.buffer`` and flushes.  Otherwise the bytes go to a new
    temporary file in the target's directory, which then replaces the target with
    ``os.replace``: no partial file is ever left, and an existing file is replaced only
    whole (its permission bits are kept).  When ``path`` is a symbolic link, the file it
    points to is replaced and the link kept.

    Parameters
    ----------
    path : str
        Output path, or ``-``.
    data : bytes
        The whole file.
    protect : sequence of str
        Paths that must not be overwritten (the inputs; ``-`` entries ignored).  Compared
        as files, so another relative path, a symlink or a hard link to one is refused too.

    Raises
    ------
    OutputFileError
        ``path`` is one of ``protect``, its directory is missing or not writable, it is a
        directory, or writing fails (the temporary file is removed).
    """
    if path == "-":
        _write_stdout(data)
        return
    target = check_target(path, protect)
    directory = os.path.dirname(target) or "."
    mode = None
    if os.path.exists(target):
        mode = os.stat(target).st_mode & 0o7777

    fd, temp = _create_temp(directory, os.path.basename(target), path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise


def first_repeated(paths: Sequence[str]) -> Optional[str]:
    """The first path in ``paths`` that names the same file as an earlier one (``-`` aside), or None.

    Different spellings of one file (``a.png``, ``./a.png``, a link to it) count as the same.
    """
    for i, path in enumerate(paths):
        if path != "-" and any(other != "-" and (other == path or same_file(other, path)) for other in paths[:i]):
            return path
    return None


def check_targets(
    paths: Sequence[str],
    protect: Sequence[str] = (),
    *,
    subject: str = "several outputs",
    hint: str = "give each its own name",
) -> None:
    """Check every output path of a run before the first is written.

    Parameters
    ----------
    paths : sequence of str
        The outputs (``-`` for standard output).
    protect : sequence of str
        Paths never to overwrite (see :func:`check_target`).
    subject, hint : str
        The duplicate's message is ``"{subject} would be written to 'PATH'; {hint}"``.

    Raises
    ------
    OutputFileError
        Two paths name one file (:func:`first_repeated`), or :func:`check_target`
        refuses one.
    """
    repeated = first_repeated(paths)
    if repeated is not None:
        raise OutputFileError(f"{subject} would be written to {repeated!r}; {hint}")
    for path in paths:
        check_target(path, protect)


@contextmanager
def all_or_nothing(protect: Sequence[str] = ()) -> Iterator[Callable[[str, bytes], None]]:
    """Yield a ``write(path, data)`` that removes every file it created if the block fails.

    Each file is written with :func:`write_output` (whole or not at all); files that
    existed before are replaced whole and cannot be restored, so callers check every
    target with :func:`check_target` first.
    """
    created: list[str] = []

    def write(path: str, data: bytes) -> None:
        existed = path == "-" or os.path.lexists(path)
        write_output(path, data, protect=protect)
        if not existed:
            created.append(path)

    try:
        yield write
    except BaseException:
        for path in created:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise


def _create_temp(directory: str, base: str, path: str) -> tuple[int, str]:
    """Create a new, empty temporary file beside the target (mode 0666 less the umask).

    Returns
    -------
    tuple (int, str)
        Its open file descriptor (write only) and its path.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = os.path.join(directory, f".{base}.{os.urandom(4).hex()}.tmp")
        try:
            fd = os.open(temp, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _write_error(path, exc) from None
        return fd, temp
    raise OutputFileError(f"cannot create a temporary file in {directory!r} for {path!r}")


def _write_error(path: str, exc: OSError) -> OutputFileError:
    if isinstance(exc, PermissionError):
        return OutputFileError(f"cannot write {path!r}: permission denied")
    if exc.errno == errno.ENOSPC:
        return OutputFileError(f"cannot write {path!r}: no space left on device")
    return OutputFileError(f"cannot write {path!r}: {exc.strerror or exc}")


def protected_files(*sources: Optional[str]) -> list[str]:
    """The files among ``sources`` (inputs, ``dout``, kernel and bias specs) that outputs must never overwrite.

    None (an option not given), ``-`` and specs that name no file (a built-in kernel, a
    generator, a number) are left out.

    Returns
    -------
    list of str
        The stripped specs that are existing files, in order.
    """
    names = [s.strip() for s in sources if s is not None]
    return [name for name in names if name != "-" and os.path.isfile(name)]


def refuse_terminal(what: str) -> None:
    """Raise :class:`OutputFileError` when standard output, which ``what`` writes binary data to, is a terminal."""
    if sys.stdout.isatty():
        raise OutputFileError(f"{what} writes binary data, not to a terminal; redirect it to a file or a pipe")
