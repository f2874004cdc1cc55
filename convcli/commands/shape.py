"""``convcli shape``: the geometry of a convolution, or a chain of them, with no data.

Each layer's output size and padding come from the engine's own geometry
(:func:`convcli.engine.geometry.plan_geometry`, the numbers ``apply`` and the layer use);
this module adds what a designer of a network asks next: the receptive field of one
output pixel in the chain's input, the multiply-adds, the parameters and the bytes of
each activation.

A layer is written ``k=KHxKW,stride=S,pad=P,dilation=D,groups=G,out=FN`` (any order,
all but ``k`` optional; pairs as ``HxW``, a four-sided pad as ``TxBxLxR``; pad ``same``
unless given, as ``apply``'s).  Without
``out`` a layer is depthwise, as ``apply`` runs a 2-D kernel (FN = C, groups = C); with
``out`` and no ``groups`` it is an ordinary layer (groups = 1).

Receptive field, per axis, through layers of effective kernel ``k' = d·(k−1) + 1``::

    rf_0 = 1, jump_0 = 1;   rf_i = rf_{i−1} + (k'_i − 1)·jump_{i−1},   jump_i = jump_{i−1}·s_i
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Optional, Union

import numpy as np

from ..engine.geometry import ConvGeometry, PadSpec, as_pair, plan_geometry
from ..errors import ParameterError, quote

__all__ = ["LayerSpec", "ShapeRow", "parse_input_shape", "parse_layer", "shape_chain", "shape_json"]

_KEYS = {
    "k": "kernel", "kernel": "kernel", "s": "stride", "stride": "stride", "p": "pad", "pad": "pad",
    "d": "dilation", "dilation": "dilation", "g": "groups", "groups": "groups", "out": "out", "o": "out",
    "filters": "out",
}


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the chain, as written.

    Attributes
    ----------
    kernel : (int, int)
        KH, KW.
    stride, dilation : int or (int, int)
    pad : int, (h, w), (top, bottom, left, right), "same" or "valid"
        Default "same", as ``apply``'s.
    groups : int or None
        None: depthwise without ``out``, 1 with it.
    out : int or None
        Output channels FN; None: as many as the input has (depthwise).
    """

    kernel: tuple[int, int]
    stride: Union[int, tuple[int, int]] = 1
    pad: PadSpec = "same"
    dilation: Union[int, tuple[int, int]] = 1
    groups: Optional[int] = None
    out: Optional[int] = None

    def describe(self) -> str:
        """The layer in the ``--layer`` syntax."""
        def text(v: Any) -> str:
            return "x".join(str(p) for p in v) if isinstance(v, tuple) else str(v)

        parts = [f"k={text(self.kernel)}", f"stride={text(self.stride)}", f"pad={text(self.pad)}"]
        if self.dilation != 1:
            parts.append(f"dilation={text(self.dilation)}")
        if self.groups is not None:
            parts.append(f"groups={self.groups}")
        if self.out is not None:
            parts.append(f"out={self.out}")
        return ",".join(parts)


def _ints(text: str, what: str, counts: tuple[int, ...]) -> tuple[int, ...]:
    parts = [p.strip() for p in re.split(r"[xX×]", text.strip())]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ParameterError(f"{what} must be whole numbers separated by x, got {quote(text)}") from None
    if len(values) not in counts:
        raise ParameterError(f"{what} takes {' or '.join(map(str, counts))} numbers, got {quote(text)}")
    return values


def parse_input_shape(text: str) -> tuple[int, int, int, int]:
    """'224x224' (one channel), '3x224x224' (C, H, W) or '8x3x224x224' (N, C, H, W) as (N, C, H, W).

    >>> parse_input_shape("3x224x224")
    (1, 3, 224, 224)
    """
    values = _ints(text, "the input shape", (2, 3, 4))
    if min(values) < 1:
        raise ParameterError(f"the input shape must be positive sizes (HxW, CxHxW or NxCxHxW), got {quote(text)}")
    padded = (1,) * (4 - len(values)) + values
    return padded[0], padded[1], padded[2], padded[3]


def _pair(text: str, what: str) -> Union[int, tuple[int, int]]:
    values = _ints(text, what, (1, 2))
    return values[0] if len(values) == 1 else (values[0], values[1])


def _pad(text: str) -> PadSpec:
    if text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    values = _ints(text, "pad", (1, 2, 4))
    if len(values) == 1:
        return values[0]
    return (values[0], values[1]) if len(values) == 2 else (values[0], values[1], values[2], values[3])


def parse_layer(text: str) -> LayerSpec:
    """A ``--layer`` value: ``k=3x3,stride=2,pad=same,dilation=1,groups=1,out=64`` (commas or spaces between).

    Raises
    ------
    ParameterError
        An unknown key, a missing ``k``, a value that is not a number (or pair).

    Examples
    --------
    >>> parse_layer("k=3x3,stride=2,pad=same,out=64")
    LayerSpec(kernel=(3, 3), stride=2, pad='same', dilation=1, groups=None, out=64)
    """
    fields: dict[str, str] = {}
    for item in re.split(r"[,\s]+", text.strip()):
        if not item:
            continue
        key, sep, value = item.partition("=")
        name = _KEYS.get(key.strip().lower())
        if not sep or name is None:
            raise ParameterError(
                f"--layer {quote(text)}: expected KEY=VALUE items (k, stride, pad, dilation, groups, out), "
                f"got {quote(item)}"
            )
        fields[name] = value
    if "kernel" not in fields:
        raise ParameterError(f"--layer {quote(text)} has no kernel size; expected k=KHxKW (e.g. k=3x3)")
    kernel = as_pair(_pair(fields["kernel"], "k"), "k")
    spec: dict[str, Any] = {"kernel": kernel}
    if "stride" in fields:
        spec["stride"] = _pair(fields["stride"], "stride")
    if "pad" in fields:
        spec["pad"] = _pad(fields["pad"])
    if "dilation" in fields:
        spec["dilation"] = _pair(fields["dilation"], "dilation")
    for name in ("groups", "out"):
        if name in fields:
            value = _ints(fields[name], name, (1,))[0]
            if value < 1:
                raise ParameterError(f"--layer {name} must be >= 1, got {value}")
            spec[name] = value
    if min(kernel) < 1:
        raise ParameterError(f"--layer k must be >= 1, got {quote(fields['kernel'])}")
    return LayerSpec(**spec)


@dataclass(frozen=True)
class ShapeRow:
    """One layer's geometry and costs (what ``shape`` prints).

    Attributes
    ----------
    layer : str
        The layer in the ``--layer`` syntax.
    input_shape, output_shape : (N, C, H, W) and (N, FN, OH, OW)
    weight_shape : (FN, C/groups, KH, KW)
    groups : int
    pads : (top, bottom, left, right)
        The padding applied (``same`` resolved; an odd total puts the extra pixel bottom/right).
    receptive_field : (int, int)
        Input pixels (rows, columns) one output pixel depends on, through the chain so far.
    jump : (int, int)
        Input pixels between neighbouring output pixels (the product of the strides so far).
    macs : int
        Multiply-adds: N·FN·OH·OW·(C/groups)·KH·KW.
    flops : int
        2·macs (a multiply and an add each; the bias's adds not counted).
    params : int
        Weights and one bias per filter: FN·(C/groups)·KH·KW + FN.
    activation_bytes : int
        The output, N·FN·OH·OW values of ``itemsize`` bytes.
    columns_bytes : int
        The whole im2col matrix, (N·OH·OW) × (C·KH·KW) values: what the book's im2col allocates
        (the engine's tiles hold a few MB of it at a time).
    """

    layer: str
    input_shape: tuple[int, int, int, int]
    output_shape: tuple[int, int, int, int]
    weight_shape: tuple[int, int, int, int]
    groups: int
    pads: tuple[int, int, int, int]
    receptive_field: tuple[int, int]
    jump: tuple[int, int]
    macs: int
    flops: int
    params: int
    activation_bytes: int
    columns_bytes: int


def _geometry(x_shape: tuple[int, int, int, int], spec: LayerSpec) -> ConvGeometry:
    channels = x_shape[1]
    groups = spec.groups if spec.groups is not None else (1 if spec.out is not None else channels)
    filters = spec.out if spec.out is not None else channels
    if channels % groups:
        raise ParameterError(f"groups={groups} does not divide the input's {channels} channels")
    return plan_geometry(x_shape, (filters, channels // groups, *spec.kernel), spec.stride, spec.pad, spec.dilation,
                         groups)


def shape_chain(input_shape: tuple[int, int, int, int], layers: list[LayerSpec],
                dtype: str = "float32") -> list[ShapeRow]:
    """Each layer's geometry and costs, the output of one the input of the next.

    Parameters
    ----------
    input_shape : (N, C, H, W)
    layers : list of LayerSpec
        At least one.
    dtype : str
        The activations' dtype (its item size counts the bytes).

    Returns
    -------
    list of ShapeRow
        One per layer; ``output_shape`` is the layer's ``Convolution.output_shape``.

    Raises
    ------
    ParameterError, ShapeError
        As the layer would: a kernel larger than the padded input, groups that do not divide, ...
    """
    if not layers:
        raise ParameterError("no layer given; expected -k KHxKW or --layer 'k=KHxKW,...'")
    itemsize = np.dtype(dtype).itemsize
    rows: list[ShapeRow] = []
    shape = input_shape
    rf, jump = [1, 1], [1, 1]
    for spec in layers:
        g = _geometry(shape, spec)
        for axis, (k, d, s) in enumerate(((g.kernel_h, g.dilation[0], g.stride[0]),
                                          (g.kernel_w, g.dilation[1], g.stride[1]))):
            rf[axis] += d * (k - 1) * jump[axis]
            jump[axis] *= s
        macs = g.batch * g.filters * g.out_h * g.out_w * g.channels_per_group * g.kernel_h * g.kernel_w
        weight = (g.filters, g.channels_per_group, g.kernel_h, g.kernel_w)
        rows.append(ShapeRow(
            layer=spec.describe(), input_shape=shape, output_shape=g.output_shape, weight_shape=weight,
            groups=g.groups, pads=g.pads, receptive_field=(rf[0], rf[1]), jump=(jump[0], jump[1]),
            macs=macs, flops=2 * macs, params=int(np.prod(weight)) + g.filters,
            activation_bytes=int(np.prod(g.output_shape)) * itemsize,
            columns_bytes=g.batch * g.out_h * g.out_w * g.channels * g.kernel_h * g.kernel_w * itemsize,
        ))
        shape = g.output_shape
    return rows


def shape_json(rows: list[ShapeRow]) -> str:
    """The rows and their totals as JSON: ``{"input": [...], "layers": [...], "total": {...}}``."""
    total = {
        "output_shape": list(rows[-1].output_shape),
        "receptive_field": list(rows[-1].receptive_field),
        "macs": sum(r.macs for r in rows),
        "flops": sum(r.flops for r in rows),
        "params": sum(r.params for r in rows),
        "activation_bytes": sum(r.activation_bytes for r in rows),
    }
    return json.dumps({"input": list(rows[0].input_shape), "layers": [asdict(r) for r in rows], "total": total},
                      indent=2)
