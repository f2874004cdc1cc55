"""ImageMagick's geometry strings, as its ``ParseGeometry`` reads them for kernels and ``convolve:scale``.

A geometry is up to four numbers, ``rho x sigma +xi +psi`` (also ``rho,sigma,xi,psi``), and
meta characters anywhere (``% ! < > ^ @``).  For a user kernel it is ``WxH+X+Y`` (size and
origin) with ``@ > <`` asking for rotations; for a named kernel its arguments
(``Gaussian:0x2``: radius 0, sigma 2); for ``convolve:scale`` ``FACTOR[!^][,BLEND][%]``.

Neighbours: the kernels that use it are :mod:`convcli.kernels.imagemagick` (arrays),
:mod:`convcli.kernels.imagemagick_named` (named kernels) and :mod:`convcli.kernels.scale`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["MAGICK_EPSILON", "Geometry", "parse_geometry"]

#: ImageMagick 6's ``MagickEpsilon``: sums and values below it count as zero.
MAGICK_EPSILON = 1e-12

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class Geometry:
    """ImageMagick's parsed geometry: four numbers and the flags that were present.

    Attributes
    ----------
    rho, sigma, xi, psi : float
        Width, height, x and y offsets (0 when absent); for named kernels the first,
        second, third and fourth argument.
    flags : frozenset of str
        ``"rho"``, ``"sigma"``, ``"xi"``, ``"psi"`` for the numbers given, ``"x"`` when
        an ``x`` separated them, and the meta characters ``% ! < > ^ @`` present anywhere.
    """

    rho: float = 0.0
    sigma: float = 0.0
    xi: float = 0.0
    psi: float = 0.0
    flags: frozenset[str] = field(default_factory=frozenset)

    def has(self, flag: str) -> bool:
        """Whether ``flag`` (a value's name or a meta character) was given."""
        return flag in self.flags


def _strtod(text: str, at: int) -> tuple[float, int]:
    """C's ``strtod`` on decimal numbers: the value at ``text[at:]`` and where it ends (``at`` when none)."""
    match = _NUMBER.match(text, at)
    if match is None:
        return 0.0, at
    return float(match.group()), match.end()


def _signed_value(text: str, at: int) -> tuple[Optional[float], int, bool]:
    """An offset: a leading ``,`` or ``/`` skipped, any run of signs (each ``-`` flips), a number; and its sign."""
    if text[at:at + 1] in (",", "/"):
        at += 1
    negative = False
    while text[at:at + 1] in ("+", "-"):
        negative ^= text[at] == "-"
        at += 1
    value, end = _strtod(text, at)
    if end == at:
        return None, end, negative
    return (-value if negative else value), end, negative


def parse_geometry(text: str) -> Optional[Geometry]:
    """ImageMagick's ``ParseGeometry`` for kernel and ``convolve:scale`` arguments.

    Parameters
    ----------
    text : str
        E.g. ``"3x3+1+1"``, ``"0x2"``, ``"0,1,2"``, ``"45"``, ``"50%!"``, ``"@"``.
        Whitespace is ignored; values are separated by ``x``, ``,`` or ``/`` and offsets
        are signed (``+X+Y``, ``-X``, repeated signs multiply).

    Returns
    -------
    Geometry or None
        None when the text holds a character geometry does not allow (ImageMagick's
        ``NoValue``).  ``:`` is refused too: ImageMagick reads it as a sampling ratio.

    Examples
    --------
    >>> g = parse_geometry("3x2+0+1")
    >>> (g.rho, g.sigma, g.xi, g.psi), sorted(g.flags)
    ((3.0, 2.0, 0.0, 1.0), ['psi', 'rho', 'sigma', 'x', 'xi'])
    >>> sorted(parse_geometry("50%!").flags), parse_geometry("50%!").sigma
    (['!', '%', 'rho'], 50.0)
    """
    flags: set[str] = set()
    kept = []
    for ch in text:
        if ch.isspace() or ch in "()":
            continue
        if ch in "%!<>^@":
            flags.add(ch)
        elif ch in "xX×":
            flags.add("x")
            kept.append("x")
        elif ch in "+-,/.0123456789eE":
            kept.append(ch)
        else:
            return None
    s = "".join(kept)
    values = {"rho": 0.0, "sigma": 0.0, "xi": 0.0, "psi": 0.0}
    at = 0
    _, end = _strtod(s, 0)
    if s[end:end + 1] in ("x", ",", "/", ""):
        value, at = _strtod(s, 0)
        if at:
            flags.add("rho")
            values["rho"] = value
    if s[at:at + 1] in ("x", ",", "/") and s[at:at + 1] != "":
        separator = s[at]
        at += 1
        if separator != "x" or s[at:at + 1] not in ("+", "-"):
            value, end = _strtod(s, at)
            if end != at:
                flags.add("sigma")
                values["sigma"] = value
            at = end
    xi_negative = False
    if s[at:at + 1] in ("+", "-", ",", "/") and s[at:at + 1] != "":
        offset, at, xi_negative = _signed_value(s, at)
        if offset is not None:
            flags.add("xi")
            values["xi"] = offset
        if s[at:at + 1] in ("+", "-", ",", "/") and s[at:at + 1] != "":
            offset, at, _ = _signed_value(s, at)
            if offset is not None:
                flags.add("psi")
                values["psi"] = offset
    if {"rho", "xi"} <= flags and "sigma" not in flags and xi_negative:  # "30x-20[+10]": a negative height
        values["sigma"], values["xi"], values["psi"] = values["xi"], values["psi"], 0.0
        flags.add("sigma")
        flags.discard("psi" if "psi" in flags else "xi")
    if "%" in flags:
        if "x" not in flags and "sigma" not in flags:
            values["sigma"] = values["rho"]
        if "x" in flags and "rho" not in flags:
            values["rho"] = values["sigma"]
    return Geometry(values["rho"], values["sigma"], values["xi"], values["psi"], frozenset(flags))
