"""``convcli shape``: the layer's own output shape over a hypothesis sweep, the receptive field, the costs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, ok
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.commands.shape import LayerSpec, parse_input_shape, parse_layer, shape_chain
from convcli.engine.layer import Convolution
from convcli.errors import ConvcliError

pads = st.one_of(
    st.sampled_from(["same", "valid"]), st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)),
    st.tuples(*[st.integers(0, 3)] * 4),
)


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 20), w=st.integers(1, 20), c=st.integers(1, 4), kh=st.integers(1, 5), kw=st.integers(1, 5),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    pad=pads, out=st.one_of(st.none(), st.integers(1, 4)),
)
def test_shape_equals_the_layers_output_shape(
    h: int, w: int, c: int, kh: int, kw: int, stride: tuple[int, int], dilation: tuple[int, int], pad: object,
    out: object,
) -> None:
    spec = LayerSpec((kh, kw), stride, pad, dilation, None, out)  # type: ignore[arg-type]
    groups = c if out is None else 1
    fn = c if out is None else out
    layer = Convolution(np.ones((fn, c // groups, kh, kw)), stride=stride, pad=pad, dilation=dilation,  # type: ignore
                        groups=groups)
    try:
        expected = layer.output_shape((2, c, h, w))
    except ConvcliError as error:
        with pytest.raises(ConvcliError) as raised:
            shape_chain((2, c, h, w), [spec])
        assert raised.value.message == error.message
        return
    (row,) = shape_chain((2, c, h, w), [spec])
    assert row.output_shape == expected
    assert row.pads == layer.geometry((2, c, h, w)).pads
    # the output really has that shape
    assert layer.forward(np.zeros((2, c, h, w))).shape == expected


def test_resnet_stem_numbers() -> None:
    rows = shape_chain(parse_input_shape("3x224x224"), [
        LayerSpec((7, 7), 2, 3, 1, None, 64), parse_layer("k=3x3,stride=2,pad=1,out=64"),
    ])
    stem, second = rows
    assert stem.output_shape == (1, 64, 112, 112)
    assert stem.macs == 112 * 112 * 64 * 3 * 49 and stem.flops == 2 * stem.macs
    assert stem.params == 64 * 3 * 49 + 64
    assert stem.activation_bytes == 64 * 112 * 112 * 4
    assert stem.receptive_field == (7, 7) and stem.jump == (2, 2)
    assert second.receptive_field == (7 + 2 * 2, 11) and second.output_shape == (1, 64, 56, 56)


def test_receptive_field_with_dilation_and_same_padding_odd_total() -> None:
    rows = shape_chain((1, 1, 9, 9), [parse_layer("k=3,dilation=2"), parse_layer("k=2x2,stride=2")])
    assert rows[0].receptive_field == (5, 5)
    assert rows[1].pads == (0, 1, 0, 1)  # 'same' with an odd total: the extra pixel bottom/right
    assert rows[1].receptive_field == (6, 6)


def test_receptive_field_matches_the_gradient_support() -> None:
    """The receptive field is the set of inputs an output pixel's gradient reaches (a chain of real layers)."""
    x = np.zeros((1, 1, 31, 31))
    l1 = Convolution(np.ones((1, 1, 3, 3)), stride=2, pad=0)
    l2 = Convolution(np.ones((1, 1, 3, 3)), dilation=2, pad=0)
    y = l2.forward(l1.forward(x))
    dout = np.zeros_like(y)
    dout[0, 0, 2, 2] = 1
    dx = l1.backward(l2.backward(dout))
    rows_hit = np.flatnonzero(dx[0, 0].any(axis=1))
    rows = shape_chain((1, 1, 31, 31), [LayerSpec((3, 3), 2, 0), LayerSpec((3, 3), 1, 0, 2)])
    assert rows[-1].receptive_field[0] == rows_hit[-1] - rows_hit[0] + 1


def test_parse_layer_errors() -> None:
    for text, fragment in [("stride=2", "no kernel size"), ("k=3,foo=1", "'foo=1'"), ("k=3,out=0", ">= 1"),
                           ("k=axb", "whole numbers"), ("k=3,pad=1x2x3", "1 or 2 or 4")]:
        with pytest.raises(ConvcliError, match=fragment):
            parse_layer(text)


def test_cli_table_and_json() -> None:
    result = ok("shape", "3x224x224", "-k", "7x7", "--stride", "2", "--pad", "3", "--out", "64",
                "--layer", "k=3x3,stride=2,pad=1")
    assert "1×64×112×112" in result.stdout and "236 M" in result.stdout and "11×11" in result.stdout
    data = json.loads(ok("shape", "1x28x28", "--layer", "k=5x5,pad=valid,out=6", "--layer",
                         "k=5x5,pad=valid,out=16", "--json").stdout)
    assert data["layers"][1]["output_shape"] == [1, 16, 20, 20]
    assert data["total"]["params"] == 6 * 25 + 6 + 16 * 6 * 25 + 16
    assert data["total"]["receptive_field"] == [9, 9]


def test_cli_errors_are_one_line() -> None:
    assert_one_line_error(ok_or("shape", "3x5x5", "-k", "9x9", "--pad", "valid"), 2, "larger than the padded input")
    assert_one_line_error(ok_or("shape", "3x5x0"), 2, "positive sizes")
    assert_one_line_error(ok_or("shape", "3x5x5"), 2, "no layer given")
    assert_one_line_error(ok_or("shape", "3x5x5", "--out", "4"), 2, "give -k")


def ok_or(*args: object):  # type: ignore[no-untyped-def]
    from cli_helpers import run

    return run(*args)
