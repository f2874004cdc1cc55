"""The CLI's ImageMagick-facing options: the default padding by input kind, --combine, --scale, kernel sets in grad.

References are the library's own layers (built here with explicit padding modes) and
float64 central differences (``grad --check``); the agreement with ImageMagick itself is
``test_cli_imagemagick.py``'s.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, ok, run
from PIL import Image

from convcli import Convolution
from convcli.kernels.bank import LayerOptions, build_layer
from convcli.kernels.spec import parse_kernels

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    with Image.open(SAMPLES / "photo.png") as im:
        im.crop((60, 80, 84, 98)).save("rgb.png")  # 24×18
    shutil.copy(SAMPLES / "gray.png", "gray.png")
    return tmp_path


def image(path: str) -> np.ndarray:
    """(1, 3, H, W) as convcli computes with it in float64: k/255 (8-bit samples are converted by the engine)."""
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB")).astype(np.float64) / 255
    return np.moveaxis(pixels, -1, 0)[None]


def library(x: np.ndarray, spec: str, mode: str, **options: object) -> np.ndarray:
    kernels = list(parse_kernels(spec).kernels)
    layer = build_layer(kernels, x.shape[1], LayerOptions(padding_mode=mode, **options),  # type: ignore[arg-type]
                        np.dtype(np.float64))
    return layer.forward(x)


# ---------------------------------------------------------------- the default padding


def test_images_default_to_replicate_and_arrays_to_zeros(work: Path) -> None:
    x = image("rgb.png")
    np.save("x.npy", x)
    said = ok("apply", "rgb.png", "x.npy", "-k", "gaussian:2", "--dtype", "float64", "-o", "{stem}-out.npy").stderr
    np.testing.assert_allclose(np.load("rgb-out.npy"), library(x, "gaussian:2", "replicate"), rtol=1e-12)
    np.testing.assert_allclose(np.load("x-out.npy"), library(x, "gaussian:2", "zeros"), rtol=1e-12)
    assert "'rgb-out.npy' (npy, 1×3×18×24, padding replicate)" in said
    assert "'x-out.npy' (npy, 1×3×18×24, padding zeros)" in said
    # no dark frame: the blurred border keeps the image's brightness
    blurred = np.load("rgb-out.npy")[0]
    assert abs(blurred[:, 0].mean() - x[0, :, 0].mean()) < 0.05
    assert np.load("x-out.npy")[0][:, 0].mean() < blurred[:, 0].mean() - 0.1


def test_an_image_on_standard_input_is_an_image(work: Path) -> None:
    result = ok("apply", "-", "-k", "box:5", "-o", "out.npy", input=Path("rgb.png").read_bytes())
    assert "padding replicate" in result.stderr
    np.testing.assert_allclose(np.load("out.npy"), library(image("rgb.png"), "box:5", "replicate"), atol=1e-6)


def test_an_explicit_padding_mode_wins_for_every_kind(work: Path) -> None:
    np.save("x.npy", image("rgb.png"))
    said = ok("apply", "rgb.png", "x.npy", "-k", "box:3", "--padding-mode", "mirror", "-o", "{stem}.npz").stderr
    assert said.count("padding symmetric") == 2  # ImageMagick's mirror is convcli's symmetric


def test_grad_defaults_by_kind_and_says_so(work: Path) -> None:
    said = ok("grad", "rgb.png", "-k", "sobel-x", "--dout", "randn:1", "--check", "-o", "g.npz").stderr
    assert "(float32, padding replicate)" in said and "(npz: dx, dW, db, dK; padding replicate)" in said
    np.save("x.npy", image("rgb.png"))
    assert "padding zeros" in ok("grad", "x.npy", "-k", "sobel-x", "--dout", "ones", "-o", "h.npz").stderr


# ---------------------------------------------------------------- --combine


def test_compass_combine_is_one_rgb_picture(work: Path) -> None:
    said = ok("apply", "rgb.png", "-k", "Kirsch:@", "--combine", "max", "--flip").stderr
    assert "wrote 'rgb-kirsch-x8-max.png' (png, 1×3×18×24, display clip, padding replicate)" in said
    ok("apply", "rgb.png", "-k", "Kirsch:@", "--combine", "max", "--flip", "--dtype", "float64", "-o", "k.npy", "-q")
    maps = library(image("rgb.png"), "Kirsch:@", "replicate", flip=True)  # (1, 3*8, H, W)
    np.testing.assert_allclose(np.load("k.npy"), maps.reshape(1, 3, 8, 18, 24).max(axis=2), rtol=1e-12)
    with Image.open("rgb-kirsch-x8-max.png") as im:
        assert im.mode == "RGB"


@pytest.mark.parametrize("mode", ["sum", "min", "maxabs"])
def test_combine_modes_and_several_specs(work: Path, mode: str) -> None:
    ok("apply", "gray.png", "-k", "sobel-x", "-k", "sobel-y;laplacian", "--combine", mode, "-o", "c.npy", "-q")
    maps = library(image("gray.png")[:, :1], "sobel-x;sobel-y;laplacian", "replicate")
    reduce = {"sum": lambda a: a.sum(1), "min": lambda a: a.min(1), "maxabs": lambda a: np.abs(a).max(1)}[mode]
    np.testing.assert_allclose(np.load("c.npy")[0, 0], reduce(maps)[0], atol=1e-5)  # one channel: M = 3 maps


def test_combine_refusals(work: Path) -> None:
    np.save("w.npy", np.ones((2, 3, 3, 3)))
    assert_one_line_error(run("apply", "rgb.png", "-k", "w.npy", "--combine", "max", "-o", "o.png"), 2,
                          "--combine reduces the maps of 2-D kernels")
    assert_one_line_error(run("apply", "rgb.png", "-k", "box:3", "--combine", "mean", "-o", "o.png"), 2,
                          "--combine")


# ---------------------------------------------------------------- --scale


def test_scale_in_apply_is_the_library_s(work: Path) -> None:
    ok("apply", "rgb.png", "-k", "Sobel", "--scale", "!", "--dtype", "float64", "-o", "s.npy", "-q")
    np.testing.assert_allclose(np.load("s.npy"), library(image("rgb.png"), "Sobel", "replicate") / 4, rtol=1e-12,
                               atol=1e-15)
    ok("apply", "rgb.png", "-k", "Gaussian:0x1", "--scale", "-100,200%", "--dtype", "float64", "-o", "u.npy", "-q")
    blur = library(image("rgb.png"), "Gaussian:0x1", "replicate")
    np.testing.assert_allclose(np.load("u.npy"), 2 * image("rgb.png") - blur, rtol=1e-9, atol=1e-12)  # unsharp


@pytest.mark.parametrize(("spec", "scale"), [
    ("3x3+0+1: 1,2,3,-4,5,6,7,8,-9", "!"), ("3x3+0+1: 1,2,3,-4,5,6,7,8,-9", "^,0.5"),
    ("Kirsch:@", "^"), ("Blur:0x1;Blur:0x1+90", "50%!,1"), ("3x3: 1,nan,2,3,4,nan,5,6,7", "2"),
])
def test_grad_checks_dK_through_scale(work: Path, spec: str, scale: str) -> None:
    result = ok("grad", "rgb.png", "-k", spec, "--scale", scale, "--flip", "--dtype", "float64", "--dout", "randn:4",
                "--check", "--check-samples", "30", "-o", "g.npz")
    assert "FAIL" not in result.stderr
    with np.load("g.npz") as got:
        n = len(parse_kernels(spec).kernels)
        assert got["dK"].shape[0] == n if n > 1 else got["dK"].ndim == 2


def test_grad_check_leaves_out_what_has_no_derivative(work: Path) -> None:
    result = ok("grad", "rgb.png", "-k", "Sobel", "--scale", "!", "--dout", "randn:4", "--check", "-o", "g.npz")
    assert "not differentiable" in result.stderr
    result = ok("grad", "rgb.png", "-k", "Disk:1", "--dout", "randn:4", "--check", "-o", "h.npz")
    assert "no kernel taps" in result.stderr  # Disk:1's corners are holes


def test_kernel_sets_in_grad(work: Path) -> None:
    ok("grad", "rgb.png", "-k", "Sobel:>", "--dout", "ones", "--dw", "dk.npy", "-q")
    assert np.load("dk.npy").shape == (4, 3, 3)
    got = np.load(io.BytesIO(ok("grad", "rgb.png", "-k", "Blur:0x1;Sobel", "--dout", "ones", "--dw", "-").stdout_bytes))
    assert got.shape == (2, 3, 9)  # a 1×9 and a 3×3 kernel: their common frame


def test_kernels_command_prints_sets_and_lists_imagemagick_names() -> None:
    out = ok("kernels", "Sobel:>").stdout
    assert out.count("sum 0, origin +1+1") == 4 and "sobel-r90" in out
    listing = ok("kernels").stdout
    assert "ImageMagick kernels" in listing and "Kirsch[:ANGLE]" in listing and "DoG:RADIUS,SIGMA1,SIGMA2" in listing


def test_help_says_which_reflect_and_mirror(work: Path) -> None:
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", ok("apply", "--help").stdout).split())  # rich's boxes away
    for words in ["reflect (PyTorch's", "mirror is ImageMagick's (symmetric)", "for scipy's mirror use reflect",
                  "Default: replicate for images", "--combine", "--scale"]:
        assert words in text, words


def test_library_convolution_takes_the_aliases() -> None:
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    w = np.ones((1, 1, 3, 3))
    for alias, name in [("edge", "replicate"), ("mirror", "symmetric"), ("tile", "circular"), ("white", "constant:1")]:
        np.testing.assert_array_equal(Convolution(w, None, pad=2, padding_mode=alias).forward(x),
                                      Convolution(w, None, pad=2, padding_mode=name).forward(x))
