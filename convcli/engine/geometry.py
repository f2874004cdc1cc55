"""Convolution geometry: parameters normalised to pairs, padding resolved, output size.

Nothing here touches array data; it turns the user's stride, pad, dilation, groups and
padding mode into one checked :class:`ConvGeometry` that the engine follows.

Output size per axis (the numbers of PyTorch's ``conv2d``)::

    out = floor((size + pad_before + pad_after - dilation * (k - 1) - 1) / stride) + 1
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Union

from ..errors import ParameterError, ShapeError

IntPair = tuple[int, int]
PadSpec = Union[int, tuple[int, int], tuple[int, int, int, int], str]
#: The forward algorithms of a layer: "im2col" (the 2-D path, always available), "separable"
#: (filters that read one channel each, as sums of 1-D passes), "banded" (each kernel row a
#: banded matrix: large kernels on few channels), "running-sum" (box kernels on integer
#: samples, exact), "auto" (the cheapest; convcli.engine.layer).
ALGORITHMS: tuple[str, ...] = ("auto", "im2col", "separable", "banded", "running-sum")

#: The padding modes, by convcli's names (see :mod:`convcli.engine.padding` for what each holds).
#: "constant" takes a value, ``constant:VALUE`` (plain "constant" is 0).
PADDING_MODES: tuple[str, ...] = ("zeros", "reflect", "replicate", "circular", "symmetric", "constant")

#: Other tools' names for the same modes: ImageMagick's virtual pixels (edge, mirror, tile, black,
#: gray, white, transparent) and the unambiguous ones of OpenCV and scipy (reflect101, wrap,
#: nearest, scipy's grid-wrap, grid-mirror, grid-constant).  Names that
#: mean different things in different tools keep convcli's meaning: "reflect" is PyTorch's (``dcb|abcd``,
#: scipy's "mirror", OpenCV's REFLECT_101); scipy's "reflect" is "symmetric" here (``dcba|abcd``).
PADDING_ALIASES: dict[str, str] = {
    "edge": "replicate", "nearest": "replicate", "mirror": "symmetric", "tile": "circular", "wrap": "circular",
    "black": "zeros", "gray": "constant:0.5", "grey": "constant:0.5", "white": "constant:1",
    "reflect101": "reflect", "reflect_101": "reflect", "transparent": "zeros",
    "grid-wrap": "circular", "grid-mirror": "symmetric", "grid-constant": "zeros",
}


@dataclass(frozen=True)
class PaddingMode:
    """A checked padding mode: one of :data:`PADDING_MODES` and, for "constant", its value.

    ``constant:0`` is "zeros" (the same padding, and the backward pass may use its shortcut).
    """

    name: str
    value: float = 0.0

    def __str__(self) -> str:
        return f"constant:{self.value:g}" if self.name == "constant" else self.name


def parse_padding_mode(text: object) -> PaddingMode:
    """Read a padding mode: a name of :data:`PADDING_MODES`, ``constant:VALUE``, or an alias.

    Parameters
    ----------
    text : str
        Case-insensitive; aliases from :data:`PADDING_ALIASES` (ImageMagick's edge, mirror,
        tile, black, gray, white; reflect101, wrap, nearest).

    Returns
    -------
    PaddingMode

    Raises
    ------
    ParameterError
        An unknown name, or a constant that is not a finite number.

    Examples
    --------
    >>> parse_padding_mode("mirror"), parse_padding_mode("gray")
    (PaddingMode(name='symmetric', value=0.0), PaddingMode(name='constant', value=0.5))
    """
    if isinstance(text, PaddingMode):
        return text
    if not isinstance(text, str):
        raise ParameterError(f"padding_mode must be a string, got {text!r}")
    name = text.strip().lower()
    name = PADDING_ALIASES.get(name, name)
    base, sep, arg = name.partition(":")
    if base == "constant":
        try:
            value = float(arg) if sep else 0.0
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ParameterError(f"padding_mode constant:VALUE needs a finite number, got {text[:40]!r}")
        return PaddingMode("zeros") if value == 0 else PaddingMode("constant", value)
    if base not in PADDING_MODES or sep:
        known = ", ".join([*PADDING_MODES[:-1], "constant:VALUE", *PADDING_ALIASES])
        raise ParameterError(f"padding_mode must be one of {known}; got {text[:40]!r}")
    return PaddingMode(base)


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers, ``b > 0`` (exact: no float rounding).

    >>> ceil_div(7, 2), ceil_div(-7, 2)
    (4, -3)
    """
    return -(-a // b)


def _as_int(value: object, name: str) -> int:
    """``value`` as a Python int; bools, floats and strings are refused."""
    if isinstance(value, bool):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ParameterError(f"{name} must be an integer, got {value!r}") from None


def as_pair(value: object, name: str) -> IntPair:
    """Normalise an int or an (h, w) pair to a pair of ints.

    Parameters
    ----------
    value : int or sequence of 2 ints
        The user's value.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    tuple of int, shape (2,)
        ``(value_h, value_w)``.
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ParameterError(f"{name} must be an int or an (h, w) pair, got {value!r}")
        return _as_int(value[0], name), _as_int(value[1], name)
    v = _as_int(value, name)
    return v, v


def output_size(size: int, kernel: int, stride: int, dilation: int, pad_before: int, pad_after: int) -> int:
    """Output length of one axis: ``floor((size + pads - dilation*(kernel-1) - 1) / stride) + 1``."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> IntPair:
    """Padding ``(before, after)`` that gives an output of ``ceil(size / stride)``.

    When the total is odd the extra pixel goes after (bottom/right), as PyTorch and
    TensorFlow do.
    """
    out = ceil_div(size, stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    pad: PadSpec, size_hw: IntPair, kernel_hw: IntPair, stride: IntPair, dilation: IntPair
) -> tuple[int, int, int, int]:
    """Resolve a pad specification to ``(top, bottom, left, right)``.

    Parameters
    ----------
    pad : int, (h, w) pair, (top, bottom, left, right), "same" or "valid"
        The user's padding.
    size_hw, kernel_hw, stride, dilation : (int, int)
        Input size, kernel size, stride and dilation per axis.

    Returns
    -------
    tuple of int, shape (4,)
        ``(top, bottom, left, right)``, each >= 0.
    """
    if isinstance(pad, str):
        mode = pad.lower()
        if mode == "valid":
            return 0, 0, 0, 0
        if mode == "same":
            top, bottom = same_padding(size_hw[0], kernel_hw[0], stride[0], dilation[0])
            left, right = same_padding(size_hw[1], kernel_hw[1], stride[1], dilation[1])
            return top, bottom, left, right
        raise ParameterError(f"pad must be an int, an (h, w) pair, 'same' or 'valid', got {pad!r}")
    if isinstance(pad, (tuple, list)) and len(pad) == 4:
        pads = tuple(_as_int(p, "pad") for p in pad)
    else:
        ph, pw = as_pair(pad, "pad")
        pads = (ph, ph, pw, pw)
    if min(pads) < 0:
        raise ParameterError(f"pad must be >= 0, got {pad!r}")
    return pads[0], pads[1], pads[2], pads[3]


@dataclass(frozen=True)
class ConvGeometry:
    """Checked geometry of one 2-D convolution.

    Attributes
    ----------
    batch, channels, height, width : int
        Input shape (N, C, H, W).
    filters, kernel_h, kernel_w : int
        Output channels FN and kernel size FH, FW.
    groups : int
        Channel groups; W has shape (FN, C // groups, FH, FW).
    stride, dilation : (int, int)
        Per axis (h, w).
    pads : (int, int, int, int)
        Padding (top, bottom, left, right).
    padding_mode : str
        One of :data:`PADDING_MODES` (aliases resolved).
    pad_value : float
        The constant of the "constant" mode (0 otherwise).
    out_h, out_w : int
        Output size OH, OW.
    """

    batch: int
    channels: int
    height: int
    width: int
    filters: int
    kernel_h: int
    kernel_w: int
    groups: int
    stride: IntPair
    dilation: IntPair
    pads: tuple[int, int, int, int]
    padding_mode: str
    out_h: int
    out_w: int
    pad_value: float = 0.0

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(N, C, H, W)."""
        return self.batch, self.channels, self.height, self.width

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """(N, FN, OH, OW)."""
        return self.batch, self.filters, self.out_h, self.out_w

    @property
    def padded_hw(self) -> IntPair:
        """Padded input size (H + top + bottom, W + left + right)."""
        t, b, l, r = self.pads
        return self.height + t + b, self.width + l + r

    @property
    def channels_per_group(self) -> int:
        """C // groups."""
        return self.channels // self.groups

    @property
    def filters_per_group(self) -> int:
        """FN // groups."""
        return self.filters // self.groups


def check_layer_args(
    stride: object, pad: PadSpec, dilation: object, groups: object, padding_mode: str
) -> tuple[IntPair, IntPair, int]:
    """Check the arguments that do not depend on the input's shape.

    A layer runs these when it is built, so a bad stride fails there rather than at its
    first forward.

    Returns
    -------
    tuple
        ``(stride_hw, dilation_hw, groups)`` normalised.

    Raises
    ------
    ParameterError
        stride or dilation < 1, groups < 1, a negative or unknown pad, an unknown
        padding mode.
    """
    stride_hw = as_pair(stride, "stride")
    dilation_hw = as_pair(dilation, "dilation")
    n_groups = _as_int(groups, "groups")
    parse_padding_mode(padding_mode)
    if min(stride_hw) < 1:
        raise ParameterError(f"stride must be >= 1, got {stride!r}")
    if min(dilation_hw) < 1:
        raise ParameterError(f"dilation must be >= 1, got {dilation!r}")
    if n_groups < 1:
        raise ParameterError(f"groups must be >= 1, got {n_groups}")
    resolve_padding(pad, (1, 1), (1, 1), stride_hw, dilation_hw)  # its form and signs only
    return stride_hw, dilation_hw, n_groups


def plan_geometry(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: object = 1,
    pad: PadSpec = 0,
    dilation: object = 1,
    groups: object = 1,
    padding_mode: str = "zeros",
) -> ConvGeometry:
    """Check a convolution's arguments and compute its geometry.

    Parameters
    ----------
    x_shape : tuple, (N, C, H, W)
        Input shape.
    w_shape : tuple, (FN, C // groups, FH, FW)
        Weight shape.
    stride, dilation : int or (h, w)
        Each >= 1.
    pad : int, (h, w), (top, bottom, left, right), "same" or "valid"
        Each >= 0.
    groups : int
        Divides both C and FN.
    padding_mode : str
        A padding mode or alias (:func:`parse_padding_mode`).

    Returns
    -------
    ConvGeometry
        With output size ``OH = floor((H + top + bottom - dh*(FH-1) - 1) / sh) + 1``
        (likewise OW).

    Raises
    ------
    ParameterError, ShapeError
        With the parameter's name and the actual numbers.
    """
    if len(x_shape) != 4:
        raise ShapeError(f"x must be 4-D (N, C, H, W), got {len(x_shape)}-D shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ShapeError(f"W must be 4-D (FN, C/groups, FH, FW), got {len(w_shape)}-D shape {tuple(w_shape)}")
    n, c, h, w = (int(v) for v in x_shape)
    fn, cg, fh, fw = (int(v) for v in w_shape)
    stride_hw, dilation_hw, n_groups = check_layer_args(stride, pad, dilation, groups, padding_mode)
    mode = parse_padding_mode(padding_mode)
    if min(n, c, h, w) < 1:
        raise ShapeError(f"x must have no empty axis, got shape {tuple(x_shape)}")
    if min(fn, cg, fh, fw) < 1:
        raise ShapeError(f"W must have no empty axis, got shape {tuple(w_shape)}")
    if c % n_groups:
        raise ParameterError(f"groups={n_groups} does not divide the input's {c} channels")
    if fn % n_groups:
        raise ParameterError(f"groups={n_groups} does not divide the {fn} filters (W.shape[0])")
    if cg * n_groups != c:
        raise ShapeError(
            f"x has {c} channels but W expects {cg * n_groups} "
            f"(W.shape[1]={cg} × groups={n_groups})"
        )
    pads = resolve_padding(pad, (h, w), (fh, fw), stride_hw, dilation_hw)
    top, bottom, left, right = pads
    span_h = dilation_hw[0] * (fh - 1) + 1
    span_w = dilation_hw[1] * (fw - 1) + 1
    ph, pw = h + top + bottom, w + left + right
    if span_h > ph or span_w > pw:
        dilated = "" if dilation_hw == (1, 1) else f" (dilated to {span_h}×{span_w})"
        raise ShapeError(
            f"kernel {fh}×{fw}{dilated} is larger than the padded input {ph}×{pw}"
        )
    out_h = output_size(h, fh, stride_hw[0], dilation_hw[0], top, bottom)
    out_w = output_size(w, fw, stride_hw[1], dilation_hw[1], left, right)
    return ConvGeometry(
        batch=n, channels=c, height=h, width=w, filters=fn, kernel_h=fh, kernel_w=fw,
        groups=n_groups, stride=stride_hw, dilation=dilation_hw, pads=pads,
        padding_mode=mode.name, out_h=out_h, out_w=out_w, pad_value=mode.value,
    )


def valid_span(size: int, kernel: int, stride: int, dilation: int, pad_before: int, out: int) -> tuple[int, int]:
    """The outputs ``[start, stop)`` of one axis whose window reads no padding (it lies inside the input).

    Output ``o`` reads input positions ``o*stride - pad_before + dilation*t`` for ``t`` in
    ``0..kernel-1``; it is valid when the first is >= 0 and the last <= ``size - 1``.
    ``start == stop`` when no window fits inside the input.

    >>> valid_span(8, 3, 1, 1, 1, 8)   # 'same' padding: the border outputs read padding
    (1, 7)
    >>> valid_span(8, 9, 1, 1, 4, 8)   # a kernel wider than the input: none is valid
    (0, 0)
    """
    start = -(-pad_before // stride)  # ceil(pad_before / stride)
    last = (size - 1 - dilation * (kernel - 1) + pad_before)
    stop = last // stride + 1 if last >= 0 else 0
    start, stop = min(start, out), max(0, min(stop, out))
    return (start, stop) if stop > start else (0, 0)


def valid_region(geom: ConvGeometry) -> tuple[slice, slice]:
    """The (rows, columns) of the output whose windows lie inside the input (:func:`valid_span` per axis)."""
    top, _, left, _ = geom.pads
    rows = valid_span(geom.height, geom.kernel_h, geom.stride[0], geom.dilation[0], top, geom.out_h)
    cols = valid_span(geom.width, geom.kernel_w, geom.stride[1], geom.dilation[1], left, geom.out_w)
    return slice(*rows), slice(*cols)
