"""Kernel pictures: a cell per tap in the diverging colours, the numbers when they fit."""

from __future__ import annotations

import numpy as np

from convcli.kernels.builtins import SOBEL_X
from convcli.visual.colormap import NAN_COLOUR, diverging
from convcli.visual.kernel_picture import KernelCells, cell_size, kernel_grid, kernel_picture, tap_text


def cells(image: np.ndarray, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Each tap's corner colour (clear of the centred number), (FH, FW, 3)."""
    step = cell + 1
    return np.stack([np.stack([image[1 + y * step + 1, 1 + x * step + 1] for x in range(shape[1])])
                     for y in range(shape[0])])


def test_each_tap_has_its_colour_and_a_number() -> None:
    w = np.asarray(SOBEL_X, dtype=np.float64)
    image = np.asarray(kernel_grid(KernelCells(w, "sobel-x")))
    cell = cell_size(w.shape)
    assert cell == 48 and image.shape == (3 * 49 + 1, 3 * 49 + 1, 3)
    np.testing.assert_array_equal(cells(image, w.shape, cell), diverging(w / 2))
    centre = image[1 + 49 + 10:1 + 49 + 38, 1 + 10:1 + 38]  # tap (1, 0) = -2: its number is drawn there
    assert len({tuple(p) for p in centre.reshape(-1, 3)}) > 1


def test_a_sign_flip_swaps_red_and_blue() -> None:
    w = np.asarray(SOBEL_X, dtype=np.float64)
    a = cells(np.asarray(kernel_grid(KernelCells(w, "a"))), w.shape, 48)
    b = cells(np.asarray(kernel_grid(KernelCells(-w, "b"))), w.shape, 48)
    np.testing.assert_array_equal(b, a[..., ::-1])


def test_large_kernels_get_small_cells_and_no_numbers() -> None:
    w = np.ones((31, 31)) / 961
    cell = cell_size(w.shape)
    assert cell == 12
    image = np.asarray(kernel_grid(KernelCells(w, "box")))
    inner = image[2:cell, 2:cell]
    assert (inner == inner[0, 0]).all()  # 1/961 would not fit in 12 pixels: no number


def test_holes_and_several_kernels() -> None:
    w = np.array([[0.0, 1.0], [1.0, 0.0]])
    holes = np.array([[True, False], [False, True]])
    image = np.asarray(kernel_grid(KernelCells(w, "h", holes)))
    assert tuple(image[2, 2]) == NAN_COLOUR
    both = kernel_picture([KernelCells(w, "one"), KernelCells(-w, "two")])
    assert both.shape[1] > 2 * image.shape[1]
    assert tap_text(0.125) == ".125" and tap_text(-0.5) == "-.5" and tap_text(-2.0) == "-2"
