"""ImageMagick's kernel language: the names (``Sobel:45``, ``DoG:0,1,2``, ``Kirsch:@``...) and their parser.

:func:`parse_named` reads ``NAME[:ARGS]`` as ImageMagick 6's ``ParseKernelName`` does: the
arguments are a geometry (:func:`~convcli.kernels.imagemagick_geometry.parse_geometry`:
numbers separated by ``x`` or ``,``, offsets ``+X+Y``, flags), the kernel is built as
``AcquireKernelBuiltIn`` builds it (:mod:`convcli.kernels.imagemagick_builtins`), then ``@``,
``>`` or ``<`` expand it into its rotations.  Names are case-insensitive;
:data:`MAGICK_KERNELS` lists them with their arguments.  Morphology-only kernels (Ring,
Peaks, the hit-and-miss and distance kernels) are refused: they are not convolution kernels.

Neighbours: user arrays and rotations are :mod:`convcli.kernels.imagemagick`; choosing between
a convcli built-in and an ImageMagick name, and kernel lists (``;``), is :mod:`convcli.kernels.spec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable, Optional, Union

from ..errors import KernelSpecError, quote
from .imagemagick import MagickKernel, expand
from .imagemagick_builtins import (
    EDGE_KERNELS,
    MAX_BINOMIAL_RADIUS,
    array_of,
    binomial,
    blur,
    comet,
    frei_chen,
    gaussians,
    laplacian,
    rectangle,
    shape,
    square,
    unity,
)
from .imagemagick_geometry import Geometry, parse_geometry

__all__ = ["MAGICK_KERNELS", "MORPHOLOGY_ONLY", "MagickName", "parse_named", "split_name"]

# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class MagickName:
    """One ImageMagick kernel name: its spelling, arguments and what it gives."""

    name: str
    usage: str
    summary: str
    build: Callable[[Geometry, str], Union[MagickKernel, list[MagickKernel]]]


def _table() -> dict[str, MagickName]:
    def edge(name: str) -> MagickName:
        matrix = array_of(EDGE_KERNELS[name])
        rows = ",".join("[" + ",".join(f"{v:g}" for v in row) + "]" for row in matrix)
        return MagickName(
            name, f"{name}[:ANGLE]", f"{rows} at angle 0, turned by ANGLE (45° steps); zero-sum.",
            lambda g, label: square(matrix.copy(), name, label, g.rho),
        )

    rows = [
        MagickName("Unity", "Unity[:SCALE]", "1×1 kernel holding SCALE (default 1).", unity),
        MagickName(
            "Gaussian", "Gaussian:RADIUSxSIGMA", "2-D Gaussian, sums to 1; RADIUS 0: ImageMagick's size for SIGMA.",
            lambda g, label: gaussians("Gaussian", g, label),
        ),
        MagickName(
            "LoG", "LoG:RADIUSxSIGMA", "Laplacian of Gaussian (bright centre), positive and negative taps "
            "each scaled to sum ±1.", lambda g, label: gaussians("LoG", g, label),
        ),
        MagickName(
            "DoG", "DoG:RADIUS,SIGMA1,SIGMA2", "Gaussian(SIGMA1) - Gaussian(SIGMA2), positive and negative taps "
            "each scaled to sum ±1.", lambda g, label: gaussians("DoG", g, label),
        ),
        MagickName("Blur", "Blur:RADIUSxSIGMA[+ANGLE]", "1-D Gaussian row (ANGLE 90: a column), sums to 1.", blur),
        MagickName(
            "Comet", "Comet:WIDTHxSIGMA[+ANGLE]", "Half a 1-D Gaussian, origin at its peak, sums to 1.", comet,
        ),
        MagickName(
            "Binomial", "Binomial[:RADIUS]", "Pascal's-triangle kernel (2·RADIUS+1)², unnormalised; "
            f"RADIUS <= {MAX_BINOMIAL_RADIUS}.", binomial,
        ),
        MagickName(
            "Laplacian", "Laplacian:TYPE", "Discrete Laplacians, centre positive: 0 (3×3, 8-neighbour), 1 "
            "(4-neighbour), 2, 3, 5 (5×5), 7 (7×7), 15 (5×5 LoG), 19 (9×9 LoG).", laplacian,
        ),
        edge("Sobel"), edge("Roberts"), edge("Prewitt"), edge("Compass"), edge("Kirsch"),
        MagickName(
            "FreiChen", "FreiChen[:TYPE[,ANGLE]]", "Frei-Chen: 0 isotropic Sobel (√2 for 2), 1/11-19 the "
            "weighted basis, 10 all nine; a TYPE over 30 is an angle.", frei_chen,
        ),
    ]
    def flat(kind: str) -> MagickName:
        return MagickName(
            kind, f"{kind}[:RADIUS[,SCALE]]", f"Flat {kind.lower()} of SCALE (default 1), holes (NaN) outside.",
            lambda g, label: shape(kind, g, label),
        )

    rows.extend(flat(kind) for kind in ("Diamond", "Square", "Octagon", "Disk", "Plus", "Cross"))
    rows.append(MagickName("Rectangle", "Rectangle:WxH[+X+Y]", "Flat W×H rectangle of ones.", rectangle))
    return {row.name.lower(): row for row in rows}


#: ImageMagick's convolution kernels by lower-case name.
MAGICK_KERNELS: dict[str, MagickName] = _table()

#: ImageMagick's other kernels: morphology, not convolution; convcli refuses them by name.
MORPHOLOGY_ONLY = frozenset({
    "ring", "peaks", "edges", "corners", "diagonals", "lineends", "linejunctions", "ridges", "convexhull",
    "thinse", "skeleton", "chebyshev", "manhattan", "octagonal", "euclidean",
})

_NAME = re.compile(r"\s*([A-Za-z]+)(?=$|[\s,:@<>])")


def split_name(text: str) -> Optional[tuple[str, str]]:
    """``("Sobel", "45")`` for ``"Sobel:45"``: the leading name and its arguments, or None when no name leads.

    After the name ImageMagick skips spaces, commas and colons.  convcli also takes a
    rotation flag right after the name (``Kirsch@``, which ImageMagick refuses).
    """
    match = _NAME.match(text)
    if match is None:
        return None
    rest = text[match.end():]
    return match.group(1), rest.lstrip(" \t\n,:")


def parse_named(text: str) -> list[MagickKernel]:
    """An ImageMagick named kernel ``NAME[:ARGS]`` (one, without ``;``), with the rotations its flags ask for.

    Parameters
    ----------
    text : str
        E.g. ``"Sobel:45"``, ``"Kirsch:@"``, ``"DoG:0,1,2"``, ``"Gaussian:0x2"``, ``"Laplacian:1"``.

    Returns
    -------
    list of MagickKernel
        Labelled ``name[-args]`` in lower case (``sobel-45``), rotations ``-rANGLE``.

    Raises
    ------
    KernelSpecError
        Not an ImageMagick convolution kernel name, arguments that are not a geometry, a
        size out of range.

    Examples
    --------
    >>> [k.values.tolist() for k in parse_named("Roberts:>")][:2]
    [[[0.0, 0.0, 0.0], [1.0, -1.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 0.0]]]
    """
    split = split_name(text)
    if split is None or split[0].lower() not in MAGICK_KERNELS:
        name = split[0] if split else text.strip()
        if name.lower() in MORPHOLOGY_ONLY:
            raise KernelSpecError(f"ImageMagick kernel {quote(name)} is a morphology kernel, not one for convolution")
        raise KernelSpecError(f"{quote(name)} is not an ImageMagick kernel name")
    name, args = split
    entry = MAGICK_KERNELS[name.lower()]
    if ":" in args or ";" in args:
        raise KernelSpecError(
            f"ImageMagick kernel {quote(text.strip())}: separate its arguments with ',' or 'x' ({entry.usage})"
        )
    geometry = parse_geometry(args)
    if geometry is None:
        raise KernelSpecError(
            f"ImageMagick kernel {quote(text.strip())}: {quote(args)} is not a geometry ({entry.usage})"
        )
    if entry.name in ("Diamond", "Square", "Octagon", "Disk", "Plus", "Cross") and not geometry.has("sigma"):
        geometry = replace(geometry, sigma=1.0)
    plain = re.sub(r"[@<>!%^\s]", "", args)
    label = entry.name.lower() + (f"-{plain}" if plain else "")
    label = re.sub(r"[^A-Za-z0-9._+-]+", "_", label).strip("._") or entry.name.lower()
    built = entry.build(geometry, label)
    kernels = built if isinstance(built, list) else [built]
    if len(kernels) == 1:
        kernels = expand(kernels[0], geometry.flags & frozenset("@<>"))
    return kernels
