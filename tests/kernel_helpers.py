"""Shared helpers of the kernel tests (tests/kernels/): kernels whose taps catch flips, a naive correlation."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import KernelSpecError
from convcli.kernels.spec import parse_kernel

SOBEL_X_ROWS = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


def spec_error(spec: str) -> str:
    """The message of the KernelSpecError that parse_kernel(spec) raises."""
    with pytest.raises(KernelSpecError) as info:
        parse_kernel(spec)
    message = str(info.value)
    assert "\n" not in message
    return message


def distinct(h: int, w: int, start: int = 0) -> np.ndarray:
    """An h×w kernel whose taps are distinct powers of two (catches flips and transposes)."""
    return 2.0 ** np.arange(start, start + h * w).reshape(h, w)


def correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Naive 'valid' cross-correlation of one 2-D image with one 2-D kernel."""
    fh, fw = kernel.shape
    oh, ow = image.shape[0] - fh + 1, image.shape[1] - fw + 1
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[i, j] = np.sum(image[i:i + fh, j:j + fw] * kernel)
    return out
