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

The rules every target passes (:func:`check_target`, :func:`check_targets`,
:func:`check_folder`, :func:`protected_files`, :func:`refuse_terminal`) are
:mod:`convcli.io.targets`, re-exported here: never an input, an existing file only when
the user may write it, a FIFO or device written in place, a symbolic link followed only
as ``fs.protected_symlinks`` allows.

:func:`write_output` writes one file this way; :func:`all_or_nothing` is a ``with``
block of one run; :func:`npy_bytes` and :func:`npz_bytes` encode arrays as ``.npy`` and
``.npz`` file bytes.

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
from typing import Callable, Optional

import numpy as np
from numpy.typing import ArrayLike

from ..errors import BrokenOutputPipe, OutputFileError, name_of
from ..hooks import pause
from .targets import (
    Target,
    _classify,
    _may_write,
    _unlink,
    _write_error,
    check_folder,
    check_target,
    check_targets,
    first_repeated,
    protected_files,
    refuse_terminal,
    same_file,
    stdout_open,
)

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


def _fifo_wait() -> float:
    try:
        return max(0.0, float(os.environ.get("CONVCLI_FIFO_WAIT", FIFO_WAIT_SECONDS)))
    except ValueError:
        return FIFO_WAIT_SECONDS


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
        self._fill(target, os.O_WRONLY | os.O_TRUNC, lambda fd: _write_all(fd, data, target.path))

    def _fill(self, target: Target, mode: int, fill: Callable[[int], None]) -> None:
        """Open the target's temporary file with ``mode`` (never through a link, and only the file :meth:`reserve`
        made), let ``fill(fd)`` write it, sync it, and mark the target staged."""
        assert target.temp is not None
        flags = mode | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(target.temp, flags)
        except OSError as exc:
            raise _write_error(target.path, exc) from None
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != target.temp_id:
                raise OutputFileError(f"the temporary file beside {name_of(target.path)} was replaced by another")
            fill(fd)
            os.fsync(fd)
        except OSError as exc:
            raise _write_error(target.path, exc) from None
        finally:
            os.close(fd)
        target.staged = True

    def stage_with(self, path: str, fill: Callable[[int], None]) -> None:
        """Let ``fill(fd)`` write one output's temporary file itself, in place (a mapped ``.npy`` a band at a time).

        ``fd`` is the temporary file beside the target, opened for reading and writing
        (never through a link, and checked to be the file :meth:`reserve` made); it is
        synced when ``fill`` returns and renamed over the target at :meth:`commit`, like
        any written output.

        Raises
        ------
        OutputFileError
            The target is standard output, a FIFO or a device (they take bytes, not a file
            to map), the temporary file was replaced, or writing fails.
        """
        target = self.targets.get(path)
        if target is None:
            target = self.reserve([path])[0]
        if target.kind != "file" or target.temp is None:
            raise OutputFileError(f"output {name_of(path)} is not a regular file; a streamed .npy needs one")
        self._fill(target, os.O_RDWR, fill)
        pause(f"staged:{sum(t.staged for t in self.targets.values())}")

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


