"""Built-in kernels (named constants behind one registry) and the kernel-spec parser.

A *kernel spec* is the text a user writes after ``--kernel``.  :func:`parse_kernel`
understands, in this order:

``-``
    A kernel file read from standard input (format sniffed from its first bytes).
``PATH.npy``, ``.npz``, ``.txt``, ``.csv``, ``.json``
    A kernel file (see :func:`load_kernel_bytes`); missing is an error.
``NAME[:ARG[:ARG]]``
    A built-in from :data:`BUILTINS`, e.g. ``sobel-x``, ``gaussian:2``, ``box:5``.
    Names are case-insensitive and ``_`` may stand for ``-``.
``WxH: v,v,...`` or ``N: v,v,...``
    ImageMagick's form: W columns, H rows, values row by row (``N`` means N×N).
An existing file
    Any other path that exists; its format is sniffed.
``1,2,1;2,4,2;1,2,1``
    An inline matrix: rows separated by ``;``, values by ``,`` or spaces.

Every kernel is applied as a cross-correlation (as PyTorch and the book's layer do):
``out[i, j] = sum_{u,v} K[u, v] * x[i + u - FH//2, j + v - FW//2]``.  So ``SOBEL_X``,
whose right column is positive, responds positively where the image gets brighter to
the right.  ``filter_bank(..., flip=True)`` turns that into a true convolution.

The fixed kernels are module-level read-only arrays (``SOBEL_X``, ``LAPLACIAN``...), as
in scikit-image's ``filters/edges.py``; parameterised ones are functions
(:func:`gaussian_kernel`, :func:`log_kernel`...).  All of them are reached through
one registry, :data:`BUILTINS`.
"""

from __future__ import annotations

import difflib
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from .errors import KernelSpecError, ParameterError, ShapeError

FloatArray = NDArray[np.float64]

__all__ = [
    "BUILTINS", "EMBOSS", "IDENTITY", "KERNEL_FILE_EXTENSIONS", "LAPLACIAN", "LAPLACIAN_8", "PREWITT_X",
    "PREWITT_Y", "SCHARR_X", "SCHARR_Y", "SHARPEN", "SOBEL_X", "SOBEL_Y", "ZERO_SUM_ATOL", "BuiltinKernel",
    "Kernel", "box_kernel", "filter_bank", "format_matrix", "gaussian_kernel", "identity_kernel",
    "kernel_sum_sign", "load_kernel_bytes", "log_kernel", "parse_kernel", "unsharp_kernel",
]

#: File extensions read as kernel files (compared case-insensitively).
KERNEL_FILE_EXTENSIONS: tuple[str, ...] = (".npy", ".npz", ".txt", ".csv", ".json")

#: Largest side of a built-in kernel (a guard against ``gaussian:1000``).
MAX_BUILTIN_SIZE = 1001

#: ``filter_bank(normalize=True)`` leaves a kernel alone when ``|sum| <= ZERO_SUM_ATOL``.
ZERO_SUM_ATOL = 1e-12

# kernel_sum_sign counts a sum as zero when |sum| <= _ZERO_SUM_RTOL * max(1, sum |w|).
_ZERO_SUM_RTOL = 1e-12


def _const(rows: Any) -> FloatArray:
    arr = np.array(rows, dtype=np.float64)
    arr.setflags(write=False)
    return arr


#: 1×1 identity, ``[[1]]``.
IDENTITY = _const([[1]])
#: Sobel x-derivative; positive where the image brightens to the right.
SOBEL_X = _const([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
#: Sobel y-derivative; positive where the image brightens downward.
SOBEL_Y = _const(SOBEL_X.T)
#: Scharr x-derivative (OpenCV's unnormalised taps); positive where brighter to the right.
SCHARR_X = _const([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])
#: Scharr y-derivative; positive where brighter downward.
SCHARR_Y = _const(SCHARR_X.T)
#: Prewitt x-derivative; positive where brighter to the right.
PREWITT_X = _const([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])
#: Prewitt y-derivative; positive where brighter downward.
PREWITT_Y = _const(PREWITT_X.T)
#: 4-neighbour Laplacian; negative on bright peaks, positive in dark pits.
LAPLACIAN = _const([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
#: 8-neighbour Laplacian; same sign convention as ``LAPLACIAN``.
LAPLACIAN_8 = _const([[1, 1, 1], [1, -8, 1], [1, 1, 1]])
#: Sharpen, ``identity - LAPLACIAN`` (3×3 identity); sums to 1.
SHARPEN = _const([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
#: Emboss; brighter where the image brightens toward the bottom-right; sums to 1.
EMBOSS = _const([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])


# ---------------------------------------------------------------- kernel values


def _is_zero_sum(total: Any, l1: Any) -> Any:
    """True where ``|total| <= 1e-12 * max(1, l1)`` (elementwise for arrays)."""
    return np.abs(total) <= _ZERO_SUM_RTOL * np.maximum(1.0, l1)


def _check_numeric(arr: np.ndarray, where: str, what: str = "values") -> None:
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise KernelSpecError(f"{where}: {what} must be real numbers, got dtype {arr.dtype}")


def _as_weights(data: Any, where: str) -> FloatArray:
    """Check kernel weights and return them as a read-only float64 copy.

    0-D becomes 1×1 and 1-D of length N becomes one row (1, N); 2-D and 4-D are
    kept; other ranks, empty kernels and nan/inf are refused.
    """
    arr = np.asarray(data)
    _check_numeric(arr, where)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim not in (2, 4):
        raise KernelSpecError(
            f"{where}: a {arr.ndim}-D array of shape {arr.shape} is not a kernel; expected 2-D (FH, FW), one kernel "
            "applied to every channel, or 4-D (FN, C/groups, FH, FW), a layer that mixes channels"
        )
    if arr.size == 0:
        raise KernelSpecError(f"{where}: the kernel is empty (shape {arr.shape})")
    out = np.array(arr, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise KernelSpecError(
            f"{where}: the kernel holds {int(bad.sum())} non-finite value(s) (nan or inf), the first at index {first}"
        )
    out.setflags(write=False)
    return out


def _as_bias(data: Any, weights: FloatArray, where: str) -> FloatArray:
    """Check a bias against its weights: shape (FN,), one number for a 2-D kernel."""
    arr = np.asarray(data)
    _check_numeric(arr, where, "bias values")
    filters = 1 if weights.ndim == 2 else weights.shape[0]
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.shape != (filters,):
        if weights.ndim == 2:
            raise KernelSpecError(
                f"{where}: a 2-D kernel is one filter, so its bias b must be one number, got shape {arr.shape}"
            )
        raise KernelSpecError(
            f"{where}: bias b must have shape ({filters},), one per filter of W {weights.shape}, got {arr.shape}"
        )
    out = np.array(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise KernelSpecError(f"{where}: bias b holds non-finite values (nan or inf)")
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Kernel:
    """One parsed kernel: weights, an optional bias, and a label for file names.

    Parameters
    ----------
    weights : ndarray, shape (FH, FW) or (FN, C/groups, FH, FW)
        A 2-D kernel (applied to every channel on its own) or a 4-D layer.  Stored
        as a read-only float64 copy; 0-D and 1-D input become (1, 1) and (1, N).
    bias : ndarray, shape (FN,), or None
        Only kernel files carry a bias; for a 2-D kernel FN is 1.
    label : str
        Short, file-name-safe name used in output suffixes ("sobel-x", "gaussian-2",
        "inline", a file's stem).

    Raises
    ------
    KernelSpecError
        For a 3-D (or other unsupported) shape, an empty kernel, nan/inf, or a bias
        that does not match the filters.

    Notes
    -----
    Equality is identity (``eq=False``): arrays have no single truth value.
    """

    weights: FloatArray
    bias: Optional[FloatArray] = None
    label: str = "kernel"

    def __post_init__(self) -> None:
        where = f"kernel '{self.label}'"
        weights = _as_weights(self.weights, where)
        object.__setattr__(self, "weights", weights)
        if self.bias is not None:
            object.__setattr__(self, "bias", _as_bias(self.bias, weights, where))

    @property
    def is_layer(self) -> bool:
        """True for a 4-D layer kernel (FN, C/groups, FH, FW)."""
        return self.weights.ndim == 4

    @property
    def filters(self) -> int:
        """Number of filters: 1 for a 2-D kernel, FN for a layer."""
        return 1 if self.weights.ndim == 2 else int(self.weights.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """Spatial size (FH, FW)."""
        return int(self.weights.shape[-2]), int(self.weights.shape[-1])


# ---------------------------------------------------------------- parameterised built-ins


def _check_sigma(sigma: float, name: str) -> float:
    if not (math.isfinite(sigma) and sigma > 0):
        raise KernelSpecError(f"{name}: SIGMA must be a positive number, got {sigma:g}")
    return float(sigma)


def _check_size(size: int, name: str, what: str = "SIZE", odd: bool = True) -> int:
    if size < 1 or (odd and size % 2 == 0):
        raise KernelSpecError(f"{name}: {what} must be a positive {'odd ' if odd else ''}integer, got {size}")
    if size > MAX_BUILTIN_SIZE:
        raise KernelSpecError(f"{name}: {what} {size} is too large (at most {MAX_BUILTIN_SIZE})")
    return size


def _sigma_size(sigma: float, size: Optional[int], name: str) -> int:
    """SIZE, or the default ``2*ceil(3*sigma) + 1`` when it is None."""
    sigma = _check_sigma(sigma, name)
    if size is None:
        default = 2 * math.ceil(3 * sigma) + 1
        if default > MAX_BUILTIN_SIZE:
            raise KernelSpecError(
                f"{name}: SIGMA={sigma:g} gives a {default}×{default} kernel, too large (at most {MAX_BUILTIN_SIZE})"
            )
        return default
    return _check_size(size, name)


def identity_kernel(size: int = 1) -> FloatArray:
    """Identity: 1 at the centre of a ``size``×``size`` kernel of zeros.

    Returns
    -------
    ndarray, shape (size, size)
    """
    size = _check_size(size, "identity")
    out = np.zeros((size, size))
    out[size // 2, size // 2] = 1.0
    return out


def box_kernel(n: int) -> FloatArray:
    """Mean filter: every tap ``1 / n**2``; sums to 1.

    Returns
    -------
    ndarray, shape (n, n)
    """
    n = _check_size(n, "box", "N", odd=False)
    return np.full((n, n), 1.0 / (n * n))


def gaussian_kernel(sigma: float, size: Optional[int] = None) -> FloatArray:
    """Gaussian blur ``exp(-(x**2 + y**2) / (2 sigma**2))``, normalised to sum 1.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels, > 0.
    size : int, optional
        Odd side length; default ``2 * ceil(3 * sigma) + 1``.

    Returns
    -------
    ndarray, shape (size, size)
        Symmetric under both flips and transposition.
    """
    size = _sigma_size(sigma, size, "gaussian")
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    g /= g.sum()
    out = np.outer(g, g)
    return out / out.sum()


def log_kernel(sigma: float, size: Optional[int] = None) -> FloatArray:
    """Laplacian of Gaussian, ``G * (x**2 + y**2 - 2 sigma**2) / sigma**4``, shifted to sum 0.

    ``G`` is the Gaussian normalised to sum 1 (MATLAB's ``fspecial('log')``); the
    centre is negative, as in :data:`LAPLACIAN`, so bright blobs give negative output.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels, > 0.
    size : int, optional
        Odd side length; default ``2 * ceil(3 * sigma) + 1``.

    Returns
    -------
    ndarray, shape (size, size)
        Sums to 0 (to rounding).
    """
    size = _sigma_size(sigma, size, "log")
    r = np.arange(size) - (size - 1) / 2
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    g = np.exp(-r2 / (2 * sigma**2))
    g /= g.sum()
    out = g * (r2 - 2 * sigma**2) / sigma**4
    return out - out.mean()


def unsharp_kernel(sigma: float = 1.0, amount: float = 1.0) -> FloatArray:
    """Unsharp mask: ``identity + amount * (identity - gaussian_kernel(sigma))``.

    Parameters
    ----------
    sigma : float
        The blur's standard deviation, > 0; the size is gaussian's default.
    amount : float
        Strength; 0 gives the identity.

    Returns
    -------
    ndarray, shape (2*ceil(3*sigma) + 1, same)
        Sums to 1.
    """
    if not math.isfinite(amount):
        raise KernelSpecError(f"unsharp: AMOUNT must be a finite number, got {amount:g}")
    blur = gaussian_kernel(sigma)
    delta = identity_kernel(blur.shape[0])
    return delta + amount * (delta - blur)


# ---------------------------------------------------------------- the registry


def _arg(args: Sequence[str], i: int) -> Optional[str]:
    """Argument i, or None when it is absent or empty (``unsharp::2``)."""
    return (args[i].strip() or None) if i < len(args) else None


def _float_arg(name: str, what: str, text: Optional[str], default: Optional[float] = None) -> float:
    if text is None:
        if default is None:
            raise KernelSpecError(f"{name}: {what} is missing")
        return default
    try:
        return float(text)
    except ValueError:
        raise KernelSpecError(f"{name}: {what} must be a number, got {text!r}") from None


def _int_arg(name: str, what: str, text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise KernelSpecError(f"{name}: {what} must be a whole number, got {text!r}") from None


def _make_identity(args: Sequence[str]) -> FloatArray:
    size = _int_arg("identity", "SIZE", _arg(args, 0))
    return identity_kernel(1 if size is None else size)


def _make_box(args: Sequence[str]) -> FloatArray:
    n = _int_arg("box", "N", _arg(args, 0))
    if n is None:
        raise KernelSpecError("box: N is missing (box:N)")
    return box_kernel(n)


def _make_gaussian(args: Sequence[str]) -> FloatArray:
    sigma = _float_arg("gaussian", "SIGMA", _arg(args, 0))
    return gaussian_kernel(sigma, _int_arg("gaussian", "SIZE", _arg(args, 1)))


def _make_log(args: Sequence[str]) -> FloatArray:
    sigma = _float_arg("log", "SIGMA", _arg(args, 0))
    return log_kernel(sigma, _int_arg("log", "SIZE", _arg(args, 1)))


def _make_unsharp(args: Sequence[str]) -> FloatArray:
    sigma = _float_arg("unsharp", "SIGMA", _arg(args, 0), 1.0)
    return unsharp_kernel(sigma, _float_arg("unsharp", "AMOUNT", _arg(args, 1), 1.0))


def _fixed(matrix: FloatArray) -> Callable[[Sequence[str]], FloatArray]:
    return lambda args: matrix


@dataclass(frozen=True)
class BuiltinKernel:
    """A named kernel of the registry.

    Parameters
    ----------
    name : str
        Lower-case name, e.g. "gaussian".
    usage : str
        Spec syntax, e.g. "gaussian:SIGMA[:SIZE]".
    summary : str
        One line: the matrix or formula and its sign convention.
    example : str
        A spec that parses, for showing the matrix (``convcli kernels EXAMPLE``).
    factory : callable
        ``factory(args) -> ndarray (FH, FW)``; arguments are already counted.
    min_args, max_args : int
        How many ``:``-separated arguments the name takes.
    """

    name: str
    usage: str
    summary: str
    example: str
    factory: Callable[[Sequence[str]], FloatArray] = field(repr=False, compare=False)
    min_args: int = 0
    max_args: int = 0

    def make(self, args: Sequence[str]) -> FloatArray:
        """Build the kernel from its ``:``-separated arguments.

        Parameters
        ----------
        args : sequence of str
            The text after the name, split at ``:``.

        Returns
        -------
        ndarray, shape (FH, FW), float64
            A fresh, writable array.

        Raises
        ------
        KernelSpecError
            Wrong number of arguments, a non-number, or a value out of range.
        """
        args = list(args)
        if not self.min_args <= len(args) <= self.max_args:
            given = ":".join([self.name, *args])
            if self.max_args == 0:
                expected = "no arguments"
            elif self.min_args == self.max_args:
                expected = f"{self.min_args} argument(s)"
            else:
                expected = f"{self.min_args} to {self.max_args} arguments"
            raise KernelSpecError(f"'{self.name}' takes {expected} ({self.usage}), got {len(args)} in '{given}'")
        return np.array(self.factory(args), dtype=np.float64)


def _builtins() -> dict[str, BuiltinKernel]:
    def derivative(name: str, matrix: FloatArray, axis: str) -> BuiltinKernel:
        toward = "to the right" if axis == "x" else "downward"
        rows = ",".join("[" + ",".join(f"{v:g}" for v in row) + "]" for row in matrix)
        return BuiltinKernel(
            name, name, f"{name.split('-')[0].title()} {axis}-derivative [{rows}]: positive where the image "
            f"gets brighter {toward}; sums to 0.", name, _fixed(matrix),
        )

    table = [
        BuiltinKernel(
            "identity", "identity[:SIZE]", "1 at the centre of a SIZE×SIZE kernel (default 1×1): output = input.",
            "identity:3", _make_identity, 0, 1,
        ),
        BuiltinKernel(
            "box", "box:N", "Mean of the N×N neighbourhood: every tap 1/N²; sums to 1.",
            "box:3", _make_box, 1, 1,
        ),
        BuiltinKernel(
            "gaussian", "gaussian:SIGMA[:SIZE]", "Gaussian blur exp(-(x²+y²)/(2·SIGMA²)), SIZE odd, default "
            "2·ceil(3·SIGMA)+1; sums to 1.", "gaussian:1", _make_gaussian, 1, 2,
        ),
        derivative("sobel-x", SOBEL_X, "x"),
        derivative("sobel-y", SOBEL_Y, "y"),
        derivative("scharr-x", SCHARR_X, "x"),
        derivative("scharr-y", SCHARR_Y, "y"),
        derivative("prewitt-x", PREWITT_X, "x"),
        derivative("prewitt-y", PREWITT_Y, "y"),
        BuiltinKernel(
            "laplacian", "laplacian", "4-neighbour Laplacian [[0,1,0],[1,-4,1],[0,1,0]]: negative on bright "
            "spots and ridges, positive in dark ones; sums to 0.", "laplacian", _fixed(LAPLACIAN),
        ),
        BuiltinKernel(
            "laplacian-8", "laplacian-8", "8-neighbour Laplacian [[1,1,1],[1,-8,1],[1,1,1]]: negative on bright "
            "spots, like laplacian; sums to 0.", "laplacian-8", _fixed(LAPLACIAN_8),
        ),
        BuiltinKernel(
            "log", "log:SIGMA[:SIZE]", "Laplacian of Gaussian: negative centre (bright blobs give negative "
            "output, like laplacian), SIZE odd, default 2·ceil(3·SIGMA)+1; shifted to sum 0.", "log:1",
            _make_log, 1, 2,
        ),
        BuiltinKernel(
            "sharpen", "sharpen", "Sharpen [[0,-1,0],[-1,5,-1],[0,-1,0]] = identity - laplacian; sums to 1.",
            "sharpen", _fixed(SHARPEN),
        ),
        BuiltinKernel(
            "emboss", "emboss", "Emboss [[-2,-1,0],[-1,1,1],[0,1,2]]: brighter where the image gets brighter "
            "toward the bottom-right; sums to 1.", "emboss", _fixed(EMBOSS),
        ),
        BuiltinKernel(
            "unsharp", "unsharp[:SIGMA[:AMOUNT]]", "Unsharp mask identity + AMOUNT·(identity - gaussian:SIGMA), "
            "defaults SIGMA=1, AMOUNT=1; sums to 1.", "unsharp", _make_unsharp, 0, 2,
        ),
    ]
    return {b.name: b for b in table}


#: The built-in kernels by name, in the order ``convcli kernels`` lists them.
BUILTINS: dict[str, BuiltinKernel] = _builtins()


# ---------------------------------------------------------------- text matrices

_VALUE_SEP = re.compile(r"\s*,\s*|\s+")
_IMAGEMAGICK = re.compile(r"^(\d+)(?:\s*[xX]\s*(\d+))?\s*([+-]\d+[+-]\d+)?\s*:(.*)$", re.S)


def _parse_values(text: str, where: str, row: str) -> list[float]:
    """Numbers of one row separated by commas and/or whitespace."""
    out = []
    for i, token in enumerate(_VALUE_SEP.split(text.strip()), 1):
        if token == "":
            raise KernelSpecError(f"{where}: empty value in {row} (value {i}); separate numbers by one ',' or spaces")
        try:
            out.append(float(token))
        except ValueError:
            raise KernelSpecError(f"{where}: {token!r} is not a number ({row}, value {i})") from None
    return out


def _count(n: int) -> str:
    return f"{n} value" if n == 1 else f"{n} values"


def _rows_to_array(rows: list[list[float]], row_names: list[str], where: str) -> np.ndarray:
    for values, name in zip(rows, row_names):
        if len(values) != len(rows[0]):
            raise KernelSpecError(
                f"{where}: {name} has {_count(len(values))} but {row_names[0]} has {len(rows[0])}; "
                "every row needs the same number"
            )
    return np.array(rows, dtype=np.float64)


def _parse_inline(spec: str) -> np.ndarray:
    """``"1,2,1;2,4,2;1,2,1"`` -> 3×3; ``"1 2 1"`` -> 1×3."""
    where = f"inline kernel '{spec}'"
    text = spec.strip().rstrip(";")
    parts = text.split(";")
    rows = [_parse_values(p, where, f"row {i}") for i, p in enumerate(parts, 1)]
    return _as_weights(_rows_to_array(rows, [f"row {i}" for i in range(1, len(rows) + 1)], where), where)


def _parse_imagemagick(spec: str, match: re.Match[str]) -> np.ndarray:
    """ImageMagick's ``"WxH: v,v,..."``: W columns, H rows, values row by row."""
    where = f"ImageMagick kernel '{spec}'"
    width = int(match.group(1))
    height = int(match.group(2)) if match.group(2) is not None else width
    if width < 1 or height < 1:
        raise KernelSpecError(f"{where}: W and H must be at least 1, got {width}x{height}")
    if match.group(3) is not None:
        raise KernelSpecError(
            f"{where}: origin offsets ({match.group(3)}) are not supported; convcli centres every kernel"
        )
    body = match.group(4).strip().rstrip(";")
    if not body:
        raise KernelSpecError(f"{where}: no values after ':'; expected {width}×{height} = {width * height} numbers")
    if ";" in body:  # rows written out: check them against W and H
        rows = [_parse_values(p, where, f"row {i}") for i, p in enumerate(body.split(";"), 1)]
        for i, row in enumerate(rows, 1):
            if len(row) != width:
                raise KernelSpecError(
                    f"{where}: row {i} has {_count(len(row))} but W={width}; 'WxH:' means W columns and H rows"
                )
        if len(rows) != height:
            raise KernelSpecError(f"{where}: {len(rows)} rows but H={height}; 'WxH:' means W columns and H rows")
        values = [v for row in rows for v in row]
    else:
        values = _parse_values(body, where, "the values")
    if len(values) != width * height:
        raise KernelSpecError(
            f"{where}: needs {width}×{height} = {width * height} values (W={width} columns × H={height} rows, "
            f"row by row), got {len(values)}"
        )
    return _as_weights(np.array(values, dtype=np.float64).reshape(height, width), where)


# ---------------------------------------------------------------- kernel files


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    if data.startswith(b"PK"):
        return "npz"
    if data.lstrip()[:1] in (b"[", b"{"):
        return "json"
    return "text"


def _load_npy(data: bytes, where: str) -> np.ndarray:
    if not data.startswith(b"\x93NUMPY"):
        raise KernelSpecError(f"{where} is not a .npy file (no NumPy header)")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise KernelSpecError(
                f"{where} holds Python objects (a pickled object array); convcli never unpickles "
                "(allow_pickle=False): save a numeric array"
            ) from None
        raise
    return np.asarray(arr)


def _load_npz(data: bytes, where: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    if not data.startswith(b"PK"):
        raise KernelSpecError(f"{where} is not a .npz file (not a zip archive)")
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        names = list(archive.files)
        extra = [n for n in names if n not in ("W", "b")]
        if "W" not in names or extra:
            has = ", ".join(names) or "nothing"
            raise KernelSpecError(
                f"{where} must hold an array named 'W' and optionally 'b' (np.savez(path, W=..., b=...)); it has {has}"
            )
        try:
            weights = archive["W"]
            bias = archive["b"] if "b" in names else None
        except ValueError as error:
            if "pickle" in str(error).lower():
                raise KernelSpecError(
                    f"{where} holds Python objects (a pickled object array); convcli never unpickles "
                    "(allow_pickle=False): save numeric arrays"
                ) from None
            raise
    return weights, bias


def _load_text(data: bytes, where: str) -> np.ndarray:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise KernelSpecError(f"{where} is not a text file (not UTF-8); expected rows of numbers") from None
    rows: list[list[float]] = []
    names: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            rows.append(_parse_values(line, where, f"line {lineno}"))
            names.append(f"line {lineno}")
    if not rows:
        raise KernelSpecError(f"{where}: the kernel is empty (no numbers, only blank lines or comments)")
    return _rows_to_array(rows, names, where)


def _json_shape(obj: Any, where: str, path: str) -> tuple[int, ...]:
    """Shape of a nested list of numbers; refuses ragged lists and non-numbers."""
    if isinstance(obj, list):
        shapes = [_json_shape(item, where, f"{path}[{i}]") for i, item in enumerate(obj)]
        for i, shape in enumerate(shapes):
            if shape != shapes[0]:
                raise KernelSpecError(
                    f"{where}: {path} is ragged: item [0] has shape {shapes[0]} but item [{i}] has {shape}"
                )
        return (len(obj), *(shapes[0] if shapes else ()))
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        raise KernelSpecError(f"{where}: {path} is {json.dumps(obj)[:40]}, expected a number or a list of numbers")
    return ()


def _load_json(data: bytes, where: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise KernelSpecError(f"{where} is not a text file (not UTF-8); expected JSON") from None
    except json.JSONDecodeError as error:
        raise KernelSpecError(
            f"{where} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    bias_obj: Any = None
    if isinstance(obj, dict):
        extra = [k for k in obj if k not in ("W", "b")]
        if "W" not in obj or extra:
            keys = ", ".join(repr(k) for k in obj) or "none"
            raise KernelSpecError(f"{where}: a JSON object needs key 'W' and optionally 'b'; its keys are {keys}")
        obj, bias_obj = obj["W"], obj.get("b")
    _json_shape(obj, where, "W")
    weights = np.array(obj, dtype=np.float64)
    bias = None
    if bias_obj is not None:
        _json_shape(bias_obj, where, "b")
        bias = np.array(bias_obj, dtype=np.float64)
    return weights, bias


def load_kernel_bytes(data: bytes, fmt: Optional[str] = None, *, label: str = "kernel",
                      where: Optional[str] = None) -> Kernel:
    """Read a kernel file's bytes.

    Parameters
    ----------
    data : bytes
        The file's contents.
    fmt : {"npy", "npz", "text", "json"}, optional
        The format; sniffed from the first bytes when None (NumPy magic, zip magic,
        ``[`` or ``{``, else text).
    label : str
        The kernel's label.
    where : str, optional
        How error messages name the source; default ``"kernel file '<label>'"``.

    Returns
    -------
    Kernel
        ``.npy``: the array.  ``.npz``: array ``W``, optional ``b``.  Text: rows of
        numbers separated by commas or spaces, ``#`` comments.  JSON: nested lists, or
        ``{"W": ..., "b": ...}``.  Weights of shape (FH, FW) or (FN, C/groups, FH,
        FW); 1-D is one row.  ``.npy`` and ``.npz`` are read with
        ``allow_pickle=False``, always.

    Raises
    ------
    KernelSpecError
        A corrupt or unreadable file, a pickled object array, a 3-D array, nan/inf,
        an empty kernel - one line, no traceback.
    """
    where = where or f"kernel file '{label}'"
    fmt = fmt or _sniff(data)
    bias: Optional[np.ndarray] = None
    try:
        if fmt == "npy":
            weights = _load_npy(data, where)
        elif fmt == "npz":
            weights, bias = _load_npz(data, where)
        elif fmt == "json":
            weights, bias = _load_json(data, where)
        else:
            weights = _load_text(data, where)
    except KernelSpecError:
        raise
    except Exception as error:  # whatever a corrupt file makes the library raise
        raise KernelSpecError(f"{where} cannot be read as {fmt}: {_one_line(error)}") from None
    checked = _as_weights(weights, where)
    return Kernel(checked, None if bias is None else _as_bias(bias, checked, where), _safe_label(label))


_FORMAT_BY_EXTENSION = {".npy": "npy", ".npz": "npz", ".txt": "text", ".csv": "text", ".json": "json"}


def _load_file(path: str) -> Kernel:
    where = f"kernel file '{path}'"
    if not os.path.exists(path):
        raise KernelSpecError(f"kernel file '{path}' not found")
    if os.path.isdir(path):
        raise KernelSpecError(f"kernel file '{path}' is a directory")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise KernelSpecError(f"kernel file '{path}' cannot be read: {error.strerror or error}") from None
    stem, ext = os.path.splitext(os.path.basename(path))
    return load_kernel_bytes(data, _FORMAT_BY_EXTENSION.get(ext.lower()), label=stem, where=where)


def _safe_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._") or "kernel"


# ---------------------------------------------------------------- parse_kernel


def _looks_inline(spec: str) -> bool:
    """True when some token of the spec is a number: parse it as a matrix."""
    for token in re.split(r"[,;\s]+", spec):
        try:
            float(token)
        except ValueError:
            continue
        return True
    return False


def parse_kernel(spec: str) -> Kernel:
    """Turn a kernel spec into a :class:`Kernel`.

    Parameters
    ----------
    spec : str
        ``-`` (a kernel file on stdin), a file ending in .npy/.npz/.txt/.csv/.json, a
        built-in ``NAME[:ARG...]`` (see :data:`BUILTINS`; case-insensitive), an
        ImageMagick ``"WxH: v,v,..."`` / ``"N: ..."`` (W columns, values row by row),
        another existing file (sniffed), or an inline matrix ``"1,2,1;2,4,2;1,2,1"``
        (rows by ``;``, values by ``,`` or spaces), tried in that order.

    Returns
    -------
    Kernel
        weights of shape (FH, FW), or (FN, C/groups, FH, FW) from a 4-D file; a bias
        only from files.  Labels: the built-in name with its arguments joined by
        ``-`` ("gaussian-2"), "inline", the file's stem, or "stdin".

    Raises
    ------
    KernelSpecError
        One line saying what is wrong and what was expected; an unknown name gets a
        did-you-mean.

    Examples
    --------
    >>> parse_kernel("3x2: 1,2,3,4,5,6").weights
    array([[1., 2., 3.],
           [4., 5., 6.]])
    """
    text = spec.strip()
    if not text:
        raise KernelSpecError(
            "empty kernel spec; expected a name (sobel-x, gaussian:2; see 'convcli kernels'), an inline matrix "
            "('1,2,1;2,4,2;1,2,1') or a file (.npy, .npz, .txt, .csv, .json)"
        )
    if text == "-":
        return load_kernel_bytes(sys.stdin.buffer.read(), label="stdin", where="kernel from standard input")
    if os.path.splitext(text)[1].lower() in KERNEL_FILE_EXTENSIONS:
        return _load_file(text)
    name, *args = text.split(":")
    name = name.strip().lower().replace("_", "-")
    if name in BUILTINS:
        weights = BUILTINS[name].make(args)
        return Kernel(weights, None, _safe_label("-".join([name, *(a.strip() for a in args)])))
    match = _IMAGEMAGICK.match(text)
    if match:
        return Kernel(_parse_imagemagick(text, match), None, "inline")
    if os.path.isfile(text):
        return _load_file(text)
    if re.fullmatch(r"\d+\s*[xX]\s*\d+", text):
        raise KernelSpecError(f"ImageMagick kernel '{text}' has no values; write '{text}: v,v,...' (row by row)")
    if _looks_inline(text):
        return Kernel(_parse_inline(text), None, "inline")
    if "/" in text or "\\" in text:
        raise KernelSpecError(f"kernel file '{text}' not found")
    close = difflib.get_close_matches(name, list(BUILTINS), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise KernelSpecError(f"unknown kernel '{name}'{hint} (convcli kernels lists them)")


# ---------------------------------------------------------------- filter banks


def _depthwise(kernels: list[Kernel], channels: int) -> tuple[FloatArray, Optional[FloatArray]]:
    """Stack M same-size 2-D kernels as (C*M, 1, FH, FW): filter c*M + m is kernel m."""
    first = kernels[0]
    for k in kernels[1:]:
        if k.size != first.size:
            raise KernelSpecError(
                f"2-D kernels in one bank must have the same size: '{first.label}' is {first.size[0]}×{first.size[1]} "
                f"but '{k.label}' is {k.size[0]}×{k.size[1]} (give them separately, or widen one, e.g. identity:3)"
            )
    stack = np.stack([k.weights for k in kernels])
    weights = np.tile(stack, (channels, 1, 1))[:, None]
    bias = None
    if any(k.bias is not None for k in kernels):
        per_kernel = [0.0 if k.bias is None else float(k.bias[0]) for k in kernels]
        bias = np.tile(np.array(per_kernel), channels)
    return weights, bias


def _layer(kernels: list[Kernel], channels: int, groups: Optional[int]) -> tuple[
    FloatArray, Optional[FloatArray], int
]:
    """Concatenate 4-D kernels along FN and check them against the input."""
    first = kernels[0]
    for k in kernels[1:]:
        if k.weights.shape[1:] != first.weights.shape[1:]:
            raise KernelSpecError(
                f"layer kernels '{first.label}' {first.weights.shape} and '{k.label}' {k.weights.shape} cannot be "
                f"stacked: they need the same (C/groups, FH, FW), got {first.weights.shape[1:]} and "
                f"{k.weights.shape[1:]}"
            )
    g = 1 if groups is None else groups
    if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
        raise ParameterError(f"groups must be a positive integer, got {groups!r}")
    weights = np.concatenate([k.weights for k in kernels])
    per_group = weights.shape[1]
    if per_group * g != channels:
        raise ShapeError(
            f"layer kernel '{first.label}' of shape {first.weights.shape} takes {per_group} channel(s) per group "
            f"× groups={g} = {per_group * g} input channels, but the input has {channels}"
        )
    if weights.shape[0] % g:
        raise ParameterError(f"groups={g} must divide the number of filters FN={weights.shape[0]}")
    bias = None
    if any(k.bias is not None for k in kernels):
        bias = np.concatenate([np.zeros(k.filters) if k.bias is None else k.bias for k in kernels])
    return weights, bias, int(g)


def filter_bank(kernels: Sequence[Kernel], channels: int, *, groups: Optional[int] = None,
                flip: bool = False, normalize: bool = False) -> tuple[FloatArray, Optional[FloatArray], int]:
    """Stack kernels into the weights of one :class:`~convcli.layer.Convolution`.

    Parameters
    ----------
    kernels : sequence of Kernel
        Either all 2-D or all 4-D.
    channels : int
        Input channels C.
    groups : int, optional
        For 4-D kernels, the layer's groups (default 1); for 2-D kernels only None
        or ``channels``.
    flip : bool
        Rotate every kernel 180° (both spatial axes): true convolution.
    normalize : bool
        Divide each 2-D kernel (each filter of a layer) by its sum; left alone when
        the sum is 0 (``|sum| <= ZERO_SUM_ATOL``, 1e-12).  A negative sum flips the
        signs.

    Returns
    -------
    W : ndarray, shape (FN, C // groups, FH, FW), float64
        M 2-D kernels give ``(C*M, 1, FH, FW)``, depthwise: output channel
        ``c*M + m`` is kernel m on channel c (PyTorch's grouped order); the 2-D
        kernels must all have the same size.  4-D kernels with equal
        ``(C/groups, FH, FW)`` are concatenated along FN.
    b : ndarray, shape (FN,), or None
        The file biases (zeros for kernels without one), None when no kernel has one.
        For 2-D kernels the bias of kernel m is repeated: ``b[c*M + m]``.
    groups : int
        ``channels`` for 2-D kernels, else the given groups.

    Raises
    ------
    KernelSpecError
        No kernels, 2-D and 4-D mixed, 2-D kernels of different sizes, 4-D
        kernels of different (C/groups, FH, FW).
    ShapeError
        ``channels`` not positive, or a layer's ``W.shape[1] * groups != channels``.
    ParameterError
        ``groups`` not a positive integer, not ``channels`` for 2-D kernels, or not
        dividing FN.
    """
    kernels = list(kernels)
    if not kernels:
        raise KernelSpecError("no kernel given; expected at least one")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ShapeError(f"channels must be a positive integer, got {channels!r}")
    layers = [k for k in kernels if k.is_layer]
    if layers and len(layers) != len(kernels):
        flat = next(k for k in kernels if not k.is_layer)
        raise KernelSpecError(
            f"cannot mix 2-D kernel '{flat.label}' ({flat.size[0]}×{flat.size[1]}) with layer kernel "
            f"'{layers[0].label}' {layers[0].weights.shape}: a 2-D kernel filters each channel on its own, "
            "a 4-D one mixes channels; use one kind"
        )
    if layers:
        weights, bias, groups = _layer(kernels, int(channels), groups)
    else:
        if groups is not None and groups != channels:
            raise ParameterError(
                f"groups={groups} does not fit 2-D kernels: they filter each of the {channels} channel(s) on its "
                f"own (groups = C = {channels}); leave groups unset or use a 4-D layer kernel"
            )
        weights, bias = _depthwise(kernels, int(channels))
        groups = int(channels)
    if flip:
        weights = weights[..., ::-1, ::-1]
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if normalize:
        sums = weights.sum(axis=(1, 2, 3))
        keep = np.abs(sums) > ZERO_SUM_ATOL
        weights[keep] /= sums[keep, None, None, None]
    return weights, bias, groups


def kernel_sum_sign(kernels: Sequence[Kernel], *, normalize: bool = False) -> int:
    """Sign shared by the sums of all filters, to choose a display mapping.

    Parameters
    ----------
    kernels : sequence of Kernel
        A layer kernel counts each of its filters (summed over C, FH, FW).
    normalize : bool
        Whether the bank will be normalised (non-zero sums then become 1).

    Returns
    -------
    int
        +1 when every sum is > 0 (smoothing-like: clip the output), -1 when every
        sum is < 0, 0 when any sum is zero (``|sum| <= 1e-12 * max(1, sum |w|)``,
        e.g. sobel, laplacian) or the signs are mixed (offset the output).
    """
    signs = set()
    for k in kernels:
        flat = k.weights.reshape(k.filters, -1)
        sums = flat.sum(axis=1)
        zero = _is_zero_sum(sums, np.abs(flat).sum(axis=1))
        if zero.any():
            return 0
        signs.update({1} if normalize else {int(s) for s in np.sign(sums)})
    return signs.pop() if len(signs) == 1 else 0


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
