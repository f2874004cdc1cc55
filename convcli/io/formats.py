"""Output formats and PNG display modes, by name: the vocabulary of what convcli writes.

:data:`FORMAT_BY_EXTENSION` is the one table of output formats and their file extensions,
:data:`DISPLAY_MODES` the ways a PNG maps floats to pixels.  No numpy here: the CLI builds
its choices from these names without importing it.

Neighbours: writing files is :mod:`convcli.io.outputs`; the display modes' arithmetic is
:mod:`convcli.io.display`; PNG and TIFF encoding is :mod:`convcli.io.images`.
"""

from __future__ import annotations

import os
from typing import Optional

from ..errors import ParameterError

__all__ = [
    "DEFAULT_QUALITY", "DISPLAY_MODES", "FORMAT_BY_EXTENSION", "OUTPUT_FORMATS", "PICTURE_FORMATS", "PNG_LEVEL",
    "check_display", "extension_for", "format_for_path",
]

#: Output formats by file extension (compared case-insensitively).  A format's first
#: extension here is the one default names get.
FORMAT_BY_EXTENSION: dict[str, str] = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".tif": "tiff", ".tiff": "tiff", ".npy": "npy",
    ".npz": "npz",
}

#: The quality JPEG and WebP outputs get unless told otherwise: filtered photos come back
#: without visible artefacts (Pillow's and libvips's default, 75, blurs fine edges).
DEFAULT_QUALITY = 90

#: The zlib level of the PNGs convcli writes (:mod:`convcli.io.png`): the fastest, for files
#: 0.8-0.95× the size of libvips's default PNGs on filtered photos (BENCHMARKS.md).
PNG_LEVEL = 1

#: Formats that hold display-mapped pixels (8-bit; PNG also 16-bit); the others hold raw floats.
PICTURE_FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")

#: The output formats, in the order of :data:`FORMAT_BY_EXTENSION`.
OUTPUT_FORMATS: tuple[str, ...] = tuple(dict.fromkeys(FORMAT_BY_EXTENSION.values()))


def format_for_path(path: str) -> Optional[str]:
    """Output format named by a path's extension (case-insensitive).

    Returns
    -------
    str or None
        "png" for .png, "jpeg" for .jpg/.jpeg, "webp" for .webp, "tiff" for .tif/.tiff, "npy"
        for .npy, "npz" for .npz; None otherwise.
    """
    return FORMAT_BY_EXTENSION.get(os.path.splitext(path)[1].lower())


def extension_for(fmt: str) -> str:
    """The extension default output names of format ``fmt`` get (".png", ".jpg", ".webp", ".tif", ".npy", ".npz")."""
    return next(ext for ext, named in FORMAT_BY_EXTENSION.items() if named == fmt)


#: How a PNG maps floats to pixels (:func:`convcli.io.display.to_display`).
DISPLAY_MODES: tuple[str, ...] = ("clip", "abs", "minmax", "offset")


def check_display(mode: str, name: str = "--display") -> None:
    """Raise :class:`ParameterError` naming ``name`` unless ``mode`` is one of :data:`DISPLAY_MODES`."""
    if mode not in DISPLAY_MODES:
        raise ParameterError(f"{name} must be one of {', '.join(DISPLAY_MODES)}, got {mode!r}")
