"""Combining a bank's maps: ``--combine sum|max|min|maxabs`` reduces the maps of M 2-D kernels to one per channel.

M 2-D kernels on a C-channel input give C·M maps, map ``c*M + m`` being kernel m on channel
c (:func:`convcli.kernels.bank.filter_bank`).  :func:`combine_maps` reduces each channel's M
maps to one, so the output has C maps again (RGB stays RGB):

=======  ===========================  ===================================================
mode     map c                        the same in other tools
=======  ===========================  ===================================================
sum      ``sum_m y[c*M + m]``         ImageMagick ``-define morphology:compose=Plus``
max      ``max_m y[c*M + m]``         ImageMagick ``morphology:compose=Lighten``
min      ``min_m y[c*M + m]``         ImageMagick ``morphology:compose=Darken``
maxabs   ``max_m |y[c*M + m]|``       libvips ``compass --combine max`` (it takes |y|)
=======  ===========================  ===================================================

``-k 'Kirsch:@' --combine max`` is the classic compass edge detector.  (ImageMagick's
8-bit and 16-bit builds clip each map to [0, 1] before composing: the same for max and
min, but its Plus adds the clipped maps; convcli combines the raw values.)

No numpy import here: the command line builds its choices from :data:`COMBINE_MODES`.

Neighbours: the bank whose map order this inverts is :mod:`convcli.kernels.bank`; ``apply``
combines (:mod:`convcli.commands.apply`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ParameterError, quote

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["COMBINE_MODES", "check_combine", "combine_maps"]

#: The ways ``--combine`` reduces the maps of several kernels.
COMBINE_MODES: tuple[str, ...] = ("sum", "max", "min", "maxabs")


def check_combine(mode: str, name: str = "--combine") -> str:
    """``mode`` in lower case, or :class:`ParameterError` naming ``name`` unless it is one of :data:`COMBINE_MODES`."""
    value = str(mode).strip().lower()
    if value not in COMBINE_MODES:
        raise ParameterError(f"{name} must be one of {', '.join(COMBINE_MODES)}, got {quote(mode)}")
    return value


def combine_maps(y: NDArray[Any], kernels: int, mode: str) -> NDArray[np.floating]:
    """Reduce the maps of ``kernels`` 2-D kernels to one per input channel.

    Parameters
    ----------
    y : ndarray, shape (N, C*M, OH, OW)
        A depthwise bank's output, map ``c*M + m`` being kernel m on channel c.
    kernels : int
        M, the number of 2-D kernels.
    mode : {"sum", "max", "min", "maxabs"}

    Returns
    -------
    ndarray, shape (N, C, OH, OW)
        ``y``'s dtype.

    Raises
    ------
    ParameterError
        An unknown mode, or a map count that M does not divide.

    Notes
    -----
    Cost: one pass over ``y``; the result is C/(C·M) of its size.  For pictures ``apply``
    combines a band of output rows at a time (:mod:`convcli.commands.render`).
    """
    mode = check_combine(mode)
    n, maps, oh, ow = y.shape
    if kernels < 1 or maps % kernels:
        raise ParameterError(f"--combine: {maps} maps are not C groups of {kernels} kernels")
    grouped = y.reshape(n, maps // kernels, kernels, oh, ow)
    if mode == "sum":
        return grouped.sum(axis=2, dtype=y.dtype)
    if mode == "max":
        return grouped.max(axis=2)
    if mode == "min":
        return grouped.min(axis=2)
    return abs(grouped).max(axis=2)
