"""``convcli info``: what convcli makes of each file: shape, dtype and statistics, one row per input.

:func:`info_rows` reads each source once, as ``apply`` and ``grad`` would read it, and
returns one :class:`InfoRow` per input; an ``.npz`` holding several arrays and none named
``x`` (such as ``grad`` writes) gives one row per array, as stored
(:func:`convcli.io.arrays.choose_member` with ``several="none"``).

Neighbours: reading and sniffing inputs is :mod:`convcli.io.inputs`, ``.npz`` members
:mod:`convcli.io.arrays`; the table is printed by :mod:`convcli.cli.info`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from numpy.typing import NDArray

from ..errors import one_line
from ..io.arrays import choose_member, load_npz
from ..io.inputs import STDIN_NAME, array_input, decode_input, read_source, sniff
from ..io.limits import DEFAULTS, ReadLimits
from .common import format_shape

__all__ = ["COLUMNS", "InfoRow", "info_rows"]

#: The columns of :meth:`InfoRow.cells`.
COLUMNS: tuple[str, ...] = ("file", "kind", "shape (N, C, H, W)", "dtype", "min", "max", "mean", "notes")


@dataclass
class InfoRow:
    """One row of ``convcli info``.

    Attributes
    ----------
    name : str
        The source (``<stdin>`` for ``-``), or ``SOURCE:MEMBER`` for one array of an ``.npz``.
    kind : str
        "image", "array", or "npz member" (an array as stored, not read as an input).
    data : ndarray
        The array as convcli reads it: (N, C, H, W) for an input, any shape for an npz member.
    notes : list of str
    """

    name: str
    kind: str
    data: NDArray[Any]
    notes: list[str] = field(default_factory=list)

    def cells(self) -> tuple[str, ...]:
        """The row as text, in the order of :data:`COLUMNS`.

        The shape as ``N×C×H×W`` (``()`` for a 0-D member); min, max and mean to 6
        significant digits (the mean in float64), ``-`` for an empty or non-numeric array.
        """
        data = self.data
        notes = "shape as stored" if self.kind == "npz member" else "; ".join(self.notes)
        shape = format_shape(data.shape) or ("()" if self.kind == "npz member" else "")
        return (self.name, self.kind, shape, str(data.dtype), *_stats(data), notes)

    def record(self) -> dict[str, Any]:
        """The row for ``convcli info --json``: the same facts as numbers and lists.

        ``shape`` is a list of ints; ``min``, ``max`` and ``mean`` are numbers (None for an
        empty or non-numeric array, and the strings "nan", "inf", "-inf" for non-finite
        values, which JSON has no numbers for); ``notes`` a list of strings.
        """
        low, high, mean = _values(self.data)
        notes = ["shape as stored"] if self.kind == "npz member" else list(self.notes)
        return {
            "file": self.name, "kind": self.kind, "shape": [int(n) for n in self.data.shape],
            "dtype": str(self.data.dtype), "min": _json_number(low), "max": _json_number(high),
            "mean": _json_number(mean), "notes": notes,
        }


def _values(data: NDArray[Any]) -> tuple[Optional[float], Optional[float], Optional[float]]:
    if data.size == 0 or data.dtype.kind not in "biuf":
        return None, None, None
    return float(data.min()), float(data.max()), float(data.mean(dtype="float64"))


def _json_number(value: Optional[float]) -> Union[None, float, str]:
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _stats(data: NDArray[Any]) -> tuple[str, str, str]:
    """min, max and mean as text; '-' for an empty or non-numeric array."""
    low, high, mean = _values(data)
    if low is None:
        return "-", "-", "-"
    return f"{low:.6g}", f"{high:.6g}", f"{mean:.6g}"


def info_rows(sources: Sequence[str], *, gray: bool = False, keep_alpha: bool = False,
              limits: ReadLimits = DEFAULTS) -> list[InfoRow]:
    """One row per input (per array of a multi-array ``.npz`` without ``x``), each source read once.

    Parameters
    ----------
    sources : sequence of str
        Paths or ``-`` (standard input, read once).
    gray, keep_alpha : bool
        As ``apply`` reads inputs (:func:`convcli.io.inputs.load_input`).
    limits : ReadLimits
        How many pixels an image may decode to (``--max-pixels``).

    Returns
    -------
    list of InfoRow
        A library's warning about a file (a Python 2 ``.npy`` header, a TIFF's odd tags)
        is one of its row's notes, once.

    Raises
    ------
    InputFileError, ShapeError
        A source that cannot be read as an input.
    """
    rows: list[InfoRow] = []
    for source in sources:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", RuntimeWarning)
            found = _rows_of(source, gray=gray, keep_alpha=keep_alpha, limits=limits)
        said = list(dict.fromkeys(_warning_note(record.message, source) for record in caught))
        for row in found:
            row.notes.extend(note for note in said if note not in row.notes)
        rows.extend(found)
    return rows


def _warning_note(message: object, source: str) -> str:
    """A warning as a note of its file's row: one line, without the file's name in front."""
    text = one_line(message, 240)
    for prefix in (f"{source!r}: ", f"{STDIN_NAME!r}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _rows_of(source: str, *, gray: bool, keep_alpha: bool, limits: ReadLimits) -> list[InfoRow]:
    raw = read_source(source, limits=limits)  # once: standard input cannot be read twice
    if sniff(raw) == "npz":
        name = STDIN_NAME if source == "-" else source
        arrays = load_npz(raw, name)
        member = choose_member(arrays, ("x",), repr(name), several="none")
        if member is None:  # not one input: a row per array, as stored
            return [InfoRow(f"{source}:{key}", "npz member", value) for key, value in arrays.items()]
        item = array_input(arrays[member], source, gray=gray)
    else:
        item = decode_input(raw, source, gray=gray, keep_alpha=keep_alpha, limits=limits)
    return [InfoRow(item.name, item.kind, item.data, list(item.notes))]
