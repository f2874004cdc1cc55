"""convcli against ImageMagick itself, on the same kernel strings (skipped where it is not installed).

What ImageMagick 6 does with a user kernel "WxH: v,v,...":
- ``-convolve`` correlates with the kernel normalized to sum 1  == ``apply --normalize``;
- ``-morphology Convolve`` convolves (kernel rotated 180°), unnormalized  == ``apply --flip``;
- with ``-define convolve:scale='!'`` it normalizes too  == ``apply --flip --normalize``.
Zero padding is ``-virtual-pixel black``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
KERNEL = "3x3: 1,2,0,0,1,0,0,0,3"  # asymmetric, positive sum: catches a flip, a transpose or a missing scale


def _imagemagick() -> str:
    convert = shutil.which("convert")
    if convert is None:
        pytest.skip("ImageMagick is not installed")
    version = subprocess.run([convert, "-version"], capture_output=True, text=True).stdout
    if "ImageMagick" not in version or "stand-in" in version:
        pytest.skip("ImageMagick is not installed")
    return convert


def _load16(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        array = np.asarray(image, dtype=np.float64)
    return array / (65535.0 if array.max() > 255 else 255.0)


@pytest.mark.parametrize(
    ("im_args", "convcli_flags"),
    [
        (["-convolve", KERNEL.split(":", 1)[1].strip()], ["--normalize"]),
        (["-morphology", "Convolve", KERNEL], ["--flip"]),
        (["-define", "convolve:scale=!", "-morphology", "Convolve", KERNEL], ["--flip", "--normalize"]),
    ],
)
def test_matches_imagemagick(tmp_path: Path, im_args: list[str], convcli_flags: list[str]) -> None:
    convert = _imagemagick()
    theirs = tmp_path / "im.png"
    subprocess.run(
        [convert, str(SAMPLES / "gray.png"), "-virtual-pixel", "black", *im_args, "-depth", "16", str(theirs)],
        check=True,
    )
    ours = tmp_path / "ours.npy"
    result = CliRunner().invoke(
        app, ["apply", str(SAMPLES / "gray.png"), "-k", KERNEL, *convcli_flags, "--padding-mode", "black", "-o",
              str(ours), "-q"]
    )
    assert result.exit_code == 0, result.output
    expected = _load16(theirs)
    got = np.clip(np.load(ours)[0, 0], 0, 1)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1.5 / 65535)


def test_rgb_png_identical_to_morphology_convolve(tmp_path: Path) -> None:
    convert = _imagemagick()
    theirs, ours = tmp_path / "im.png", tmp_path / "ours.png"
    subprocess.run(
        [convert, str(SAMPLES / "photo.png"), "-virtual-pixel", "black",
         "-morphology", "Convolve", KERNEL, str(theirs)],
        check=True,
    )
    result = CliRunner().invoke(
        app, ["apply", str(SAMPLES / "photo.png"), "-k", KERNEL, "--flip", "--padding-mode", "black", "-o", str(ours)]
    )
    assert result.exit_code == 0, result.output
    with Image.open(theirs) as a, Image.open(ours) as b:
        diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
    assert diff.max() <= 1
