"""``convcli apply`` against ImageMagick itself, on the same kernel strings (skipped where it is not installed).

What ImageMagick 6 does with a kernel, and what gives the same in convcli:

- ``-morphology Convolve K`` convolves (the kernel and its origin turned 180°), unscaled
  == ``apply -k K --flip``, for every kernel string (named, ``WxH+X+Y:``, holes, lists);
- ``-convolve`` correlates with the kernel normalized to sum 1  == ``apply --normalize``;
- ``-define convolve:scale=S``  == ``--scale S``;
- ``-define morphology:compose=Lighten|Darken|Plus`` on a kernel list == ``--combine max|min|sum``;
- ``-virtual-pixel NAME`` == ``--padding-mode NAME``; ImageMagick's default is edge, convcli's
  default for images (replicate).

ImageMagick's 8- and 16-bit builds clip every result to [0, 1], so convcli's PNGs here use
``--display clip``; results agree to one 8-bit level.  ``test_levels`` compares at 16 bits
with the floats convcli computes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from cli_helpers import ok
from imagemagick_helpers import convert, filtered, run
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
KERNEL = "3x3: 1,2,0,0,1,0,0,0,3"  # asymmetric, positive sum: catches a flip, a transpose or a missing scale
#: An asymmetric 5×4 kernel with its origin off-centre, summing to 1.4 (no saturation on the photo).
ASYMMETRIC = "5x4+1+3: " + ",".join(f"{v / 10:g}" for v in [3, 0, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 4, 0, 1, 0, 0, 0, 2])


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    shutil.copy(SAMPLES / "photo.png", tmp_path / "photo.png")
    return tmp_path / "photo.png"


def pixels(path: Path) -> np.ndarray:
    """RGB values; ImageMagick writes an all-gray result as a gray PNG."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int64)


def load16(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        array = np.asarray(image, dtype=np.float64)
    return array / (65535.0 if array.max() > 255 else 255.0)


def compare(tmp_path: Path, source: Path, spec: str, convcli: list[str], magick: list[str]) -> int:
    """The largest 8-bit difference between convcli's PNG and ImageMagick's for the same job."""
    theirs, ours = tmp_path / "im.png", tmp_path / "ours.png"
    run(str(source), *magick, "-morphology", "Convolve", spec, str(theirs))
    ok("apply", source, "-k", spec, "--flip", "--display", "clip", *convcli, "-o", ours, "-q")
    a, b = pixels(theirs), pixels(ours)
    assert a.shape == b.shape
    return int(np.abs(a - b).max())


# ---------------------------------------------------------------- the kernel language


@pytest.mark.parametrize("spec", [
    "Sobel", "Sobel:45", "Sobel:90", "Kirsch:45", "Roberts:135", "Prewitt:270", "Compass:90", "FreiChen",
    "FreiChen:2", "FreiChen:14", "Laplacian:1", "Laplacian:5", "LoG:0x1.4", "DoG:0,1,2", "Gaussian:0x1.5",
    "Gaussian:3x2", "Blur:0x2", "Blur:0x2+90", "Comet:0x3", "Comet:0x3+270", "Unity:0.5", "Octagon:2,0.05",
    KERNEL, ASYMMETRIC, "3x3+0+0: 1,0,0,0,0,0,0,0,0", "3x3+2+2: 0,0,0,0,0,0,0,0,1",
    "4x3+1+2: " + ",".join(f"{v / 100:g}" for v in range(1, 13)),
    "2x2: 1,0,0,0", "3: 0.2,nan,0.2, -,0.2,0.2, 0.1,nan,0.1", "1x5+0+4: 1,0,0,0,0", "7x1+6+0: 1,0,0,0,0,0,0",
])
def test_kernel_strings(tmp_path: Path, photo: Path, spec: str) -> None:
    assert compare(tmp_path, photo, spec, [], []) <= 1


@pytest.mark.parametrize(("spec", "scale"), [
    ("Sobel", "!"), ("Kirsch:45", "50%!"), ("Laplacian:0", "!,100%"), ("Gaussian:0x2", "-100,200%"),
    ("Binomial:2", "!"), ("Disk:2", "!"), ("Diamond:2", "!"), ("Square:1", "!"), ("Plus:2", "!"), ("Cross:1", "!"),
    ("Rectangle:4x2+0+1", "!"), ("3x3: 1,-1,2,-2,0,3,-3,1,-1", "^"), ("3x3: 1,-1,2,-2,0,3,-3,1,-1", "^,50%"),
    ("LoG:0x1", "2"), ("3x3+0+0: 1,2,3,4,5,6,7,8,9", "!,0.5"), ("Unity", "0.5,0.25"), (KERNEL, "!"),
])
def test_scale_is_convolve_scale(tmp_path: Path, photo: Path, spec: str, scale: str) -> None:
    assert compare(tmp_path, photo, spec, ["--scale", scale], ["-define", f"convolve:scale={scale}"]) <= 1


@pytest.mark.parametrize(("spec", "combine", "compose", "scale"), [
    ("Kirsch:@", "max", "Lighten", None),
    ("Sobel;Sobel:90", "maxabs", None, None),  # Sobel:> holds ±Sobel and ±Sobel:90: Lighten of it is max |y|
    ("Compass:@", "max", "Lighten", "!"),
    ("FreiChen:11;FreiChen:12;FreiChen:13;FreiChen:14", "max", "Lighten", None),
    ("Gaussian:0x1;Gaussian:0x3;Blur:0x4", "min", "Darken", None),
    ("Blur:0x3;Blur:0x3+90", "sum", "Plus", "0.5"),
    ("Roberts:@", "max", "Lighten", None),
    ("3x3+0+0: 1,0,0,0,0,0,0,0,0;3x3+2+2: 0,0,0,0,0,0,0,0,1", "max", "Lighten", None),
    ("Sobel:@", "min", "Darken", "!,50%"),
])
def test_combine_is_morphology_compose(tmp_path: Path, photo: Path, spec: str, combine: str,
                                       compose: Optional[str], scale: Optional[str]) -> None:
    theirs, ours = tmp_path / "im.png", tmp_path / "ours.png"
    defines = ["-define", f"convolve:scale={scale}"] if scale else []
    if compose is None:  # maxabs: ImageMagick's Lighten over the kernels and their negatives
        run(str(photo), *defines, "-define", "morphology:compose=Lighten", "-morphology", "Convolve", "Sobel:>",
            str(theirs))
    else:
        run(str(photo), *defines, "-define", f"morphology:compose={compose}", "-morphology", "Convolve", spec,
            str(theirs))
    extra = ["--scale", scale] if scale else []
    ok("apply", photo, "-k", spec, "--flip", "--combine", combine, "--display", "clip", *extra, "-o", ours, "-q")
    assert int(np.abs(pixels(theirs) - pixels(ours)).max()) <= 1


def test_compass_default_display_is_imagemagick_s(tmp_path: Path, photo: Path) -> None:
    """--combine max shows the edge strength clipped, as ImageMagick does: no --display needed."""
    theirs, ours = tmp_path / "im.png", tmp_path / "ours.png"
    run(str(photo), "-define", "morphology:compose=Lighten", "-morphology", "Convolve", "Kirsch:@", str(theirs))
    result = ok("apply", photo, "-k", "Kirsch:@", "--flip", "--combine", "max", "-o", ours)
    assert "display clip" in result.stderr and "padding replicate" in result.stderr
    assert int(np.abs(pixels(theirs) - pixels(ours)).max()) <= 1


# ---------------------------------------------------------------- padding: -virtual-pixel


@pytest.mark.parametrize("name", ["edge", "mirror", "tile", "black", "white", "gray"])
def test_virtual_pixel_names(tmp_path: Path, photo: Path, name: str) -> None:
    spec = "9x7+8+6: " + ",".join(["1"] + ["0"] * 62)  # one tap 8 columns and 6 rows from the origin: a shift
    assert compare(tmp_path, photo, ASYMMETRIC, ["--padding-mode", name], ["-virtual-pixel", name]) <= 1
    assert compare(tmp_path, photo, spec, ["--padding-mode", name], ["-virtual-pixel", name]) <= 1


def test_default_padding_of_images_is_imagemagick_s_default(tmp_path: Path, photo: Path) -> None:
    """No dark frame: a blur's border holds the image's own edge, as ImageMagick's default (edge) does."""
    theirs, ours = tmp_path / "im.png", tmp_path / "ours.png"
    run(str(photo), "-morphology", "Convolve", "Gaussian:0x3", str(theirs))
    result = ok("apply", photo, "-k", "Gaussian:0x3", "--flip", "-o", ours)
    assert result.stderr.splitlines()[0].endswith("padding replicate)")
    a, b = pixels(theirs), pixels(ours)
    assert int(np.abs(a - b).max()) <= 1
    zero = tmp_path / "zero.png"
    ok("apply", photo, "-k", "Gaussian:0x3", "--flip", "--padding-mode", "zeros", "-o", zero, "-q")
    assert pixels(zero)[0].mean() < b[0].mean() - 20  # zero padding darkens the top row by far more than a level


# ---------------------------------------------------------------- -convolve and the 16-bit levels


@pytest.mark.parametrize(
    ("im_args", "convcli_flags"),
    [
        (["-convolve", KERNEL.split(":", 1)[1].strip()], ["--normalize"]),
        (["-morphology", "Convolve", KERNEL], ["--flip"]),
        (["-define", "convolve:scale=!", "-morphology", "Convolve", KERNEL], ["--flip", "--normalize"]),
        (["-define", "convolve:scale=!", "-morphology", "Convolve", KERNEL], ["--flip", "--scale", "!"]),
    ],
)
def test_levels(tmp_path: Path, im_args: list[str], convcli_flags: list[str]) -> None:
    convert()
    theirs = tmp_path / "im.png"
    run(str(SAMPLES / "gray.png"), "-virtual-pixel", "black", *im_args, "-depth", "16", str(theirs))
    ours = tmp_path / "ours.npy"
    ok("apply", SAMPLES / "gray.png", "-k", KERNEL, *convcli_flags, "--padding-mode", "black", "-o", ours, "-q")
    expected = load16(theirs)
    got = np.clip(np.load(ours)[0, 0], 0, 1)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1.5 / 65535)


def test_floats_match_imagemagick_to_rounding(tmp_path: Path) -> None:
    """On 16-bit data, convcli's floats rounded are ImageMagick's 16-bit result to one 16-bit level."""
    rng = np.random.default_rng(0)
    x16 = rng.integers(2000, 20000, (3, 23, 31))
    np.save(tmp_path / "x.npy", x16 / 65535.0)
    for spec in [ASYMMETRIC, "3x3+2+0@: 1,2,0,0,1,0,0,nan,3", "Comet:0x2+90", "4x4+0+3: " + ",".join("1" * 16)]:
        for name in ("edge", "mirror", "tile", "black"):
            theirs = filtered(x16, "-virtual-pixel", name, "-morphology", "Convolve", spec.split(";")[0])
            ok("apply", tmp_path / "x.npy", "-k", spec, "--flip", "--padding-mode", name, "-o", tmp_path / "y.npy",
               "-q")
            ours = np.load(tmp_path / "y.npy")[0]
            if ours.shape[0] != 3:  # a rotation set: ImageMagick's run re-iterates, compare the first kernel only
                continue
            levels = np.clip(np.floor(ours * 65535 + 0.5), 0, 65535)  # ImageMagick rounds half up
            assert np.abs(levels - theirs).max() <= 1  # at ties, its sums and convcli's round apart
