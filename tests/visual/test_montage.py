"""The montage: where each map goes, how it is enlarged, what its legend says."""

from __future__ import annotations

import numpy as np

from convcli.commands.apply_outputs import MapName
from convcli.commands.montages import ApplyMontage, grad_tiles
from convcli.visual.colormap import Scale, colorize
from convcli.visual.montage import BACKGROUND, MAX_SIDE, MIN_SIDE, Tile, format_value, montage, shrink


def crop(picture: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    return picture[top:bottom, left:right]


def test_a_small_map_is_enlarged_with_whole_pixels() -> None:
    values = np.arange(9, dtype=np.float64).reshape(3, 3) / 8  # unsigned, in [0, 1]
    picture, (placed,) = montage([Tile(values, "k")])
    assert placed.factor == 32 and MIN_SIDE <= 96
    tile = crop(picture, placed.box)
    assert tile.shape == (96, 96, 3)
    np.testing.assert_array_equal(tile[::32, ::32, 0], np.rint(values * 255))
    for y in range(3):  # each tap one 32x32 square of one colour
        for x in range(3):
            block = tile[32 * y:32 * y + 32, 32 * x:32 * x + 32]
            assert (block == block[0, 0]).all()


def test_the_legend_is_the_real_range_and_the_scale() -> None:
    values = np.array([[-0.76, 0.1], [0.2, 0.5]])
    _, (placed,) = montage([Tile(values, "m")])
    assert placed.legend == ("[-0.76, 0.5]", "colour ±0.76")
    assert placed.scale == Scale(True, 0.76)
    _, (gray,) = montage([Tile(np.array([[0.25, 3.0]]), "g")])
    assert gray.legend == ("[0.25, 3]", "gray 0..3")


def test_the_legend_is_drawn_under_each_tile() -> None:
    picture, placed = montage([Tile(np.zeros((10, 10)), "a"), Tile(np.ones((10, 10)), "b")])
    for p in placed:
        left, _, right, bottom = p.box
        band = picture[bottom + 2:bottom + 24, left:right]
        assert (band != BACKGROUND).any()  # text there


def test_apply_tiles_scale_by_the_interior_and_show_the_whole_range() -> None:
    result = np.zeros((1, 2, 8, 8))
    result[0, 0, 2:6, 2:6] = 0.25
    result[0, 0, 0, 0] = -4.0  # a padding artefact on the border
    result[0, 1] = 0.5
    grid = ApplyMontage()
    grid.add(result, [MapName("sobel-x", "gray"), MapName("box-3", "gray")], ["photo"], False,
             (slice(1, 7), slice(1, 7)))
    assert [t.label for t in grid.tiles] == ["photo · gray · sobel-x", "photo · gray · box-3"]
    assert [t.row for t in grid.tiles] == [0, 0]
    _, placed = montage(grid.tiles)
    assert placed[0].legend == ("[-4, 0.25]", "gray 0..1")  # the interior is unsigned: not washed out by -4
    assert placed[1].legend == ("[0.5, 0.5]", "gray 0..1")


def test_rows_are_image_and_channel_and_a_layer_s_filters_share_a_row() -> None:
    grid = ApplyMontage()
    names = [MapName(k, c) for c in "rgb" for k in ("a", "b")]
    grid.add(np.zeros((2, 6, 4, 4)), names, ["x[0]", "x[1]"], False, (slice(0, 4), slice(0, 4)))
    assert [t.row for t in grid.tiles] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    layer = ApplyMontage()
    layer.add(np.zeros((1, 3, 4, 4)), [MapName(f"w-{f}", str(f)) for f in range(3)], ["x"], True,
              (slice(0, 4), slice(0, 4)))
    assert [t.row for t in layer.tiles] == [0, 0, 0]
    assert layer.tiles[2].label == "x · filter 2 · w-2"


def test_large_maps_are_shrunk_to_fit() -> None:
    big = np.random.default_rng(0).random((1000, 600))
    small = shrink(big)
    assert max(small.shape) <= MAX_SIDE
    assert abs(small.mean() - big.mean()) < 1e-3
    picture, (placed,) = montage([Tile(small, "big", range=(float(big.min()), float(big.max())))])
    assert max(placed.box[2] - placed.box[0], placed.box[3] - placed.box[1]) <= MAX_SIDE


def test_grad_tiles_label_dx_dw_and_dk() -> None:
    tiles = grad_tiles(np.zeros((1, 2, 5, 5)), np.zeros((4, 1, 3, 3)), np.zeros((2, 3, 3)), "x", ["sobel-x", "box-3"])
    labels = [t.label for t in tiles]
    assert labels[:2] == ["dx · x · channel 0", "dx · x · channel 1"]
    assert labels[2:6] == [f"dW · filter {f} · channel 0" for f in range(4)]
    assert labels[6:] == ["dK · sobel-x", "dK · box-3"]


def test_a_signed_tile_has_its_colours() -> None:
    values = np.array([[-1.0, 0.0], [0.5, 1.0]])
    picture, (placed,) = montage([Tile(values, "s")])
    tile = crop(picture, placed.box)
    f = int(placed.factor)
    np.testing.assert_array_equal(tile[::f, ::f], colorize(values, Scale(True, 1.0)))
    assert format_value(0.0) == "0"
