"""--montage on apply and grad, the grad pictures' enlargement, --preview: pixels, not just files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, ok, run
from PIL import Image

from convcli.visual.montage import Tile, montage

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


def rgb_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(np.int64)


@pytest.fixture
def gray(tmp_path: Path) -> Path:
    with Image.open(SAMPLES / "gray.png") as im:
        im.crop((20, 20, 56, 48)).save(tmp_path / "gray.png")
    return tmp_path / "gray.png"


def boxes(tiles: list[Tile], title: str) -> list[tuple[int, int, int, int]]:
    """Where the command's montage puts its tiles: the same layout for the same labels and sizes."""
    return [p.box for p in montage(tiles, title)[1]]


def test_identity_montage_tile_equals_the_input(tmp_path: Path, gray: Path) -> None:
    result = ok("apply", gray, "-k", "identity", "--montage", tmp_path / "m.png")
    assert "montage of 1 maps" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.png", "m.png"]  # the montage alone
    with Image.open(gray) as im:
        source = np.asarray(im).astype(np.int64)
    picture = rgb_pixels(tmp_path / "m.png")
    (box,) = boxes([Tile(source / 255.0, "gray · gray · identity")], "convcli apply -k identity: 1 maps")
    left, top, right, bottom = box
    tile = picture[top:bottom, left:right]
    factor = tile.shape[0] // source.shape[0]
    assert factor == 3  # the longest side, 36, enlarged to at least 96 pixels
    np.testing.assert_array_equal(tile[::factor, ::factor, 0], source)
    np.testing.assert_array_equal(np.repeat(np.repeat(source, factor, 0), factor, 1), tile[:, :, 1])


def test_a_sign_flip_swaps_the_colours(tmp_path: Path, gray: Path) -> None:
    ok("apply", gray, "-k", "sobel-x", "-k", "1,0,-1;2,0,-2;1,0,-1", "--montage", tmp_path / "m.png", "-q")
    ok("apply", gray, "-k", "sobel-x", "-o", tmp_path / "raw.npy", "-q")
    raw = np.load(tmp_path / "raw.npy")[0, 0]
    picture = rgb_pixels(tmp_path / "m.png")
    tiles = [Tile(raw, "gray · gray · sobel-x"), Tile(-raw, "gray · gray · inline")]
    first, second = (picture[t:b, left:r] for left, t, r, b in
                     boxes(tiles, "convcli apply -k sobel-x+inline: 2 maps"))
    assert (first != 255).any()  # not blank
    np.testing.assert_array_equal(second, first[:, :, ::-1])  # red where the other is blue, same strength
    positive = raw[1:-1, 1:-1] > 0.5
    f = first.shape[0] // raw.shape[0]
    reds = first[f::f, f::f][: positive.shape[0], : positive.shape[1]][positive]
    assert (reds[:, 0] > reds[:, 2]).all()  # positive is red, as the colour map says


def test_montage_beside_map_files_and_a_bad_name(tmp_path: Path, gray: Path) -> None:
    ok("apply", gray, "-k", "box:3", "-k", "sobel-x", "-o", tmp_path / "o.png", "--montage", tmp_path / "m.png", "-q")
    assert sorted(p.name for p in tmp_path.glob("[om]*.png")) == ["m.png", "o-box-3.png", "o-sobel-x.png"]
    result = run("apply", gray, "-k", "box:3", "--montage", tmp_path / "m.jpg")
    assert_one_line_error(result, 4, "--montage", "PNG")
    result = run("apply", gray, "-k", "box:3", "-o", tmp_path / "same.png", "--montage", tmp_path / "same.png")
    assert_one_line_error(result, 4, "same.png")
    assert not (tmp_path / "same.png").exists()


def test_grad_dk_picture_is_enlarged(tmp_path: Path, gray: Path) -> None:
    ok("grad", gray, "-k", "sobel-x", "--dout", "ones", "--dw", tmp_path / "dk.png", "-q")
    ok("grad", gray, "-k", "sobel-x", "--dout", "ones", "--dw", tmp_path / "dk.npy", "-q")
    dk = np.load(tmp_path / "dk.npy")
    with Image.open(tmp_path / "dk.png") as im:
        got = np.asarray(im).astype(np.int64)
    assert got.shape == (96, 96)
    lo, hi = dk.min(), dk.max()
    np.testing.assert_allclose(got[::32, ::32], np.rint((dk - lo) / (hi - lo) * 255), atol=1)  # minmax, per tap


def test_grad_montage_alone(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.standard_normal((1, 2, 8, 8)))
    np.save(tmp_path / "w.npy", rng.standard_normal((3, 2, 3, 3)))
    result = ok("grad", tmp_path / "x.npy", "-k", tmp_path / "w.npy", "--dout", "randn:1", "--montage",
                tmp_path / "g.png")
    assert "montage of 8 maps" in result.stderr  # dx: 2 channels; dW: 3 filters x 2 channels
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png", "w.npy", "x.npy"]  # no default .npz


def test_preview_off_when_stderr_is_no_terminal(tmp_path: Path, gray: Path) -> None:
    result = ok("apply", gray, "-k", "box:3", "-o", tmp_path / "o.png", "--preview")
    assert "--preview: standard error is not a terminal" in result.stderr
    assert "▀" not in result.stderr
    assert "apply: 1 input (1×1×28×36) -> 1 file, values" in result.stderr
