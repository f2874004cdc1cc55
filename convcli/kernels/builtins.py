"""Built-in kernels: named constants behind one registry.

The fixed kernels are module-level read-only arrays (``SOBEL_X``, ``LAPLACIAN``...), as
in scikit-image's ``filters/edges.py``; parameterised ones are functions
(:func:`gaussian_kernel`, :func:`log_kernel`...).  All of them are reached through
one registry, :data:`BUILTINS`, by name: ``sobel-x``, ``gaussian:2``, ``box:5``.

Neighbours: the :class:`~convcli.kernels.kernel.Kernel` type and the zero-sum test are
:mod:`convcli.kernels.kernel`; :func:`convcli.kernels.spec.parse_kernel` reads such specs,
inline matrices and kernel files; :func:`convcli.kernels.bank.filter_bank` stacks kernels
into a layer's weights; ``convcli kernels`` (the listing and :func:`~convcli.commands.kernels.format_matrix`)
is :mod:`convcli.commands.kernels`.

Every kernel is applied as a cross-correlation (as PyTorch and the book's layer do); with
``pad="same"`` and stride 1, ``out[i, j] = sum_{u,v} K[u, v] * x[i + u - (FH-1)//2, j + v - (FW-1)//2]``
(an even kernel's extra row and column of padding go bottom and right).  So ``SOBEL_X``,
whose right column is positive, responds positively where the image gets brighter to
the right.  ``filter_bank(..., flip=True)`` turns that into a true convolution.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..errors import KernelSpecError, quote
from .kernel import FloatArray

__all__ = [
    "BUILTINS", "EMBOSS", "IDENTITY", "LAPLACIAN", "LAPLACIAN_8", "MAX_BUILTIN_SIZE", "PREWITT_X", "PREWITT_Y",
    "SCHARR_X", "SCHARR_Y", "SHARPEN", "SOBEL_X", "SOBEL_Y", "BuiltinKernel", "box_kernel", "gaussian_kernel",
    "identity_kernel", "log_kernel", "unsharp_kernel",
]

#: Largest side of a built-in kernel (a guard against ``gaussian:1000``).
MAX_BUILTIN_SIZE = 1001


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


# ---------------------------------------------------------------- parameterised built-ins


def _check_sigma(sigma: float, name: str, power: int = 2) -> float:
    """``sigma`` as a float, refused unless it is finite, > 0 and ``sigma**power`` is a normal float.

    The formulas divide by ``sigma**2`` (gaussian) or ``sigma**4`` (log): a power that
    underflows to 0 or overflows would give 0/0 or inf/inf instead of a kernel.
    """
    if not (math.isfinite(sigma) and sigma > 0):
        raise KernelSpecError(f"{name}: SIGMA must be a positive number, got {sigma:g}")
    sigma = float(sigma)
    try:
        scaled = sigma**power
    except OverflowError:
        scaled = math.inf
    if not sys.float_info.min <= scaled <= sys.float_info.max:
        way = "underflows to 0" if scaled < 1 else "overflows"
        low = sys.float_info.min ** (1 / power)
        high = sys.float_info.max ** (1 / power)
        raise KernelSpecError(
            f"{name}: SIGMA={sigma:g} is out of range: SIGMA^{power} {way} in floating point "
            f"(expected {low:.3g} <= SIGMA <= {high:.3g})"
        )
    return sigma


def _check_size(size: int, name: str, what: str = "SIZE", odd: bool = True) -> int:
    if size < 1 or (odd and size % 2 == 0):
        raise KernelSpecError(f"{name}: {what} must be a positive {'odd ' if odd else ''}integer, got {size}")
    if size > MAX_BUILTIN_SIZE:
        raise KernelSpecError(f"{name}: {what} {size} is too large (at most {MAX_BUILTIN_SIZE})")
    return size


def _sigma_size(sigma: float, size: Optional[int], name: str, power: int = 2) -> int:
    """SIZE, or the default ``2*ceil(3*sigma) + 1`` when it is None (checked before it is computed)."""
    sigma = _check_sigma(sigma, name, power)
    if size is None:
        largest = (MAX_BUILTIN_SIZE - 1) / 6  # 2*ceil(3*sigma) + 1 <= MAX_BUILTIN_SIZE
        if not 3 * sigma <= 3 * largest:  # also refuses an infinite 3*sigma before math.ceil sees it
            raise KernelSpecError(
                f"{name}: SIGMA={sigma:g} is too large: its default size 2·ceil(3·SIGMA)+1 exceeds "
                f"{MAX_BUILTIN_SIZE} (at most SIGMA={largest:g} without a SIZE)"
            )
        return 2 * math.ceil(3 * sigma) + 1
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
    with np.errstate(over="ignore", under="ignore"):  # a tiny sigma: far taps are exactly 0, the limit
        g = np.exp(-(r**2) / (2 * sigma**2))
    g /= g.sum()  # the centre tap is exp(0) = 1 (SIZE is odd), so the sum is >= 1
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
    size = _sigma_size(sigma, size, "log", power=4)
    r = np.arange(size) - (size - 1) / 2
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        g = np.exp(-r2 / (2 * sigma**2))
        g /= g.sum()
        out = g * (r2 - 2 * sigma**2) / sigma**4
    out[g == 0] = 0.0  # where the Gaussian underflowed the product is 0, not 0 * inf
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
    _sigma_size(sigma, None, "unsharp")  # its own name in the messages
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
        raise KernelSpecError(f"{name}: {what} must be a number, got {quote(text)}") from None


def _int_arg(name: str, what: str, text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    digits = text.strip().lstrip("+-")
    if len(digits) > 18 and digits.isdigit():  # int() refuses over 4300 digits; every size here is <= 1001
        raise KernelSpecError(f"{name}: {what} {quote(text, 12)} is too large (at most {MAX_BUILTIN_SIZE})")
    try:
        return int(text)
    except ValueError:
        raise KernelSpecError(f"{name}: {what} must be a whole number, got {quote(text)}") from None


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
            raise KernelSpecError(
                f"'{self.name}' takes {expected} ({self.usage}), got {len(args)} in {quote(given)}"
            )
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
