"""The one rule for the float dtype a convolution computes in.

float32 stays float32 and float64 stays float64; everything else (integers, bool,
float16) computes in float32, so an 8-bit image needs no float64 copy.  Several inputs
(x, W, b) compute in numpy's promotion of their float dtypes: float32 data with float64
weights computes in float64.

>>> import numpy as np
>>> float_dtype(np.uint8), float_dtype(np.float64)
(dtype('float32'), dtype('float64'))
>>> compute_dtype(np.zeros(1, np.float32), np.zeros(1, np.int64))
dtype('float32')
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = ["compute_dtype", "float_dtype"]


def float_dtype(dtype: DTypeLike) -> np.dtype:
    """The float dtype values of ``dtype`` compute in: float64 for floats of 8 bytes or more, else float32.

    Parameters
    ----------
    dtype : dtype-like
        Any numeric dtype.

    Returns
    -------
    numpy.dtype
        float64 or float32.
    """
    dt = np.dtype(dtype)
    return np.dtype(np.float64) if dt.kind == "f" and dt.itemsize >= 8 else np.dtype(np.float32)


def compute_dtype(*arrays: Optional[NDArray[np.generic]]) -> np.dtype:
    """The float dtype a computation over ``arrays`` runs in: the promotion of each one's :func:`float_dtype`.

    Parameters
    ----------
    *arrays : ndarray or None
        None entries (an absent bias) are skipped.

    Returns
    -------
    numpy.dtype
        float64 when any array is float64, else float32.
    """
    dtypes = [float_dtype(a.dtype) for a in arrays if a is not None]
    return np.result_type(*dtypes) if dtypes else np.dtype(np.float32)
