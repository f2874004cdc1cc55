"""``convcli explain``: the sum by hand equals apply's value (every padding mode, stride), dx equals grad's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, ok, run

from convcli import im2col
from convcli.commands.common import LayerJob
from convcli.commands.explain import column_matrix, explain_command, padded_index
from convcli.engine.geometry import plan_geometry
from convcli.kernels.bank import LayerOptions

MODES = ["zeros", "reflect", "replicate", "circular", "symmetric", "constant:0.25"]


def _job(**kwargs: object) -> LayerJob:
    return LayerJob(LayerOptions(**kwargs))  # type: ignore[arg-type]


@pytest.fixture
def position_array(tmp_path: Path) -> Path:
    """Values that encode their place (100·c + 10·i + j), so a wrong tap shows."""
    c, h, w = np.meshgrid(np.arange(2), np.arange(6), np.arange(7), indexing="ij")
    path = tmp_path / "x.npy"
    np.save(path, (100.0 * c + 10 * h + w)[None])
    return path


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stride", [1, 2, (2, 3)])
def test_explained_pixel_equals_apply(tmp_path: Path, position_array: Path, mode: str, stride: object) -> None:
    kernel = "1,2,4;8,16,32;64,128,256"  # taps all distinct powers of two: a wrong tap shows
    stride_text = ",".join(map(str, stride)) if isinstance(stride, tuple) else str(stride)
    ok("apply", position_array, "-k", kernel, "--stride", stride_text, "--padding-mode", mode, "--bias", "0.5",
       "-o", tmp_path / "y.npy", "-q")
    y = np.load(tmp_path / "y.npy")
    for at in [(0, 0), (y.shape[2] - 1, y.shape[3] - 1), (y.shape[2] // 2, 1)]:
        report = explain_command(str(position_array), [kernel], _job(stride=stride, padding_mode=mode,
                                                                      bias=np.array([0.5])), at)
        assert [p.map for p in report.pixels] == [0, 1]
        for pixel in report.pixels:
            assert pixel.total == pytest.approx(y[0, pixel.map, at[0], at[1]], rel=1e-12, abs=1e-9)
            assert pixel.engine == pytest.approx(y[0, pixel.map, at[0], at[1]], rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_explained_pixel_with_dilation_flip_normalize_on_an_image(tmp_path: Path, mode: str) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    ok("apply", tmp_path / "p.png", "-k", "1,2;3,5", "--dilation", "2", "--flip", "--normalize", "--padding-mode",
       mode, "-o", tmp_path / "y.npy", "-q")
    y = np.load(tmp_path / "y.npy")
    report = explain_command(str(tmp_path / "p.png"), ["1,2;3,5"],
                             _job(dilation=2, flip=True, normalize=True, padding_mode=mode), (0, 10))
    assert len(report.pixels) == 3
    for pixel in report.pixels:
        assert pixel.total == pytest.approx(y[0, pixel.map, 0, 10], rel=1e-5, abs=1e-6)  # float32 apply


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stride", [1, 2])
def test_explained_dx_equals_grad(tmp_path: Path, position_array: Path, mode: str, stride: int) -> None:
    ok("grad", position_array, "-k", "1,2,4;8,16,32;64,128,256", "--stride", stride, "--padding-mode", mode,
       "--dout", "randn:3", "-o", tmp_path / "g.npz", "-q")
    dx = np.load(tmp_path / "g.npz")["dx"]
    for at in [(0, 0), (5, 6), (2, 3)]:
        report = explain_command(str(position_array), ["1,2,4;8,16,32;64,128,256"],
                                 _job(stride=stride, padding_mode=mode), at, fmap=1, grad=True, dout="randn:3")
        assert report.grad is not None
        assert report.grad.total == pytest.approx(dx[0, 1, at[0], at[1]], rel=1e-12, abs=1e-9)
        assert report.grad.engine == pytest.approx(dx[0, 1, at[0], at[1]], rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_column_matrix_is_im2col(mode: str) -> None:
    x = np.random.default_rng(1).random((1, 2, 5, 6))
    geom = plan_geometry(x.shape, (2, 2, 3, 3), (2, 1), "same", 1, 1, mode)
    cols = column_matrix(x, geom, 0, 0)
    expected = im2col(x, 3, 3, (2, 1), "same", padding_mode=mode)  # (OH*OW, C*FH*FW)
    np.testing.assert_allclose(cols.values, expected.T, rtol=0, atol=1e-15)
    assert cols.rows[0] == "c0 (0,0)" and cols.rows[-1] == "c1 (2,2)"
    assert cols.columns[0] == "(0,0)" and len(cols.columns) == geom.out_h * geom.out_w
    assert cols.padded[0, 0] and not cols.padded[4, 0]  # tap (1,1) of pixel (0,0) is the pixel itself


def test_padded_index_matches_numpy_pad() -> None:
    names = {"reflect": "reflect", "symmetric": "symmetric", "replicate": "edge", "circular": "wrap"}
    for size in (1, 2, 3, 5):
        row = np.arange(size)
        for mode, numpy_mode in names.items():
            if mode == "reflect" and size == 1:
                continue
            padded = np.pad(row, 7, mode=numpy_mode)  # type: ignore[call-overload]
            assert [padded_index(i, size, mode) for i in range(-7, size + 7)] == list(padded), (mode, size)
    assert padded_index(-1, 3, "zeros") is None


def test_cli_prints_the_patch_the_sum_and_the_columns(position_array: Path) -> None:
    result = ok("explain", position_array, "-k", "sobel-x", "--at", "0,0", "--map", "1", "--padding-mode",
                "reflect", "--columns")
    out = result.stdout
    assert "out[0, 1, 0, 0]" in out and "←(1,0)" in out  # row -1 reads row 1 under reflect
    assert "the layer apply runs gives" in out and "difference 0" in out
    assert "the column matrix col: 9 rows" in out and "c1 (2,2)" in out
    grad = ok("explain", position_array, "-k", "sobel-x", "--at", "0,0", "--grad", "--padding-mode", "replicate")
    assert "← padding" in grad.stdout and "dx = " in grad.stdout


def test_cli_errors(position_array: Path) -> None:
    assert_one_line_error(run("explain", position_array, "-k", "sobel-x", "--at", "6,0"), 2, "--at row 6", "0 to 5")
    assert_one_line_error(run("explain", position_array, "-k", "sobel-x", "--at", "3"), 2, "Y,X")
    assert_one_line_error(run("explain", position_array, "-k", "sobel-x", "--at", "0,0", "--map", "2"), 2, "--map 2")
    assert_one_line_error(run("explain", position_array, "-k", "box:40", "--at", "0,0", "--columns"), 2,
                          "column matrix")
