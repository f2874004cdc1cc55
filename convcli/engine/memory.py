"""Memory limits of a run: results too large for the machine are refused with their shape and size.

A convolution's output can be far larger than its input (``--pad 100000`` on a small image,
many kernels): :func:`check_result_size` refuses, before any work, a result that with the
engine's work buffers (:meth:`convcli.engine.layer.Convolution.work_bytes`: a few tiles per
worker, whatever the kernel) would not fit in the machine's physical memory, and
:func:`allocation_guard` turns a ``MemoryError`` while computing into a
:class:`~convcli.errors.MemoryLimitError` that names the result and those buffers, instead
of a bare "out of memory".
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Optional

import numpy as np

from ..errors import MemoryLimitError

__all__ = ["allocation_guard", "check_result_size", "physical_memory"]


def _size_text(nbytes: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{int(nbytes)} bytes"


def physical_memory() -> Optional[int]:
    """This machine's physical memory in bytes, or None where the platform does not say."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


_SMALLER = "use less padding, a larger stride, or fewer kernels or inputs at a time"


def _work_text(work: int) -> str:
    return f", with about {_size_text(work)} of work buffers" if work else ""


def check_result_size(shape: Sequence[int], dtype: np.dtype, what: str = "output", *, work: int = 0,
                      result_bytes: Optional[int] = None) -> None:
    """Refuse, before any work, a result that with the work buffers is larger than this machine's memory.

    The rule is deliberately generous: only a job that could never fit (more bytes than
    the machine has, e.g. ``pad=100000`` on a small image) is refused here; one that fits
    on paper but not in the memory left fails in :func:`allocation_guard`.  Where the
    platform does not tell its memory (:func:`physical_memory` is None), nothing is
    refused here.

    Parameters
    ----------
    shape : sequence of int
        The result's shape (N, FN, OH, OW).
    dtype : numpy.dtype
        The result's dtype.
    what : str
        How the message names the result.
    work : int
        Bytes of the engine's work buffers (:meth:`convcli.engine.layer.Convolution.work_bytes`).
    result_bytes : int, optional
        What the result really takes when not ``shape × itemsize`` (a picture held as
        8-bit pixels).

    Raises
    ------
    MemoryLimitError
        Naming the shape, the dtype and the bytes needed.
    """
    nbytes = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize if result_bytes is None else result_bytes
    total = physical_memory()
    if total is not None and nbytes + work > total:
        raise MemoryLimitError(
            f"{what} of shape {tuple(int(n) for n in shape)} ({np.dtype(dtype)}) needs {_size_text(nbytes)}"
            f"{_work_text(work)}, more than this machine's {_size_text(total)} of memory; {_SMALLER}"
        )


@contextmanager
def allocation_guard(shape: Sequence[int], dtype: np.dtype, what: str = "output", *, work: int = 0) -> Iterator[None]:
    """Turn a MemoryError inside the block into a :class:`MemoryLimitError` naming the result and the work buffers."""
    try:
        yield
    except MemoryError:
        nbytes = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
        smaller = _SMALLER + (", or float32" if np.dtype(dtype) == np.float64 else "")
        raise MemoryLimitError(
            f"out of memory computing the {what} of shape {tuple(int(n) for n in shape)} ({np.dtype(dtype)}, "
            f"{_size_text(nbytes)}){_work_text(work)}; {smaller}"
        ) from None
