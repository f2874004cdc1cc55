"""convcli.kernels.builtins: the named kernels, their formulas and sign conventions, the registry's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kernel_helpers import SOBEL_X_ROWS, spec_error

from convcli.engine.layer import Convolution
from convcli.kernels.bank import filter_bank
from convcli.kernels.builtins import (
    BUILTINS,
    EMBOSS,
    IDENTITY,
    LAPLACIAN,
    SOBEL_X,
    SOBEL_Y,
    BuiltinKernel,
    gaussian_kernel,
    log_kernel,
)
from convcli.kernels.kernel import Kernel, kernel_sum_sign
from convcli.kernels.spec import parse_kernel

FIXED = {
    "identity": [[1]],
    "sobel-x": SOBEL_X_ROWS,
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "scharr-x": [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
    "scharr-y": [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
    "prewitt-x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt-y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian-8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "identity:3": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box:2": [[0.25, 0.25], [0.25, 0.25]],
}


# ---------------------------------------------------------------- built-ins


@pytest.mark.parametrize(("spec", "expected"), FIXED.items())
def test_fixed_builtin_matrices(spec: str, expected: list[list[float]]) -> None:
    kernel = parse_kernel(spec)
    assert kernel.weights.dtype == np.float64
    np.testing.assert_array_equal(kernel.weights, np.array(expected, dtype=float))
    assert kernel.bias is None and not kernel.is_layer


def test_constants_are_the_registry_and_read_only() -> None:
    np.testing.assert_array_equal(parse_kernel("sobel-x").weights, SOBEL_X)
    np.testing.assert_array_equal(SOBEL_Y, SOBEL_X.T)
    np.testing.assert_array_equal(parse_kernel("emboss").weights, EMBOSS)
    np.testing.assert_array_equal(IDENTITY, [[1.0]])
    np.testing.assert_array_equal(parse_kernel("laplacian").weights, LAPLACIAN)
    with pytest.raises(ValueError):
        SOBEL_X[0, 0] = 5
    assert SOBEL_X[0, 0] == -1


@pytest.mark.parametrize("spec", ["SOBEL-X", "Sobel-X", "sobel_x", "  sobel-x  "])
def test_names_are_case_insensitive(spec: str) -> None:
    kernel = parse_kernel(spec)
    np.testing.assert_array_equal(kernel.weights, SOBEL_X_ROWS)
    assert kernel.label == "sobel-x"


def test_builtin_registry_entries() -> None:
    for name in ["identity", "box", "gaussian", "sobel-x", "sobel-y", "scharr-x", "scharr-y", "prewitt-x",
                 "prewitt-y", "laplacian", "laplacian-8", "log", "sharpen", "emboss", "unsharp"]:
        assert name in BUILTINS
    for name, builtin in BUILTINS.items():
        assert isinstance(builtin, BuiltinKernel) and builtin.name == name
        assert builtin.usage.startswith(name)
        assert builtin.summary and "\n" not in builtin.summary
        kernel = parse_kernel(builtin.example)
        assert kernel.weights.ndim == 2 and kernel.label.startswith(name)


def test_builtin_make_returns_fresh_writable_array() -> None:
    a = BUILTINS["sobel-x"].make([])
    a[0, 0] = 99
    assert BUILTINS["sobel-x"].make([])[0, 0] == -1
    assert SOBEL_X[0, 0] == -1
    assert BUILTINS["gaussian"].make(["1"]).shape == (7, 7)


def test_derivative_summaries_state_the_sign() -> None:
    assert "brighter to the right" in BUILTINS["sobel-x"].summary
    assert "brighter downward" in BUILTINS["sobel-y"].summary
    assert "[[-1,0,1],[-2,0,2],[-1,0,1]]" in BUILTINS["sobel-x"].summary


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_box(n: int) -> None:
    weights = parse_kernel(f"box:{n}").weights
    assert weights.shape == (n, n)
    np.testing.assert_allclose(weights, 1.0 / n**2)
    assert math.isclose(weights.sum(), 1.0)


@pytest.mark.parametrize(("sigma", "size"), [(0.1, 3), (0.5, 5), (1, 7), (1.5, 11), (2, 13), (3, 19)])
def test_gaussian_size_rule_sum_and_symmetry(sigma: float, size: int) -> None:
    kernel = parse_kernel(f"gaussian:{sigma}")
    w = kernel.weights
    assert w.shape == (size, size) == (2 * math.ceil(3 * sigma) + 1,) * 2
    assert math.isclose(w.sum(), 1.0, rel_tol=1e-12)
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(w, w[::-1, ::-1])
    np.testing.assert_array_equal(w, w[::-1, :])
    assert w[size // 2, size // 2] == w.max()
    assert kernel.label == f"gaussian-{sigma}"


def test_gaussian_values_and_explicit_size() -> None:
    w = parse_kernel("gaussian:1:3").weights
    g = np.exp(-np.array([1.0, 0.0, 1.0]) / 2)
    np.testing.assert_allclose(w, np.outer(g, g) / np.outer(g, g).sum(), rtol=1e-14)
    np.testing.assert_array_equal(gaussian_kernel(1.0, 3), w)
    assert parse_kernel("gaussian:2:5").weights.shape == (5, 5)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.4, 2.0])
def test_log_is_zero_sum_with_negative_centre(sigma: float) -> None:
    w = parse_kernel(f"log:{sigma}").weights
    size = 2 * math.ceil(3 * sigma) + 1
    assert w.shape == (size, size)
    assert abs(w.sum()) < 1e-12
    centre = w[size // 2, size // 2]
    assert centre < 0 and centre == w.min()  # the sign of LAPLACIAN's centre
    np.testing.assert_allclose(w, w.T, atol=1e-17)
    np.testing.assert_allclose(w, w[::-1, ::-1], atol=1e-17)
    assert kernel_sum_sign([Kernel(w)]) == 0


def test_log_formula_and_size() -> None:
    w = log_kernel(1.0, 5)
    r = np.arange(5) - 2.0
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    g = np.exp(-r2 / 2)
    g /= g.sum()
    h = g * (r2 - 2)
    np.testing.assert_allclose(w, h - h.mean(), atol=1e-16)
    np.testing.assert_array_equal(parse_kernel("log:1:5").weights, w)


@pytest.mark.parametrize(("spec", "sigma", "amount"), [("unsharp", 1.0, 1.0), ("unsharp:2", 2.0, 1.0),
                                                        ("unsharp:0.5:3", 0.5, 3.0), ("unsharp::2", 1.0, 2.0)])
def test_unsharp_formula(spec: str, sigma: float, amount: float) -> None:
    w = parse_kernel(spec).weights
    blur = gaussian_kernel(sigma)
    delta = np.zeros_like(blur)
    delta[blur.shape[0] // 2, blur.shape[1] // 2] = 1
    np.testing.assert_allclose(w, delta + amount * (delta - blur), rtol=0, atol=1e-15)
    assert math.isclose(w.sum(), 1.0, rel_tol=1e-12)


def test_unsharp_amount_zero_is_identity() -> None:
    w = parse_kernel("unsharp:1:0").weights
    assert w.shape == (7, 7) and w[3, 3] == 1 and np.count_nonzero(w) == 1


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("sobel-x:3", ["'sobel-x' takes no arguments", "sobel-x:3"]),
        ("gaussian", ["gaussian:SIGMA[:SIZE]", "got 0"]),
        ("gaussian:1:5:7", ["1 to 2 arguments", "got 3"]),
        ("gaussian:abc", ["SIGMA must be a number", "'abc'"]),
        ("gaussian:-1", ["SIGMA must be a positive number"]),
        ("gaussian:0", ["SIGMA must be a positive number"]),
        ("gaussian:nan", ["SIGMA must be a positive number"]),
        ("gaussian:1:4", ["SIZE must be a positive odd integer", "4"]),
        ("gaussian:1:2.5", ["SIZE must be a whole number"]),
        ("gaussian:500", ["too large"]),
        ("gaussian:166.67", ["too large", "at most SIGMA=166.667"]),
        ("gaussian:1e308", ["SIGMA=1e+308", "overflows"]),
        ("log:1e308", ["log: SIGMA=1e+308", "overflows"]),
        ("unsharp:1e308", ["unsharp: SIGMA=1e+308", "overflows"]),
        ("gaussian:1e308:5", ["SIGMA^2 overflows"]),
        ("gaussian:1e-300", ["SIGMA=1e-300", "underflows to 0"]),
        ("gaussian:1e-300:3", ["underflows to 0"]),
        ("log:1e-300", ["SIGMA^4 underflows to 0"]),
        ("log:1e-80", ["SIGMA^4 underflows to 0"]),  # its square is fine, the fourth power is not
        ("unsharp:1e-300", ["unsharp: SIGMA=1e-300", "underflows"]),
        ("log:1e10", ["too large"]),
        ("box:0", ["N must be a positive integer"]),
        ("box:", ["N is missing"]),
        ("box:x", ["N must be a whole number"]),
        ("log", ["log:SIGMA[:SIZE]"]),
        ("unsharp:1:inf", ["AMOUNT must be a finite number"]),
        ("identity:2", ["SIZE must be a positive odd integer"]),
    ],
)
def test_bad_builtin_arguments(spec: str, words: list[str]) -> None:
    message = spec_error(spec)
    for word in words:
        assert word in message


def test_did_you_mean() -> None:
    assert spec_error("sobelx") == "unknown kernel 'sobelx'; did you mean 'sobel-x'? (convcli kernels lists them)"
    assert "did you mean 'gaussian'?" in spec_error("gausian:2")
    assert "did you mean 'laplacian'?" in spec_error("Laplacain")
    assert spec_error("zzzzqqq") == "unknown kernel 'zzzzqqq' (convcli kernels lists them)"


def test_empty_spec() -> None:
    message = spec_error("   ")
    assert "empty kernel spec" in message and "sobel-x" in message


# ---------------------------------------------------------------- sign conventions through the engine


def ramp(axis: int, size: int = 8) -> np.ndarray:
    """A (1, 1, size, size) image whose value grows along ``axis`` (0: down, 1: right)."""
    grid = np.indices((size, size))[axis].astype(float)
    return grid[None, None]


@pytest.mark.parametrize(("name", "axis"), [("sobel-x", 1), ("sobel-y", 0), ("scharr-x", 1), ("scharr-y", 0),
                                            ("prewitt-x", 1), ("prewitt-y", 0)])
def test_derivative_sign_convention(name: str, axis: int) -> None:
    w, b, g = filter_bank([parse_kernel(name)], 1)
    out = Convolution(w, b, groups=g).forward(ramp(axis))
    assert (out > 0).all()
    other = Convolution(w, b, groups=g).forward(ramp(1 - axis))
    np.testing.assert_array_equal(other, 0)
    flipped, _, _ = filter_bank([parse_kernel(name)], 1, flip=True)
    assert (Convolution(flipped).forward(ramp(axis)) < 0).all()


def test_sobel_x_response_value() -> None:
    out = Convolution(SOBEL_X[None, None].copy()).forward(ramp(1))
    np.testing.assert_array_equal(out, 8.0)  # (1 + 2 + 1) * (x[j+1] - x[j-1])


def test_laplacian_is_negative_on_a_bright_spot() -> None:
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1
    for spec in ["laplacian", "laplacian-8", "log:0.8"]:
        w, _, _ = filter_bank([parse_kernel(spec)], 1)
        out = Convolution(w, pad="same").forward(x)
        assert out[0, 0, 2, 2] < 0, spec


# ---------------------------------------------------------------- extreme sigmas and the formula in the docstring


@pytest.mark.parametrize("spec", ["gaussian:1e-150:1001", "gaussian:1e-100", "log:1e-76:1001", "log:1e-70",
                                  "gaussian:1e150:5", "log:1e70:5", "unsharp:1e-150"])
def test_extreme_sigmas_give_finite_kernels_without_warnings(spec: str) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, underflow or 0/0 warning escapes
        w = parse_kernel(spec).weights
    assert np.isfinite(w).all()
    if spec.startswith("gaussian:1e-"):  # all weight on the centre tap
        assert w[w.shape[0] // 2, w.shape[1] // 2] == 1.0 and w.sum() == 1.0


def test_kernels_docstring_formula_has_the_even_kernel_offset() -> None:
    import convcli.kernels.builtins

    assert "x[i + u - (FH-1)//2, j + v - (FW-1)//2]" in (convcli.kernels.builtins.__doc__ or "")
