"""Bias: read from text or a ``.npy`` file (:func:`parse_bias`), spread over a layer's filters (:func:`expand_bias`).

Neighbours: the layer whose filters the bias is spread over is :mod:`convcli.kernels.bank`;
a kernel file's own bias is checked with its weights (:func:`convcli.kernels.kernel.check_bias`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from ..errors import InputFileError, ParameterError, ShapeError

__all__ = ["expand_bias", "parse_bias"]


def expand_bias(
    bias: NDArray[np.floating],
    n_filters: int,
    n_kernels: int,
    channels: int,
    *,
    per_kernel: Optional[Sequence[int]] = None,
) -> NDArray[np.floating]:
    """Bias of shape (FN,) from a scalar, one value per kernel, or FN values.

    Parameters
    ----------
    bias : ndarray, any shape
        The values, flattened.
    n_filters : int
        FN, the layer's output maps.
    n_kernels : int
        How many kernels (``-k``) make the bank.
    channels : int
        Input channels C.
    per_kernel : sequence of int, optional
        For 4-D layer kernels, the filters each one contributes (they sum to FN): one
        value per kernel is repeated over that kernel's filters.  None for M 2-D
        kernels, where FN = C*M and value m goes to every output map c*M + m.

    Returns
    -------
    ndarray, shape (FN,), float64
    """
    values = np.asarray(bias, dtype=np.float64).ravel()
    if values.size == 1:
        return np.full(n_filters, values[0])
    if values.size == n_filters:
        return values
    if values.size == n_kernels:
        if per_kernel is not None:
            return np.repeat(values, list(per_kernel))  # kernel k's filters all get value k
        if n_filters == n_kernels * channels:
            return np.tile(values, channels)  # output channel c*M + m gets value m
    raise ShapeError(
        f"--bias has {values.size} values; expected 1, one per kernel ({n_kernels}) or one per output map ({n_filters})"
    )


def parse_bias(text: str, name: str = "--bias") -> NDArray[np.float64]:
    """A bias given as text: a number, a comma-separated list ('0.1,0.2'), a .npy file or '-'.

    Numbers are tried first, so a file is read when the text ends in .npy or is no list of
    numbers; '-' reads .npy bytes from standard input (through :mod:`convcli.io`, with
    ``allow_pickle=False``).  :func:`expand_bias` then fits the values to a layer.

    Parameters
    ----------
    text : str
        The bias as the user wrote it.
    name : str
        How messages name it.

    Returns
    -------
    ndarray, shape (K,), float64
        The values, flattened (a file of any shape); K >= 1, all finite.

    Raises
    ------
    ParameterError
        Text that is neither numbers nor a file, a file of non-numeric values or no values,
        NaN or inf.
    InputFileError
        A file that is missing or cannot be read as ``.npy``.
    """
    from ..errors import quote
    from ..io.arrays import load_npy
    from ..io.inputs import STDIN_NAME
    from ..io.streams import read_source

    usage = "a number, a comma-separated list, a .npy file or '-' (.npy on standard input)"
    source = text.strip()
    values: Any = None
    if source != "-" and not source.lower().endswith(".npy"):
        try:
            values = np.array([float(v) for v in source.replace(";", ",").split(",")], dtype=np.float64)
        except ValueError:
            if not os.path.exists(source) or os.path.isdir(source):  # a device or FIFO: the reader refuses it
                raise ParameterError(f"{name} must be {usage}, got {quote(text)}") from None
    if values is None:
        if source != "-" and not os.path.exists(source):
            raise InputFileError(f"{name} file {source!r} not found; expected {usage}")
        where = f"{name} from standard input" if source == "-" else f"{name} file {source!r}"
        data = read_source(source, role="array", what=f"{name} file")  # bounded; devices refused
        array = load_npy(data, STDIN_NAME if source == "-" else source)
        if array.dtype.kind not in "biuf":
            raise ParameterError(f"{where} holds {array.dtype} values; expected real numbers")
        if array.size == 0:
            raise ParameterError(f"{where} is empty (shape {array.shape}); expected at least one value")
        values = array.astype(np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ParameterError(f"{name} values must be finite (no nan or inf), got {quote(text)}")
    return values
