"""ImageMagick's kernel language: the kernel as ImageMagick holds it, user arrays, rotations.

What ImageMagick 6 (``-morphology Convolve``, ``-define morphology:showKernel=1``) does with a
kernel string, read the same way:

* :class:`MagickKernel` - one kernel as ImageMagick holds it: values row by row (NaN marks
  a position that is not part of the neighbourhood), the origin ``(x, y)``, its type and
  angle.
* :func:`parse_array` - a user kernel ``"WxH[+X+Y][@><]: v,v,..."``: W columns, H rows, the
  origin X, Y (default ``((W-1)//2, (H-1)//2)``), ``nan`` or ``-`` for a hole; ``@`` expands
  a 3×3 kernel into its 45° rotations, ``>`` into its 90° rotations, ``<`` into the
  mirror-and-rotate set.
* :func:`rotate_kernel` - ImageMagick's rotation: 45° steps cycle the outer ring of a 3×3
  kernel, 90° steps rotate a square kernel clockwise (or transpose a 1-D one), 180° reverses
  it; the origin moves with the taps.  Gaussian-like and flat shapes ignore rotation.

A kernel's origin is the tap that lies over the output pixel: ``-morphology Convolve``
computes ``out(x, y) = sum_{u,v} K[v, u] * in(x - (u - X), y - (v - Y))`` (a true
convolution about the origin); a correlation puts the origin tap over the output pixel
without rotating the kernel.

Geometry strings (``WxH+X+Y``, flags) are :mod:`convcli.kernels.imagemagick_geometry`; the
named kernels (``Sobel:45``, ``DoG:0,1,2``...) :mod:`convcli.kernels.imagemagick_named`;
turning these kernels into convcli's :class:`~convcli.kernels.kernel.Kernel` is
:mod:`convcli.kernels.spec`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from ..errors import KernelSpecError, quote
from .imagemagick_geometry import MAGICK_EPSILON, parse_geometry
from .kernel import FloatArray

__all__ = [
    "MAX_ARRAY_SIDE", "ArrayHead", "MagickKernel", "count_values", "expand", "expand_mirror", "expand_rotations",
    "parse_array", "parse_array_head", "rotate_kernel", "same_kernel",
]

#: The largest side of a kernel written out ("WxH:"), a guard against ``100000x100000:``.
MAX_ARRAY_SIDE = 1001

# Kernel types whose rotation ImageMagick ignores (cylindrical, or flat shapes rotating to themselves).
_ROTATION_FREE = frozenset({
    "Gaussian", "DoG", "LoG", "Disk", "Peaks", "Laplacian", "Chebyshev", "Manhattan", "Euclidean",
    "Square", "Diamond", "Plus", "Cross",
})


# ---------------------------------------------------------------- the kernel


@dataclass(frozen=True, eq=False)
class MagickKernel:
    """One kernel as ImageMagick holds it.

    Parameters
    ----------
    values : ndarray, shape (H, W), float64
        Row by row; NaN where a position is not part of the neighbourhood (ImageMagick's
        ``nan`` or ``-``), which a convolution skips.  Stored read-only.
    x, y : int
        The origin: column x and row y of the tap over the output pixel.
    kind : str
        ImageMagick's kernel type ("User Defined", "Sobel", "Gaussian"...); it decides
        which rotations apply.
    angle : float
        The rotation applied so far, in degrees (what ``showKernel`` prints after ``@``).
    label : str
        A short name for messages and file names ("sobel", "inline").
    """

    values: FloatArray
    x: int
    y: int
    kind: str = "User Defined"
    angle: float = 0.0
    label: str = "inline"

    def __post_init__(self) -> None:
        values = np.array(self.values, dtype=np.float64)
        if values.ndim != 2:
            raise KernelSpecError(f"ImageMagick kernel '{self.label}' must be 2-D, got shape {values.shape}")
        if not (0 <= self.x < values.shape[1] and 0 <= self.y < values.shape[0]):
            raise KernelSpecError(
                f"ImageMagick kernel '{self.label}': origin +{self.x}+{self.y} lies outside its "
                f"{values.shape[1]}x{values.shape[0]} values"
            )
        values.setflags(write=False)
        object.__setattr__(self, "values", values)

    @property
    def width(self) -> int:
        """W, the number of columns."""
        return int(self.values.shape[1])

    @property
    def height(self) -> int:
        """H, the number of rows."""
        return int(self.values.shape[0])

    @property
    def geometry(self) -> str:
        """``WxH+X+Y``, as ``showKernel`` prints it."""
        return f"{self.width}x{self.height}+{self.x}+{self.y}"


def same_kernel(a: MagickKernel, b: MagickKernel) -> bool:
    """ImageMagick's ``SameKernelInfo``: same size, origin and values (NaN matches NaN, else within 1e-12)."""
    if a.values.shape != b.values.shape or (a.x, a.y) != (b.x, b.y):
        return False
    na, nb = np.isnan(a.values), np.isnan(b.values)
    if np.any(na != nb):
        return False
    return bool(np.all(np.abs(a.values[~na] - b.values[~na]) < MAGICK_EPSILON))


def _fmod(a: float, b: float) -> float:
    return math.fmod(a, b)


def _rotate_square_90(flat: list[float], n: int) -> None:
    """ImageMagick's in-place quarter turn of an n×n kernel (clockwise), four corners at a time."""
    i, xx = 0, n - 1
    while i <= xx:
        j, yy = 0, n - 1
        while j < yy:
            t = flat[i + j * n]
            flat[i + j * n] = flat[j + xx * n]
            flat[j + xx * n] = flat[xx + yy * n]
            flat[xx + yy * n] = flat[yy + i * n]
            flat[yy + i * n] = t
            j, yy = j + 1, yy - 1
        i, xx = i + 1, xx - 1


def rotate_kernel(kernel: MagickKernel, angle: float) -> MagickKernel:
    """The kernel rotated by ``angle`` degrees, as ImageMagick's ``RotateKernelInfo`` rotates it.

    Angles are taken modulo 360 and rounded to 45° steps: within 22.5° of 0 nothing
    changes; a 45° step cycles the outer ring of a 3×3 kernel one place clockwise; a 90°
    step rotates a square kernel clockwise (a 1-D kernel is transposed); 180° reverses the
    values.  The origin moves with its tap.  Kernels that rotate onto themselves
    (Gaussian, LoG, DoG, Laplacian, Disk, Square, Diamond, Plus, Cross) are returned as
    they are; Blur turns by 90° only.

    Raises
    ------
    KernelSpecError
        A 45° step of a kernel that is not 3×3, or a 90° step of one that is neither
        square nor 1-D (ImageMagick prints an error and leaves it unrotated).
    """
    angle = _fmod(angle, 360.0)
    if angle < 0:
        angle += 360.0
    if angle > 337.5 or angle <= 22.5 or kernel.kind in _ROTATION_FREE:
        return kernel
    if kernel.kind == "Blur":
        if 135.0 < angle <= 225.0:
            return kernel
        if 225.0 < angle <= 315.0:
            angle -= 180.0
    flat = [float(v) for v in kernel.values.ravel()]
    width, height, x, y, turned = kernel.width, kernel.height, kernel.x, kernel.y, kernel.angle
    if 22.5 < _fmod(angle, 90.0) <= 67.5:
        if (width, height) != (3, 3):
            raise KernelSpecError(
                f"ImageMagick kernel '{kernel.label}' ({width}x{height}) cannot turn by 45°: only 3×3 kernels do"
            )
        ring = [0, 1, 2, 5, 8, 7, 6, 3]  # the outer ring, clockwise; each value moves one place on
        moved = [flat[ring[(k - 1) % 8]] for k in range(8)]
        for index, value in zip(ring, moved):
            flat[index] = value
        if (x, y) != (1, 1):
            dx, dy = x - 1, y - 1
            if dx == dy:
                dx = 0
            elif dx == 0:
                dx = -dy
            elif dx == -dy:
                dy = 0
            elif dy == 0:
                dy = dx
            x, y = dx + 1, dy + 1
        angle = _fmod(angle + 315.0, 360.0)
        turned = _fmod(turned + 45.0, 360.0)
    if 45.0 < _fmod(angle, 180.0) <= 135.0:
        if width == 1 or height == 1:
            width, height, x, y = height, width, y, x  # a transpose: the values keep their order
            if width == 1:
                angle, turned = _fmod(angle + 270.0, 360.0), _fmod(turned + 90.0, 360.0)
            else:
                angle, turned = _fmod(angle + 90.0, 360.0), _fmod(turned + 270.0, 360.0)
        elif width == height:
            _rotate_square_90(flat, width)
            ox, oy = 2 * x - width + 1, 2 * y - height + 1
            x, y = (-oy + width - 1) // 2, (ox + height - 1) // 2
            angle, turned = _fmod(angle + 270.0, 360.0), _fmod(turned + 90.0, 360.0)
        else:
            raise KernelSpecError(
                f"ImageMagick kernel '{kernel.label}' ({width}x{height}) cannot turn by 90°: only square and "
                "1-D kernels do"
            )
    if 135.0 < angle <= 225.0:
        flat.reverse()
        x, y = width - x - 1, height - y - 1
        angle = _fmod(angle - 180.0, 360.0)
        turned = _fmod(turned + 180.0, 360.0)
    values = np.array(flat, dtype=np.float64).reshape(height, width)
    return replace(kernel, values=values, x=x, y=y, angle=turned)


def _member_label(base: str, first: MagickKernel, member: MagickKernel) -> str:
    turn = _fmod(member.angle - first.angle + 360.0, 360.0)
    return base if turn == 0 else f"{base}-r{turn:g}"


def expand_rotations(kernel: MagickKernel, angle: float) -> list[MagickKernel]:
    """ImageMagick's ``ExpandRotateKernelInfo``: the kernel and its rotations by ``angle`` until it repeats.

    ``@`` (45°) gives up to 8 kernels, ``>`` (90°) up to 4; a kernel that rotates onto
    itself gives 1.  Members after the first are labelled ``LABEL-rANGLE``.
    """
    kernels = [kernel]
    while len(kernels) < 8:
        turned = rotate_kernel(kernels[-1], angle)
        if same_kernel(kernel, turned):
            break
        kernels.append(turned)
    return [replace(k, label=_member_label(kernel.label, kernel, k)) for k in kernels]


def expand_mirror(kernel: MagickKernel) -> list[MagickKernel]:
    """ImageMagick's ``ExpandMirrorKernelInfo`` (``<``): the kernel, its 180° turn, then a 90° and a 180° turn more."""
    kernels = [kernel]
    for step in (180.0, 90.0, 180.0):
        kernels.append(rotate_kernel(kernels[-1], step))
    return [replace(k, label=_member_label(kernel.label, kernel, k)) for k in kernels]


def expand(kernel: MagickKernel, flags: Collection[str]) -> list[MagickKernel]:
    """The rotation list a kernel's flags ask for: ``@`` 45° steps, else ``>`` 90° steps, else ``<`` mirrors."""
    if "@" in flags:
        return expand_rotations(kernel, 45.0)
    if ">" in flags:
        return expand_rotations(kernel, 90.0)
    if "<" in flags:
        return expand_mirror(kernel)
    return [kernel]


# ---------------------------------------------------------------- user arrays


def _values(body: str, where: str) -> list[float]:
    """The numbers of an array body: separated by commas and/or spaces; ``nan`` and ``-`` are holes (NaN)."""
    tokens = [t for t in re.split(r"[\s,]+", body.strip()) if t]
    values = []
    for token in tokens:
        if token.lower() == "nan" or token == "-":
            values.append(math.nan)
            continue
        try:
            value = float(token)
        except ValueError:
            raise KernelSpecError(f"{where}: {quote(token)} is not a number (nan or - mark a hole)") from None
        if not math.isfinite(value):
            raise KernelSpecError(f"{where}: {quote(token)} is not a finite number")
        values.append(value)
    return values


@dataclass(frozen=True)
class ArrayHead:
    """The ``WxH+X+Y`` before an array's ``:``: size, origin and rotation flags."""

    width: int
    height: int
    x: int
    y: int
    flags: frozenset[str]


def parse_array_head(head: str, where: str) -> ArrayHead:
    """Read the geometry before an array's ``:`` as ImageMagick does.

    W alone means W×W; a missing or small H is W; the origin defaults to
    ``((W-1)//2, (H-1)//2)``.

    Raises
    ------
    KernelSpecError
        Not a geometry, a side over :data:`MAX_ARRAY_SIDE`, a negative origin, or one
        outside the kernel.
    """
    geometry = parse_geometry(head)
    if geometry is None or not ({"rho", "sigma"} & geometry.flags):
        raise KernelSpecError(f"{where}: {quote(head.strip())} is not a kernel size; expected WxH[+X+Y] before ':'")
    rho = geometry.rho if geometry.has("rho") else geometry.sigma
    rho = max(rho, 1.0)
    sigma = geometry.sigma if geometry.sigma >= 1.0 else rho
    if max(rho, sigma) > MAX_ARRAY_SIDE:  # before int(): a size of 5000 digits is inf here
        raise KernelSpecError(f"{where}: {quote(head.strip())} is too large (at most {MAX_ARRAY_SIDE} a side)")
    width, height = int(rho), int(sigma)
    if geometry.xi < 0 or geometry.psi < 0:
        raise KernelSpecError(f"{where}: the origin +X+Y must not be negative, got {quote(head.strip())}")
    x = int(geometry.xi) if geometry.has("xi") else (width - 1) // 2
    y = int(geometry.psi) if geometry.has("psi") else (height - 1) // 2
    if x >= width or y >= height:
        raise KernelSpecError(
            f"{where}: origin +{x}+{y} lies outside the {width}x{height} kernel (X < W and Y < H, counted from 0)"
        )
    return ArrayHead(width, height, x, y, geometry.flags & frozenset("@<>"))


def parse_array(text: str, *, rows: Optional[Sequence[str]] = None) -> list[MagickKernel]:
    """A user kernel ``"WxH[+X+Y][@><]: v,v,..."`` (ImageMagick's ``ParseKernelArray``), with its rotations.

    Parameters
    ----------
    text : str
        One kernel (no ``;``): the geometry, ``:``, then exactly W×H values row by row,
        separated by commas and/or spaces; ``nan`` or ``-`` marks a position outside the
        neighbourhood.
    rows : sequence of str, optional
        convcli's row form, which ImageMagick refuses: the values given as H rows of W
        (``"3x3: 1,2,1; 2,4,2; 1,2,1"``; ``text`` is then the geometry and the first row).

    Returns
    -------
    list of MagickKernel
        One kernel, or its rotations when the geometry has ``@``, ``>`` or ``<``.

    Raises
    ------
    KernelSpecError
        A bad geometry, too few or too many values, a value that is no number, no value
        that is not a hole.

    Examples
    --------
    >>> k = parse_array("3x2+0+1: 1,2,3, 4,nan,6")[0]
    >>> k.values.tolist(), (k.x, k.y)
    ([[1.0, 2.0, 3.0], [4.0, nan, 6.0]], (0, 1))
    """
    where = f"ImageMagick kernel {quote(text.strip() if rows is None else text.strip() + ';...')}"
    head, colon, body = text.partition(":")
    if not colon:
        raise KernelSpecError(f"{where}: expected 'WxH: values' (W columns, H rows, values row by row)")
    shape = parse_array_head(head, where)
    width, height = shape.width, shape.height
    if rows is not None:
        lines = [body, *rows]
        parsed = [_values(line, where) for line in lines]
        for i, row in enumerate(parsed, 1):
            if len(row) != width:
                count = f"{len(row)} value" if len(row) == 1 else f"{len(row)} values"
                raise KernelSpecError(f"{where}: row {i} has {count} but W={width}; 'WxH:' means W columns and H rows")
        if len(parsed) != height:
            raise KernelSpecError(f"{where}: {len(parsed)} rows but H={height}; 'WxH:' means W columns and H rows")
        values = [v for row in parsed for v in row]
    else:
        values = _values(body, where)
        if not values:
            raise KernelSpecError(f"{where}: no values after ':'; expected {width}×{height} = {width * height} numbers")
    if len(values) != width * height:
        raise KernelSpecError(
            f"{where}: needs {width}×{height} = {width * height} values (W={width} columns × H={height} rows, "
            f"row by row), got {len(values)}"
        )
    array = np.array(values, dtype=np.float64).reshape(height, width)
    if np.all(np.isnan(array)):
        raise KernelSpecError(f"{where}: every value is a hole (nan or -); a kernel needs at least one number")
    return expand(MagickKernel(array, shape.x, shape.y, "User Defined", 0.0, "inline"), shape.flags)


def count_values(body: str) -> int:
    """How many values an array body holds (for telling convcli's row form from a kernel list)."""
    return len([t for t in re.split(r"[\s,]+", body.strip()) if t])
