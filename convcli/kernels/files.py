"""Kernel files: what ``-k`` reads from a ``.npy``, ``.npz``, text or JSON file, or from standard input.

:func:`load_kernel_bytes` reads a kernel file's bytes (format by extension or sniffed),
:func:`load_kernel_file` a path.  Files are read with :mod:`convcli.io.arrays`' readers
(``.npy`` and ``.npz`` always with ``allow_pickle=False``; an ``.npz`` holds ``W`` and
optionally ``b``).  A kernel file that is missing, a directory or unreadable is an
:class:`~convcli.errors.InputFileError` (exit code 3, like any input); bad content is a
:class:`~convcli.errors.KernelSpecError` naming the kernel file.

Neighbours: the spec parser that sends paths here is :mod:`convcli.kernels.spec`; the checks
every kernel passes, :mod:`convcli.kernels.kernel`.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Optional

import numpy as np

from ..errors import InputFileError, KernelSpecError, one_line, quote
from ..io.arrays import choose_member, load_npy, load_npz, load_text
from ..io.inputs import sniff
from ..io.streams import read_source
from .kernel import Kernel, check_bias, check_weights

__all__ = ["KERNEL_FILE_EXTENSIONS", "load_kernel_bytes", "load_kernel_file", "safe_label"]

# Kernel-file formats by extension: what -k reads, a different set from the output formats
# (text and JSON, no images), so kept here rather than in convcli.io.formats.
_FORMAT_BY_EXTENSION = {".npy": "npy", ".npz": "npz", ".txt": "text", ".csv": "text", ".json": "json"}

#: File extensions read as kernel files (compared case-insensitively).
KERNEL_FILE_EXTENSIONS: tuple[str, ...] = tuple(_FORMAT_BY_EXTENSION)

# What a kernel file named .npy or .npz lacks when its bytes are not that format.
_NOT_FORMAT = {"npy": "no NumPy header", "npz": "not a zip archive"}


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
    return Kernel(checked, None if bias is None else check_bias(bias, checked, where), safe_label(label))


def load_kernel_file(path: str) -> Kernel:
    """A kernel file: missing, a directory or unreadable is an InputFileError (exit 3), bad content not."""
    where = f"kernel file {path!r}"
    if os.path.isdir(path):
        raise InputFileError(f"{where} is a directory; expected a kernel file")
    data = read_source(path, role="kernel", what="kernel file")  # bounded; devices refused, FIFOs never hang
    stem, ext = os.path.splitext(os.path.basename(path))
    return load_kernel_bytes(data, _FORMAT_BY_EXTENSION.get(ext.lower()), label=stem, where=where)


def safe_label(text: str) -> str:
    """``text`` as a file-name-safe label: runs of other characters become ``_``; "kernel" when nothing is left."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._") or "kernel"


# ---------------------------------------------------------------- parse_kernel
