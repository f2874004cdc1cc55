"""``apply --show-equivalent``: every printed call is run where its tool is installed, and its numbers compared.

Tolerances: PyTorch, scipy and OpenCV compute in float64 like these tests' convcli runs
(``--dtype float64``): 1e-10.  ImageMagick (Q16, non-HDRI) writes a 16-bit PNG of values
clipped to [0, 1]: 1e-4 (a few of its 1/65535 steps).  libvips computes in float32 on
8-bit samples: 1e-5.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ok

from convcli.commands.apply import OutputOptions, apply_command
from convcli.commands.common import LayerJob
from convcli.commands.equivalent import EquivalentSet
from convcli.kernels.bank import LayerOptions

MODES = ["zeros", "reflect", "replicate", "circular", "symmetric", "constant:0.25"]
MAGICK = "/usr/bin/convert"
VIPS = shutil.which("vips")


def _run_apply(tmp_path: Path, source: Path, kernels: list[str], **options: object) -> tuple[np.ndarray, EquivalentSet]:
    found: list[EquivalentSet] = []
    out = tmp_path / "convcli.npy"
    layer = LayerOptions(dtype="float64", **options)  # type: ignore[arg-type]
    apply_command([str(source)], kernels, LayerJob(layer), OutputOptions(output=str(out)), equivalent=found)
    (one,) = found
    return np.load(out), one


def _python(code: str, cwd: Path) -> np.ndarray:
    namespace: dict[str, object] = {}
    here = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(code, "<equivalent>", "exec"), namespace)  # the printed program, as printed
    finally:
        os.chdir(here)
    return np.asarray(namespace["y"])


def _bash(code: str, cwd: Path) -> None:
    result = subprocess.run(["bash", "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, (code, result.stderr)


@pytest.fixture
def array_input(tmp_path: Path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).random((1, 2, 9, 11)))
    return path


@pytest.fixture
def gray_image(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "g.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (10, 13), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("geometry", [
    {}, {"stride": (2, 1)}, {"dilation": 2}, {"pad": "valid"}, {"pad": (2, 0, 1, 2)},
])
def test_python_tools_compute_what_apply_computes(tmp_path: Path, array_input: Path, mode: str,
                                                  geometry: dict[str, object]) -> None:
    y, found = _run_apply(tmp_path, array_input, ["1,2,4;8,16,32", "0,1;-1,0;3,3"], padding_mode=mode,
                          bias=np.array([0.5, -1.0]), **geometry)
    ran = 0
    for item in found.items[:3]:
        module = {"PyTorch": "torch", "scipy": "scipy", "OpenCV": "cv2"}[item.tool.split(" ")[0].split(".")[0]]
        pytest.importorskip(module)
        if item.code is None:
            assert item.notes
            continue
        got = _python(item.code, tmp_path)
        np.testing.assert_allclose(got, y, rtol=1e-10, atol=1e-10, err_msg=item.tool)
        assert (tmp_path / str(item.output)).exists()
        ran += 1
    assert ran >= 2  # PyTorch and OpenCV express every geometry here


@pytest.mark.parametrize("mode", MODES)
def test_layer_kernel_with_groups(tmp_path: Path, mode: str) -> None:
    w = np.random.default_rng(2).standard_normal((4, 1, 3, 2))
    np.save(tmp_path / "w.npy", w)
    x = tmp_path / "x4.npy"
    np.save(x, np.random.default_rng(3).random((2, 2, 7, 8)))
    y, found = _run_apply(tmp_path, x, [str(tmp_path / "w.npy")], padding_mode=mode, groups=2, stride=2)
    for item in found.items[:3]:
        pytest.importorskip({"P": "torch", "s": "scipy", "O": "cv2"}[item.tool[0]])
        if item.code is not None:
            np.testing.assert_allclose(_python(item.code, tmp_path), y, rtol=1e-10, atol=1e-10, err_msg=item.tool)
    assert found.items[3].code is None and "ImageMagick reads pictures" in found.items[3].notes[0]


@pytest.mark.skipif(not os.path.exists(MAGICK), reason="ImageMagick's convert is not installed")
@pytest.mark.parametrize("mode", ["zeros", "replicate", "symmetric", "circular", "constant:0.25"])
@pytest.mark.parametrize("pad", ["same", "valid", (1, 0, 0, 2)])
def test_imagemagick(tmp_path: Path, gray_image: Path, mode: str, pad: object) -> None:
    from PIL import Image

    y, found = _run_apply(tmp_path, gray_image, ["1,2,3;4,5,6"], normalize=True, padding_mode=mode, pad=pad)
    item = found.items[3]
    assert item.code is not None, item.notes
    _bash(item.code, tmp_path)
    got = np.asarray(Image.open(tmp_path / str(item.output)), dtype=np.float64) / 65535
    np.testing.assert_allclose(got, np.clip(y[0, 0], 0, 1), rtol=0, atol=1e-4)


@pytest.mark.skipif(not os.path.exists(MAGICK), reason="ImageMagick's convert is not installed")
def test_imagemagick_says_what_it_cannot(tmp_path: Path, gray_image: Path) -> None:
    _, found = _run_apply(tmp_path, gray_image, ["sobel-x"], padding_mode="reflect")
    assert found.items[3].code is None and "reflect" in found.items[3].notes[0]
    _, found = _run_apply(tmp_path, gray_image, ["sobel-x", "sobel-y"])
    assert found.items[3].code is None and "one kernel" in found.items[3].notes[0]
    _, found = _run_apply(tmp_path, gray_image, ["sobel-x"], stride=2)
    assert found.items[3].code is None and "stride" in found.items[3].notes[0]


@pytest.mark.skipif(VIPS is None, reason="libvips's vips is not installed")
@pytest.mark.parametrize("kernel,options", [
    ("1,2,3;4,5,6;7,8,10", {}), ("gaussian:1", {"bias": np.array([0.25])}), ("1,-2,1", {"dilation": 2}),
])
def test_libvips(tmp_path: Path, gray_image: Path, kernel: str, options: dict[str, object]) -> None:
    from PIL import Image

    y, found = _run_apply(tmp_path, gray_image, [kernel], padding_mode="replicate", **options)
    item = found.items[4]
    assert item.code is not None, item.notes
    _bash(item.code, tmp_path)
    got = np.asarray(Image.open(tmp_path / str(item.output)), dtype=np.float64)
    np.testing.assert_allclose(got, y[0, 0], rtol=1e-5, atol=1e-5)


def test_libvips_says_what_it_cannot(tmp_path: Path, gray_image: Path, array_input: Path) -> None:
    _, found = _run_apply(tmp_path, gray_image, ["sobel-x"], padding_mode="zeros")
    assert found.items[4].code is None and "replicate" in found.items[4].notes[0]
    _, found = _run_apply(tmp_path, gray_image, ["1,2;3,4"], padding_mode="replicate")
    assert found.items[4].code is None and "centres" in found.items[4].notes[0]
    _, found = _run_apply(tmp_path, array_input, ["sobel-x"])
    assert found.items[4].code is None and "array" in found.items[4].notes[0]


def test_cli_prints_every_tool(tmp_path: Path, gray_image: Path) -> None:
    result = ok("apply", gray_image, "-k", "box:3", "-o", tmp_path / "o.png", "--show-equivalent", "--quiet")
    err = result.stderr
    for tool in ("# PyTorch", "# scipy.ndimage", "# OpenCV", "# ImageMagick", "# libvips"):
        assert tool in err
    assert "F.pad(" in err and "mode='nearest'" in err and "BORDER_REPLICATE" in err and "-virtual-pixel edge" in err
    assert "wrote" not in err
