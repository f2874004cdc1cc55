"""The files ``convcli grad`` writes: named and checked before any work, written together or not at all.

:func:`plan_outputs` names every output (an .npz of dx, dW, db and dK, and single
arrays as .npy or display-mapped .png) and refuses bad ones before anything is
computed; :func:`write_outputs` encodes them all, then writes them, removing what it
created when one write fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import OutputFileError
from ..io.display import check_display, montage
from ..io.images import encode_png
from ..io.outputs import all_or_nothing, check_targets, format_for_path, npy_bytes, npz_bytes
from .grad import Gradients


@dataclass
class GradOutput:
    """One file (or stream) ``grad`` writes.

    Attributes
    ----------
    what : str
        "npz" (dx, dW, db and dK) or one of "dx", "dW", "db".
    path : str
        A path or ``-``.
    format : str
        npz, npy or png.
    """

    what: str
    path: str
    format: str


def _format_of(path: str, what: str) -> str:
    """The format of output ``what`` (npz, dx, dW or db) at ``path``: from its extension, ``-`` the default."""
    fmt = format_for_path(path)
    if what == "npz":
        if path == "-" or fmt == "npz":
            return "npz"
        raise OutputFileError(
            f"-o {path!r}: grad writes an .npz archive (dx, dW, db); name it .npz, or write single arrays "
            "with --dx/--dw/--db"
        )
    allowed = ("npy",) if what == "db" else ("npy", "png")
    if path == "-":
        return "npy"
    if fmt is not None and fmt in allowed:
        return fmt
    expected = " or ".join(f".{f}" for f in allowed)
    raise OutputFileError(f"--{what.lower()} {path!r}: expected a {expected} name, or '-' for standard output")


def plan_outputs(
    output: Optional[str],
    singles: Mapping[str, Optional[str]],
    default: str,
    protect: Sequence[str] = (),
) -> list[GradOutput]:
    """Name and check every output before anything is computed.

    Parameters
    ----------
    output : str or None
        ``-o``: an .npz path or ``-``.
    singles : dict
        ``{"dx": path, "dW": path, "db": path}`` (None where not asked for).
    default : str
        The .npz written when neither ``-o`` nor any single output is given.
    protect : sequence of str
        Files read (input, dout, kernel and bias files): never overwritten.

    Raises
    ------
    OutputFileError
        A bad extension, two outputs to one path or to standard output, or a path
        :func:`convcli.outputs.check_target` refuses (an input, a missing or
        unwritable directory, a directory as output).
    """
    targets: list[GradOutput] = []
    for what, path in singles.items():
        if path is not None:
            targets.append(GradOutput(what, path, _format_of(path, what)))
    if output is not None or not targets:
        path = default if output is None else output
        targets.insert(0, GradOutput("npz", path, _format_of(path, "npz")))
    if sum(t.path == "-" for t in targets) > 1:
        raise OutputFileError("only one output can go to standard output '-'; write the others to files")
    check_targets([t.path for t in targets], protect, subject="two outputs", hint="give each its own name")
    return targets


def grad_png(value: NDArray[np.floating], what: str, display: str) -> NDArray[np.float32]:
    """Pixels (C, H, W) in [0, 1] of a gradient, through apply's display mapping.

    dx (N, C, H, W): one row per image, in colour when C is 3 or 4 (as apply writes
    RGB), else one gray map per channel.  Weights: dW/dK (FN, C/groups, FH, FW) as an
    FN x C/groups grid of gray maps, (M, FH, FW) as a row of M, (FH, FW) alone.
    Each map (each colour image) is mapped on its own; maps are 1 pixel apart.
    """
    check_display(display)
    array = np.asarray(value)
    if what == "dx" and array.shape[1] in (3, 4):
        cells = array[:, None]
    elif array.ndim == 2:
        cells = array[None, None, None]
    elif array.ndim == 3:
        cells = array[None, :, None]
    else:
        cells = array[:, :, None]
    return montage(cells, display)


def output_bytes(target: GradOutput, grads: Gradients, display: str) -> tuple[bytes, tuple[int, ...]]:
    """The bytes of one output and the shape of what it holds."""
    if target.what == "npz":
        arrays = {"dx": grads.dx, "dW": grads.dW, "db": grads.db}
        if grads.dK is not None:
            arrays["dK"] = grads.dK
        return npz_bytes(arrays), ()
    value = {"dx": grads.dx, "dW": grads.dW if grads.dK is None else grads.dK, "db": grads.db}[target.what]
    if target.format == "png":
        return encode_png(grad_png(value, target.what, display)), tuple(value.shape)
    return npy_bytes(value), tuple(value.shape)


def write_outputs(
    targets: Sequence[GradOutput], grads: Gradients, display: str, protect: Sequence[str] = ()
) -> list[tuple[GradOutput, tuple[int, ...]]]:
    """Encode every output, then write them; when a write fails, remove the files this call created.

    Returns
    -------
    list of (GradOutput, shape)
        What was written.
    """
    encoded = [(t, *output_bytes(t, grads, display)) for t in targets]
    done = []
    with all_or_nothing(protect) as write:
        for target, data, shape in encoded:
            write(target.path, data)
            done.append((target, shape))
    return done
