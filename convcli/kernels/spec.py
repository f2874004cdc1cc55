"""The kernel-spec parser: what a user writes after ``--kernel``, read into a :class:`~convcli.kernels.kernel.Kernel`.

:func:`parse_kernel` understands, in this order:

``-``
    A kernel file read from standard input (format sniffed from its first bytes).
``PATH.npy``, ``.npz``, ``.txt``, ``.csv``, ``.json``
    A kernel file (see :func:`load_kernel_bytes`); missing is an error.
``NAME[:ARG[:ARG]]``
    A built-in from :data:`convcli.kernels.builtins.BUILTINS`, e.g. ``sobel-x``, ``gaussian:2``,
    ``box:5``.  Names are case-insensitive and ``_`` may stand for ``-``.
``WxH: v,v,...`` or ``N: v,v,...``
    ImageMagick's form: W columns, H rows, values row by row (``N`` means N×N).
An existing file
    Any other path that exists; its format is sniffed.
``1,2,1;2,4,2;1,2,1``
    An inline matrix: rows separated by ``;``, values by ``,`` or spaces.

Kernel files are read with :mod:`convcli.io.arrays`' readers (``.npy`` and ``.npz`` always
with ``allow_pickle=False``; an ``.npz`` holds ``W`` and optionally ``b``).  A kernel file that
is missing, a directory or unreadable is an :class:`~convcli.errors.InputFileError` (exit code
3, like any input); bad content is a :class:`~convcli.errors.KernelSpecError` naming the
kernel file.

Neighbours: the built-in names are :mod:`convcli.kernels.builtins`; the checks every kernel
passes, :mod:`convcli.kernels.kernel`; stacking kernels into a layer, :mod:`convcli.kernels.bank`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from typing import Any, Optional

import numpy as np

from ..errors import InputFileError, KernelSpecError, one_line, quote
from ..io.arrays import choose_member, load_npy, load_npz, load_text, parse_row, stack_rows
from ..io.inputs import sniff
from ..io.streams import read_source
from .builtins import BUILTINS
from .kernel import Kernel, check_bias, check_weights

__all__ = ["KERNEL_FILE_EXTENSIONS", "load_kernel_bytes", "parse_kernel"]

# Kernel-file formats by extension: what -k reads, a different set from the output formats
# (text and JSON, no images), so kept here rather than in convcli.io.formats.
_FORMAT_BY_EXTENSION = {".npy": "npy", ".npz": "npz", ".txt": "text", ".csv": "text", ".json": "json"}

#: File extensions read as kernel files (compared case-insensitively).
KERNEL_FILE_EXTENSIONS: tuple[str, ...] = tuple(_FORMAT_BY_EXTENSION)

_IMAGEMAGICK = re.compile(r"^(\d+)(?:\s*[xX]\s*(\d+))?\s*([+-]\d+[+-]\d+)?\s*:(.*)$", re.S)

# What a kernel file named .npy or .npz lacks when its bytes are not that format.
_NOT_FORMAT = {"npy": "no NumPy header", "npz": "not a zip archive"}


# ---------------------------------------------------------------- text matrices


def _numbers(text: str, where: str, row: str) -> list[float]:
    """:func:`~convcli.io.arrays.parse_row`, its message after ``where``."""
    try:
        return parse_row(text, row)
    except ValueError as error:
        raise KernelSpecError(f"{where}: {error}") from None


def _parse_inline(spec: str) -> np.ndarray:
    """``"1,2,1;2,4,2;1,2,1"`` -> 3×3; ``"1 2 1"`` -> 1×3."""
    where = f"inline kernel {quote(spec)}"
    parts = spec.strip().rstrip(";").split(";")
    names = [f"row {i}" for i in range(1, len(parts) + 1)]
    rows = [_numbers(part, where, name) for part, name in zip(parts, names)]
    try:
        matrix = stack_rows(rows, names)
    except ValueError as error:
        raise KernelSpecError(f"{where}: {error}") from None
    return check_weights(matrix, where)


def _parse_imagemagick(spec: str, match: re.Match[str]) -> np.ndarray:
    """ImageMagick's ``"WxH: v,v,..."``: W columns, H rows, values row by row."""
    where = f"ImageMagick kernel {quote(spec)}"
    if len(match.group(1)) > 9 or len(match.group(2) or "") > 9:  # int() refuses over 4300 digits
        raise KernelSpecError(f"{where}: W and H must have at most 9 digits")
    width = int(match.group(1))
    height = int(match.group(2)) if match.group(2) is not None else width
    if width < 1 or height < 1:
        raise KernelSpecError(f"{where}: W and H must be at least 1, got {width}x{height}")
    if match.group(3) is not None:
        raise KernelSpecError(
            f"{where}: origin offsets ({match.group(3)}) are not supported; convcli centres every kernel"
        )
    body = match.group(4).strip().rstrip(";")
    if not body:
        raise KernelSpecError(f"{where}: no values after ':'; expected {width}×{height} = {width * height} numbers")
    if ";" in body:  # rows written out: check them against W and H
        rows = [_numbers(p, where, f"row {i}") for i, p in enumerate(body.split(";"), 1)]
        for i, row in enumerate(rows, 1):
            if len(row) != width:
                count = f"{len(row)} value" if len(row) == 1 else f"{len(row)} values"
                raise KernelSpecError(
                    f"{where}: row {i} has {count} but W={width}; 'WxH:' means W columns and H rows"
                )
        if len(rows) != height:
            raise KernelSpecError(f"{where}: {len(rows)} rows but H={height}; 'WxH:' means W columns and H rows")
        values = [v for row in rows for v in row]
    else:
        values = _numbers(body, where, "the values")
    if len(values) != width * height:
        raise KernelSpecError(
            f"{where}: needs {width}×{height} = {width * height} values (W={width} columns × H={height} rows, "
            f"row by row), got {len(values)}"
        )
    return check_weights(np.array(values, dtype=np.float64).reshape(height, width), where)


# ---------------------------------------------------------------- kernel files


def _kernel_format(data: bytes) -> str:
    """npy or npz by their magic bytes, json when the text starts with ``[`` or ``{``, else text."""
    kind = sniff(data)
    if kind in ("npy", "npz"):
        return kind
    return "json" if data.lstrip()[:1] in (b"[", b"{") else "text"


def _read_npz(data: bytes, where: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Arrays ``W`` and the optional ``b`` of an ``.npz``; any other name is refused.

    The rule is :func:`~convcli.io.arrays.choose_member`'s, with ``companions=("b",)``.
    """
    arrays = load_npz(data, where)
    weights = choose_member(arrays, ("W",), where, companions=("b",), error=KernelSpecError)
    return arrays[weights], arrays.get("b")


def _json_shape(obj: Any, where: str, path: str) -> tuple[int, ...]:
    """Shape of a nested list of numbers; refuses ragged lists and non-numbers."""
    if isinstance(obj, list):
        shapes = [_json_shape(item, where, f"{path}[{i}]") for i, item in enumerate(obj)]
        for i, shape in enumerate(shapes):
            if shape != shapes[0]:
                raise KernelSpecError(
                    f"{where}: {path} is ragged: item [0] has shape {shapes[0]} but item [{i}] has {shape}"
                )
        return (len(obj), *(shapes[0] if shapes else ()))
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        shown = json.dumps(obj)
        shown = shown if len(shown) <= 24 else shown[:21] + "..."  # a short part of the file, never more
        raise KernelSpecError(f"{where}: {path} is {shown}, expected a number or a list of numbers")
    return ()


def _read_json(data: bytes, where: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise KernelSpecError(f"{where} is not a text file (not UTF-8); expected JSON") from None
    except json.JSONDecodeError as error:
        raise KernelSpecError(
            f"{where} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    bias_obj: Any = None
    if isinstance(obj, dict):
        extra = [k for k in obj if k not in ("W", "b")]
        if "W" not in obj or extra:  # a file that is not a kernel: its keys are not echoed
            keys = ", ".join(quote(k, 16) for k in extra[:3]) + (", ..." if len(extra) > 3 else "")
            has = f"it also has {keys}" if "W" in obj else f"it has {len(obj)} other key(s)"
            raise KernelSpecError(f"{where}: a JSON object needs key 'W' and optionally 'b'; {has}")
        obj, bias_obj = obj["W"], obj.get("b")
    _json_shape(obj, where, "W")
    weights = np.array(obj, dtype=np.float64)
    bias = None
    if bias_obj is not None:
        _json_shape(bias_obj, where, "b")
        bias = np.array(bias_obj, dtype=np.float64)
    return weights, bias


def load_kernel_bytes(data: bytes, fmt: Optional[str] = None, *, label: str = "kernel",
                      where: Optional[str] = None) -> Kernel:
    """Read a kernel file's bytes.

    Parameters
    ----------
    data : bytes
        The file's contents.
    fmt : {"npy", "npz", "text", "json"}, optional
        The format; sniffed from the first bytes when None (NumPy or zip magic, see
        :func:`~convcli.io.inputs.sniff`; ``[`` or ``{``; else text).
    label : str
        The kernel's label.
    where : str, optional
        How error messages name the source; default ``"kernel file '<label>'"`` (``repr`` quoting).

    Returns
    -------
    Kernel
        ``.npy``: the array.  ``.npz``: array ``W``, optional ``b``.  Text: rows of
        numbers separated by commas or spaces, ``#`` comments.  JSON: nested lists, or
        ``{"W": ..., "b": ...}``.  Weights of shape (FH, FW) or (FN, C/groups, FH,
        FW); 1-D is one row.  ``.npy``, ``.npz`` and text are read by
        :mod:`convcli.io.arrays` (``.npy`` and ``.npz`` with ``allow_pickle=False``,
        always), their messages put after ``where``.

    Raises
    ------
    KernelSpecError
        A corrupt or unreadable file, a pickled object array, a 3-D array, nan/inf,
        an empty kernel - one line, no traceback.
    """
    where = where or f"kernel file {label!r}"
    fmt = fmt or _kernel_format(data)
    if fmt in _NOT_FORMAT and sniff(data) != fmt:  # the extension said npy or npz, the bytes do not
        raise KernelSpecError(f"{where} is not a .{fmt} file ({_NOT_FORMAT[fmt]})")
    weights: np.ndarray
    bias: Optional[np.ndarray] = None
    try:
        if fmt == "npy":
            weights = load_npy(data, where)
        elif fmt == "npz":
            weights, bias = _read_npz(data, where)
        elif fmt == "json":
            weights, bias = _read_json(data, where)
        else:
            weights = load_text(data, where)
    except KernelSpecError:
        raise
    except InputFileError as error:
        raise KernelSpecError(f"{where} cannot be read as {fmt}: {error.reason}") from None
    except Exception as error:  # whatever a corrupt JSON file makes the library raise (overflow, recursion)
        raise KernelSpecError(f"{where} cannot be read as {fmt}: {one_line(error)}") from None
    checked = check_weights(weights, where)
    return Kernel(checked, None if bias is None else check_bias(bias, checked, where), _safe_label(label))


def _load_file(path: str) -> Kernel:
    """A kernel file: missing, a directory or unreadable is an InputFileError (exit 3), bad content not."""
    where = f"kernel file {path!r}"
    if os.path.isdir(path):
        raise InputFileError(f"{where} is a directory; expected a kernel file")
    data = read_source(path, role="kernel", what="kernel file")  # bounded; devices refused, FIFOs never hang
    stem, ext = os.path.splitext(os.path.basename(path))
    return load_kernel_bytes(data, _FORMAT_BY_EXTENSION.get(ext.lower()), label=stem, where=where)


def _safe_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._") or "kernel"


# ---------------------------------------------------------------- parse_kernel


def _looks_inline(spec: str) -> bool:
    """True when some token of the spec is a number: parse it as a matrix."""
    for token in re.split(r"[,;\s]+", spec):
        try:
            float(token)
        except ValueError:
            continue
        return True
    return False


def parse_kernel(spec: str) -> Kernel:
    """Turn a kernel spec into a :class:`~convcli.kernels.kernel.Kernel`.

    Parameters
    ----------
    spec : str
        ``-`` (a kernel file on stdin), a file ending in .npy/.npz/.txt/.csv/.json, a
        built-in ``NAME[:ARG...]`` (see :data:`~convcli.kernels.builtins.BUILTINS`; case-insensitive), an
        ImageMagick ``"WxH: v,v,..."`` / ``"N: ..."`` (W columns, values row by row),
        another existing file (sniffed), or an inline matrix ``"1,2,1;2,4,2;1,2,1"``
        (rows by ``;``, values by ``,`` or spaces), tried in that order.

    Returns
    -------
    Kernel
        weights of shape (FH, FW), or (FN, C/groups, FH, FW) from a 4-D file; a bias
        only from files.  Labels: the built-in name with its arguments joined by
        ``-`` ("gaussian-2"), "inline", the file's stem, or "stdin".

    Raises
    ------
    KernelSpecError
        One line saying what is wrong and what was expected; an unknown name gets a
        did-you-mean.
    InputFileError
        A kernel file that is missing, a directory or unreadable.

    Examples
    --------
    >>> parse_kernel("3x2: 1,2,3,4,5,6").weights
    array([[1., 2., 3.],
           [4., 5., 6.]])
    """
    text = spec.strip()
    if not text:
        raise KernelSpecError(
            "empty kernel spec; expected a name (sobel-x, gaussian:2; see 'convcli kernels'), an inline matrix "
            "('1,2,1;2,4,2;1,2,1') or a file (.npy, .npz, .txt, .csv, .json)"
        )
    if text == "-":
        return load_kernel_bytes(read_source("-", role="kernel"), label="stdin", where="kernel from standard input")
    if os.path.splitext(text)[1].lower() in KERNEL_FILE_EXTENSIONS:
        return _load_file(text)
    name, *args = text.split(":")
    name = name.strip().lower().replace("_", "-")
    if name in BUILTINS:
        weights = BUILTINS[name].make(args)
        return Kernel(weights, None, _safe_label("-".join([name, *(a.strip() for a in args)])))
    match = _IMAGEMAGICK.match(text)
    if match:
        return Kernel(_parse_imagemagick(text, match), None, "inline")
    if os.path.exists(text) and not os.path.isdir(text):  # a file, or a device or FIFO the reader refuses
        return _load_file(text)
    if os.path.isdir(text):
        raise InputFileError(
            f"kernel {quote(text, 200)} is a directory; expected a kernel file, a built-in name or a matrix"
        )
    if re.fullmatch(r"\d+\s*[xX]\s*\d+", text):
        raise KernelSpecError(
            f"ImageMagick kernel {quote(text)} has no values; write {quote(text + ': v,v,...')} (row by row)"
        )
    if _looks_inline(text):
        return Kernel(_parse_inline(text), None, "inline")
    if "/" in text or "\\" in text:
        raise InputFileError(f"kernel file {quote(text, 200)} not found")
    typed = text.split(":")[0].strip()
    close = difflib.get_close_matches(name, list(BUILTINS), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise KernelSpecError(f"unknown kernel {quote(typed)}{hint} (convcli kernels lists them)")
