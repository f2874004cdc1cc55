"""Chunked formats for data larger than memory: Zarr arrays in and out, tiled or striped TIFF in (``convcli[big]``).

Optional: zarr and tifffile are imported only here, and only when such a file is used
(``pip install "convcli[big]"``; without them, one line names the extra).  Inputs become
dask arrays whose chunks the workers read themselves (:class:`TiffChunks` opens the TIFF
through tifffile's ``aszarr`` view where it runs, so only a path travels); a Zarr output is
written block by block into a folder staged beside the target and renamed into place
when every block is in (all or nothing, as every output of ``apply``).

Neighbours: the Dask engine that reads and writes these is :mod:`convcli.commands.apply_dask`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import NDArray

from ..dask import require
from ..errors import InputFileError, OutputFileError, name_of
from .mapped import map_npy

__all__ = ["NpyChunks", "TiffChunks", "is_chunked", "open_chunked", "write_zarr"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def is_zarr(path: str) -> bool:
    """True for a folder holding a Zarr array (v2 ``.zarray`` or v3 ``zarr.json``)."""
    return os.path.isdir(path) and any(os.path.exists(os.path.join(path, n)) for n in ("zarr.json", ".zarray"))


def is_chunked(source: str) -> bool:
    """True for a Zarr array folder or a TIFF file: the inputs :func:`open_chunked` reads."""
    if is_zarr(source):
        return True
    try:
        with open(source, "rb") as f:
            return f.read(4) in _TIFF_MAGIC
    except OSError:
        return False


@dataclass(frozen=True)
class _FileChunks:
    """A file as an array-like dask can slice (``da.from_array``): only the path and the header's facts
    travel to the workers, each slice is read where it runs (subclasses say how)."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class NpyChunks(_FileChunks):
    """A ``.npy`` file: each slice opens the file memory-mapped where it runs."""

    def __getitem__(self, index: Any) -> NDArray[Any]:
        mapped = map_npy(self.path)
        try:
            return np.array(mapped.array[index])
        finally:
            mapped.close()


@dataclass(frozen=True)
class TiffChunks(_FileChunks):
    """A TIFF's first image: each slice reads only the tiles or strips it covers."""

    def __getitem__(self, index: Any) -> NDArray[Any]:
        tifffile = require("tifffile", "big")
        zarr = require("zarr", "big")
        with tifffile.imread(self.path, aszarr=True) as store:
            return np.asarray(zarr.open(store, mode="r")[index])


def _nchw(x: Any, chunk: int) -> Any:
    """A 2-D (H, W), 3-D (C, H, W) or 4-D dask array as (N, C, H, W), chunked (1, C, chunk, chunk)."""
    x = x.reshape((1,) * (4 - x.ndim) + tuple(x.shape))
    return x.rechunk((1, -1, chunk, chunk))


def open_chunked(source: str, chunk: int) -> tuple[Any, Optional[float]]:
    """A Zarr array or a TIFF as a dask array (N, C, H, W), and the divisor of integer TIFF samples.

    A TIFF is an image: (H, W) gray or (H, W, S) samples (made (S, H, W)); 8- and 16-bit
    samples stand for ``samples / 255`` and ``/ 65535`` as ``apply`` reads images, so the
    divisor is returned.  A Zarr array is an array: its values as they are.

    Raises
    ------
    MissingExtraError
        zarr or tifffile is not installed.
    InputFileError
        Not 2-, 3- or 4-D, or unreadable.
    """
    da = require("dask.array", "dask")
    zarr = require("zarr", "big")
    if is_zarr(source):
        try:
            x = da.from_zarr(zarr.open_array(os.path.abspath(source), mode="r"))  # workers have their own cwd
        except Exception as exc:
            raise InputFileError(f"cannot read {name_of(source)} as a Zarr array: {exc}") from None
        divisor = None
    else:
        tifffile = require("tifffile", "big")
        try:
            with tifffile.imread(source, aszarr=True) as store:
                z = zarr.open(store, mode="r")
                shape, dtype = tuple(z.shape), np.dtype(z.dtype)
        except Exception as exc:
            raise InputFileError(f"cannot read {name_of(source)} as a TIFF: {exc}") from None
        spec = TiffChunks(os.path.abspath(source), shape, dtype)
        x = da.from_array(spec, chunks=(chunk,) * len(shape), asarray=False, meta=np.empty((0,) * len(shape), dtype))
        if x.ndim == 3 and x.shape[2] <= 4:
            x = x.transpose(2, 0, 1)
        divisor = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(dtype)
    if x.ndim not in (2, 3, 4) or 0 in x.shape:
        raise InputFileError(
            f"{name_of(source)} has shape {tuple(x.shape)}; expected (H, W), (C, H, W) or (N, C, H, W)"
        )
    return _nchw(x, chunk), divisor


def write_zarr(client: Any, y: Any, target: str, protect: Sequence[str],
               progress: Optional[Callable[[float, int], None]] = None) -> None:
    """Write the dask array ``y`` as a Zarr array folder ``target``, block by block, all or nothing.

    The blocks are computed on ``client`` and written by this process into a folder
    staged beside ``target`` (:func:`convcli.commands.apply_dask.write_blocks`), so the
    workers need no access to it; the folder then replaces ``target`` (an existing Zarr
    array there is removed only after the new one is in place).

    Raises
    ------
    OutputFileError
        ``target`` is an input, exists and is not a Zarr array, or cannot be written.
    """
    from ..commands.apply_dask import write_blocks

    zarr = require("zarr", "big")
    target = target.rstrip("/")
    real = os.path.realpath(target)
    if any(p != "-" and os.path.realpath(p) == real for p in protect):
        raise OutputFileError(f"output {name_of(target)} is also an input; give the output another name")
    if os.path.lexists(target) and not is_zarr(target):
        raise OutputFileError(f"output {name_of(target)} exists and is not a Zarr array; left alone")
    folder, base = os.path.split(os.path.abspath(target))
    staged = os.path.join(folder, f".{base}.{os.urandom(4).hex()}.tmp")
    old = os.path.join(folder, f".{base}.{os.urandom(4).hex()}.old")
    chunks = tuple(int(c[0]) for c in y.chunks)
    try:
        z = zarr.create_array(staged, shape=tuple(int(n) for n in y.shape), chunks=chunks, dtype=y.dtype)

        def store(where: tuple[slice, ...], block: NDArray[Any]) -> None:
            z[where] = block

        write_blocks(client, y, store, progress)
        if os.path.lexists(target):
            os.rename(target, old)
        os.rename(staged, target)
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        if os.path.lexists(old) and not os.path.lexists(target):
            os.rename(old, target)
        raise OutputFileError(f"cannot write {name_of(target)}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
