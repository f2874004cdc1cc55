"""Where inputs come from and what they are: files and ``-``, sniffing, and NCHW inputs.

:func:`load_input` reads a file (or standard input, ``-``) and returns a :class:`LoadedInput`
of shape (N, C, H, W), whatever the format.  Inputs are recognised by their first bytes
(:func:`sniff`), never by their extension (a PNG named ``x.npy`` still loads as a PNG);
only text arrays, which have no magic bytes, are told by a ``.txt``/``.csv`` extension (or,
on standard input, by being plain text).

Neighbours: decoding ``.npy``/``.npz``/text bytes into arrays (and which ``.npz`` member is
read) is :mod:`convcli.io.arrays`; decoding images is :mod:`convcli.io.images`; writing is
:mod:`convcli.io.outputs`.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import ConvcliError, ConvcliWarning, InputFileError, ShapeError, name_of, one_line, reworded_warnings
from . import streams
from .arrays import NPY_MAGIC, NPZ_MAGIC, choose_member, load_npy, load_npz, load_text
from .images import LoadedImage, as_values, load_image, luma
from .limits import DEFAULTS, ReadLimits, check_image_size, decoder_reason, pillow_pixel_limit
from .mapped import STREAM_MIN_BYTES, MappedArray, count_nonfinite, map_npy, worth_mapping

STDIN_NAME = "<stdin>"
TEXT_EXTENSIONS = (".txt", ".csv")

_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",  # PNG
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"BM",  # BMP
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
    b"II+\x00",  # BigTIFF
    b"MM\x00+",
)
_ACCEPTED_SHAPES = "(H, W), (C, H, W) or (N, C, H, W)"


def _display_name(source: str) -> str:
    return STDIN_NAME if source == "-" else source


def read_source(source: str, *, limits: ReadLimits = DEFAULTS) -> bytes:
    """All bytes of an input file, or of standard input for ``-``, within the input's budget.

    :func:`convcli.io.streams.read_source` with ``role="input"``: devices refused, a FIFO
    read like standard input (never waited for without a writer), and no more bytes read
    than an input of its format could need (:func:`convcli.io.limits.byte_budget`).

    Parameters
    ----------
    source : str
        A path, or ``-`` for ``sys.stdin.buffer``.
    limits : ReadLimits
        The image limits (``--max-pixels``) the budget of an image follows.

    Returns
    -------
    bytes
        Never empty.

    Raises
    ------
    InputFileError
        Missing file, a directory, a device, no permission, other read errors, no bytes at
        all, or more bytes than the input could need.
    ParameterError
        ``-`` while standard input is a terminal.
    """
    return streams.read_source(source, role="input", limits=limits)


def sniff(data: bytes) -> str:
    """Format of ``data`` from its magic bytes.

    Returns
    -------
    str
        "npy" (``\\x93NUMPY``), "npz" (a zip: ``PK\\x03\\x04``, or ``PK\\x05\\x06`` when
        empty), "image" (PNG, JPEG, GIF, BMP, TIFF or WebP), else "unknown".
    """
    if data.startswith(NPY_MAGIC):
        return "npy"
    if data.startswith(NPZ_MAGIC):
        return "npz"
    if data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    return "unknown"


def to_nchw(array: NDArray[Any], name: str) -> NDArray[Any]:
    """View an array as (N, C, H, W).

    Parameters
    ----------
    array : ndarray, shape (H, W), (C, H, W) or (N, C, H, W)
        Integer, float or bool values.  Bool becomes uint8 (0/1); other dtypes are kept.
        NaN and inf are allowed (they propagate through a convolution, as IEEE says).
    name : str
        Source name for messages.

    Returns
    -------
    ndarray, shape (N, C, H, W)
        (H, W) → (1, 1, H, W); (C, H, W) → (1, C, H, W); 4-D unchanged.  A view when possible.

    Raises
    ------
    ShapeError
        Another number of dimensions, or a zero-length axis.
    InputFileError
        Complex, string, object, structured or datetime values.
    """
    kind = array.dtype.kind
    if kind == "c":
        raise InputFileError(f"{name!r} holds complex values ({array.dtype}); expected real numbers")
    if kind not in "biuf":
        raise InputFileError(f"{name!r} holds {array.dtype} values; expected a numeric (integer or float) array")
    if array.ndim not in (2, 3, 4):
        raise ShapeError(f"{name!r} has shape {tuple(array.shape)} ({array.ndim}-D); expected {_ACCEPTED_SHAPES}")
    if 0 in array.shape:
        raise ShapeError(f"{name!r} has shape {tuple(array.shape)}, with an empty axis; expected {_ACCEPTED_SHAPES}")
    if kind == "b":
        array = array.astype(np.uint8)
    return array.reshape((1,) * (4 - array.ndim) + tuple(array.shape))


def input_stem(source: str) -> str:
    """File name without directory and last extension, for output names (``stdin`` for ``-``)."""
    return "stdin" if source == "-" else os.path.splitext(os.path.basename(os.path.normpath(source)))[0]


@dataclass
class LoadedInput:
    """One input, read and shaped for the layer.

    Attributes
    ----------
    samples : ndarray, shape (N, C, H, W)
        What was read: for images the decoded 8- or 16-bit samples (or float32 values,
        see :class:`convcli.io.images.LoadedImage`); for arrays the file's values (bool as
        uint8, text as float64, float32/float64 after ``gray``).
    name : str
        Source name for messages (``<stdin>`` for ``-``).
    stem : str
        File name without directory and last extension, for output names (``stdin`` for ``-``).
    kind : str
        "image" or "array".
    notes : list of str
        One-line messages for the user, without the name (the caller prefixes it).
    bits : int or None
        Images: 8 or 16, the PNG depth that keeps the source's precision
        (:attr:`convcli.io.images.LoadedImage.bits`); None for arrays.
    divisor : float or None
        Images with integer samples: 255 or 65535, the input's values being
        ``samples / divisor``; None when the samples are the values.
    mapped : MappedArray or None
        A ``.npy`` read where it lies (memory-mapped, :mod:`convcli.io.mapped`): ``samples``
        is a read-only view of the file, read as the engine needs it; None when read whole.
    """

    samples: NDArray[Any]
    name: str
    stem: str
    kind: str
    notes: list[str] = field(default_factory=list)
    bits: Optional[int] = None
    divisor: Optional[float] = None
    mapped: Optional[MappedArray] = field(default=None, repr=False)

    @property
    def data(self) -> NDArray[Any]:
        """The input's values, shape (N, C, H, W): the samples, or a float32 copy in [0, 1] of integer image samples."""
        return self.samples if self.divisor is None else as_values(self.samples, self.divisor)

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, C, H, W), without converting anything."""
        return tuple(self.samples.shape)


def pick_npz(arrays: Mapping[str, NDArray[Any]], name: str) -> NDArray[Any]:
    """The array of an .npz that is read as one input: the one named ``x``, or the only one.

    :func:`convcli.io.arrays.choose_member` with ``preferred=("x",)``.

    Raises
    ------
    InputFileError
        An empty archive, or several arrays and none named ``x``.
    """
    return arrays[choose_member(arrays, ("x",), repr(name))]


def _gray_array(data: NDArray[Any], name: str) -> NDArray[Any]:
    channels = data.shape[1]
    if channels == 1:
        return data
    if channels != 3:
        raise ShapeError(f"gray needs 1 or 3 channels; {name!r} has shape {tuple(data.shape)} ({channels} channels)")
    dtype = np.float64 if data.dtype == np.float64 else np.float32
    values: NDArray[np.floating] = data.astype(dtype, copy=False)
    return luma(values)


def _array_notes(data: NDArray[Any], name: str, mapped: Optional[MappedArray] = None) -> list[str]:
    notes = []
    if data.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(data))) if mapped is None else count_nonfinite(mapped, data)
        if bad:
            notes.append(f"{bad} non-finite values (NaN or inf); they spread through the convolution")
    return notes


def _looks_like_text(data: bytes) -> bool:
    """True when the first 4 KiB are printable ASCII (after an optional UTF-8 byte-order mark)."""
    head = data[3:4099] if data.startswith(b"\xef\xbb\xbf") else data[:4096]
    try:
        head.decode("ascii")
    except UnicodeDecodeError:
        return False
    return all(32 <= c < 127 or c in b"\t\r\n" for c in head)


def load_input(source: str, *, gray: bool = False, keep_alpha: bool = False,
               limits: ReadLimits = DEFAULTS, stream: Optional[bool] = None) -> LoadedInput:
    """Read a file (or ``-``) as an NCHW array, whatever its format: :func:`decode_input` of its bytes.

    The format comes from the magic bytes (:func:`sniff`), not the extension: .npy,
    .npz (the array named ``x``, or the only one), or an image (:func:`~convcli.io.images.load_image`).
    Data with no magic is read as a text array when the name ends in .txt/.csv, or,
    on standard input, when it is plain ASCII.

    Parameters
    ----------
    source : str
        A path or ``-``.
    gray : bool
        One channel: images by ITU-R 601-2 luma; arrays with C = 3 by the same weights
        (in float32, or float64 for float64 arrays), C = 1 left alone, other C refused.
    keep_alpha : bool
        Images only: keep alpha as the last channel.
    limits : ReadLimits
        How many pixels and pages an image may decode to (``--max-pixels``), checked from
        its headers before it is decoded (:func:`convcli.io.limits.check_image_size`).
    stream : bool or None
        Whether a ``.npy`` file is memory-mapped instead of read whole (``mapped`` set): True
        for every ``.npy`` regular file, False never, None for files of at least
        :data:`~convcli.io.mapped.STREAM_MIN_BYTES`.  A mapped ``.npy`` may be larger
        than memory; one read whole may not.

    Returns
    -------
    LoadedInput
        ``data`` of shape (N, C, H, W).

    Raises
    ------
    InputFileError
        Unreadable source, unknown format, non-numeric array, an image over the limits.
    ShapeError
        An array that is not 2-, 3- or 4-D, or ``gray`` on an array with C not in (1, 3).
    """
    if stream is not False and worth_mapping(source, 1 if stream else STREAM_MIN_BYTES):
        mapped = map_npy(source)
        return array_input(mapped.array, source, gray=gray, mapped=mapped)
    return decode_input(read_source(source, limits=limits), source, gray=gray, keep_alpha=keep_alpha, limits=limits)


def decode_input(data: bytes, source: str, *, gray: bool = False, keep_alpha: bool = False,
                 limits: ReadLimits = DEFAULTS) -> LoadedInput:
    """An input's bytes as an NCHW array (see :func:`load_input`; ``source`` names it and tells text by extension).

    An image is checked against ``limits`` from its headers first, and whatever its decoder
    raises on bad bytes becomes one :class:`~convcli.errors.InputFileError`; its warnings
    come out once each, as one line (:func:`convcli.errors.reworded_warnings`).

    Raises
    ------
    InputFileError
        Unknown format, undecodable data, non-numeric array, an image over the limits.
    ShapeError
        An array that is not 2-, 3- or 4-D, or ``gray`` on an array with C not in (1, 3).
    """
    name = _display_name(source)
    kind = sniff(data)
    if kind == "image":
        image = _decode_image(data, name, gray=gray, keep_alpha=keep_alpha, limits=limits)
        return LoadedInput(image.samples, name, input_stem(source), "image", image.notes, image.bits, image.divisor)
    if kind == "npy":
        array = load_npy(data, name)
    elif kind == "npz":
        array = pick_npz(load_npz(data, name), name)
    elif source.lower().endswith(TEXT_EXTENSIONS) or (source == "-" and _looks_like_text(data)):
        array = load_text(data, name)
    else:
        raise InputFileError(
            f"cannot tell the format of {name!r} from its first bytes; expected .npy, .npz, "
            "an image (PNG, JPEG, TIFF, BMP, WebP, GIF) or a .txt/.csv array"
        )
    return array_input(array, source, gray=gray)


@contextmanager
def _c_library_stderr(name: str) -> Iterator[None]:
    """What C libraries (libtiff) print on file descriptor 2 inside the block becomes one warning per line.

    libtiff reports odd files straight to the process's stderr ("More samples per pixel than
    can be decoded: 2048"), around convcli's messages; here it is caught in a temporary file
    and warned as a :class:`~convcli.errors.ConvcliWarning` naming the source (dropped, with
    every other warning, when the block fails).
    """
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        said = sink.read(8192).decode("utf-8", "replace").splitlines()
    for line in list(dict.fromkeys(line.strip() for line in said if line.strip()))[:3]:
        warnings.warn(ConvcliWarning(f"{name_of(name)}: {one_line(line, 200)}"), stacklevel=3)


def _decode_image(data: bytes, name: str, *, gray: bool, keep_alpha: bool, limits: ReadLimits) -> LoadedImage:
    """:func:`~convcli.io.images.load_image`, after the size check, with one error for whatever Pillow raises."""
    try:
        with _c_library_stderr(name), pillow_pixel_limit(limits), reworded_warnings(name):
            check_image_size(data, name, limits)
            return load_image(data, name, gray=gray, keep_alpha=keep_alpha)
    except ConvcliError:
        raise
    except MemoryError:
        raise InputFileError(f"cannot read {name_of(name)} as an image: not enough memory to decode it") from None
    except Exception as exc:  # a decoder on untrusted bytes may raise anything: still one line, exit 3
        reason = decoder_reason(exc)
        raise InputFileError(
            f"cannot read {name_of(name)} as an image: {reason}; expected PNG, JPEG, TIFF, BMP, WebP or GIF"
        ) from None


def array_input(array: NDArray[Any], source: str, *, gray: bool = False,
                mapped: Optional[MappedArray] = None) -> LoadedInput:
    """A decoded array (HW, CHW or NCHW) as an input: shaped NCHW, ``gray`` applied, notes added.

    Raises
    ------
    InputFileError, ShapeError
        As :func:`to_nchw`; ``gray`` on an array with C not in (1, 3).
    """
    name = _display_name(source)
    notes: list[str] = []
    if array.ndim == 3 and array.shape[2] in (3, 4) and array.shape[0] > 4:
        notes.append(
            f"shape {tuple(array.shape)} looks like (H, W, C), but "
            "3-D arrays are read as (C, H, W); transpose it first if that is wrong"
        )
    nchw = to_nchw(array, name)
    if gray:
        nchw = _gray_array(nchw, name)
    if mapped is not None and not np.may_share_memory(nchw, mapped.array):
        mapped = None  # gray (or bool) made a copy in memory: nothing is read from the file any more
    notes.extend(_array_notes(nchw, name, mapped))
    return LoadedInput(nchw, name, input_stem(source), "array", notes, mapped=mapped)
