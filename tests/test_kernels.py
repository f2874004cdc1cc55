"""Tests of convcli.kernels.builtins, .kernelspec and .bank: built-ins, the spec parser, kernel files, filter banks."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convcli.commands.kernels import format_matrix
from convcli.engine.layer import Convolution
from convcli.errors import InputFileError, KernelSpecError, ParameterError, ShapeError
from convcli.kernels.bank import filter_bank, kernel_stack
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
from convcli.kernels.kernel import Kernel, filter_sums, is_zero_sum, kernel_sum_sign, zero_sum_filters
from convcli.kernels.spec import load_kernel_bytes, parse_kernel

SOBEL_X_ROWS = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]

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


def spec_error(spec: str) -> str:
    """The message of the KernelSpecError that parse_kernel(spec) raises."""
    with pytest.raises(KernelSpecError) as info:
        parse_kernel(spec)
    message = str(info.value)
    assert "\n" not in message
    return message


def distinct(h: int, w: int, start: int = 0) -> np.ndarray:
    """An h×w kernel whose taps are distinct powers of two (catches flips and transposes)."""
    return 2.0 ** np.arange(start, start + h * w).reshape(h, w)


def correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Naive 'valid' cross-correlation of one 2-D image with one 2-D kernel."""
    fh, fw = kernel.shape
    oh, ow = image.shape[0] - fh + 1, image.shape[1] - fw + 1
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[i, j] = np.sum(image[i:i + fh, j:j + fw] * kernel)
    return out


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


# ---------------------------------------------------------------- inline and ImageMagick


def write_sources(tmp_path: Path, weights: np.ndarray) -> list[str]:
    """The same 2-D kernel as .npy, .txt, .csv, .json (list and object) and .npz files."""
    np.save(tmp_path / "k.npy", weights)
    rows = [[f"{v:g}" for v in row] for row in weights]
    (tmp_path / "k.txt").write_text("# a kernel\n" + "\n".join(" ".join(r) for r in rows) + "\n\n")
    (tmp_path / "k.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    (tmp_path / "k.json").write_text(json.dumps(weights.tolist()))
    (tmp_path / "obj.json").write_text(json.dumps({"W": weights.tolist()}))
    np.savez(tmp_path / "k.npz", W=weights)
    return [str(tmp_path / name) for name in ("k.npy", "k.txt", "k.csv", "k.json", "obj.json", "k.npz")]


def test_every_source_gives_the_same_matrix(tmp_path: Path) -> None:
    reference = np.array(SOBEL_X_ROWS, dtype=float)
    specs = [
        "sobel-x",
        "-1,0,1;-2,0,2;-1,0,1",
        "-1 0 1; -2 0 2; -1 0 1",
        "3x3: -1,0,1,-2,0,2,-1,0,1",
        "3: -1 0 1 -2 0 2 -1 0 1",
        "3x3: -1,0,1; -2,0,2; -1,0,1",
        *write_sources(tmp_path, reference),
    ]
    for spec in specs:
        kernel = parse_kernel(spec)
        assert kernel.weights.dtype == np.float64, spec
        np.testing.assert_array_equal(kernel.weights, reference, err_msg=spec)
        assert kernel.bias is None


def test_non_square_sources_agree(tmp_path: Path) -> None:
    reference = distinct(2, 3)  # 2 rows, 3 columns
    inline = ";".join(",".join(f"{v:g}" for v in row) for row in reference)
    im = "3x2: " + ",".join(f"{v:g}" for v in reference.ravel())
    for spec in [inline, im, *write_sources(tmp_path, reference)]:
        np.testing.assert_array_equal(parse_kernel(spec).weights, reference, err_msg=spec)


def test_imagemagick_orientation() -> None:
    np.testing.assert_array_equal(parse_kernel("3x2: 1,2,3,4,5,6").weights, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(parse_kernel("2x3: 1,2,3,4,5,6").weights, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(parse_kernel("2: 1 2 3 4").weights, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(parse_kernel("3X1:1,2,3").weights, [[1, 2, 3]])
    assert parse_kernel("3x2: 1,2,3,4,5,6").label == "inline"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("3x2: 1,2,3,4,5", ["3×2 = 6 values", "W=3 columns", "got 5"]),
        ("3: 1,2,3", ["3×3 = 9 values", "got 3"]),
        ("2x3: 1,2,3;4,5,6", ["row 1 has 3 values but W=2"]),
        ("3x3: 1,2,3;4,5,6", ["2 rows but H=3"]),
        ("3x3+1+1: 1,2,3,4,5,6,7,8,9", ["origin offsets", "not supported"]),
        ("2x2: 1,a,3,4", ["'a' is not a number"]),
        ("2x2:", ["no values"]),
        ("3x3", ["has no values", "3x3: v,v"]),
        ("0x2: 1", ["at least 1"]),
        ("2x1: 1,nan", ["non-finite"]),
    ],
)
def test_bad_imagemagick_specs(spec: str, words: list[str]) -> None:
    message = spec_error(spec)
    assert "ImageMagick kernel" in message
    for word in words:
        assert word in message


def test_inline_forms() -> None:
    np.testing.assert_array_equal(parse_kernel("1 2 1").weights, [[1, 2, 1]])
    np.testing.assert_array_equal(parse_kernel("1,2,1").weights, [[1, 2, 1]])
    np.testing.assert_array_equal(parse_kernel("1;2;1").weights, [[1], [2], [1]])
    np.testing.assert_array_equal(parse_kernel("5").weights, [[5]])
    np.testing.assert_array_equal(parse_kernel("1, 2 ;3,  4;").weights, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(parse_kernel("0.5,-1e-1;+2,.25").weights, [[0.5, -0.1], [2, 0.25]])
    assert parse_kernel("1,2,1;2,4,2;1,2,1").label == "inline"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("1,2,1;2,4", ["row 2 has 2 values but row 1 has 3"]),
        ("1,2;3", ["row 2 has 1 value but row 1 has 2"]),
        ("1,x,1", ["'x' is not a number", "row 1, value 2"]),
        ("1,,2", ["empty value"]),
        ("1,2,", ["empty value"]),
        ("1,nan,1", ["non-finite", "(0, 1)"]),
        ("1;inf", ["non-finite"]),
        ("1;;2", ["empty value in row 2"]),
    ],
)
def test_bad_inline_specs(spec: str, words: list[str]) -> None:
    message = spec_error(spec)
    assert message.startswith(f"inline kernel '{spec}'")
    for word in words:
        assert word in message


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=5),
                  elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)))
def test_inline_round_trip(weights: np.ndarray) -> None:
    spec = ";".join(",".join(repr(float(v)) for v in row) for row in weights)
    np.testing.assert_array_equal(parse_kernel(spec).weights, weights)
    im = f"{weights.shape[1]}x{weights.shape[0]}: " + " ".join(repr(float(v)) for v in weights.ravel())
    np.testing.assert_array_equal(parse_kernel(im).weights, weights)


# ---------------------------------------------------------------- kernel files


def test_file_labels_and_shapes(tmp_path: Path) -> None:
    np.save(tmp_path / "my edge.npy", np.arange(3.0))
    kernel = parse_kernel(str(tmp_path / "my edge.npy"))
    assert kernel.label == "my_edge"
    np.testing.assert_array_equal(kernel.weights, [[0, 1, 2]])  # 1-D: one row
    np.save(tmp_path / "int.npy", np.array([[1, 2], [3, 4]], dtype=np.int16))
    assert parse_kernel(str(tmp_path / "int.npy")).weights.dtype == np.float64


def test_layer_file_with_bias(tmp_path: Path) -> None:
    w = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3)
    np.savez(tmp_path / "layer.npz", W=w, b=np.array([0.5, -1.0]))
    kernel = parse_kernel(str(tmp_path / "layer.npz"))
    assert kernel.is_layer and kernel.filters == 2 and kernel.size == (3, 3)
    np.testing.assert_array_equal(kernel.weights, w)
    np.testing.assert_array_equal(kernel.bias, [0.5, -1.0])
    (tmp_path / "layer.json").write_text(json.dumps({"W": w.tolist(), "b": [0.5, -1.0]}))
    kernel = parse_kernel(str(tmp_path / "layer.json"))
    np.testing.assert_array_equal(kernel.weights, w)
    np.testing.assert_array_equal(kernel.bias, [0.5, -1.0])


def test_2d_file_with_scalar_bias(tmp_path: Path) -> None:
    np.savez(tmp_path / "k.npz", W=np.ones((3, 3)), b=np.float64(0.25))
    assert parse_kernel(str(tmp_path / "k.npz")).bias.tolist() == [0.25]  # type: ignore[union-attr]
    (tmp_path / "k.json").write_text('{"W": [[1, 2], [3, 4]], "b": 2}')
    assert parse_kernel(str(tmp_path / "k.json")).bias.tolist() == [2.0]  # type: ignore[union-attr]


def test_existing_file_without_extension_is_sniffed(tmp_path: Path) -> None:
    np.save(tmp_path / "k.npy", distinct(2, 2))
    (tmp_path / "k.npy").rename(tmp_path / "kernel")
    np.testing.assert_array_equal(parse_kernel(str(tmp_path / "kernel")).weights, distinct(2, 2))
    (tmp_path / "text").write_text("1 2\n3 4\n")
    np.testing.assert_array_equal(parse_kernel(str(tmp_path / "text")).weights, [[1, 2], [3, 4]])
    (tmp_path / "js").write_text(" [[1, 2]]")
    np.testing.assert_array_equal(parse_kernel(str(tmp_path / "js")).weights, [[1, 2]])


def test_file_extension_is_case_insensitive(tmp_path: Path) -> None:
    np.save(tmp_path / "k.npy", distinct(2, 2))
    (tmp_path / "k.npy").rename(tmp_path / "K.NPY")
    np.testing.assert_array_equal(parse_kernel(str(tmp_path / "K.NPY")).weights, distinct(2, 2))


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    np.save(buffer, distinct(3, 3))

    class FakeStdin:
        def __init__(self, data: bytes) -> None:
            self.buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", FakeStdin(buffer.getvalue()))
    kernel = parse_kernel("-")
    np.testing.assert_array_equal(kernel.weights, distinct(3, 3))
    assert kernel.label == "stdin"
    monkeypatch.setattr(sys, "stdin", FakeStdin(b"1 2 1\n"))
    np.testing.assert_array_equal(parse_kernel("-").weights, [[1, 2, 1]])


def test_load_kernel_bytes_formats() -> None:
    np.testing.assert_array_equal(load_kernel_bytes(b"1,2\n3,4", "text").weights, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(load_kernel_bytes(b'{"W": [[1]]}').weights, [[1]])
    with pytest.raises(KernelSpecError, match="is not a .npy file"):
        load_kernel_bytes(b"1 2 3", "npy", label="x")


def make_bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / {"pickled": "k.npy", "pickled-npz": "k.npz", "corrupt-npy": "k.npy",
                       "truncated-npy": "k.npy", "3d": "k.npy", "5d": "k.npy", "empty-npy": "k.npy",
                       "nan-npy": "k.npy", "complex": "k.npy", "strings": "k.npy", "no-W": "k.npz",
                       "extra-key": "k.npz", "corrupt-npz": "k.npz", "bad-bias": "k.npz", "bias-2d": "k.npz",
                       "ragged-txt": "k.txt", "word-txt": "k.csv", "empty-txt": "k.txt", "binary-txt": "k.txt",
                       "bad-json": "k.json", "ragged-json": "k.json", "bool-json": "k.json",
                       "string-json": "k.json", "key-json": "k.json", "nan-json": "k.json",
                       "empty-json": "k.json"}[kind]
    if kind == "pickled":
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "pickled-npz":
        np.savez(path, W=np.array([{"a": 1}], dtype=object))
    elif kind == "corrupt-npy":
        path.write_bytes(b"\x93NUMPY\x01\x00garbage that is not a header")
    elif kind == "truncated-npy":
        np.save(path, np.ones((4, 4)))
        path.write_bytes(path.read_bytes()[:-20])
    elif kind == "3d":
        np.save(path, np.ones((3, 3, 3)))
    elif kind == "5d":
        np.save(path, np.ones((1, 1, 1, 3, 3)))
    elif kind == "empty-npy":
        np.save(path, np.ones((0, 3)))
    elif kind == "nan-npy":
        np.save(path, np.array([[1.0, np.nan], [np.inf, 1.0]]))
    elif kind == "complex":
        np.save(path, np.ones((2, 2), dtype=complex))
    elif kind == "strings":
        np.save(path, np.array([["a", "b"]]))
    elif kind == "no-W":
        np.savez(path, np.ones((3, 3)))
    elif kind == "extra-key":
        np.savez(path, W=np.ones((3, 3)), B=np.ones(1))
    elif kind == "corrupt-npz":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    elif kind == "bad-bias":
        np.savez(path, W=np.ones((2, 1, 3, 3)), b=np.ones(3))
    elif kind == "bias-2d":
        np.savez(path, W=np.ones((3, 3)), b=np.ones(3))
    elif kind == "ragged-txt":
        path.write_text("1 2 3\n# comment\n4 5\n")
    elif kind == "word-txt":
        path.write_text("1,2\n3,four\n")
    elif kind == "empty-txt":
        path.write_text("# nothing\n\n")
    elif kind == "binary-txt":
        path.write_bytes(b"\xff\xfe\x00\x01")
    elif kind == "bad-json":
        path.write_text("[[1, 2], [3, 4]")
    elif kind == "ragged-json":
        path.write_text("[[1, 2], [3]]")
    elif kind == "bool-json":
        path.write_text("[[true, 1]]")
    elif kind == "string-json":
        path.write_text('[["1", 2]]')
    elif kind == "key-json":
        path.write_text('{"W": [[1]], "B": [1]}')
    elif kind == "nan-json":
        path.write_text("[[NaN, 1]]")
    elif kind == "empty-json":
        path.write_text("[]")
    return path


BAD_FILES = {
    "pickled": ["Python objects", "allow_pickle=False"],
    "pickled-npz": ["Python objects", "allow_pickle=False"],
    "corrupt-npy": ["cannot be read as npy"],
    "truncated-npy": ["cannot be read as npy"],
    "3d": ["3-D array of shape (3, 3, 3)", "2-D (FH, FW)", "4-D (FN, C/groups, FH, FW)"],
    "5d": ["5-D array", "2-D (FH, FW)"],
    "empty-npy": ["empty"],
    "nan-npy": ["2 non-finite value(s)", "(0, 1)"],
    "complex": ["real numbers", "complex"],
    "strings": ["real numbers"],
    "no-W": ["array named 'W'", "arr_0"],
    "extra-key": ["array named 'W'", "W, B"],
    "corrupt-npz": ["cannot be read as npz"],
    "bad-bias": ["shape (2,)", "got (3,)"],
    "bias-2d": ["one number"],
    "ragged-txt": ["line 3 has 2 values but line 1 has 3"],
    "word-txt": ["'four' is not a number", "line 2"],
    "empty-txt": ["empty"],
    "binary-txt": ["not UTF-8"],
    "bad-json": ["not valid JSON", "line 1"],
    "ragged-json": ["ragged"],
    "bool-json": ["W[0][0] is true", "expected a number"],
    "string-json": ["W[0][0]", "expected a number"],
    "key-json": ["'W' and optionally 'b'", "'B'"],
    "nan-json": ["non-finite"],
    "empty-json": ["empty"],
}


@pytest.mark.parametrize(("kind", "words"), BAD_FILES.items())
def test_bad_kernel_files(tmp_path: Path, kind: str, words: list[str]) -> None:
    path = make_bad_file(tmp_path, kind)
    message = spec_error(str(path))
    assert message.startswith(f"kernel file '{path}'"), message
    for word in words:
        assert word in message


def file_error(spec: str) -> str:
    """The message of the InputFileError (exit code 3) that parse_kernel(spec) raises for a file it cannot read."""
    with pytest.raises(InputFileError) as info:
        parse_kernel(spec)
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 3
    return message


def test_missing_files() -> None:
    assert file_error("x.npy") == "kernel file 'x.npy' not found"
    assert file_error("no/such/kernel.JSON") == "kernel file 'no/such/kernel.JSON' not found"
    assert file_error("no/such/kernel") == "kernel file 'no/such/kernel' not found"


def test_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.npy").mkdir()
    assert "is a directory" in file_error(str(tmp_path / "d.npy"))
    (tmp_path / "some_directory").mkdir()
    assert file_error(str(tmp_path / "some_directory")) == (
        f"kernel {str(tmp_path / 'some_directory')!r} is a directory; "
        "expected a kernel file, a built-in name or a matrix"
    )


def test_directory_named_like_a_kernel_is_reported_as_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "some_directory").mkdir()
    assert file_error("some_directory").startswith("kernel 'some_directory' is a directory")
    assert spec_error("Some_Thing:2").startswith("unknown kernel 'Some_Thing'")  # as typed, not 'some-thing'


# ---------------------------------------------------------------- Kernel


def test_kernel_checks_and_copies() -> None:
    source = np.arange(4.0).reshape(2, 2)
    kernel = Kernel(source, label="k")
    source[0, 0] = 9
    assert kernel.weights[0, 0] == 0 and not kernel.weights.flags.writeable
    assert Kernel(np.arange(3.0)).weights.shape == (1, 3)
    assert Kernel(np.ones((2, 1, 3, 3))).is_layer
    with pytest.raises(KernelSpecError, match="3-D array"):
        Kernel(np.ones((2, 3, 3)))
    with pytest.raises(KernelSpecError, match="bias b must have shape"):
        Kernel(np.ones((2, 1, 3, 3)), np.ones(3))


# ---------------------------------------------------------------- filter banks


def test_depthwise_order_is_c_times_m_plus_m() -> None:
    kernels = [Kernel(distinct(3, 3, 0), label="a"), Kernel(distinct(3, 3, 9), label="b")]
    w, b, groups = filter_bank(kernels, 3)
    assert w.shape == (6, 1, 3, 3) and groups == 3 and b is None
    assert w.dtype == np.float64 and w.flags.c_contiguous and w.flags.writeable
    for c in range(3):
        for m in range(2):
            np.testing.assert_array_equal(w[c * 2 + m, 0], kernels[m].weights)


def test_depthwise_bank_through_the_engine() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 8))
    kernels = [Kernel(distinct(3, 3, 0)), Kernel(distinct(3, 3, 9) * -1)]
    w, b, groups = filter_bank(kernels, 3)
    out = Convolution(w, b, groups=groups).forward(x)
    assert out.shape == (2, 6, 5, 6)
    for n in range(2):
        for c in range(3):
            for m in range(2):
                np.testing.assert_allclose(out[n, c * 2 + m], correlate(x[n, c], kernels[m].weights), rtol=1e-12)


def test_depthwise_groups_argument() -> None:
    kernel = [parse_kernel("sobel-x")]
    assert filter_bank(kernel, 3, groups=3)[2] == 3
    with pytest.raises(ParameterError, match="groups=1 does not fit 2-D kernels"):
        filter_bank(kernel, 3, groups=1)


def test_2d_kernels_of_different_sizes_are_refused() -> None:
    with pytest.raises(KernelSpecError) as info:
        filter_bank([parse_kernel("sobel-x"), parse_kernel("box:2")], 3)
    message = str(info.value)
    assert "same size" in message and "'sobel-x' is 3×3" in message and "'box-2' is 2×2" in message
    with pytest.raises(KernelSpecError, match="'identity' is 1×1.*identity:3"):
        filter_bank([parse_kernel("sobel-x"), parse_kernel("identity")], 1)
    w, _, _ = filter_bank([parse_kernel("sobel-x"), parse_kernel("identity:3")], 1)
    np.testing.assert_array_equal(w[1, 0], [[0, 0, 0], [0, 1, 0], [0, 0, 0]])


def test_flip_rotates_both_axes() -> None:
    k = distinct(2, 3)
    w, _, _ = filter_bank([Kernel(k)], 2, flip=True)
    for c in range(2):
        np.testing.assert_array_equal(w[c, 0], k[::-1, ::-1])
    layer = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    w, _, _ = filter_bank([Kernel(layer)], 3, flip=True)
    np.testing.assert_array_equal(w, layer[:, :, ::-1, ::-1])


def test_flip_is_true_convolution() -> None:
    x = np.random.default_rng(2).standard_normal((1, 1, 6, 7))
    k = distinct(3, 3)
    w, _, g = filter_bank([Kernel(k)], 1, flip=True)
    out = Convolution(w, groups=g).forward(x)
    scipy_signal = pytest.importorskip("scipy.signal")
    np.testing.assert_allclose(out[0, 0], scipy_signal.convolve2d(x[0, 0], k, mode="valid"), rtol=1e-12)


def test_normalize() -> None:
    kernels = [parse_kernel("1,2,1;2,4,2;1,2,1"), parse_kernel("sobel-x"), parse_kernel("-1,-3"), parse_kernel("log:1")]
    w, _, _ = filter_bank(kernels[:2], 2, normalize=True)
    np.testing.assert_allclose(w[0, 0], np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    np.testing.assert_array_equal(w[1, 0], SOBEL_X)  # zero-sum: left alone
    np.testing.assert_allclose(w[2, 0], w[0, 0])
    w, _, _ = filter_bank([kernels[2]], 1, normalize=True)
    np.testing.assert_allclose(w[0, 0], [[0.25, 0.75]])  # divided by its (negative) sum
    w, _, _ = filter_bank([kernels[3]], 1, normalize=True)
    np.testing.assert_array_equal(w[0, 0], kernels[3].weights)  # sum ~1e-18: left alone
    w, _, _ = filter_bank([Kernel(np.array([[1.0, -1.0 + 5e-13]]))], 1, normalize=True)
    np.testing.assert_array_equal(w[0, 0], [[1.0, -1.0 + 5e-13]])  # zero-sum: |sum| <= 1e-12 * max(1, sum |w|)
    w, _, _ = filter_bank([Kernel(np.array([[1.0, -1.0 + 1e-9]]))], 1, normalize=True)
    np.testing.assert_allclose(w[0, 0], np.array([[1.0, -1.0 + 1e-9]]) / 1e-9, rtol=1e-6)


def test_normalize_layer_per_filter() -> None:
    layer = np.stack([np.ones((2, 3, 3)), np.ones((2, 3, 3)) * 3, np.zeros((2, 3, 3))])
    layer[2, 0, 0, 0], layer[2, 1, 0, 0] = 1, -1
    w, _, _ = filter_bank([Kernel(layer)], 2, normalize=True)
    np.testing.assert_allclose(w[0], 1 / 18)
    np.testing.assert_allclose(w[1], 1 / 18)
    np.testing.assert_array_equal(w[2], layer[2])


def test_layer_channels_and_groups() -> None:
    layer = Kernel(np.ones((4, 2, 3, 3)), label="lay")
    w, b, g = filter_bank([layer], 2)
    assert w.shape == (4, 2, 3, 3) and g == 1 and b is None
    assert filter_bank([layer], 4, groups=2)[2] == 2
    with pytest.raises(ShapeError) as info:
        filter_bank([layer], 3)
    message = str(info.value)
    assert "2 channel(s) per group" in message and "groups=1 = 2" in message and "has 3" in message
    with pytest.raises(ShapeError, match="groups=2 = 4 input channels, but the input has 2"):
        filter_bank([layer], 2, groups=2)
    with pytest.raises(ParameterError, match="groups=3 must divide the number of filters FN=4"):
        filter_bank([Kernel(np.ones((4, 1, 3, 3)))], 3, groups=3)
    with pytest.raises(ParameterError, match="positive integer"):
        filter_bank([layer], 2, groups=0)


def test_layers_concatenate_with_biases() -> None:
    a = Kernel(np.ones((2, 3, 3, 3)), np.array([1.0, 2.0]), "a")
    b = Kernel(np.full((1, 3, 3, 3), 2.0), None, "b")
    w, bias, g = filter_bank([a, b], 3)
    assert w.shape == (3, 3, 3, 3) and g == 1
    np.testing.assert_array_equal(w[2], 2.0)
    np.testing.assert_array_equal(bias, [1.0, 2.0, 0.0])
    with pytest.raises(KernelSpecError, match=r"same \(C/groups, FH, FW\)"):
        filter_bank([a, Kernel(np.ones((1, 3, 5, 5)), label="big")], 3)


def test_depthwise_bias_is_repeated_per_channel() -> None:
    kernels = [Kernel(np.ones((3, 3)), np.array(0.5)), Kernel(np.ones((3, 3)))]
    _, b, _ = filter_bank(kernels, 3)
    np.testing.assert_array_equal(b, [0.5, 0, 0.5, 0, 0.5, 0])


def test_bank_errors() -> None:
    with pytest.raises(KernelSpecError, match="cannot mix 2-D kernel 'sobel-x'"):
        filter_bank([parse_kernel("sobel-x"), Kernel(np.ones((1, 1, 3, 3)))], 1)
    with pytest.raises(KernelSpecError, match="no kernel"):
        filter_bank([], 3)
    with pytest.raises(ShapeError, match="channels must be a positive integer"):
        filter_bank([parse_kernel("sobel-x")], 0)


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


# ---------------------------------------------------------------- kernel_sum_sign and format_matrix


def test_kernel_sum_sign() -> None:
    k = parse_kernel
    assert kernel_sum_sign([k("gaussian:1"), k("box:3"), k("sharpen")]) == 1
    assert kernel_sum_sign([k("sobel-x")]) == 0
    assert kernel_sum_sign([k("gaussian:1"), k("laplacian")]) == 0
    assert kernel_sum_sign([k("log:2")]) == 0
    assert kernel_sum_sign([k("-1,-2")]) == -1
    assert kernel_sum_sign([k("-1,-2"), k("1")]) == 0
    assert kernel_sum_sign([k("-1,-2"), k("1")], normalize=True) == 1
    layer = np.ones((2, 1, 3, 3))
    layer[1] = -1
    assert kernel_sum_sign([Kernel(layer)]) == 0
    assert kernel_sum_sign([Kernel(np.abs(layer))]) == 1


def test_format_matrix() -> None:
    assert format_matrix(parse_kernel("gaussian:1:3").weights).count("\n") == 2
    assert format_matrix(np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16) == (
        "0.0625  0.125  0.0625\n"
        "0.125   0.25   0.125\n"
        "0.0625  0.125  0.0625"
    )
    assert format_matrix(SOBEL_X) == "-1  0  1\n-2  0  2\n-1  0  1"
    assert format_matrix(SOBEL_Y) == "-1  -2  -1\n 0   0   0\n 1   2   1"
    assert format_matrix(np.array([[-0.0, 1 / 3]])) == "0  0.333333"
    assert format_matrix(np.array([[10.5, -2]])) == "10.5  -2"
    assert format_matrix(np.ones((1, 2, 1, 1))) == "[0, 0]\n1\n[0, 1]\n1"
    with pytest.raises(ShapeError):
        format_matrix(np.ones((2, 2, 2)))


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                  elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)))
def test_format_matrix_reads_back(weights: np.ndarray) -> None:
    text = format_matrix(weights)
    lines = text.split("\n")
    assert len(lines) == weights.shape[0]
    back = load_kernel_bytes(text.encode(), "text").weights
    np.testing.assert_allclose(back, weights, rtol=1e-5, atol=1e-300)


def test_format_matrix_columns_align() -> None:
    text = format_matrix(np.array([[1.5, -20.25], [100.0, 0.125]]))
    assert text.split("\n") == ["  1.5  -20.25", "100      0.125"]


# ---------------------------------------------------------------- extreme sigmas, zero-sum filters


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


def test_is_zero_sum_is_relative_to_the_taps() -> None:
    assert is_zero_sum(1e-13) and not is_zero_sum(2e-12)  # without magnitudes: absolute
    assert is_zero_sum(1e-9, 1e4) and not is_zero_sum(1e-7, 1e4)
    np.testing.assert_array_equal(is_zero_sum(np.array([0.0, 1.0, np.nan]), np.array([2.0, 1.0, 1.0])),
                                  [True, False, False])
    log = parse_kernel("log:0.01").weights  # taps ~1e4, sum ~1e-12: rounding noise
    sums, l1 = filter_sums(log[None])
    assert abs(sums[0]) > 1e-12 and zero_sum_filters(log[None]).tolist() == [True]
    assert kernel_sum_sign([Kernel(log)]) == 0


def test_normalize_leaves_large_tap_zero_sum_kernels_alone() -> None:
    log = parse_kernel("log:0.01")
    w, _, _ = filter_bank([log], 1, normalize=True)
    np.testing.assert_array_equal(w[0, 0], log.weights)  # not divided by its ~1e-12 sum (weights ~1e16)
    w, _, _ = filter_bank([log], 1, normalize=True, flip=True)
    np.testing.assert_array_equal(w[0, 0], log.weights[::-1, ::-1])


def test_kernel_stack() -> None:
    a, b = parse_kernel("sobel-x"), parse_kernel("box:3")
    stack = kernel_stack([a, b])
    assert stack.shape == (2, 3, 3) and stack.dtype == np.float64
    np.testing.assert_array_equal(stack[0], SOBEL_X)
    layer = Kernel(np.arange(24.0).reshape(2, 3, 2, 2))
    assert kernel_stack([layer, layer]).shape == (4, 3, 2, 2)


def test_kernels_docstring_formula_has_the_even_kernel_offset() -> None:
    import convcli.kernels.builtins

    assert "x[i + u - (FH-1)//2, j + v - (FW-1)//2]" in (convcli.kernels.builtins.__doc__ or "")


@pytest.mark.parametrize(("spec", "fragment"), [
    ("sobel-x:3\n4", "'sobel-x:3\\n4'"),
    ("1,x\n2", "inline kernel '1,x\\n2'"),
    ("3x3\n: 1,2", "ImageMagick kernel '3x3\\n: 1,2'"),
    ("2x\n2", "'2x\\n2' has no values"),
])
def test_specs_with_newlines_give_one_line_messages(spec: str, fragment: str) -> None:
    assert fragment in spec_error(spec)  # spec_error also checks there is no newline
