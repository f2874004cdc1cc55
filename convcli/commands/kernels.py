"""``convcli kernels``: the listings of the kernels convcli knows, and a spec's kernels printed as matrices.

:func:`kernel_listing` gives the rows of the listing of convcli's built-ins,
:func:`imagemagick_listing` those of the ImageMagick kernel names convcli reads;
:func:`describe_kernels` parses a spec and gives each kernel's heading and matrix, as
:func:`format_matrix` writes it (an ImageMagick kernel's holes as ``-``).

Neighbours: the built-ins and their registry are :mod:`convcli.kernels.builtins`, the
ImageMagick names :mod:`convcli.kernels.imagemagick_named`; the spec parser
:mod:`convcli.kernels.spec`; the tables are printed by :mod:`convcli.cli.kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import ShapeError
from .common import format_shape

if TYPE_CHECKING:
    from ..visual.kernel_picture import KernelCells

__all__ = [
    "IMAGEMAGICK_TITLE", "LISTING_TITLE", "describe_kernel", "describe_kernels", "format_matrix",
    "imagemagick_listing", "kernel_listing", "kernel_cells", "write_kernel_png",
]

#: The title of the listing.
LISTING_TITLE = "Built-in kernels (apply as cross-correlation; --flip for true convolution)"

#: The title of the listing of ImageMagick's names.
IMAGEMAGICK_TITLE = (
    "ImageMagick kernels, read as ImageMagick 6 reads them (names case-insensitive; :@ 45° rotations, :> 90°; "
    "--flip gives -morphology Convolve)"
)


def kernel_listing() -> list[tuple[str, str]]:
    """(usage, summary) of every built-in, in registry order: ``("gaussian:SIGMA[:SIZE]", "Gaussian blur ...")``."""
    from ..kernels.builtins import BUILTINS

    return [(builtin.usage, builtin.summary) for builtin in BUILTINS.values()]


def imagemagick_listing() -> list[tuple[str, str]]:
    """(usage, summary) of every ImageMagick kernel name convcli reads: ``("Sobel[:ANGLE]", "[[1,0,-1],...")``."""
    from ..kernels.imagemagick_named import MAGICK_KERNELS

    return [(entry.usage, entry.summary) for entry in MAGICK_KERNELS.values()]


def describe_kernels(spec: str) -> list[tuple[str, str]]:
    """The heading and the matrix of each kernel ``spec`` gives (a list or rotation set gives several).

    Returns
    -------
    list of (heading, matrix)
        heading: ``"LABEL: FH×FW, sum S"`` for a 2-D kernel (ImageMagick's: ``, origin +X+Y``
        added), ``"LABEL: layer FN×C×FH×FW (FN, C/groups, FH, FW)"`` for a layer.  matrix:
        :func:`format_matrix` of the weights (a layer: one ``[f, c]`` block per filter and
        channel; a hole ``-``).
    """
    from ..kernels.spec import parse_kernels  # only here: it brings the file readers (Pillow)

    described = []
    for kernel in parse_kernels(spec).kernels:
        weights = kernel.weights
        if weights.ndim == 2:
            heading = f"{kernel.label}: {format_shape(weights.shape)}, sum {weights.sum():.6g}"
            if kernel.origin is not None:
                heading += f", origin +{kernel.origin[1]}+{kernel.origin[0]}"
        else:
            heading = f"{kernel.label}: layer {format_shape(weights.shape)} (FN, C/groups, FH, FW)"
        described.append((heading, format_matrix(weights, holes=None if kernel.taps is None else ~kernel.taps)))
    return described


def describe_kernel(spec: str) -> tuple[str, str]:
    """The heading and the matrix of the first kernel ``spec`` gives (:func:`describe_kernels`)."""
    return describe_kernels(spec)[0]


def _format_number(value: float, precision: int) -> str:
    return "0" if value == 0 else f"{value:.{precision}g}"


def format_matrix(weights: NDArray[np.generic], *, precision: int = 6,
                  holes: Optional[NDArray[np.bool_]] = None) -> str:
    """A kernel as aligned text, for ``convcli kernels NAME``.

    Parameters
    ----------
    weights : ndarray, shape (FH, FW), (FW,) or (FN, C/groups, FH, FW)
        A layer prints one ``[f, c]`` block per filter and channel.
    precision : int
        Significant digits (0.0625 stays 0.0625, 1/3 prints 0.333333).
    holes : ndarray of bool, shape (FH, FW), optional
        Positions printed as ``-`` (not part of the kernel, ImageMagick's ``nan``).

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
    hole = np.zeros(arr.shape, dtype=bool) if holes is None else np.asarray(holes, dtype=bool).reshape(arr.shape)
    cells = [
        [("-", "", "") if h else _format_number(float(v), precision).partition(".") for v, h in zip(row, hrow)]
        for row, hrow in zip(arr, hole)
    ]
    columns = list(zip(*cells))
    left = [max(len(c[0]) for c in col) for col in columns]
    right = [max(len(c[1] + c[2]) for c in col) for col in columns]
    lines = [
        "  ".join(c[0].rjust(lw) + (c[1] + c[2]).ljust(rw) for c, lw, rw in zip(row, left, right)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)


def kernel_cells(spec: str) -> list[KernelCells]:
    """What ``kernels SPEC --png`` draws: each 2-D kernel of ``spec``, a layer's every [f, c] slice."""
    from ..kernels.spec import parse_kernels
    from ..visual.kernel_picture import KernelCells

    cells = []
    for kernel in parse_kernels(spec).kernels:
        weights = np.asarray(kernel.weights, dtype=np.float64)
        if weights.ndim == 2:
            holes = None if kernel.taps is None else ~np.asarray(kernel.taps, dtype=bool)
            size = "x".join(str(n) for n in weights.shape)  # the picture's font has no "×"
            cells.append(KernelCells(weights, f"{kernel.label}: {size}", holes))
        else:
            cells.extend(KernelCells(weights[f, c], f"{kernel.label} [{f}, {c}]")
                         for f in range(weights.shape[0]) for c in range(weights.shape[1]))
    return cells


def write_kernel_png(spec: str, path: str, protect: Sequence[str] = ()) -> tuple[int, int]:
    """Draw ``spec``'s kernels (:func:`convcli.visual.kernel_picture.kernel_picture`) into the PNG ``path``.

    Written all or nothing through :class:`~convcli.io.outputs.OutputSet`, never over a file in
    ``protect`` (the kernel file).

    Returns
    -------
    (width, height)
        Of the picture, in pixels.

    Raises
    ------
    OutputFileError
        A name that is not ``.png`` (or ``-``), or a target that cannot be written.
    KernelSpecError, InputFileError
        As the spec parser.
    """
    from ..errors import OutputFileError, quote
    from ..io.formats import format_for_path
    from ..io.images import encode_pixels
    from ..io.outputs import OutputSet
    from ..visual.kernel_picture import kernel_picture

    if path != "-" and format_for_path(path) != "png":
        raise OutputFileError(f"--png {quote(path)}: a kernel picture is a PNG; name it .png, or '-'")
    with OutputSet(protect) as files:
        files.reserve([path])
        picture = kernel_picture(kernel_cells(spec))
        files.write(path, encode_pixels(picture, "png", level=9))
    return picture.shape[1], picture.shape[0]
