"""``convcli kernels``: the listing of the built-in kernels, and one kernel printed as a matrix.

:func:`kernel_listing` gives the rows of the listing; :func:`describe_kernel` parses a spec
and gives its heading and its matrix, as :func:`format_matrix` writes it.

Neighbours: the built-ins and their registry are :mod:`convcli.kernels.builtins`; the spec
parser :mod:`convcli.kernels.spec`; the table is printed by :mod:`convcli.cli.kernels`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..errors import ShapeError
from .common import format_shape

__all__ = ["LISTING_TITLE", "describe_kernel", "format_matrix", "kernel_listing"]

#: The title of the listing.
LISTING_TITLE = "Built-in kernels (apply as cross-correlation; --flip for true convolution)"


def kernel_listing() -> list[tuple[str, str]]:
    """(usage, summary) of every built-in, in registry order: ``("gaussian:SIGMA[:SIZE]", "Gaussian blur ...")``."""
    from ..kernels.builtins import BUILTINS

    return [(builtin.usage, builtin.summary) for builtin in BUILTINS.values()]


def describe_kernel(spec: str) -> tuple[str, str]:
    """The heading and the matrix of the kernel ``spec`` names.

    Returns
    -------
    heading : str
        ``"LABEL: FH×FW, sum S"`` for a 2-D kernel, ``"LABEL: layer FN×C×FH×FW (FN, C/groups, FH, FW)"``
        for a layer.
    matrix : str
        :func:`format_matrix` of the weights (a layer: one ``[f, c]`` block per filter and channel).
    """
    from ..kernels.spec import parse_kernel  # only here: it brings the file readers (Pillow)

    kernel = parse_kernel(spec)
    weights = kernel.weights
    if weights.ndim == 2:
        heading = f"{kernel.label}: {format_shape(weights.shape)}, sum {weights.sum():.6g}"
    else:
        heading = f"{kernel.label}: layer {format_shape(weights.shape)} (FN, C/groups, FH, FW)"
    return heading, format_matrix(weights)


def _format_number(value: float, precision: int) -> str:
    return "0" if value == 0 else f"{value:.{precision}g}"


def format_matrix(weights: NDArray[np.generic], *, precision: int = 6) -> str:
    """A kernel as aligned text, for ``convcli kernels NAME``.

    Parameters
    ----------
    weights : ndarray, shape (FH, FW), (FW,) or (FN, C/groups, FH, FW)
        A layer prints one ``[f, c]`` block per filter and channel.
    precision : int
        Significant digits (0.0625 stays 0.0625, 1/3 prints 0.333333).

    Returns
    -------
    str
        Rows on lines, each column aligned on its decimal point, no trailing newline.
    """
    arr = np.asarray(weights, dtype=np.float64)
    if arr.ndim == 4:
        blocks = [
            f"[{f}, {c}]\n" + format_matrix(arr[f, c], precision=precision)
            for f in range(arr.shape[0])
            for c in range(arr.shape[1])
        ]
        return "\n".join(blocks)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ShapeError(f"format_matrix needs a 2-D (FH, FW) or 4-D kernel, got shape {arr.shape}")
    cells = [[_format_number(float(v), precision).partition(".") for v in row] for row in arr]
    columns = list(zip(*cells))
    left = [max(len(c[0]) for c in col) for col in columns]
    right = [max(len(c[1] + c[2]) for c in col) for col in columns]
    lines = [
        "  ".join(c[0].rjust(lw) + (c[1] + c[2]).ljust(rw) for c, lw, rw in zip(row, left, right)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)
