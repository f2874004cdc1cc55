"""Geometry: parameter normalisation, padding resolution, output size, argument checks."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.engine.geometry import (
    ConvGeometry,
    PaddingMode,
    as_pair,
    output_size,
    parse_padding_mode,
    plan_geometry,
    resolve_padding,
    same_padding,
)
from convcli.errors import ConvcliError, ParameterError, ShapeError

# (size, kernel, stride, dilation, pad_before, pad_after, PyTorch's output size), each
# worked out by hand from floor((size + pads - d*(k-1) - 1) / s) + 1.
OUTPUT_SIZES = [
    (5, 3, 1, 1, 0, 0, 3),
    (5, 3, 1, 1, 1, 1, 5),
    (7, 3, 2, 1, 1, 1, 4),
    (8, 3, 2, 1, 1, 1, 4),
    (6, 2, 2, 1, 0, 0, 3),
    (10, 3, 3, 2, 0, 0, 2),  # dilated span 5: (10 - 5) // 3 + 1
    (1, 1, 1, 1, 0, 0, 1),
    (4, 4, 1, 1, 0, 0, 1),  # kernel exactly fills the input
    (9, 3, 4, 1, 0, 0, 2),  # stride larger than the kernel: last pixel unused
    (224, 7, 2, 1, 3, 3, 112),  # ResNet stem
    (224, 3, 2, 1, 1, 1, 112),
    (5, 3, 1, 2, 2, 2, 5),
    (13, 5, 3, 2, 1, 2, 3),  # asymmetric pads: (16 - 9) // 3 + 1
    (12, 3, 5, 1, 0, 0, 2),
    (3, 5, 1, 1, 1, 1, 1),  # kernel larger than the input, padding makes it fit
    (2, 1, 3, 1, 0, 0, 1),
]


@pytest.mark.parametrize(("size", "k", "s", "d", "pb", "pa", "expected"), OUTPUT_SIZES)
def test_output_size_table(size: int, k: int, s: int, d: int, pb: int, pa: int, expected: int) -> None:
    assert output_size(size, k, s, d, pb, pa) == expected
    geom = plan_geometry((2, 3, size, size + 1), (4, 3, k, 1), stride=(s, 1), pad=(pb, pa, 0, 0), dilation=(d, 1))
    assert (geom.out_h, geom.out_w) == (expected, size + 1)
    geom = plan_geometry((1, 1, 1, size), (1, 1, 1, k), stride=(1, s), pad=(0, 0, pb, pa), dilation=(1, d))
    assert (geom.out_h, geom.out_w) == (1, expected)


@pytest.mark.parametrize(("size", "k", "s", "d", "pb", "pa", "expected"), OUTPUT_SIZES)
def test_output_size_matches_torch(size: int, k: int, s: int, d: int, pb: int, pa: int, expected: int) -> None:
    torch = pytest.importorskip("torch")
    x = torch.zeros(1, 1, size + pb + pa, 1)
    w = torch.zeros(1, 1, k, 1)
    out = torch.nn.functional.conv2d(x, w, stride=(s, 1), dilation=(d, 1))
    assert out.shape[2] == expected


# (size, kernel, stride, dilation) -> expected (before, after) for pad='same'; each has
# output ceil(size / stride) and the odd pixel after (bottom/right).
SAME_PADS = [
    ((4, 2, 1, 1), (0, 1)),  # even kernel: the extra pixel goes bottom/right
    ((4, 3, 1, 1), (1, 1)),
    ((7, 4, 1, 1), (1, 2)),
    ((6, 3, 2, 1), (0, 1)),  # stride 2, even size: total 1
    ((5, 3, 2, 1), (1, 1)),
    ((7, 3, 3, 1), (1, 1)),
    ((10, 5, 4, 1), (1, 2)),
    ((5, 3, 1, 2), (2, 2)),  # dilated span 5
    ((6, 2, 1, 3), (1, 2)),  # dilated span 4
    ((1, 3, 1, 1), (1, 1)),
    ((8, 1, 3, 1), (0, 0)),  # the kernel never reaches past the input: no padding
    ((9, 2, 3, 1), (0, 0)),
]


@pytest.mark.parametrize(("args", "expected"), SAME_PADS)
def test_same_padding_table(args: tuple[int, int, int, int], expected: tuple[int, int]) -> None:
    size, k, s, d = args
    assert same_padding(size, k, s, d) == expected
    pads = resolve_padding("same", (size, 3), (k, 1), (s, 1), (d, 1))
    assert pads == (*expected, 0, 0)
    pads = resolve_padding("SAME", (1, size), (1, k), (1, s), (1, d))
    assert pads == (0, 0, *expected)
    geom = plan_geometry((1, 1, size, size), (1, 1, k, k), stride=s, pad="same", dilation=d)
    assert geom.pads == (*expected, *expected)
    assert geom.out_h == geom.out_w == -(-size // s)


@given(
    size=st.integers(1, 40), k=st.integers(1, 7), s=st.integers(1, 5), d=st.integers(1, 3),
)
@settings(max_examples=200, deadline=None)
def test_same_padding_properties(size: int, k: int, s: int, d: int) -> None:
    before, after = same_padding(size, k, s, d)
    assert 0 <= before <= after <= before + 1
    assert output_size(size, k, s, d, before, after) == -(-size // s)
    total = before + after
    if total:  # minimal: one pixel less would lose an output row
        assert output_size(size, k, s, d, 0, total - 1) < -(-size // s)


def test_torch_same_puts_extra_pixel_bottom_right() -> None:
    torch = pytest.importorskip("torch")
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    w = torch.tensor([[[[1.0, 2.0], [4.0, 8.0]]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = torch.nn.functional.conv2d(x, w, padding="same")
    explicit = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), w)
    assert torch.equal(same, explicit)
    assert resolve_padding("same", (4, 4), (2, 2), (1, 1), (1, 1)) == (0, 1, 0, 1)


def test_valid_and_explicit_pads() -> None:
    assert resolve_padding("valid", (5, 5), (3, 3), (1, 1), (1, 1)) == (0, 0, 0, 0)
    assert resolve_padding("Valid", (5, 5), (3, 3), (1, 1), (1, 1)) == (0, 0, 0, 0)
    assert resolve_padding(2, (5, 5), (3, 3), (1, 1), (1, 1)) == (2, 2, 2, 2)
    assert resolve_padding((1, 3), (5, 5), (3, 3), (1, 1), (1, 1)) == (1, 1, 3, 3)
    assert resolve_padding([1, 3], (5, 5), (3, 3), (1, 1), (1, 1)) == (1, 1, 3, 3)
    assert resolve_padding((1, 2, 3, 4), (5, 5), (3, 3), (1, 1), (1, 1)) == (1, 2, 3, 4)
    assert resolve_padding((0, 0, 0, 0), (5, 5), (3, 3), (1, 1), (1, 1)) == (0, 0, 0, 0)


def test_as_pair() -> None:
    assert as_pair(3, "stride") == (3, 3)
    assert as_pair((2, 5), "stride") == (2, 5)
    assert as_pair([2, 5], "stride") == (2, 5)
    assert as_pair(np.int64(4), "stride") == (4, 4)
    assert as_pair((np.int32(1), 2), "stride") == (1, 2)


@pytest.mark.parametrize("value", [1.5, 2.0, "2", None, True, (1, 2, 3), (1,), (1.0, 2)])
def test_as_pair_refuses(value: object) -> None:
    with pytest.raises(ParameterError, match="dilation"):
        as_pair(value, "dilation")


def test_geometry_fields() -> None:
    geom = plan_geometry(
        (2, 6, 11, 13), (4, 3, 3, 2), stride=(2, 3), pad=(1, 2, 0, 1), dilation=(2, 1), groups=2,
        padding_mode="reflect",
    )
    assert isinstance(geom, ConvGeometry)
    assert geom.input_shape == (2, 6, 11, 13)
    assert geom.stride == (2, 3) and geom.dilation == (2, 1)
    assert geom.pads == (1, 2, 0, 1)
    assert geom.padded_hw == (14, 14)
    assert geom.channels_per_group == 3 and geom.filters_per_group == 2
    # OH = (11 + 3 - 2*2 - 1) // 2 + 1 = 5; OW = (13 + 1 - 1 - 1) // 3 + 1 = 5
    assert geom.output_shape == (2, 4, 5, 5)
    assert geom.padding_mode == "reflect"


def test_padding_modes() -> None:
    for mode in ("zeros", "reflect", "replicate", "circular", "symmetric"):
        assert parse_padding_mode(mode) == PaddingMode(mode)
    assert str(parse_padding_mode("constant:0.25")) == "constant:0.25"
    with pytest.raises(ParameterError, match=r"padding_mode .*'mirrors'"):
        parse_padding_mode("mirrors")


# (x_shape, w_shape, kwargs, error class, regex the message must match)
BAD_ARGUMENTS = [
    ((3, 8, 8), (1, 3, 3, 3), {}, ShapeError, r"x must be 4-D .*3-D shape \(3, 8, 8\)"),
    ((1, 3, 8, 8), (3, 3, 3), {}, ShapeError, r"W must be 4-D .*\(3, 3, 3\)"),
    ((1, 2, 8, 8), (4, 3, 3, 3), {}, ShapeError, r"x has 2 channels but W expects 3 \(W.shape\[1\]=3 × groups=1\)"),
    ((1, 6, 8, 8), (4, 1, 3, 3), {"groups": 2}, ShapeError, r"x has 6 channels but W expects 2"),
    ((1, 4, 8, 8), (6, 1, 3, 3), {"groups": 3}, ParameterError, r"groups=3 does not divide the input's 4 channels"),
    ((1, 6, 8, 8), (4, 2, 3, 3), {"groups": 3}, ParameterError, r"groups=3 does not divide the 4 filters"),
    ((1, 3, 8, 8), (3, 1, 3, 3), {"groups": 0}, ParameterError, r"groups must be >= 1, got 0"),
    ((1, 3, 8, 8), (1, 3, 3, 3), {"stride": 0}, ParameterError, r"stride must be >= 1, got 0"),
    ((1, 3, 8, 8), (1, 3, 3, 3), {"stride": (1, -2)}, ParameterError, r"stride must be >= 1, got \(1, -2\)"),
    ((1, 3, 8, 8), (1, 3, 3, 3), {"dilation": 0}, ParameterError, r"dilation must be >= 1, got 0"),
    ((1, 3, 8, 8), (1, 3, 3, 3), {"dilation": (0, 1)}, ParameterError, r"dilation must be >= 1, got \(0, 1\)"),
    ((1, 3, 8, 8), (1, 3, 3, 3), {"pad": -1}, ParameterError, r"pad must be >= 0, got -1"),
    ((1, 3, 8, 8), (1, 3, 3, 3), {"pad": (0, -2)}, ParameterError, r"pad must be >= 0, got \(0, -2\)"),
    ((1, 3, 8, 8), (1, 3, 3, 3), {"pad": (0, 0, 0, -1)}, ParameterError, r"pad must be >= 0, got \(0, 0, 0, -1\)"),
    ((1, 3, 8, 8), (1, 3, 3, 3), {"pad": "full"}, ParameterError, r"pad must be .*'full'"),
    ((1, 3, 8, 8), (1, 3, 3, 3), {"pad": (1, 2, 3)}, ParameterError, r"pad must be .*\(1, 2, 3\)"),
    ((1, 3, 8, 8), (1, 3, 3, 3), {"stride": 1.5}, ParameterError, r"stride must be an integer, got 1\.5"),
    ((1, 1, 3, 3), (1, 1, 5, 5), {}, ShapeError, r"kernel 5×5 is larger than the padded input 3×3"),
    ((1, 1, 3, 4), (1, 1, 3, 5), {"pad": (1, 0)}, ShapeError, r"kernel 3×5 is larger than the padded input 5×4"),
    (
        (1, 1, 4, 4), (1, 1, 3, 3), {"dilation": 2}, ShapeError,
        r"kernel 3×3 \(dilated to 5×5\) is larger than the padded input 4×4",
    ),
    ((1, 1, 0, 4), (1, 1, 1, 1), {}, ShapeError, r"x must have no empty axis, got shape \(1, 1, 0, 4\)"),
    ((1, 1, 4, 4), (0, 1, 1, 1), {}, ShapeError, r"W must have no empty axis, got shape \(0, 1, 1, 1\)"),
    ((1, 1, 3, 3), (1, 1, 3, 3), {"padding_mode": "mirrored"}, ParameterError, r"padding_mode.*'mirrored'"),
    ((1, 1, 3, 3), (1, 1, 3, 3), {"padding_mode": "constant:x"}, ParameterError, r"constant:VALUE.*'constant:x'"),
    ((1, 1, 3, 3), (1, 1, 3, 3), {"padding_mode": "constant:inf"}, ParameterError, r"finite"),
    ((1, 1, 3, 3), (1, 1, 3, 3), {"padding_mode": "edge:2"}, ParameterError, r"padding_mode.*'edge:2'"),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "kw", "cls", "pattern"), BAD_ARGUMENTS)
def test_plan_geometry_refuses(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], kw: dict[str, object], cls: type, pattern: str
) -> None:
    with pytest.raises(cls, match=pattern) as info:
        plan_geometry(x_shape, w_shape, **kw)  # type: ignore[arg-type]
    assert isinstance(info.value, ConvcliError)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular", "symmetric", "constant:0.5"])
def test_any_mode_takes_padding_larger_than_the_image(mode: str) -> None:
    """Mirror and wrap modes extend periodically (np.pad's rule), so a kernel larger than the image
    works with 'same' padding in every mode."""
    assert plan_geometry((1, 1, 3, 3), (1, 1, 3, 3), pad=7, padding_mode=mode).output_shape == (1, 1, 15, 15)
    assert plan_geometry((1, 1, 1, 1), (1, 1, 3, 3), pad=5, padding_mode=mode).output_shape == (1, 1, 9, 9)
    assert plan_geometry((1, 1, 4, 5), (1, 1, 31, 9), pad="same", padding_mode=mode).output_shape == (1, 1, 4, 5)


@pytest.mark.parametrize(
    ("name", "mode", "value"),
    [("edge", "replicate", 0.0), ("nearest", "replicate", 0.0), ("mirror", "symmetric", 0.0), ("tile", "circular", 0.0),
     ("wrap", "circular", 0.0), ("black", "zeros", 0.0), ("gray", "constant", 0.5), ("white", "constant", 1.0),
     ("reflect101", "reflect", 0.0), ("Constant", "zeros", 0.0), ("constant:0", "zeros", 0.0),
     ("constant:-2.5", "constant", -2.5), ("SYMMETRIC", "symmetric", 0.0)],
)
def test_padding_mode_names_and_aliases(name: str, mode: str, value: float) -> None:
    assert parse_padding_mode(name) == PaddingMode(mode, value)
    geom = plan_geometry((1, 1, 3, 3), (1, 1, 3, 3), pad=1, padding_mode=name)
    assert (geom.padding_mode, geom.pad_value) == (mode, value)


@given(
    h=st.integers(1, 30), w=st.integers(1, 30), fh=st.integers(1, 6), fw=st.integers(1, 6),
    sh=st.integers(1, 4), sw=st.integers(1, 4), dh=st.integers(1, 3), dw=st.integers(1, 3),
    pads=st.tuples(*[st.integers(0, 4)] * 4),
)
@settings(max_examples=150, deadline=None)
def test_plan_geometry_output_formula(
    h: int, w: int, fh: int, fw: int, sh: int, sw: int, dh: int, dw: int, pads: tuple[int, int, int, int]
) -> None:
    top, bottom, left, right = pads
    fits = dh * (fh - 1) + 1 <= h + top + bottom and dw * (fw - 1) + 1 <= w + left + right
    try:
        geom = plan_geometry((1, 1, h, w), (1, 1, fh, fw), stride=(sh, sw), pad=pads, dilation=(dh, dw))
    except ShapeError as err:
        assert not fits
        assert "larger than the padded input" in str(err)
        return
    assert fits
    # PyTorch's formula, written out again
    assert geom.out_h == (h + top + bottom - dh * (fh - 1) - 1) // sh + 1
    assert geom.out_w == (w + left + right - dw * (fw - 1) - 1) // sw + 1
    assert geom.out_h >= 1 and geom.out_w >= 1
    # the last output pixel's receptive field stays inside the padded input; one more would not
    assert (geom.out_h - 1) * sh + dh * (fh - 1) < h + top + bottom <= geom.out_h * sh + dh * (fh - 1)


def test_messages_name_numbers() -> None:
    """The dilated-kernel message gives both sizes (regression guard for the format)."""
    with pytest.raises(ConvcliError) as info:
        plan_geometry((1, 1, 6, 6), (1, 1, 2, 4), dilation=(1, 3))
    assert re.search(r"kernel 2×4 \(dilated to 2×10\) is larger than the padded input 6×6", str(info.value))
