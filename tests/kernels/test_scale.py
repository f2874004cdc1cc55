"""``--scale``: ImageMagick's convolve:scale syntax, its arithmetic, and its chain rule checked numerically.

The arithmetic is checked against ImageMagick's own kernels in ``test_imagemagick_oracle.py``;
here: the parser's reading of each form, the cases of the arithmetic by hand, and
:func:`scale_gradient` against float64 central differences (for every normalisation, on
kernels with and without a zero sum), holding the branch the forward takes.
"""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import ParameterError
from convcli.kernels.bank import filter_bank
from convcli.kernels.kernel import Kernel
from convcli.kernels.scale import KernelScale, parse_scale, scale_gradient, scale_kernel, smooth_taps


@pytest.mark.parametrize(("text", "factor", "normalize", "blend"), [
    ("!", 1.0, "!", None), ("^", 1.0, "^", None), ("0.5", 0.5, None, None), ("-1", -1.0, None, None),
    ("50%", 0.5, None, None), ("50%!", 0.5, "!", None), ("!,100%", 1.0, "!", 1.0), ("-100,200%", -1.0, None, 2.0),
    ("2^", 2.0, "^", None), ("1.5,0.25", 1.5, None, 0.25), ("2x0.5", 2.0, None, 0.5), ("!^", 1.0, "^", None),
])
def test_parse(text: str, factor: float, normalize: object, blend: object) -> None:
    assert parse_scale(text) == KernelScale(factor, normalize, blend, text)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "two", "1:2", "1e999"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ParameterError, match="--scale"):
        parse_scale(text)


K = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5], [2.0, -0.25, 1.0]])  # sum 7.75, positive 11.5, negative -3.75
ZERO_SUM = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def test_arithmetic_by_hand() -> None:
    np.testing.assert_allclose(scale_kernel(K, (1, 1), parse_scale("!")), K / 7.75)
    np.testing.assert_allclose(scale_kernel(-K, (1, 1), parse_scale("!")), -K / 7.75)  # |sum|: signs kept
    np.testing.assert_allclose(scale_kernel(ZERO_SUM, (1, 1), parse_scale("!")), ZERO_SUM / 4)  # the positive sum
    hat = scale_kernel(K, (1, 1), parse_scale("^"))
    assert hat[hat > 0].sum() == pytest.approx(1) and hat[hat < 0].sum() == pytest.approx(-1)
    blended = scale_kernel(K, (0, 2), parse_scale("2,0.5"))  # ("2,50%" would be 0.02: % applies to both)
    expected = 2 * K
    expected[0, 2] += 0.5
    np.testing.assert_allclose(blended, expected)
    with pytest.raises(ParameterError, match="all 0"):
        scale_kernel(np.zeros((3, 3)), (1, 1), parse_scale("!"))


def numeric(values: np.ndarray, scale: KernelScale, g: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    out = np.zeros_like(values)
    for index in np.ndindex(values.shape):
        for sign in (1, -1):
            moved = values.copy()
            moved[index] += sign * eps
            out[index] += sign * np.sum(g * scale_kernel(moved, (1, 1), scale)) / (2 * eps)
    return out


@pytest.mark.parametrize("text", ["1", "-3", "50%", "!", "!,100%", "0.5!", "^", "2^,0.5"])
@pytest.mark.parametrize("kernel", [K, -K, K * 1e-3], ids=["k", "negative-sum", "small"])
def test_gradient_is_central_differences(text: str, kernel: np.ndarray) -> None:
    scale = parse_scale(text)
    g = np.random.default_rng(0).standard_normal(kernel.shape)
    assert smooth_taps(kernel, scale).all()
    np.testing.assert_allclose(scale_gradient(kernel, scale, g), numeric(kernel, scale, g, 1e-6 * abs(kernel).max()),
                               rtol=1e-6, atol=1e-8 * abs(scale_gradient(kernel, scale, g)).max())


def test_gradient_of_a_zero_sum_kernel_holds_its_branch() -> None:
    """'!' on a zero-sum kernel divides by the positive sum; moving a tap leaves that branch, so L jumps."""
    scale = parse_scale("!")
    assert not smooth_taps(ZERO_SUM, scale).any()
    g = np.random.default_rng(1).standard_normal((3, 3))
    positive = ZERO_SUM >= 0
    p = ZERO_SUM[positive].sum()
    inner = np.sum(g * ZERO_SUM)
    expected = g / p - np.where(positive, inner / p**2, 0.0)  # d(k / P(k)) with P the sum of the taps >= 0
    np.testing.assert_allclose(scale_gradient(ZERO_SUM, scale, g), expected)
    hat = parse_scale("^")
    np.testing.assert_array_equal(smooth_taps(ZERO_SUM, hat), ZERO_SUM != 0)  # a 0 tap has two one-sided slopes
    np.testing.assert_allclose(
        np.where(ZERO_SUM != 0, scale_gradient(ZERO_SUM, hat, g), 0),
        np.where(ZERO_SUM != 0, numeric(ZERO_SUM, hat, g), 0), rtol=1e-6, atol=1e-9,
    )


def test_bank_scales_each_kernel_and_blends_at_its_origin() -> None:
    a = Kernel(K, origin=(0, 0))
    b = Kernel(ZERO_SUM)
    w, _, _ = filter_bank([a, b], 2, scale=parse_scale("!,1"))
    # a's origin (0, 0) is off-centre: both sit in a 5×5 frame centred on their origins
    assert w.shape == (4, 1, 5, 5)
    np.testing.assert_allclose(w[0, 0, 2, 2], K[0, 0] / 7.75 + 1)  # the blend lands on the origin tap
    np.testing.assert_allclose(w[1, 0, 1:4, 1:4], ZERO_SUM / 4 + np.pad([[1.0]], 1))
    np.testing.assert_array_equal(w[2], w[0])  # channel 1 repeats the bank
    with pytest.raises(ParameterError, match="--scale and --normalize"):
        filter_bank([a], 1, scale=parse_scale("!"), normalize=True)
    with pytest.raises(ParameterError, match="--scale applies to 2-D kernels"):
        filter_bank([Kernel(np.ones((1, 1, 3, 3)))], 1, scale=parse_scale("!"))
