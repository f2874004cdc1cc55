"""``apply --explain`` and ``grad --explain``: the printed shapes and FLOPs are the ones the layer recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ok

from convcli.commands.trace_view import format_count, operation_shape
from convcli.engine.layer import Convolution
from convcli.engine.trace import Trace


def _expected(trace: Trace) -> list[str]:
    """Each recorded GEMM as the explain line prints it, time left out."""
    return [
        f"{op.label}: {operation_shape(op)}, ×{op.count}, {format_count(op.flops)}FLOP"
        for step in trace.steps for op in step.operations if op.kind == "gemm"
    ]


@pytest.mark.parametrize("stride", [1, 2])
def test_apply_and_grad_explain_print_the_layers_gemms(tmp_path: Path, stride: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 16, 21)).astype(np.float32)
    w = rng.random((4, 3, 3, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    layer = Convolution(w, stride=stride, pad="same", algorithm="im2col")
    layer.trace = Trace()
    y = layer.forward(x)
    out = ok("apply", tmp_path / "x.npy", "-k", tmp_path / "w.npy", "--stride", stride, "-o", tmp_path / "y.npy",
             "--explain")
    err = out.stderr
    assert "x (N, C, H, W) = (1, 3, 16, 21)" in err
    assert f"out (N, FN, OH, OW) = {tuple(y.shape)}" in err
    for line in _expected(layer.trace):
        assert line in err, (line, err)
    top, bottom, left, right = layer.trace.geometry.pads
    assert f"top {top}, bottom {bottom}, left {left}, right {right}" in err

    layer.backward(np.ones_like(y))
    out = ok("grad", tmp_path / "x.npy", "-k", tmp_path / "w.npy", "--stride", stride, "--dout", "ones",
             "-o", tmp_path / "g.npz", "--explain")
    for line in _expected(layer.trace):
        assert line in out.stderr, (line, out.stderr)
    assert f"backward   {layer.trace.backward}" in out.stderr


def test_explain_of_a_picture_counts_its_bands(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray((np.arange(30 * 40) % 251).astype(np.uint8).reshape(30, 40)).save(tmp_path / "p.png")
    out = ok("apply", tmp_path / "p.png", "-k", "sobel-x", "-o", tmp_path / "e.png", "--explain", "--quiet")
    assert "algorithm  separable" in out.stderr or "algorithm  im2col" in out.stderr
    assert "out (N, FN, OH, OW) = (1, 1, 30, 40)" in out.stderr
    assert "wrote" not in out.stderr  # --quiet silences the rest, not the explanation asked for


def test_explain_of_a_box_on_an_8_bit_picture_names_its_running_sums(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray((np.arange(30 * 40) % 251).astype(np.uint8).reshape(30, 40)).save(tmp_path / "p.png")
    out = ok("apply", tmp_path / "p.png", "-k", "box:7", "-o", tmp_path / "b.png", "--explain", "--quiet")
    assert "algorithm  running-sum: a 7×7 box on uint8 samples" in out.stderr
    assert "running sums down the columns and along the rows" in out.stderr
    assert "forward    no GEMMs (running sums: additions only)" in out.stderr
