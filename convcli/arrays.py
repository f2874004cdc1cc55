"""Arrays and streams: .npy/.npz/text arrays, ``-`` for stdin/stdout, sniffing, safe writes.

Inputs are recognised by their first bytes, never by their extension (a PNG named
``x.npy`` still loads as a PNG); only text arrays, which have no magic bytes, are told by
a ``.txt``/``.csv`` extension (or, on standard input, by being plain text).  ``.npy`` and
``.npz`` are always read with ``allow_pickle=False``.

Outputs are written atomically (a temporary file in the target's directory, then
``os.replace``) and never over an input file.
"""

from __future__ import annotations

import errno
import io
import os
import sys
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InputFileError, OutputFileError, ShapeError
from .images import load_image, luma

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


def read_source(source: str) -> bytes:
    """All bytes of a file, or of standard input for ``-``.

    Parameters
    ----------
    source : str
        A path, or ``-`` for ``sys.stdin.buffer``.

    Returns
    -------
    bytes
        Never empty.

    Raises
    ------
    InputFileError
        Missing file, a directory, no permission, other read errors, or no bytes at all.
    """
    if source == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise InputFileError("standard input is not available")
        try:
            data: bytes = stream.read()
        except OSError as exc:
            raise InputFileError(f"cannot read standard input: {exc.strerror or exc}") from None
        if not data:
            raise InputFileError("standard input is empty; expected .npy or image bytes")
        return data
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise InputFileError(f"input file {source!r} not found") from None
    except IsADirectoryError:
        raise InputFileError(f"input {source!r} is a directory, not a file") from None
    except PermissionError:
        if os.path.isdir(source):  # Windows reports a directory as a permission error
            raise InputFileError(f"input {source!r} is a directory, not a file") from None
        raise InputFileError(f"cannot read input file {source!r}: permission denied") from None
    except OSError as exc:
        raise InputFileError(f"cannot read input file {source!r}: {exc.strerror or exc}") from None
    if not data:
        raise InputFileError(f"input file {source!r} is empty")
    return data


def sniff(data: bytes) -> str:
    """Format of ``data`` from its magic bytes.

    Returns
    -------
    str
        "npy" (``\\x93NUMPY``), "npz" (a zip: ``PK\\x03\\x04``, or ``PK\\x05\\x06`` when
        empty), "image" (PNG, JPEG, GIF, BMP, TIFF or WebP), else "unknown".
    """
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "npz"
    if data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    return "unknown"


def load_npy(data: bytes, name: str) -> NDArray[Any]:
    """Read ``.npy`` bytes with ``allow_pickle=False``.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    name : str
        Source name for messages.

    Returns
    -------
    ndarray
        Any shape, the file's dtype.

    Raises
    ------
    InputFileError
        Not ``.npy``, corrupt or truncated, or an object (pickled) array.
    """
    if not data.startswith(b"\x93NUMPY"):
        raise InputFileError(f"cannot read {name!r} as .npy: it does not start with the .npy magic bytes")
    try:
        _check_npy_size(data, name)
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except InputFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _pickled(name) from None
        raise _corrupt(name, ".npy", exc) from None
    except Exception as exc:  # untrusted bytes: numpy's header parser raises many kinds
        raise _corrupt(name, ".npy", exc) from None
    if not isinstance(array, np.ndarray):
        raise InputFileError(f"cannot read {name!r} as .npy: it holds no array")
    return array


def _check_npy_size(data: bytes, name: str) -> None:
    """Refuse a .npy whose header promises more bytes than follow (before numpy allocates them)."""
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype.hasobject:
        raise _pickled(name)
    needed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    present = len(data) - stream.tell()
    if needed > present:
        raise InputFileError(
            f"cannot read {name!r} as .npy: it is truncated (shape {tuple(shape)} of {dtype} needs "
            f"{needed} bytes of data, {present} found)"
        )


def _pickled(name: str) -> InputFileError:
    return InputFileError(
        f"{name!r} holds Python objects (pickled data), which convcli never loads (allow_pickle=False); "
        "save a numeric array instead"
    )


def _corrupt(name: str, kind: str, exc: BaseException) -> InputFileError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if len(reason) > 120:
        reason = reason[:117] + "..."
    return InputFileError(f"cannot read {name!r} as {kind}: {reason}")


def load_npz(data: bytes, name: str) -> dict[str, NDArray[Any]]:
    """Read every array of ``.npz`` bytes with ``allow_pickle=False``.

    Returns
    -------
    dict of str to ndarray
        Keyed by the names given to ``np.savez`` (without ``.npy``), in file order.

    Raises
    ------
    InputFileError
        Not a zip, a corrupt member, or an object (pickled) array.
    """
    arrays: dict[str, NDArray[Any]] = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise InputFileError(f"cannot read {name!r} as .npz: it is not a zip archive")
            for key in archive.files:
                value = archive[key]
                if not isinstance(value, np.ndarray):  # numpy hands back the raw bytes of a non-.npy member
                    raise InputFileError(f"cannot read {name!r} as .npz: member {key!r} is not a .npy array")
                arrays[key] = value
    except InputFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _pickled(name) from None
        raise _corrupt(name, ".npz", exc) from None
    except Exception as exc:  # untrusted bytes: zipfile and numpy raise many kinds
        raise _corrupt(name, ".npz", exc) from None
    return arrays


def load_text(data: bytes, name: str) -> NDArray[np.float64]:
    """Read a text array: one row per line, values separated by commas or white space.

    Lines starting with ``#`` are comments.

    Returns
    -------
    ndarray, shape (rows, columns), float64

    Raises
    ------
    InputFileError
        Not text, ragged rows, or a value that is not a number.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputFileError(f"cannot read {name!r} as a text array: it is not UTF-8 text") from None
    delimiter = "," if "," in text else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": refused below
            array = np.loadtxt(io.StringIO(text), dtype=np.float64, delimiter=delimiter, comments="#", ndmin=2)
    except ValueError as exc:
        raise _corrupt(name, "a text array", exc) from None
    if array.size == 0:
        raise InputFileError(f"text array {name!r} has no values")
    return array


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


@dataclass
class LoadedInput:
    """One input, read and shaped for the layer.

    Attributes
    ----------
    data : ndarray, shape (N, C, H, W)
        float32 in [0, 1] for images; the file's dtype for arrays (bool as uint8, text as
        float64, float32/float64 after ``gray``).
    name : str
        Source name for messages (``<stdin>`` for ``-``).
    stem : str
        File name without directory and last extension, for output names (``stdin`` for ``-``).
    kind : str
        "image" or "array".
    notes : list of str
        One-line messages for the user, without the name (the caller prefixes it).
    """

    data: NDArray[Any]
    name: str
    stem: str
    kind: str
    notes: list[str] = field(default_factory=list)


def _pick_npz(arrays: dict[str, NDArray[Any]], name: str) -> NDArray[Any]:
    if "x" in arrays:
        return arrays["x"]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if not arrays:
        raise InputFileError(f"{name!r} is an empty .npz archive")
    names = ", ".join(sorted(arrays))
    raise InputFileError(f"{name!r} holds several arrays ({names}) and none named 'x'; expected 'x' or a single array")


def _gray_array(data: NDArray[Any], name: str) -> NDArray[Any]:
    channels = data.shape[1]
    if channels == 1:
        return data
    if channels != 3:
        raise ShapeError(f"gray needs 1 or 3 channels; {name!r} has shape {tuple(data.shape)} ({channels} channels)")
    dtype = np.float64 if data.dtype == np.float64 else np.float32
    values: NDArray[np.floating] = data.astype(dtype, copy=False)
    return luma(values)


def _array_notes(data: NDArray[Any], name: str) -> list[str]:
    notes = []
    if data.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(data)))
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


def load_input(source: str, *, gray: bool = False, keep_alpha: bool = False) -> LoadedInput:
    """Read a file (or ``-``) as an NCHW array, whatever its format.

    The format comes from the magic bytes (:func:`sniff`), not the extension: .npy,
    .npz (the array named ``x``, or the only one), or an image (:func:`~convcli.images.load_image`).
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

    Returns
    -------
    LoadedInput
        ``data`` of shape (N, C, H, W).

    Raises
    ------
    InputFileError
        Unreadable source, unknown format, non-numeric array.
    ShapeError
        An array that is not 2-, 3- or 4-D, or ``gray`` on an array with C not in (1, 3).
    """
    name = _display_name(source)
    stem = "stdin" if source == "-" else os.path.splitext(os.path.basename(os.path.normpath(source)))[0]
    data = read_source(source)
    kind = sniff(data)
    if kind == "image":
        image = load_image(data, name, gray=gray, keep_alpha=keep_alpha)
        return LoadedInput(image.data, name, stem, "image", image.notes)
    if kind == "npy":
        array = load_npy(data, name)
    elif kind == "npz":
        array = _pick_npz(load_npz(data, name), name)
    elif source.lower().endswith(TEXT_EXTENSIONS) or (source == "-" and _looks_like_text(data)):
        array = load_text(data, name)
    else:
        raise InputFileError(
            f"cannot tell the format of {name!r} from its first bytes; expected .npy, .npz, "
            "an image (PNG, JPEG, TIFF, BMP, WebP, GIF) or a .txt/.csv array"
        )
    notes: list[str] = []
    if array.ndim == 3 and array.shape[2] in (3, 4) and array.shape[0] > 4:
        notes.append(
            f"shape {tuple(array.shape)} looks like (H, W, C), but "
            "3-D arrays are read as (C, H, W); transpose it first if that is wrong"
        )
    nchw = to_nchw(array, name)
    if gray:
        nchw = _gray_array(nchw, name)
    notes.extend(_array_notes(nchw, name))
    return LoadedInput(nchw, name, stem, "array", notes)


def npy_bytes(array: ArrayLike) -> bytes:
    """``array`` as ``.npy`` file bytes (dtype and shape kept; no pickles)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def npz_bytes(arrays: Mapping[str, ArrayLike], *, compress: bool = False) -> bytes:
    """Several named arrays as ``.npz`` file bytes (dtypes kept).

    Parameters
    ----------
    arrays : mapping of str to array_like
        Member names (``np.load(...)[name]``) to arrays.
    compress : bool
        Deflate the members (as ``np.savez_compressed``).

    Returns
    -------
    bytes
        A zip of ``{name}.npy`` members, the layout ``np.savez`` writes; any member
        name works, including ones ``np.savez`` keywords would clash with.
    """
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method, allowZip64=True) as archive:
        for key, value in arrays.items():
            archive.writestr(f"{key}.npy", npy_bytes(value))
    return buffer.getvalue()


def _same_file(a: str, b: str) -> bool:
    """True when paths ``a`` and ``b`` name one file (after links, ``..`` and case folding)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _write_stdout(data: bytes) -> None:
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:
        raise OutputFileError("standard output does not accept bytes")
    try:
        stream.write(data)
        stream.flush()
    except BrokenPipeError:
        raise OutputFileError("standard output was closed before all output was written") from None
    except OSError as exc:
        raise OutputFileError(f"cannot write to standard output: {exc.strerror or exc}") from None


def write_output(path: str, data: bytes, *, protect: Sequence[str] = ()) -> None:
    """Write ``data`` to ``path`` whole or not at all.

    ``-`` writes to ``sys.stdout.buffer`` and flushes.  Otherwise the bytes go to a new
    temporary file in the target's directory, which then replaces the target with
    ``os.replace``: no partial file is ever left, and an existing file is replaced only
    whole (its permission bits are kept).  When ``path`` is a symbolic link, the file it
    points to is replaced and the link kept.

    Parameters
    ----------
    path : str
        Output path, or ``-``.
    data : bytes
        The whole file.
    protect : sequence of str
        Paths that must not be overwritten (the inputs; ``-`` entries ignored).  Compared
        as files, so another relative path, a symlink or a hard link to one is refused too.

    Raises
    ------
    OutputFileError
        ``path`` is one of ``protect``, its directory is missing or not writable, it is a
        directory, or writing fails (the temporary file is removed).
    """
    if path == "-":
        _write_stdout(data)
        return
    if not path:
        raise OutputFileError("output path is empty")
    for other in protect:
        if other != "-" and os.path.lexists(path) and os.path.exists(other) and _same_file(path, other):
            raise OutputFileError(
                f"refusing to overwrite input {other!r} with output {path!r}; choose another output name"
            )
    target = os.path.realpath(path) if os.path.islink(path) else path
    directory = os.path.dirname(target) or "."
    if not os.path.isdir(directory):
        raise OutputFileError(f"output directory {directory!r} does not exist (for {path!r})")
    if os.path.isdir(target):
        raise OutputFileError(f"output {path!r} is a directory; expected a file name")
    mode = None
    if os.path.exists(target):
        mode = os.stat(target).st_mode & 0o7777

    fd, temp = _create_temp(directory, os.path.basename(target), path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise


def _create_temp(directory: str, base: str, path: str) -> tuple[int, str]:
    """Create a new, empty temporary file beside the target (mode 0666 less the umask).

    Returns
    -------
    tuple (int, str)
        Its open file descriptor (write only) and its path.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = os.path.join(directory, f".{base}.{os.urandom(4).hex()}.tmp")
        try:
            fd = os.open(temp, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _write_error(path, exc) from None
        return fd, temp
    raise OutputFileError(f"cannot create a temporary file in {directory!r} for {path!r}")


def _write_error(path: str, exc: OSError) -> OutputFileError:
    if isinstance(exc, PermissionError):
        return OutputFileError(f"cannot write {path!r}: permission denied")
    if exc.errno == errno.ENOSPC:
        return OutputFileError(f"cannot write {path!r}: no space left on device")
    return OutputFileError(f"cannot write {path!r}: {exc.strerror or exc}")
