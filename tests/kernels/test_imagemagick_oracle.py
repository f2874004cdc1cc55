"""Every ImageMagick kernel string convcli reads, parsed to the matrix ImageMagick itself builds.

ImageMagick 6 Q16 prints its kernels with ``-define morphology:showKernel=1`` (17 digits with
``-precision 17``); :func:`imagemagick_helpers.show_kernels` reads them back.  Each spec is
compared kernel by kernel: count, size, origin, holes and values (to 1e-12, the printing's
precision).  ``--scale`` is compared the same way: ImageMagick prints its kernels after
``-define convolve:scale``.  Skipped where ImageMagick 6 Q16 is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from imagemagick_helpers import refused, show_kernels

from convcli.kernels.frame import running_origin
from convcli.kernels.scale import parse_scale, scale_kernel
from convcli.kernels.spec import parse_kernels

#: The named kernels, their angles and rotation sets, and the arguments that size them.
NAMED = [
    "Sobel", "Sobel:45", "Sobel:90", "Sobel:135", "Sobel:180", "Sobel:-45", "Sobel:30", "Sobel:200", "Sobel:@",
    "Sobel:>", "Sobel:<", "Roberts", "Roberts:@", "Prewitt:@", "Compass", "Compass:@", "Kirsch", "Kirsch:45",
    "Kirsch:@", "Kirsch:90>", "FreiChen", "FreiChen:1", "FreiChen:2", "FreiChen:10", "FreiChen:15", "FreiChen:19",
    "FreiChen:45", "FreiChen:2,90", "FreiChen:@", "Laplacian:0", "Laplacian:1", "Laplacian:2", "Laplacian:3",
    "Laplacian:5", "Laplacian:7", "Laplacian:15", "Laplacian:19", "Laplacian:4", "Laplacian:1@",
    "Gaussian:0x1", "Gaussian:0x0.5", "Gaussian:0x2", "Gaussian:0x0.3", "Gaussian:2x1", "Gaussian:3,1.5",
    "Gaussian:0x10", "Gaussian:0.5x1", "LoG:0x1", "LoG:0x1.4", "LoG:3x1", "LoG:0x5", "DoG:0,1,2", "DoG:0,2,1",
    "DoG:3,1,1.6", "DoG:0,0,1", "DoG:0,3,5", "Blur:0x1", "Blur:0x2", "Blur:3x1", "Blur:0x1+90", "Blur:0x1,90",
    "Blur:0x1+180", "Blur:0x1+270", "Blur:0x1>", "Blur:0x0", "Comet:0x2", "Comet:5x1", "Comet:0x1+90", "Comet:0x7",
    "Comet:0x1>", "Binomial", "Binomial:2", "Binomial:8", "Unity", "Unity:3", "Disk", "Disk:2", "Disk:3.2",
    "Disk:2,0.5", "Square", "Square:2", "Square:1.5", "Diamond", "Diamond:2", "Octagon", "Octagon:3", "Plus",
    "Plus:3", "Cross", "Cross:2", "Rectangle:3x2", "Rectangle:4x3+0+0", "Rectangle:5",
    "sobel:45", "KIRSCH:@", "gaussian:0x1", "laplacian:2", "log:0x1",  # names are case-insensitive
]

#: User kernels: sizes, origins, holes, rotation flags.
ARRAYS = [
    "3x3: 1,2,3,4,5,6,7,8,9", "3x3+0+0: 1,2,3,4,5,6,7,8,9", "3x3+2+1@: 1,2,3,4,5,6,7,8,9",
    "3x3+0+2>: 1,2,3,4,5,6,7,8,9", "3x3+0+1<: 1,2,3,4,5,6,7,8,9", "4x4+1+2>: " + ",".join(map(str, range(1, 17))),
    "4x4+3+0: " + " ".join(map(str, range(1, 17))), "3x1+2+0>: 1,2,3", "1x3+0+0>: 1,2,3", "2x1: 1,2",
    "3: 1,nan,3, -,5,6, 7,8,9", "2x3+1+2: 1,2,3,4,5,6", "5x1+4+0<: 1,2,3,4,5", "3x2+1+1: 1,2,3,4,5,6",
    "3x: 1,2,3,4,5,6,7,8,9", "3x3+1: 1,2,3,4,5,6,7,8,9", "0x0: 5", "3X1:1,2,3",
]

#: Kernel lists: ';' between kernels, empty parts skipped.
LISTS = ["Sobel;Sobel:90", "Sobel; 3x3+0+0: 1,2,3,4,5,6,7,8,9", "Kirsch:@;Laplacian:1", ";Roberts;;Prewitt:90;"]


def assert_same_kernels(spec: str, theirs: list[tuple[np.ndarray, int, int]], values: list[np.ndarray],
                        origins: list[tuple[int, int]], holes: list[np.ndarray]) -> None:
    assert len(values) == len(theirs), f"{spec}: {len(values)} kernels, ImageMagick {len(theirs)}"
    for index, ((expected, x, y), got, origin, hole) in enumerate(zip(theirs, values, origins, holes)):
        where = f"{spec} #{index}"
        assert got.shape == expected.shape, where
        assert origin == (y, x), f"{where}: origin {origin}, ImageMagick (row {y}, column {x})"
        np.testing.assert_array_equal(hole, np.isnan(expected), err_msg=where)
        np.testing.assert_allclose(got[~hole], expected[~hole], rtol=1e-12, atol=1e-15, err_msg=where)


def parsed(spec: str) -> tuple[list[np.ndarray], list[tuple[int, int]], list[np.ndarray]]:
    kernels = parse_kernels(spec).kernels
    holes = [~k.tap_mask for k in kernels]
    origins = [k.origin for k in kernels]
    assert all(o is not None for o in origins)
    return [np.array(k.weights) for k in kernels], origins, holes  # type: ignore[return-value]


@pytest.mark.parametrize("spec", NAMED + ARRAYS + LISTS)
def test_kernel_is_the_one_imagemagick_builds(spec: str) -> None:
    theirs = show_kernels(spec)
    assert_same_kernels(spec, theirs, *parsed(spec))


@pytest.mark.parametrize("scale", ["!", "^", "0.5", "-1", "50%", "!,100%", "2^", "^,50%", "1.5,0.25", "200%!"])
@pytest.mark.parametrize("spec", ["Sobel", "Kirsch:@", "3x3+0+0: 1,2,3,4,5,6,7,8,9", "LoG:0x1", "DoG:0,1,2",
                                  "3x2: -1,2,nan,4,-5,6", "Laplacian:0", "Disk:1"])
def test_scale_is_imagemagick_convolve_scale(spec: str, scale: str) -> None:
    theirs = show_kernels(spec, scale)
    kernels = parse_kernels(spec).kernels
    option = parse_scale(scale)
    values = [scale_kernel(np.array(k.weights), running_origin(k, True), option) for k in kernels]
    assert_same_kernels(f"{spec} scaled {scale}", theirs, values, [k.origin for k in kernels],  # type: ignore[misc]
                        [~k.tap_mask for k in kernels])


@pytest.mark.parametrize("spec", ["3x3: 1,2,1;2,4,2;1,2,1", "1,2,3,4", "Kirsch@", "Sobel>"])
def test_what_convcli_reads_where_imagemagick_refuses_or_differs(spec: str) -> None:
    """convcli's extensions: rows after 'WxH:', a bare list as one row, a rotation flag glued to the name."""
    kernels = parse_kernels(spec).kernels
    if spec == "1,2,3,4":  # ImageMagick's old square form (2x2); convcli: one row, as its inline matrices
        assert show_kernels(spec)[0][0].shape == (2, 2) and kernels[0].size == (1, 4)
        return
    assert refused(spec)
    assert len(kernels) == {"3x3: 1,2,1;2,4,2;1,2,1": 1, "Kirsch@": 8, "Sobel>": 4}[spec]
    if spec.endswith(("@", ">")):  # the same set as ImageMagick's NAME:@ and NAME:>
        assert_same_kernels(spec, show_kernels(spec.replace("@", ":@").replace(">", ":>")), *parsed(spec))


def test_clashing_names_follow_their_arguments() -> None:
    """gaussian, log, laplacian: convcli's with convcli's arguments, ImageMagick's with its own."""
    from convcli.kernels.builtins import LAPLACIAN, gaussian_kernel

    np.testing.assert_allclose(parse_kernels("gaussian:2").kernels[0].weights, gaussian_kernel(2.0))
    np.testing.assert_array_equal(parse_kernels("Laplacian").kernels[0].weights, LAPLACIAN)  # convcli's 4-neighbour
    assert_same_kernels("Laplacian:0", show_kernels("Laplacian:0"), *parsed("Laplacian:0"))  # ImageMagick's default
    assert_same_kernels("Gaussian:0x2", show_kernels("Gaussian:0x2"), *parsed("Gaussian:0x2"))
    assert show_kernels("Gaussian:2")[0][0].shape == (5, 5)  # ImageMagick: radius 2, sigma 0, a unity kernel
    assert parse_kernels("Gaussian:2").kernels[0].size == (13, 13)  # convcli: sigma 2
