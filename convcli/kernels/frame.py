"""Where each 2-D kernel sits in the layer: origins, one common frame, embedding and cropping.

A layer has one padding, so the M 2-D kernels of a bank share one (FH, FW) and the tap at
``((FH-1)//2, (FW-1)//2)`` of every filter lies over the output pixel (``pad="same"``).  A
kernel's *origin* is the tap over the output pixel: ImageMagick's ``+X+Y``
(:attr:`convcli.kernels.kernel.Kernel.origin`), or for a kernel without one the tap
``"same"`` puts there.  :func:`kernel_frame` decides how the kernels fit one layer:

* all the same size, each origin where ``"same"`` puts it once flipped (the usual case):
  the kernels are used as they are;
* otherwise every kernel is embedded in a common zero frame of odd sides whose centre is
  its origin (:func:`embed`), so one symmetric padding serves them all and each gives
  ImageMagick's result.  ``--pad`` numbers and ``valid`` then apply to that frame.

Under ``flip`` a kernel turns 180° and its origin with it (ImageMagick's
``-morphology Convolve``); the frame is built unflipped, centred on the origins, so the
flip keeps every origin at the centre.  A kernel without an origin turns about the tap
that keeps PyTorch's padding for it (``(FH//2, FW//2)`` before the flip).

The way back, :func:`crop`, cuts each kernel's gradient out of the frame;
:func:`gradient_shape` says what shape dK has: the kernels' own (M, FH, FW) when they all
have one size, else the frame's (M, FH', FW'), each kernel at :attr:`Frame.offsets`.

Neighbours: the kernel type is :mod:`convcli.kernels.kernel`; the bank that uses the frame
is :mod:`convcli.kernels.bank`; dK is :mod:`convcli.kernels.gradient`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .kernel import Kernel

__all__ = ["Frame", "crop", "embed", "gradient_offsets", "gradient_shape", "kernel_frame", "running_origin"]


def running_origin(kernel: Kernel, flip: bool) -> tuple[int, int]:
    """(row, column) of the tap over the output pixel, in the kernel as given.

    Its :attr:`~convcli.kernels.kernel.Kernel.origin`, else ``((FH-1)//2, (FW-1)//2)``
    without ``flip`` and ``(FH//2, FW//2)`` with it (the tap that lands on
    ``((FH-1)//2, (FW-1)//2)`` once the kernel is turned 180°).
    """
    if kernel.origin is not None:
        return kernel.origin
    fh, fw = kernel.size
    return (fh // 2, fw // 2) if flip else ((fh - 1) // 2, (fw - 1) // 2)


@dataclass(frozen=True)
class Frame:
    """How M 2-D kernels fit one layer.

    Attributes
    ----------
    shape : (int, int)
        (FH, FW) of every filter of the layer.
    offsets : tuple of (int, int)
        Where kernel m's top-left tap sits in the frame (unflipped).
    embedded : bool
        False: the kernels are used as given (one size, origins where ``"same"`` puts
        them); the offsets are then all (0, 0).
    """

    shape: tuple[int, int]
    offsets: tuple[tuple[int, int], ...]
    embedded: bool


def kernel_frame(kernels: Sequence[Kernel], flip: bool = False) -> Frame:
    """The frame of 2-D ``kernels`` (see the module notes).

    Returns
    -------
    Frame
        Embedded with odd sides ``2 * max(reach) + 1`` per axis, ``reach`` being how far
        a kernel extends from its origin, when the kernels differ in size or an origin
        is not where ``"same"`` puts it.
    """
    sizes = [k.size for k in kernels]
    origins = [running_origin(k, flip) for k in kernels]
    layer_origins = [((h - 1 - r, w - 1 - c) if flip else (r, c)) for (h, w), (r, c) in zip(sizes, origins)]
    same = [((h - 1) // 2, (w - 1) // 2) for h, w in sizes]
    if len(set(sizes)) == 1 and layer_origins == same:
        return Frame(sizes[0], tuple((0, 0) for _ in kernels), False)
    half_h = max(max(r, h - 1 - r) for (h, _), (r, _) in zip(sizes, origins))
    half_w = max(max(c, w - 1 - c) for (_, w), (_, c) in zip(sizes, origins))
    offsets = tuple((half_h - r, half_w - c) for r, c in origins)
    return Frame((2 * half_h + 1, 2 * half_w + 1), offsets, True)


def embed(values: NDArray[np.floating], frame: Frame, index: int) -> NDArray[np.float64]:
    """Kernel ``index``'s values, shape (FH, FW) as given, placed in a zero array of ``frame.shape``."""
    out = np.zeros(frame.shape, dtype=np.float64)
    r, c = frame.offsets[index]
    out[r:r + values.shape[0], c:c + values.shape[1]] = values
    return out


def crop(array: NDArray[np.floating], frame: Frame, index: int, size: tuple[int, int]) -> NDArray[np.floating]:
    """The part of ``array`` (..., FH', FW') in the frame that kernel ``index``, of ``size`` (FH, FW), occupies."""
    r, c = frame.offsets[index]
    return array[..., r:r + size[0], c:c + size[1]]


def gradient_shape(kernels: Sequence[Kernel], frame: Frame) -> tuple[int, int]:
    """(FH, FW) of each kernel's entry in dK: the kernels' own size when they share one, else the frame's."""
    sizes = {k.size for k in kernels}
    return next(iter(sizes)) if len(sizes) == 1 else frame.shape


def gradient_offsets(kernels: Sequence[Kernel], frame: Frame) -> tuple[tuple[int, int], ...]:
    """Where each kernel sits in its dK entry: (0, 0) when they share one size, else the frame's offsets."""
    return tuple((0, 0) for _ in kernels) if len({k.size for k in kernels}) == 1 else frame.offsets
