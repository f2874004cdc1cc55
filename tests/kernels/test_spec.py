"""convcli.kernels.spec: the spec parser - inline matrices, ImageMagick's form, kernel files, standard input."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kernel_helpers import SOBEL_X_ROWS, distinct, spec_error

from convcli.errors import InputFileError, KernelSpecError
from convcli.kernels.files import load_kernel_bytes
from convcli.kernels.spec import parse_kernel

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
        ("3x3+3+1: 1,2,3,4,5,6,7,8,9", ["origin +3+1 lies outside the 3x3 kernel"]),
        ("3x3-1+0: 1,2,3,4,5,6,7,8,9", ["must not be negative"]),
        ("2x2: 1,a,3,4", ["'a' is not a number"]),
        ("2x2:", ["no values"]),
        ("3x3", ["has no values", "3x3: v,v"]),
        ("0x2: 1", ["1×2 = 2 values"]),  # ImageMagick: a width under 1 is 1
        ("2x1: nan,-", ["every value is a hole"]),
        ("2x1: 1,inf", ["not a finite number"]),
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


@pytest.mark.parametrize(("spec", "fragment"), [
    ("sobel-x:3\n4", "'sobel-x:3\\n4'"),
    ("1,x\n2", "inline kernel '1,x\\n2'"),
    ("3x3\n: 1,2", "ImageMagick kernel '3x3\\n: 1,2'"),
    ("2x\n2", "'2x\\n2' has no values"),
])
def test_specs_with_newlines_give_one_line_messages(spec: str, fragment: str) -> None:
    assert fragment in spec_error(spec)  # spec_error also checks there is no newline
