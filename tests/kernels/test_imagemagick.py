"""ImageMagick's kernel language without ImageMagick: geometry, rotations, arrays, names, lists, refusals.

The same strings are checked against ImageMagick itself in ``test_imagemagick_oracle.py``; these
tests pin the rules that need no oracle (and run where ImageMagick is not installed): the
geometry parser's reading of each form, rotation of values and origin, what is refused and how
the refusal reads.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from convcli.errors import KernelSpecError
from convcli.kernels.imagemagick import MagickKernel, expand_rotations, parse_array, rotate_kernel
from convcli.kernels.imagemagick_geometry import parse_geometry
from convcli.kernels.imagemagick_named import parse_named
from convcli.kernels.kernel import Kernel
from convcli.kernels.spec import parse_kernel, parse_kernels

N9 = np.arange(1.0, 10.0).reshape(3, 3)


@pytest.mark.parametrize(
    ("text", "values", "flags"),
    [
        ("3x2+0+1", (3, 2, 0, 1), {"rho", "sigma", "xi", "psi", "x"}),
        ("0x2", (0, 2, 0, 0), {"rho", "sigma", "x"}),
        ("0,1,2", (0, 1, 2, 0), {"rho", "sigma", "xi"}),
        ("45", (45, 0, 0, 0), {"rho"}),
        ("-45", (-45, 0, 0, 0), {"rho"}),
        ("3x3-1+2", (3, 3, -1, 2), {"rho", "sigma", "xi", "psi", "x"}),
        ("+1+2", (0, 0, 1, 2), {"xi", "psi"}),
        ("0x1+90", (0, 1, 90, 0), {"rho", "sigma", "xi", "x"}),
        ("50%", (50, 50, 0, 0), {"rho", "%"}),  # ImageMagick copies a lone percentage into sigma, unflagged
        ("!,100%", (0, 100, 0, 0), {"sigma", "!", "%"}),
        ("2^", (2, 0, 0, 0), {"rho", "^"}),
        ("@", (0, 0, 0, 0), {"@"}),
        ("3x3+1+1@", (3, 3, 1, 1), {"rho", "sigma", "xi", "psi", "x", "@"}),
        ("30x-20", (30, -20, 0, 0), {"rho", "sigma", "x"}),  # a negative height
        (" 1.5 x 2 ", (1.5, 2, 0, 0), {"rho", "sigma", "x"}),
        ("", (0, 0, 0, 0), set()),
    ],
)
def test_geometry(text: str, values: tuple[float, ...], flags: set[str]) -> None:
    g = parse_geometry(text)
    assert g is not None
    assert (g.rho, g.sigma, g.xi, g.psi) == values
    assert set(g.flags) - {"."} == flags


@pytest.mark.parametrize("text", ["abc", "1:2", "3y3", "1;2"])
def test_geometry_refuses_other_characters(text: str) -> None:
    assert parse_geometry(text) is None


def kernel(values: np.ndarray, x: int = 1, y: int = 1, kind: str = "User Defined") -> MagickKernel:
    return MagickKernel(values, x, y, kind)


def test_45_degrees_cycles_the_outer_ring_clockwise_and_moves_the_origin() -> None:
    turned = rotate_kernel(kernel(N9, 0, 0), 45)
    np.testing.assert_array_equal(turned.values, [[4, 1, 2], [7, 5, 3], [8, 9, 6]])
    assert (turned.x, turned.y, turned.angle) == (1, 0, 45)  # the origin's tap (1) moved one place on, too
    assert turned.values[turned.y, turned.x] == 1


def test_90_degrees_turns_a_square_clockwise_with_its_origin() -> None:
    turned = rotate_kernel(kernel(np.arange(16.0).reshape(4, 4), 3, 0), 90)
    np.testing.assert_array_equal(turned.values, np.rot90(np.arange(16.0).reshape(4, 4), -1))
    assert turned.values[turned.y, turned.x] == 3  # the origin tap is still the same value


def test_90_degrees_transposes_a_row_and_180_reverses() -> None:
    row = kernel(np.array([[1.0, 2.0, 3.0]]), 2, 0)
    column = rotate_kernel(row, 90)
    assert column.values.shape == (3, 1) and (column.x, column.y) == (0, 2)
    back = rotate_kernel(row, 180)
    np.testing.assert_array_equal(back.values, [[3, 2, 1]])
    assert (back.x, back.y) == (0, 0)


@pytest.mark.parametrize("angle", [0, 10, 22.5, 337.6, 360, -360, 720])
def test_angles_near_zero_change_nothing(angle: float) -> None:
    assert rotate_kernel(kernel(N9), angle).values.tolist() == N9.tolist()


def test_kernels_that_turn_onto_themselves_are_not_turned() -> None:
    for kind in ("Gaussian", "LoG", "DoG", "Laplacian", "Disk", "Square", "Diamond", "Plus", "Cross"):
        assert rotate_kernel(kernel(N9, kind=kind), 90).values.tolist() == N9.tolist()
    blur = kernel(np.array([[1.0, 2.0, 3.0]]), kind="Blur", y=0)
    assert rotate_kernel(blur, 180).values.shape == (1, 3)  # a Blur only turns by 90°
    assert rotate_kernel(blur, 270).values.shape == (3, 1)


def test_impossible_rotations_are_refused() -> None:
    with pytest.raises(KernelSpecError, match="cannot turn by 45°: only 3×3"):
        rotate_kernel(kernel(np.ones((5, 5)), 2, 2), 45)
    with pytest.raises(KernelSpecError, match="cannot turn by 90°: only square and 1-D"):
        rotate_kernel(kernel(np.ones((2, 3)), 0, 0), 90)


def test_rotation_sets_stop_when_the_kernel_repeats() -> None:
    assert len(expand_rotations(kernel(N9), 45)) == 8
    assert len(expand_rotations(kernel(N9), 90)) == 4
    symmetric = np.array([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]])
    assert len(expand_rotations(kernel(symmetric), 45)) == 2  # its 45° turn differs, its 90° turn does not
    assert len(expand_rotations(kernel(np.ones((3, 3))), 45)) == 1
    labels = [k.label for k in parse_named("Kirsch:@")]
    assert labels == ["kirsch"] + [f"kirsch-r{a}" for a in range(45, 360, 45)]


def test_array_holes_origin_and_counts() -> None:
    k = parse_array("2x2+1+0: 1,nan, -,4")[0]
    assert math.isnan(k.values[0, 1]) and math.isnan(k.values[1, 0]) and (k.x, k.y) == (1, 0)
    for text, words in [
        ("2x2: 1,2,3", "needs 2×2 = 4 values"),
        ("2x2: 1,2,3,4,5", "got 5"),
        ("2x2+2+0: 1,2,3,4", "origin +2+0 lies outside"),
        ("2x2: nan,nan,-,-", "every value is a hole"),
        ("2x2: 1,x,3,4", "'x' is not a number"),
        ("2x2: 1,inf,3,4", "not a finite number"),
        ("2000x1: 1", "too large"),
    ]:
        with pytest.raises(KernelSpecError, match=re.escape(words)):
            parse_array(text)


def test_named_kernel_refusals() -> None:
    for text, words in [
        ("Ring", "morphology kernel, not one for convolution"),
        ("Sobel:abc", "not a geometry"),
        ("Sobel:45:1", "separate its arguments with ',' or 'x'"),
        ("Gaussian:1.5x1", "even side 4, whose taps ImageMagick leaves unset"),
        ("Disk:3.5", "even side 8"),
        ("Binomial:9", "factorials overflow above radius 8"),
        ("Rectangle:3x2+3+0", "outside the 3x2 rectangle"),
        ("Gaussian:600x1", "too large"),
    ]:
        with pytest.raises(KernelSpecError, match=re.escape(words)):
            parse_named(text)


def test_spec_kernel_lists_labels_and_origins() -> None:
    spec = parse_kernels("Sobel; gaussian:1 ;;3x1+0+0: 1,2,3;")
    assert [k.label for k in spec.kernels] == ["sobel", "gaussian-1", "inline"]
    assert spec.label == "sobel+gaussian-1+inline"
    assert [k.origin for k in spec.kernels] == [(1, 1), None, (0, 0)]  # convcli's gaussian has no origin
    assert parse_kernels("Kirsch:@").label == "kirsch-x8"
    assert parse_kernels("2x2: 1,nan,3,4").kernels[0].taps.tolist() == [[True, False], [True, True]]
    assert parse_kernels("2x2: 1,nan,3,4").kernels[0].weights.tolist() == [[1, 0], [3, 4]]  # a hole weighs 0
    with pytest.raises(KernelSpecError, match="'Kirsch:@' gives 8 kernels; expected one"):
        parse_kernel("Kirsch:@")
    with pytest.raises(KernelSpecError, match="'nope' is not a kernel name"):
        parse_kernels("Sobel;nope")
    with pytest.raises(KernelSpecError, match="empty kernel spec"):
        parse_kernels(";;")


def test_rows_after_a_geometry_are_convcli_s_form() -> None:
    k = parse_kernel("3x2+0+1: 1,2,3; 4,5,6")
    assert k.weights.tolist() == [[1, 2, 3], [4, 5, 6]] and k.origin == (1, 0)


@pytest.mark.parametrize(
    ("spec", "owner"),
    [("gaussian:2", "convcli"), ("gaussian:2:5", "convcli"), ("Gaussian:0x2", "ImageMagick"),
     ("Gaussian:3,1.5", "ImageMagick"), ("log:1.4", "convcli"), ("LoG:0x1.4", "ImageMagick"),
     ("laplacian", "convcli"), ("Laplacian:0", "ImageMagick"), ("LAPLACIAN:1", "ImageMagick")],
)
def test_which_reading_a_clashing_name_gets(spec: str, owner: str) -> None:
    k = parse_kernel(spec)
    assert (k.origin is not None) == (owner == "ImageMagick")  # only ImageMagick's kernels carry an origin


@pytest.mark.parametrize(("spec", "words"), [
    ("gaussian:abc", "SIGMA must be a number"),  # neither convcli's nor ImageMagick's: convcli's message
    ("gaussian:1:5:7", "takes 1 to 2 arguments"),
    ("gaussian", "takes 1 to 2 arguments"),
    ("sobl", "did you mean 'Sobel'"),
    ("kirsh:@", "did you mean 'Kirsch'"),
])
def test_messages_for_names(spec: str, words: str) -> None:
    with pytest.raises(KernelSpecError, match=words):
        parse_kernels(spec)


def test_kernel_origin_and_taps_are_checked() -> None:
    with pytest.raises(KernelSpecError, match="origin .* lies outside"):
        Kernel(np.ones((2, 2)), origin=(2, 0))
    with pytest.raises(KernelSpecError, match="must weigh 0"):
        Kernel(np.ones((2, 2)), taps=np.array([[True, False], [True, True]]))
    with pytest.raises(KernelSpecError, match="only a 2-D kernel"):
        Kernel(np.ones((1, 1, 2, 2)), origin=(0, 0))
    assert Kernel(np.ones((2, 2)), taps=np.ones((2, 2), bool)).taps is None  # every position a tap
