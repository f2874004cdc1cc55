"""Writing outputs: all of a run's files or none, nothing replaced that is not the user's, ``-`` for stdout.

One run writes through one :class:`OutputSet`:

1. :meth:`OutputSet.reserve` checks every target before any work (:func:`check_target`)
   and creates each file's temporary twin beside it, so an output that cannot be
   created (``/proc/x.png``, a read-only folder) is found before the computing starts;
   a FIFO or device target is opened then (a FIFO waits a few seconds for its reader).
2. :meth:`OutputSet.write` writes each result into its temporary file (``.NAME.XXXX.tmp``)
   as it is computed; nothing the user can see changes yet.
3. :meth:`OutputSet.commit` streams the bytes meant for standard output, FIFOs and devices,
   then renames every temporary file over its target, keeping each replaced file aside
   (a hard link, ``.NAME.XXXX.old``) until all are in place.  A failure, or SIGINT,
   SIGTERM or SIGHUP arriving during the renames, puts every replaced file back and
   removes every new one; the signal then takes effect.
4. Any failure or signal before the commit removes every temporary file
   (:meth:`OutputSet.discard`); the context manager does it for a ``with`` block.

The rules every target passes (:func:`check_target`): never an input (standard input
included, when it is a regular file); an existing regular file only when the user may
write it; a FIFO or character device is written in place, never replaced; a terminal,
block device, socket or directory is refused; a symbolic link is followed only where
Linux's ``fs.protected_symlinks`` would follow it (not a link of another user in a sticky
world-writable folder such as ``/tmp``).

:func:`write_output` writes one file this way; :func:`all_or_nothing` is a ``with``
block of one run; :func:`protected_files` says which of a run's sources are never to
be overwritten; :func:`refuse_terminal` keeps binary data off a terminal;
:func:`npy_bytes` and :func:`npz_bytes` encode arrays as ``.npy`` and ``.npz`` file bytes.

Neighbours: the output formats by name and extension are :mod:`convcli.io.formats`; PNG and
TIFF encoding is :mod:`convcli.io.images`, floats -> pixels :mod:`convcli.io.display`; how
each command names its outputs is its own module in :mod:`convcli.commands`.
"""

from __future__ import annotations

import errno
import io
import os
import signal
import stat
import sys
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from numpy.typing import ArrayLike

from ..errors import BrokenOutputPipe, OutputFileError, name_of
from ..hooks import pause

__all__ = [
    "OutputSet", "Target", "all_or_nothing", "check_folder", "check_target", "check_targets", "commits",
    "first_repeated", "npy_bytes",
    "npz_bytes", "protected_files", "refuse_terminal", "same_file", "stdout_open", "write_output",
]

#: The signals a commit holds until its renames are all done (or all undone).
HELD_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)

#: How long a FIFO output waits for a reader (``CONVCLI_FIFO_WAIT`` seconds, as for inputs).
FIFO_WAIT_SECONDS = 5.0

_WRITE_CHUNK = 4 * 2**20
_commits = [0]


def commits() -> int:
    """How many :class:`OutputSet` commits this process completed (the CLI says so when a late signal comes)."""
    return _commits[0]
_SYMLINK_HOPS = 40


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


def _fifo_wait() -> float:
    try:
        return max(0.0, float(os.environ.get("CONVCLI_FIFO_WAIT", FIFO_WAIT_SECONDS)))
    except ValueError:
        return FIFO_WAIT_SECONDS


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


# ---------------------------------------------------------------- signals held during a commit


@contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Hold SIGINT, SIGTERM and SIGHUP while the block runs; the list it gives fills with those that came.

    When the block ends each held signal is raised again, so its handler (or default
    action) runs then, after the block's renames are all done or all undone.  Only the main
    thread can change handlers; elsewhere the block runs as it is.
    """
    came: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    saved = {}

    def hold(signum: int, frame: object) -> None:
        came.append(signum)

    for number in HELD_SIGNALS:
        handler = signal.getsignal(number)
        if handler in (signal.SIG_IGN, None):
            continue
        saved[number] = handler
        signal.signal(number, hold)
    try:
        yield came
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(came):
            signal.raise_signal(number)


# ---------------------------------------------------------------- one run's outputs


def _write_all(fd: int, data: bytes, path: str, *, broken: bool = False) -> None:
    """Write every byte of ``data`` to ``fd`` (a short write is resumed; a FIFO's closed reader is a broken pipe)."""
    view = memoryview(data)
    first = True
    while view:
        try:
            count = os.write(fd, view[:_WRITE_CHUNK])
        except BrokenPipeError:
            if broken:
                message = f"the reader of {name_of(path)} closed it before all output was written"
                raise BrokenOutputPipe(message) from None
            raise
        view = view[count:]
        if first and view:
            first = False
            pause("writing")


def _write_stdout(data: bytes) -> None:
    stream = getattr(sys.stdout, "buffer", None) if sys.stdout is not None else None
    if stream is None:
        raise OutputFileError("standard output is closed or does not accept bytes; give an output file with -o")
    try:
        # an unbuffered stdout (python -u, PYTHONUNBUFFERED) is a raw FileIO whose write may
        # take only part of the bytes (a pipe whose reader left): loop until all are taken
        view = memoryview(data)
        while view:
            count = stream.write(view)
            view = view[count or 0 :]  # None: a non-blocking stream took nothing yet
        stream.flush()
    except BrokenPipeError:
        raise BrokenOutputPipe("standard output was closed before all output was written") from None
    except ValueError:  # a closed file object
        raise OutputFileError("standard output is closed; give an output file with -o") from None
    except OSError as exc:
        raise OutputFileError(f"cannot write to standard output: {exc.strerror or exc}") from None


def _side_name(file: str, suffix: str) -> str:
    directory, base = os.path.split(file)
    return os.path.join(directory, f".{base}.{os.urandom(4).hex()}.{suffix}")


class OutputSet:
    """The outputs of one run: checked and reserved before any work, written beside their targets, committed together.

    Parameters
    ----------
    protect : sequence of str
        Paths never to overwrite (the inputs; ``-`` for standard input's file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with OutputSet() as outputs:
    ...     _ = outputs.reserve([str(folder / "a.bin"), str(folder / "b.bin")])  # before any work
    ...     outputs.write(str(folder / "a.bin"), b"first")
    ...     outputs.write(str(folder / "b.bin"), b"second")
    >>> sorted(p.name for p in folder.iterdir())
    ['a.bin', 'b.bin']
    """

    def __init__(self, protect: Sequence[str] = ()) -> None:
        self.protect = list(protect)
        self.targets: dict[str, Target] = {}
        self.committed = False

    # -- before the work

    def reserve(self, paths: Sequence[str], *, subject: str = "several outputs",
                hint: str = "give each its own name") -> list[Target]:
        """Check every path (:func:`check_target`) and make its place: a temporary file beside it, a stream opened.

        Raises
        ------
        OutputFileError
            Two paths name one file, a target is refused, its temporary file cannot be
            created, or a FIFO has no reader; whatever this call made is removed.
        """
        repeated = first_repeated([*self.targets, *paths])
        if repeated is not None:
            raise OutputFileError(f"{subject} would be written to {name_of(repeated)}; {hint}")
        made: list[Target] = []
        try:
            for path in paths:
                target = _classify(path, self.protect)
                self.targets[path] = target
                made.append(target)
                if target.kind == "file":
                    self._create_temp(target)
                elif target.kind == "stream":
                    self._open_stream(target)
        except BaseException:
            for target in made:
                self._drop(target)
                self.targets.pop(target.path, None)
            raise
        pause("reserved")
        return made

    def _create_temp(self, target: Target) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        for _ in range(100):
            temp = _side_name(target.file, "tmp")
            try:
                fd = os.open(temp, flags | getattr(os, "O_BINARY", 0), 0o666)
            except FileExistsError:
                continue
            except OSError as exc:
                raise _write_error(target.path, exc) from None
            info = os.fstat(fd)
            os.close(fd)
            target.temp, target.temp_id = temp, (info.st_dev, info.st_ino)
            return
        raise OutputFileError(f"cannot create a temporary file beside {name_of(target.path)}")

    def _open_stream(self, target: Target) -> None:
        flags = os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
        deadline = time.monotonic() + _fifo_wait()
        while True:
            try:
                fd = os.open(target.file, flags)
                break
            except OSError as exc:
                if exc.errno == errno.ENXIO and time.monotonic() < deadline:  # a FIFO nobody reads, yet
                    time.sleep(0.02)
                    continue
                if exc.errno == errno.ENXIO:
                    raise OutputFileError(
                        f"output {name_of(target.path)} is a FIFO that no program reads (waited {_fifo_wait():g} s); "
                        "start its reader first"
                    ) from None
                raise _write_error(target.path, exc) from None
        if os.isatty(fd):
            os.close(fd)
            raise OutputFileError(f"output {name_of(target.path)} is a terminal; convcli writes binary data, not to a "
                                  "terminal")
        os.set_blocking(fd, True)
        target.fd = fd

    # -- during the work

    def write(self, path: str, data: bytes) -> None:
        """Write one output's bytes beside its target (reserving it first if it was not).

        Streams (standard output, FIFOs, devices) keep the bytes until :meth:`commit`.

        Raises
        ------
        OutputFileError
            Writing fails (a full disk: the message says so); the run's files are left to
            :meth:`discard`.
        """
        target = self.targets.get(path)
        if target is None:
            target = self.reserve([path])[0]
        if target.kind != "file":
            target.pending.append(data)
            target.staged = True
        else:
            self._stage(target, data)
        pause(f"staged:{sum(t.staged for t in self.targets.values())}")

    def _stage(self, target: Target, data: bytes) -> None:
        assert target.temp is not None
        flags = os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(target.temp, flags | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise _write_error(target.path, exc) from None
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != target.temp_id:
                raise OutputFileError(f"the temporary file beside {name_of(target.path)} was replaced by another")
            _write_all(fd, data, target.path)
            os.fsync(fd)
        except OSError as exc:
            raise _write_error(target.path, exc) from None
        finally:
            os.close(fd)
        target.staged = True

    # -- after the work

    def commit(self) -> None:
        """Stream the streams' bytes, then rename every written file over its target: all or none.

        A target that was reserved but never written is left as it was.  While the files
        are renamed SIGINT, SIGTERM and SIGHUP are held: one that comes is acted on after
        every replaced file has been put back and every new one removed.

        Raises
        ------
        OutputFileError
            A stream or a rename failed (every file is then as it was before the run).
        BrokenOutputPipe
            Standard output's (or a FIFO's) reader left before everything was written.
        """
        try:
            for target in self.targets.values():
                if target.kind == "stdout" and target.staged:
                    _write_stdout(b"".join(target.pending))
                elif target.kind == "stream" and target.staged:
                    assert target.fd is not None
                    try:
                        _write_all(target.fd, b"".join(target.pending), target.path, broken=True)
                    except OSError as exc:
                        raise _write_error(target.path, exc) from None
                target.pending.clear()
            files = [t for t in self.targets.values() if t.kind == "file" and t.staged]
            with _signals_held() as came:
                try:
                    for number, target in enumerate(files):
                        self._place(target)
                        if number == 0:
                            pause("committing")
                except BaseException:
                    self._undo(files)
                    raise
                if came:
                    self._undo(files)
                    return  # the held signal is raised as the block ends
                self.committed = True
                _commits[0] += 1
                for target in files:
                    if target.backup is not None:
                        _unlink(target.backup)
                        target.backup = None
        finally:
            self.discard()

    def _place(self, target: Target) -> None:
        assert target.temp is not None
        try:
            current: Optional[os.stat_result] = os.lstat(target.file)
        except FileNotFoundError:
            current = None
        if current is not None and not stat.S_ISREG(current.st_mode):
            raise OutputFileError(f"output {name_of(target.path)} was replaced by something that is not a file while "
                                  "convcli worked; left alone")
        if current is not None and not target.existed and not _may_write(target.file):
            raise OutputFileError(f"output {name_of(target.path)} appeared while convcli worked, and you may not "
                                  "write it; left alone")
        try:
            if current is not None:
                mode = stat.S_IMODE(current.st_mode) & 0o777
                if hasattr(os, "geteuid") and os.geteuid() == 0 and (current.st_uid, current.st_gid) != (0, 0):
                    os.chown(target.temp, current.st_uid, current.st_gid)  # root keeps the file its owner's
                os.chmod(target.temp, mode)
                backup = _side_name(target.file, "old")
                try:
                    os.link(target.file, backup)  # the old file stays in place until the rename
                except OSError:
                    os.rename(target.file, backup)  # no hard links here: moved aside instead
                    target.moved = True
                target.backup = backup
            os.replace(target.temp, target.file)
        except OSError as exc:
            raise _write_error(target.path, exc) from None
        target.temp = None
        target.placed = True

    def _undo(self, files: Sequence[Target]) -> None:
        """Put back every replaced file and remove every new one (signals are held by the caller)."""
        for target in files:
            if target.backup is not None:
                if target.placed or target.moved:
                    try:
                        os.replace(target.backup, target.file)
                    except OSError:
                        pass
                else:  # never replaced: the old file is still in place
                    _unlink(target.backup)
                target.backup = None
            elif target.placed:
                _unlink(target.file)
            target.placed = target.moved = False

    def discard(self) -> None:
        """Remove every temporary file and close every stream of the run (nothing the user sees changes)."""
        with _signals_held():
            for target in self.targets.values():
                self._drop(target)

    def _drop(self, target: Target) -> None:
        if target.temp is not None:
            _unlink(target.temp)
            target.temp = None
        if target.backup is not None and not (target.placed or target.moved):
            _unlink(target.backup)
            target.backup = None
        if target.fd is not None:
            try:
                os.close(target.fd)
            except OSError:
                pass
            target.fd = None
        target.pending.clear()

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_output(path: str, data: bytes, *, protect: Sequence[str] = ()) -> None:
    """Write ``data`` to ``path`` whole or not at all.

    ``-`` writes to ``sys.stdout.buffer`` and flushes; a FIFO or a character device is
    written in place.  Otherwise the bytes go to a new temporary file beside the target,
    which then replaces it (its permission bits, and as root its owner, are kept): no
    partial file is ever left.  When ``path`` is a symbolic link, the file it points to is
    replaced and the link kept (unless the link may not be followed, see :func:`check_target`).

    Parameters
    ----------
    path : str
        Output path, or ``-``.
    data : bytes
        The whole file.
    protect : sequence of str
        Paths that must not be overwritten (see :func:`check_target`).

    Raises
    ------
    OutputFileError
        :func:`check_target` refuses ``path``, or writing fails (the temporary file is
        removed, the target left as it was).
    """
    with OutputSet(protect) as outputs:
        outputs.write(path, data)


@contextmanager
def all_or_nothing(protect: Sequence[str] = ()) -> Iterator[Callable[[str, bytes], None]]:
    """Yield a ``write(path, data)``; the files are put in place together when the block ends, or not at all.

    Each ``write`` checks its target and writes the bytes beside it (:class:`OutputSet`);
    nothing the user sees changes until the block ends without an error.  A failure (or a
    signal) in the block removes every file it wrote; one during the commit puts every
    replaced file back.
    """
    with OutputSet(protect) as outputs:
        yield outputs.write


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
