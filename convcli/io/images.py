"""Pillow ⇄ NCHW float: reading images into arrays and writing arrays as images.

Images load as float32 in [0, 1] with shape (1, C, H, W): 8-bit samples are divided by
255, 16-bit samples by 65535 (16-bit grayscale keeps its full precision).  EXIF orientation
is applied, palettes are expanded, alpha is dropped unless asked for, and anything a user
should know about (alpha dropped, a 16-bit colour PNG that Pillow reads as 8-bit) comes
back as a note rather than a warning.

Writing goes the other way: :func:`encode_png` (PNG encoding) rounds [0, 1] floats to 8-
or 16-bit integers, :func:`encode_tiff_float` keeps float32 values exactly.

Neighbours: telling an image from an array and reading files is :mod:`convcli.io.inputs`;
floats -> [0, 1] pixels before encoding is :mod:`convcli.io.display`; writing the bytes is
:mod:`convcli.io.outputs`.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputFileError, OutputFileError, ShapeError, one_line
from .display import to_pixels
from .formats import DEFAULT_QUALITY
from .png import DEFAULT_LEVEL, write_png

#: ITU-R 601-2 luma weights (R, G, B), the ones Pillow's ``convert("L")`` uses.
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)

_EXPECTED = "expected PNG, JPEG, TIFF, BMP, WebP or GIF"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale+alpha", 6: "RGBA"}
_I16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "LA", "La", "P", "PA", "CMYK")


@dataclass
class LoadedImage:
    """An image read into an NCHW array: its samples as decoded, and the divisor that maps them to [0, 1].

    Attributes
    ----------
    samples : ndarray, shape (1, C, H, W)
        uint8 or uint16 samples as decoded (a view of the decoder's (H, W, C) buffer: no
        copy), or float32 values for float and 32-bit integer sources and after ``gray``.
        C is 1 (gray), 3 (RGB), or one more with ``keep_alpha`` when the image has alpha
        (alpha last).
    divisor : float or None
        255 or 65535 for integer samples (the image's value is ``samples / divisor``),
        None when ``samples`` are the values already.
    mode : str
        Pillow mode of the source, e.g. "RGB", "I;16", "P", "F".
    bits : int
        8 or 16: the PNG depth that keeps the source's precision.  1-bit and 8-bit
        sources give 8 (so does a 16-bit colour PNG, which Pillow reads as 8-bit);
        16-bit, 32-bit integer and float sources give 16.
    notes : list of str
        One-line messages for the user (alpha dropped, precision lost, frames skipped...),
        without the source's name, which the caller prefixes.
    """

    samples: NDArray[Any]
    mode: str
    bits: int
    notes: list[str] = field(default_factory=list)
    divisor: Optional[float] = None

    @property
    def data(self) -> NDArray[np.float32]:
        """The image as float32 values, shape (1, C, H, W): ``samples / divisor`` (a new array)."""
        return as_values(self.samples, self.divisor)


def as_values(samples: NDArray[Any], divisor: Optional[float]) -> NDArray[np.float32]:
    """``samples / divisor`` in float32 (each value ``k / 255`` rounded once), or float32 ``samples`` (divisor None)."""
    if divisor is None:
        return np.ascontiguousarray(samples, dtype=np.float32)
    values = np.empty(samples.shape, dtype=np.float32)
    np.divide(samples, np.float32(divisor), out=values)
    return values


def _unreadable(name: str, reason: object) -> InputFileError:
    text = one_line(reason, 120)
    if text[:1].isupper() and text[1:2].islower():  # "Truncated File Read" -> "truncated File Read"
        text = text[0].lower() + text[1:]
    return InputFileError(f"cannot read {name!r} as an image: {text}; {_EXPECTED}")


def png_header(data: bytes) -> Optional[tuple[int, int]]:
    """Bit depth and colour type from a PNG's IHDR chunk, or None when ``data`` is no PNG.

    Parameters
    ----------
    data : bytes
        The file's bytes (only the first 26 are looked at).

    Returns
    -------
    tuple of int (bit_depth, colour_type) or None
        Colour type 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
    """
    if len(data) < 26 or not data.startswith(_PNG_MAGIC) or data[12:16] != b"IHDR":
        return None
    return data[24], data[25]


def _hidden_16bit(im: Image.Image, data: bytes) -> Optional[str]:
    """Describe a 16-bit colour source that Pillow decoded at 8 bits, else None."""
    header = png_header(data)
    if header is not None:
        depth, colour = header
        if depth == 16 and colour in (2, 4, 6):
            return f"16-bit {_PNG_COLOUR_TYPES[colour]} PNG"
        return None
    if im.format == "TIFF" and im.mode in _COLOUR_MODES:
        tags = getattr(im, "tag_v2", None)
        bits = tags.get(258) if tags is not None else None  # BitsPerSample
        if isinstance(bits, int):
            bits = (bits,)
        if bits and max(int(b) for b in bits) > 8:
            return f"{max(int(b) for b in bits)}-bit {im.mode} TIFF"
    return None


def _open(data: bytes, name: str, notes: list[str]) -> Image.Image:
    """Open and decode ``data``; every failure becomes one InputFileError."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            im.load()
        for w in caught:
            if issubclass(w.category, Image.DecompressionBombWarning):
                notes.append(f"very large image ({im.width}×{im.height} pixels); it may need a lot of memory")
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{found.group(1)} pixels" if found else "too many pixels"
        raise _unreadable(name, f"{size}, over Pillow's decompression-bomb limit") from None
    except UnidentifiedImageError:
        raise _unreadable(name, "not a recognised image format") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError, TypeError) as exc:
        raise _unreadable(name, exc) from None
    except MemoryError:
        raise _unreadable(name, "not enough memory to decode it") from None
    return im


def _transpose(im: Image.Image, name: str, notes: list[str]) -> Image.Image:
    """``im`` with its EXIF orientation applied (a note, not an error, when the EXIF is broken)."""
    try:
        out = ImageOps.exif_transpose(im)
    except Exception as exc:  # broken EXIF must not stop a readable image
        notes.append(f"EXIF orientation ignored: {one_line(exc, 80)}")
        return im
    return im if out is None else out


def _float_pages(im: Image.Image, name: str, notes: list[str]) -> Optional[NDArray[np.float32]]:
    """All pages of a multi-page float TIFF as channels (C, H, W), or None if ``im`` is not one.

    Only when every page is mode "F" of the first page's size; ``im`` is left on page 0.
    """
    n_frames = int(getattr(im, "n_frames", 1))
    if im.format != "TIFF" or im.mode != "F" or n_frames < 2:
        return None
    size = im.size
    pages = []
    try:
        for index in range(n_frames):
            im.seek(index)
            if im.mode != "F" or im.size != size:
                return None
            pages.append(np.asarray(_transpose(im, name, notes), dtype=np.float32))
    except (OSError, ValueError, EOFError) as exc:
        raise _unreadable(name, exc) from None
    finally:
        try:
            im.seek(0)
        except (OSError, ValueError, EOFError):
            pass
    if len({page.shape for page in pages}) != 1:
        return None
    return np.stack(pages)


def _to_samples(im: Image.Image, name: str, notes: list[str]) -> tuple[NDArray[Any], Optional[float], bool, int]:
    """Pixels of ``im`` as (C, H, W) samples, their divisor, whether the last channel is alpha, the bit depth.

    8- and 16-bit samples stay integers (a channel-first view of the decoded buffer);
    1-bit, 32-bit integer and float images come as float32 values (divisor None or 65535).
    """
    mode = im.mode
    if mode == "1":
        return np.asarray(im, dtype=np.float32)[None], None, False, 8
    if mode in _I16_MODES:
        return np.asarray(im).astype(np.uint16, copy=False)[None], 65535.0, False, 16
    if mode == "I":
        values = np.asarray(im)
        if values.size and (values.min() < 0 or values.max() > 65535):
            notes.append("32-bit integer image with values outside 0..65535: values kept unscaled")
            return values.astype(np.float32)[None], None, False, 16
        return values.astype(np.uint16)[None], 65535.0, False, 16
    if mode == "F":
        return np.asarray(im, dtype=np.float32)[None], None, False, 16
    if mode == "L":
        return np.asarray(im)[None], 255.0, False, 8
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in im.info):
        target = "LA" if mode in ("LA", "La") else "RGBA"
    elif mode == "P" and _gray_palette(im):
        target = "L"
    else:
        target = "RGB"
    try:
        converted = im if mode == target else im.convert(target)
    except (ValueError, OSError) as exc:
        raise _unreadable(name, f"unsupported image mode {mode!r} ({one_line(exc, 60)})") from None
    samples = np.asarray(converted)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    return samples.transpose(2, 0, 1), 255.0, target in ("LA", "RGBA"), 8  # (C, H, W) view: no copy


def _gray_palette(im: Image.Image) -> bool:
    """True when every colour of a "P" image's palette has R == G == B."""
    palette = im.getpalette()
    if not palette:
        return False
    rgb = np.asarray(palette[: len(palette) // 3 * 3]).reshape(-1, 3)
    return bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


def luma(rgb: NDArray[np.floating]) -> NDArray[np.floating]:
    """ITU-R 601-2 luma of RGB channels, in float: ``0.299 R + 0.587 G + 0.114 B``.

    Parameters
    ----------
    rgb : ndarray, shape (..., 3, H, W), float
        Channel axis third from last.

    Returns
    -------
    ndarray, shape (..., 1, H, W)
        Same float dtype as ``rgb``.
    """
    r, g, b = (rgb[..., i : i + 1, :, :] for i in range(3))
    w = [np.asarray(v, dtype=rgb.dtype) for v in LUMA_WEIGHTS]
    return r * w[0] + g * w[1] + b * w[2]


def load_image(data: bytes, name: str, *, gray: bool = False, keep_alpha: bool = False) -> LoadedImage:
    """Decode image bytes into an NCHW float32 array.

    Reads any format Pillow reads (PNG, JPEG, TIFF, BMP, WebP; the first frame of a GIF or
    multi-page file).  EXIF orientation is applied.  Palette images become RGB (RGBA when
    they have transparency; L when the palette is all gray); 1-bit images give 0 and 1;
    8-bit samples are divided by 255 and 16-bit ones by 65535; a float TIFF (mode "F")
    keeps its values, and a multi-page float TIFF whose pages agree in size (what
    :func:`encode_tiff_float` writes) gives one channel per page.

    Parameters
    ----------
    data : bytes
        The encoded image.
    name : str
        Source name for messages.
    gray : bool
        Convert to one channel with ITU-R 601-2 luma (``0.299 R + 0.587 G + 0.114 B``,
        Pillow's "L" weights) computed in float, so 16-bit and float sources keep their
        precision.  With ``keep_alpha`` the result is (luma, alpha).
    keep_alpha : bool
        Keep an alpha channel as the last channel.  By default alpha is dropped (colour
        values kept as they are, not composited), with a note when some pixel was not
        fully opaque.

    Returns
    -------
    LoadedImage
        ``data`` of shape (1, C, H, W), float32: C = 1 or 3, plus 1 for kept alpha.

    Raises
    ------
    InputFileError
        Unreadable, truncated or unsupported data, or more pixels than Pillow's
        decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, twice over).
    ShapeError
        ``gray`` for a multi-page float TIFF with other than 1 or 3 pages.
    """
    notes: list[str] = []
    im = _open(data, name, notes)
    source_mode = im.mode
    frames = int(getattr(im, "n_frames", 1))
    pages = _float_pages(im, name, notes)
    hidden = _hidden_16bit(im, data)

    divisor: Optional[float] = None
    if pages is not None:
        pixels, has_alpha, bits = pages, False, 16
    else:
        if frames > 1:
            notes.append(f"{frames} frames; only the first was read")
        im = _transpose(im, name, notes)
        if hidden is not None and hidden.startswith("16-bit grayscale+alpha"):
            im = im.convert("LA")  # Pillow reads 16-bit gray+alpha PNG as RGBA with R == G == B
        try:
            pixels, divisor, has_alpha, bits = _to_samples(im, name, notes)
        except (OSError, ValueError) as exc:
            raise _unreadable(name, exc) from None
    if hidden is not None:
        notes.append(
            f"{hidden}, which Pillow reads as 8-bit: the low 8 bits of each sample were dropped "
            "(save it as 16-bit grayscale PNG, float TIFF or .npy to keep full precision)"
        )
        bits = 8

    color = pixels[:-1] if has_alpha else pixels
    alpha = pixels[-1:] if has_alpha else None
    if alpha is not None and not keep_alpha:
        if bool(np.any(alpha < (1.0 if divisor is None else divisor))):
            notes.append("alpha channel dropped (colours kept as stored, not composited); --keep-alpha keeps it")
        alpha = None
    if gray and color.shape[0] == 3:  # luma in float: 16-bit and float sources keep their precision
        color = luma(as_values(color, divisor))
        alpha = None if alpha is None else as_values(alpha, divisor)
        divisor = None
    elif gray and color.shape[0] != 1:  # only a multi-page float TIFF gets here
        raise ShapeError(f"gray needs 1 or 3 channels; {name!r} has {color.shape[0]} (pages of a float TIFF)")
    out = color if alpha is None else np.concatenate([color, alpha])
    return LoadedImage(out[None], source_mode, bits, notes, divisor)


def _check_pixels(pixels: NDArray[np.generic], what: str) -> NDArray[np.generic]:
    array = np.asarray(pixels)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ShapeError(f"{what} needs an array of shape (C, H, W) or (H, W), got shape {array.shape}")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ShapeError(f"{what} needs a non-empty image, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise OutputFileError(f"{what} needs numeric values, got dtype {array.dtype}")
    return array


def encode_png(pixels: NDArray[np.generic], *, bits: int = 8, level: int = DEFAULT_LEVEL) -> bytes:
    """Encode [0, 1] floats as a PNG (:func:`convcli.io.display.to_pixels` in "clip", then :func:`write_png`).

    Values are clipped to [0, 1], scaled to 255 (or 65535) and rounded to the nearest
    integer (not truncated), so ``k/255`` comes back exactly; NaN becomes 0.

    Parameters
    ----------
    pixels : ndarray, shape (C, H, W) or (H, W), float
        C = 1, 2, 3 or 4: L, LA, RGB or RGBA.
    bits : {8, 16}
        Sample depth.
    level : int
        zlib level, 0..9.

    Returns
    -------
    bytes
        The PNG file.

    Raises
    ------
    ShapeError
        ``pixels`` is not 2-D or 3-D, or is empty.
    OutputFileError
        C is not 1 to 4, or ``bits`` is not 8 or 16.
    """
    array = _check_pixels(pixels, "PNG output")
    channels = array.shape[0]
    if bits not in (8, 16):
        raise OutputFileError(f"PNG bit depth must be 8 or 16, got {bits}")
    if channels not in (1, 2, 3, 4):
        raise OutputFileError(
            f"PNG holds 1 to 4 channels (L, LA, RGB, RGBA), got {channels}; write one PNG per channel, or .npy/.tiff"
        )
    return write_png(to_pixels(array, "clip", bits), level=level)


def encode_pixels(pixels: NDArray[np.unsignedinteger], fmt: str, *, level: int = DEFAULT_LEVEL,
                  quality: int = DEFAULT_QUALITY) -> bytes:
    """Encode integer pixels as PNG, JPEG or WebP.

    Parameters
    ----------
    pixels : ndarray, shape (H, W, C), uint8 (uint16 for 16-bit PNG)
        C = 1 or 3 for JPEG; 1, 3 or 4 for WebP; 1 to 4 for PNG.
    fmt : {"png", "jpeg", "webp"}
    level : int
        PNG's zlib level.
    quality : int
        JPEG's and WebP's quality, 1..100.

    Returns
    -------
    bytes

    Raises
    ------
    OutputFileError
        A format, channel count or dtype it cannot hold.
    """
    if fmt == "png":
        return write_png(pixels, level=level)
    names = {"jpeg": "JPEG", "webp": "WebP"}
    if fmt not in names:
        raise OutputFileError(f"cannot encode pixels as {fmt!r}; expected png, jpeg or webp")
    channels = pixels.shape[2]
    allowed = (1, 3) if fmt == "jpeg" else (1, 3, 4)
    if pixels.dtype != np.uint8 or channels not in allowed:
        raise OutputFileError(
            f"{names[fmt]} holds 8-bit {' or '.join(map(str, allowed))}-channel images, got {channels} channel(s) of "
            f"{pixels.dtype}; write one file per map, or PNG, TIFF or .npy"
        )
    im = Image.fromarray(np.ascontiguousarray(pixels[:, :, 0] if channels == 1 else pixels))
    buffer = io.BytesIO()
    im.save(buffer, format=names[fmt].upper(), quality=quality)
    return buffer.getvalue()


def encode_tiff_float(array: NDArray[np.generic]) -> bytes:
    """Encode values exactly as a 32-bit float TIFF (Pillow mode "F").

    Parameters
    ----------
    array : ndarray, shape (C, H, W) or (H, W)
        Converted to float32 (float64 values are rounded to float32); NaN and inf kept.

    Returns
    -------
    bytes
        A TIFF file: one page for one channel, else a multi-page TIFF with one
        float page per channel, in channel order (:func:`load_image` reads such a
        file back as C channels; most viewers show only the first page).

    Raises
    ------
    ShapeError
        ``array`` is not 2-D or 3-D, or is empty.
    """
    values = _check_pixels(array, "float TIFF output").astype(np.float32)
    pages = [Image.fromarray(np.ascontiguousarray(page)) for page in values]
    buffer = io.BytesIO()
    if len(pages) == 1:
        pages[0].save(buffer, format="TIFF")
    else:
        pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:])
    return buffer.getvalue()
