"""The kernel-spec parser: what a user writes after ``--kernel``, read into kernels (:class:`KernelSpec`).

:func:`parse_kernels` understands, in this order:

``-``
    A kernel file read from standard input (format sniffed from its first bytes).
``PATH.npy``, ``.npz``, ``.txt``, ``.csv``, ``.json``
    A kernel file (:mod:`convcli.kernels.files`); missing is an error.
``NAME[:ARG[:ARG]]``
    A convcli built-in from :data:`convcli.kernels.builtins.BUILTINS`, e.g. ``sobel-x``,
    ``gaussian:2``, ``box:5``.  Names are case-insensitive and ``_`` may stand for ``-``.
``NAME[:ARGS]`` of ImageMagick
    ImageMagick's named kernels (:mod:`convcli.kernels.imagemagick_named`), read as
    ImageMagick 6 reads them: ``Sobel:45``, ``Kirsch:@`` (also ``Kirsch@``), ``DoG:0,1,2``,
    ``Gaussian:0x2``, ``Laplacian:1``.  Three names are both convcli's and ImageMagick's:
    ``gaussian``, ``log`` and ``laplacian`` are convcli's when their arguments are convcli's
    (none, or ``:``-separated plain numbers that convcli takes: ``gaussian:2``, ``log:1.4``,
    ``laplacian``), ImageMagick's otherwise (``Gaussian:0x2``, ``LoG:0x1.4``,
    ``Laplacian:0``).
``WxH[+X+Y][@><]: v,v,...`` or ``N: v,v,...``
    ImageMagick's user kernel (:mod:`convcli.kernels.imagemagick`): W columns, H rows,
    values row by row (``N`` means N×N), the origin ``+X+Y`` (default the centre,
    ``((W-1)//2, (H-1)//2)``), ``nan`` or ``-`` for a hole, ``@``/``>``/``<`` for its
    rotations.  convcli also takes its rows separated by ``;`` (``"3x3: 1,2,1; 2,4,2;
    1,2,1"``), which ImageMagick refuses.
``A;B;...``
    Several kernels in one string (ImageMagick's lists): each part a name or a ``WxH:``
    kernel; empty parts are skipped.
An existing file
    Any other path that exists; its format is sniffed.
``1,2,1;2,4,2;1,2,1``
    An inline matrix: rows separated by ``;``, values by ``,`` or spaces.  A bare list
    (``"1,2,1,2,4,2,1,2,1"``) is one row, not ImageMagick's old odd square: write ``3:``.

An ImageMagick kernel keeps its origin and holes (:attr:`~convcli.kernels.kernel.Kernel.origin`,
:attr:`~convcli.kernels.kernel.Kernel.taps`; a hole weighs 0).

Neighbours: the built-in names are :mod:`convcli.kernels.builtins`; the checks every kernel
passes, :mod:`convcli.kernels.kernel`; stacking kernels into a layer, :mod:`convcli.kernels.bank`.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputFileError, KernelSpecError, quote
from ..io.arrays import parse_row, stack_rows
from ..io.streams import read_source
from .builtins import BUILTINS, BuiltinKernel
from .files import KERNEL_FILE_EXTENSIONS, load_kernel_bytes, load_kernel_file, safe_label
from .imagemagick import MagickKernel, count_values, parse_array, parse_array_head
from .imagemagick_geometry import parse_geometry
from .imagemagick_named import MAGICK_KERNELS, MORPHOLOGY_ONLY, parse_named, split_name
from .kernel import Kernel, check_weights

__all__ = ["CLASHING_NAMES", "KernelSpec", "magick_to_kernel", "parse_kernel", "parse_kernels"]

#: Names both convcli and ImageMagick define (see the module notes for which one a spec gets).
CLASHING_NAMES: frozenset[str] = frozenset(BUILTINS) & frozenset(MAGICK_KERNELS)

_ARRAY_HEAD = re.compile(r"^\s*\d[^:;]*:")
_PLAIN_NUMBER = re.compile(r"^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$")


@dataclass(frozen=True)
class KernelSpec:
    """What one ``-k`` gave: its kernels and one label for output names.

    Attributes
    ----------
    text : str
        The spec as given.
    kernels : tuple of Kernel
        One, or several for a list (``;``) or a rotation set (``@``, ``>``, ``<``).
    label : str
        The kernel's label; for several, the parts' labels joined by ``+``, a rotation
        set as ``LABEL-xN`` (N kernels).
    """

    text: str
    kernels: tuple[Kernel, ...]
    label: str


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


def _looks_inline(spec: str) -> bool:
    """True when some token of the spec is a number: parse it as a matrix."""
    for token in re.split(r"[,;\s]+", spec):
        try:
            float(token)
        except ValueError:
            continue
        return True
    return False


# ---------------------------------------------------------------- names, ImageMagick kernels, lists


def magick_to_kernel(kernel: MagickKernel) -> Kernel:
    """An ImageMagick kernel as convcli's: holes weigh 0 and are no taps; the origin is (Y, X)."""
    holes = np.isnan(kernel.values)
    return Kernel(np.where(holes, 0.0, kernel.values), None, kernel.label, origin=(kernel.y, kernel.x), taps=~holes)


def _from_magick(kernels: list[MagickKernel]) -> tuple[list[Kernel], str]:
    label = kernels[0].label if len(kernels) == 1 else f"{kernels[0].label}-x{len(kernels)}"
    return [magick_to_kernel(k) for k in kernels], label


def _convcli_form(builtin: BuiltinKernel, args: list[str]) -> bool:
    """Whether a clashing name's ``args`` are convcli's: not ImageMagick's geometry, or convcli's plain numbers.

    convcli's: none, or up to its count of plain numbers (or empty).  Arguments that are
    neither that nor one ImageMagick geometry (``gaussian:abc``, ``gaussian:1:5:7``) stay
    convcli's too, so the message is convcli's.
    """
    if not any(a.strip() for a in args):  # none, or only empty ones ("laplacian:")
        return True
    if len(args) <= builtin.max_args and all(not a.strip() or _PLAIN_NUMBER.match(a) for a in args):
        return True
    return len(args) > 1 or parse_geometry(args[0]) is None


def _parse_part(part: str) -> Optional[tuple[list[Kernel], str]]:
    """A convcli built-in, an ImageMagick name or a ``WxH:`` kernel (no ``;``); None when ``part`` is none of them."""
    text = part.strip()
    name, *args = text.split(":")
    key = name.strip().lower().replace("_", "-")
    if key in BUILTINS and (key not in CLASHING_NAMES or _convcli_form(BUILTINS[key], args)):
        label = safe_label("-".join([key, *(a.strip() for a in args)]))
        return [Kernel(BUILTINS[key].make(args), None, label)], label
    split = split_name(text)
    if split is not None and split[0].lower() in MAGICK_KERNELS.keys() | MORPHOLOGY_ONLY:
        return _from_magick(parse_named(text))
    if _ARRAY_HEAD.match(text):
        return _from_magick(parse_array(text))
    return None


def _parse_list(text: str) -> Optional[tuple[list[Kernel], str]]:
    """A spec holding ``;``: convcli's rows of one ``WxH:`` kernel, a kernel list, or None (an inline matrix)."""
    parts = text.split(";")
    first = next((p for p in parts if p.strip()), "")
    if _ARRAY_HEAD.match(first) and first is parts[0]:
        head, _, body = first.partition(":")
        shape = parse_array_head(head, f"ImageMagick kernel {quote(text)}")
        if count_values(body) < shape.width * shape.height:  # ImageMagick refuses this; convcli reads rows
            rows = text.rstrip().rstrip(";").split(";")[1:]
            return _from_magick(parse_array(first, rows=rows))
    elif _parse_part(first) is None:
        return None
    kernels: list[Kernel] = []
    labels: list[str] = []
    for part in parts:
        if not part.strip():
            continue  # ImageMagick skips empty kernels between separators
        parsed = _parse_part(part)
        if parsed is None:
            raise KernelSpecError(
                f"kernel list {quote(text)}: {quote(part.strip())} is not a kernel name or 'WxH: values' "
                "(';' separates kernels here, as in ImageMagick)"
            )
        kernels.extend(parsed[0])
        labels.append(parsed[1])
    return kernels, "+".join(labels)


def _suggestion(name: str) -> str:
    """"; did you mean 'X'?" for the nearest convcli or ImageMagick name, or ""."""
    names = {n: n for n in BUILTINS}
    names.update({key: entry.name for key, entry in MAGICK_KERNELS.items() if key not in names})
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean '{names[close[0]]}'?" if close else ""


def parse_kernels(spec: str) -> KernelSpec:
    """Turn a kernel spec into its kernels (see the module notes for what is read how).

    Parameters
    ----------
    spec : str
        ``-``, a kernel file, a convcli built-in, an ImageMagick name or ``WxH:`` kernel,
        a ``;`` list of those, another existing file, or an inline matrix, tried in
        that order.

    Returns
    -------
    KernelSpec
        Kernels with weights of shape (FH, FW), or (FN, C/groups, FH, FW) from a 4-D
        file; a bias only from files.  Labels: the built-in name with its arguments
        joined by ``-`` ("gaussian-2"), an ImageMagick name likewise ("sobel-45"; a
        rotation ``-r90``), "inline", the file's stem, or "stdin".

    Raises
    ------
    KernelSpecError
        One line saying what is wrong and what was expected; an unknown name gets a
        did-you-mean.
    InputFileError
        A kernel file that is missing, a directory or unreadable.

    Examples
    --------
    >>> [k.label for k in parse_kernels("Sobel;Sobel:90").kernels]
    ['sobel', 'sobel-90']
    >>> parse_kernels("3x1+0+0: 1,2,3").kernels[0].origin
    (0, 0)
    """
    text = spec.strip()
    if not text.strip(";"):
        raise KernelSpecError(
            "empty kernel spec; expected a name (sobel-x, gaussian:2, Sobel:45; see 'convcli kernels'), an inline "
            "matrix ('1,2,1;2,4,2;1,2,1') or a file (.npy, .npz, .txt, .csv, .json)"
        )
    if text == "-":
        kernel = load_kernel_bytes(read_source("-", role="kernel"), label="stdin", where="kernel from standard input")
        return KernelSpec(spec, (kernel,), kernel.label)
    if os.path.splitext(text)[1].lower() in KERNEL_FILE_EXTENSIONS:
        kernel = load_kernel_file(text)
        return KernelSpec(spec, (kernel,), kernel.label)
    parsed = _parse_list(text) if ";" in text else _parse_part(text)
    if parsed is not None:
        return KernelSpec(spec, tuple(parsed[0]), parsed[1])
    if os.path.exists(text) and not os.path.isdir(text):  # a file, or a device or FIFO the reader refuses
        kernel = load_kernel_file(text)
        return KernelSpec(spec, (kernel,), kernel.label)
    if os.path.isdir(text):
        raise InputFileError(
            f"kernel {quote(text, 200)} is a directory; expected a kernel file, a built-in name or a matrix"
        )
    if re.fullmatch(r"\d+\s*[xX]\s*\d+", text):
        raise KernelSpecError(
            f"ImageMagick kernel {quote(text)} has no values; write {quote(text + ': v,v,...')} (row by row)"
        )
    if _looks_inline(text):
        return KernelSpec(spec, (Kernel(_parse_inline(text), None, "inline"),), "inline")
    if "/" in text or "\\" in text:
        raise InputFileError(f"kernel file {quote(text, 200)} not found")
    typed = re.split(r"[:;@<>]", text)[0].strip()
    hint = _suggestion(typed.lower().replace("_", "-"))
    raise KernelSpecError(f"unknown kernel {quote(typed)}{hint} (convcli kernels lists them)")


def parse_kernel(spec: str) -> Kernel:
    """The one kernel a spec gives (:func:`parse_kernels`).

    Raises
    ------
    KernelSpecError
        As :func:`parse_kernels`, or the spec gives several kernels (a list or a
        rotation set).

    Examples
    --------
    >>> parse_kernel("3x2: 1,2,3,4,5,6").weights
    array([[1., 2., 3.],
           [4., 5., 6.]])
    """
    parsed = parse_kernels(spec)
    if len(parsed.kernels) != 1:
        raise KernelSpecError(f"kernel {quote(spec.strip())} gives {len(parsed.kernels)} kernels; expected one")
    return parsed.kernels[0]
