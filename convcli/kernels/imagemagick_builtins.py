"""ImageMagick's kernel language: its built-in kernels, built as ImageMagick 6's ``AcquireKernelBuiltIn`` builds them.

Each builder takes the parsed arguments (a :class:`~convcli.kernels.imagemagick_geometry.Geometry`)
and a label, and returns a :class:`~convcli.kernels.imagemagick.MagickKernel` (FreiChen:10 a
list).  The sizes of Gaussian, LoG, DoG, Blur and Comet kernels without a radius are
ImageMagick Q16's (:func:`optimal_width_2d`, :func:`optimal_width_1d`: the widest whose edge
tap is at least 1/65535 of the sum); taps below 1e-12 become 0, as ImageMagick's
``CalcKernelMetaData`` makes them.  A radius whose side ``int(2·RADIUS+1)`` is even is
refused: ImageMagick leaves part of such a kernel unset.

Neighbours: the names, their arguments and the parser are :mod:`convcli.kernels.imagemagick_named`;
the kernel type and rotations :mod:`convcli.kernels.imagemagick`.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import KernelSpecError
from .imagemagick import MagickKernel, rotate_kernel
from .imagemagick_geometry import MAGICK_EPSILON, Geometry

__all__ = [
    "EDGE_KERNELS", "MAX_BINOMIAL_RADIUS", "MAX_NAMED_SIDE", "QUANTUM_SCALE", "array_of", "binomial", "blur", "comet",
    "frei_chen", "gaussians", "laplacian", "optimal_width_1d", "optimal_width_2d", "rectangle", "shape", "square",
    "unity",
]

#: ImageMagick Q16's ``QuantumScale``: the smallest tap a default-sized Gaussian keeps, relative to its sum.
QUANTUM_SCALE = 1.0 / 65535.0

_SQ2 = 1.41421356237309504880
_SQ2PI = 2.50662827463100024161235523934010416269302368164062
_2PI = 6.28318530717958623200
_PI = 3.14159265358979323846

#: Binomial radii above this overflow ImageMagick's 64-bit factorials (its taps would be garbage).
MAX_BINOMIAL_RADIUS = 8

#: Largest side of a named kernel, as for convcli's built-ins.
MAX_NAMED_SIDE = 1001


# ---------------------------------------------------------------- sizes and scaling, as ImageMagick computes them


def optimal_width_2d(radius: float, sigma: float) -> int:
    """ImageMagick's ``GetOptimalKernelWidth2D`` (Q16): the side of a Gaussian kernel with no radius given."""
    if radius > MAGICK_EPSILON:
        return int(2.0 * math.ceil(radius) + 1.0)
    gamma = abs(sigma)
    if gamma <= MAGICK_EPSILON:
        return 3
    alpha, beta = 1.0 / (2.0 * gamma * gamma), 1.0 / (_2PI * gamma * gamma)
    width = 5
    while width <= MAX_NAMED_SIDE + 2:
        j = (width - 1) // 2
        r = np.arange(-j, j + 1, dtype=np.float64)
        normalize = float(np.sum(np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) * alpha) * beta))
        value = math.exp(-(j * j) * alpha) * beta / normalize
        if value < QUANTUM_SCALE or value < MAGICK_EPSILON:
            break
        width += 2
    return width - 2


def optimal_width_1d(radius: float, sigma: float) -> int:
    """ImageMagick's ``GetOptimalKernelWidth1D`` (Q16): the width of a Blur or Comet kernel with no radius given."""
    if radius > MAGICK_EPSILON:
        return int(2.0 * math.ceil(radius) + 1.0)
    gamma = abs(sigma)
    if gamma <= MAGICK_EPSILON:
        return 3
    alpha, beta = 1.0 / (2.0 * gamma * gamma), 1.0 / (_SQ2PI * gamma)
    width = 5
    while width <= MAX_NAMED_SIDE + 2:
        j = (width - 1) // 2
        r = np.arange(-j, j + 1, dtype=np.float64)
        normalize = float(np.sum(np.exp(-(r**2) * alpha) * beta))
        value = math.exp(-(j * j) * alpha) * beta / normalize
        if value < QUANTUM_SCALE or value < MAGICK_EPSILON:
            break
        width += 2
    return width - 2


def _meta(values: np.ndarray) -> np.ndarray:
    """``CalcKernelMetaData``'s side effect: taps below 1e-12 in magnitude become 0."""
    out = np.array(values, dtype=np.float64)
    out[np.abs(out) < MAGICK_EPSILON] = 0.0
    return out


def _correlate_normalize(values: np.ndarray) -> np.ndarray:
    """``ScaleKernelInfo(1, '^')``: positive taps scaled to sum 1, negative ones to sum -1 (an empty side: 1)."""
    positive = float(values[values >= 0].sum())
    negative = float(values[values < 0].sum())
    pos = 1.0 / (positive if abs(positive) >= MAGICK_EPSILON else 1.0)
    neg = 1.0 / (-negative if abs(negative) >= MAGICK_EPSILON else 1.0)
    return np.where(values >= 0, values * pos, values * neg)


def _radius_side(radius: float, name: str) -> int:
    """``(size_t)(2 * radius + 1)``, the side ImageMagick gives a RADIUS; refused when even.

    ImageMagick fills only the odd centre of an even side and leaves the other taps unset
    (their values are whatever its memory held), so a radius such as 1.5 is refused.
    """
    width = int(2 * radius + 1)
    if width % 2 == 0:
        raise KernelSpecError(
            f"{name}: radius {radius:g} gives an even side {width}, whose taps ImageMagick leaves unset; "
            "use a whole radius"
        )
    return _side(width, name)


def _side(width: int, name: str) -> int:
    if width > MAX_NAMED_SIDE:
        raise KernelSpecError(f"{name}: a {width}×{width} kernel is too large (at most {MAX_NAMED_SIDE} a side)")
    return width


def array_of(text: str) -> np.ndarray:
    """A square kernel written as ImageMagick's source writes its constants: rows of numbers."""
    values = [float(v) for v in text.split()]
    n = math.isqrt(len(values))
    return np.array(values, dtype=np.float64).reshape(n, n)


def square(values: np.ndarray, kind: str, label: str, angle: float = 0.0) -> MagickKernel:
    """A centred kernel of ``kind``, rotated by ``angle``."""
    h, w = values.shape
    return rotate_kernel(MagickKernel(values, (w - 1) // 2, (h - 1) // 2, kind, 0.0, label), angle)


# ---------------------------------------------------------------- the kernels


def gaussians(kind: str, g: Geometry, label: str) -> MagickKernel:
    """Gaussian:{radius}x{sigma}, LoG:{radius}x{sigma}, DoG:{radius},{sigma1},{sigma2}."""
    sigma, sigma2 = abs(g.sigma), abs(g.xi)
    if g.rho >= 1.0:
        width = _radius_side(g.rho, kind)
    elif kind != "DoG" or sigma >= sigma2:
        width = optimal_width_2d(g.rho, sigma)
    else:
        width = optimal_width_2d(g.rho, sigma2)
    width = _side(width, kind)
    c = (width - 1) // 2
    r = np.arange(-c, c + 1, dtype=np.float64)
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    unity = np.zeros((width, width))
    unity[c, c] = 1.0
    if kind in ("Gaussian", "DoG"):
        if sigma > MAGICK_EPSILON:
            values = np.exp(-r2 * (1.0 / (2.0 * sigma * sigma))) * (1.0 / (_2PI * sigma * sigma))
        else:
            values = unity.copy()
        if kind == "DoG":
            if sigma2 > MAGICK_EPSILON:
                values = values - np.exp(-r2 * (1.0 / (2.0 * sigma2 * sigma2))) * (1.0 / (_2PI * sigma2 * sigma2))
            else:
                values = values - unity
    elif sigma > MAGICK_EPSILON:  # LoG, the Mexican hat
        big_r = r2 * (1.0 / (2.0 * sigma * sigma))
        values = (1 - big_r) * np.exp(-big_r) * (1.0 / (_PI * sigma * sigma * sigma * sigma))
    else:
        values = unity.copy()
    return MagickKernel(_correlate_normalize(_meta(values)), c, c, kind, 0.0, label)


def blur(g: Geometry, label: str) -> MagickKernel:
    """Blur:{radius}x{sigma}[+{angle}]: a 1-D Gaussian, sampled 3 times finer and binned (ImageMagick's KernelRank)."""
    sigma = abs(g.sigma)
    width = _radius_side(g.rho, "Blur") if g.rho >= 1.0 else _side(optimal_width_1d(g.rho, sigma), "Blur")
    values = np.zeros(width)
    x = (width - 1) // 2
    if sigma > MAGICK_EPSILON:
        v = (width * 3 - 1) // 2
        s = sigma * 3
        u = np.arange(-v, v + 1)
        taps = np.exp(-(u * u).astype(np.float64) * (1.0 / (2.0 * s * s))) * (1.0 / (_SQ2PI * s))
        np.add.at(values, (u + v) // 3, taps)
    else:
        values[x] = 1.0
    kernel = MagickKernel(_correlate_normalize(_meta(values))[None, :], x, 0, "Blur", 0.0, label)
    return rotate_kernel(kernel, g.xi)


def comet(g: Geometry, label: str) -> MagickKernel:
    """Comet:{width}x{sigma}[+{angle}]: half a 1-D Gaussian, its peak at the origin (the first tap)."""
    sigma = abs(g.sigma)
    width = _side((optimal_width_1d(g.rho, sigma) - 1) // 2 + 1 if g.rho < 1.0 else int(g.rho), "Comet")
    values = np.zeros(width)
    if sigma > MAGICK_EPSILON:
        s = sigma * 3
        u = np.arange(width * 3)
        np.add.at(values, u // 3, np.exp(-(u * u).astype(np.float64) * (1.0 / (2.0 * s * s))))
    else:
        values[0] = 1.0
    values = values * (1.0 / float(values.sum()))
    return rotate_kernel(MagickKernel(values[None, :], 0, 0, "Comet", 0.0, label), g.xi)


def binomial(g: Geometry, label: str) -> MagickKernel:
    """Binomial:{radius}: the outer product of two rows of Pascal's triangle (not normalised)."""
    radius = 1 if g.rho < 1.0 else int(g.rho)
    if radius > MAX_BINOMIAL_RADIUS:
        raise KernelSpecError(
            f"Binomial:{radius}: ImageMagick's factorials overflow above radius {MAX_BINOMIAL_RADIUS}; "
            f"use a radius of at most {MAX_BINOMIAL_RADIUS}"
        )
    n = 2 * radius
    row = np.array([math.comb(n, k) for k in range(n + 1)], dtype=np.float64)
    return MagickKernel(np.outer(row, row), radius, radius, "Binomial", 0.0, label)


_LAPLACIANS = {
    0: "-1 -1 -1  -1 8 -1  -1 -1 -1",
    1: "0 -1 0  -1 4 -1  0 -1 0",
    2: "-2 1 -2  1 4 1  -2 1 -2",
    3: "1 -2 1  -2 4 -2  1 -2 1",
    5: "-4 -1 0 -1 -4  -1 2 3 2 -1  0 3 4 3 0  -1 2 3 2 -1  -4 -1 0 -1 -4",
    7: "-10 -5 -2 -1 -2 -5 -10  -5 0 3 4 3 0 -5  -2 3 6 7 6 3 -2  -1 4 7 8 7 4 -1  -2 3 6 7 6 3 -2  "
       "-5 0 3 4 3 0 -5  -10 -5 -2 -1 -2 -5 -10",
    15: "0 0 -1 0 0  0 -1 -2 -1 0  -1 -2 16 -2 -1  0 -1 -2 -1 0  0 0 -1 0 0",
    19: "0 -1 -1 -2 -2 -2 -1 -1 0  -1 -2 -4 -5 -5 -5 -4 -2 -1  -1 -4 -5 -3 0 -3 -5 -4 -1  -2 -5 -3 12 24 12 -3 -5 -2  "
        "-2 -5 0 24 40 24 0 -5 -2  -2 -5 -3 12 24 12 -3 -5 -2  -1 -4 -5 -3 0 -3 -5 -4 -1  "
        "-1 -2 -4 -5 -5 -5 -4 -2 -1  0 -1 -1 -2 -2 -2 -1 -1 0",
}

#: The 3×3 edge kernels at angle 0, as ImageMagick defines them (they turn with ``:ANGLE``).
EDGE_KERNELS = {
    "Sobel": "1 0 -1  2 0 -2  1 0 -1",
    "Roberts": "0 0 0  1 -1 0  0 0 0",
    "Prewitt": "1 0 -1  1 0 -1  1 0 -1",
    "Compass": "1 1 -1  1 -2 -1  1 1 -1",
    "Kirsch": "5 -3 -3  5 0 -3  5 -3 -3",
}


def _frei_chen_one(kind: int) -> np.ndarray:
    """FreiChen type ``kind``'s 3×3 values (ImageMagick's table; unknown types are type 0)."""
    s, h = _SQ2, 1.0 / 2.0 * _SQ2  # ImageMagick scales by 1.0/2.0*MagickSQ2, that is sqrt(2)/2
    if kind in (1, 11):
        return np.array([[1, 0, -1], [s, 0, -s], [1, 0, -1]]) * h
    if kind == 2:
        return np.array([[1, s, 0], [s, 0, -s], [0, -s, -1]]) * h
    if kind == 12:
        return np.array([[1, s, 1], [0, 0, 0], [1, s, 1]]) * h
    if kind == 13:
        return np.array([[s, -1, 0], [-1, 0, 1], [0, 1, -s]]) * h
    if kind == 14:
        return np.array([[0, 1, -s], [-1, 0, 1], [s, -1, 0]]) * h
    if kind == 15:
        return array_of("0 -1 0  1 0 1  0 -1 0") * 0.5
    if kind == 16:
        return array_of("1 0 -1  0 0 0  -1 0 1") * 0.5
    if kind == 17:
        return array_of("1 -2 1  -2 4 -2  -1 -2 1") * (1.0 / 6.0)
    if kind == 18:
        return array_of("-2 1 -2  1 4 1  -2 1 -2") * (1.0 / 6.0)
    if kind == 19:
        return np.ones((3, 3)) * (1.0 / 3.0)
    return np.array([[1, 0, -1], [s, 0, -s], [1, 0, -1]])


def frei_chen(g: Geometry, label: str) -> list[MagickKernel]:
    """FreiChen:{type},{angle}: type 0 (default) an isotropic Sobel, 10 the nine weighted ones, |type| > 30 an angle."""
    kind = int(g.rho)
    types = list(range(11, 20)) if kind == 10 else [kind]
    labels = [f"freichen-{t}" for t in types] if kind == 10 else [label]
    kernels = [MagickKernel(_meta(_frei_chen_one(t)), 1, 1, "FreiChen", 0.0, name) for t, name in zip(types, labels)]
    if abs(g.sigma) >= MAGICK_EPSILON:
        angle = g.sigma
    elif g.rho > 30.0 or g.rho < -30.0:
        angle = g.rho
    else:
        angle = 0.0
    return [rotate_kernel(k, angle) for k in kernels]


def shape(kind: str, g: Geometry, label: str) -> MagickKernel:
    """The flat shapes: ``scale`` (sigma, default 1) inside, NaN (not in the neighbourhood) outside."""
    scale = g.sigma
    if kind == "Square":  # every tap is set, so an even side is fine
        width = 3 if g.rho < 1.0 else _side(int(2 * g.rho + 1), kind)
    elif kind == "Disk":
        width = 9 if g.rho < 0.4 else _radius_side(abs(g.rho), kind)
    elif kind in ("Octagon", "Plus", "Cross"):
        width = 5 if g.rho < 1.0 else _radius_side(g.rho, kind)
    else:  # Diamond
        width = 3 if g.rho < 1.0 else _radius_side(g.rho, kind)
    c = (width - 1) // 2
    r = np.arange(-c, width - c)
    v, u = np.meshgrid(r, r, indexing="ij")
    inside = {
        "Square": np.ones((width, width), dtype=bool),
        "Diamond": np.abs(u) + np.abs(v) <= c,
        "Octagon": np.abs(u) + np.abs(v) <= c + c // 2,
        "Disk": u * u + v * v <= (18 if g.rho < 0.4 else int(g.rho * g.rho)),
        "Plus": (u == 0) | (v == 0),
        "Cross": (u == v) | (u == -v),
    }[kind]
    return MagickKernel(np.where(inside, scale, np.nan), c, c, kind, 0.0, label)


def rectangle(g: Geometry, label: str) -> MagickKernel:
    """Rectangle:{W}x{H}[+X+Y]: ones, the origin at X, Y (default its centre)."""
    rho = g.rho if g.has("rho") else g.sigma
    rho = 3.0 if rho < 1.0 else rho
    sigma = g.sigma if g.sigma >= 1.0 else rho
    width, height = _side(int(rho), "Rectangle"), _side(int(sigma), "Rectangle")
    x = g.xi if g.has("xi") else float((int(rho) - 1) // 2)
    y = g.psi if g.has("psi") else float((int(sigma) - 1) // 2)
    if not (0 <= x < width and 0 <= y < height):
        raise KernelSpecError(f"Rectangle: origin +{x:g}+{y:g} lies outside the {width}x{height} rectangle")
    return MagickKernel(np.ones((height, width)), int(x), int(y), "Rectangle", 0.0, label)


def laplacian(g: Geometry, label: str) -> MagickKernel:
    return square(array_of(_LAPLACIANS.get(int(g.rho), _LAPLACIANS[0])), "Laplacian", label)


def unity(g: Geometry, label: str) -> MagickKernel:
    return MagickKernel(np.array([[g.rho if g.has("rho") else 1.0]]), 0, 0, "Unity", 0.0, label)
