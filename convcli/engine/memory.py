"""Memory limits of a run: results too large for the machine are refused with their shape and size.

A convolution's output can be far larger than its input (``--pad 100000`` on a small image,
many kernels): :func:`check_result_size` refuses, before any work, a result larger than the
machine's physical memory, and :func:`allocation_guard` turns a ``MemoryError`` while
computing into a :class:`~convcli.errors.MemoryLimitError` that names the result, instead of
a bare "out of memory".
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


def check_result_size(shape: Sequence[int], dtype: np.dtype, what: str = "output") -> None:
    """Refuse, before any work, a result larger than this machine's physical memory.

    The rule is deliberately generous: only a result that could never fit (more bytes
    than the machine has, e.g. ``pad=100000`` on a small image) is refused here; one
    that fits on paper but not in the memory left fails in :func:`allocation_guard`.
    Where the platform does not tell its memory (:func:`physical_memory` is None),
    nothing is refused here.

    Raises
    ------
    MemoryLimitError
        Naming the shape, the dtype and the bytes needed.
    """
    nbytes = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    total = physical_memory()
    if total is not None and nbytes > total:
        raise MemoryLimitError(
            f"{what} of shape {tuple(int(n) for n in shape)} ({np.dtype(dtype)}) needs {_size_text(nbytes)}, "
            f"more than this machine's {_size_text(total)} of memory; {_SMALLER}"
        )


@contextmanager
def allocation_guard(shape: Sequence[int], dtype: np.dtype, what: str = "output") -> Iterator[None]:
    """Turn a MemoryError inside the block into a :class:`MemoryLimitError` naming the result's shape and size."""
    try:
        yield
    except MemoryError:
        nbytes = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
        smaller = _SMALLER + (", or float32" if np.dtype(dtype) == np.float64 else "")
        raise MemoryLimitError(
            f"out of memory computing the {what} of shape {tuple(int(n) for n in shape)} ({np.dtype(dtype)}, "
            f"{_size_text(nbytes)}); {smaller}"
        ) from None
