"""Maps readable one by one: which file holds which maps, the name fields, each kernel's display, minmax's range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, ok, run
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convcli.engine.geometry import plan_geometry, valid_region

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


def pixels(path: Path) -> np.ndarray:
    """A picture as (C, H, W) integers."""
    with Image.open(path) as im:
        array = np.asarray(im).astype(np.int64)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


@pytest.fixture
def rgb(tmp_path: Path) -> Path:
    with Image.open(SAMPLES / "photo.png") as im:
        im.crop((72, 90, 112, 122)).save(tmp_path / "rgb.png")
    return tmp_path / "rgb.png"


@pytest.fixture
def gray(tmp_path: Path) -> Path:
    with Image.open(SAMPLES / "gray.png") as im:
        im.crop((20, 20, 56, 48)).save(tmp_path / "gray.png")
    return tmp_path / "gray.png"


def test_a_gray_bank_gives_one_file_per_map_named_by_kernel(tmp_path: Path, gray: Path) -> None:
    # three kernels on a gray picture: three gray PNGs, never one false-colour RGB file
    ok("apply", gray, "-k", "sobel-x", "-k", "sobel-y", "-k", "laplacian", "-o", tmp_path / "m-{map}.png", "-q")
    assert sorted(p.name for p in tmp_path.glob("m-*.png")) == ["m-0.png", "m-1.png", "m-2.png"]
    ok("apply", gray, "-k", "sobel-x", "-k", "sobel-y", "-k", "laplacian", "-k", "box:3", "-o", tmp_path / "e.png",
       "-q")
    names = sorted(p.name for p in tmp_path.glob("e-*.png"))
    assert names == ["e-box-3.png", "e-laplacian.png", "e-sobel-x.png", "e-sobel-y.png"]
    for name in names:
        with Image.open(tmp_path / name) as im:
            assert im.mode == "L"  # no RGBA whose 4th map is transparency


def test_a_colour_bank_gives_one_colour_picture_per_kernel(tmp_path: Path, rgb: Path) -> None:
    ok("apply", rgb, "-k", "sobel-x", "-k", "box:3", "-o", tmp_path / "raw.npy", "-q")
    raw = np.load(tmp_path / "raw.npy")[0]  # (6, H, W): map c*2 + m
    ok("apply", rgb, "-k", "sobel-x", "-k", "box:3", "-o", tmp_path / "{stem}-{kernel}.png", "-q")
    box = pixels(tmp_path / "rgb-box-3.png")
    sobel = pixels(tmp_path / "rgb-sobel-x.png")
    assert box.shape[0] == sobel.shape[0] == 3
    # each kernel's own display: the blur clipped (its own picture), sobel offset around mid-gray
    np.testing.assert_allclose(box, np.rint(np.clip(raw[1::2], 0, 1) * 255), atol=1)
    np.testing.assert_allclose(sobel, np.rint(np.clip(raw[0::2] + 0.5, 0, 1) * 255), atol=1)


def test_channel_and_kernel_fields(tmp_path: Path, rgb: Path) -> None:
    ok("apply", rgb, "-k", "sobel-x", "-k", "box:3", "-o", tmp_path / "raw.npy", "-q")
    raw = np.load(tmp_path / "raw.npy")[0]
    ok("apply", rgb, "-k", "sobel-x", "-k", "box:3", "-o", tmp_path / "{kernel}_{channel}.png", "-q")
    names = sorted(p.name for p in tmp_path.glob("*_*.png"))
    assert names == sorted(f"{k}_{c}.png" for k in ("sobel-x", "box-3") for c in "rgb")
    for c, channel in enumerate("rgb"):  # map c*M + m is kernel m on channel c
        np.testing.assert_allclose(pixels(tmp_path / f"box-3_{channel}.png")[0],
                                   np.rint(np.clip(raw[2 * c + 1], 0, 1) * 255), atol=1)


def test_a_repeated_kernel_label_gets_an_index(tmp_path: Path, gray: Path) -> None:
    ok("apply", gray, "-k", "box:3", "-k", "box:3", "-o", tmp_path / "b.png", "-q")
    assert sorted(p.name for p in tmp_path.glob("b-*.png")) == ["b-box-3-0.png", "b-box-3-1.png"]


@pytest.mark.parametrize("name", ["o-{kernal}.png", "{}.png", "{stem}-{Map}.png"])
def test_an_unknown_field_is_a_usage_error(tmp_path: Path, gray: Path, name: str) -> None:
    result = run("apply", gray, "-k", "box:3", "-o", tmp_path / name)
    assert_one_line_error(result, 2, "unknown field", "{stem}, {kernel}, {channel}, {map}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.png"]


def test_per_kernel_display_in_a_mixed_bank(tmp_path: Path, gray: Path) -> None:
    # the bank's one display would wash the blur out; each kernel now gets its own
    result = ok("apply", gray, "-k", "sobel-x", "-k", "box:3", "-o", tmp_path / "raw.npy")
    raw = np.load(tmp_path / "raw.npy")[0]
    result = ok("apply", gray, "-k", "sobel-x", "-k", "box:3", "-o", tmp_path / "m.png")
    assert "m-box-3.png' (png, 1×1×28×36, display clip" in result.stderr
    assert "m-sobel-x.png' (png, 1×1×28×36, display offset" in result.stderr
    np.testing.assert_allclose(pixels(tmp_path / "m-box-3.png")[0], np.rint(np.clip(raw[1], 0, 1) * 255), atol=1)
    assert (pixels(tmp_path / "m-box-3.png") == 255).mean() < 0.35


def test_minmax_range_is_the_valid_interior_not_the_padding(tmp_path: Path) -> None:
    # the README's 16-bit example: zero padding's border no longer sets the range
    source = SAMPLES / "gray16.png"
    ok("apply", source, "-k", "laplacian", "--padding-mode", "zeros", "-o", tmp_path / "raw.npy", "-q")
    raw = np.load(tmp_path / "raw.npy")[0, 0].astype(np.float64)
    ok("apply", source, "-k", "laplacian", "--padding-mode", "zeros", "--display", "minmax", "--bit-depth", "16",
       "-o", tmp_path / "lap16.png", "-q")
    got = pixels(tmp_path / "lap16.png")[0]
    inner = raw[1:-1, 1:-1]
    lo, hi = inner.min(), inner.max()
    expected = np.rint(np.clip((raw - lo) / (hi - lo), 0, 1) * 65535)
    assert np.abs(got - expected).max() <= 2
    assert got[1:-1, 1:-1].min() == 0 and got[1:-1, 1:-1].max() == 65535  # the interior uses the full range
    assert np.median(got) < 60000  # not the almost white picture of the whole map's range


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 12), k=st.integers(1, 5), s=st.integers(1, 3), d=st.integers(1, 2), p=st.integers(0, 4))
def test_valid_region_is_where_windows_read_no_padding(h: int, k: int, s: int, d: int, p: int) -> None:
    if d * (k - 1) + 1 > h + 2 * p:
        return
    geom = plan_geometry((1, 1, h, h), (1, 1, k, k), s, p, d, 1, "zeros")
    rows, cols = valid_region(geom)
    assert rows == cols
    for o in range(geom.out_h):
        first = o * s - p
        inside = first >= 0 and first + d * (k - 1) <= h - 1
        assert inside == (rows.start <= o < rows.stop), (o, rows)
