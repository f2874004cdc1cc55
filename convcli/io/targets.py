"""The rules every output target passes: never an input, never replaced unless the user may write it.

:func:`check_target` says whether convcli may write a path, and what it writes there
(:class:`Target`): standard output; a FIFO or character device written in place (never
replaced by a file); or a regular file, new or replaced whole.  Refused: an input
(standard input's file included, when it reads one), an existing file the user may not
write, a directory, block device or socket, a symbolic link another user planted in a
sticky world-writable folder (the rule of Linux's ``fs.protected_symlinks``), a missing
or unwritable folder.  :func:`check_folder` tries the folder before any input is read;
:func:`protected_files` says which of a run's sources are inputs; :func:`refuse_terminal`
keeps binary data off a terminal.

Neighbours: writing a run's outputs all or none is :mod:`convcli.io.outputs`, which
re-exports these names.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from ..errors import OutputFileError, name_of

__all__ = [
    "Target", "check_folder", "check_target", "check_targets", "first_repeated", "protected_files",
    "refuse_terminal", "same_file", "stdout_open",
]

_SYMLINK_HOPS = 40


def same_file(a: str, b: str) -> bool:
    """True when paths ``a`` and ``b`` name one file (after links, ``..`` and case folding)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _stdin_file() -> Optional[os.stat_result]:
    """The status of the regular file standard input reads (``< in.png``), or None when it reads none."""
    stream = getattr(sys.stdin, "buffer", None) if sys.stdin is not None else None
    try:
        info = os.fstat(stream.fileno()) if stream is not None else None
    except (AttributeError, OSError, ValueError):
        return None
    return info if info is not None and stat.S_ISREG(info.st_mode) else None


def stdout_open() -> bool:
    """False when standard output is closed (``>&-``): nothing written there could arrive."""
    if sys.stdout is None:
        return False
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return True  # a stand-in (CliRunner, an embedding program): it takes what it is given
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _is(info: os.stat_result, other: os.stat_result) -> bool:
    return (info.st_dev, info.st_ino) == (other.st_dev, other.st_ino)


# ---------------------------------------------------------------- the rules of a target


@dataclass
class Target:
    """One output, checked.

    Attributes
    ----------
    path : str
        As given (``-`` for standard output).
    kind : {"stdout", "stream", "file"}
        Standard output; a FIFO or character device written in place; a regular file
        (existing or new) replaced whole.
    file : str
        What is written: ``path``, or the file an allowed symbolic link leads to.
    existed : bool
        A regular file was there when it was checked (it is replaced, and put back on failure).
    """

    path: str
    kind: str
    file: str
    existed: bool = False
    temp: Optional[str] = None
    temp_id: Optional[tuple[int, int]] = None
    backup: Optional[str] = None
    fd: Optional[int] = None
    pending: list[bytes] = field(default_factory=list)
    staged: bool = False
    placed: bool = False
    moved: bool = False


def _refuse_input(path: str, protect: Sequence[str]) -> None:
    if not os.path.lexists(path):
        return
    for other in protect:
        if other == "-":
            stdin = _stdin_file()
            try:
                if stdin is not None and _is(os.stat(path), stdin):
                    raise OutputFileError(
                        f"refusing to overwrite {name_of(path)}: it is the file standard input reads; "
                        "choose another output name"
                    )
            except FileNotFoundError:
                pass
        elif os.path.exists(other) and same_file(path, other):
            raise OutputFileError(
                f"refusing to overwrite input {name_of(other)} with output {name_of(path)}; choose another output name"
            )


def _follow(path: str) -> str:
    """``path`` with its symbolic links followed where ``fs.protected_symlinks`` would follow them.

    A link in a sticky world-writable folder (``/tmp``) is followed only when it belongs to
    the user or to the folder's owner; another user's link there is how a file elsewhere gets
    overwritten, so it is refused.
    """
    current = path
    for _ in range(_SYMLINK_HOPS):
        if not os.path.islink(current):
            return current
        folder = os.path.dirname(current) or "."
        if hasattr(os, "geteuid"):
            link, where = os.lstat(current), os.stat(folder)
            sticky = where.st_mode & stat.S_ISVTX and where.st_mode & stat.S_IWOTH
            if sticky and link.st_uid not in (os.geteuid(), where.st_uid):
                raise OutputFileError(
                    f"refusing to follow the symbolic link {name_of(path)}: it belongs to another user (uid "
                    f"{link.st_uid}) in a sticky world-writable folder; remove it or choose another output name"
                )
        current = os.path.normpath(os.path.join(folder, os.readlink(current)))
    raise OutputFileError(f"cannot write {name_of(path)}: too many levels of symbolic links")


def _classify(path: str, protect: Sequence[str]) -> Target:
    """The :class:`Target` ``path`` names, or the refusal (see :func:`check_target`)."""
    if path == "-":
        if not stdout_open():
            raise OutputFileError("standard output is closed; give an output file with -o")
        return Target(path, "stdout", path)
    if not path:
        raise OutputFileError("output path is empty")
    if "\x00" in path:
        raise OutputFileError(f"output {name_of(path)} is not a valid file name (it holds a NUL character)")
    _refuse_input(path, protect)
    target = _follow(path)
    if target != path:
        _refuse_input(target, protect)
    directory = os.path.dirname(target) or "."
    try:
        info: Optional[os.stat_result] = os.lstat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _write_error(path, exc) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputFileError(f"output {name_of(path)} is a directory; expected a file name")
    if info is not None and not stat.S_ISREG(info.st_mode):
        mode = info.st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            return Target(path, "stream", target)
        what = "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        raise OutputFileError(f"output {name_of(path)} is {what}; refusing to write to it or replace it")
    if not os.path.isdir(directory):
        raise OutputFileError(f"output directory {name_of(directory)} does not exist (for {name_of(path)})")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputFileError(f"cannot write {name_of(path)}: permission denied (directory {name_of(directory)})")
    if info is not None and not _may_write(target):
        raise OutputFileError(
            f"cannot replace {name_of(path)}: you may not write it (mode {stat.S_IMODE(info.st_mode):04o}, "
            f"owner uid {info.st_uid}); choose another output name"
        )
    return Target(path, "file", target, existed=info is not None)


def _may_write(path: str) -> bool:
    try:
        return os.access(path, os.W_OK, effective_ids=os.access in os.supports_effective_ids)
    except (NotImplementedError, OSError):
        return os.access(path, os.W_OK)


def check_target(path: str, protect: Sequence[str] = ()) -> str:
    """Refuse an output path that convcli must not or cannot write.

    :class:`OutputSet` checks every target of a run with it before any work; a caller can
    call it on every path first, so that a refusal of the second cannot leave the first
    written.  Nothing is created.

    Parameters
    ----------
    path : str
        Output path; ``-`` (standard output) passes unless standard output is closed.
    protect : sequence of str
        Paths that must not be overwritten (the inputs).  Compared as files, so another
        relative path, a symlink or a hard link to one is refused too; ``-`` stands for
        the file standard input reads, when it reads a regular file (``< in.png``).

    Returns
    -------
    str
        What is written: ``path``, or the file it leads to through symbolic links.

    Raises
    ------
    OutputFileError
        ``path`` is empty or one of ``protect``; its directory is missing or not
        writable; it is a directory, a block device, a socket or a terminal; it is an
        existing file the user may not write; or it is a symbolic link that another
        user planted in a sticky world-writable folder.
    """
    return _classify(path, protect).file


def check_folder(path: str, *, into: bool = False) -> None:
    """Before any input is read: can files be created where ``path`` goes?  A file is made and removed to see.

    Catches what permission bits do not show (``/proc``, a read-only mount, a full quota)
    before a long read; :meth:`OutputSet.reserve` checks each output again once its name is
    known.  A folder with a template field in it (``{stem}/``) is left to that later check.

    Parameters
    ----------
    path : str
        An output path (``-`` passes), or with ``into`` the folder outputs go into.

    Raises
    ------
    OutputFileError
        The folder does not exist, or no file can be created in it.
    """
    if path == "-" or not path:
        return
    folder = path if into else (os.path.dirname(path) or ".")
    if "{" in folder:
        return
    if not os.path.isdir(folder):
        raise OutputFileError(f"output directory {name_of(folder)} does not exist (for {name_of(path)})")
    probe = os.path.join(folder, f".convcli-probe.{os.urandom(4).hex()}.tmp")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    _unlink(probe)


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
        raise OutputFileError(f"{subject} would be written to {name_of(repeated)}; {hint}")
    for path in paths:
        check_target(path, protect)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_error(path: str, exc: OSError) -> OutputFileError:
    if isinstance(exc, PermissionError):
        return OutputFileError(f"cannot write {name_of(path)}: permission denied")
    if exc.errno == errno.ENOSPC:
        return OutputFileError(f"cannot write {name_of(path)}: no space left on device")
    if exc.errno == errno.EROFS:
        return OutputFileError(f"cannot write {name_of(path)}: read-only file system")
    return OutputFileError(f"cannot write {name_of(path)}: {exc.strerror or exc}")


def protected_files(*sources: Optional[str]) -> list[str]:
    """The files among ``sources`` (inputs, ``dout``, kernel and bias specs) that outputs must never overwrite.

    None (an option not given) and specs that name no file (a built-in kernel, a
    generator, a number) are left out; ``-`` is kept when standard input reads a regular
    file (``convcli apply - ... < in.png``): that file is an input too.

    Returns
    -------
    list of str
        The stripped specs that are existing files (and ``-``), in order.
    """
    names = [s.strip() for s in sources if s is not None]
    stdin = "-" in names and _stdin_file() is not None
    return [name for name in names if (name == "-" and stdin) or (name != "-" and os.path.isfile(name))]


def refuse_terminal(what: str) -> None:
    """Raise :class:`OutputFileError` when standard output, which ``what`` writes binary data to, is a terminal."""
    if sys.stdout is not None and sys.stdout.isatty():
        raise OutputFileError(f"{what} writes binary data, not to a terminal; redirect it to a file or a pipe")
