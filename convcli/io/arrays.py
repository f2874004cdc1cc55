"""Decoding array bytes: ``.npy``, ``.npz`` and text arrays into ndarrays, and the one ``.npz`` member rule.

:func:`load_npy` and :func:`load_npz` read with ``allow_pickle=False``, always, and turn
whatever numpy or zipfile raise on untrusted bytes into one
:class:`~convcli.errors.InputFileError`; :func:`load_text` reads rows of numbers
(:func:`parse_row`, :func:`stack_rows`, which the inline kernel parser shares).
:func:`choose_member` is the one rule by which every reader picks the array it wants from
an ``.npz``: an input (``x``), an upstream gradient (``dout`` or ``y``), a kernel file
(``W`` and ``b``), ``convcli info``.

Neighbours: where bytes come from (files, ``-``) and how formats are told apart is
:mod:`convcli.io.inputs`; images are :mod:`convcli.io.images`; writing ``.npy``/``.npz``
is :mod:`convcli.io.outputs`.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any, Literal, Optional, overload

import numpy as np
from numpy.typing import NDArray

from ..errors import ConvcliError, InputFileError, one_line, quote, reworded_warnings

__all__ = [
    "NPY_MAGIC", "NPZ_MAGIC", "choose_member", "load_npy", "load_npz", "load_text", "parse_row", "stack_rows",
]

#: The first bytes of a ``.npy`` file.
NPY_MAGIC = b"\x93NUMPY"
#: The first bytes of a ``.npz`` file (a zip archive: a local file header, or an empty archive's end record).
NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

_VALUE_SEP = re.compile(r"\s*,\s*|\s+")
_PICKLED = (
    "holds Python objects (pickled data), which convcli never loads (allow_pickle=False); save a numeric array instead"
)


@contextmanager
def _untrusted(name: str, kind: str) -> Iterator[None]:
    """Turn whatever numpy or zipfile raise on untrusted bytes into one :class:`InputFileError`."""
    try:
        yield
    except InputFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _pickled(name) from None
        raise _corrupt(name, kind, exc) from None
    except Exception as exc:  # numpy's header parser and zipfile raise many kinds
        raise _corrupt(name, kind, exc) from None


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
    if not data.startswith(NPY_MAGIC):
        raise _unreadable(name, ".npy", "it does not start with the .npy magic bytes")
    with _untrusted(name, ".npy"), reworded_warnings(name):
        _check_npy_size(io.BytesIO(data), len(data), name)
        array = np.load(io.BytesIO(data), allow_pickle=False)
    if not isinstance(array, np.ndarray):
        raise _unreadable(name, ".npy", "it holds no array")
    return array


def _check_npy_size(stream: IO[bytes], size: int, name: str, kind: str = ".npy") -> None:
    """Refuse a .npy of ``size`` bytes whose header promises more bytes than follow (before numpy allocates them)."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype.hasobject:
        raise _pickled(name)
    needed = math.prod(int(n) for n in shape) * dtype.itemsize
    present = size - stream.tell()
    if needed > present:
        raise _unreadable(
            name, kind, f"it is truncated (shape {tuple(shape)} of {dtype} needs {needed} bytes of data, "
            f"{present} found)"
        )


def _unreadable(name: str, kind: str, reason: str) -> InputFileError:
    """``cannot read 'NAME' as KIND: REASON``, keeping REASON as the error's ``reason``."""
    return InputFileError(f"cannot read {name!r} as {kind}: {reason}", reason)


def _pickled(name: str) -> InputFileError:
    return InputFileError(f"{name!r} {_PICKLED}", f"it {_PICKLED}")


def _corrupt(name: str, kind: str, exc: BaseException) -> InputFileError:
    return _unreadable(name, kind, one_line(exc, 120))


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
    with _untrusted(name, ".npz"), reworded_warnings(name), np.load(io.BytesIO(data), allow_pickle=False) as archive:
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise _unreadable(name, ".npz", "it is not a zip archive")
        _check_npz_sizes(archive, name)
        for key in archive.files:
            value = archive[key]
            if not isinstance(value, np.ndarray):  # numpy hands back the raw bytes of a non-.npy member
                raise _unreadable(name, ".npz", f"member {key!r} is not a .npy array")
            arrays[key] = value
    return arrays


def _check_npz_sizes(archive: Any, name: str) -> None:
    """Refuse an .npz whose members would decompress to more than the machine holds, or promise more than they have.

    A zip member's size is in the archive's directory, and each member's .npy header says
    how much data it holds: both are checked before numpy allocates (a compressed member
    can expand a thousandfold).
    """
    from .limits import format_bytes, machine_memory

    infos = archive.zip.infolist()
    total = sum(info.file_size for info in infos)
    memory = machine_memory()
    if memory is not None and total > memory:
        raise _unreadable(
            name, ".npz", f"its members hold {format_bytes(total)}, more than this machine's {format_bytes(memory)} "
            "of memory"
        )
    for info in infos:
        if not info.filename.endswith(".npy"):
            continue
        with archive.zip.open(info) as member:
            if member.read(6) != NPY_MAGIC:
                continue
            with archive.zip.open(info) as member:
                _check_npy_size(member, info.file_size, f"{name}:{info.filename[:-4]}", ".npz member")


def parse_row(text: str, row: str) -> list[float]:
    """The numbers of one row of text, separated by commas and/or white space.

    Parameters
    ----------
    text : str
        The row, e.g. ``"1, 2 3"``.
    row : str
        How messages name the row ("line 3", "row 2").

    Returns
    -------
    list of float

    Raises
    ------
    ValueError
        An empty value (``1,,2``) or one that is not a number; the message names the row
        and the value's place, not the source (callers add it).
    """
    compact = "".join(text.split())  # an empty value shows here as a leading, trailing or doubled comma
    if compact and compact[0] != "," and compact[-1] != "," and ",," not in compact:
        try:
            return [float(token) for token in text.replace(",", " ").split()]
        except ValueError:
            pass
    out = []  # the slow way, that says which value is wrong
    for i, token in enumerate(_VALUE_SEP.split(text.strip()), 1):
        if token == "":
            raise ValueError(f"empty value in {row} (value {i}); separate numbers by one ',' or spaces")
        try:
            out.append(float(token))
        except ValueError:
            raise ValueError(f"{quote(token, 24)} is not a number ({row}, value {i})") from None
    return out


def stack_rows(rows: Sequence[list[float]], names: Sequence[str]) -> NDArray[np.float64]:
    """Rows from :func:`parse_row` as one matrix.

    Parameters
    ----------
    rows : sequence of list of float
        At least one row.
    names : sequence of str
        The rows' names for messages, as given to :func:`parse_row`.

    Returns
    -------
    ndarray, shape (len(rows), len(rows[0])), float64

    Raises
    ------
    ValueError
        Rows of different lengths (the message names the first that differs).
    """
    for values, name in zip(rows, names):
        if len(values) != len(rows[0]):
            count = f"{len(values)} value" if len(values) == 1 else f"{len(values)} values"
            raise ValueError(f"{name} has {count} but {names[0]} has {len(rows[0])}; every row needs the same number")
    return np.array(rows, dtype=np.float64)


def _starts_with_number(line: str) -> bool:
    token = _VALUE_SEP.split(line.strip(), 1)[0]
    try:
        float(token)
    except ValueError:
        return False
    return True


def load_text(data: bytes, name: str) -> NDArray[np.float64]:
    """Read a text array: one row per line, values separated by commas and/or white space.

    ``#`` starts a comment, to the end of the line; blank lines are skipped.

    Returns
    -------
    ndarray, shape (rows, columns), float64

    Raises
    ------
    InputFileError
        Not UTF-8 text, no numbers, ragged rows, or a value that is not a number (its
        line and place named, and the value quoted, shortened; but a file whose first
        value is no number is not a text array, and nothing of it is quoted).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _unreadable(name, "a text array", "it is not UTF-8 text") from None
    rows: list[list[float]] = []
    names: list[str] = []
    try:
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(f"line {lineno}")
                if not rows and not _starts_with_number(line):
                    # not a text array at all (a password file, a script): say so without quoting it
                    raise ValueError(f"its first value ({names[-1]}) is not a number; it is not a text array")
                rows.append(parse_row(line, names[-1]))
        if not rows:
            raise ValueError("it is empty (no numbers, only blank lines or comments)")
        return stack_rows(rows, names)
    except ValueError as exc:
        raise _unreadable(name, "a text array", str(exc)) from None


# ---------------------------------------------------------------- which member of an .npz


@overload
def choose_member(
    arrays: Mapping[str, NDArray[Any]], preferred: Sequence[str], what: str, *,
    companions: Sequence[str] = ..., several: Literal["error"] = ..., error: type[ConvcliError] = ...,
) -> str: ...
@overload
def choose_member(
    arrays: Mapping[str, NDArray[Any]], preferred: Sequence[str], what: str, *,
    companions: Sequence[str] = ..., several: Literal["none"], error: type[ConvcliError] = ...,
) -> Optional[str]: ...
def choose_member(
    arrays: Mapping[str, NDArray[Any]],
    preferred: Sequence[str],
    what: str,
    *,
    companions: Sequence[str] = (),
    several: Literal["error", "none"] = "error",
    error: type[ConvcliError] = InputFileError,
) -> Optional[str]:
    """The name of the member of an ``.npz`` a reader takes: one rule for every reader.

    The first of ``preferred`` that the archive holds; else its only member, whatever its
    name; else an error that names what it holds and what was expected.  With
    ``companions`` the archive is closed instead: it must hold ``preferred[0]`` and nothing
    but ``companions`` besides.

    ============================  =================  ==============
    reader                        ``preferred``      ``companions``
    ============================  =================  ==============
    an input (apply, grad, info)  ``("x",)``
    ``--dout``                    ``("dout", "y")``
    a kernel file                 ``("W",)``         ``("b",)``
    ============================  =================  ==============

    Parameters
    ----------
    arrays : mapping of str to ndarray
        The archive's members (:func:`load_npz`), in file order.
    preferred : sequence of str
        Member names in order of preference; at least one.
    what : str
        How messages name the archive ("'x.npz'", "--dout 'g.npz'", "kernel file 'k.npz'").
    companions : sequence of str
        Names allowed besides ``preferred[0]``; given, every other name is refused.
    several : {"error", "none"}
        What several members, none of them preferred, give: an error, or None (the caller
        then takes every member, as ``convcli info`` does).
    error : type of ConvcliError
        The error raised (a kernel file's is :class:`~convcli.errors.KernelSpecError`).

    Returns
    -------
    str or None
        A key of ``arrays``; None only for ``several="none"``.

    Raises
    ------
    ConvcliError
        Of type ``error``: no member fits (an empty archive, several and none preferred,
        a closed archive without ``preferred[0]`` or with another name).

    Examples
    --------
    >>> import numpy as np
    >>> choose_member({"a": np.zeros(1), "x": np.ones(2)}, ("x",), "'in.npz'")
    'x'
    >>> choose_member({"y": np.zeros(1)}, ("dout", "y"), "--dout 'g.npz'")
    'y'
    >>> choose_member({"a": np.zeros(1), "b": np.ones(1)}, ("x",), "'in.npz'", several="none") is None
    True
    """
    if companions:
        extra = [n for n in arrays if n != preferred[0] and n not in companions]
        if preferred[0] in arrays and not extra:
            return preferred[0]
        wanted = f"an array named {preferred[0]!r}" + "".join(f" and optionally {c!r}" for c in companions)
        savez = ", ".join(f"{n}=..." for n in (preferred[0], *companions))
        has = ", ".join(arrays) or "nothing"
        raise error(f"{what} must hold {wanted} (np.savez(path, {savez})); it has {has}")
    found = next((n for n in preferred if n in arrays), None)
    if found is not None:
        return found
    if len(arrays) == 1:
        return next(iter(arrays))
    if several == "none" and len(arrays) > 1:
        return None
    names = ", ".join(sorted(arrays))
    if len(preferred) > 1:
        raise error(
            f"{what} holds {names or 'no arrays'}; expected an array named {' or '.join(preferred)}, or a single array"
        )
    if not arrays:
        raise error(f"{what} is an empty .npz archive")
    raise error(f"{what} holds several arrays ({names}) and none named {preferred[0]!r}; "
                f"expected {preferred[0]!r} or a single array")
