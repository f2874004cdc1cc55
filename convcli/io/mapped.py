"""Memory-mapped ``.npy`` files: inputs read where they lie, outputs written a band at a time.

An array larger than memory is never read whole.  :func:`map_npy` maps a ``.npy`` input
read-only (the header checked as :func:`convcli.io.arrays.load_npy` checks it, never a
pickle), so the engine reads just the rows a band needs; :func:`create_npy` lays out a
``.npy`` output in a file descriptor (header, then the data's whole size reserved on
disk, so a full disk is an error before any work rather than a ``SIGBUS`` in the
middle) and maps it for writing.

File-backed pages count in a process's resident memory while they are mapped, so a
mapping read or written from end to end would hold the whole file by the end:
:meth:`MappedArray.release` tells the kernel the pages are not needed any more
(``madvise(MADV_DONTNEED)``; written pages stay in the page cache, dirty, and reach the
disk as usual), and the streamed path calls it after every band.

Neighbours: reading whole sources is :mod:`convcli.io.streams`; the all-or-nothing file
a mapped output is written into is :meth:`convcli.io.outputs.OutputSet.stage_with`.
"""

from __future__ import annotations

import io
import math
import mmap
import os
import stat
import warnings
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import InputFileError, OutputFileError, name_of
from .arrays import NPY_MAGIC, _pickled, _unreadable

__all__ = ["STREAM_MIN_BYTES", "MappedArray", "count_nonfinite", "create_npy", "map_npy", "worth_mapping"]

#: ``.npy`` inputs of at least this many bytes are memory-mapped and streamed unless told otherwise.
STREAM_MIN_BYTES = 256 * 2**20

#: The rows :func:`count_nonfinite` reads between two releases of the pages it read.
_SCAN_BYTES = 32 * 2**20


@dataclass(eq=False)
class MappedArray:
    """An ndarray over a memory-mapped file, and the mapping, to drop its resident pages.

    Attributes
    ----------
    array : ndarray
        The file's array (read-only for inputs), any shape.
    """

    array: NDArray[Any]
    _map: mmap.mmap

    def release(self) -> None:
        """Drop every resident page of the mapping (they are read again from the file if touched)."""
        if hasattr(self._map, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def flush(self) -> None:
        """Write the mapping's dirty pages to the file (``msync``)."""
        self._map.flush()

    def close(self) -> None:
        """Unmap (the array must not be used afterwards; views of it keep the mapping alive until freed)."""
        self.array = np.empty(0, dtype=self.array.dtype)
        try:
            self._map.close()
        except BufferError:  # a view is still alive: the mapping goes when it does
            pass


def worth_mapping(source: str, min_bytes: int = STREAM_MIN_BYTES) -> bool:
    """True when ``source`` is a regular file of at least ``min_bytes`` that starts with the ``.npy`` magic."""
    if source == "-":
        return False
    try:
        info = os.stat(source)
        if not stat.S_ISREG(info.st_mode) or info.st_size < min_bytes:
            return False
        with open(source, "rb") as f:
            return f.read(len(NPY_MAGIC)) == NPY_MAGIC
    except (OSError, ValueError):
        return False


def _header(stream: io.BufferedReader, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _pickled(name) from None
        raise _unreadable(name, ".npy", str(exc).splitlines()[0][:120]) from None
    if dtype.hasobject:
        raise _pickled(name)
    return tuple(int(n) for n in shape), bool(fortran), dtype


def map_npy(source: str) -> MappedArray:
    """Map a ``.npy`` file read-only, its header checked first (no pickles, no truncated data).

    Parameters
    ----------
    source : str
        A regular ``.npy`` file (see :func:`worth_mapping`).

    Returns
    -------
    MappedArray
        ``array`` has the file's shape, dtype and order and is read-only; nothing of the
        data is read until it is used.

    Raises
    ------
    InputFileError
        A bad header, an object (pickled) array, or less data than the header declares.
    """
    name = source
    try:
        with open(source, "rb") as stream:
            shape, fortran, dtype = _header(stream, name)
            offset = stream.tell()
            size = os.fstat(stream.fileno()).st_size
            needed = math.prod(shape) * dtype.itemsize
            if size - offset < needed:
                raise _unreadable(
                    name, ".npy", f"it is truncated (shape {shape} of {dtype} needs {needed} bytes of data, "
                    f"{size - offset} found)"
                )
            mapping = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise InputFileError(f"cannot read input {name_of(source)}: {exc.strerror or exc}") from None
    array: NDArray[Any] = np.ndarray(shape, dtype=dtype, buffer=mapping, offset=offset, order="F" if fortran else "C")
    return MappedArray(array, mapping)


def create_npy(fd: int, shape: tuple[int, ...], dtype: np.dtype, path: str) -> MappedArray:
    """Lay out a ``.npy`` of ``shape`` and ``dtype`` in the open file ``fd`` and map its data for writing.

    The header is written first, then the data's bytes are reserved on disk
    (``posix_fallocate``), so a disk too small fails here, before any work.

    Parameters
    ----------
    fd : int
        A file opened for reading and writing (empty; it is truncated to the new size).
    shape : tuple of int
    dtype : numpy.dtype
    path : str
        The output's name, for messages.

    Returns
    -------
    MappedArray
        ``array`` of ``shape`` and ``dtype``, writable, zero-filled.

    Raises
    ------
    OutputFileError
        No room on the disk, or another write error.
    """
    dtype = np.dtype(dtype)
    header = io.BytesIO()
    info = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    try:
        np.lib.format.write_array_header_1_0(header, info)
    except ValueError:  # a header past 64 KiB (a shape of very many axes)
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, info)
    head = header.getvalue()
    total = len(head) + math.prod(shape) * dtype.itemsize
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, head, 0)
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, total)
        else:
            os.ftruncate(fd, total)
        mapping = mmap.mmap(fd, total, access=mmap.ACCESS_WRITE)
    except OSError as exc:
        what = "no space left on its disk" if getattr(exc, "errno", None) == 28 else exc.strerror or str(exc)
        raise OutputFileError(
            f"cannot write {name_of(path)} ({_size(total)}): {what}; nothing was written"
        ) from None
    array: NDArray[Any] = np.ndarray(tuple(shape), dtype=dtype, buffer=mapping, offset=len(head))
    return MappedArray(array, mapping)


def _size(nbytes: int) -> str:
    from .limits import format_bytes

    return format_bytes(nbytes)


def count_nonfinite(mapped: MappedArray, array: Optional[NDArray[Any]] = None) -> int:
    """How many NaN and inf values a mapped float array holds, read a band of rows at a time.

    Parameters
    ----------
    mapped : MappedArray
    array : ndarray, optional
        A view of ``mapped.array`` to count (default the whole array); its pages are
        released after every band, so resident memory stays a band's worth.
    """
    a = mapped.array if array is None else array
    if a.dtype.kind != "f":
        return 0
    flat = a.reshape(-1, a.shape[-1]) if a.ndim > 1 and a.flags.c_contiguous else a.reshape(1, -1) if a.ndim <= 1 \
        else None
    if flat is None:  # Fortran order: nothing better than one pass
        bad = int(np.count_nonzero(~np.isfinite(a)))
        mapped.release()
        return bad
    rows = max(1, _SCAN_BYTES // max(1, flat.shape[1] * a.dtype.itemsize))
    bad = 0
    for r0 in range(0, flat.shape[0], rows):
        bad += int(np.count_nonzero(~np.isfinite(flat[r0:r0 + rows])))
        mapped.release()
    return bad
