"""convcli kernels SPEC --png FILE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cli_helpers import assert_one_line_error, ok, run
from PIL import Image


def test_kernel_png_is_written(tmp_path: Path) -> None:
    result = ok("kernels", "sobel-x", "--png", tmp_path / "k.png")
    assert "sobel-x: 3×3, sum 0" in result.stdout  # the matrix is still printed
    assert "wrote" in result.stderr and "png" in result.stderr
    with Image.open(tmp_path / "k.png") as im:
        assert im.mode == "RGB" and im.width >= 3 * 49


def test_kernel_png_of_a_layer_draws_every_slice(tmp_path: Path) -> None:
    np.save(tmp_path / "w.npy", np.arange(2 * 3 * 3 * 3, dtype=np.float64).reshape(2, 3, 3, 3) - 20)
    ok("kernels", tmp_path / "w.npy", "--png", tmp_path / "w.png", "-q")
    ok("kernels", "sobel-x", "--png", tmp_path / "one.png", "-q")
    with Image.open(tmp_path / "w.png") as many, Image.open(tmp_path / "one.png") as one:
        assert many.width > 5 * one.width  # six [f, c] slices side by side


def test_kernel_png_errors(tmp_path: Path) -> None:
    assert_one_line_error(run("kernels", "--png", tmp_path / "k.png"), 2, "--png draws a kernel")
    assert_one_line_error(run("kernels", "sobel-x", "--png", tmp_path / "k.jpg"), 4, "--png", "PNG")
    assert_one_line_error(run("kernels", "nosuch", "--png", tmp_path / "k.png"), 2)
    assert sorted(tmp_path.iterdir()) == []
