"""The engine's trace: the GEMMs it records are the ones the layer ran, with the layer's shapes."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.engine.layer import Convolution
from convcli.engine.trace import Trace, owned_bytes, tracing


def _traced(W: np.ndarray, x: np.ndarray, backward: bool = False, **kwargs: object) -> tuple[Convolution, Trace]:
    layer = Convolution(W, **kwargs)  # type: ignore[arg-type]
    layer.trace = Trace()
    y = layer.forward(x)
    if backward:
        layer.backward(np.ones_like(y))
    return layer, layer.trace


def test_im2col_gemm_shapes_are_the_plans() -> None:
    rng = np.random.default_rng(0)
    W, x = rng.random((4, 3, 3, 3)), rng.random((2, 3, 12, 17))
    layer, trace = _traced(W, x, pad=1, algorithm="im2col")
    plan = layer.plan(x.shape, np.dtype(np.float64))
    assert trace.geometry == plan.geom and trace.choice.algorithm == "im2col"
    step = trace.find("forward (im2col)")
    assert step is not None and step.calls == 1
    (gemm,) = [op for op in step.operations if op.kind == "gemm"]
    wq = plan.layouts[plan.chunks[0].shape].wq
    pixels = sum(t.images * t.rows * wq for t in plan.tiles)
    assert gemm.a == (1, 4, 27)  # (groups, FN/groups, C/groups·FH·FW)
    assert gemm.b[:2] == (1, 27)
    assert gemm.count == len(plan)
    assert gemm.count * gemm.b[2] == pixels  # every tile's columns, junk included
    assert gemm.flops == 2 * 4 * 27 * pixels
    assert step.workers >= 1 and step.buffer_bytes > 0
    assert step.result_bytes == 2 * 4 * 12 * 17 * 8


def test_many_tiles_are_counted_and_flops_cover_the_convolution() -> None:
    rng = np.random.default_rng(1)
    W, x = rng.random((8, 3, 5, 5)).astype(np.float32), rng.random((1, 3, 64, 64)).astype(np.float32)
    layer, trace = _traced(W, x, pad=2, tile_bytes=20_000)
    plan = layer.plan(x.shape, np.dtype(np.float32))
    assert len(plan) > 1
    step = trace.find("forward (im2col)")
    assert step is not None
    assert sum(op.count for op in step.operations if op.kind == "gemm") == len(plan)
    useful = 2 * 8 * 64 * 64 * 3 * 25
    assert useful <= step.flops < 1.5 * useful


@pytest.mark.parametrize("stride,method", [(1, "correlation"), (2, "col2im")])
def test_backward_records_its_method_and_shapes(stride: int, method: str) -> None:
    rng = np.random.default_rng(2)
    W, x = rng.random((4, 3, 3, 3)), rng.random((1, 3, 10, 11))
    layer, trace = _traced(W, x, backward=True, pad=1, stride=stride, algorithm="im2col")
    assert trace.backward == method
    step = trace.find(f"backward ({method})")
    assert step is not None
    gemms = [op for op in step.operations if op.kind == "gemm"]
    assert len(gemms) == 2
    if method == "col2im":
        dw, dcol = gemms
        assert dw.a[1] == 27 and dw.b[2] == 4  # dWᵀ (K × FN) = col (K × P) · doutᵀ (P × FN)
        assert dcol.a[1:] == (27, 4)
    else:
        dx, dw = gemms
        assert dx.a[1:] == (3, 36)  # C × (FN·FH·FW): the flipped kernel over dout's columns
        assert dw.b[2] == 3


def test_separable_and_banded_record_their_gemms() -> None:
    x = np.random.default_rng(3).random((1, 2, 30, 40))
    _, trace = _traced(np.ones((2, 1, 9, 9)), x, pad=4, groups=2)
    assert trace.choice.algorithm == "separable"
    step = trace.find("forward (separable)")
    assert step is not None and any("vertical" in op.label for op in step.operations)
    assert any("horizontal" in op.label for op in step.operations)
    _, trace = _traced(np.random.default_rng(4).random((2, 1, 9, 9)), x, pad=4, groups=2)
    assert trace.choice.algorithm == "banded"
    assert trace.find("forward (banded)") is not None


def test_bands_of_rows_add_to_one_step() -> None:
    x = np.random.default_rng(5).random((1, 1, 20, 20))
    layer = Convolution(np.ones((1, 1, 3, 3)), pad=1, algorithm="im2col")
    layer.trace = Trace()
    layer.forward_rows(x, 0, 10)
    layer.forward_rows(x, 10, 20)
    step = layer.trace.find("forward (im2col)")
    assert step is not None and step.calls == 2


def test_no_trace_records_nothing_and_results_agree() -> None:
    rng = np.random.default_rng(6)
    W, x = rng.random((4, 3, 3, 3)), rng.random((1, 3, 20, 20))
    plain = Convolution(W, pad=1).forward(x)
    _, trace = _traced(W, x, pad=1)
    np.testing.assert_array_equal(plain, Convolution(W, pad=1).forward(x))
    with tracing(None):
        np.testing.assert_array_equal(Convolution(W, pad=1).forward(x), plain)
    assert trace.flops > 0


def test_owned_bytes_counts_views_once() -> None:
    base = np.zeros(1000)

    class Holder:
        pass

    holder = Holder()
    holder.__dict__.update(a=base[:10], b=base[5:], c={"k": base.reshape(10, 100)})
    Holder.__module__ = "convcli.engine.test"
    assert owned_bytes(holder) == base.nbytes
    strided = np.lib.stride_tricks.as_strided(base, shape=(10,), strides=(8,))
    assert owned_bytes([strided, np.ones(3)]) == base.nbytes + 24
