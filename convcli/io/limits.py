"""How much an input may bring: pixel and page limits of images, byte limits of every source.

convcli reads untrusted bytes (files, pipes, standard input) and must never let them take
the machine.  Two kinds of limit live here:

- **Images** are checked from their headers before they are decoded
  (:func:`check_image_size`): the pixels they would decode to (width × height × the pages
  that are read) against :attr:`ReadLimits.max_pixels` (``--max-pixels``, by default
  Pillow's own bomb threshold), the pages of a multi-page file against
  :attr:`ReadLimits.max_pages`, and the memory decoding needs (pixels × bands × bytes)
  against the machine's.  A 631-byte JPEG that declares 10000×10000 pixels is refused
  with its numbers, not decoded.
- **Byte budgets** (:func:`byte_budget`): the most bytes a source may hold for what it is
  read as, decided from its first bytes.  A ``.npy`` holds exactly what its header
  declares; an image at most what ``max_pixels`` pixels could take uncompressed; a text
  array or a kernel file at most :data:`MAX_TEXT_BYTES`; data of no known format nothing
  past its first bytes.  :mod:`convcli.io.streams` stops reading there, so ``/dev/zero``
  behind a symlink or an endless pipe ends with a message instead of an out-of-memory.

Neighbours: reading sources within these budgets is :mod:`convcli.io.streams`; decoding
images :mod:`convcli.io.images`; what each input becomes :mod:`convcli.io.inputs`.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional, Union

from ..errors import InputFileError, ParameterError, one_line

__all__ = [
    "DEFAULT_MAX_PAGES", "DEFAULT_MAX_PIXELS", "IMAGE_BYTES_PER_PIXEL", "MAX_KERNEL_BYTES", "MAX_TEXT_BYTES",
    "ReadLimits", "byte_budget", "check_image_size", "decoder_reason", "format_bytes", "machine_memory",
    "pillow_pixel_limit",
]

#: The default of ``--max-pixels``: Pillow's ``MAX_IMAGE_PIXELS`` (1024³ / 4 / 3 = 89,478,485,
#: about 9459×9459), the size above which Pillow itself warns of a decompression bomb.
DEFAULT_MAX_PIXELS = 89_478_485

#: The most pages (frames) a multi-page or animated image may hold.
DEFAULT_MAX_PAGES = 1024

#: The most bytes a text array (.txt/.csv, or plain text on standard input) may hold.
MAX_TEXT_BYTES = 256 * 2**20

#: The most bytes a kernel file (any format) may hold: 32 million float64 weights, far more
#: than any real filter bank or layer.
MAX_KERNEL_BYTES = 256 * 2**20

#: The most bytes one pixel of an image file can take uncompressed (four 32-bit samples),
#: so a file of ``max_pixels`` pixels is never larger than ``max_pixels`` times this, plus
#: :data:`_IMAGE_SLACK` for headers and metadata.
IMAGE_BYTES_PER_PIXEL = 16
_IMAGE_SLACK = 16 * 2**20

#: The bytes of a source that are read before its format is told (enough for every magic
#: number and for telling plain text on standard input).
HEAD_BYTES = 4096


def machine_memory() -> Optional[int]:
    """This machine's physical memory in bytes (None where the platform does not say)."""
    from ..engine.memory import physical_memory

    return physical_memory()


def format_bytes(nbytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``, ``3 * 2**30`` -> ``"3 GiB"``: sizes as messages write them."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{int(nbytes)} bytes"


@dataclass(frozen=True)
class ReadLimits:
    """What one input may bring.

    Attributes
    ----------
    max_pixels : int
        The most pixels an image may decode to, counting every page that is read
        (a multi-page float TIFF's pages are its channels); ``--max-pixels``.
    max_pages : int
        The most pages or frames a multi-page or animated image may hold.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_pages: int = DEFAULT_MAX_PAGES

    def __post_init__(self) -> None:
        for name, value in (("max_pixels", self.max_pixels), ("max_pages", self.max_pages)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")

    @classmethod
    def of(cls, max_pixels: Optional[int] = None) -> ReadLimits:
        """The defaults, with ``max_pixels`` when given (``--max-pixels``; None keeps the default)."""
        return cls() if max_pixels is None else cls(max_pixels=max_pixels)

    @property
    def image_bytes(self) -> int:
        """The most bytes an image file within :attr:`max_pixels` can hold (uncompressed, with metadata)."""
        return self.max_pixels * IMAGE_BYTES_PER_PIXEL + _IMAGE_SLACK


DEFAULTS = ReadLimits()


# ---------------------------------------------------------------- byte budgets


@dataclass(frozen=True)
class Budget:
    """The most bytes a source may hold, and why (for the message when it holds more).

    Attributes
    ----------
    nbytes : int
        The limit; a source with more is refused (a ``.npy`` is read to exactly this).
    reason : str
        What the limit is, as a message says it: "the most a text array may hold".
    exact : bool
        A ``.npy``: the header declared exactly this many bytes; reading stops there.
    """

    nbytes: int
    reason: str
    exact: bool = False


def _npy_budget(head: bytes, where: str, ceiling: Optional[int], ceiling_text: str) -> Optional[Budget]:
    """The exact size of a ``.npy`` from its header, or None when ``head`` holds too little of it yet.

    Raises
    ------
    InputFileError
        The header declares more data than ``ceiling`` (the machine's memory, or a kernel's limit).
    """
    import numpy as np

    if len(head) < 10:
        return None
    major = head[6]
    if major == 1:
        start, length = 10, int.from_bytes(head[8:10], "little")
    else:
        if len(head) < 12:
            return None
        start, length = 12, int.from_bytes(head[8:12], "little")
    if length > 100_000:  # numpy refuses headers over 10000 bytes: let it say so
        return Budget(start + min(length, 100_000), "a .npy header", exact=True)
    if len(head) < start + length:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the reader proper reports a Python 2 header once
            stream = io.BytesIO(head)
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    except Exception:  # a malformed header: the reader proper says what is wrong
        return Budget(start + length, "a .npy header", exact=True)
    if dtype.hasobject:
        return Budget(start + length, "a .npy header", exact=True)
    nbytes = math.prod(int(n) for n in shape) * dtype.itemsize
    if ceiling is not None and nbytes > ceiling:
        raise InputFileError(
            f"{where} declares a .npy array of shape {tuple(int(n) for n in shape)} ({dtype}, "
            f"{format_bytes(nbytes)}), more than {ceiling_text}; nothing more was read"
        )
    return Budget(start + length + nbytes, f"the .npy header's {format_bytes(nbytes)} of data", exact=True)


_KERNEL_TEXT = "the most a kernel file may hold"


def byte_budget(head: bytes, role: str, where: str, *, text: Union[bool, str], limits: ReadLimits = DEFAULTS,
                complete: bool = False) -> Optional[Budget]:
    """The most bytes a source may hold, decided from its first bytes.

    Parameters
    ----------
    head : bytes
        The source's first bytes (at least :data:`HEAD_BYTES` unless it is shorter).
    role : {"input", "kernel", "array"}
        What the source is read as: an input (``apply``, ``grad``, ``info``), a kernel
        file (``-k``), or an array file (``--dout``, ``--bias``: .npy or .npz only).
    where : str
        How messages name the source ("standard input", "input file 'x.png'").
    text : bool or "sniff"
        Whether the source may be a text array: True for a .txt/.csv name, "sniff" for
        standard input (when its first bytes are plain text); only for ``role="input"``.
    limits : ReadLimits
    complete : bool
        ``head`` is the whole source (it ended): no budget is needed beyond it.

    Returns
    -------
    Budget or None
        None when ``head`` is too short to tell yet (a ``.npy`` header not read whole):
        read more and ask again.

    Raises
    ------
    InputFileError
        A ``.npy`` header that declares more data than could ever be held.
    """
    from .arrays import NPY_MAGIC, NPZ_MAGIC
    from .inputs import _looks_like_text, sniff

    memory = machine_memory()
    memory_text = f"this machine's {format_bytes(memory)} of memory" if memory else "memory"
    if head.startswith(NPY_MAGIC):
        if role == "kernel":
            return _npy_budget(head, where, MAX_KERNEL_BYTES, f"{_KERNEL_TEXT} ({format_bytes(MAX_KERNEL_BYTES)})")
        return _npy_budget(head, where, memory, memory_text)
    if role == "kernel":
        return Budget(MAX_KERNEL_BYTES, _KERNEL_TEXT)
    if head.startswith(NPZ_MAGIC):
        return Budget(memory or 2**62, "this machine's memory")
    if role == "input" and sniff(head) == "image":
        return Budget(limits.image_bytes, f"the most an image within --max-pixels {limits.max_pixels:,} can take")
    if role == "input" and (text is True or (text == "sniff" and _looks_like_text(head))):
        return Budget(MAX_TEXT_BYTES, "the most a text array may hold; use .npy for larger arrays")
    # no known format: nothing past the first bytes is needed to say so
    return Budget(len(head), "data of no format convcli reads")


# ---------------------------------------------------------------- images, before they are decoded


#: Bytes Pillow keeps per pixel of each mode (its own buffer; other modes take 4).
_PILLOW_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2, "LA": 4, "La": 4, "PA": 4}


@contextmanager
def pillow_pixel_limit(limits: ReadLimits) -> Iterator[None]:
    """Let Pillow open images up to ``limits.max_pixels`` (its own bomb check then never fires first).

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and refuses above twice that; convcli's own
    check (:func:`check_image_size`) comes first and names ``--max-pixels``, so while the block
    runs Pillow's threshold is set to the limit.  (It is a global of Pillow's: restored after.)
    """
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max(limits.max_pixels, DEFAULT_MAX_PIXELS)
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _frames(im: object, cap: int) -> list[tuple[int, int, str]]:
    """(width, height, mode) of each page or frame of an opened image, at most ``cap + 1`` of them."""
    sizes: list[tuple[int, int, str]] = []
    index = 0
    while True:
        size = getattr(im, "size", (0, 0))
        sizes.append((int(size[0]), int(size[1]), str(getattr(im, "mode", ""))))
        if len(sizes) > cap:
            return sizes
        index += 1
        try:
            im.seek(index)  # type: ignore[attr-defined]
        except EOFError:
            return sizes


def decoder_reason(exc: BaseException) -> str:
    """What a decoder's exception says, as a message's reason: its text, or "malformed headers (KeyError 229)"."""
    text = one_line(exc, 100)
    if isinstance(exc, (OSError, ValueError, EOFError)) and not isinstance(exc, UnicodeError):
        return text
    kind = type(exc).__name__
    return f"malformed headers ({kind} {text})" if str(exc) else f"malformed headers ({kind})"


def check_image_size(data: bytes, name: str, limits: ReadLimits = DEFAULTS) -> None:
    """Refuse, from its headers alone, an image that would decode to too many pixels, pages or bytes.

    The pixels counted are those convcli decodes: the first frame, or every page of a
    multi-page float TIFF (read as channels).  Nothing is decoded here: Pillow reads the
    headers of each TIFF page (at most ``limits.max_pages + 1`` of them); the frames of
    other formats (GIF, APNG, WebP) are only counted, since opening one decodes it.

    Parameters
    ----------
    data : bytes
        The encoded image.
    name : str
        Source name for messages.
    limits : ReadLimits

    Raises
    ------
    InputFileError
        Bad headers (with what Pillow said); more pages than ``limits.max_pages``; more
        pixels than ``limits.max_pixels`` (the message gives the size and the option to
        raise the limit); or a decoded size larger than the machine's memory.
    """
    from PIL import Image, UnidentifiedImageError

    shown = repr(name)
    try:
        with pillow_pixel_limit(limits), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the decoder proper reports its warnings once
            with Image.open(io.BytesIO(data)) as im:
                kind = str(im.format or "image")
                bands = len(im.getbands())
                if kind == "TIFF":  # a TIFF page's seek reads its tags only: every page is looked at
                    frames = _frames(im, limits.max_pages)
                else:  # a GIF's seek decodes (and may grow the canvas): its frames are counted, not opened
                    count = min(int(getattr(im, "n_frames", 1)), limits.max_pages + 1)
                    frames = [(int(im.size[0]), int(im.size[1]), str(im.mode))] * count
    except UnidentifiedImageError:
        raise InputFileError(f"cannot read {shown} as an image: not a recognised image format") from None
    except Exception as exc:  # Pillow's header parsers raise many kinds on malformed files
        raise InputFileError(f"cannot read {shown} as an image: {decoder_reason(exc)}") from None
    if len(frames) > limits.max_pages:
        raise InputFileError(
            f"{shown} has more than {limits.max_pages} pages; convcli reads at most {limits.max_pages} "
            "pages or frames of one file"
        )
    width, height, mode = frames[0]
    pages = [frames[0]]
    if kind == "TIFF" and mode == "F" and len(frames) > 1:  # read as channels, one per page
        pages = [f for f in frames if f[2] == "F"]
    pixels = sum(w * h for w, h, _ in pages)
    what = (
        f"{len(pages)} pages of {width}×{height} pixels" if len(pages) > 1 else f"{width}×{height} pixels"
    )
    if pixels > limits.max_pixels:
        raise InputFileError(
            f"{shown} ({kind}) would decode to {what} ({pixels:,}), more than --max-pixels "
            f"{limits.max_pixels:,}; if the image is real, give --max-pixels {pixels}"
        )
    per_pixel = 2 * _PILLOW_BYTES.get(mode, 4) + 8 * max(1, bands)  # Pillow's copies + float32 channels, twice
    needed = pixels * per_pixel
    memory = machine_memory()
    if memory is not None and needed > memory:
        raise InputFileError(
            f"{shown} ({kind}, {what}) needs about {format_bytes(needed)} to decode, more than this "
            f"machine's {format_bytes(memory)} of memory"
        )
