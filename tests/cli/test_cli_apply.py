"""``convcli apply`` through Typer's CliRunner: results against scipy and a naive loop, every option, every error.

References are independent of convcli's engine: ``scipy.ndimage.correlate``/``convolve`` per channel for
2-D kernels, and a direct loop (:func:`naive_conv`) for 4-D layer kernels.  Inputs are small crops of the
sample images, written to ``tmp_path``, so the whole file runs in a few seconds.

Two facts the scipy comparisons depend on:

- padding modes: PyTorch's names map to scipy's as zeros -> 'constant' (cval 0), reflect -> 'mirror'
  (d c b | a b c d | c b a: the edge is not repeated), replicate -> 'nearest', circular -> 'wrap';
  scipy's own 'reflect' repeats the edge sample, which is not PyTorch's reflect.
- the default padding mode is replicate ('nearest') for images and zeros ('constant') for arrays:
  tests on images without ``--padding-mode`` compare with 'nearest'.
- even kernels: convcli's ``pad='same'`` puts the odd extra padding pixel bottom/right (as PyTorch and
  TensorFlow do), so a correlation's kernel origin is tap ``(k - 1) // 2``; scipy centres it on tap
  ``k // 2``, so scipy needs ``origin=-1`` on each even axis.  With ``--flip`` (kernel rotated 180°)
  the two agree with no origin at all: ``scipy.ndimage.convolve``.  A kernel written in ImageMagick's
  ``WxH:`` form keeps ImageMagick's origin ``((W-1)//2, (H-1)//2)`` under ``--flip`` too (the origin
  turns with the kernel, as ``-morphology Convolve`` has it): :func:`magick_convolve`.
"""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, ok, run
from PIL import Image
from scipy import ndimage as ndi  # type: ignore[import-untyped]

from convcli.cli import app
from convcli.kernels.builtins import SOBEL_X, SOBEL_Y, gaussian_kernel

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
SCIPY_MODE = {"zeros": "constant", "reflect": "mirror", "replicate": "nearest", "circular": "wrap"}
# kernels whose taps are all distinct powers of two: a flip, a transpose or an off-by-one shows
KERNELS = {
    "1,2,4;8,16,32;64,128,256": np.array([[1, 2, 4], [8, 16, 32], [64, 128, 256]], float),
    "1,2;4,8": np.array([[1, 2], [4, 8]], float),
    "3x2: 1,2,4,8,16,32": np.array([[1, 2, 4], [8, 16, 32]], float),  # ImageMagick: W=3 columns, H=2 rows
    "1,2,4,8;16,32,64,128": np.array([[1, 2, 4, 8], [16, 32, 64, 128]], float),
    "sobel-x": SOBEL_X,
}


# ---------------------------------------------------------------- helpers


def load_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def png_pixels(path: Path) -> np.ndarray:
    """A PNG as (C, H, W) integers."""
    with Image.open(path) as im:
        array = np.asarray(im).astype(np.int64)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def image_floats(path: Path) -> np.ndarray:
    """An 8-bit PNG as convcli computes with it in float64, (C, H, W): k/255 (its samples stay integers until
    the engine reads them, so the float64 path sees k/255 exactly, not a float32 rounding of it)."""
    with Image.open(path) as im:
        array = np.asarray(im).astype(np.float64) / 255
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def scipy_filter(chw: np.ndarray, kernel: np.ndarray, mode: str = "constant", flip: bool = False) -> np.ndarray:
    """convcli's depthwise 'same' filter per channel with scipy (see the module docstring for origin and modes)."""
    if flip:
        return np.stack([ndi.convolve(c, kernel, mode=mode, cval=0.0) for c in chw])
    origin = [(k % 2) - 1 for k in kernel.shape]  # -1 on even axes, 0 on odd ones
    return np.stack([ndi.correlate(c, kernel, mode=mode, cval=0.0, origin=origin) for c in chw])


def magick_convolve(chw: np.ndarray, kernel: np.ndarray, mode: str = "nearest") -> np.ndarray:
    """ImageMagick's -morphology Convolve with its default origin ((H-1)//2, (W-1)//2), per channel, with scipy.

    out(y, x) = sum K[v, u] in(y + Y - v, x + X - u): a correlation with the kernel turned 180°, whose
    origin tap (H-1-Y, W-1-X) lies over the output pixel; scipy's ``origin`` counts from tap ``k // 2``.
    """
    turned = kernel[::-1, ::-1]
    origin = [(k - 1 - (k - 1) // 2) - k // 2 for k in kernel.shape]
    return np.stack([ndi.correlate(c, turned, mode=mode, cval=0.0, origin=origin) for c in chw])


def naive_conv(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray] = None,
    stride: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """The definition, one output pixel at a time: x (N, C, H, W), w (FN, C/groups, FH, FW), zero padding."""
    n, _, h, width = x.shape
    fn, cg, fh, fw = w.shape
    top, bottom, left, right = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    oh = (h + top + bottom - dilation[0] * (fh - 1) - 1) // stride[0] + 1
    ow = (width + left + right - dilation[1] * (fw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, fn, oh, ow))
    per_group = fn // groups
    for f in range(fn):
        g = f // per_group
        for i in range(oh):
            for j in range(ow):
                r, c = i * stride[0], j * stride[1]
                patch = xp[:, g * cg : (g + 1) * cg, r : r + dilation[0] * (fh - 1) + 1 : dilation[0],
                           c : c + dilation[1] * (fw - 1) + 1 : dilation[1]]
                out[:, f, i, j] = (patch * w[f]).sum(axis=(1, 2, 3))
        if b is not None:
            out[:, f] += b[f]
    return out


def crop(source: str, box: tuple[int, int, int, int], target: Path) -> Path:
    with Image.open(SAMPLES / source) as im:
        im.crop(box).save(target)
    return target


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def rgb(tmp_path: Path) -> Path:
    """A 40×32 RGB crop of photo.png (the house: edges in every direction)."""
    return crop("photo.png", (72, 90, 112, 122), tmp_path / "rgb.png")


@pytest.fixture
def rgb2(tmp_path: Path) -> Path:
    """Another crop of the same size as ``rgb``."""
    return crop("photo.png", (150, 60, 190, 92), tmp_path / "rgb2.png")


@pytest.fixture
def gray(tmp_path: Path) -> Path:
    """A 36×28 crop of gray.png (star and checkerboard)."""
    return crop("gray.png", (20, 20, 56, 48), tmp_path / "gray.png")


@pytest.fixture
def arr(tmp_path: Path) -> Path:
    """(2, 3, 9, 11) float64 whose values encode their position: 1000·n + 100·c + 10·i + j."""
    n, c, i, j = np.indices((2, 3, 9, 11))
    path = tmp_path / "arr.npy"
    np.save(path, (1000.0 * n + 100 * c + 10 * i + j))
    return path


# ---------------------------------------------------------------- the image path against scipy


@pytest.mark.parametrize("spec", list(KERNELS))
@pytest.mark.parametrize("padding_mode", list(SCIPY_MODE))
def test_image_matches_scipy_correlate(tmp_path: Path, rgb: Path, spec: str, padding_mode: str) -> None:
    out = tmp_path / "out.npy"
    ok("apply", rgb, "-k", spec, "--padding-mode", padding_mode, "--dtype", "float64", "-o", out, "-q")
    got = load_npy(out)
    x = image_floats(rgb)
    assert got.shape == (1, *x.shape) and got.dtype == np.float64
    expected = scipy_filter(x, KERNELS[spec], SCIPY_MODE[padding_mode])
    np.testing.assert_allclose(got[0], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec", list(KERNELS))
def test_flip_is_scipy_convolve(tmp_path: Path, rgb: Path, spec: str) -> None:
    out = tmp_path / "out.npy"
    ok("apply", rgb, "-k", spec, "--flip", "--dtype", "float64", "-o", out, "-q")
    convolve = magick_convolve if ":" in spec else functools.partial(scipy_filter, flip=True)
    expected = convolve(image_floats(rgb), KERNELS[spec], "nearest")  # an image: replicate padding
    np.testing.assert_allclose(load_npy(out)[0], expected, rtol=1e-12, atol=1e-12)


def test_flip_differs_from_correlation(tmp_path: Path, rgb: Path) -> None:
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    ok("apply", rgb, "-k", "sobel-x", "-o", a, "-q")
    ok("apply", rgb, "-k", "sobel-x", "--flip", "-o", b, "-q")
    np.testing.assert_allclose(load_npy(b), -load_npy(a), atol=1e-6)  # sobel-x rotated 180° is -sobel-x


def test_float32_default_for_images(tmp_path: Path, rgb: Path) -> None:
    out = tmp_path / "out.npy"
    ok("apply", rgb, "-k", "gaussian:1", "-o", out, "-q")
    got = load_npy(out)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[0], scipy_filter(image_floats(rgb), gaussian_kernel(1.0), "nearest"), atol=2e-6)


def test_rgb_stays_rgb_and_gray_is_one_channel(tmp_path: Path, rgb: Path) -> None:
    out = tmp_path / "out.png"
    ok("apply", rgb, "-k", "box:3", "-o", out, "-q")
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.size == (40, 32)
    ok("apply", rgb, "-k", "box:3", "--gray", "-o", tmp_path / "g.npy", "-q")
    got = load_npy(tmp_path / "g.npy")
    assert got.shape == (1, 1, 32, 40)
    x = image_floats(rgb)
    luma = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
    np.testing.assert_allclose(got[0], scipy_filter(luma, np.full((3, 3), 1 / 9), "nearest"), atol=1e-5)


# ---------------------------------------------------------------- kernel sources


def _kernel_files(tmp_path: Path, k: np.ndarray) -> list[str]:
    np.save(tmp_path / "k.npy", k)
    np.savez(tmp_path / "kw.npz", W=k)
    np.savetxt(tmp_path / "k.txt", k)
    np.savetxt(tmp_path / "k.csv", k, delimiter=",")
    (tmp_path / "k.json").write_text(json.dumps(k.tolist()))
    (tmp_path / "kb.json").write_text(json.dumps({"W": k.tolist()}))
    return [str(tmp_path / n) for n in ("k.npy", "kw.npz", "k.txt", "k.csv", "k.json", "kb.json")]


def test_kernel_sources_agree(tmp_path: Path, arr: Path) -> None:
    k = KERNELS["3x2: 1,2,4,8,16,32"]
    specs = ["1,2,4;8,16,32", "1 2 4; 8 16 32", "3x2: 1,2,4,8,16,32", "3x2: 1,2,4;8,16,32", *_kernel_files(tmp_path, k)]
    expected = scipy_filter(load_npy(arr)[0], k)
    for index, spec in enumerate(specs):
        out = tmp_path / f"o{index}.npy"
        ok("apply", arr, "-k", spec, "-o", out, "-q")
        np.testing.assert_allclose(load_npy(out)[0], expected, rtol=1e-12, err_msg=spec)


def test_kernel_from_stdin(tmp_path: Path, arr: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, KERNELS["1,2;4,8"])
    out = tmp_path / "o.npy"
    ok("apply", arr, "-k", "-", "-o", out, "-q", input=buffer.getvalue())
    np.testing.assert_allclose(load_npy(out)[0], scipy_filter(load_npy(arr)[0], KERNELS["1,2;4,8"]), rtol=1e-12)


@pytest.mark.parametrize(
    ("spec", "kernel"),
    [
        ("sobel-x", SOBEL_X),
        ("SOBEL_Y", SOBEL_Y),
        ("gaussian:1", gaussian_kernel(1.0)),
        ("gaussian:1:3", gaussian_kernel(1.0, 3)),
        ("box:4", np.full((4, 4), 1 / 16)),
        ("identity:3", np.pad([[1.0]], 1)),
        ("laplacian", np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)),
        ("sharpen", np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], float)),
    ],
)
def test_builtin_kernels(tmp_path: Path, arr: Path, spec: str, kernel: np.ndarray) -> None:
    out = tmp_path / "o.npy"
    ok("apply", arr, "-k", spec, "-o", out, "-q")
    np.testing.assert_allclose(load_npy(out), np.stack([scipy_filter(x, kernel) for x in load_npy(arr)]), rtol=1e-10,
                               atol=1e-9)


def test_bank_of_2d_kernels_orders_maps_c_times_m_plus_m(tmp_path: Path, rgb: Path) -> None:
    out = tmp_path / "o.npy"
    ok("apply", rgb, "-k", "sobel-x", "-k", "sobel-y", "--dtype", "float64", "-o", out, "-q")
    got = load_npy(out)[0]
    x = image_floats(rgb)
    assert got.shape == (6, 32, 40)
    for c in range(3):
        np.testing.assert_allclose(got[2 * c], scipy_filter(x[c : c + 1], SOBEL_X, "nearest")[0], atol=1e-12)
        np.testing.assert_allclose(got[2 * c + 1], scipy_filter(x[c : c + 1], SOBEL_Y, "nearest")[0], atol=1e-12)


def test_npz_kernel_bias_is_applied_and_bias_option_replaces_it(tmp_path: Path, arr: Path) -> None:
    np.savez(tmp_path / "kb.npz", W=SOBEL_X, b=np.array([0.25]))
    ok("apply", arr, "-k", tmp_path / "kb.npz", "-o", tmp_path / "a.npy", "-q")
    ok("apply", arr, "-k", tmp_path / "kb.npz", "--bias", "-1", "-o", tmp_path / "b.npy", "-q")
    plain = np.stack([scipy_filter(x, SOBEL_X) for x in load_npy(arr)])
    np.testing.assert_allclose(load_npy(tmp_path / "a.npy"), plain + 0.25, atol=1e-9)
    np.testing.assert_allclose(load_npy(tmp_path / "b.npy"), plain - 1, atol=1e-9)


# ---------------------------------------------------------------- --normalize, --bias


@pytest.mark.parametrize(
    ("spec", "kernel"),
    [
        ("1,2,1;2,4,2;1,2,1", np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16),
        ("sobel-x", SOBEL_X),  # sum 0: left alone
        ("-1,-2,-1", np.array([[0.25, 0.5, 0.25]])),  # sum -4: divided by it, signs flip
        ("3x2: 1,2,4,8,16,32", KERNELS["3x2: 1,2,4,8,16,32"] / 63),
    ],
)
def test_normalize(tmp_path: Path, arr: Path, spec: str, kernel: np.ndarray) -> None:
    out = tmp_path / "o.npy"
    ok("apply", arr, "-k", spec, "--normalize", "-o", out, "-q")
    np.testing.assert_allclose(load_npy(out), np.stack([scipy_filter(x, kernel) for x in load_npy(arr)]), rtol=1e-10,
                               atol=1e-9)


def test_flip_and_normalize_is_scipy_convolve_of_scaled_kernel(tmp_path: Path, rgb: Path) -> None:
    out = tmp_path / "o.npy"
    ok("apply", rgb, "-k", "3x2: 1,2,4,8,16,32", "--flip", "--normalize", "--dtype", "float64", "-o", out, "-q")
    expected = magick_convolve(image_floats(rgb), KERNELS["3x2: 1,2,4,8,16,32"] / 63, "nearest")
    np.testing.assert_allclose(load_npy(out)[0], expected, rtol=1e-12, atol=1e-14)


def test_normalize_layer_kernel_per_filter(tmp_path: Path, arr: Path) -> None:
    w = np.arange(1.0, 1 + 2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    np.save(tmp_path / "w.npy", w)
    ok("apply", arr, "-k", tmp_path / "w.npy", "--normalize", "--pad", "valid", "-o", tmp_path / "o.npy", "-q")
    expected = naive_conv(load_npy(arr), w / w.sum(axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(load_npy(tmp_path / "o.npy"), expected, rtol=1e-12)


@pytest.fixture
def two_channels(tmp_path: Path) -> Path:
    path = tmp_path / "two.npy"
    np.save(path, np.arange(2 * 4 * 5, dtype=np.float64).reshape(2, 4, 5))
    return path


@pytest.mark.parametrize(
    ("bias", "offsets"),
    [
        ("0.5", [0.5, 0.5, 0.5, 0.5]),
        ("1,2", [1, 2, 1, 2]),  # one per kernel m: map c·M + m gets value m
        ("1;2", [1, 2, 1, 2]),
        ("1,2,3,4", [1, 2, 3, 4]),  # one per output map
        (" -1e-1 ", [-0.1] * 4),
    ],
)
def test_bias_forms(tmp_path: Path, two_channels: Path, bias: str, offsets: list[float]) -> None:
    out = tmp_path / "o.npy"
    ok("apply", two_channels, "-k", "identity", "-k", "2", "--bias", bias, "-o", out, "-q")
    x = load_npy(two_channels)
    plain = np.stack([x[0], 2 * x[0], x[1], 2 * x[1]])
    np.testing.assert_allclose(load_npy(out)[0], plain + np.array(offsets)[:, None, None])


def test_bias_from_npy_file(tmp_path: Path, two_channels: Path) -> None:
    np.save(tmp_path / "b.npy", np.array([[1.0, 2.0], [3.0, 4.0]]))  # any shape, flattened
    np.save(tmp_path / "bi.npy", np.array([7], dtype=np.int16))
    ok("apply", two_channels, "-k", "identity", "-k", "2", "--bias", tmp_path / "b.npy", "-o", tmp_path / "o.npy")
    x = load_npy(two_channels)
    expected = np.stack([x[0] + 1, 2 * x[0] + 2, x[1] + 3, 2 * x[1] + 4])
    np.testing.assert_allclose(load_npy(tmp_path / "o.npy")[0], expected)
    ok("apply", two_channels, "-k", "identity", "--bias", tmp_path / "bi.npy", "-o", tmp_path / "p.npy")
    np.testing.assert_allclose(load_npy(tmp_path / "p.npy")[0], x + 7)


def test_bias_one_per_layer_kernel_covers_its_filters(tmp_path: Path, two_channels: Path) -> None:
    # two layer kernels of 2 filters each on 2 channels: FN = 4 = kernels × channels, which must not be
    # mistaken for the depthwise c·M + m order: kernel k's bias goes to each of its own filters
    w1 = np.zeros((2, 2, 1, 1))
    w1[0, 0] = w1[1, 1] = 1
    w2 = 2 * w1
    np.save(tmp_path / "w1.npy", w1)
    np.save(tmp_path / "w2.npy", w2)
    out = tmp_path / "o.npy"
    ok("apply", two_channels, "-k", tmp_path / "w1.npy", "-k", tmp_path / "w2.npy", "--bias", "10,20", "-o", out)
    x = load_npy(two_channels)
    expected = np.stack([x[0] + 10, x[1] + 10, 2 * x[0] + 20, 2 * x[1] + 20])
    np.testing.assert_allclose(load_npy(out)[0], expected)


# ---------------------------------------------------------------- layers: stride, pad, dilation, groups


@pytest.mark.parametrize(
    ("options", "stride", "pads", "dilation", "groups"),
    [
        ([], (1, 1), None, (1, 1), 1),
        (["--pad", "valid"], (1, 1), (0, 0, 0, 0), (1, 1), 1),
        (["--pad", "1"], (1, 1), (1, 1, 1, 1), (1, 1), 1),
        (["--pad", "2,0"], (1, 1), (2, 2, 0, 0), (1, 1), 1),
        (["--pad", "0,2,1,0"], (1, 1), (0, 2, 1, 0), (1, 1), 1),
        (["--stride", "2", "--pad", "1"], (2, 2), (1, 1, 1, 1), (1, 1), 1),
        (["--stride", "2,3", "--pad", "valid"], (2, 3), (0, 0, 0, 0), (1, 1), 1),
        (["--stride", "1x2", "--pad", "valid"], (1, 2), (0, 0, 0, 0), (1, 1), 1),
        (["--dilation", "2", "--pad", "valid"], (1, 1), (0, 0, 0, 0), (2, 2), 1),
        (["--dilation", "1,2", "--pad", "1,2"], (1, 1), (1, 1, 2, 2), (1, 2), 1),
        (["--stride", "2", "--dilation", "2", "--pad", "2"], (2, 2), (2, 2, 2, 2), (2, 2), 1),
        (["--groups", "2", "--pad", "1"], (1, 1), (1, 1, 1, 1), (1, 1), 2),
        (["--groups", "4", "--stride", "2", "--pad", "valid"], (2, 2), (0, 0, 0, 0), (1, 1), 4),
    ],
)
def test_layer_geometry_matches_naive_loop(
    tmp_path: Path,
    options: list[str],
    stride: tuple[int, int],
    pads: Optional[tuple[int, int, int, int]],
    dilation: tuple[int, int],
    groups: int,
) -> None:
    rng = np.random.default_rng(groups + len(options))
    x = rng.standard_normal((2, 4, 9, 11))
    w = rng.standard_normal((4, 4 // groups, 3, 2))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    out = tmp_path / "o.npy"
    ok("apply", tmp_path / "x.npy", "-k", tmp_path / "w.npy", *options, "-o", out, "-q")
    if pads is None:  # 'same', stride 1: total padding k - 1, the odd pixel bottom/right
        pads = (1, 1, 0, 1)
    expected = naive_conv(x, w, None, stride, pads, dilation, groups)
    got = load_npy(out)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("stride", "shape"), [("1", (9, 11)), ("2", (5, 6)), ("3", (3, 4)), ("2,4", (5, 3))])
def test_same_pad_gives_ceil_of_input_over_stride(
    tmp_path: Path, arr: Path, stride: str, shape: tuple[int, int]
) -> None:
    for spec in ("box:3", "1,2;4,8", "box:4"):
        out = tmp_path / "o.npy"
        ok("apply", arr, "-k", spec, "--stride", stride, "-o", out, "-q")
        assert load_npy(out).shape == (2, 3, *shape), spec


def test_same_pad_with_stride_matches_naive_loop(tmp_path: Path, arr: Path) -> None:
    out = tmp_path / "o.npy"
    ok("apply", arr, "-k", "1,2;4,8", "--stride", "2", "-o", out, "-q")
    # H = 9, k = 2, s = 2: out 5 rows, total padding (5-1)·2 + 2 - 9 = 1, bottom; W = 11 likewise, right
    x = load_npy(arr)
    w = np.broadcast_to(KERNELS["1,2;4,8"], (3, 1, 2, 2))
    np.testing.assert_allclose(load_npy(out), naive_conv(x, w, None, (2, 2), (0, 1, 0, 1), groups=3), rtol=1e-12)


def test_layer_kernel_mixes_channels_of_an_image(tmp_path: Path, rgb: Path) -> None:
    w = np.zeros((1, 3, 1, 1))
    w[0, :, 0, 0] = [0.299, 0.587, 0.114]
    np.save(tmp_path / "luma.npy", w)
    ok("apply", rgb, "-k", tmp_path / "luma.npy", "--dtype", "float64", "-o", tmp_path / "o.npy", "-q")
    x = image_floats(rgb)
    np.testing.assert_allclose(load_npy(tmp_path / "o.npy")[0, 0], 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2],
                               rtol=1e-12)


def test_flip_rotates_layer_kernels(tmp_path: Path, arr: Path) -> None:
    w = np.random.default_rng(3).standard_normal((2, 3, 3, 2))
    np.save(tmp_path / "w.npy", w)
    ok("apply", arr, "-k", tmp_path / "w.npy", "--flip", "--pad", "valid", "-o", tmp_path / "o.npy", "-q")
    expected = naive_conv(load_npy(arr), w[..., ::-1, ::-1])
    np.testing.assert_allclose(load_npy(tmp_path / "o.npy"), expected, rtol=1e-10, atol=1e-9)


# ---------------------------------------------------------------- --dtype


@pytest.mark.parametrize(
    ("dtype", "option", "expected"),
    [
        ("float64", None, np.float64),
        ("float32", None, np.float32),
        ("uint8", None, np.float32),
        ("int32", None, np.float32),
        ("float64", "float32", np.float32),
        ("float32", "float64", np.float64),
        ("uint16", "float64", np.float64),
    ],
)
def test_dtype(tmp_path: Path, dtype: str, option: Optional[str], expected: type) -> None:
    x = (np.arange(5 * 6) % 7).reshape(5, 6).astype(dtype)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "o.npy"
    ok("apply", tmp_path / "x.npy", "-k", "1,2,4;8,16,32;64,128,256", *(["--dtype", option] if option else []),
       "-o", out, "-q")
    got = load_npy(out)
    assert got.dtype == expected
    expected_values = scipy_filter(x[None].astype(np.float64), KERNELS["1,2,4;8,16,32;64,128,256"])
    np.testing.assert_allclose(got[0], expected_values, rtol=1e-6)


def test_dtype_float64_for_an_image(tmp_path: Path, rgb: Path) -> None:
    ok("apply", rgb, "-k", "box:3", "--dtype", "float64", "-o", tmp_path / "o.npy", "-q")
    assert load_npy(tmp_path / "o.npy").dtype == np.float64


# ---------------------------------------------------------------- output formats


def test_npy_npz_tiff_hold_the_same_raw_floats(tmp_path: Path, rgb: Path) -> None:
    args = ("apply", rgb, "-k", "sobel-x", "-k", "sobel-y", "-q")
    ok(*args, "-o", tmp_path / "o.npy")
    ok(*args, "-o", tmp_path / "o.npz")
    ok(*args, "-o", tmp_path / "o.tif")
    ok(*args, "-o", tmp_path / "o.tiff")
    raw = load_npy(tmp_path / "o.npy")
    assert raw.shape == (1, 6, 32, 40) and raw.dtype == np.float32
    assert raw.min() < -0.5 and raw.max() > 0.5  # never scaled or clipped
    with np.load(tmp_path / "o.npz", allow_pickle=False) as archive:
        assert archive.files == ["y"]
        np.testing.assert_array_equal(archive["y"], raw)
    for name in ("o.tif", "o.tiff"):
        with Image.open(tmp_path / name) as im:
            frames = int(getattr(im, "n_frames", 1))
            assert frames == 6
            pages = []
            for index in range(frames):
                im.seek(index)
                assert im.mode == "F"
                pages.append(np.asarray(im, dtype=np.float32))
        np.testing.assert_array_equal(np.stack(pages), raw[0])


def test_format_option_overrides_the_extension(tmp_path: Path, rgb: Path) -> None:
    ok("apply", rgb, "-k", "box:3", "--format", "npy", "-o", tmp_path / "o.dat", "-q")
    assert (tmp_path / "o.dat").read_bytes().startswith(b"\x93NUMPY")
    ok("apply", rgb, "-k", "box:3", "-f", "png", "-o", tmp_path / "p.bin", "-q")
    assert (tmp_path / "p.bin").read_bytes().startswith(b"\x89PNG")


def _displayed(values: np.ndarray, mode: str, scale: int = 255) -> np.ndarray:
    if mode == "clip":
        shown = np.clip(values, 0, 1)
    elif mode == "abs":
        shown = np.clip(np.abs(values), 0, 1)
    elif mode == "offset":
        shown = np.clip(values + 0.5, 0, 1)
    else:  # the range of the valid interior: a 3x3 kernel's outputs that read no padding
        lo = values[:, 1:-1, 1:-1].min(axis=(1, 2), keepdims=True)
        hi = values[:, 1:-1, 1:-1].max(axis=(1, 2), keepdims=True)
        shown = np.clip((values - lo) / (hi - lo), 0, 1)
    return np.rint(shown.astype(np.float64) * scale).astype(np.int64)


@pytest.mark.parametrize("mode", ["clip", "abs", "minmax", "offset"])
def test_png_display_modes(tmp_path: Path, rgb: Path, mode: str) -> None:
    ok("apply", rgb, "-k", "sobel-x", "-o", tmp_path / "o.npy", "-q")
    ok("apply", rgb, "-k", "sobel-x", "--display", mode, "-o", tmp_path / "o.png", "-q")
    raw = load_npy(tmp_path / "o.npy")[0]
    got = png_pixels(tmp_path / "o.png")
    assert got.shape == raw.shape
    assert np.abs(got - _displayed(raw, mode)).max() <= 1  # float32 rounding at .5 boundaries


@pytest.mark.parametrize(("spec", "mode"), [("sobel-x", "offset"), ("laplacian", "offset"), ("gaussian:1", "clip"),
                                            ("sharpen", "clip"), ("-1,-2,-1", "offset")])
def test_png_display_default(tmp_path: Path, rgb: Path, spec: str, mode: str) -> None:
    ok("apply", rgb, "-k", spec, "-o", tmp_path / "o.npy", "-q")
    result = ok("apply", rgb, "-k", spec, "-o", tmp_path / "o.png")
    assert f"display {mode}" in result.stderr
    assert np.abs(png_pixels(tmp_path / "o.png") - _displayed(load_npy(tmp_path / "o.npy")[0], mode)).max() <= 1


def test_png_16_bit(tmp_path: Path) -> None:
    source = crop("gray16.png", (60, 40, 120, 80), tmp_path / "g16.png")
    ok("apply", source, "-k", "box:3", "-o", tmp_path / "o.npy", "-q")
    ok("apply", source, "-k", "box:3", "--bit-depth", "16", "-o", tmp_path / "o.png", "-q")
    with Image.open(tmp_path / "o.png") as im:
        assert im.mode in ("I;16", "I")
    got = png_pixels(tmp_path / "o.png")
    assert np.abs(got - _displayed(load_npy(tmp_path / "o.npy")[0], "clip", 65535)).max() <= 1
    assert len(np.unique(got)) > 1000  # the 16-bit shading survives


def test_png_16_bit_colour_writes_one_png_per_map(tmp_path: Path, rgb: Path) -> None:
    # Pillow writes no 16-bit colour PNG: each of the 3 maps gets its own 16-bit gray PNG
    ok("apply", rgb, "-k", "box:3", "-o", tmp_path / "o.npy", "-q")
    result = ok("apply", rgb, "-k", "box:3", "--bit-depth", "16", "-o", tmp_path / "o.png")
    raw = load_npy(tmp_path / "o.npy")[0]
    for m in range(3):
        path = tmp_path / f"o-{m}.png"
        assert f"wrote {str(path)!r}" in result.stderr
        assert np.abs(png_pixels(path)[0] - _displayed(raw[m : m + 1], "clip", 65535)[0]).max() <= 1
    assert not (tmp_path / "o.png").exists()


def test_png_one_file_per_map_unless_1_3_or_4(tmp_path: Path, gray: Path, arr: Path) -> None:
    ok("apply", gray, "-k", "sobel-x", "-k", "sobel-y", "-o", tmp_path / "two.png", "-q")
    assert sorted(p.name for p in tmp_path.glob("two*")) == ["two-sobel-x.png", "two-sobel-y.png"]
    w = np.random.default_rng(0).random((4, 3, 3, 3))
    np.save(tmp_path / "w4.npy", w)
    ok("apply", arr, "-k", tmp_path / "w4.npy", "-o", tmp_path / "four.png", "-q")  # N = 2, 4 layer maps: 8 files
    for n in range(2):
        for m in range(4):
            with Image.open(tmp_path / f"four-arr-{n}-{m}.png") as im:
                assert im.mode == "L"  # a layer's 4 maps are no RGBA picture


# ---------------------------------------------------------------- 16-bit and alpha inputs


def test_16_bit_input_keeps_precision(tmp_path: Path) -> None:
    source = crop("gray16.png", (60, 40, 120, 80), tmp_path / "g16.png")
    with Image.open(source) as im:
        assert im.mode == "I;16"
        raw = np.asarray(im).astype(np.float64)
    ok("apply", source, "-k", "identity", "--dtype", "float64", "-o", tmp_path / "o.npy", "-q")
    got = load_npy(tmp_path / "o.npy")[0, 0]
    np.testing.assert_allclose(got, (raw / 65535).astype(np.float32), rtol=1e-7)
    assert len(np.unique(got)) > 1000


def test_alpha_dropped_by_default_kept_with_keep_alpha(tmp_path: Path) -> None:
    source = crop("alpha.png", (100, 60, 160, 110), tmp_path / "a.png")
    with Image.open(source) as im:
        rgba = np.asarray(im).transpose(2, 0, 1)
    assert rgba[3].min() < 255  # some transparency in the crop
    result = ok("apply", source, "-k", "identity", "-o", tmp_path / "o.npy")
    assert "alpha channel dropped" in result.stderr
    got = load_npy(tmp_path / "o.npy")[0]
    assert got.shape[0] == 3
    np.testing.assert_allclose(got, rgba[:3] / 255, atol=1e-7)

    result = ok("apply", source, "-k", "identity", "--keep-alpha", "-o", tmp_path / "k.npy")
    assert "alpha channel dropped" not in result.stderr
    np.testing.assert_allclose(load_npy(tmp_path / "k.npy")[0], rgba / 255, atol=1e-7)
    ok("apply", source, "-k", "identity", "--keep-alpha", "-o", tmp_path / "k.png", "-q")
    with Image.open(tmp_path / "k.png") as im:
        assert im.mode == "RGBA"
    np.testing.assert_array_equal(png_pixels(tmp_path / "k.png"), rgba)

    ok("apply", source, "-k", "identity", "--gray", "--keep-alpha", "-o", tmp_path / "ga.npy", "-q")
    assert load_npy(tmp_path / "ga.npy").shape == (1, 2, 50, 60)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((2, 3), np.uint8)
    pixels[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(pixels).save(tmp_path / "r.png", exif=exif)
    ok("apply", tmp_path / "r.png", "-k", "identity", "-o", tmp_path / "o.npy", "-q")
    got = load_npy(tmp_path / "o.npy")[0, 0]
    assert got.shape == (3, 2)
    np.testing.assert_array_equal(got, np.rot90(pixels, -1) / 255)


# ---------------------------------------------------------------- batching and output names


def test_same_size_inputs_form_one_batch(tmp_path: Path, rgb: Path, rgb2: Path) -> None:
    ok("apply", rgb, rgb2, "-k", "sobel-x", "-o", tmp_path / "both.npy", "-q")
    ok("apply", rgb, "-k", "sobel-x", "-o", tmp_path / "a.npy", "-q")
    ok("apply", rgb2, "-k", "sobel-x", "-o", tmp_path / "b.npy", "-q")
    both = load_npy(tmp_path / "both.npy")
    assert both.shape == (2, 3, 32, 40)
    np.testing.assert_allclose(both[0], load_npy(tmp_path / "a.npy")[0], atol=1e-6)
    np.testing.assert_allclose(both[1], load_npy(tmp_path / "b.npy")[0], atol=1e-6)
    with np.load(_npz(tmp_path, rgb, rgb2)) as archive:
        assert archive["y"].shape == (2, 3, 32, 40)


def _npz(tmp_path: Path, *inputs: Path) -> Path:
    ok("apply", *inputs, "-k", "sobel-x", "-o", tmp_path / "both.npz", "-q")
    return tmp_path / "both.npz"


def test_different_sizes_go_to_separate_files(tmp_path: Path, rgb: Path, gray: Path) -> None:
    result = ok("apply", rgb, gray, "-k", "box:3", "-o", tmp_path / "out.npy")
    a, b = load_npy(tmp_path / "out-rgb.npy"), load_npy(tmp_path / "out-gray.npy")
    assert a.shape == (1, 3, 32, 40) and b.shape == (1, 1, 28, 36)
    assert not (tmp_path / "out.npy").exists()
    assert result.stderr.count("wrote") == 2
    np.testing.assert_allclose(b[0], scipy_filter(image_floats(gray), np.full((3, 3), 1 / 9), "nearest"), atol=1e-6)


def test_same_size_pngs_get_one_file_each(tmp_path: Path, rgb: Path, rgb2: Path) -> None:
    ok("apply", rgb, rgb2, "-k", "box:3", "-o", tmp_path / "o.png", "-q")
    assert (tmp_path / "o-rgb.png").exists() and (tmp_path / "o-rgb2.png").exists()


def test_templates_stem_and_map(tmp_path: Path, rgb: Path, rgb2: Path) -> None:
    ok("apply", rgb, "-k", "sobel-x", "-k", "sobel-y", "-o", tmp_path / "raw.npy", "-q")
    raw = load_npy(tmp_path / "raw.npy")[0]
    ok("apply", rgb, rgb2, "-k", "sobel-x", "-k", "sobel-y", "--display", "minmax",
       "-o", str(tmp_path / "{stem}_map{map}.png"), "-q")
    names = sorted(p.name for p in tmp_path.glob("*_map*.png"))
    assert names == sorted(f"{s}_map{m}.png" for s in ("rgb", "rgb2") for m in range(6))
    for m in range(6):
        assert np.abs(png_pixels(tmp_path / f"rgb_map{m}.png")[0] - _displayed(raw[m : m + 1], "minmax")[0]).max() <= 1
    ok("apply", rgb, "-k", "box:3", "-o", str(tmp_path / "pre-{stem}.npy"), "-q")
    assert (tmp_path / "pre-rgb.npy").exists()


def test_n_images_of_one_npy_as_pngs(tmp_path: Path, arr: Path) -> None:
    ok("apply", arr, "-k", "box:3", "--display", "minmax", "-o", tmp_path / "o.png", "-q")
    assert sorted(p.name for p in tmp_path.glob("o-*.png")) == ["o-arr-0.png", "o-arr-1.png"]


def test_default_output_beside_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    source = crop("photo.png", (72, 90, 112, 122), folder / "pic.png")
    np.save(folder / "pic2.npy", np.ones((4, 5)))
    original = source.read_bytes()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = ok("apply", source, folder / "pic2.npy", "-k", "sobel-x")
    assert (folder / "pic-sobel-x.png").exists()
    assert load_npy(folder / "pic2-sobel-x.npy").shape == (1, 1, 4, 5)  # arrays stay arrays
    assert "display offset" in result.stderr
    assert source.read_bytes() == original
    assert list(elsewhere.iterdir()) == []
    ok("apply", source, "-k", "gaussian:1.5", "-k", "box:11", "-q")
    # 2 kernels on RGB: one colour picture per kernel, named by it
    assert sorted(p.name for p in folder.glob("pic-*.png")) == ["pic-box-11.png", "pic-gaussian-1.5.png",
                                                                "pic-sobel-x.png"]
    with Image.open(folder / "pic-box-11.png") as im:
        assert im.mode == "RGB"
    ok("apply", source, "-k", "1,2;3,4", "-q")
    assert (folder / "pic-inline.png").exists()


def test_output_into_a_directory(tmp_path: Path, rgb: Path, arr: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # -o naming a directory: default names (per input kind) inside it
    (tmp_path / "res").mkdir()
    ok("apply", rgb, arr, "-k", "sobel-x", "-o", tmp_path / "res", "-q")
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["arr-sobel-x.npy", "rgb-sobel-x.png"]
    monkeypatch.chdir(tmp_path)
    ok("apply", rgb, "-k", "box:3", "-o", "res/", "-q")
    assert (tmp_path / "res" / "rgb-box-3.png").exists()


def test_mixed_inputs_default_to_png_for_images_npy_for_arrays(tmp_path: Path, rgb: Path, arr: Path) -> None:
    ok("apply", rgb, arr, "-k", "box:3", "-q")
    assert (tmp_path / "rgb-box-3.png").exists() and (tmp_path / "arr-box-3.npy").exists()


def test_each_batch_gets_all_its_maps(tmp_path: Path, rgb: Path, gray: Path) -> None:
    # two 2-D kernels: the gray input gives 2 maps, the RGB one 6; neither count may leak into the other
    for order in ((gray, rgb), (rgb, gray)):
        folder = tmp_path / order[0].stem
        folder.mkdir()
        result = ok("apply", *order, "-k", "sobel-x", "-k", "sobel-y", "-o", folder / "o.png")
        names = sorted(p.name for p in folder.iterdir())
        assert names == sorted(f"o-{s}-{k}.png" for s in ("gray", "rgb") for k in ("sobel-x", "sobel-y")), names
        assert result.stderr.count("wrote") == 4  # gray: one map per kernel; RGB: one colour picture per kernel


def test_gray_alpha_and_rgb_with_one_kernel(tmp_path: Path, rgb: Path) -> None:
    # LA input (one gray+alpha PNG) next to RGB (one RGB PNG): no stray '{map}' in either name
    la = tmp_path / "la.png"
    Image.new("LA", (10, 8), (128, 200)).save(la)
    ok("apply", la, rgb, "-k", "box:3", "--keep-alpha", "-o", tmp_path / "o.png", "-q")
    assert sorted(p.name for p in tmp_path.glob("o-*")) == ["o-la.png", "o-rgb.png"]


def test_default_output_never_replaces_an_input(tmp_path: Path, rgb: Path) -> None:
    # 'rgb-box-3.png' is an input and also the default output name of 'rgb.png'
    twin = tmp_path / "rgb-box-3.png"
    twin.write_bytes(rgb.read_bytes())
    before = listing(tmp_path)
    result = run("apply", twin, rgb, "-k", "box:3")
    assert_one_line_error(result, 4, "refusing to overwrite input", "rgb-box-3.png")
    assert listing(tmp_path) == before  # nor was twin's own output written first


def test_output_never_overwrites_a_kernel_or_bias_file(tmp_path: Path, arr: Path) -> None:
    np.save(tmp_path / "k.npy", KERNELS["1,2;4,8"])
    np.save(tmp_path / "b.npy", np.array([1.0]))
    before = listing(tmp_path)
    assert_one_line_error(run("apply", arr, "-k", tmp_path / "k.npy", "-o", tmp_path / "k.npy"), 4, "refusing")
    assert_one_line_error(run("apply", arr, "-k", "box:3", "--bias", tmp_path / "b.npy", "-o", tmp_path / "b.npy"), 4,
                          "refusing")
    assert listing(tmp_path) == before


# ---------------------------------------------------------------- standard input and output


def test_stdin_npy_and_png(tmp_path: Path, rgb: Path, arr: Path) -> None:
    ok("apply", arr, "-k", "sobel-y", "-o", tmp_path / "file.npy", "-q")
    ok("apply", "-", "-k", "sobel-y", "-o", tmp_path / "pipe.npy", "-q", input=arr.read_bytes())
    np.testing.assert_array_equal(load_npy(tmp_path / "pipe.npy"), load_npy(tmp_path / "file.npy"))

    ok("apply", rgb, "-k", "sobel-y", "-o", tmp_path / "file.png", "-q")
    ok("apply", "-", "-k", "sobel-y", "-o", tmp_path / "pipe.png", "-q", input=rgb.read_bytes())
    assert (tmp_path / "pipe.png").read_bytes() == (tmp_path / "file.png").read_bytes()


def test_stdin_png_named_npy_is_still_a_png(tmp_path: Path, rgb: Path) -> None:
    fake = tmp_path / "looks.npy"
    fake.write_bytes(rgb.read_bytes())
    ok("apply", fake, "-k", "box:3", "-o", tmp_path / "o.npy", "-q")
    assert load_npy(tmp_path / "o.npy").shape == (1, 3, 32, 40)


def test_stdout_npy_and_png(tmp_path: Path, rgb: Path) -> None:
    ok("apply", rgb, "-k", "gaussian:1", "-o", tmp_path / "file.npy", "-q")
    result = ok("apply", rgb, "-k", "gaussian:1", "-o", "-")
    np.testing.assert_array_equal(np.load(io.BytesIO(result.stdout_bytes)), load_npy(tmp_path / "file.npy"))
    assert "wrote standard output" in result.stderr  # messages never on stdout
    result = ok("apply", rgb, "-k", "gaussian:1", "-o", "-", "--format", "png", "-q")
    assert result.stdout_bytes.startswith(b"\x89PNG")
    assert result.stderr == ""


def test_stdout_holds_a_whole_batch(rgb: Path, rgb2: Path) -> None:
    result = ok("apply", rgb, rgb2, "-k", "box:3", "-o", "-", "-q")
    assert np.load(io.BytesIO(result.stdout_bytes)).shape == (2, 3, 32, 40)


def test_stdin_to_stdout_chain(tmp_path: Path, rgb: Path) -> None:
    first = ok("apply", rgb, "-k", "gaussian:1", "-o", "-", "-q").stdout_bytes
    ok("apply", "-", "-k", "sobel-x", "-o", tmp_path / "chain.npy", "-q", input=first)
    ok("apply", tmp_path / "chain.npy", "-k", "identity", "-o", tmp_path / "same.npy", "-q")
    blurred = scipy_filter(image_floats(rgb), gaussian_kernel(1.0), "nearest")  # an image: replicate padding
    sobel = scipy_filter(blurred, SOBEL_X, "constant")  # the .npy from standard input is an array: zeros
    np.testing.assert_allclose(load_npy(tmp_path / "chain.npy")[0], sobel, atol=1e-5)


def test_stdout_only_with_dash(tmp_path: Path, rgb: Path) -> None:
    result = ok("apply", rgb, "-k", "box:3", "-o", tmp_path / "o.png")
    assert result.stdout_bytes == b""
    assert result.stderr.startswith("convcli: wrote ")


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    source = crop("alpha.png", (100, 60, 160, 110), tmp_path / "a.png")
    result = ok("apply", source, "-k", "box:3", "-o", tmp_path / "o.png", "--quiet")
    assert result.stderr == "" and result.stdout == ""
    result = ok("apply", source, "-k", "box:3", "-o", tmp_path / "o.png")
    assert "alpha channel dropped" in result.stderr


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path, rgb: Path, gray: Path) -> None:
    result = ok("apply", rgb, gray, "-k", "box:3", "-o", tmp_path / "o-{stem}.npy")
    lines = result.stderr.splitlines()
    assert all(line.startswith("convcli: wrote ") for line in lines[:-1])
    assert lines[-1].startswith("convcli: apply: 2 inputs (1×1×28×36, 1×3×32×40) -> 2 files, values ")


# ---------------------------------------------------------------- errors: one line, no traceback, no output


@pytest.fixture
def bad_files(tmp_path: Path, rgb: Path) -> dict[str, Path]:
    """Broken and mismatched inputs, by name."""
    paths = {name: tmp_path / name for name in
             ("corrupt.png", "truncated.npy", "unknown.bin", "empty.png", "four.npy", "w4.npy", "strings.npy")}
    paths["corrupt.png"].write_bytes(rgb.read_bytes()[:60] + b"\x00garbage" * 20)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 10, 10)))
    paths["truncated.npy"].write_bytes(buffer.getvalue()[:200])
    paths["unknown.bin"].write_bytes(b"hello, this is not an image\x00\x01\x02")
    paths["empty.png"].write_bytes(b"")
    np.save(paths["four.npy"], np.zeros((4, 6, 6)))
    np.save(paths["w4.npy"], np.ones((2, 4, 3, 3)))
    np.save(paths["strings.npy"], np.array(["a", "b"]))
    return paths


ERRORS: list[tuple[str, Sequence[str], int, Sequence[str]]] = [
    # (id, arguments after 'apply' with RGB for the rgb input and OUT for the output, exit code, message parts)
    ("missing input", ["nope.png", "-k", "box:3", "-o", "OUT"], 3, ["input file", "nope.png", "not found"]),
    ("directory input", ["DIR", "-k", "box:3", "-o", "OUT"], 3, ["is a directory"]),
    ("corrupt png", ["corrupt.png", "-k", "box:3", "-o", "OUT"], 3, ["cannot read", "corrupt.png", "image"]),
    ("truncated npy", ["truncated.npy", "-k", "box:3", "-o", "OUT"], 3, ["truncated"]),
    ("unknown format", ["unknown.bin", "-k", "box:3", "-o", "OUT"], 3, ["cannot tell the format", "expected"]),
    ("empty file", ["empty.png", "-k", "box:3", "-o", "OUT"], 3, ["empty"]),
    ("unknown kernel", ["RGB", "-k", "gausian:2", "-o", "OUT"], 2,
     ["unknown kernel 'gausian'", "did you mean 'gaussian'"]),
    ("unknown kernel 2", ["RGB", "-k", "sobelx", "-o", "OUT"], 2, ["did you mean 'sobel-x'"]),
    ("bad kernel arg", ["RGB", "-k", "gaussian:-1", "-o", "OUT"], 2, ["gaussian", "SIGMA", "-1"]),
    ("too many args", ["RGB", "-k", "sobel-x:3", "-o", "OUT"], 2, ["takes no arguments"]),
    ("ragged inline", ["RGB", "-k", "1,2;3", "-o", "OUT"], 2, ["row 2", "row 1"]),
    ("imagemagick count", ["RGB", "-k", "3x3: 1,2,3", "-o", "OUT"], 2, ["needs 3×3 = 9 values", "got 3"]),
    ("missing kernel file", ["RGB", "-k", "nope.npy", "-o", "OUT"], 3, ["kernel file", "not found"]),
    ("string kernel file", ["RGB", "-k", "strings.npy", "-o", "OUT"], 2, ["real numbers"]),
    ("channel mismatch", ["RGB", "-k", "w4.npy", "-o", "OUT"], 2, ["4 input channels", "the input has 3"]),
    ("mixed kernels", ["RGB", "-k", "box:3", "-k", "w4.npy", "-o", "OUT"], 2, ["cannot mix"]),
    ("scale and normalize", ["RGB", "-k", "box:3", "--scale", "!", "--normalize", "-o", "OUT"], 2,
     ["--scale and --normalize"]),
    ("scale syntax", ["RGB", "-k", "box:3", "--scale", "two", "-o", "OUT"], 2, ["--scale must be", "'two'"]),
    ("scale of a layer", ["RGB", "-k", "w4.npy", "--scale", "!", "-o", "OUT"], 2, ["2-D kernels", "--normalize"]),
    ("combine a layer", ["four.npy", "-k", "w4.npy", "--combine", "max", "-o", "OUT"], 2, ["--combine", "layer"]),
    ("kernel list", ["RGB", "-k", "Sobel;nonsense", "-o", "OUT"], 2, ["'nonsense' is not a kernel name"]),
    ("45° of a row", ["RGB", "-k", "3x1@: 1,2,3", "-o", "OUT"], 2, ["cannot turn by 45°", "3×3"]),
    ("groups 2-D", ["RGB", "-k", "box:3", "--groups", "2", "-o", "OUT"], 2, ["groups=2"]),
    ("groups 0", ["RGB", "-k", "box:3", "--groups", "0", "-o", "OUT"], 2, ["--groups"]),
    ("groups FN", ["four.npy", "-k", "w4.npy", "--groups", "3", "-o", "OUT"], 2, ["groups"]),
    ("stride 0", ["RGB", "-k", "box:3", "--stride", "0", "-o", "OUT"], 2, ["stride must be >= 1", "0"]),
    ("stride -1,1", ["RGB", "-k", "box:3", "--stride", "-1,1", "-o", "OUT"], 2, ["stride must be >= 1"]),
    ("stride text", ["RGB", "-k", "box:3", "--stride", "two", "-o", "OUT"], 2, ["--stride", "'two'"]),
    ("stride three", ["RGB", "-k", "box:3", "--stride", "1,2,3", "-o", "OUT"], 2, ["--stride", "H,W"]),
    ("dilation 0", ["RGB", "-k", "box:3", "--dilation", "0", "-o", "OUT"], 2, ["dilation must be >= 1"]),
    ("negative pad", ["RGB", "-k", "box:3", "--pad", "-1", "-o", "OUT"], 2, ["pad must be >= 0", "-1"]),
    ("negative pad 4", ["RGB", "-k", "box:3", "--pad", "0,0,-2,0", "-o", "OUT"], 2, ["pad must be >= 0"]),
    ("pad text", ["RGB", "-k", "box:3", "--pad", "full", "-o", "OUT"], 2, ["--pad", "same, valid", "'full'"]),
    ("pad three", ["RGB", "-k", "box:3", "--pad", "1,2,3", "-o", "OUT"], 2, ["--pad takes 1, 2 or 4"]),
    ("kernel too large", ["RGB", "-k", "box:41", "--pad", "valid", "-o", "OUT"], 2,
     ["kernel 41×41 is larger than the padded input 32×40"]),
    ("dilated too large", ["RGB", "-k", "box:3", "--dilation", "30", "--pad", "1", "-o", "OUT"], 2,
     ["dilated to 61×61", "34×42"]),
    ("padding mode", ["RGB", "-k", "box:3", "--padding-mode", "mirrored", "-o", "OUT"], 2,
     ["--padding-mode", "zeros", "reflect", "replicate", "circular", "symmetric", "constant:VALUE", "'mirrored'"]),
    ("dtype", ["RGB", "-k", "box:3", "--dtype", "float16", "-o", "OUT"], 2, ["--dtype", "float32"]),
    ("display", ["RGB", "-k", "box:3", "--display", "log", "-o", "OUT"], 2, ["--display", "minmax"]),
    ("format", ["RGB", "-k", "box:3", "--format", "jpg", "-o", "OUT"], 2, ["--format", "png"]),
    ("bit depth", ["RGB", "-k", "box:3", "--bit-depth", "12", "-o", "OUT"], 2, ["--bit-depth must be 8 or 16", "12"]),
    ("bias count", ["RGB", "-k", "box:3", "--bias", "1,2", "-o", "OUT"], 2,
     ["--bias has 2 values", "expected 1, one per kernel (1) or one per output map (3)"]),
    ("bias text", ["RGB", "-k", "box:3", "--bias", "one", "-o", "OUT"], 2, ["--bias must be", "'one'"]),
    ("bias nan", ["RGB", "-k", "box:3", "--bias", "nan", "-o", "OUT"], 2, ["finite"]),
    ("bias strings", ["RGB", "-k", "box:3", "--bias", "strings.npy", "-o", "OUT"], 2, ["--bias file", "real numbers"]),
    ("bias missing", ["RGB", "-k", "box:3", "--bias", "nope.npy", "-o", "OUT"], 3, ["--bias file", "not found"]),
    ("gray 4 channels", ["four.npy", "-k", "box:3", "--gray", "-o", "OUT"], 2, ["gray needs 1 or 3 channels"]),
    ("no kernel", ["RGB", "-o", "OUT"], 2, ["Missing option '--kernel'"]),
    ("no input", ["-k", "box:3", "-o", "OUT"], 2, ["Missing argument"]),
    ("unknown option", ["RGB", "-k", "box:3", "--strides", "2", "-o", "OUT"], 2, ["--strides"]),
    ("output extension", ["RGB", "-k", "box:3", "-o", "OUT.gif"], 4, ["cannot tell the output format", ".png"]),
    ("output directory", ["RGB", "-k", "box:3", "-o", "nodir/o.png"], 4, ["does not exist"]),
    ("output folder missing", ["RGB", "-k", "box:3", "-o", "nodir/"], 4, ["output directory", "does not exist"]),
    ("output is the input", ["RGB", "-k", "box:3", "-o", "RGB"], 4, ["refusing to overwrite input"]),
    ("stdout many", ["four.npy", "-k", "box:3", "-k", "identity:3", "-f", "png", "-o", "-"], 4,
     ["-o - takes one output", "2 files"]),
    ("two stdins", ["-", "-", "-k", "box:3", "-o", "OUT"], 2, ["standard input can be read once only"]),
    ("stdin input and kernel", ["-", "-k", "-", "-o", "OUT"], 2, ["INPUT '-' and -k -"]),
]


@pytest.mark.parametrize(("args", "code", "fragments"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_are_one_line_and_leave_no_output(
    tmp_path: Path, rgb: Path, bad_files: dict[str, Path], args: Sequence[str], code: int, fragments: Sequence[str]
) -> None:
    out = tmp_path / "out.npy"
    out.write_bytes(b"an existing output: must survive")
    (tmp_path / "DIR").mkdir()
    replace = {"RGB": str(rgb), "OUT": str(out), "OUT.gif": str(tmp_path / "o.gif"), "DIR": str(tmp_path / "DIR"),
               "nodir/o.png": str(tmp_path / "nodir" / "o.png"), "nodir/": str(tmp_path / "nodir") + os.sep}
    argv = [replace.get(a, str(bad_files[a]) if a in bad_files else a) for a in args]
    before = listing(tmp_path)
    result = run("apply", *argv, input=b"")
    assert_one_line_error(result, code, *fragments)
    assert listing(tmp_path) == before  # nothing new, nothing changed (the existing output included)
    assert list((tmp_path / "DIR").iterdir()) == []


def test_late_output_problem_writes_nothing(tmp_path: Path, rgb: Path, gray: Path) -> None:
    # two sizes -> two outputs; the second name is a directory: found before the first file is written
    (tmp_path / "res-gray.png").mkdir()
    before = listing(tmp_path)
    result = run("apply", rgb, gray, "-k", "box:3", "-o", str(tmp_path / "res-{stem}.png"))
    assert_one_line_error(result, 4, "res-gray.png", "is a directory")
    assert listing(tmp_path) == before


def test_error_exit_codes_are_documented_classes(tmp_path: Path, rgb: Path) -> None:
    # usage 2, unreadable input 3, unwritable output 4
    assert run("apply", rgb, "-k", "nope").exit_code == 2
    assert run("apply", tmp_path / "nope.png", "-k", "box:3").exit_code == 3
    assert run("apply", rgb, "-k", "box:3", "-o", tmp_path / "x.gif").exit_code == 4


def test_help_lists_every_option() -> None:
    import typer.main

    command = typer.main.get_command(app)
    result = ok("apply", "--help")
    text = result.stdout
    for param in command.commands["apply"].params:  # type: ignore[attr-defined]
        for name in param.opts:
            if name.startswith("-"):
                assert name in text, name
    for word in ("--stride", "--pad", "--dilation", "--groups", "--padding-mode", "--flip", "--normalize", "--dtype",
                 "--gray", "--format", "--display", "--quiet", "--keep-alpha", "--bit-depth", "--bias", "--output",
                 "--kernel", "{stem}", "{map}"):
        assert word in text, word
    assert result.stderr == ""


def test_one_input_spelled_twice_is_refused_before_writing(tmp_path: Path, gray: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(gray.parent)
    before = listing(gray.parent)
    result = run("apply", gray.name, f"./{gray.name}", "-k", "box:3")
    assert_one_line_error(result, 4, "several outputs would be written to")
    assert listing(gray.parent) == before


def test_failure_after_some_outputs_removes_them(tmp_path: Path, gray: Path, rgb: Path, monkeypatch: Any) -> None:
    """The second batch fails while computing: the first batch's new file is removed again."""
    from convcli.engine.layer import Convolution

    calls = {"n": 0}
    forward = Convolution._forward  # what forward and forward_rows both run

    def failing_second(self: Convolution, x: np.ndarray, rows: Any) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise MemoryError
        return forward(self, x, rows)

    monkeypatch.setattr(Convolution, "_forward", failing_second)
    out = tmp_path / "out"
    out.mkdir()
    result = run("apply", gray, rgb, "-k", "box:3", "-o", f"{out}/")
    assert_one_line_error(result, 1, "out of memory")
    assert calls["n"] == 2 and list(out.iterdir()) == []


# ---------------------------------------------------------------- display, names, formats, --bias -, memory, 16-bit


def test_log_kernel_png_is_offset_not_clipped(tmp_path: Path, gray: Path) -> None:
    # log sums to 0 in float64 but its float32 copy does not: the display is chosen from the float64 kernels
    result = ok("apply", gray, "-k", "log:1.4", "-o", tmp_path / "o.png")
    assert "display offset" in result.stderr
    ok("apply", gray, "-k", "log:1.4", "-o", tmp_path / "o.npy", "-q")
    raw = load_npy(tmp_path / "o.npy")[0]
    assert raw.min() < -0.05  # a negative half that clip would have lost
    assert np.abs(png_pixels(tmp_path / "o.png") - _displayed(raw, "offset")).max() <= 1


def test_normalize_leaves_a_large_tap_zero_sum_kernel_alone(tmp_path: Path, arr: Path) -> None:
    ok("apply", arr, "-k", "log:0.01", "--normalize", "-o", tmp_path / "n.npy", "-q")
    ok("apply", arr, "-k", "log:0.01", "-o", tmp_path / "r.npy", "-q")
    np.testing.assert_array_equal(load_npy(tmp_path / "n.npy"), load_npy(tmp_path / "r.npy"))  # not divided by ~1e-12


def test_map_field_always_means_one_file_per_map(tmp_path: Path, gray: Path, rgb: Path) -> None:
    ok("apply", gray, "-k", "box:3", "-o", tmp_path / "g-{map}.png", "-q")
    ok("apply", rgb, "-k", "box:3", "-o", tmp_path / "c-{map}.png", "-q")  # 3 maps: 3 gray files
    ok("apply", rgb, "-k", "box:3", "-o", tmp_path / "one.png", "-q")  # no {map}: one RGB file
    assert sorted(p.name for p in tmp_path.glob("[gc]-*.png")) == ["c-0.png", "c-1.png", "c-2.png", "g-0.png"]
    with Image.open(tmp_path / "c-1.png") as im:
        assert im.mode == "L"


@pytest.mark.parametrize(("fmt", "name"), [("png", "t.npy"), ("npy", "t.png"), ("tiff", "t.npz"), ("npz", "t.TIF")])
def test_format_contradicting_the_output_name_is_refused(tmp_path: Path, gray: Path, fmt: str, name: str) -> None:
    result = run("apply", gray, "-k", "box:3", "-f", fmt, "-o", tmp_path / name)
    assert_one_line_error(result, 2, f"--format {fmt} contradicts the output name", name)
    assert not (tmp_path / name).exists()


def test_format_with_an_unknown_extension_is_kept(tmp_path: Path, arr: Path) -> None:
    ok("apply", arr, "-k", "box:3", "-f", "npy", "-o", tmp_path / "t.dat", "-q")
    assert load_npy(tmp_path / "t.dat").shape == (2, 3, 9, 11)


def test_bad_output_options_are_reported_before_inputs_are_read(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)  # undecodable
    assert_one_line_error(run("apply", tmp_path / "bad.png", "-k", "box:3", "-o", tmp_path / "o.gif"), 4,
                          "cannot tell the output format")
    assert_one_line_error(run("apply", tmp_path / "bad.png", "-k", "box:3", "-f", "png", "-o", tmp_path / "o.npy"),
                          2, "contradicts")
    assert_one_line_error(run("apply", tmp_path / "bad.png", "-k", "box:3", "--bit-depth", "12"), 2, "--bit-depth")
    assert_one_line_error(run("apply", tmp_path / "bad.png", "-k", "box:3", "-o", tmp_path / "o.png"), 3, "bad.png")


def test_bias_from_standard_input(tmp_path: Path, arr: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([0.5, -1.0, 2.0]))
    ok("apply", arr, "-k", "box:3", "--bias", "-", "-o", tmp_path / "b.npy", "-q", input=buffer.getvalue())
    ok("apply", arr, "-k", "box:3", "-o", tmp_path / "n.npy", "-q")
    np.testing.assert_allclose(load_npy(tmp_path / "b.npy") - load_npy(tmp_path / "n.npy"),
                               np.broadcast_to(np.array([0.5, -1.0, 2.0])[None, :, None, None], (2, 3, 9, 11)))


@pytest.mark.parametrize(("args", "fragment"), [
    (["-", "-k", "box:3", "--bias", "-"], "INPUT '-' and --bias -"),
    (["ARR", "-k", "-", "--bias", "-"], "-k - and --bias -"),
])
def test_bias_stdin_counts_as_a_reader_of_standard_input(tmp_path: Path, arr: Path, args: list[str],
                                                         fragment: str) -> None:
    args = [str(arr) if a == "ARR" else a for a in args]
    result = run("apply", *args, "-o", tmp_path / "o.npy", input=arr.read_bytes())
    assert_one_line_error(result, 2, "standard input can be read once only", fragment)


def test_an_output_larger_than_memory_is_refused_before_any_work(tmp_path: Path, gray: Path) -> None:
    result = run("apply", gray, "-k", "box:3", "--pad", "1000000", "-o", tmp_path / "o.npy")
    assert_one_line_error(result, 1, "output of shape (1, 1, 2000026, 2000034) (float32) needs", "TiB",
                          "more than this machine's", "use less padding")
    assert not (tmp_path / "o.npy").exists()


def test_out_of_memory_names_the_output_and_gives_no_float32_advice_in_float32(
    tmp_path: Path, gray: Path, monkeypatch: Any
) -> None:
    from convcli.engine.layer import Convolution

    def failing(self: Convolution, x: np.ndarray) -> np.ndarray:
        raise MemoryError

    monkeypatch.setattr(Convolution, "forward", failing)
    line = assert_one_line_error(run("apply", gray, "-k", "box:3", "-o", tmp_path / "o.npy"), 1,
                                 "out of memory computing the output of shape (1, 1, 28, 36) (float32, 3.94 KiB)")
    assert "float32;" not in line and not line.endswith("float32")
    line = assert_one_line_error(run("apply", gray, "-k", "box:3", "--dtype", "float64", "-o", tmp_path / "o.npy"), 1,
                                 "(float64, 7.88 KiB)")
    assert line.endswith("or float32")


def test_16_bit_input_gives_a_16_bit_png_by_default(tmp_path: Path, gray: Path) -> None:
    source = crop("gray16.png", (60, 40, 120, 80), tmp_path / "g16.png")
    result = ok("apply", source, "-k", "box:3", "-o", tmp_path / "o.png")
    assert "16-bit" in result.stderr
    with Image.open(tmp_path / "o.png") as im:
        assert im.mode in ("I;16", "I")
    assert len(np.unique(png_pixels(tmp_path / "o.png"))) > 1000  # round-trips at 16 bits
    ok("apply", source, "-k", "box:3", "--bit-depth", "8", "-o", tmp_path / "e.png", "-q")
    with Image.open(tmp_path / "e.png") as im:
        assert im.mode == "L"
    ok("apply", source, gray, "-k", "box:3", "-o", tmp_path / "m-{stem}.png", "-q")  # not every input is 16-bit
    with Image.open(tmp_path / "m-g16.png") as im:
        assert im.mode == "L"


@pytest.mark.skipif(os.name == "nt", reason="no newline in Windows file names")
def test_messages_quote_paths_so_a_newline_in_a_name_stays_on_one_line(tmp_path: Path, gray: Path) -> None:
    odd = tmp_path / "two\nlines.png"
    result = ok("apply", gray, "-k", "box:3", "-o", odd)
    lines = result.stderr.splitlines()
    assert lines[0] == f"convcli: wrote {str(odd)!r} (png, 1×1×28×36, display clip, padding replicate)"
    assert len(lines) == 2 and lines[1].startswith("convcli: apply: 1 input")
    assert_one_line_error(run("apply", gray, "-k", str(tmp_path / "no\nsuch.npy"), "-o", tmp_path / "o.png"), 3,
                          "kernel file", "no\\nsuch.npy", "not found")


@pytest.mark.parametrize(("options", "named"), [
    (["--montage", "m.png"], "--montage works"),
    (["--explain", "--preview"], "--explain, --preview work"),
])
def test_the_dask_engine_refuses_the_local_views(tmp_path: Path, rgb: Path, options: list[str], named: str) -> None:
    """--montage, --explain, --show-equivalent and --preview need the local engine: refused before any work."""
    result = run("apply", rgb, "-k", "box:3", "--engine", "dask", *options, "-o", tmp_path / "o.npy")
    assert_one_line_error(result, 2, named, "--engine local only")
    assert not (tmp_path / "o.npy").exists() and not (tmp_path / "m.png").exists()
