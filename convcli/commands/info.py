"""``convcli info``: what convcli makes of each file: shape, dtype and statistics, one row per input.

:func:`info_rows` reads each source once, as ``apply`` and ``grad`` would read it, and
returns one :class:`InfoRow` per input; an ``.npz`` holding several arrays and none named
``x`` (such as ``grad`` writes) gives one row per array, as stored
(:func:`convcli.io.arrays.choose_member` with ``several="none"``).

Neighbours: reading and sniffing inputs is :mod:`convcli.io.inputs`, ``.npz`` members
:mod:`convcli.io.arrays`; the table is printed by :mod:`convcli.cli.info`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from numpy.typing import NDArray

from ..io.arrays import choose_member, load_npz
from ..io.inputs import STDIN_NAME, array_input, decode_input, read_source, sniff
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


def _stats(data: NDArray[Any]) -> tuple[str, str, str]:
    """min, max and mean as text; '-' for an empty or non-numeric array."""
    if data.size == 0 or data.dtype.kind not in "biuf":
        return "-", "-", "-"
    return f"{data.min():.6g}", f"{data.max():.6g}", f"{data.mean(dtype='float64'):.6g}"


def info_rows(sources: Sequence[str], *, gray: bool = False, keep_alpha: bool = False) -> list[InfoRow]:
    """One row per input (per array of a multi-array ``.npz`` without ``x``), each source read once.

    Parameters
    ----------
    sources : sequence of str
        Paths or ``-`` (standard input, read once).
    gray, keep_alpha : bool
        As ``apply`` reads inputs (:func:`convcli.io.inputs.load_input`).

    Returns
    -------
    list of InfoRow

    Raises
    ------
    InputFileError, ShapeError
        A source that cannot be read as an input.
    """
    rows: list[InfoRow] = []
    for source in sources:
        raw = read_source(source)  # once: standard input cannot be read twice
        if sniff(raw) == "npz":
            name = STDIN_NAME if source == "-" else source
            arrays = load_npz(raw, name)
            member = choose_member(arrays, ("x",), repr(name), several="none")
            if member is None:  # not one input: a row per array, as stored
                rows.extend(InfoRow(f"{source}:{key}", "npz member", value) for key, value in arrays.items())
                continue
            item = array_input(arrays[member], source, gray=gray)
        else:
            item = decode_input(raw, source, gray=gray, keep_alpha=keep_alpha)
        rows.append(InfoRow(item.name, item.kind, item.data, item.notes))
    return rows
